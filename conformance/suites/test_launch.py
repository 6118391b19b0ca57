"""Launch (POST /servers): one server is booted per module; each depth is its own test.

The ``launched`` scenario boots the server once and snapshots it at every
depth the profile reaches; the tests below assert one guarantee each, and a
test whose depth is absent (no admin, no host access) skips on its fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee
from conformance.lib.actions import expect_action_events
from conformance.lib.observe import Observer, Scenario
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import interfaces
from conformance.lib.trace import LAUNCH, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts


@pytest.fixture(scope="module")
def launched(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
             timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """One server booted by the member, waited ACTIVE and snapshotted."""
    launch = Scenario("launch")
    with launch.acting():
        launch.created = module_server_factory.create_server("launch", **boot_spec.kwargs())
        _, launch.trace = wait_for_server(observer.member, launch.created.id, status="ACTIVE",
                                          timeout=timeouts.server_build, poll=polling, progress=progress)
        launch.active = observer.snapshot("active", launch.created.id)
    return launch


@guarantee("LAUNCH-01")
def test_create_reaches_active(launched: Scenario) -> None:
    """POST /servers answers 202 and the server ends ACTIVE, task null, power 1, launched_at set."""
    server = launched.active.server

    assert launched.created.reply.status == 202, launched.created.reply
    assert (server.status, server.vm_state, server.task_state) == ("ACTIVE", "active", None)
    assert server.power_state == 1
    assert server.launched_at


@guarantee("LAUNCH-02")
def test_server_has_requested_flavor_image_and_ip(launched: Scenario, boot_spec: BootSpec,
                                                  member: Any) -> None:
    """The server carries the requested flavor and image and a fixed IP on the requested network."""
    server = launched.active.server
    ports = interfaces(member, server.id)

    assert server.flavor.get("original_name") == boot_spec.flavor_name, server.flavor
    assert server.image_id == boot_spec.image_id
    assert server.ips, server.addresses
    if boot_spec.network not in ("auto", "none"):
        assert boot_spec.network in {p["net_id"] for p in ports if p.get("fixed_ips")}, ports


@guarantee("LAUNCH-03")
def test_host_shown_to_admin_only(launched: Scenario, admin: Any) -> None:
    """The admin sees the host and hypervisor of the server; the member sees neither."""
    admin_view, member_view = launched.active.admin_server, launched.active.server

    assert admin_view.host and admin_view.hypervisor_hostname, admin_view.data
    assert not member_view.shows_host_attributes(), member_view.data


@guarantee("LAUNCH-04")
def test_launch_trace_and_create_action(launched: Scenario, member: Any, timeouts: Timeouts,
                                        polling: Polling) -> None:
    """Statuses go BUILD -> ACTIVE and the `create` action records a successful build event."""
    check_trace(launched.trace, LAUNCH)
    expect_action_events(member, launched.created.id, "create", ["compute__do_build_and_run_instance"],
                         timeout=timeouts.settle, poll=polling)


@guarantee("LAUNCH-05")
def test_allocations_equal_flavor(launched: Scenario, placement: Any) -> None:
    """The instance consumer holds exactly the flavor's resources on its host's provider."""
    snap = launched.active

    assert snap.provider, "the admin view names no hypervisor_hostname"
    assert snap.allocations == {snap.provider: flavor_resources(snap.server.flavor)}


@guarantee("LAUNCH-06")
def test_domain_running_with_instance_files(launched: Scenario, hosts: Any) -> None:
    """The domain runs on the server's host, and the instance directory holds its files."""
    snap = launched.active

    assert snap.host in hosts, f"server is on {snap.host!r}, profile has hosts {sorted(hosts)}"
    assert snap.domain_state is not None, f"no domain {snap.server_id} on {snap.host}"
    assert snap.domain_state[0] == "running", snap.domain_state
    assert {"disk", "disk.info", "console.log"} <= set(snap.instance_files or []), snap.instance_files
    if snap.facts.get("admin_server"):  # the domain is found by UUID; its name needs the admin view
        assert snap.domain_name == snap.admin_server.instance_name
