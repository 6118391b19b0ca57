"""Reboot SOFT and HARD: two servers per module.

``rebooted`` boots a server and reboots it SOFT, then HARD, snapshotting it
(with its domain's ``nova:creationTime``) before and after each; the request
ids of both reboots find their compute log lines.  ``recovered`` walks a second
server through each source state the profile can reach (SHUTOFF, PAUSED,
SUSPENDED): there a SOFT reboot must be refused and a HARD one must bring the
server back to ACTIVE.  Each test asserts one guarantee on what was recorded.
"""

from __future__ import annotations

import time
import types
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import expect_action_events
from conformance.lib.inplace import (
    action_of_request,
    attempt,
    creation_time,
    identity,
    log_lines_with,
    probe_host,
    state,
)
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import get_server, server_action
from conformance.lib.trace import REBOOT_HARD, REBOOT_SOFT, check_trace, hard_reboot_from
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

CREATION_TIME_RESOLUTION = 1.0  # nova:creationTime has whole seconds
# source status -> (capability needed, action that enters it); SHUTOFF needs none
SOURCES = {"SHUTOFF": (None, "os-stop"), "PAUSED": ("pause", "pause"), "SUSPENDED": ("suspend", "suspend")}
SOURCE_PARAMS = [pytest.param(s, marks=[requires(c)] if c else [], id=s) for s, (c, _) in SOURCES.items()]
SOFT, HARD = {"type": "SOFT"}, {"type": "HARD"}
# the tests that share one scenario run on one xdist worker; the two scenarios run side by side
REBOOTED, RECOVERED = pytest.mark.xdist_group("reboot-active"), pytest.mark.xdist_group("reboot-recovery")


def _snapshot(observer: Observer, label: str, server_id: str) -> Snapshot:
    snap = observer.snapshot(label, server_id)
    probe_host(observer, snap, "creation_time", lambda hv: creation_time(hv.libvirt.domain_xml(server_id)))
    return snap


