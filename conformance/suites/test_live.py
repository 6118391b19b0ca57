"""Live migration (os-migrateLive, block_migration "auto") between two leased hosts.

The ``live_moves`` scenario leases a source and a destination host, boots an
admin server on the source (2.74 ``host``) and, when the profile claims
``pause``, a second one that it pauses; it live-migrates each to the
destination and records the trace, the migration records and a MoveObserver
snapshot of both hosts before and after.  Without shared storage libvirt
block-migrates (LIVE-06); with a shared instances path it moves only the
guest (LIVE-07).  The servers are deleted before the lease ends.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.fixtures import LeaseHosts, ScopedFactory, optional
from conformance.lib.actions import expect_action_events
from conformance.lib.moves import LIVE, MigrationLog, MoveObserver, add_stages, order_problem, state_problems
from conformance.lib.observe import Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec
from conformance.lib.servers import server_action
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

pytestmark = requires("live_migration")

LIVE_EVENTS = ["conductor_live_migrate_instance", "compute_check_can_live_migrate_destination",
               "compute_check_can_live_migrate_source", "compute_pre_live_migration",
               "compute_live_migration", "compute_post_live_migration_at_destination"]


def _source_freed(snap: Snapshot) -> bool:
    """The source holds no domain and Placement nothing of the move (at the depths probed)."""
    facts = snap.facts
    return (facts.get("migration_allocations", {}) == {} and facts.get("source_consumers", {}) == {}
            and facts.get("source_domain") is None)


@pytest.fixture(scope="module")
def live_moves(request: pytest.FixtureRequest, profile: Profile, lease_hosts: LeaseHosts,
               scoped_factory: ScopedFactory, admin: Any, boot_spec: BootSpec, timeouts: Timeouts,
               polling: Polling, progress: Progress) -> Scenario:
    """An ACTIVE (and a PAUSED) admin server live-migrated from a leased source to a leased destination."""
    moves = Scenario("live migrate")
    kinds = {"active": "ACTIVE", **({"paused": "PAUSED"} if profile.claims("pause") else {})}
    with lease_hosts(2) as (source, dest), scoped_factory(admin) as factory, moves.acting():
        watch = MoveObserver(admin, source, dest, placement=optional(request, "placement"),
                             hypervisors=optional(request, "hosts"))
        moves.source, moves.dest, moves.watch = source, dest, watch
        add_stages(moves, "before", "reply", "trace", "after", "migration")
        for kind, status in kinds.items():
            server_id = factory.create_server(f"live-{kind}", **boot_spec.kwargs(), host=source).id
            wait_for_server(admin, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                            progress=progress)
            if status == "PAUSED":
                server_action(admin, server_id, "pause")
                wait_for_server(admin, server_id, status=status, timeout=timeouts.server_action,
                                poll=polling, progress=progress)
            moves.before[kind] = watch.settle(f"{kind}: before", server_id, timeout=timeouts.settle,
                                              poll=polling)
            log = MigrationLog(admin, server_id, "live-migration")
            moves.reply[kind] = server_action(admin, server_id, "os-migrateLive",
                                              {"host": dest, "block_migration": "auto"})
            _, moves.trace[kind] = wait_for_server(
                admin, server_id, status=status, timeout=timeouts.migration, poll=polling, progress=progress,
                predicate=lambda server: server.host == dest, on_poll=log.sample)
            moves.after[kind] = watch.settle(f"{kind}: after", server_id, _source_freed, poll=polling,
                                             timeout=timeouts.settle,
                                             migration_uuid=log.latest()["uuid"])
            moves.migration[kind] = (log, log.latest())
    return moves


def _identity(snap: Snapshot) -> tuple[Any, ...]:
    server = snap.server
    return server.id, server.addresses, server.flavor, server.image_id


@guarantee("LIVE-01")
def test_live_migration_moves_the_server(live_moves: Scenario) -> None:
    """os-migrateLive answers 202; the server ends ACTIVE, power 1, on another host with its identity."""
    server = live_moves.after["active"].server

    assert live_moves.reply["active"].status == 202, live_moves.reply["active"]
    assert (server.status, server.task_state, server.power_state) == ("ACTIVE", None, 1)
    assert server.host == live_moves.dest != live_moves.source, server.host
    assert _identity(live_moves.after["active"]) == _identity(live_moves.before["active"])


@guarantee("LIVE-02")
def test_active_server_never_leaves_active(live_moves: Scenario) -> None:
    """Every observed state of the moving ACTIVE server is vm_state active, power 1, ACTIVE or MIGRATING."""
    problems = state_problems(live_moves.trace["active"], vm_state="active", power_state=1,
                              statuses={"ACTIVE", "MIGRATING"})

    assert not problems, "observed outside active/running:\n" + "\n".join(problems)


@guarantee("LIVE-03")
@requires("pause")
def test_paused_server_stays_paused(live_moves: Scenario) -> None:
    """A PAUSED server stays vm_state paused, power 3 (PAUSED or MIGRATING), ends PAUSED on the new host."""
    server = live_moves.after["paused"].server
    problems = state_problems(live_moves.trace["paused"], vm_state="paused", power_state=3,
                              statuses={"PAUSED", "MIGRATING"})

    assert not problems, "observed outside paused:\n" + "\n".join(problems)
    assert (server.status, server.power_state, server.host) == ("PAUSED", 3, live_moves.dest)


@guarantee("LIVE-04")
def test_migration_record_and_events(live_moves: Scenario, admin: Any, timeouts: Timeouts,
                                     polling: Polling) -> None:
    """The live-migration record ends completed after statuses in order; the action records its events."""
    log, record = live_moves.migration["active"]

    assert (record["migration_type"], record["status"]) == ("live-migration", "completed"), record
    assert order_problem(log.statuses(record), LIVE) is None, order_problem(log.statuses(record), LIVE)
    expect_action_events(admin, record["instance_uuid"], "live-migration", LIVE_EVENTS,
                         timeout=timeouts.settle, poll=polling)


@guarantee("LIVE-05")
def test_live_migration_frees_the_source(live_moves: Scenario, placement: Any) -> None:
    """Afterwards the instance holds the flavor on the destination only; the migration holds nothing."""
    snap, watch = live_moves.after["active"], live_moves.watch

    assert snap.allocations == {watch.provider("dest"): flavor_resources(snap.server.flavor)}
    assert snap.fact("migration_allocations") == {}
    assert snap.fact("source_consumers") == {}


@guarantee("LIVE-06")
@requires("block_migration")
def test_block_migration_moves_the_instance_dir(live_moves: Scenario, hosts: Any) -> None:
    """The destination runs the domain from its own instance dir; the source keeps no domain and no dir."""
    before, after = live_moves.before["active"], live_moves.after["active"]

    assert before.fact("source_files") and before.fact("dest_files") is None
    assert after.fact("dest_domain") and after.fact("dest_domain")[0] == "running", after.fact("dest_domain")
    assert "disk" in (after.fact("dest_files") or []), after.fact("dest_files")
    assert after.fact("source_domain") is None, after.fact("source_domain")
    assert after.fact("source_files") is None, after.fact("source_files")


@guarantee("LIVE-07")
@requires("shared_storage")
def test_shared_storage_keeps_one_directory(live_moves: Scenario, hosts: Any) -> None:
    """With a shared instances path the one directory and its disk (same inode) serve the destination."""
    before, after = live_moves.before["active"], live_moves.after["active"]
    source, dest = hosts[live_moves.source], hosts[live_moves.dest]
    server_id = before.server_id

    assert source.files.path(server_id) == dest.files.path(server_id), "instances paths differ"
    assert before.fact("source_disk") and before.fact("source_disk") == before.fact("dest_disk")
    assert after.fact("dest_disk") == before.fact("source_disk"), "the disk was copied, not shared"
    assert after.fact("source_files") == after.fact("dest_files")
    assert after.fact("source_domain") is None, after.fact("source_domain")
    assert after.fact("dest_domain") and after.fact("dest_domain")[0] == "running"
