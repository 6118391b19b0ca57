"""Figures of one suite run: wall time against the cloud's critical path, overhead, waits.

Inputs: the probe's records (:mod:`bench.probe`), the run's instance actions
and the nova-api requests (:mod:`bench.timeline`).

* **critical path**: the seconds in which the cloud worked on at least one
  instance action of the run (the union of the action intervals).  The suite
  cannot end sooner than that with the actions it needs, in the order it
  needs them; ``wall / critical path`` is how much longer it took.
* **per-test overhead**: for each test, its seconds (setup to teardown) not
  covered by an action of a server its worker created; summed over tests.
* **detection delay**: for each wait whose server changed while it waited,
  the seconds from the action's last event finishing to the check that saw
  it; and the HTTP requests each wait made.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence
from typing import Any

from bench.timeline import Action, Request, covered, union

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def spread(values: Sequence[float]) -> dict[str, float | int]:
    """count, median, p90, max and sum of ``values`` (rounded)."""
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return {
        "count": len(ordered),
        "median": round(statistics.median(ordered), 3),
        "p90": round(p90, 3),
        "max": round(ordered[-1], 3),
        "sum": round(sum(ordered), 2),
    }


def critical_path(actions: Sequence[Action]) -> dict[str, Any]:
    """Cloud busy time (union of action intervals), per worker, and the action mix."""
    per_worker = {
        w: round(covered((a.start, a.finish) for a in actions if a.worker == w), 2)
        for w in sorted({a.worker for a in actions})
    }
    mix: dict[str, list[float]] = {}
    for action in actions:
        mix.setdefault(action.action, []).append(action.seconds)
    return {
        "seconds": round(covered((a.start, a.finish) for a in actions), 2),
        "action_seconds_sum": round(sum(a.seconds for a in actions), 2),
        "actions": len(actions),
        "servers": len({a.server_id for a in actions}),
        "per_worker": per_worker,
        "by_action": {name: spread(v) for name, v in sorted(mix.items(), key=lambda kv: -sum(kv[1]))},
    }


def test_overhead(
    tests: Sequence[dict[str, Any]], actions: Sequence[Action], top: int = 15
) -> dict[str, Any]:
    """Per test: its seconds minus the seconds its worker's actions covered during it."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for action in actions:
        by_worker.setdefault(action.worker, []).append((action.start, action.finish))
    rows = []
    for test in tests:
        took = test["end"] - test["start"]
        cloud = covered(by_worker.get(test["worker"], []), test["start"], test["end"])
        rows.append(
            {
                "nodeid": test["nodeid"],
                "worker": test["worker"],
                "seconds": round(took, 2),
                "cloud": round(cloud, 2),
                "overhead": round(took - cloud, 2),
            }
        )
    rows.sort(key=lambda r: -r["overhead"])
    return {
        "tests": len(rows),
        "seconds": round(sum(r["seconds"] for r in rows), 1),
        "cloud": round(sum(r["cloud"] for r in rows), 1),
        "overhead": round(sum(r["overhead"] for r in rows), 1),
        "top": rows[:top],
    }


def _detection(wait: dict[str, Any], finishes: dict[str, list[float]]) -> float | None:
    """Seconds from the server's last event finish to the check that saw it (None: not measurable)."""
    found = _UUID.search(wait["describe"])
    if not (wait["ok"] and wait["first"] is False and found and wait["last_miss"]):
        return None
    changed = [f for f in finishes.get(found.group(0), []) if wait["start"] <= f <= wait["end"]]
    return wait["end"] - max(changed) if changed else None


def waits(records: Sequence[dict[str, Any]], actions: Sequence[Action]) -> dict[str, Any]:
    """Detection delay and HTTP requests per wait."""
    finishes: dict[str, list[float]] = {}
    for action in actions:
        finishes.setdefault(action.server_id, []).extend(f for _, _, f in action.events)
    delays = [d for d in (_detection(w, finishes) for w in records) if d is not None]
    waited = [w for w in records if w["first"] is False]
    return {
        "waits": len(records),
        "waits_that_waited": len(waited),
        "seconds_waiting": round(sum(w["end"] - w["start"] for w in records), 1),
        "requests_per_wait": spread([w["calls"] for w in records]),
        "requests_per_wait_that_waited": spread([w["calls"] for w in waited]),
        "checks_per_wait": spread([w["checks"] for w in records]),
        "detection_delay_s": spread(delays),
        "poll_gap_s": spread([w["end"] - w["last_miss"] for w in waited if w["ok"] and w["last_miss"]]),
    }


def api_load(requests: Sequence[Request], wall: float) -> dict[str, Any]:
    """nova-api requests of the run: how many, per method, and the seconds nova-api spent on them."""
    methods: dict[str, int] = {}
    for request in requests:
        methods[request.method] = methods.get(request.method, 0) + 1
    busy = covered((r.start, r.end) for r in requests)
    return {
        "requests": len(requests),
        "per_second": round(len(requests) / wall, 1) if wall else None,
        "by_method": methods,
        "seconds_sum": round(sum(r.end - r.start for r in requests), 1),
        "busy_seconds": round(busy, 1),
        "get_server_seconds_sum": round(
            sum(
                r.end - r.start
                for r in requests
                if r.method == "GET" and re.fullmatch(r"/v2\.1/servers/[0-9a-f-]{36}", r.path)
            ),
            1,
        ),
    }


def idle_gaps(actions: Sequence[Action], start: float, end: float, top: int = 10) -> list[dict[str, float]]:
    """The longest stretches of the run in which the cloud had no action of it in progress."""
    gaps, cursor = [], start
    for s, e in union((a.start, a.finish) for a in actions):
        if s > cursor:
            gaps.append({"from": round(cursor - start, 1), "seconds": round(s - cursor, 1)})
        cursor = max(cursor, e)
    if end > cursor:
        gaps.append({"from": round(cursor - start, 1), "seconds": round(end - cursor, 1)})
    return sorted(gaps, key=lambda g: -g["seconds"])[:top]
