"""Pause and unpause: one server goes ACTIVE -> PAUSED -> ACTIVE per module.

The ``pause_cycle`` scenario acts once and snapshots the server at every depth
the profile reaches while active, paused and unpaused; each test asserts one
guarantee, and a test whose depth is absent skips on its fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import expect_action_events
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import server_action
from conformance.lib.trace import PAUSE, UNPAUSE, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts

pytestmark = requires("pause")


@pytest.fixture(scope="module")
def pause_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
                timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server booted, paused and unpaused, snapshotted at each stage."""
    cycle, member = Scenario("pause"), observer.member
    with cycle.acting():
        server_id = module_server_factory.create_server("pause", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        cycle.pause_reply = server_action(member, server_id, "pause")
        _, cycle.pause_trace = wait_for_server(member, server_id, status="PAUSED", poll=polling,
                                               timeout=timeouts.server_action, progress=progress)
        cycle.paused = observer.snapshot("paused", server_id)
        cycle.unpause_reply = server_action(member, server_id, "unpause")
        _, cycle.unpause_trace = wait_for_server(member, server_id, status="ACTIVE", poll=polling,
                                                 timeout=timeouts.server_action, progress=progress)
        cycle.unpaused = observer.snapshot("unpaused", server_id)
    return cycle


def _state(server: Any) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state


@guarantee("PAUSE-01")
def test_pause_and_unpause_end_states(pause_cycle: Scenario) -> None:
    """pause answers 202 and ends PAUSED/paused/power 3; unpause answers 202 and ends ACTIVE/power 1."""
    assert pause_cycle.pause_reply.status == 202, pause_cycle.pause_reply
    assert _state(pause_cycle.paused.server) == ("PAUSED", "paused", None, 3)
    assert pause_cycle.unpause_reply.status == 202, pause_cycle.unpause_reply
    assert _state(pause_cycle.unpaused.server) == ("ACTIVE", "active", None, 1)


@guarantee("PAUSE-02")
def test_pause_keeps_identity(pause_cycle: Scenario) -> None:
    """Pause and unpause keep the id, addresses, flavor, image and host (hostId) of the server."""
    def identity(server: Any) -> tuple[Any, ...]:
        return server.id, server.addresses, server.flavor, server.image_id, server.host_id

    before = identity(pause_cycle.active.server)
    assert identity(pause_cycle.paused.server) == before
    assert identity(pause_cycle.unpaused.server) == before


@guarantee("PAUSE-03")
def test_pause_trace_and_events(pause_cycle: Scenario, member: Any, timeouts: Timeouts,
                                polling: Polling) -> None:
    """Transitions stay in the pause/unpause machines; the actions record successful compute events."""
    server_id = pause_cycle.active.server_id
    check_trace(pause_cycle.pause_trace, PAUSE)
    check_trace(pause_cycle.unpause_trace, UNPAUSE)
    for action in ("pause", "unpause"):
        expect_action_events(member, server_id, action, [f"compute_{action}_instance"],
                             timeout=timeouts.settle, poll=polling)


@guarantee("PAUSE-04")
def test_pause_keeps_allocations(pause_cycle: Scenario, placement: Any) -> None:
    """A paused (and an unpaused) server holds the same Placement allocations as before."""
    before = pause_cycle.active.allocations

    assert before, "the active server holds no allocations"
    assert pause_cycle.paused.allocations == before
    assert pause_cycle.unpaused.allocations == before


@guarantee("PAUSE-05")
def test_domain_paused_then_running(pause_cycle: Scenario, hosts: Any) -> None:
    """While PAUSED the domain is paused on its host; after unpause it runs; the files are kept."""
    paused, unpaused = pause_cycle.paused, pause_cycle.unpaused

    assert paused.host in hosts, f"server is on {paused.host!r}, profile has hosts {sorted(hosts)}"
    assert paused.domain_state and paused.domain_state[0] == "paused", paused.domain_state
    assert unpaused.domain_state and unpaused.domain_state[0] == "running", unpaused.domain_state
    assert paused.instance_files, f"no instance directory for {paused.server_id} while paused"
    assert paused.instance_files == pause_cycle.active.instance_files
