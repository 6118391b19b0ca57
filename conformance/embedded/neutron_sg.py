"""Security groups in Nova's Neutron fake, per project, as Neutron serves them.

The fixture knows one security group ("default", shared here by every
project: see :func:`conformance.embedded.fixes.fix_neutron`) and no API to
create, show, update, delete or find one by name, which Nova's
security-group proxy API and server actions (``addSecurityGroup``,
``removeSecurityGroup``, boot with ``security_groups``) call.  This module
adds them with Neutron's behaviour:

* a group belongs to the project of the token that created it, and a
  non-admin sees only its project's groups (plus the shared default);
* a new group has Neutron's two egress rules; rules are dicts in the
  group, as Neutron returns them;
* lookups by name go through neutronclient's own ``find_resource`` (id
  first, then a unique name within the project: 404 or no unique match);
* a group still used by a port cannot be deleted (409).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from oslo_utils import uuidutils

_CLIENT_LOOKUPS = ("find_resource", "find_resource_by_id", "_find_resource_by_name",
                   "get_resource_plural")


def _egress_rules(group_id: str, project_id: str) -> list[dict[str, Any]]:
    """The rules Neutron gives every new security group."""
    return [{"id": uuidutils.generate_uuid(), "security_group_id": group_id, "direction": "egress",
             "ethertype": ethertype, "protocol": None, "port_range_min": None,
             "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": None,
             "description": None, "tenant_id": project_id, "project_id": project_id}
            for ethertype in ("IPv4", "IPv6")]


def _not_found(group_id: str) -> Exception:
    from neutronclient.common import exceptions

    return exceptions.NotFound(message=f"Security group {group_id} could not be found.")


def install(fixture: Any) -> None:
    """Add the security-group API to ``NeutronFixture`` and its client."""
    from neutronclient.v2_0.client import ClientBase
    from nova.tests.fixtures import neutron

    shared = fixture.security_group
    rules = [fixture.security_group_rule_ip4_ingress, fixture.security_group_rule_ip4_egress,
             fixture.security_group_rule_ip6_ingress, fixture.security_group_rule_ip6_egress]
    shared["security_group_rules"] = copy.deepcopy(rules)
    client = neutron._FakeNeutronClient
    client.EXTED_PLURALS = {}
    for name in _CLIENT_LOOKUPS:
        setattr(client, name, getattr(ClientBase, name))
    for name, method in _FIXTURE_METHODS.items():
        setattr(fixture, name, method)
    real_get_client = fixture._get_client

    def _get_client(self: Any, context: Any, admin: bool = False) -> Any:
        fake = real_get_client(self, context, admin)
        # an admin token sees every project's groups, a member's only its own
        fake.project_id = None if fake.is_admin or context.is_admin else context.project_id
        return fake

    fixture._get_client = _get_client
    for name, call in _CLIENT_METHODS.items():
        setattr(client, name, call)


# ------------------------------------------------------------------ fixture side
def _visible(group: dict[str, Any], project_id: str | None, shared_id: str) -> bool:
    return project_id is None or group["id"] == shared_id or group.get("project_id") == project_id


def list_security_groups(self: Any, retrieve_all: bool = True, **params: Any) -> dict[str, Any]:
    """Groups matching ``params``; ``tenant_id``/``project_id`` also match the shared default."""
    project_id = params.pop("tenant_id", None) or params.pop("project_id", None)
    params.pop("project_id", None)
    groups = self._list_resource(self._security_groups, retrieve_all, **params)
    shared_id = self.security_group["id"]
    return {"security_groups": [g for g in groups if _visible(g, project_id, shared_id)]}


def create_security_group(self: Any, body: Any = None) -> dict[str, Any]:
    """A new group of the requesting project, with Neutron's egress rules."""
    request = copy.deepcopy((body or {}).get("security_group", {}))
    group_id = uuidutils.generate_uuid()
    project_id = request.pop("tenant_id", None) or request.pop("project_id", None)
    group = {"id": group_id, "name": request.get("name", ""),
             "description": request.get("description", ""), "tenant_id": project_id,
             "project_id": project_id, "stateful": True,
             "security_group_rules": _egress_rules(group_id, project_id)}
    self._security_groups[group_id] = group
    return {"security_group": copy.deepcopy(group)}


def show_security_group(self: Any, group_id: str, **_params: Any) -> dict[str, Any]:
    """One group, or 404."""
    if group_id not in self._security_groups:
        raise _not_found(group_id)
    return {"security_group": copy.deepcopy(self._security_groups[group_id])}


def update_security_group(self: Any, group_id: str, body: Any = None) -> dict[str, Any]:
    """Change name and description of a group."""
    group = self.show_security_group(group_id)["security_group"]
    changes = (body or {}).get("security_group", {})
    self._security_groups[group_id].update(
        {k: v for k, v in changes.items() if k in ("name", "description")})
    return {"security_group": {**group, **self._security_groups[group_id]}}


def delete_security_group(self: Any, group_id: str) -> None:
    """Delete a group unless a port still uses it (409, as Neutron's SecurityGroupInUse)."""
    from neutronclient.common import exceptions

    self.show_security_group(group_id)
    if group_id == self.security_group["id"] or any(
            group_id in (p.get("security_groups") or []) for p in self._ports.values()):
        raise exceptions.Conflict(message=f"Security Group {group_id} in use.")
    del self._security_groups[group_id]


_FIXTURE_METHODS: dict[str, Callable[..., Any]] = {
    f.__name__: f for f in (list_security_groups, create_security_group, show_security_group,
                            update_security_group, delete_security_group)}


# ------------------------------------------------------------------ client side (per token)
def _client_list(self: Any, retrieve_all: bool = True, **params: Any) -> dict[str, Any]:
    if self.project_id is not None and not (params.get("tenant_id") or params.get("project_id")):
        params["tenant_id"] = self.project_id  # Neutron scopes a non-admin's list to its project
    return self.fixture.list_security_groups(retrieve_all, **params)


def _client_create(self: Any, body: Any = None) -> dict[str, Any]:
    request = copy.deepcopy(body or {"security_group": {}})
    if self.project_id is not None:
        request["security_group"].setdefault("tenant_id", self.project_id)
    return self.fixture.create_security_group(request)


def _client_show(self: Any, group_id: str, **params: Any) -> dict[str, Any]:
    group = self.fixture.show_security_group(group_id, **params)
    if not _visible(group["security_group"], self.project_id, self.fixture.security_group["id"]):
        raise _not_found(group_id)
    return group


def _client_delete(self: Any, group_id: str) -> None:
    _client_show(self, group_id)
    self.fixture.delete_security_group(group_id)


_CLIENT_METHODS: dict[str, Callable[..., Any]] = {
    "list_security_groups": _client_list, "create_security_group": _client_create,
    "show_security_group": _client_show, "delete_security_group": _client_delete}
