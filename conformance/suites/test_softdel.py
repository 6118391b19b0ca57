"""Soft delete, restore and forceDelete, on a cloud that claims soft_delete.

There DELETE is a soft delete (reclaim_instance_interval > 0).  The
``soft_cycle`` scenario soft-deletes a server and restores it; the
``force_cycle`` scenario soft-deletes another and force-deletes it, holding
every server slot of the run while the host's usage is measured.  Each
scenario's server is gone before the next one starts.  forceDelete from the
other stable states runs per state, one server each.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.errors import GuaranteeViolation
from conformance.lib.actions import event_problems, expect_action_events, get_action
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec, ServerFactory, ServerSlots
from conformance.lib.servers import delete_server, server_action
from conformance.lib.states import Reacher, Unreachable, load_matrix
from conformance.lib.waiter import Polling, Progress, wait_for_deleted, wait_for_server
from conformance.profile import Timeouts

pytestmark = requires("soft_delete")

MATRIX = load_matrix()
# forceDelete has no state gate: every stable state but SOFT_DELETED (the force_cycle scenario).
FORCE_STATES = [pytest.param(s, marks=[requires(c)] if (c := MATRIX.states[s].capability) else [])
                for s in MATRIX.states if s != "SOFT_DELETED"]
SOFT = ("SOFT_DELETED", "soft-delete", None, 4)
CYCLES = pytest.mark.xdist_group("softdel-cycles")  # the tests that share the two scenarios


def _state(server: Any) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state


def _identity(server: Any) -> tuple[Any, ...]:
    return server.id, server.addresses, server.flavor, server.host_id


def _action(conn: Any, server_id: str, action: str, event: str, timeouts: Timeouts,
            polling: Polling) -> dict[str, Any]:
    """The newest ``action`` once ``event`` finished (or as last seen when time is up)."""
    with contextlib.suppress(GuaranteeViolation):
        return expect_action_events(conn, server_id, action, [event], timeout=timeouts.settle,
                                    poll=polling)
    return get_action(conn, server_id, action)


def _cleaned_up(snap: Snapshot) -> bool:
    facts = snap.facts
    return (facts.get("allocations", {}) == {} and facts.get("domain_state") is None
            and facts.get("instance_files") is None)


@pytest.fixture(scope="module")
def soft_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
               timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server booted, soft-deleted and restored, snapshotted at each stage."""
    cycle, member = Scenario("soft delete"), observer.member
    server_id = module_server_factory.create_server("softdel", **boot_spec.kwargs()).id
    with cycle.acting():
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        cycle.delete_reply = delete_server(member, server_id)
        wait_for_server(member, server_id, status="SOFT_DELETED", timeout=timeouts.server_delete,
                        poll=polling, progress=progress)
        cycle.soft = observer.snapshot("soft deleted", server_id)
        cycle.delete_action = _action(member, server_id, "delete", "compute_soft_delete_instance",
                                      timeouts, polling)
        cycle.restore_reply = server_action(member, server_id, "restore")
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_action, poll=polling,
                        progress=progress)
        cycle.restored = observer.snapshot("restored", server_id)
        cycle.restore_action = _action(member, server_id, "restore", "compute_restore_instance",
                                       timeouts, polling)
    with cycle.acting():
        module_server_factory.delete(server_id)
    return cycle


