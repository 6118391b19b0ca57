"""Resize to the profile's second flavor, with revert and with confirm, from ACTIVE and from SHUTOFF.

Each ``resized`` scenario (one per start state) boots a server and resizes it
twice: the first resize is reverted, the second confirmed.  At VERIFY_RESIZE
it snapshots the server on its destination and on its source host (with the
``<uuid>_resize`` directory and the migration consumer's allocations), and
again after the revert and after the confirm.  Migration records are read as
the admin at microversion 2.59 (their uuid is the migration consumer).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import pytest

from conformance import guarantee, requires
from conformance.errors import GuaranteeViolation, WaitTimeout
from conformance.lib.actions import expect_action_events
from conformance.lib.api import Reply, call
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.placement import flavor_resources
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import Server, server_action
from conformance.lib.trace import CONFIRM_RESIZE, RESIZE, REVERT_RESIZE, Trace, check_trace
from conformance.lib.waiter import Polling, Progress, wait_for_server, wait_until
from conformance.profile import Timeouts

pytestmark = requires("resize")

RESIZE_EVENTS = ("conductor_migrate_server", "cold_migrate", "compute_prep_resize",
                 "compute_resize_instance", "compute_finish_resize")
END = {"revert": ("revertResize", "reverted"), "confirm": ("confirmResize", "confirmed")}
MIGRATION_UUID = "2.59"  # /os-migrations shows the uuid: the source allocation's consumer


def _newest_migration(admin: Any, server_id: str) -> dict[str, Any]:
    """The server's newest migration record (admin)."""
    body = call(admin, "GET", "/os-migrations", params={"instance_uuid": server_id},
                microversion=MIGRATION_UUID).body
    if not body["migrations"]:
        raise GuaranteeViolation(f"server {server_id} has no migration record in /os-migrations")
    return dict(max(body["migrations"], key=lambda m: m["id"]))


def _settle_migration(admin: Any, server_id: str, status: str, timeout: float,
                      poll: Polling) -> dict[str, Any]:
    """The newest record once it is ``status``, or as last seen (statuses land just after the server's)."""
    seen: dict[str, Any] = {}

    def reached() -> bool:
        seen.update(_newest_migration(admin, server_id))
        return seen["status"] == status

    with contextlib.suppress(WaitTimeout):  # the test asserts on what was seen
        wait_until(reached, timeout=timeout, poll=poll, describe=f"migration of {server_id} {status}")
    return seen


@dataclasses.dataclass
class Move:
    """One resize and how it ended: VERIFY_RESIZE on the destination and the source, then the end."""

    reply: Reply
    trace: Trace
    verify: Snapshot
    source: Snapshot
    end_reply: Reply
    end_trace: Trace
    end: Snapshot
    end_source: Snapshot
    migration: dict[str, Any] | None = None
    end_migration: dict[str, Any] | None = None


def _settle_freed(observer: Observer, consumer: str, timeout: float, poll: Polling) -> None:
    """Let the migration consumer's allocation go (confirm deletes it after the server is ACTIVE)."""
    placement = observer.placement
    if placement is not None:
        with contextlib.suppress(WaitTimeout):  # the test asserts on what is left
            wait_until(lambda: placement.allocations(consumer) == {}, timeout=timeout, poll=poll,
                       describe=f"allocations of migration {consumer} to go")


def _probe_move(observer: Observer, snap: Snapshot, migration: dict[str, Any] | None,
                source: bool = False) -> Snapshot:
    """Add the migration consumer's allocations and, on the source, the ``<uuid>_resize`` dir."""
    hypervisor = observer.hypervisors.get(snap.facts.get("host") or "")
    if source and hypervisor is not None:
        snap.probe("resize_dir", lambda: hypervisor.files.resize_dir_exists(snap.server_id))
    if observer.placement is not None and migration is not None:
        placement = observer.placement
        snap.probe("migration_allocations", lambda: placement.allocations(migration["uuid"]))
    return snap


