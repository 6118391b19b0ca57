"""Shelve, shelve-offload and unshelve: one server goes through the whole cycle per module.

The ``shelve_cycle`` scenario boots a server, shelves it, tries the refused
calls on the SHELVED server (unshelve with an AZ or a host, a member's
offload), offloads it as the admin, unshelves it, and (with
``unshelve_to_host``) shelves and offloads it again to unshelve it onto a
named host.  It snapshots the server at every depth at each stage.  Host
usage is judged by what the host's resource provider lists for this server's
consumer (GET /resource_providers/{rp}/allocations), so other servers on the
same host, of this run or not, do not disturb it.
"""

from __future__ import annotations

from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import expect_action_events
from conformance.lib.api import call, max_microversion, status_of, version_tuple
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import get_server, interfaces, server_action
from conformance.lib.trace import SHELVE, SHELVE_OFFLOAD, UNSHELVE, StateMachine, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Profile, Timeouts

pytestmark = requires("shelve")

AZ_MICROVERSION, HOST_MICROVERSION = "2.77", "2.91"
SHELVE_AUTO_OFFLOAD = StateMachine("shelve (offloaded at once)", SHELVE.phases[:-1] + SHELVE_OFFLOAD.phases)


def _ports(conn: Any, server_id: str) -> list[tuple[Any, ...]]:
    """(port id, MAC, fixed IPs) of every port of the server."""
    return sorted((p["port_id"], p["mac_addr"], tuple(sorted(ip["ip_address"] for ip in p["fixed_ips"])))
                  for p in interfaces(conn, server_id))


def _shelved_images(conn: Any, server_name: str) -> list[dict[str, Any]]:
    """Glance images named ``<server name>-shelved``."""
    return list(call(conn, "GET", "/images", service="image",
                     params={"name": f"{server_name}-shelved"}).body["images"])


def _supports(conn: Any, microversion: str) -> bool:
    top = max_microversion(conn)
    return top is not None and version_tuple(top) >= version_tuple(microversion)


def _freed(snap: Snapshot) -> bool:
    """Offload is complete: no host, no allocations, no domain or files (what the probes reached)."""
    facts, admin_view = snap.facts, snap.facts.get("admin_server")
    return ((admin_view is None or admin_view.host is None) and facts.get("allocations", {}) == {}
            and facts.get("domain_state") is None and facts.get("instance_files") is None)


def _on_provider(observer: Observer, snap: Snapshot) -> Snapshot:
    """Add ``on_provider``: what the host's provider lists for this server's consumer (None: nothing)."""
    placement, provider = observer.placement, snap.facts.get("provider")
    if placement is not None and provider:
        snap.probe("on_provider", lambda: placement.provider_allocations(provider).get(snap.server_id))
    return snap


def _compute_hosts(admin: Any) -> list[str]:
    """Enabled nova-compute hosts that are up."""
    services = call(admin, "GET", "/os-services", params={"binary": "nova-compute"}).body["services"]
    return sorted(s["host"] for s in services if s["state"] == "up" and s["status"] == "enabled")


def _unshelve(conn: Any, server_id: str, body: dict[str, Any], microversion: str) -> int:
    return status_of(lambda: server_action(conn, server_id, "unshelve", body, microversion=microversion))


def _conflicts(member: Any, admin: Any, server: Any) -> dict[str, int]:
    """Statuses of unshelve calls with an AZ or a host on a SHELVED (not offloaded) server."""
    az = server.data.get("OS-EXT-AZ:availability_zone") or "nova"
    if not _supports(member, HOST_MICROVERSION):
        return {"member AZ": _unshelve(member, server.id, {"availability_zone": az}, AZ_MICROVERSION)}
    host = get_server(admin, server.id).host or "any-host"
    return {"member AZ": _unshelve(member, server.id, {"availability_zone": az}, HOST_MICROVERSION),
            "admin host": _unshelve(admin, server.id, {"host": host}, HOST_MICROVERSION),
            "member host": _unshelve(member, server.id, {"host": host}, HOST_MICROVERSION)}