@pytest.fixture(scope="module")
def force_cycle(soft_cycle: Scenario, module_server_factory: ServerFactory, server_slots: ServerSlots,
                boot_spec: BootSpec, observer: Observer, timeouts: Timeouts, polling: Polling,
                progress: Progress) -> Scenario:
    """Alone in the run: a server booted, soft-deleted, force-deleted, snapshotted once settled."""
    cycle, member = Scenario("force delete"), observer.member
    with cycle.acting(), server_slots.exclusive(timeout=timeouts.server_build + timeouts.cleanup):
        server_id = module_server_factory.create_server("forcedel", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        delete_server(member, server_id)
        wait_for_server(member, server_id, status="SOFT_DELETED", timeout=timeouts.server_delete,
                        poll=polling, progress=progress)
        cycle.soft = observer.snapshot("soft deleted", server_id)
        cycle.force_reply = server_action(member, server_id, "forceDelete")
        wait_for_deleted(member, server_id, timeout=timeouts.server_delete, poll=polling, progress=progress)
        where = cycle.active.facts
        cycle.deleted = observer.settle("force deleted", server_id, _cleaned_up, poll=polling,
                                        timeout=timeouts.settle, host=where.get("host"),
                                        provider=where.get("provider"))
        cycle.force_action = _action(member, server_id, "delete", "compute_terminate_instance",
                                     timeouts, polling)
    return cycle


@CYCLES
@guarantee("SOFTDEL-01")
def test_delete_is_soft(soft_cycle: Scenario) -> None:
    """DELETE answers 204 and the server stays readable: SOFT_DELETED, soft-delete, power 4."""
    assert soft_cycle.delete_reply.status == 204, soft_cycle.delete_reply
    assert soft_cycle.soft.server is not None, "GET answers 404 after a soft delete"
    assert _state(soft_cycle.soft.server) == SOFT


@CYCLES
@guarantee("SOFTDEL-02")
def test_soft_delete_and_restore_events(soft_cycle: Scenario) -> None:
    """`delete` records compute_soft_delete_instance and `restore` compute_restore_instance."""
    problems = (event_problems(soft_cycle.delete_action, ["compute_soft_delete_instance"])
                + event_problems(soft_cycle.restore_action, ["compute_restore_instance"]))

    assert not problems, problems


@CYCLES
@guarantee("SOFTDEL-03")
def test_soft_deleted_keeps_allocations(force_cycle: Scenario, placement: Any) -> None:
    """A SOFT_DELETED server holds the same allocations, and its host the same usage, as before."""
    before, soft = force_cycle.active, force_cycle.soft

    assert before.allocations, "the active server holds no allocations"
    assert soft.allocations == before.allocations
    assert soft.usages == before.usages


@CYCLES
@guarantee("SOFTDEL-04")
def test_soft_deleted_domain_shut_off(soft_cycle: Scenario, hosts: Any) -> None:
    """While SOFT_DELETED the domain stays defined and shut off, and the instance files are kept."""
    before, soft = soft_cycle.active, soft_cycle.soft

    assert soft.host in hosts, f"server is on {soft.host!r}, profile has hosts {sorted(hosts)}"
    assert soft.domain_state and soft.domain_state[0] == "shut off", soft.domain_state
    assert soft.instance_files and soft.instance_files == before.instance_files


@CYCLES
@guarantee("SOFTDEL-05")
def test_restore_ends_active(soft_cycle: Scenario, placement: Any) -> None:
    """restore answers 202 and ends ACTIVE, power 1, with the same identity and allocations."""
    before, restored = soft_cycle.active, soft_cycle.restored

    assert soft_cycle.restore_reply.status == 202, soft_cycle.restore_reply
    assert _state(restored.server) == ("ACTIVE", "active", None, 1)
    assert _identity(restored.server) == _identity(before.server)
    assert restored.allocations == before.allocations


@CYCLES
@guarantee("SOFTDEL-06")
def test_force_delete_soft_deleted(force_cycle: Scenario) -> None:
    """forceDelete of a SOFT_DELETED server answers 202, then 404, with compute_terminate_instance."""
    assert force_cycle.force_reply.status == 202, force_cycle.force_reply
    assert force_cycle.deleted.server is None
    problems = event_problems(force_cycle.force_action, ["compute_terminate_instance"])
    assert not problems, problems


@guarantee("SOFTDEL-06")
@pytest.mark.parametrize("state", FORCE_STATES)
def test_force_delete_any_state(state: str, server_factory: ServerFactory, boot_spec: BootSpec,
                                reacher: Reacher, member: Any, timeouts: Timeouts,
                                polling: Polling) -> None:
    """forceDelete answers 202 in any other stable state too, then 404, with compute_terminate_instance."""
    try:
        server = reacher.boot(server_factory, boot_spec, state, f"forcedel-{state.lower()}")
    except Unreachable as exc:
        pytest.skip(str(exc))

    reply = server_action(member, server.id, "forceDelete")
    wait_for_deleted(member, server.id, timeout=timeouts.server_delete, poll=polling)
    assert reply.status == 202, reply
    if state != "SHELVED_OFFLOADED":  # no host: the API deletes locally and records no action
        expect_action_events(member, server.id, "delete", ["compute_terminate_instance"],
                             timeout=timeouts.settle, poll=polling)


@CYCLES
@guarantee("SOFTDEL-07")
def test_force_delete_frees_allocations(force_cycle: Scenario, placement: Any) -> None:
    """After forceDelete the consumer holds nothing and the host's usage dropped by the flavor."""
    before, after = force_cycle.active, force_cycle.deleted
    flavor = flavor_resources(before.server.flavor)

    assert after.allocations == {}
    assert after.usages == {rc: n - flavor.get(rc, 0) for rc, n in before.usages.items()}


@CYCLES
@guarantee("SOFTDEL-08")
def test_force_delete_removes_domain_and_files(force_cycle: Scenario, hosts: Any) -> None:
    """After forceDelete the domain is undefined on its host and the instance directory is gone."""
    soft, after = force_cycle.soft, force_cycle.deleted

    assert soft.host in hosts, f"server was on {soft.host!r}, profile has hosts {sorted(hosts)}"
    assert soft.domain_state is not None, "the domain was not there before the forceDelete"
    assert after.domain_state is None, after.domain_state
    assert after.instance_files is None, after.instance_files