def _resize(observer: Observer, server_id: str, flavor_id: str, how: str, before: Snapshot,
            timeouts: Timeouts, polling: Polling, progress: Progress) -> Move:
    """Resize to ``flavor_id``, snapshot at VERIFY_RESIZE, then revert or confirm (``how``)."""
    member, admin, label = observer.member, observer.admin, f"{before.label}: resize to {how}"
    src_host, src_provider = before.facts.get("host"), before.facts.get("provider")
    reply = server_action(member, server_id, "resize", {"flavorRef": flavor_id})
    _, trace = wait_for_server(member, server_id, status="VERIFY_RESIZE", timeout=timeouts.migration,
                               poll=polling, progress=progress)
    migration = _newest_migration(admin, server_id) if admin is not None else None
    verify = _probe_move(observer, observer.snapshot(f"{label}: verify", server_id), migration)
    source = _probe_move(observer, observer.snapshot(f"{label}: source", server_id, host=src_host,
                                                      provider=src_provider), migration, True)
    action, status = END[how]
    end_reply = server_action(member, server_id, action)
    _, end_trace = wait_for_server(member, server_id, status=None, timeout=timeouts.migration, poll=polling,
                                   predicate=lambda s: s.status not in ("VERIFY_RESIZE", "REVERT_RESIZE"))
    end_migration = None
    if migration is not None:
        end_migration = _settle_migration(admin, server_id, status, timeouts.settle, polling)
        _settle_freed(observer, migration["uuid"], timeouts.settle, polling)
    end = _probe_move(observer, observer.snapshot(f"{label}: {status}", server_id), migration)
    end_source = _probe_move(observer, observer.snapshot(f"{label}: {status} source", server_id,
                                                          host=src_host, provider=src_provider),
                             migration, True)
    return Move(reply, trace, verify, source, end_reply, end_trace, end, end_source, migration, end_migration)


