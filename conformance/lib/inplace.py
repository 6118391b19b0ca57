"""Helpers shared by the suites of in-place operations (power, reboot, suspend, rescue, snapshot).

:func:`attempt` sends an action a guarantee may expect to be refused and
records the answer either way; :func:`action_of_request` reads the instance
action a request left (None if it left none).  :func:`probe_host` adds a host
fact to a snapshot; :func:`creation_time` reads the definition time Nova's
libvirt driver writes into every domain XML it generates; :func:`log_lines_with`
reads a request's compute log lines once the expected line is there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable
from typing import Any

from openstack import exceptions

from conformance.errors import WaitTimeout
from conformance.lib.api import call
from conformance.lib.hosts import Hypervisor
from conformance.lib.observe import Observer, Snapshot
from conformance.lib.servers import Server, server_action
from conformance.lib.waiter import Polling, wait_until

# nova/virt/libvirt/config.py:LibvirtConfigGuestMetaNovaInstance writes <nova:creationTime>
# (whole seconds) each time the driver generates the domain XML (_get_guest_config_meta).
CREATION_TIME = re.compile(r"<(?:\w+:)?creationTime>\s*([^<]+?)\s*</")


def state(server: Server) -> tuple[Any, ...]:
    """(status, vm_state, task_state, power_state)."""
    return server.status, server.vm_state, server.task_state, server.power_state


def identity(server: Server) -> tuple[Any, ...]:
    """What an in-place operation keeps: id, addresses, flavor, image and host (hostId)."""
    return server.id, server.addresses, server.flavor, server.image_id, server.host_id


@dataclasses.dataclass(frozen=True)
class Attempt:
    """The answer to one action request, accepted or refused."""

    action: str
    status: int
    request_id: str | None
    body: Any

    def __str__(self) -> str:
        return f"{self.action} -> {self.status} ({self.request_id or 'no request id'}): {self.body}"


def attempt(conn: Any, server_id: str, action: str, body: Any = None) -> Attempt:
    """POST the action and record its answer; a 4xx is recorded, not raised (5xx still raises)."""
    try:
        reply = server_action(conn, server_id, action, body)
    except exceptions.HttpException as exc:
        if exc.status_code is None or exc.status_code >= 500:
            raise
        return Attempt(action, int(exc.status_code), exc.request_id, exc.details or str(exc))
    return Attempt(action, reply.status, reply.request_id, reply.body)


def action_of_request(conn: Any, server_id: str, request_id: str) -> dict[str, Any] | None:
    """The instance action recorded for ``request_id``, or None if there is none (404)."""
    try:
        body = call(conn, "GET", f"/servers/{server_id}/os-instance-actions/{request_id}").body
    except exceptions.NotFoundException:
        return None
    return dict(body["instanceAction"])


def probe_host(observer: Observer, snap: Snapshot, name: str, read: Callable[[Hypervisor], Any]) -> None:
    """Add fact ``name`` = ``read(hypervisor)`` to ``snap`` when its host is one the profile reaches."""
    hypervisor = observer.hypervisors.get(snap.facts.get("host") or "")
    if hypervisor is not None:
        snap.probe(name, lambda: read(hypervisor))


def creation_time(xml: str | None) -> str | None:
    """The ``nova:creationTime`` of a domain XML (None if the domain or the element is absent)."""
    match = CREATION_TIME.search(xml or "")
    return match.group(1) if match else None


def log_lines_with(hypervisor: Hypervisor, request_id: str, needle: str, *, timeout: float,
                   poll: Polling) -> list[str]:
    """The compute log lines of ``request_id``, once one holds ``needle`` (else when time is up)."""
    lines: list[str] = []

    def found() -> bool:
        lines[:] = hypervisor.log_lines(request_id)
        return any(needle in line for line in lines)

    with contextlib.suppress(WaitTimeout):  # the caller's assertion shows the lines seen
        wait_until(found, timeout=timeout, poll=poll, describe=f"log line {needle!r} of {request_id}")
    return lines
