"""Evacuate (admin) from a fenced host, and its refusal while the source is up.

The ``evacuated`` scenario leases a source and a destination host, boots
admin servers on the source (2.74 ``host``), drains the source (disabled, no
other test's server left on it), fences it with the profile's host_control
method, evacuates one server at 2.94 (stays ACTIVE) and, where the cloud
offers 2.95, one that must end SHUTOFF.  It snapshots both hosts while the
source is down and again after the source's nova-compute is back, then
unfences, re-enables the source and deletes the servers before the lease ends.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.fixtures import LeaseHosts, ScopedFactory, optional
from conformance.lib.actions import expect_action_events, list_actions
from conformance.lib.api import max_microversion, status_of, version_tuple
from conformance.lib.hostcontrol import Fencer, drain, enable, wait_service
from conformance.lib.moves import (
    EVACUATE,
    EVACUATE_STOPPED,
    MigrationLog,
    MoveObserver,
    add_stages,
    event_finished,
    migrations,
)
from conformance.lib.observe import Scenario, Snapshot
from conformance.lib.placement import Placement, flavor_resources
from conformance.lib.resources import BootSpec
from conformance.lib.servers import get_server, server_action
from conformance.lib.trace import check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

pytestmark = requires("evacuate")

# kind -> microversion of the evacuate call (2.95: the server must end SHUTOFF)
KINDS = {"kept": "2.94", "stopped": "2.95"}
REBUILD_EVENT = "compute_rebuild_instance"


def _source_cleaned(snap: Snapshot) -> bool:
    """The restarted source holds nothing of the server and the migration is completed."""
    facts = snap.facts
    return (facts.get("source_consumers", {}) == {} and facts.get("source_domain") is None
            and facts.get("migration", {}).get("status") == "completed")


@pytest.fixture(scope="module")
def evacuated(request: pytest.FixtureRequest, lease_hosts: LeaseHosts, scoped_factory: ScopedFactory,
              fencer: Fencer, admin: Any, placement: Placement, boot_spec: BootSpec, timeouts: Timeouts,
              polling: Polling, progress: Progress) -> Scenario:
    """Admin servers evacuated from a fenced, drained source; observed down and after its restart."""
    evac = Scenario("evacuate")
    kinds = {k: v for k, v in KINDS.items() if version_tuple(max_microversion(admin) or "2.1")
             >= version_tuple(v)}
    with lease_hosts(2, exclusive=1) as (source, dest), scoped_factory(admin) as factory, evac.acting(), \
            contextlib.ExitStack() as restore:
        if not fencer.can_fence(source):
            pytest.skip(f"host_control cannot reach {source}")
        watch = MoveObserver(admin, source, dest, placement=placement, hypervisors=optional(request, "hosts"))
        evac.source, evac.dest, evac.watch, evac.kinds = source, dest, watch, kinds
        ids = {kind: factory.create_server(f"evacuate-{kind}", **boot_spec.kwargs(), host=source).id
               for kind in kinds}
        add_stages(evac, "before")
        for kind, server_id in ids.items():
            wait_for_server(admin, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                            progress=progress)
            evac.before[kind] = watch.snapshot(f"{kind}: before", server_id, on_hosts=False)
        restore.callback(enable, admin, source)
        drain(admin, placement, source, watch.provider("source"), ids.values(), timeout=timeouts.host_lease,
              poll=polling)
        restore.callback(fencer.unfence, source)
        fencer.fence(source)
        wait_service(admin, source, up=False, timeout=timeouts.server_action, poll=polling)
        add_stages(evac, "reply", "trace", "fenced", "uuid")
        for kind, version in kinds.items():
            evac.reply[kind] = server_action(admin, ids[kind], "evacuate", {"host": dest},
                                             microversion=version)
            # the end state is read once the destination's rebuild (with its stop at 2.95) is over
            _, evac.trace[kind] = wait_for_server(
                admin, ids[kind], status=None, timeout=timeouts.migration, poll=polling, progress=progress,
                predicate=lambda server: event_finished(admin, server.id, "evacuate", REBUILD_EVENT))
            evac.uuid[kind] = MigrationLog(admin, ids[kind], "evacuation").latest()["uuid"]
            evac.fenced[kind] = watch.snapshot(f"{kind}: source down", ids[kind], evac.uuid[kind],
                                               on_hosts=False)
        fencer.unfence(source)
        wait_service(admin, source, up=True, timeout=timeouts.server_action, poll=polling)
        # the restarted compute cleans every evacuated server up in one pass (init_host): the first
        # wait covers the restart, the others only what follows it
        evac.after = {kind: watch.settle(f"{kind}: source back", ids[kind], _source_cleaned, poll=polling,
                                         timeout=timeouts.settle if n else timeouts.server_action,
                                         migration_uuid=evac.uuid[kind])
                      for n, kind in enumerate(kinds)}
    return evac


def _identity(snap: Snapshot) -> tuple[Any, ...]:
    server = snap.server
    return server.id, server.addresses, server.flavor, server.image_id


@guarantee("EVACUATE-01")
def test_evacuate_refused_while_source_up(scoped_factory: ScopedFactory, admin: Any, boot_spec: BootSpec,
                                          timeouts: Timeouts, polling: Polling) -> None:
    """Evacuate while the source nova-compute is up answers 400; nothing changes, nothing is recorded."""
    with scoped_factory(admin) as factory:
        server_id = factory.create_server("evacuate-up", **boot_spec.kwargs()).id
        before, _ = wait_for_server(admin, server_id, status="ACTIVE", timeout=timeouts.server_build,
                                    poll=polling)
        status = status_of(lambda: server_action(admin, server_id, "evacuate", {}, microversion="2.94"))
        after = get_server(admin, server_id)

        assert status == 400, f"evacuate with the source up answered {status}"
        assert (after.status, after.task_state, after.host) == ("ACTIVE", None, before.host), after
        assert "evacuate" not in [a["action"] for a in list_actions(admin, server_id)]
        assert migrations(admin, server_id, "evacuation") == []


@guarantee("EVACUATE-02")
def test_evacuate_keeps_an_active_server(evacuated: Scenario) -> None:
    """At 2.94 evacuate answers 200 with no body; the server ends ACTIVE, power 1, on another host."""
    server = evacuated.fenced["kept"].server

    assert (evacuated.reply["kept"].status, evacuated.reply["kept"].body) == (200, None)
    assert (server.status, server.task_state, server.power_state) == ("ACTIVE", None, 1)
    assert server.host == evacuated.dest != evacuated.source, server.host
    assert _identity(evacuated.fenced["kept"]) == _identity(evacuated.before["kept"])


@guarantee("EVACUATE-03")
def test_evacuate_at_2_95_stops_the_server(evacuated: Scenario) -> None:
    """At >= 2.95 evacuate answers 200; the server ends SHUTOFF (stopped, power 4) on another host."""
    if "stopped" not in evacuated.kinds:
        pytest.skip("the cloud's maximum compute microversion is below 2.95")
    server = evacuated.fenced["stopped"].server

    assert evacuated.reply["stopped"].status == 200, evacuated.reply["stopped"]
    assert (server.status, server.vm_state, server.task_state, server.power_state) == \
        ("SHUTOFF", "stopped", None, 4)
    assert server.host == evacuated.dest, server.host
    assert _identity(evacuated.fenced["stopped"]) == _identity(evacuated.before["stopped"])


@guarantee("EVACUATE-04")
def test_evacuate_trace_events_and_record(evacuated: Scenario, admin: Any, timeouts: Timeouts,
                                          polling: Polling) -> None:
    """REBUILD then the end state; rebuild events succeed; the evacuation record is `done` while down."""
    for kind in evacuated.kinds:
        check_trace(evacuated.trace[kind], EVACUATE if kind == "kept" else EVACUATE_STOPPED)
        record = evacuated.fenced[kind].fact("migration")
        assert (record["migration_type"], record["status"]) == ("evacuation", "done"), record
        events = ["rebuild_server", REBUILD_EVENT] + (["compute_stop_instance"]
                                                                    if kind == "stopped" else [])
        expect_action_events(admin, record["instance_uuid"], "evacuate", events,
                             timeout=timeouts.settle, poll=polling)


@guarantee("EVACUATE-05")
def test_allocations_doubled_while_source_down(evacuated: Scenario, placement: Any) -> None:
    """Until the source restarts the instance holds the flavor on both hosts; no migration consumer."""
    watch = evacuated.watch
    for snap in evacuated.fenced.values():
        flavor = flavor_resources(snap.server.flavor)
        assert snap.allocations == {watch.provider("source"): flavor, watch.provider("dest"): flavor}
        assert snap.fact("migration_allocations") == {}


@guarantee("EVACUATE-06")
def test_source_restart_frees_the_source(evacuated: Scenario, placement: Any) -> None:
    """After the source restarts the instance holds the flavor on the destination only; the source none."""
    watch = evacuated.watch
    for snap in evacuated.after.values():
        assert snap.allocations == {watch.provider("dest"): flavor_resources(snap.server.flavor)}
        assert snap.fact("source_consumers") == {}


@guarantee("EVACUATE-07")
def test_migration_completed_after_restart(evacuated: Scenario) -> None:
    """After the source restarts each evacuation record is `completed`."""
    for snap in evacuated.after.values():
        record = snap.fact("migration")
        assert record["status"] == "completed", record


@guarantee("EVACUATE-08")
def test_source_host_cleaned_after_restart(evacuated: Scenario, hosts: Any, profile: Profile) -> None:
    """After the source restarts it has no domain (nor, unshared, dir); the destination holds the domain."""
    for kind, snap in evacuated.after.items():
        assert snap.fact("source_domain") is None, snap.fact("source_domain")
        if not profile.claims("shared_storage"):
            assert snap.fact("source_files") is None, snap.fact("source_files")
        state = snap.fact("dest_domain")
        assert state and state[0] == ("running" if kind == "kept" else "shut off"), state