def _cycle(factory: ServerFactory, boot_spec: BootSpec, flavor_large: Any, observer: Observer, start: str,
           timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    cycle, member = Scenario(f"resize from {start}"), observer.member
    with cycle.acting():
        server_id = factory.create_server(f"resize-{start.lower()}", **boot_spec.kwargs()).id
        wait_for_server(member, server_id, status="ACTIVE", timeout=timeouts.server_build, poll=polling,
                        progress=progress)
        if start == "SHUTOFF":
            server_action(member, server_id, "os-stop")
            wait_for_server(member, server_id, status="SHUTOFF", timeout=timeouts.server_action, poll=polling)
        cycle.before = observer.snapshot(start, server_id)
        for how in ("revert", "confirm"):
            setattr(cycle, how, _resize(observer, server_id, flavor_large.id, how, cycle.before, timeouts,
                                        polling, progress))
    return cycle


@pytest.fixture(scope="module")
def resized(module_server_factory: ServerFactory, boot_spec: BootSpec, flavor_large: Any, observer: Observer,
            timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's ACTIVE server resized and reverted, then resized and confirmed."""
    return _cycle(module_server_factory, boot_spec, flavor_large, observer, "ACTIVE", timeouts, polling,
                  progress)


@pytest.fixture(scope="module")
def resized_stopped(module_server_factory: ServerFactory, boot_spec: BootSpec, flavor_large: Any,
                    observer: Observer, timeouts: Timeouts, polling: Polling, progress: Progress) -> Scenario:
    """A member's stopped server resized and reverted, then resized and confirmed."""
    return _cycle(module_server_factory, boot_spec, flavor_large, observer, "SHUTOFF", timeouts, polling,
                  progress)


def _state(server: Server) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state


def _kept(server: Server) -> tuple[Any, ...]:
    return server.id, server.addresses, server.image_id


@guarantee("RESIZE-01")
def test_resize_and_confirm(resized: Scenario, flavor_large: Any) -> None:
    """resize is 202 and reaches VERIFY_RESIZE with the new flavor; confirm is 204 and ends ACTIVE with it."""
    move, before = resized.confirm, resized.before.server

    assert move.reply.status == 202, move.reply
    assert _state(move.verify.server) == ("VERIFY_RESIZE", "resized", None, 1)
    assert move.verify.server.flavor.get("original_name") == flavor_large.name, move.verify.server.flavor
    assert move.end_reply.status == 204, move.end_reply
    assert _state(move.end.server) == ("ACTIVE", "active", None, 1)
    assert move.end.server.flavor.get("original_name") == flavor_large.name, move.end.server.flavor
    assert _kept(move.end.server) == _kept(before)
    check_trace(move.end_trace, CONFIRM_RESIZE)


@guarantee("RESIZE-02")
def test_verify_resize_allocations(resized: Scenario, placement: Any) -> None:
    """In VERIFY_RESIZE: instance = new flavor on the destination, migration = old flavor on the source."""
    old = flavor_resources(resized.before.server.flavor)
    for how in ("revert", "confirm"):
        move = getattr(resized, how)
        new = flavor_resources(move.verify.server.flavor)
        assert new != old, f"the flavor did not change: {move.verify.server.flavor}"
        assert move.verify.allocations == {move.verify.provider: new}, how
        assert move.verify.fact("migration_allocations") == {resized.before.provider: old}, how


@guarantee("RESIZE-03")
def test_confirm_allocations(resized: Scenario, placement: Any) -> None:
    """After confirm the instance holds exactly the new flavor, and the migration consumer nothing."""
    move = resized.confirm

    assert move.end.allocations == {move.verify.provider: flavor_resources(move.verify.server.flavor)}
    assert move.end.fact("migration_allocations") == {}


@guarantee("RESIZE-04")
def test_revert_restores_flavor_and_host(resized: Scenario) -> None:
    """revertResize is 202 and ends ACTIVE with the old flavor on the original host."""
    move, before = resized.revert, resized.before.server

    assert move.end_reply.status == 202, move.end_reply
    assert _state(move.end.server) == ("ACTIVE", "active", None, 1)
    assert move.end.server.flavor == before.flavor
    assert move.end.server.host_id == before.host_id, "the reverted server is not on its original host"
    assert _kept(move.end.server) == _kept(before)
    check_trace(move.end_trace, REVERT_RESIZE)


@guarantee("RESIZE-05")
def test_revert_allocations(resized: Scenario, placement: Any) -> None:
    """After revert the instance holds the old flavor on the original provider, the migration nothing."""
    before, move = resized.before, resized.revert

    assert move.end.allocations == {before.provider: flavor_resources(before.server.flavor)}
    assert move.end.fact("migration_allocations") == {}


@guarantee("RESIZE-06")
def test_stopped_server_stays_stopped(resized_stopped: Scenario, flavor_large: Any) -> None:
    """A SHUTOFF server reaches VERIFY_RESIZE powered off and ends SHUTOFF after revert and confirm."""
    before = resized_stopped.before.server
    for how, flavor in (("revert", before.flavor.get("original_name")), ("confirm", flavor_large.name)):
        move = getattr(resized_stopped, how)
        assert _state(move.verify.server) == ("VERIFY_RESIZE", "resized", None, 4), how
        assert _state(move.end.server) == ("SHUTOFF", "stopped", None, 4), how
        assert move.end.server.flavor.get("original_name") == flavor, (how, move.end.server.flavor)


@guarantee("RESIZE-07")
def test_migration_record_trace_and_events(resized: Scenario, admin: Any, member: Any,
                                           timeouts: Timeouts, polling: Polling) -> None:
    """The 'resize' migration is finished, then reverted or confirmed; events and RESIZE statuses."""
    for how, status in (("revert", "reverted"), ("confirm", "confirmed")):
        move = getattr(resized, how)
        check_trace(move.trace, RESIZE)
        assert (move.migration["migration_type"], move.migration["status"]) == ("resize", "finished"), how
        assert move.end_migration["status"] == status, (how, move.end_migration)
    expect_action_events(member, resized.before.server_id, "resize", RESIZE_EVENTS,
                         timeout=timeouts.settle, poll=polling)


@guarantee("RESIZE-08")
def test_confirm_cleans_source_host(resized: Scenario, hosts: Any) -> None:
    """In VERIFY_RESIZE the source keeps <uuid>_resize and a shut-off domain; confirm removes both."""
    move = resized.confirm
    source, dest, after = move.source, move.verify, move.end_source
    moved = dest.host != source.host

    assert source.host in hosts and dest.host in hosts, (source.host, dest.host, sorted(hosts))
    assert source.fact("resize_dir"), f"no {source.server_id}_resize on the source {source.host}"
    assert dest.domain_state and dest.domain_state[0] == "running", dest.domain_state
    if moved:
        assert source.domain_state and source.domain_state[0] == "shut off", source.domain_state
    assert not after.fact("resize_dir"), f"{source.server_id}_resize is left on {source.host}"
    if moved:
        assert after.domain_state is None, f"a domain is left on the source: {after.domain_state}"
