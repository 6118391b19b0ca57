"""Moves: migration records (GET /os-migrations, admin) and the state machines of moves.

A :class:`MigrationLog` samples a server's migration records while an
operation runs (pass its :meth:`~MigrationLog.sample` as the waiter's
``on_poll``) and keeps, per migration, every distinct status it saw.
Intermediate statuses can be too short to sample, so guarantees require the
end status and that whatever was seen came in the documented order
(:func:`order_problem`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from conformance.errors import GuaranteeViolation, HostCommandError, InfraError, WaitTimeout
from conformance.lib import evidence
from conformance.lib.actions import get_action
from conformance.lib.api import call
from conformance.lib.hosts import NOT_FOUND, Hypervisor, parse_domstate
from conformance.lib.observe import Scenario, Snapshot
from conformance.lib.placement import Placement
from conformance.lib.servers import get_server
from conformance.lib.trace import StateMachine, Trace, phase
from conformance.lib.waiter import Polling, wait_until

MICROVERSION = "2.59"  # migration uuid (the Placement consumer of move allocations)

# Reference §1.7; nova/compute/manager.py, resource_tracker.py, conductor/tasks/*.py.
COLD = ("pre-migrating", "migrating", "post-migrating", "finished")
COLD_CONFIRMED = (*COLD, "confirming", "confirmed")
COLD_REVERTED = (*COLD, "reverting", "reverted")
LIVE = ("accepted", "queued", "preparing", "running", "completed")
EVACUATION_DONE = ("accepted", "pre-migrating", "done")
EVACUATION_COMPLETED = (*EVACUATION_DONE, "completed")

_RESIZING = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
_REBUILDING = ("rebuilding", "rebuild_block_device_mapping", "rebuild_spawning")
MIGRATE = StateMachine("migrate", (phase("RESIZE", *_RESIZING), phase("VERIFY_RESIZE")))
CONFIRM = StateMachine("confirmResize", (phase("VERIFY_RESIZE"), phase("ACTIVE")))
REVERT = StateMachine("revertResize", (phase("REVERT_RESIZE", "resize_reverting"), phase("ACTIVE")))
EVACUATE = StateMachine("evacuate", (phase("REBUILD", *_REBUILDING), phase("ACTIVE")))
# at >= 2.95 the destination saves ACTIVE after the spawn, then stops the guest
EVACUATE_STOPPED = StateMachine("evacuate (2.95)", (
    phase("REBUILD", *_REBUILDING), phase("ACTIVE", None, "powering-off"), phase("SHUTOFF"),
))


def migrations(conn: Any, server_id: str, migration_type: str | None = None) -> list[dict[str, Any]]:
    """The server's migration records (of ``migration_type``), oldest first."""
    params = {"instance_uuid": server_id}
    if migration_type:
        params["migration_type"] = migration_type
    body = call(conn, "GET", "/os-migrations", params=params, microversion=MICROVERSION).body
    return sorted(body["migrations"], key=lambda m: m["id"])


class MigrationLog:
    """Every distinct status seen per migration record of one server and type."""

    def __init__(self, conn: Any, server_id: str, migration_type: str):
        self.conn, self.server_id, self.migration_type = conn, server_id, migration_type
        self.seen: dict[int, list[str]] = {}
        self.records: dict[int, dict[str, Any]] = {}

    def sample(self, _server: Any = None) -> None:
        """Read the records now (usable as a waiter's ``on_poll``)."""
        for record in migrations(self.conn, self.server_id, self.migration_type):
            self.records[record["id"]] = record
            statuses = self.seen.setdefault(record["id"], [])
            if not statuses or statuses[-1] != record["status"]:
                statuses.append(record["status"])

    def latest(self) -> dict[str, Any]:
        """The newest record (read now); GuaranteeViolation if there is none."""
        self.sample()
        if not self.records:
            raise GuaranteeViolation(f"server {self.server_id} has no {self.migration_type!r} "
                                     "migration record in GET /os-migrations")
        return self.records[max(self.records)]

    def statuses(self, record: dict[str, Any]) -> list[str]:
        """The statuses seen for ``record``, in order."""
        return list(self.seen.get(record["id"], []))


