"""Evidence gathered about a server after a failure: JSON, actions, console, host logs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openstack import exceptions

from conformance.lib import evidence
from conformance.lib.actions import list_actions
from conformance.lib.api import call
from conformance.lib.hosts import Hypervisor
from conformance.lib.servers import get_server

CONSOLE_LINES = 100


def gather_server_evidence(conn: Any, server_id: str, hypervisors: Mapping[str, Hypervisor]) -> None:
    """Attach the server's JSON, its instance actions, the console log tail and the
    host log lines of each action's request id (those that can be read)."""
    try:
        server = get_server(conn, server_id)
    except exceptions.NotFoundException:
        server = None
    evidence.attach_json(f"server {server_id} (now)", server.data if server else "404: gone")
    actions = list_actions(conn, server_id)
    evidence.attach_json(f"instance actions of {server_id}", actions)
    if server is not None:
        _attach_console(conn, server_id)
    hypervisor = hypervisors.get(server.host or "") if server is not None else None
    if hypervisor is None:
        return
    for action in actions:
        lines = hypervisor.log_lines(action["request_id"])
        evidence.attach_text(f"{hypervisor.name} log lines for {action['action']} ({action['request_id']})",
                             "\n".join(lines) or "(none)")


def _attach_console(conn: Any, server_id: str) -> None:
    try:
        body = call(conn, "POST", f"/servers/{server_id}/action",
                    json={"os-getConsoleOutput": {"length": CONSOLE_LINES}}).body
    except exceptions.HttpException as exc:
        evidence.attach_text(f"console of {server_id}", f"unavailable: {exc}")
        return
    evidence.attach_text(f"console of {server_id}", str(body.get("output", "")))
