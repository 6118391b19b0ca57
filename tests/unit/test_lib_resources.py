"""Resource factory: names, tags, immediate cleanup, slots, leftovers and sweep."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from conformance.errors import InfraError
from conformance.lib.resources import (
    CleanupRegistry,
    ServerFactory,
    ServerSlots,
    find_leftovers,
    sweep,
)
from conformance.lib.waiter import Polling
from tests.unit.fakes import FakeConn, server

FAST = Polling(initial=0.001, maximum=0.002)


def factory(conn: FakeConn, cleanup: CleanupRegistry, slots: ServerSlots | None = None) -> ServerFactory:
    return ServerFactory(conn, "r1", "gw0", cleanup, delete_timeout=1, poll=FAST, slots=slots,
                         slot_timeout=0.05)


def created(conn: FakeConn) -> dict[tuple[str, str], Any]:
    conn.compute.routes[("POST", "/servers")] = [(202, {"server": {"id": "s1"}})]
    return conn.compute.routes


def test_create_names_tags_and_registers_cleanup_at_once() -> None:
    conn, cleanup = FakeConn(), CleanupRegistry()
    created(conn)
    result = factory(conn, cleanup).create_server("boot", image="i", flavor="f", network="n")
    body = conn.compute.calls[0][2]["json"]["server"]
    assert result.id == "s1" and result.name == "cft-r1-gw0-boot" == body["name"]
    assert body["tags"] == ["conformance", "cft-run-r1"]
    assert body["metadata"] == {"conformance_run": "r1"}
    assert body["networks"] == [{"uuid": "n"}]
    assert len(cleanup._items) == 1  # before any wait


def test_cleanup_deletes_waits_for_404_and_ignores_not_found() -> None:
    conn, cleanup = FakeConn(), CleanupRegistry()
    created(conn)
    conn.compute.routes[("DELETE", "/servers/s1")] = [(204, None)]
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server(task="deleting")), (404, {})]
    factory(conn, cleanup).create_server("a", image="i", flavor="f", network="none")
    assert cleanup.run() == []
    assert ("DELETE", "/servers/s1") in [(m, p) for m, p, _ in conn.compute.calls]


def test_refused_delete_falls_back_to_force_delete() -> None:
    conn, cleanup = FakeConn(), CleanupRegistry()
    created(conn)
    conn.compute.routes[("DELETE", "/servers/s1")] = [(409, {"conflictingRequest": {}})]
    conn.compute.routes[("POST", "/servers/s1/action")] = [(202, None)]
    factory(conn, cleanup).create_server("a", image="i", flavor="f", network="none")
    assert cleanup.run() == []
    assert conn.compute.calls[-2][2]["json"] == {"forceDelete": None}


def test_cleanup_failures_are_recorded_not_hidden() -> None:
    conn, cleanup = FakeConn(), CleanupRegistry()
    created(conn)
    conn.compute.routes[("DELETE", "/servers/s1")] = [(500, {"computeFault": {}})]
    factory(conn, cleanup).create_server("a", image="i", flavor="f", network="none")
    failures = cleanup.run()
    assert len(failures) == 1 and "delete server s1" in failures[0]


def test_slots_limit_concurrent_servers(tmp_path: Path) -> None:
    slots = ServerSlots(tmp_path, 2, poll=0.01)
    first, second = slots.acquire(0.05), slots.acquire(0.05)
    with pytest.raises(InfraError, match="max_servers=2"):
        slots.acquire(0.05)
    assert first is not None and second is not None
    first.release()
    assert slots.acquire(0.05) is not None


def _hold_one(directory: str, queue: Any) -> None:
    lock = ServerSlots(directory, 1).acquire(1)
    queue.put("held")
    queue.get()  # wait until told to release
    assert lock is not None
    lock.release()


def test_slots_are_shared_across_processes(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_hold_one, args=(str(tmp_path), queue))
    proc.start()
    assert queue.get(timeout=30) == "held"
    with pytest.raises(InfraError):
        ServerSlots(tmp_path, 1, poll=0.01).acquire(0.05)
    queue.put("release")
    proc.join(30)
    assert ServerSlots(tmp_path, 1).acquire(1) is not None


def test_exclusive_holds_every_slot(tmp_path: Path) -> None:
    slots, other = ServerSlots(tmp_path, 3, poll=0.01), ServerSlots(tmp_path, 3, poll=0.01)
    with slots.exclusive(timeout=1):
        assert slots.acquire(0.01) is None  # the holder needs no slot
        with pytest.raises(InfraError):
            other.acquire(0.05)
    assert other.acquire(0.05) is not None


def test_exclusive_gives_up_without_holding_anything(tmp_path: Path) -> None:
    slots, other = ServerSlots(tmp_path, 2, poll=0.01), ServerSlots(tmp_path, 2, poll=0.01)
    held = other.acquire(0.05)
    with pytest.raises(InfraError), slots.exclusive(timeout=0.05):
        pass
    assert held is not None and other.acquire(0.05) is not None  # the free slot was released


def leftovers_cloud() -> FakeConn:
    conn = FakeConn()
    ours = server(sid="mine", tags=["conformance", "cft-run-r1"])["server"]
    other_run = server(sid="older", tags=["conformance", "cft-run-r0"])["server"]
    foreign = server(sid="theirs", tags=["cft-run-r1"])["server"]  # not tagged `conformance`
    conn.compute.routes[("GET", "/servers/detail")] = [(200, {"servers": [ours, other_run, foreign]})]
    conn.image.routes[("GET", "/images")] = [(200, {"images": [
        {"id": "img1", "name": "cft-r1-gw0-snap", "conformance_run": "r1"},
        {"id": "img2", "name": "cft-r1-gw0-snap"},  # no property: not ours
        {"id": "img3", "name": "ubuntu", "conformance_run": "r1"}]})]
    return conn


def test_leftovers_only_count_tagged_resources() -> None:
    found = find_leftovers(leftovers_cloud(), "r1")
    assert [s["id"] for s in found.servers] == ["mine"]
    assert [i["id"] for i in found.images] == ["img1"]
    assert {s["id"] for s in find_leftovers(leftovers_cloud(), None).servers} == {"mine", "older"}


def test_sweep_never_touches_untagged_resources() -> None:
    conn = leftovers_cloud()
    for sid in ("mine", "older", "theirs"):
        conn.compute.routes[("DELETE", f"/servers/{sid}")] = [(204, None)]
    conn.image.routes[("DELETE", "/images/img1")] = [(204, None)]
    found, failures = sweep([conn, conn], "r1", timeout=1, poll=FAST)
    deleted = [p for m, p, _ in conn.compute.calls + conn.image.calls if m == "DELETE"]
    assert deleted == ["/servers/mine", "/images/img1"] and failures == []
    assert found.describe()[0].startswith("server mine")


def test_exclusive_waiter_is_not_starved(tmp_path: Path) -> None:
    """While exclusive() waits, a process without a slot waits too; one holding a slot goes on."""
    running, fresh = ServerSlots(tmp_path, 2, poll=0.01), ServerSlots(tmp_path, 2, poll=0.01)
    waiter = ServerSlots(tmp_path, 2, poll=0.01)
    first = running.acquire(0.05)
    entered = threading.Event()

    def exclusive() -> None:
        with waiter.exclusive(timeout=5):
            entered.set()

    thread = threading.Thread(target=exclusive)
    thread.start()
    time.sleep(0.1)  # the waiter holds the turnstile now
    with pytest.raises(InfraError):
        fresh.acquire(0.05)
    second = running.acquire(0.05)
    assert first is not None and second is not None and not entered.is_set()
    first.release()
    second.release()
    thread.join(5)
    assert entered.is_set()
    assert fresh.acquire(0.05) is not None
