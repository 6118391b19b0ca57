"""createImage (snapshot of an image-backed server) from ACTIVE, SHUTOFF and PAUSED.

The ``snapshots`` scenario walks one server through the source states the
profile can reach and takes a snapshot in each, snapshotting the server at
every depth before and after; each image is handed to the cleanup the moment
its id is known.  Each test asserts one guarantee per source state.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.errors import WaitTimeout
from conformance.lib.actions import expect_action_events
from conformance.lib.api import Reply, call
from conformance.lib.inplace import identity, state
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import server_action
from conformance.lib.trace import check_trace, snapshot_of
from conformance.lib.waiter import Polling, Progress, wait_for_server, wait_until
from conformance.profile import Profile, Timeouts

pytestmark = [requires("snapshot"), pytest.mark.xdist_group("snapshot")]  # one `snapshots` server

# source status -> (capability, steps (action, status) from the previous source, end state, domain state)
SOURCES: dict[str, tuple[str | None, list[tuple[str, str]], tuple[Any, ...], str]] = {
    "ACTIVE": (None, [], ("ACTIVE", "active", None, 1), "running"),
    "SHUTOFF": (None, [("os-stop", "SHUTOFF")], ("SHUTOFF", "stopped", None, 4), "shut off"),
    "PAUSED": ("pause", [("os-start", "ACTIVE"), ("pause", "PAUSED")], ("PAUSED", "paused", None, 3),
               "paused"),
}
SOURCE_PARAMS = [pytest.param(s, marks=[requires(c)] if c else [], id=s) for s, (c, *_) in SOURCES.items()]
UPLOADING = ("saving", "uploading", "importing")  # Glance statuses of an image still receiving data


def _image_id(reply: Reply) -> str:
    """The new image's id: the body from 2.45, the Location header before."""
    body = reply.body if isinstance(reply.body, dict) else {}
    return str(body.get("image_id") or reply.headers["Location"].rstrip("/").rsplit("/", 1)[-1])


@pytest.fixture(scope="module")
def snapshots(module_server_factory: ServerFactory, boot_spec: BootSpec, observer: Observer,
              profile: Profile, timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """One snapshot per claimed source state of one member's server, snapshotted around each."""
    walk, member, factory = Scenario("snapshot"), observer.member, module_server_factory
    with walk.acting():
        server_id = factory.create_server("snapshot", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        for source, (capability, steps, _, _) in SOURCES.items():
            if capability and not profile.claims(capability):
                continue
            for action, status in steps:
                server_action(member, server_id, action)
                wait_for_server(member, server_id, status=status, timeout=timeouts.server_action,
                                poll=polling)
            rec = types.SimpleNamespace(before=observer.snapshot(f"{source} before createImage", server_id))
            rec.name = factory.name(f"snap-{source.lower()}")
            body = {"name": rec.name, "metadata": factory.image_properties()}
            rec.reply = server_action(member, server_id, "createImage", body)
            rec.image_id = _image_id(rec.reply)
            factory.track_image(rec.image_id)
            _, rec.trace = wait_for_server(member, server_id, status=None, poll=polling,
                                           timeout=timeouts.snapshot, progress=progress)
            rec.after = observer.snapshot(f"{source} after createImage", server_id)
            setattr(walk, source, rec)
    return walk


def _settled_image(member: Any, image_id: str, timeouts: Timeouts, polling: Polling) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def settled() -> bool:
        seen.update(call(member, "GET", f"/images/{image_id}", service="image").body)
        return seen.get("status") not in UPLOADING

    with contextlib.suppress(WaitTimeout):  # the caller's assertion shows the status
        wait_until(settled, timeout=timeouts.snapshot, poll=polling, describe=f"image {image_id} upload")
    return seen


@guarantee("SNAPSHOT-01")
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_snapshot_image_active(snapshots: Scenario, source: str, member: Any, timeouts: Timeouts,
                               polling: Polling) -> None:
    """createImage answers 202 with the image id; the image is a snapshot of the server and goes active."""
    rec = getattr(snapshots, source)
    image = _settled_image(member, rec.image_id, timeouts, polling)
    wanted = {"name": rec.name, "image_type": "snapshot", "instance_uuid": rec.before.server_id,
              "status": "active"}

    assert rec.reply.status == 202, rec.reply
    assert {key: image.get(key) for key in wanted} == wanted, image


@guarantee("SNAPSHOT-02")
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_snapshot_returns_to_previous_state(snapshots: Scenario, source: str) -> None:
    """After createImage the server is back in its state (ACTIVE/1, SHUTOFF/4, PAUSED/3), identity kept."""
    rec = getattr(snapshots, source)

    assert state(rec.after.server) == SOURCES[source][2]
    assert identity(rec.after.server) == identity(rec.before.server)


@guarantee("SNAPSHOT-03")
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_snapshot_trace_and_events(snapshots: Scenario, source: str, member: Any, timeouts: Timeouts,
                                   polling: Polling) -> None:
    """The status never changes, the image task states come in order, compute_snapshot_instance succeeds."""
    rec = getattr(snapshots, source)

    check_trace(rec.trace, snapshot_of(source))
    expect_action_events(member, rec.before.server_id, "createImage", ["compute_snapshot_instance"],
                         timeout=timeouts.settle, poll=polling, request_id=rec.reply.request_id)


@guarantee("SNAPSHOT-04")
@pytest.mark.parametrize("source", SOURCE_PARAMS)
def test_domain_state_kept(snapshots: Scenario, source: str, hosts: Any) -> None:
    """After createImage the domain is as before (running, shut off, paused), with no managed save."""
    before, after = getattr(snapshots, source).before, getattr(snapshots, source).after

    assert after.host in hosts, f"server is on {after.host!r}, profile has hosts {sorted(hosts)}"
    assert after.domain_state and after.domain_state[0] == SOURCES[source][3], after.domain_state
    assert after.dominfo.get("Managed save") == "no", after.dominfo
    assert after.instance_files == before.instance_files
