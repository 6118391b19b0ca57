"""Rebuild with the profile's second image: one ACTIVE and one stopped server per module.

The ``rebuilds`` scenario boots two servers, stops one, snapshots both at
every depth the profile reaches, rebuilds each with ``resources.image_alt``
and snapshots them again.  A stopped server passes through a short ACTIVE
with task_state null before it is stopped again (NOTES B.4), so its wait ends
only at SHUTOFF or once the compute's rebuild event has finished.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.lib.actions import EVENTS_MICROVERSION, expect_action_events
from conformance.lib.api import Reply, call
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import Server, server_action
from conformance.lib.trace import REBUILD, REBUILD_STOPPED, Trace, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server
from conformance.profile import Timeouts

pytestmark = requires("rebuild")

KINDS = ("active", "stopped")


@dataclasses.dataclass
class Rebuilt:
    """One server's rebuild: before and after snapshots, the reply and the trace."""

    before: Snapshot
    reply: Reply
    trace: Trace
    after: Snapshot
    migrations: list[dict[str, Any]] | None


def _event_finished(conn: Any, server_id: str, request_id: str | None, event: str) -> bool:
    """True once ``event`` of the action started by ``request_id`` has a finish_time."""
    path = f"/servers/{server_id}/os-instance-actions/{request_id}"
    detail = call(conn, "GET", path, microversion=EVENTS_MICROVERSION).body["instanceAction"]
    return any(e["event"] == event and e.get("finish_time") for e in detail.get("events") or [])


def _probe_xml(observer: Observer, snap: Snapshot) -> Snapshot:
    """Add the domain XML (``virsh dumpxml``) of the snapshot's host to ``snap``."""
    hypervisor = observer.hypervisors.get(snap.facts.get("host") or "")
    if hypervisor is not None:
        snap.probe("domain_xml", lambda: hypervisor.libvirt.domain_xml(snap.server_id))
    return snap


def _rebuild(observer: Observer, server_id: str, kind: str, image: str, timeouts: Timeouts,
             polling: Polling, progress: Progress) -> Rebuilt:
    member = observer.member
    before = _probe_xml(observer, observer.snapshot(f"{kind} before rebuild", server_id))
    reply = server_action(member, server_id, "rebuild", {"imageRef": image})

    def settled(server: Server) -> bool:  # a stopped server looks ACTIVE/null for a moment
        return server.status == "SHUTOFF" or _event_finished(member, server_id, reply.request_id,
                                                            "compute_rebuild_instance")

    _, trace = wait_for_server(member, server_id, status="ACTIVE" if kind == "active" else None,
                               predicate=None if kind == "active" else settled, poll=polling,
                               timeout=timeouts.server_build, progress=progress)
    after = _probe_xml(observer, observer.snapshot(f"{kind} rebuilt", server_id))
    migrations = None
    if observer.admin is not None:  # GET /os-migrations is admin-only
        query = {"instance_uuid": server_id}
        migrations = call(observer.admin, "GET", "/os-migrations", params=query).body["migrations"]
    return Rebuilt(before, reply, trace, after, migrations)


@pytest.fixture(scope="module")
def rebuilds(module_server_factory: ServerFactory, boot_spec: BootSpec, image_alt: str, observer: Observer,
             timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's ACTIVE and stopped servers, each rebuilt with image_alt and snapshotted."""
    done, member = Scenario("rebuild"), observer.member
    with done.acting():
        ids = {kind: module_server_factory.create_server(f"rebuild-{kind}", **boot_spec.kwargs()).id
               for kind in KINDS}
        for server_id in ids.values():
            wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                            progress=progress)
        server_action(member, ids["stopped"], "os-stop")
        wait_for_server(member, ids["stopped"], status="SHUTOFF", timeout=timeouts.server_action,
                        poll=polling)
        for kind, server_id in ids.items():
            setattr(done, kind, _rebuild(observer, server_id, kind, image_alt, timeouts, polling, progress))
    return done


