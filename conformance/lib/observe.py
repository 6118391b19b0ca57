"""Snapshots of one server at every depth the caller can reach.

A scenario acts on a server once and takes a :class:`Snapshot` at each moment
that matters (active, paused, deleted, ...).  The :class:`Observer` reads what
its connections and hosts allow: the member's view always; the admin's view,
Placement and the hypervisor only when they were given.  A probe that fails
is kept and re-raised when a test reads that fact, so an SSH failure makes
only the host-depth tests ERROR.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from openstack import exceptions

from conformance.errors import InfraError, WaitTimeout
from conformance.lib import evidence
from conformance.lib.hosts import Hypervisor
from conformance.lib.placement import Placement
from conformance.lib.servers import Server, get_server
from conformance.lib.waiter import Polling, wait_until


class Snapshot:
    """What was observed of one server at one moment; facts are read as attributes."""

    def __init__(self, label: str, server_id: str):
        self.label, self.server_id = label, server_id
        self.facts: dict[str, Any] = {}
        self.errors: dict[str, BaseException] = {}

    def probe(self, name: str, read: Callable[[], Any]) -> None:
        """Store ``read()`` as fact ``name``, or the exception it raised."""
        try:
            self.facts[name] = read()
        except Exception as exc:
            self.errors[name] = exc

    def fact(self, name: str) -> Any:
        """The fact ``name``; re-raises its probe's exception, InfraError if never probed."""
        if name in self.errors:
            raise self.errors[name]
        if name not in self.facts:
            raise InfraError(f"snapshot {self.label!r} of {self.server_id} did not observe {name!r}")
        return self.facts[name]

    server = property(lambda self: self.fact("server"), doc="member's Server (None after 404)")
    admin_server = property(lambda self: self.fact("admin_server"), doc="admin's Server (None after 404)")
    host = property(lambda self: self.fact("host"), doc="nova-compute host name (None if unknown)")
    provider = property(lambda self: self.fact("provider"), doc="resource provider uuid of the host")
    allocations = property(lambda self: self.fact("allocations"), doc="{rp: {rc: n}} of the consumer")
    usages = property(lambda self: self.fact("usages"), doc="{rc: n} used on the host's provider")
    domain_state = property(lambda self: self.fact("domain_state"), doc="(state, reason) or None")
    domain_name = property(lambda self: self.fact("domain_name"), doc="libvirt domain name or None")
    dominfo = property(lambda self: self.fact("dominfo"), doc="virsh dominfo as a dict, or None")
    instance_files = property(lambda self: self.fact("instance_files"), doc="file names or None")

    def to_data(self) -> dict[str, Any]:
        data = {k: (v.data if isinstance(v, Server) else v) for k, v in self.facts.items()}
        return {"label": self.label, "server_id": self.server_id, "facts": data,
                "errors": {k: f"{type(e).__name__}: {e}" for k, e in self.errors.items()}}


def _all_at_once(reads: list[Callable[[], None]]) -> None:
    """Run the reads concurrently (each stores its own fact or error) and wait for all of them.

    Fresh threads, not a pool: allure-pytest gives a new thread the test's
    current item (for the reads' evidence), a pooled one keeps its first.
    """
    threads = [threading.Thread(target=read, name=f"observe-{i}", daemon=True)
               for i, read in enumerate(reads[1:])]
    for thread in threads:
        thread.start()
    if reads:
        reads[0]()
    for thread in threads:
        thread.join()


def server_or_none(conn: Any, server_id: str) -> Server | None:
    """GET the server; None on 404."""
    try:
        return get_server(conn, server_id)
    except exceptions.NotFoundException:
        return None