def order_problem(seen: Sequence[str], order: Sequence[str]) -> str | None:
    """Why ``seen`` does not follow ``order`` (no status twice, none unknown), or None."""
    position = -1
    for status in seen:
        if status not in order:
            return f"status {status!r} is not one of {list(order)} (seen {list(seen)})"
        if order.index(status) <= position:
            return f"status {status!r} came after {order[position]!r} (seen {list(seen)})"
        position = order.index(status)
    return None


def state_problems(trace: Trace, *, vm_state: str, power_state: int, statuses: set[str]) -> list[str]:
    """Observations of ``trace`` outside the given vm_state, power_state and statuses."""
    return [f"+{o.at:.2f}s {o}" for o in trace.observations
            if o.vm_state != vm_state or o.power_state != power_state or o.status not in statuses]


def event_finished(conn: Any, server_id: str, action: str, event: str) -> bool:
    """Whether the newest ``action`` of the server has a finished ``event`` (any result)."""
    events = get_action(conn, server_id, action).get("events") or []
    return any(e["event"] == event and e.get("finish_time") for e in events)


def providers_by_host(conn: Any) -> dict[str, str]:
    """nova-compute host -> resource provider uuid (GET /os-hypervisors/detail at 2.53: id = rp uuid)."""
    body = call(conn, "GET", "/os-hypervisors/detail", microversion="2.53").body
    return {h["service"]["host"]: str(h["id"]) for h in body["hypervisors"]}


# One SSH round trip per host and snapshot: $1 = uuid, $2 = instance dir.  Each step prints its
# output, then a marker line with its exit code.
MARK = "@@conformance-move rc="
MOVE_SCRIPT = (
    'step() { out=$("$@" 2>&1); printf "%s\\n' + MARK + '%s\\n" "$out" "$?"; }; '
    'step virsh domstate --reason "$1"; step ls -1A "$2"; step test -d "$2_resize"; '
    'step stat -c %i "$2/disk"'
)


def _view_part(snap: Snapshot, view: str, key: str) -> Any:
    """Entry ``key`` of the host view fact ``view`` of ``snap``."""
    return snap.fact(view)[key]


def host_view(hypervisor: Hypervisor, uuid: str) -> dict[str, Any]:
    """What a host holds of one server: ``domain`` (state, reason) or None, ``files`` (names) or
    None, ``resize_dir`` (bool) and ``disk`` (the inode of ``<uuid>/disk``; a copy has another)."""
    result = hypervisor.host.run("sh", "-c", MOVE_SCRIPT, "move", uuid, hypervisor.files.path(uuid),
                                 check=False)
    chunks = result.stdout.split(MARK)
    if len(chunks) != 5:
        raise HostCommandError(f"unexpected output on {result.host}\n{result}")
    steps = [(chunks[i] if i == 0 else chunks[i].split("\n", 1)[1],
              chunks[i + 1].split("\n", 1)[0].strip()) for i in range(4)]
    (state, state_rc), (files, files_rc), (_, resize_rc), (inode, inode_rc) = steps
    if state_rc != "0" and not NOT_FOUND.search(state):
        raise HostCommandError(f"virsh domstate failed on {result.host}\n{result}")
    return {"domain": parse_domstate(state) if state_rc == "0" else None,
            "files": sorted(f.strip() for f in files.splitlines() if f.strip()) if files_rc == "0" else None,
            "resize_dir": resize_rc == "0",
            "disk": inode.strip() if inode_rc == "0" else None}