def _state(server: Server) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state


def _kept(server: Server) -> tuple[Any, ...]:
    return server.id, server.addresses, server.flavor, server.host_id


@guarantee("REBUILD-01")
def test_rebuild_active_keeps_identity(rebuilds: Scenario, image_alt: str) -> None:
    """Rebuild answers 202; ACTIVE, power 1, the new image, the same id, addresses, flavor and host."""
    done = rebuilds.active
    before, after = done.before.server, done.after.server

    assert done.reply.status == 202, done.reply
    assert _state(after) == ("ACTIVE", "active", None, 1)
    assert after.image_id == image_alt, f"image.id is {after.image_id}, expected {image_alt}"
    assert _kept(after) == _kept(before)


@guarantee("REBUILD-02")
def test_rebuild_stopped_stays_stopped(rebuilds: Scenario, image_alt: str) -> None:
    """A stopped server's rebuild answers 202 and ends SHUTOFF, power 4, new image, identity kept."""
    done = rebuilds.stopped
    before, after = done.before.server, done.after.server

    assert done.reply.status == 202, done.reply
    assert _state(after) == ("SHUTOFF", "stopped", None, 4)
    assert after.image_id == image_alt, f"image.id is {after.image_id}, expected {image_alt}"
    assert _kept(after) == _kept(before)


@guarantee("REBUILD-03")
def test_rebuild_trace_and_events(rebuilds: Scenario, member: Any, timeouts: Timeouts,
                                  polling: Polling) -> None:
    """Intermediate statuses are REBUILD; the action records rebuild_server and the compute event(s)."""
    check_trace(rebuilds.active.trace, REBUILD)
    check_trace(rebuilds.stopped.trace, REBUILD_STOPPED)
    for kind, extra in (("active", []), ("stopped", ["compute_stop_instance"])):
        expect_action_events(member, getattr(rebuilds, kind).before.server_id, "rebuild",
                             ["rebuild_server", "compute_rebuild_instance", *extra],
                             timeout=timeouts.settle, poll=polling)


@guarantee("REBUILD-04")
def test_rebuild_keeps_allocations(rebuilds: Scenario, placement: Any) -> None:
    """The consumer's allocations are the same after the rebuild, and no migration was created."""
    for kind in KINDS:
        done = getattr(rebuilds, kind)
        assert done.before.allocations, f"the {kind} server held no allocations before the rebuild"
        assert done.after.allocations == done.before.allocations, kind
        assert done.migrations == [], f"the {kind} rebuild created migrations: {done.migrations}"


def _root_backing(xml: str) -> str | None:
    """The backing file of the domain's first disk (None if the XML shows none)."""
    disk = ET.fromstring(xml).find("./devices/disk[@device='disk']")
    source = disk.find("./backingStore/source") if disk is not None else None
    return source.get("file") if source is not None else None


@guarantee("REBUILD-05")
def test_rebuild_redefines_domain_from_new_image(rebuilds: Scenario, hosts: Any, image_alt: str) -> None:
    """Same host, name and UUID; running (shut off if stopped); root disk backed by the new image."""
    for kind, power in (("active", "running"), ("stopped", "shut off")):
        before, after = getattr(rebuilds, kind).before, getattr(rebuilds, kind).after
        assert after.host == before.host and after.host in hosts, (before.host, after.host, sorted(hosts))
        assert after.domain_state and after.domain_state[0] == power, (kind, after.domain_state)
        assert after.domain_name == before.domain_name, (kind, before.domain_name, after.domain_name)
        assert "disk" in (after.instance_files or []), (kind, after.instance_files)
        backing = _root_backing(after.fact("domain_xml"))
        expected = posixpath.join(hosts[after.host].files.instances_path, "_base",
                                  hashlib.sha1(image_alt.encode()).hexdigest())
        assert backing in (None, expected), f"{kind}: root disk backed by {backing}, expected {expected}"
