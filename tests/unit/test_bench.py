"""The pure parts of the benchmark (bench/): intervals, figures, log parsing, Tempest families."""

from __future__ import annotations

from pathlib import Path

from bench import analyse, tempest, timeline


def _action(name: str, start: float, finish: float, events: tuple = ()) -> timeline.Action:
    return timeline.Action(
        "00000000-0000-0000-0000-000000000001", name, "create", "req", start, finish, events
    )


def test_union_merges_overlaps_and_covered_clips() -> None:
    """Overlapping intervals merge; covered() sums the union, clipped to a window."""
    spans = [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0)]

    assert timeline.union(spans) == [(0.0, 3.0), (5.0, 6.0)]
    assert timeline.covered(spans) == 4.0
    assert timeline.covered(spans, 2.0, 5.5) == 1.5


def test_to_posix_reads_nova_times_with_and_without_fraction() -> None:
    """Nova's naive UTC times (with Z, with microseconds) are POSIX seconds."""
    assert timeline.to_posix("1970-01-01T00:00:10.500000") == 10.5
    assert timeline.to_posix("1970-01-01T00:01:00Z") == 60.0
    assert timeline.to_posix(None) is None


def test_worker_from_server_name() -> None:
    """The worker is the third dash-separated part of cft-<run>-<worker>-<suffix>."""
    assert _action("cft-abc123-gw1-live-active", 0, 1).worker == "gw1"


def test_critical_path_is_the_union_of_actions() -> None:
    """Two overlapping actions count once; per worker and per action name are reported."""
    actions = [_action("cft-r-gw0-a", 0.0, 4.0), _action("cft-r-gw1-b", 2.0, 6.0)]

    figures = analyse.critical_path(actions)

    assert figures["seconds"] == 6.0
    assert figures["per_worker"] == {"gw0": 4.0, "gw1": 4.0}
    assert figures["by_action"]["create"]["count"] == 2


def test_overhead_is_test_time_not_covered_by_its_workers_actions() -> None:
    """A 10 s test whose worker had a 4 s action during it has 6 s of overhead."""
    tests = [{"nodeid": "t", "worker": "gw0", "start": 100.0, "end": 110.0}]
    actions = [_action("cft-r-gw0-a", 102.0, 106.0), _action("cft-r-gw1-b", 100.0, 110.0)]

    figures = analyse.test_overhead(tests, actions)

    assert figures["overhead"] == 6.0 and figures["cloud"] == 4.0


def test_detection_delay_from_the_last_event_finish() -> None:
    """A wait that missed, then saw the change, is measured from the event's finish time."""
    uuid = "00000000-0000-0000-0000-000000000001"
    action = _action("cft-r-gw0-a", 10.0, 12.0, (("compute_x", 10.5, 12.0),))
    wait = {
        "describe": f"server {uuid} to be ACTIVE",
        "ok": True,
        "first": False,
        "last_miss": 11.9,
        "start": 10.0,
        "end": 12.5,
        "calls": 4,
        "checks": 4,
    }

    figures = analyse.waits([wait], [action])

    assert figures["detection_delay_s"]["median"] == 0.5
    assert figures["requests_per_wait"]["max"] == 4


def test_api_requests_parses_the_request_log(tmp_path: Path) -> None:
    """nova-api requestlog lines give method, path, status and [start, end]."""
    log = tmp_path / "nova-api.log"
    log.write_text(
        "1970-01-01 00:00:10.000 1 INFO nova.api.openstack.requestlog [req-1 u p] 127.0.0.1 "
        '"GET /v2.1/servers/x" status: 200 len: 5 microversion: 2.100 time: 0.250000\n'
        "1970-01-01 00:00:11.000 1 INFO other line\n"
    )

    (request,) = timeline.api_requests(log, 0, 100)

    assert (request.method, request.path, request.status) == ("GET", "/v2.1/servers/x", 200)
    assert (request.start, request.end) == (9.75, 10.0)


def test_tempest_families() -> None:
    """Tempest test names map onto the suite's families; negative tests onto MATRIX."""
    base = "tempest.api.compute.servers.test_server_actions.ServerActionsTestJSON."
    assert tempest.family_of(base + "test_shelve_unshelve_server[id-1]") == "SHELVE"
    assert tempest.family_of(base + "test_resize_server_revert[id-2]") == "RESIZE"
    assert tempest.family_of(base + "test_lock_unlock_server[id-3]") == "LOCK"
    assert (
        tempest.family_of("tempest.api.compute.servers.test_servers_negative.X.test_pause_paused") == "MATRIX"
    )
