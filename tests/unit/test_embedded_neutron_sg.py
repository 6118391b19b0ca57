"""The Neutron fake's security groups: per project, found by name like neutronclient finds them."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("nova")


@pytest.fixture(scope="module")
def neutron() -> Any:
    """Nova's NeutronFixture module with the security-group API installed."""
    from nova.tests.fixtures import neutron as module

    from conformance.embedded import neutron_sg

    neutron_sg.install(module.NeutronFixture)
    return module


def _client(neutron: Any, fixture: Any, project: str | None) -> Any:
    client = neutron._FakeNeutronClient(fixture, False)
    client.project_id = project
    return client


def test_a_group_is_found_by_name_in_its_project_only(neutron: Any) -> None:
    """find_resource by name: the owner finds it, another project gets a 404."""
    from neutronclient.common import exceptions

    fixture = neutron.NeutronFixture(None)
    alice, bob = _client(neutron, fixture, "alice"), _client(neutron, fixture, "bob")
    group = alice.create_security_group({"security_group": {"name": "web", "description": ""}})
    group_id = group["security_group"]["id"]
    assert alice.find_resource("security_group", "web", "alice", fields="id")["id"] == group_id
    with pytest.raises(exceptions.NotFound):
        bob.find_resource("security_group", "web", "bob", fields="id")
    with pytest.raises(exceptions.NotFound):
        bob.show_security_group(group_id)
    default = bob.find_resource("security_group", "default", "bob", fields="id")["id"]
    assert default == fixture.security_group["id"]


def test_new_groups_have_egress_rules_and_names_must_be_unique(neutron: Any) -> None:
    """A new group has Neutron's two egress rules; two groups of one name are no unique match."""
    from neutronclient.common import exceptions

    alice = _client(neutron, neutron.NeutronFixture(None), "alice")
    for _ in range(2):
        created = alice.create_security_group({"security_group": {"name": "db"}})["security_group"]
    assert [r["direction"] for r in created["security_group_rules"]] == ["egress", "egress"]
    assert created["project_id"] == "alice"
    with pytest.raises(exceptions.NeutronClientNoUniqueMatch):
        alice.find_resource("security_group", "db", "alice", fields="id")


def test_a_group_in_use_cannot_be_deleted(neutron: Any) -> None:
    """Deleting a group a port uses is a 409; an unused one goes away."""
    from neutronclient.common import exceptions

    fixture = neutron.NeutronFixture(None)
    alice = _client(neutron, fixture, "alice")
    group_id = alice.create_security_group({"security_group": {"name": "a"}})["security_group"]["id"]
    port = fixture.port_1
    fixture._ports[port["id"]] = {**port, "security_groups": [group_id]}
    with pytest.raises(exceptions.Conflict):
        alice.delete_security_group(group_id)
    fixture._ports[port["id"]]["security_groups"] = []
    alice.delete_security_group(group_id)
    assert group_id not in [g["id"] for g in alice.list_security_groups()["security_groups"]]