def _shelve_and_offload(member: Any, admin: Any, server_id: str, timeouts: Timeouts,
                        polling: Polling) -> None:
    """Shelve again (member) and offload (admin), waiting for host null; for unshelve-to-host."""
    server_action(member, server_id, "shelve")
    wait_for_server(admin, server_id, status="SHELVED", timeout=timeouts.snapshot, poll=polling)
    server_action(admin, server_id, "shelveOffload")
    wait_for_server(admin, server_id, status="SHELVED_OFFLOADED", timeout=timeouts.server_action,
                    poll=polling, predicate=lambda s: s.host is None)


def _to_host(cycle: Scenario, server_id: str, member: Any, admin: Any, timeouts: Timeouts,
             polling: Polling) -> None:
    """Shelve and offload again, then unshelve onto a named host: as the member, then the admin."""
    _shelve_and_offload(member, admin, server_id, timeouts, polling)
    hosts = _compute_hosts(admin)
    cycle.target = next((h for h in hosts if h != cycle.unshelved.host), hosts[0])
    cycle.member_to_host = _unshelve(member, server_id, {"host": cycle.target}, HOST_MICROVERSION)
    cycle.after_member_to_host = get_server(admin, server_id)
    if cycle.member_to_host >= 300:
        cycle.to_host_reply = server_action(admin, server_id, "unshelve", {"host": cycle.target},
                                            microversion=HOST_MICROVERSION)
    wait_for_server(admin, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling)
    cycle.to_host = get_server(admin, server_id)


def _shelve_and_offload_first(cycle: Scenario, observer: Observer, server_id: str, offload: bool,
                              timeouts: Timeouts, polling: Polling, progress: Progress) -> None:
    """Shelve (member); on SHELVED try the refused calls, then offload (admin) and let it settle."""
    member, admin = observer.member, observer.admin
    cycle.active = _on_provider(observer, observer.snapshot("active", server_id))
    cycle.ports_active = _ports(member, server_id)
    cycle.shelve_reply = server_action(member, server_id, "shelve")
    shelved = "SHELVED" if offload else "SHELVED_OFFLOADED"
    _, cycle.shelve_trace = wait_for_server(member, server_id, status=shelved, timeout=timeouts.snapshot,
                                            poll=polling, progress=progress)
    cycle.shelved = _on_provider(observer, observer.snapshot("shelved", server_id))
    cycle.images_shelved = _shelved_images(member, cycle.name)
    if offload:
        cycle.conflicts = _conflicts(member, admin, cycle.shelved.server)
        cycle.member_offload = status_of(lambda: server_action(member, server_id, "shelveOffload"))
        cycle.after_refusals = get_server(member, server_id)
        if cycle.member_offload >= 300:
            cycle.offload_reply = server_action(admin, server_id, "shelveOffload")
        _, cycle.offload_trace = wait_for_server(admin, server_id, status="SHELVED_OFFLOADED",
                                                 timeout=timeouts.server_action, poll=polling)
    where = cycle.active.facts
    cycle.offloaded = _on_provider(observer, observer.settle(
        "offloaded", server_id, _freed, timeout=timeouts.settle, poll=polling, host=where.get("host"),
        provider=where.get("provider")))
    cycle.images_offloaded = _shelved_images(member, cycle.name)
    cycle.ports_offloaded = _ports(member, server_id)