class MoveObserver:
    """Snapshots of a moving server at the source and the destination at once.

    Facts (each probed only at the depths given): ``server`` (admin view),
    ``allocations`` and ``migration_allocations`` (instance and migration
    consumers), ``source_consumers`` / ``dest_consumers`` (what the two
    consumers hold on that host's provider), ``source_usages`` /
    ``dest_usages``, ``migration`` (the record, when its uuid is given), and per
    role ``source_domain``, ``source_files``, ``source_resize_dir``,
    ``source_disk`` (and ``dest_*``).
    """

    def __init__(self, admin: Any, source: str, dest: str, *, placement: Placement | None = None,
                 hypervisors: Mapping[str, Hypervisor] | None = None):
        self.admin, self.placement = admin, placement
        self.hosts = {"source": source, "dest": dest}
        self.hypervisors = dict(hypervisors or {})
        self.providers = providers_by_host(admin) if placement is not None else {}

    def provider(self, role: str) -> str:
        return self.providers[self.hosts[role]]

    def snapshot(self, label: str, server_id: str, migration_uuid: str | None = None,
                 attach: bool = True, on_hosts: bool = True) -> Snapshot:
        """Observe now; ``on_hosts=False`` skips the SSH reads (for stages no host test reads)."""
        snap = Snapshot(label, server_id)
        snap.probe("server", lambda: get_server(self.admin, server_id))
        consumers = {server_id, migration_uuid} - {None}
        if self.placement is not None:
            placement = self.placement
            snap.probe("allocations", lambda: placement.allocations(server_id))
            snap.probe("migration_allocations",
                       lambda: placement.allocations(migration_uuid) if migration_uuid else {})
            for role in self.hosts:
                snap.probe(f"{role}_consumers", partial(self._consumers, placement, role, consumers))
                snap.probe(f"{role}_usages", partial(self._usages, placement, role))
        if migration_uuid:
            snap.probe("migration", lambda: next(m for m in migrations(self.admin, server_id)
                                                 if m["uuid"] == migration_uuid))
        for role, host in self.hosts.items():
            hypervisor = self.hypervisors.get(host) if on_hosts else None
            if hypervisor is not None:
                self._probe_host(snap, role, hypervisor, server_id)
        if attach:
            evidence.attach_json(f"snapshot {label}", snap.to_data())
        return snap

    def _consumers(self, placement: Placement, role: str,
                   consumers: set[str | None]) -> dict[str, dict[str, int]]:
        """The allocations on ``role``'s provider of the consumers in ``consumers``."""
        allocations = placement.provider_allocations(self.provider(role))
        return {c: r for c, r in allocations.items() if c in consumers}

    def _usages(self, placement: Placement, role: str) -> dict[str, int]:
        return placement.usages(self.provider(role))

    @staticmethod
    def _probe_host(snap: Snapshot, role: str, hypervisor: Hypervisor, uuid: str) -> None:
        snap.probe(f"{role}_view", lambda: host_view(hypervisor, uuid))
        for key in ("domain", "files", "resize_dir", "disk"):
            snap.probe(f"{role}_{key}", partial(_view_part, snap, f"{role}_view", key))

    def settle(self, label: str, server_id: str, until: Callable[[Snapshot], bool] | None = None, *,
               timeout: float, poll: Polling, migration_uuid: str | None = None,
               on_hosts: bool = True) -> Snapshot:
        """Snapshot until ``until`` holds (None: until every probe succeeded) or ``timeout`` passes.

        A snapshot with a failed probe (e.g. an SSH timeout) is never settled.
        Returns the last snapshot either way, so the test's assertion, not a
        timeout, reports a guarantee that never held.
        """
        last: list[Snapshot] = []

        def settled() -> bool:
            last[:] = [self.snapshot(label, server_id, migration_uuid, attach=False, on_hosts=on_hosts)]
            with contextlib.suppress(Exception):
                return not last[0].errors and (until is None or bool(until(last[0])))
            return False

        with contextlib.suppress(WaitTimeout):
            wait_until(settled, timeout=timeout, poll=poll, describe=f"{label} of {server_id} to settle")
        evidence.attach_json(f"snapshot {label}", last[0].to_data())
        return last[0]


class Stages(dict[str, Any]):
    """A scenario's records per server kind; a kind never recorded raises what stopped the scenario."""

    def __init__(self, scenario: Scenario):
        super().__init__()
        self.scenario = scenario

    def __missing__(self, kind: str) -> Any:
        if self.scenario.failure is not None:
            raise self.scenario.failure
        raise InfraError(f"the scenario recorded nothing for {kind!r}")


def add_stages(scenario: Scenario, *names: str) -> None:
    """Give ``scenario`` an empty :class:`Stages` record for each of ``names``."""
    for name in names:
        setattr(scenario, name, Stages(scenario))
