"""Compute services: read and switch them (os-services), fence a host, drain it.

:class:`Fencer` takes a nova-compute service down the way the profile's
``host_control`` says: ``embedded`` asks the embedded cloud's control
endpoint (stop the service and set ``forced_down``), ``ssh`` runs the
profile's ``stop_command`` on the host and sets ``forced_down`` through the
API (microversion 2.53), as Nova's own evacuate CI job does.  ``unfence``
undoes it and is idempotent, so a cleanup may always call it.

:func:`drain` prepares a leased host for fencing (see
:mod:`conformance.lib.leases`): no other server may be on a host that goes
down.
"""

from __future__ import annotations

import json
import shlex
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from conformance.errors import InfraError, WaitTimeout
from conformance.lib.api import call
from conformance.lib.hosts import Hypervisor
from conformance.lib.placement import Placement
from conformance.lib.waiter import Polling, wait_until

SERVICES_MICROVERSION = "2.53"  # service ids are uuids; PUT /os-services/{id} with a body
LEASE_REASON = "conformance: host leased by a test"


def compute_services(conn: Any) -> list[dict[str, Any]]:
    """GET /os-services?binary=nova-compute (admin)."""
    body = call(conn, "GET", "/os-services", params={"binary": "nova-compute"},
                microversion=SERVICES_MICROVERSION).body
    return list(body["services"])


def service_of(conn: Any, host: str) -> dict[str, Any]:
    """The nova-compute service record of ``host``."""
    found = [s for s in compute_services(conn) if s["host"] == host]
    if len(found) != 1:
        raise InfraError(f"expected one nova-compute service on {host!r}, found {len(found)}")
    return found[0]


def usable_hosts(conn: Any) -> list[str]:
    """Hosts whose nova-compute is up, enabled and not forced down (sorted)."""
    return sorted(s["host"] for s in compute_services(conn)
                  if s["state"] == "up" and s["status"] == "enabled" and not s.get("forced_down"))


def update_service(conn: Any, host: str, **fields: Any) -> dict[str, Any]:
    """PUT /os-services/{id} with ``fields`` (status, disabled_reason, forced_down)."""
    service_id = service_of(conn, host)["id"]
    body = call(conn, "PUT", f"/os-services/{service_id}", json=fields,
                microversion=SERVICES_MICROVERSION).body
    return dict(body["service"])


def disable(conn: Any, host: str) -> None:
    """Disable the host's compute service: the scheduler places nothing new there."""
    update_service(conn, host, status="disabled", disabled_reason=LEASE_REASON)


def enable(conn: Any, host: str) -> None:
    update_service(conn, host, status="enabled")


def wait_service(conn: Any, host: str, *, up: bool, timeout: float, poll: Polling) -> None:
    """Wait until the host's compute service is reported up (or down)."""
    want = "up" if up else "down"
    wait_until(lambda: service_of(conn, host)["state"] == want, timeout=timeout, poll=poll,
               describe=f"nova-compute on {host} to be reported {want}",
               state=lambda: json.dumps(service_of(conn, host)))


def foreign_consumers(placement: Placement, provider: str, mine: Iterable[str]) -> dict[str, Any]:
    """Allocations on ``provider`` of consumers other than ``mine``."""
    own = set(mine)
    return {c: r for c, r in placement.provider_allocations(provider).items() if c not in own}


def drain(conn: Any, placement: Placement, host: str, provider: str, mine: Iterable[str], *,
          timeout: float, poll: Polling) -> None:
    """Disable ``host`` and wait until only ``mine`` hold allocations on its provider.

    A scheduler that picked the host just before it was disabled claims its
    allocation within the same request, so the condition must hold twice,
    one poll interval apart.  The caller re-enables the host.
    """
    disable(conn, host)
    own = list(mine)
    seen = {"clean": 0}

    def only_mine() -> bool:
        seen["clean"] = seen["clean"] + 1 if not foreign_consumers(placement, provider, own) else 0
        return seen["clean"] >= 2

    try:
        wait_until(only_mine, timeout=timeout, poll=Polling(initial=poll.maximum, maximum=poll.maximum),
                   describe=f"other tests' servers to leave {host}",
                   state=lambda: json.dumps(foreign_consumers(placement, provider, own)))
    except WaitTimeout as exc:
        raise InfraError(f"{host} cannot be fenced: it still holds servers this test does not own\n"
                         f"{exc}") from None


class Fencer:
    """Take a compute service down and bring it back, by the profile's method."""

    def __init__(self, conn: Any, method: str, *, control_url: str | None = None,
                 stop_command: str | None = None, start_command: str | None = None,
                 hypervisors: Mapping[str, Hypervisor] | None = None, timeout: float = 120.0):
        self.conn, self.method, self.control_url = conn, method, (control_url or "").rstrip("/")
        self.timeout = timeout
        self.stop_command, self.start_command = stop_command, start_command
        self.hypervisors = dict(hypervisors or {})

    def can_fence(self, host: str) -> bool:
        """Whether this method reaches ``host`` (ssh needs the host in the profile)."""
        return self.method == "embedded" or host in self.hypervisors

    def fence(self, host: str) -> None:
        """Stop the host's nova-compute and mark it forced down."""
        if self.method == "embedded":
            self._control(host, "fence")
            return
        self._ssh(host, self.stop_command)
        update_service(self.conn, host, forced_down=True)

    def unfence(self, host: str) -> None:
        """Start the host's nova-compute again and clear forced down (idempotent)."""
        if self.method == "embedded":
            self._control(host, "unfence")
            return
        self._ssh(host, self.start_command)
        update_service(self.conn, host, forced_down=False)

    def _control(self, host: str, action: str) -> None:
        request = urllib.request.Request(f"{self.control_url}/computes/{host}/{action}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                response.read()
        except OSError as exc:
            raise InfraError(f"host control {action} {host} failed: {exc}") from None

    def _ssh(self, host: str, command: str | None) -> None:
        if not command or host not in self.hypervisors:
            raise InfraError(f"host_control ssh cannot reach {host} (command {command!r})")
        self.hypervisors[host].host.run(*shlex.split(command))
