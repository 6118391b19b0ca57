"""The waiter: adaptive polling, traces, fail-fast on ERROR, readable timeouts."""

from __future__ import annotations

import pytest
from openstack import exceptions

from conformance.errors import ServerFault, WaitTimeout, classify
from conformance.lib.waiter import Polling, wait_for_deleted, wait_for_server, wait_until
from tests.unit.fakes import FakeClock, FakeConn, server

FAST = Polling(initial=0.001, maximum=0.002, backoff=2, progress_every=0.0)


def test_intervals_back_off_to_the_maximum() -> None:
    intervals = Polling(initial=0.2, maximum=1.0, backoff=2).intervals()
    assert [next(intervals) for _ in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]


def test_wait_until_returns_once_the_check_holds() -> None:
    clock, answers = FakeClock(), iter([False, False, True])
    wait_until(lambda: next(answers), timeout=10, poll=Polling(0.2, 2.0, 1.5), describe="x",
               clock=clock, sleep=clock.sleep)
    assert clock.sleeps == [0.2, pytest.approx(0.3)]


def test_wait_until_times_out_with_what_it_saw() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"timed out after 1s waiting for the moon\nlast seen: clouds"):
        wait_until(lambda: False, timeout=1, poll=Polling(0.2, 0.5), describe="the moon",
                   state=lambda: "clouds", clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(1.0)


def test_wait_until_reports_progress_on_long_waits() -> None:
    clock, lines = FakeClock(), list[str]()
    with pytest.raises(WaitTimeout):
        wait_until(lambda: False, timeout=30, poll=Polling(1, 1, progress_every=10), describe="x",
                   progress=lines.append, clock=clock, sleep=clock.sleep)
    assert len(lines) == 2 and lines[0].startswith("still waiting (10s of 30s) for x")


def test_wait_for_server_records_distinct_transitions() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [
        (200, server("BUILD", "scheduling", 0, "building")),
        (200, server("BUILD", "scheduling", 0, "building")),
        (200, server("BUILD", "spawning", 0, "building")), (200, server("ACTIVE"))]
    final, trace = wait_for_server(conn, "s1", status="ACTIVE", timeout=5, poll=FAST)
    assert final.status == "ACTIVE" and final.task_state is None
    assert [(o.status, o.task_state) for o in trace.observations] == [
        ("BUILD", "scheduling"), ("BUILD", "spawning"), ("ACTIVE", None)]


def test_wait_for_server_needs_task_state_null() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server("ACTIVE", "image_snapshot")),
                                                    (200, server("ACTIVE"))]
    final, trace = wait_for_server(conn, "s1", status="ACTIVE", timeout=5, poll=FAST)
    assert final.task_state is None and len(trace.observations) == 2


def test_wait_for_server_honours_the_predicate() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [
        (200, server("SHUTOFF", attrs={"OS-EXT-SRV-ATTR:host": "a"})), (200, server("SHUTOFF"))]
    final, trace = wait_for_server(conn, "s1", status="SHUTOFF", timeout=5, poll=FAST,
                                   predicate=lambda s: s.host is None)
    assert final.host is None and len(trace.observations) == 2


def test_the_end_state_is_read_after_the_predicate_held() -> None:
    """A predicate that reads elsewhere (an event) may postdate the read: the server is read again."""
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server("ACTIVE")), (200, server("SHUTOFF"))]
    final, trace = wait_for_server(conn, "s1", status=None, timeout=5, poll=FAST, predicate=lambda s: True)
    assert final.status == "SHUTOFF" and trace.last is not None and "SHUTOFF" in str(trace.last)


def test_error_fails_fast_with_the_fault() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [
        (200, server("ERROR", fault={"code": 500, "message": "NoValidHost"}))]
    with pytest.raises(ServerFault, match="NoValidHost") as info:
        wait_for_server(conn, "s1", status="ACTIVE", timeout=5, poll=FAST)
    assert classify(info.value) == "failed"


def test_timeout_shows_last_json_and_history() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server("ACTIVE", "pausing"))]
    with pytest.raises(WaitTimeout) as info:
        wait_for_server(conn, "s1", status="PAUSED", timeout=0.02, poll=FAST)
    text = str(info.value)
    assert '"OS-EXT-STS:task_state": "pausing"' in text and "ACTIVE/pausing" in text
    assert info.value.last["id"] == "s1" and info.value.history[0]["task_state"] == "pausing"
    assert classify(info.value) == "error"


def test_server_5xx_propagates_as_an_error() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(500, {"computeFault": {"message": "boom"}})]
    with pytest.raises(exceptions.HttpException) as info:
        wait_for_server(conn, "s1", status="ACTIVE", timeout=5, poll=FAST)
    assert classify(info.value) == "error"


def test_wait_for_deleted_ends_on_404() -> None:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server("ACTIVE", "deleting")),
                                                    (404, {"itemNotFound": {}})]
    trace = wait_for_deleted(conn, "s1", timeout=5, poll=FAST)
    assert trace.statuses() == ["ACTIVE", "DELETED"]