@pytest.fixture(scope="module")
def shelve_cycle(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
                 profile: Profile, timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's server shelved, offloaded and unshelved, snapshotted at each stage."""
    cycle, member, admin = Scenario("shelve"), observer.member, observer.admin
    cycle.explicit_offload = offload = admin is not None and profile.claims("shelve_offload")
    with cycle.acting():
        created = module_server_factory.create_server("shelve", **boot_spec.kwargs())
        server_id, cycle.name = created.id, created.name
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        _shelve_and_offload_first(cycle, observer, server_id, offload, timeouts, polling, progress)
        cycle.unshelve_reply = server_action(member, server_id, "unshelve")
        _, cycle.unshelve_trace = wait_for_server(member, server_id, status="ACTIVE", poll=polling,
                                                  timeout=timeouts.server_build, progress=progress)
        cycle.unshelved = observer.snapshot("unshelved", server_id)
        cycle.images_unshelved = _shelved_images(member, created.name)
        if offload and profile.claims("unshelve_to_host") and _supports(member, HOST_MICROVERSION):
            _to_host(cycle, server_id, member, admin, timeouts, polling)
    return cycle


def _state(server: Any) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state


def _identity(server: Any) -> tuple[Any, ...]:
    return server.id, server.addresses, server.flavor


@guarantee("SHELVE-01")
@requires("shelve_offload")
def test_shelve_reaches_shelved(shelve_cycle: Scenario) -> None:
    """shelve answers 202; SHELVED, task null, power 4, same host (hostId), id, addresses, flavor."""
    active, shelved = shelve_cycle.active.server, shelve_cycle.shelved.server

    assert shelve_cycle.shelve_reply.status == 202, shelve_cycle.shelve_reply
    assert _state(shelved) == ("SHELVED", "shelved", None, 4)
    assert shelved.host_id == active.host_id, "the SHELVED server left its host"
    assert _identity(shelved) == _identity(active)


@guarantee("SHELVE-02")
def test_shelved_image_lives_until_unshelve(shelve_cycle: Scenario) -> None:
    """'<name>-shelved' (snapshot of this server) is active while shelved and gone after unshelve."""
    server_id = shelve_cycle.active.server_id
    for images in (shelve_cycle.images_shelved, shelve_cycle.images_offloaded):
        assert len(images) == 1, f"expected one image {shelve_cycle.name}-shelved, found {images}"
        image = images[0]
        assert (image["status"], image.get("image_type"), image.get("instance_uuid")) == \
            ("active", "snapshot", server_id), image
    assert shelve_cycle.images_unshelved == [], "the shelved image is still there after unshelve"


@guarantee("SHELVE-03")
@requires("shelve_offload")
def test_shelved_keeps_allocations(shelve_cycle: Scenario, placement: Any) -> None:
    """A SHELVED server holds the same allocations as when ACTIVE, and its host's provider lists them."""
    active, shelved = shelve_cycle.active, shelve_cycle.shelved
    flavor = flavor_resources(active.server.flavor)

    assert active.allocations == {active.provider: flavor}, "the active server does not hold its flavor"
    assert shelved.allocations == active.allocations
    assert shelved.fact("on_provider") == flavor, "the host's provider no longer counts the server"


@guarantee("SHELVE-04")
@requires("shelve_offload")
def test_offload_admin_only_clears_host_keeps_ports(shelve_cycle: Scenario, admin: Any) -> None:
    """A member's offload is 403 (still SHELVED); the admin's is 202: OFFLOADED, host null, ports kept."""
    offloaded = shelve_cycle.offloaded.admin_server

    assert shelve_cycle.member_offload == 403, f"member shelveOffload answered {shelve_cycle.member_offload}"
    assert shelve_cycle.after_refusals.status == "SHELVED"
    assert shelve_cycle.offload_reply.status == 202, shelve_cycle.offload_reply
    assert (offloaded.status, offloaded.task_state) == ("SHELVED_OFFLOADED", None)
    assert offloaded.host is None, f"OS-EXT-SRV-ATTR:host is still {offloaded.host!r}"
    assert shelve_cycle.ports_offloaded == shelve_cycle.ports_active
    assert offloaded.addresses == shelve_cycle.active.server.addresses


@guarantee("SHELVE-05")
def test_offload_frees_allocations(shelve_cycle: Scenario, placement: Any) -> None:
    """Once offloaded the consumer holds nothing and the old host's provider no longer lists it."""
    before, after = shelve_cycle.active, shelve_cycle.offloaded

    assert before.fact("on_provider"), "the active server was not on its host's provider"
    assert after.allocations == {}
    assert after.fact("on_provider") is None, f"the old host still counts {after.fact('on_provider')}"


@guarantee("SHELVE-06")
def test_offload_removes_domain_and_dir(shelve_cycle: Scenario, hosts: Any) -> None:
    """Once offloaded the old host has no domain and no instance directory for the server."""
    before, after = shelve_cycle.active, shelve_cycle.offloaded

    assert before.host in hosts, f"server was on {before.host!r}, profile has hosts {sorted(hosts)}"
    assert before.domain_state is not None, "the domain was not there before the shelve"
    assert after.domain_state is None, after.domain_state
    assert after.instance_files is None, after.instance_files


@guarantee("SHELVE-07")
def test_shelve_trace_and_events(shelve_cycle: Scenario, member: Any, timeouts: Timeouts,
                                 polling: Polling) -> None:
    """Statuses go ACTIVE -> SHELVED (-> OFFLOADED); shelve and shelveOffload record compute events."""
    server_id, explicit = shelve_cycle.active.server_id, shelve_cycle.explicit_offload
    check_trace(shelve_cycle.shelve_trace, SHELVE if explicit else SHELVE_AUTO_OFFLOAD)
    expect_action_events(member, server_id, "shelve", ["compute_shelve_instance"],
                         timeout=timeouts.settle, poll=polling)
    if explicit:
        check_trace(shelve_cycle.offload_trace, SHELVE_OFFLOAD)
        expect_action_events(member, server_id, "shelveOffload", ["compute_shelve_offload_instance"],
                             timeout=timeouts.settle, poll=polling)


@guarantee("SHELVE-08")
def test_unshelve_keeps_identity(shelve_cycle: Scenario) -> None:
    """unshelve answers 202 and ends ACTIVE, power 1, on some host, with the same id, IPs and flavor."""
    active, unshelved = shelve_cycle.active.server, shelve_cycle.unshelved.server

    assert shelve_cycle.unshelve_reply.status == 202, shelve_cycle.unshelve_reply
    assert _state(unshelved) == ("ACTIVE", "active", None, 1)
    assert unshelved.host_id, "the unshelved server has no host (hostId)"
    assert _identity(unshelved) == _identity(active)


@guarantee("SHELVE-09")
def test_unshelve_events_show_scheduler_and_conductor(shelve_cycle: Scenario, member: Any,
                                                      timeouts: Timeouts, polling: Polling) -> None:
    """Unshelve of an offloaded server records get_image_info, schedule_instances and the compute event."""
    check_trace(shelve_cycle.unshelve_trace, UNSHELVE)
    expect_action_events(member, shelve_cycle.active.server_id, "unshelve",
                         ["get_image_info", "schedule_instances", "compute_unshelve_instance"],
                         timeout=timeouts.settle, poll=polling)


@guarantee("SHELVE-10")
def test_unshelve_allocates_flavor_on_new_host(shelve_cycle: Scenario, placement: Any) -> None:
    """After unshelve the consumer holds exactly the flavor on its (new) host's provider."""
    snap = shelve_cycle.unshelved

    assert snap.provider, "the admin view names no hypervisor_hostname"
    assert snap.allocations == {snap.provider: flavor_resources(shelve_cycle.active.server.flavor)}


@guarantee("SHELVE-11")
@requires("shelve_offload", "unshelve_to_host")
def test_unshelve_to_host_admin_only(shelve_cycle: Scenario, admin: Any) -> None:
    """At 2.91 a member's unshelve to a host is 403 (still OFFLOADED); the admin's lands on that host."""
    refused = shelve_cycle.member_to_host
    assert refused == 403, f"a member's unshelve to a host answered {refused}"
    assert shelve_cycle.after_member_to_host.status == "SHELVED_OFFLOADED"
    assert shelve_cycle.to_host_reply.status == 202, shelve_cycle.to_host_reply
    assert (shelve_cycle.to_host.status, shelve_cycle.to_host.host) == ("ACTIVE", shelve_cycle.target)


@guarantee("SHELVE-12")
@requires("shelve_offload")
def test_unshelve_az_or_host_on_shelved_is_409(shelve_cycle: Scenario, admin: Any) -> None:
    """An AZ or a host to unshelve a SHELVED (not offloaded) server is 409 for member and admin."""
    assert shelve_cycle.conflicts, "no unshelve with an AZ or a host was tried"
    assert shelve_cycle.conflicts == dict.fromkeys(shelve_cycle.conflicts, 409)
    assert shelve_cycle.after_refusals.status == "SHELVED"
