"""Cold migration with confirmResize and revertResize, between two leased hosts.

The ``cold_moves`` scenario leases a source and a destination host, boots two
admin servers on the source (2.74 ``host``), migrates both to the destination
(2.56 ``host``), confirms one and reverts the other.  A MoveObserver snapshots
both hosts, both Placement consumers and the server at each stage; migration
records are sampled while the waits run.  The servers are deleted before the
lease ends, and each test asserts one guarantee on what was recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.fixtures import LeaseHosts, ScopedFactory, optional
from conformance.lib.actions import expect_action_events
from conformance.lib.moves import (
    COLD_CONFIRMED,
    COLD_REVERTED,
    CONFIRM,
    MIGRATE,
    REVERT,
    MigrationLog,
    MoveObserver,
    add_stages,
    order_problem,
)
from conformance.lib.observe import Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec
from conformance.lib.servers import server_action
from conformance.lib.trace import check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

pytestmark = requires("cold_migration")

KINDS = ("confirm", "revert")


def _confirmed(snap: Snapshot) -> bool:
    """Nothing of the server is left on the source (at the depths probed)."""
    facts = snap.facts
    return (facts.get("migration_allocations", {}) == {} and facts.get("source_consumers", {}) == {}
            and facts.get("source_domain") is None and not facts.get("source_resize_dir"))


def _reverted(snap: Snapshot) -> bool:
    """Nothing of the server is left on the destination (at the depths probed)."""
    facts = snap.facts
    return (facts.get("migration_allocations", {}) == {} and facts.get("dest_consumers", {}) == {}
            and facts.get("dest_domain") is None)


@pytest.fixture(scope="module")
def cold_moves(request: pytest.FixtureRequest, lease_hosts: LeaseHosts, scoped_factory: ScopedFactory,
               admin: Any, boot_spec: BootSpec, timeouts: Timeouts, polling: Polling,
               progress: Progress) -> Scenario:
    """Two admin servers migrated source -> destination; one confirmed, one reverted."""
    moves = Scenario("cold migrate")
    with lease_hosts(2) as (source, dest), scoped_factory(admin) as factory, moves.acting():
        watch = MoveObserver(admin, source, dest, placement=optional(request, "placement"),
                             hypervisors=optional(request, "hosts"))
        moves.source, moves.dest, moves.watch = source, dest, watch
        ids = {kind: factory.create_server(f"migrate-{kind}", **boot_spec.kwargs(), host=source).id
               for kind in KINDS}
        moves.logs = {kind: MigrationLog(admin, ids[kind], "migration") for kind in KINDS}
        add_stages(moves, "active", "migrate_reply", "migrate_trace", "resized")
        for kind, server_id in ids.items():
            wait_for_server(admin, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                            progress=progress)
            moves.active[kind] = watch.snapshot(f"{kind}: active", server_id, on_hosts=False)
            moves.migrate_reply[kind] = server_action(admin, server_id, "migrate", {"host": dest})
            _, moves.migrate_trace[kind] = wait_for_server(
                admin, server_id, status="VERIFY_RESIZE", timeout=timeouts.migration, poll=polling,
                progress=progress, on_poll=moves.logs[kind].sample)
            migration_uuid = moves.logs[kind].latest()["uuid"]
            moves.resized[kind] = watch.settle(f"{kind}: resized", server_id, migration_uuid=migration_uuid,
                                               timeout=timeouts.settle, poll=polling,
                                               on_hosts=kind == "confirm")  # MIGRATE-06 reads it
        moves.resized_migration = {kind: moves.logs[kind].latest() for kind in KINDS}
        add_stages(moves, "end_reply", "end_trace", "done", "done_migration")
        for kind, action, settled in (("confirm", "confirmResize", _confirmed),
                                      ("revert", "revertResize", _reverted)):
            server_id, log = ids[kind], moves.logs[kind]
            moves.end_reply[kind] = server_action(admin, server_id, action)
            _, moves.end_trace[kind] = wait_for_server(admin, server_id, status="ACTIVE", poll=polling,
                                                       timeout=timeouts.migration, progress=progress,
                                                       on_poll=log.sample)
            moves.done[kind] = watch.settle(f"{kind}: done", server_id, settled, poll=polling,
                                            timeout=timeouts.settle,
                                            migration_uuid=log.latest()["uuid"])
            moves.done_migration[kind] = log.latest()
    return moves


def _identity(snap: Snapshot) -> tuple[Any, ...]:
    server = snap.server
    return server.id, server.addresses, server.image_id


@guarantee("MIGRATE-01")
def test_migrate_then_confirm_moves_the_server(cold_moves: Scenario) -> None:
    """migrate answers 202 and reaches VERIFY_RESIZE on the destination; confirm answers 204, ACTIVE there."""
    resized, confirmed = cold_moves.resized["confirm"].server, cold_moves.done["confirm"].server

    assert cold_moves.migrate_reply["confirm"].status == 202, cold_moves.migrate_reply["confirm"]
    assert (resized.status, resized.vm_state, resized.task_state) == ("VERIFY_RESIZE", "resized", None)
    assert resized.host == cold_moves.dest != cold_moves.source, resized.host
    assert resized.flavor == cold_moves.active["confirm"].server.flavor
    assert cold_moves.end_reply["confirm"].status == 204, cold_moves.end_reply["confirm"]
    assert (confirmed.status, confirmed.task_state, confirmed.host) == ("ACTIVE", None, cold_moves.dest)
    assert _identity(cold_moves.done["confirm"]) == _identity(cold_moves.active["confirm"])


@guarantee("MIGRATE-02")
def test_migration_record_statuses(cold_moves: Scenario) -> None:
    """The `migration` record is finished in VERIFY_RESIZE, then confirmed or reverted, in order."""
    for kind, end, order in (("confirm", "confirmed", COLD_CONFIRMED), ("revert", "reverted", COLD_REVERTED)):
        record, final, log = cold_moves.resized_migration[kind], cold_moves.done_migration[kind], \
            cold_moves.logs[kind]
        assert (record["migration_type"], record["status"]) == ("migration", "finished"), record
        assert final["status"] == end, final
        assert order_problem(log.statuses(final), order) is None, order_problem(log.statuses(final), order)


@guarantee("MIGRATE-03")
def test_migrate_trace_and_events(cold_moves: Scenario, admin: Any, timeouts: Timeouts,
                                  polling: Polling) -> None:
    """States follow migrate/confirm/revert; each action records its successful conductor/compute events."""
    for kind in KINDS:
        check_trace(cold_moves.migrate_trace[kind], MIGRATE)
    check_trace(cold_moves.end_trace["confirm"], CONFIRM)
    check_trace(cold_moves.end_trace["revert"], REVERT)
    for kind, action, events in (
            ("confirm", "migrate", ["conductor_migrate_server", "cold_migrate", "compute_prep_resize",
                                    "compute_resize_instance", "compute_finish_resize"]),
            ("confirm", "confirmResize", ["compute_confirm_resize"]),
            ("revert", "revertResize", ["compute_revert_resize", "compute_finish_revert_resize"])):
        expect_action_events(admin, cold_moves.active[kind].server_id, action, events,
                             timeout=timeouts.settle, poll=polling)


@guarantee("MIGRATE-04")
def test_verify_resize_allocations(cold_moves: Scenario, placement: Any) -> None:
    """In VERIFY_RESIZE the instance holds the flavor on the destination, the migration on the source."""
    snap, watch = cold_moves.resized["confirm"], cold_moves.watch
    flavor = flavor_resources(snap.server.flavor)

    assert snap.allocations == {watch.provider("dest"): flavor}
    assert snap.fact("migration_allocations") == {watch.provider("source"): flavor}


@guarantee("MIGRATE-05")
def test_confirm_frees_the_source(cold_moves: Scenario, placement: Any) -> None:
    """After confirm the migration holds nothing and the source provider lists neither consumer."""
    snap, watch = cold_moves.done["confirm"], cold_moves.watch

    assert snap.fact("migration_allocations") == {}
    assert snap.allocations == {watch.provider("dest"): flavor_resources(snap.server.flavor)}
    assert snap.fact("source_consumers") == {}


@guarantee("MIGRATE-06")
def test_confirm_cleans_the_source_host(cold_moves: Scenario, hosts: Any) -> None:
    """In VERIFY_RESIZE the source keeps <uuid>_resize and a shut-off domain; confirm removes both."""
    resized, confirmed = cold_moves.resized["confirm"], cold_moves.done["confirm"]

    assert resized.fact("source_resize_dir"), f"no <uuid>_resize on {cold_moves.source}"
    assert resized.fact("source_domain") and resized.fact("source_domain")[0] == "shut off"
    assert resized.fact("dest_domain") and resized.fact("dest_domain")[0] == "running"
    assert confirmed.fact("source_domain") is None, confirmed.fact("source_domain")
    assert not confirmed.fact("source_resize_dir"), f"<uuid>_resize left on {cold_moves.source}"


@guarantee("MIGRATE-07")
def test_revert_returns_to_the_source(cold_moves: Scenario) -> None:
    """revertResize answers 202 and the server ends ACTIVE on its source, with its id, IPs, flavor, image."""
    before, reverted = cold_moves.active["revert"], cold_moves.done["revert"].server

    assert cold_moves.end_reply["revert"].status == 202, cold_moves.end_reply["revert"]
    assert (reverted.status, reverted.task_state, reverted.host) == ("ACTIVE", None, cold_moves.source)
    assert _identity(cold_moves.done["revert"]) == _identity(before)
    assert reverted.flavor == before.server.flavor


@guarantee("MIGRATE-08")
def test_revert_restores_allocations(cold_moves: Scenario, placement: Any) -> None:
    """After revert the instance holds the flavor on the source only; the destination lists neither."""
    snap, watch = cold_moves.done["revert"], cold_moves.watch

    assert snap.allocations == {watch.provider("source"): flavor_resources(snap.server.flavor)}
    assert snap.fact("migration_allocations") == {}
    assert snap.fact("dest_consumers") == {}


@guarantee("MIGRATE-09")
def test_revert_cleans_the_destination_host(cold_moves: Scenario, hosts: Any, profile: Profile) -> None:
    """After revert the destination has no domain (nor dir, unshared) and the source runs from <uuid>."""
    snap = cold_moves.done["revert"]

    assert snap.fact("dest_domain") is None, snap.fact("dest_domain")
    if not profile.claims("shared_storage"):
        assert snap.fact("dest_files") is None, snap.fact("dest_files")
    assert snap.fact("source_domain") and snap.fact("source_domain")[0] == "running"
    assert snap.fact("source_files"), f"no instance directory on {cold_moves.source}"
    assert not snap.fact("source_resize_dir"), f"<uuid>_resize left on {cold_moves.source}"
