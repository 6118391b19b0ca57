"""Terminate (DELETE /servers/{id}): one server is booted and deleted per module.

The ``terminated`` scenario snapshots the server while active, deletes it,
waits for the 404, then lets Placement and the host settle before the last
snapshot; each test asserts one guarantee on what was recorded.  While the
host's usage is measured, the scenario holds every server slot of the run,
so no other server of this run can change that usage meanwhile.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import conflicts_with, guarantee
from conformance.lib.actions import expect_action_events
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec, ServerFactory, ServerSlots
from conformance.lib.servers import delete_server
from conformance.lib.trace import DELETE, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_deleted, wait_for_server
from conformance.profile import Timeouts

# With soft delete configured, DELETE is a soft delete (see test_softdel.py, SOFTDEL-*).
pytestmark = conflicts_with("soft_delete")


def _cleaned_up(snap: Snapshot) -> bool:
    """Placement and the host show nothing left of the server (what the probes reached)."""
    facts = snap.facts
    return (facts.get("allocations", {}) == {} and facts.get("domain_state") is None
            and facts.get("instance_files") is None)


@pytest.fixture(scope="module")
def terminated(module_server_factory: ServerFactory, server_slots: ServerSlots, boot_spec: BootSpec,
               observer: Observer, timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server booted ACTIVE, snapshotted, deleted, and snapshotted once settled."""
    gone, member = Scenario("terminate"), observer.member
    with gone.acting(), server_slots.exclusive(timeout=timeouts.server_build + timeouts.cleanup):
        server_id = module_server_factory.create_server("terminate", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        gone.active = observer.snapshot("active", server_id)
        gone.delete_reply = delete_server(member, server_id)
        gone.trace = wait_for_deleted(member, server_id, timeout=timeouts.server_delete, poll=polling,
                                      progress=progress)
        where = gone.active.facts
        gone.deleted = observer.settle("deleted", server_id, _cleaned_up, timeout=timeouts.settle,
                                       poll=polling, host=where.get("host"), provider=where.get("provider"))
    return gone


@guarantee("DELETE-01")
def test_delete_answers_204_then_404(terminated: Scenario) -> None:
    """DELETE answers 204 and GET then answers 404, through the delete state machine."""
    assert terminated.delete_reply.status == 204, terminated.delete_reply
    assert terminated.deleted.server is None
    check_trace(terminated.trace, DELETE)


@guarantee("DELETE-02")
def test_delete_action_records_terminate(terminated: Scenario, member: Any, timeouts: Timeouts,
                                         polling: Polling) -> None:
    """The `delete` action records a successful compute_terminate_instance event."""
    # Actions of a deleted server need microversion 2.21+; the member's pinned default is higher.
    expect_action_events(member, terminated.active.server_id, "delete", ["compute_terminate_instance"],
                         timeout=timeouts.settle, poll=polling)


@guarantee("DELETE-03")
def test_delete_frees_allocations(terminated: Scenario, placement: Any) -> None:
    """After delete the consumer holds nothing and the host's usage dropped by the flavor."""
    before, after = terminated.active, terminated.deleted
    flavor = flavor_resources(before.server.flavor)

    assert after.allocations == {}
    assert after.usages == {rc: n - flavor.get(rc, 0) for rc, n in before.usages.items()}


@guarantee("DELETE-04")
def test_delete_removes_domain_and_files(terminated: Scenario, hosts: Any) -> None:
    """After delete the domain is undefined on its host and the instance directory is gone."""
    before, after = terminated.active, terminated.deleted

    assert before.host in hosts, f"server was on {before.host!r}, profile has hosts {sorted(hosts)}"
    assert before.domain_state is not None, "the domain was not there before the delete"
    assert after.domain_state is None, after.domain_state
    assert after.instance_files is None, after.instance_files