@pytest.fixture(scope="module")
def rebooted(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
             timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server rebooted SOFT then HARD, snapshotted before and after each reboot."""
    cycle, member = Scenario("reboot"), observer.member
    with cycle.acting():
        server_id = module_server_factory.create_server("reboot", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        redefinable = time.monotonic() + CREATION_TIME_RESOLUTION
        cycle.active = _snapshot(observer, "active", server_id)
        time.sleep(max(0.0, redefinable - time.monotonic()))  # so a redefinition shows a later time
        cycle.soft_reply = server_action(member, server_id, "reboot", SOFT)
        _, cycle.soft_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                              timeout=timeouts.server_action, progress=progress)
        redefinable = time.monotonic() + CREATION_TIME_RESOLUTION
        cycle.soft = _snapshot(observer, "soft rebooted", server_id)
        time.sleep(max(0.0, redefinable - time.monotonic()))  # so a redefinition shows a later time
        cycle.hard_reply = server_action(member, server_id, "reboot", HARD)
        _, cycle.hard_trace = wait_for_server(member, server_id, status=None, poll=polling,
                                              timeout=timeouts.server_action, progress=progress)
        cycle.hard = _snapshot(observer, "hard rebooted", server_id)
    return cycle


def _enter(member: Any, server_id: str, source: str, timeouts: Timeouts, polling: Polling) -> None:
    server_action(member, server_id, SOURCES[source][1])
    wait_for_server(member, server_id, status=source, timeout=timeouts.server_action, poll=polling)


@pytest.fixture(scope="module")
def recovered(module_server_factory: ServerFactory, boot_spec: BootSpec, member: Any, profile: Profile,
              timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """Per claimed source state: a SOFT reboot attempt, then a HARD reboot back to ACTIVE."""
    walk = Scenario("reboot recovery")
    with walk.acting():
        server_id = module_server_factory.create_server("reboot-recovery", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        for source, (capability, _) in SOURCES.items():
            if capability and not profile.claims(capability):
                continue
            rec = types.SimpleNamespace(server_id=server_id)
            _enter(member, server_id, source, timeouts, polling)
            rec.before = get_server(member, server_id)
            rec.soft = attempt(member, server_id, "reboot", SOFT)
            rec.after_soft = get_server(member, server_id)
            if rec.soft.status < 300:  # wrongly accepted: let it finish and enter the state again
                wait_for_server(member, server_id, status=None, timeout=timeouts.server_action, poll=polling)
                _enter(member, server_id, source, timeouts, polling)
            rec.hard = attempt(member, server_id, "reboot", HARD)
            _, rec.trace = wait_for_server(member, server_id, status=None, poll=polling,
                                           timeout=timeouts.server_action, progress=progress)
            rec.after_hard = get_server(member, server_id)
            setattr(walk, source, rec)
    return walk


@guarantee("REBOOT-01")
@REBOOTED
def test_soft_reboot_ends_active(rebooted: Scenario) -> None:
    """A SOFT reboot answers 202 and ends ACTIVE/power 1, keeping id, addresses, flavor, image, host."""
    assert rebooted.soft_reply.status == 202, rebooted.soft_reply
    assert state(rebooted.soft.server) == ("ACTIVE", "active", None, 1)
    assert identity(rebooted.soft.server) == identity(rebooted.active.server)


@guarantee("REBOOT-02")
@REBOOTED
def test_hard_reboot_ends_active(rebooted: Scenario) -> None:
    """A HARD reboot answers 202 and ends ACTIVE/power 1, keeping id, addresses, flavor, image, host."""
    assert rebooted.hard_reply.status == 202, rebooted.hard_reply
    assert state(rebooted.hard.server) == ("ACTIVE", "active", None, 1)
    assert identity(rebooted.hard.server) == identity(rebooted.active.server)


@guarantee("REBOOT-03")
@RECOVERED
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_hard_reboot_recovers(recovered: Scenario, source: str) -> None:
    """A HARD reboot of a SHUTOFF, PAUSED or SUSPENDED server answers 202 and ends ACTIVE/power 1."""
    rec = getattr(recovered, source)

    assert rec.before.status == source, rec.before
    assert rec.hard.status == 202, rec.hard
    assert state(rec.after_hard) == ("ACTIVE", "active", None, 1)


@guarantee("REBOOT-04")
@RECOVERED
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_soft_reboot_refused(recovered: Scenario, member: Any, source: str) -> None:
    """A SOFT reboot of a SHUTOFF, PAUSED or SUSPENDED server is 409, changes nothing, records nothing."""
    rec = getattr(recovered, source)

    assert rec.soft.status == 409, rec.soft
    assert state(rec.after_soft) == state(rec.before)
    assert rec.soft.request_id, f"the refusal carries no request id: {rec.soft}"
    assert action_of_request(member, rec.server_id, rec.soft.request_id) is None


@guarantee("REBOOT-05")
@REBOOTED
def test_reboot_trace_and_events(rebooted: Scenario, member: Any, timeouts: Timeouts,
                                 polling: Polling) -> None:
    """SOFT shows only REBOOT, HARD only HARD_REBOOT; each reboot records compute_reboot_instance."""
    check_trace(rebooted.soft_trace, REBOOT_SOFT)
    check_trace(rebooted.hard_trace, REBOOT_HARD)
    for reply in (rebooted.soft_reply, rebooted.hard_reply):
        expect_action_events(member, rebooted.active.server_id, "reboot", ["compute_reboot_instance"],
                             timeout=timeouts.settle, poll=polling, request_id=reply.request_id)


@guarantee("REBOOT-05")
@RECOVERED
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_recovery_trace_and_events(recovered: Scenario, member: Any, source: str, timeouts: Timeouts,
                                   polling: Polling) -> None:
    """A HARD reboot from SHUTOFF, PAUSED or SUSPENDED shows only hard reboot task states."""
    rec = getattr(recovered, source)

    check_trace(rec.trace, hard_reboot_from(source))
    expect_action_events(member, rec.server_id, "reboot", ["compute_reboot_instance"],
                         timeout=timeouts.settle, poll=polling, request_id=rec.hard.request_id)


def _compute_log(hosts: Any, snap: Snapshot, request_id: str, needle: str, timeouts: Timeouts,
                 polling: Polling) -> list[str]:
    hypervisor = hosts[snap.host]
    if "nova_compute" not in hypervisor.logs:
        pytest.skip(f"profile names no nova_compute log on {snap.host}")
    return log_lines_with(hypervisor, request_id, needle, timeout=timeouts.settle, poll=polling)


@guarantee("REBOOT-06")
@REBOOTED
def test_soft_reboot_keeps_definition(rebooted: Scenario, hosts: Any, timeouts: Timeouts,
                                      polling: Polling) -> None:
    """A SOFT reboot restarts the same definition (new domain id) and logs a soft reboot."""
    before, after = rebooted.active, rebooted.soft
    assert after.host in hosts, f"server is on {after.host!r}, profile has hosts {sorted(hosts)}"
    lines = _compute_log(hosts, after, rebooted.soft_reply.request_id, "Instance soft rebooted successfully.",
                         timeouts, polling)

    assert before.fact("creation_time"), f"no nova:creationTime in the domain XML of {after.server_id}"
    assert after.fact("creation_time") == before.fact("creation_time"), "the domain was redefined"
    assert after.domain_state and after.domain_state[0] == "running", after.domain_state
    assert after.dominfo["Id"] not in ("-", (before.dominfo or {}).get("Id")), (before.dominfo, after.dominfo)
    assert any("Instance soft rebooted successfully." in line for line in lines), lines
    assert not any("Trying hard reboot" in line for line in lines), lines


@guarantee("REBOOT-07")
@REBOOTED
def test_hard_reboot_redefines(rebooted: Scenario, hosts: Any, timeouts: Timeouts, polling: Polling) -> None:
    """A HARD reboot redefines the domain (same name and UUID, files kept) and logs a hard reboot."""
    before, after = rebooted.soft, rebooted.hard
    assert after.host in hosts, f"server is on {after.host!r}, profile has hosts {sorted(hosts)}"
    lines = _compute_log(hosts, after, rebooted.hard_reply.request_id, "Instance rebooted successfully.",
                         timeouts, polling)

    assert after.fact("creation_time") not in (None, before.fact("creation_time")), "not redefined"
    assert after.domain_name == before.domain_name and after.dominfo["UUID"] == after.server_id
    assert after.domain_state and after.domain_state[0] == "running", after.domain_state
    assert "disk" in (after.instance_files or []) and after.instance_files == before.instance_files
    assert any("Instance rebooted successfully." in line for line in lines), lines
    assert not any("Instance soft rebooted successfully." in line for line in lines), lines
