"""Servers as JSON: a read-only view and the calls that act on one.

:class:`Server` wraps the body of ``GET /servers/{id}`` and names the fields
the guarantees talk about (the ``OS-EXT-STS:*`` and ``OS-EXT-SRV-ATTR:*``
ones included); ``server.data`` keeps the whole JSON for evidence.
"""

from __future__ import annotations

from typing import Any

from conformance.lib.api import Reply, call

STS = "OS-EXT-STS:"
SRV = "OS-EXT-SRV-ATTR:"


class Server:
    """The JSON of one server, as one caller saw it."""

    def __init__(self, data: dict[str, Any]):
        self.data = data

    def __repr__(self) -> str:
        return f"Server({self.id}, {self.status}, task={self.task_state}, host={self.host})"

    id = property(lambda self: str(self.data["id"]))
    name = property(lambda self: self.data.get("name"))
    status = property(lambda self: self.data.get("status"))
    vm_state = property(lambda self: self.data.get(STS + "vm_state"))
    task_state = property(lambda self: self.data.get(STS + "task_state"))
    power_state = property(lambda self: self.data.get(STS + "power_state"))
    host = property(lambda self: self.data.get(SRV + "host"))
    hypervisor_hostname = property(lambda self: self.data.get(SRV + "hypervisor_hostname"))
    instance_name = property(lambda self: self.data.get(SRV + "instance_name"))
    host_id = property(lambda self: self.data.get("hostId"))
    launched_at = property(lambda self: self.data.get("OS-SRV-USG:launched_at"))
    fault = property(lambda self: self.data.get("fault"))
    tags = property(lambda self: list(self.data.get("tags") or []))
    metadata = property(lambda self: dict(self.data.get("metadata") or {}))
    addresses = property(lambda self: dict(self.data.get("addresses") or {}))
    flavor = property(lambda self: dict(self.data.get("flavor") or {}))

    def shows_host_attributes(self) -> bool:
        """True if the caller was shown any OS-EXT-SRV-ATTR:host/hypervisor attribute."""
        return any(SRV + key in self.data for key in ("host", "hypervisor_hostname"))

    @property
    def image_id(self) -> str | None:
        image = self.data.get("image")
        return image.get("id") if isinstance(image, dict) else None

    @property
    def ips(self) -> list[str]:
        """Every fixed address, in network order."""
        return [a["addr"] for net in self.addresses.values() for a in net
                if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]

    def ips_on(self, network_name: str) -> list[str]:
        """Addresses on the network named ``network_name``."""
        return [a["addr"] for a in self.addresses.get(network_name, [])]


def get_server(conn: Any, server_id: str, microversion: str | None = None) -> Server:
    """GET /servers/{id}; raises NotFoundException on 404."""
    return Server(call(conn, "GET", f"/servers/{server_id}", microversion=microversion).body["server"])


def create_server(conn: Any, body: dict[str, Any], microversion: str | None = None) -> Reply:
    """POST /servers with ``{"server": body}``; the reply body holds the new id."""
    return call(conn, "POST", "/servers", json={"server": body}, microversion=microversion)


def server_action(conn: Any, server_id: str, action: str, body: Any = None,
                  microversion: str | None = None) -> Reply:
    """POST /servers/{id}/action with ``{action: body}`` (e.g. ``pause``)."""
    return call(conn, "POST", f"/servers/{server_id}/action", json={action: body},
                microversion=microversion)


def delete_server(conn: Any, server_id: str) -> Reply:
    """DELETE /servers/{id} (answers 204; the deletion goes on asynchronously)."""
    return call(conn, "DELETE", f"/servers/{server_id}")


def interfaces(conn: Any, server_id: str) -> list[dict[str, Any]]:
    """GET /servers/{id}/os-interface: the server's ports (net_id, port_id, fixed_ips)."""
    return list(call(conn, "GET", f"/servers/{server_id}/os-interface").body["interfaceAttachments"])


def list_servers(conn: Any, params: dict[str, Any] | None = None) -> list[Server]:
    """GET /servers/detail with ``params`` as query filters, following pagination."""
    servers: list[Server] = []
    query = dict(params or {})
    while True:
        body = call(conn, "GET", "/servers/detail", params=query).body
        page = [Server(s) for s in body.get("servers", [])]
        servers.extend(page)
        if not page or not any(link.get("rel") == "next" for link in body.get("servers_links", [])):
            return servers
        query["marker"] = page[-1].id
