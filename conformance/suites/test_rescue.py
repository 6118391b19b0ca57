"""Rescue and unrescue: one server per module, rescued twice.

The ``rescue_cycle`` scenario rescues an ACTIVE server, tries a SOFT and a
HARD reboot while it is rescued, and unrescues it; then it stops the server,
rescues and unrescues it again (unrescue must end ACTIVE even then).  It
snapshots the server at every depth the profile reaches at each stage; each
test asserts one guarantee on what was recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import expect_action_events
from conformance.lib.inplace import action_of_request, attempt, identity, state
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import get_server, server_action
from conformance.lib.trace import RESCUE, UNRESCUE, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts

pytestmark = [requires("rescue"), pytest.mark.xdist_group("rescue")]  # one `rescue_cycle` server


@pytest.fixture(scope="module")
def rescue_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
                 timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server rescued, rebooted while rescued, unrescued; then stopped and rescued again."""
    cycle, member = Scenario("rescue"), observer.member

    def settle() -> Any:
        return wait_for_server(member, server_id, status=None, timeout=timeouts.server_action, poll=polling,
                               progress=progress)

    with cycle.acting():
        server_id = module_server_factory.create_server("rescue", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        cycle.active = observer.snapshot("active", server_id)
        cycle.rescue_reply = server_action(member, server_id, "rescue")
        _, cycle.rescue_trace = settle()
        cycle.rescued = observer.snapshot("rescued", server_id)
        cycle.reboots = []
        for kind in ("SOFT", "HARD"):
            cycle.reboots.append(attempt(member, server_id, "reboot", {"type": kind}))
            if cycle.reboots[-1].status < 300:  # wrongly accepted: let it finish
                settle()
        cycle.after_reboots = get_server(member, server_id)
        cycle.unrescue_reply = server_action(member, server_id, "unrescue")
        _, cycle.unrescue_trace = settle()
        cycle.unrescued = observer.snapshot("unrescued", server_id)
        server_action(member, server_id, "os-stop")
        wait_for_server(member, server_id, status="SHUTOFF", timeout=timeouts.server_action, poll=polling)
        server_action(member, server_id, "rescue")
        settle()
        cycle.rescued_from_stopped = get_server(member, server_id)
        cycle.stopped_unrescue_reply = server_action(member, server_id, "unrescue")
        settle()
        cycle.unrescued_from_stopped = observer.snapshot("unrescued (was stopped)", server_id)
    return cycle


@guarantee("RESCUE-01")
def test_rescue_and_unrescue_end_states(rescue_cycle: Scenario) -> None:
    """rescue: 200, RESCUE/rescued/power 1; unrescue: 202, ACTIVE/power 1; identity kept."""
    rescued, unrescued = rescue_cycle.rescued.server, rescue_cycle.unrescued.server

    assert rescue_cycle.rescue_reply.status == 200, rescue_cycle.rescue_reply
    assert state(rescued) == ("RESCUE", "rescued", None, 1)
    assert rescue_cycle.unrescue_reply.status == 202, rescue_cycle.unrescue_reply
    assert state(unrescued) == ("ACTIVE", "active", None, 1)
    before = identity(rescue_cycle.active.server)
    assert identity(rescued) == before and identity(unrescued) == before


@guarantee("RESCUE-02")
def test_unrescue_of_stopped_server_ends_active(rescue_cycle: Scenario) -> None:
    """A server rescued from SHUTOFF is RESCUE, and unrescue still ends ACTIVE with power 1."""
    assert rescue_cycle.rescued_from_stopped.status == "RESCUE", rescue_cycle.rescued_from_stopped
    assert rescue_cycle.stopped_unrescue_reply.status == 202, rescue_cycle.stopped_unrescue_reply
    assert state(rescue_cycle.unrescued_from_stopped.server) == ("ACTIVE", "active", None, 1)


@guarantee("RESCUE-03")
def test_reboot_refused_while_rescued(rescue_cycle: Scenario, member: Any) -> None:
    """While RESCUE a SOFT and a HARD reboot are each 409, change nothing and record no action."""
    server_id = rescue_cycle.active.server_id

    assert [r.status for r in rescue_cycle.reboots] == [409, 409], [str(r) for r in rescue_cycle.reboots]
    assert state(rescue_cycle.after_reboots) == ("RESCUE", "rescued", None, 1)
    for refused in rescue_cycle.reboots:
        assert refused.request_id, f"the refusal carries no request id: {refused}"
        assert action_of_request(member, server_id, refused.request_id) is None, refused


@guarantee("RESCUE-04")
def test_rescue_trace_and_events(rescue_cycle: Scenario, member: Any, timeouts: Timeouts,
                                 polling: Polling) -> None:
    """Statuses go ACTIVE -> RESCUE -> ACTIVE; rescue and unrescue record their compute events."""
    server_id = rescue_cycle.active.server_id
    check_trace(rescue_cycle.rescue_trace, RESCUE)
    check_trace(rescue_cycle.unrescue_trace, UNRESCUE)
    for action, reply in (("rescue", rescue_cycle.rescue_reply), ("unrescue", rescue_cycle.unrescue_reply)):
        expect_action_events(member, server_id, action, [f"compute_{action}_instance"],
                             timeout=timeouts.settle, poll=polling, request_id=reply.request_id)


@guarantee("RESCUE-05")
def test_rescue_disk_on_host(rescue_cycle: Scenario, hosts: Any) -> None:
    """While RESCUE disk.rescue sits beside disk and the domain runs; unrescue removes every rescue file."""
    rescued, unrescued = rescue_cycle.rescued, rescue_cycle.unrescued

    assert rescued.host in hosts, f"server is on {rescued.host!r}, profile has hosts {sorted(hosts)}"
    assert {"disk", "disk.rescue"} <= set(rescued.instance_files or []), rescued.instance_files
    assert rescued.domain_state and rescued.domain_state[0] == "running", rescued.domain_state
    leftovers = [f for f in unrescued.instance_files or [] if f.endswith(".rescue") or f == "unrescue.xml"]
    assert "disk" in (unrescued.instance_files or []) and not leftovers, unrescued.instance_files
    assert unrescued.domain_state and unrescued.domain_state[0] == "running", unrescued.domain_state
