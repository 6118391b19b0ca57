"""Stop and start (os-stop, os-start): one server goes ACTIVE -> SHUTOFF -> ACTIVE per module.

The ``power_cycle`` scenario acts once and snapshots the server at every depth
the profile reaches while active, stopped and started; each test asserts one
guarantee, and a test whose depth is absent skips on its fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee
from conformance.lib.actions import expect_action_events
from conformance.lib.inplace import identity, state
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import server_action
from conformance.lib.trace import START, STOP, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts

pytestmark = pytest.mark.xdist_group("power")  # every test reads the one `power_cycle` server

@pytest.fixture(scope="module")
def power_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
                timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server booted, stopped and started, snapshotted at each stage."""
    cycle, member = Scenario("power"), observer.member
    with cycle.acting():
        server_id = module_server_factory.create_server("power", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        cycle.stop_reply = server_action(member, server_id, "os-stop")
        _, cycle.stop_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                              timeout=timeouts.server_action, progress=progress)
        cycle.stopped = observer.snapshot("stopped", server_id)
        cycle.start_reply = server_action(member, server_id, "os-start")
        _, cycle.start_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                               timeout=timeouts.server_action, progress=progress)
        cycle.started = observer.snapshot("started", server_id)
    return cycle


@guarantee("POWER-01")
def test_stop_ends_shutoff(power_cycle: Scenario) -> None:
    """os-stop answers 202 and ends SHUTOFF/stopped/power 4, keeping id, addresses, flavor, image, host."""
    stopped = power_cycle.stopped.server

    assert power_cycle.stop_reply.status == 202, power_cycle.stop_reply
    assert state(stopped) == ("SHUTOFF", "stopped", None, 4)
    assert identity(stopped) == identity(power_cycle.active.server)


@guarantee("POWER-02")
def test_start_ends_active(power_cycle: Scenario) -> None:
    """os-start answers 202 and ends ACTIVE/active/power 1, keeping id, addresses, flavor, image, host."""
    started = power_cycle.started.server

    assert power_cycle.start_reply.status == 202, power_cycle.start_reply
    assert state(started) == ("ACTIVE", "active", None, 1)
    assert identity(started) == identity(power_cycle.active.server)


@guarantee("POWER-03")
def test_power_trace_and_events(power_cycle: Scenario, member: Any, timeouts: Timeouts,
                                polling: Polling) -> None:
    """Statuses go ACTIVE -> SHUTOFF -> ACTIVE; stop and start record their compute events."""
    server_id = power_cycle.active.server_id
    check_trace(power_cycle.stop_trace, STOP)
    check_trace(power_cycle.start_trace, START)
    for action in ("stop", "start"):
        expect_action_events(member, server_id, action, [f"compute_{action}_instance"],
                             timeout=timeouts.settle, poll=polling)


@guarantee("POWER-04")
def test_stop_keeps_allocations(power_cycle: Scenario, placement: Any) -> None:
    """A SHUTOFF server keeps its allocations, its host still counts them, and start keeps them."""
    before, stopped = power_cycle.active, power_cycle.stopped

    assert before.allocations, "the active server holds no allocations"
    assert stopped.allocations == before.allocations
    assert power_cycle.started.allocations == before.allocations
    held = stopped.allocations.get(stopped.provider, {})
    assert all(stopped.usages.get(rc, 0) >= n for rc, n in held.items()), (stopped.usages, held)


@guarantee("POWER-05")
def test_domain_shut_off_then_running(power_cycle: Scenario, hosts: Any) -> None:
    """While SHUTOFF the domain is defined and shut off (no managed save), files kept; start runs it."""
    stopped, started = power_cycle.stopped, power_cycle.started

    assert stopped.host in hosts, f"server is on {stopped.host!r}, profile has hosts {sorted(hosts)}"
    assert stopped.domain_state is not None, f"domain {stopped.server_id} is not defined while SHUTOFF"
    assert stopped.domain_state[0] == "shut off", stopped.domain_state
    assert stopped.dominfo.get("Managed save") == "no", stopped.dominfo
    assert "disk" in (stopped.instance_files or []), stopped.instance_files
    assert stopped.instance_files == power_cycle.active.instance_files
    assert started.domain_state and started.domain_state[0] == "running", started.domain_state
