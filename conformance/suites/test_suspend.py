"""Suspend and resume: one server goes ACTIVE -> SUSPENDED -> ACTIVE per module.

The ``suspend_cycle`` scenario acts once and snapshots the server at every
depth the profile reaches while active, suspended and resumed; each test
asserts one guarantee, and a test whose depth is absent skips on its fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import expect_action_events
from conformance.lib.inplace import identity, state
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import server_action
from conformance.lib.trace import RESUME, SUSPEND, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts

pytestmark = [requires("suspend"), pytest.mark.xdist_group("suspend")]  # one `suspend_cycle` server


@pytest.fixture(scope="module")
def suspend_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
                  timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server booted, suspended and resumed, snapshotted at each stage."""
    cycle, member = Scenario("suspend"), observer.member
    with cycle.acting():
        server_id = module_server_factory.create_server("suspend", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        cycle.suspend_reply = server_action(member, server_id, "suspend")
        _, cycle.suspend_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                                 timeout=timeouts.server_action, progress=progress)
        cycle.suspended = observer.snapshot("suspended", server_id)
        cycle.resume_reply = server_action(member, server_id, "resume")
        _, cycle.resume_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                                timeout=timeouts.server_action, progress=progress)
        cycle.resumed = observer.snapshot("resumed", server_id)
    return cycle


@guarantee("SUSPEND-01")
def test_suspend_and_resume_end_states(suspend_cycle: Scenario) -> None:
    """suspend: 202, SUSPENDED with power 4 (not 7); resume: 202, ACTIVE/power 1; identity kept."""
    suspended, resumed = suspend_cycle.suspended.server, suspend_cycle.resumed.server

    assert suspend_cycle.suspend_reply.status == 202, suspend_cycle.suspend_reply
    assert state(suspended) == ("SUSPENDED", "suspended", None, 4)
    assert suspend_cycle.resume_reply.status == 202, suspend_cycle.resume_reply
    assert state(resumed) == ("ACTIVE", "active", None, 1)
    before = identity(suspend_cycle.active.server)
    assert identity(suspended) == before and identity(resumed) == before


@guarantee("SUSPEND-02")
def test_suspend_trace_and_events(suspend_cycle: Scenario, member: Any, timeouts: Timeouts,
                                  polling: Polling) -> None:
    """Statuses go ACTIVE -> SUSPENDED -> ACTIVE; suspend and resume record their compute events."""
    server_id = suspend_cycle.active.server_id
    check_trace(suspend_cycle.suspend_trace, SUSPEND)
    check_trace(suspend_cycle.resume_trace, RESUME)
    for action in ("suspend", "resume"):
        expect_action_events(member, server_id, action, [f"compute_{action}_instance"],
                             timeout=timeouts.settle, poll=polling)


@guarantee("SUSPEND-03")
def test_suspend_keeps_allocations(suspend_cycle: Scenario, placement: Any) -> None:
    """A SUSPENDED server keeps its allocations, its host still counts them, and resume keeps them."""
    before, suspended = suspend_cycle.active, suspend_cycle.suspended

    assert before.allocations, "the active server holds no allocations"
    assert suspended.allocations == before.allocations
    assert suspend_cycle.resumed.allocations == before.allocations
    held = suspended.allocations.get(suspended.provider, {})
    assert all(suspended.usages.get(rc, 0) >= n for rc, n in held.items()), (suspended.usages, held)


@guarantee("SUSPEND-04")
def test_domain_managed_saved(suspend_cycle: Scenario, hosts: Any) -> None:
    """While SUSPENDED the domain is shut off with a managed-save image; resume runs it without one."""
    suspended, resumed = suspend_cycle.suspended, suspend_cycle.resumed

    assert suspended.host in hosts, f"server is on {suspended.host!r}, profile has hosts {sorted(hosts)}"
    assert suspended.domain_state and suspended.domain_state[0] == "shut off", suspended.domain_state
    assert suspended.dominfo.get("Managed save") == "yes", suspended.dominfo
    assert suspended.instance_files == suspend_cycle.active.instance_files
    assert resumed.domain_state and resumed.domain_state[0] == "running", resumed.domain_state
    assert resumed.dominfo.get("Managed save") == "no", resumed.dominfo