class Observer:
    """Takes snapshots with the member, and the admin, Placement and hosts when given."""

    def __init__(self, member: Any, *, admin: Any = None, placement: Placement | None = None,
                 hypervisors: Mapping[str, Hypervisor] | None = None):
        self.member, self.admin, self.placement = member, admin, placement
        self.hypervisors = dict(hypervisors or {})

    def snapshot(self, label: str, server_id: str, *, host: str | None = None,
                 provider: str | None = None, attach: bool = True) -> Snapshot:
        """Observe the server now; ``host``/``provider`` name where to look once it is gone.

        Independent reads run at once (the member's and admin's GETs, then
        Placement and the host's SSH round trip), so a snapshot takes about
        as long as its slowest read, not their sum.
        """
        snap = Snapshot(label, server_id)
        reads = [lambda: snap.probe("server", lambda: server_or_none(self.member, server_id))]
        if self.admin is not None:
            reads.append(lambda: snap.probe("admin_server", lambda: server_or_none(self.admin, server_id)))
        _all_at_once(reads)
        snap.probe("host", lambda: host or self._locate(snap))
        reads = []
        if self.placement is not None:
            reads.append(lambda: self._probe_placement(snap, provider))
        hypervisor = self.hypervisors.get(snap.facts.get("host") or "")
        if hypervisor is not None:
            reads.append(lambda: self._probe_host(snap, hypervisor))
        _all_at_once(reads)
        if attach:
            evidence.attach_json(f"snapshot {label}", snap.to_data())
        return snap

    def _locate(self, snap: Snapshot) -> str | None:
        admin_view = snap.facts.get("admin_server")
        if admin_view is not None:
            return str(admin_view.host) if admin_view.host else None
        found = [name for name, hv in self.hypervisors.items() if hv.domain_exists(snap.server_id)]
        return found[0] if len(found) == 1 else None

    @staticmethod
    def _probe_host(snap: Snapshot, hypervisor: Hypervisor) -> None:
        """Domain state, dominfo, domain name and instance files, in one SSH round trip."""
        names = ("domain_state", "dominfo", "domain_name", "instance_files")
        try:
            seen = hypervisor.inspect(snap.server_id)
        except Exception as exc:
            snap.errors.update(dict.fromkeys(names, exc))
            return
        snap.facts.update(domain_state=seen.domain_state, dominfo=seen.dominfo,
                          domain_name=(seen.dominfo or {}).get("Name"), instance_files=seen.instance_files)

    def _probe_placement(self, snap: Snapshot, provider: str | None) -> None:
        placement = self.placement
        assert placement is not None
        snap.probe("allocations", lambda: placement.allocations(snap.server_id))
        admin_view = snap.facts.get("admin_server")
        node = admin_view.hypervisor_hostname if admin_view is not None else None
        snap.probe("provider", lambda: provider or (placement.provider_for_host(node) if node else None))
        rp = snap.facts.get("provider")
        if rp:
            snap.probe("usages", lambda: placement.usages(rp))

    def settle(self, label: str, server_id: str, until: Callable[[Snapshot], bool], *, timeout: float,
               poll: Polling, host: str | None = None, provider: str | None = None) -> Snapshot:
        """Snapshot repeatedly until ``until(snapshot)`` holds or ``timeout`` passes.

        A snapshot with a failed probe (e.g. an SSH timeout) does not count as
        settled.  Returns the last snapshot either way, so the test's assertion
        (not a timeout) reports an eventual-consistency guarantee that never held.
        """
        last: list[Snapshot] = []

        def settled() -> bool:
            last[:] = [self.snapshot(label, server_id, host=host, provider=provider, attach=False)]
            with contextlib.suppress(Exception):
                return not last[0].errors and bool(until(last[0]))
            return False

        with contextlib.suppress(WaitTimeout):
            wait_until(settled, timeout=timeout, poll=poll, describe=f"{label} of {server_id} to settle")
        evidence.attach_json(f"snapshot {label}", last[0].to_data())
        return last[0]


class Scenario:
    """What one scenario fixture did and saw, read by the tests that share it.

    The fixture acts inside ``with scenario.acting():`` and stores records as
    attributes.  An exception while acting is kept, not raised: a test that
    reads a record the failure prevented gets that exception in its own call
    phase, so a broken guarantee is a FAIL and an infrastructure problem an
    ERROR, exactly as if the test had acted itself.
    """

    def __init__(self, name: str):
        self.__dict__["_name"] = name
        self.__dict__["_records"] = {}
        self.__dict__["failure"] = None

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        try:
            yield
        except Exception as exc:
            self.__dict__["failure"] = exc
            evidence.attach_text(f"scenario {self._name} failed", f"{type(exc).__name__}: {exc}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._records[name] = value

    def __getattr__(self, name: str) -> Any:
        records = self.__dict__["_records"]
        if name in records:
            return records[name]
        if self.__dict__["failure"] is not None:
            raise self.__dict__["failure"]
        raise InfraError(f"scenario {self._name} has no record {name!r}")
