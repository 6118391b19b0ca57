"""What the cloud did for one run: instance actions, their events, and API requests.

The cloud's own record is the floor a suite cannot beat.  :func:`run_actions`
reads, as the admin, every server of a run (by its ``cft-<run_id>-`` name,
deleted ones included: ``deleted=True`` and microversion >= 2.21 for their
actions) and each instance action with its events.  An action's interval is
its ``start_time`` to the latest ``finish_time`` of its events: the time the
cloud worked on it.  :func:`api_requests` reads the nova-api request log of an
embedded cloud (``WORKDIR/logs/nova-api.log``) for the requests of a window.

Times are POSIX seconds (the cloud runs on this machine: same clock).
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# deleted servers' actions need >= 2.21; events for everyone >= 2.51
MICROVERSION = "2.51"


@dataclasses.dataclass(frozen=True)
class Action:
    """One instance action of one server: [start, finish] in POSIX seconds."""

    server_id: str
    server_name: str
    action: str
    request_id: str
    start: float
    finish: float
    events: tuple[tuple[str, float, float], ...]

    @property
    def seconds(self) -> float:
        return self.finish - self.start

    @property
    def worker(self) -> str:
        """The xdist worker in the name ``cft-<run>-<worker>-<suffix>`` ('main' without xdist)."""
        parts = self.server_name.split("-")
        return parts[2] if len(parts) > 3 else "?"


def to_posix(stamp: str | None) -> float | None:
    """Nova's naive-UTC ISO time (with or without Z / microseconds) as POSIX seconds."""
    if not stamp:
        return None
    value = datetime.datetime.fromisoformat(stamp.replace("Z", "").split("+")[0])
    return value.replace(tzinfo=datetime.UTC).timestamp()


def _get(conn: Any, path: str, params: dict[str, Any] | None = None) -> Any:
    response = conn.compute.get(path, params=params or {}, microversion=MICROVERSION)
    response.raise_for_status()
    return response.json()


def run_servers(conn: Any, run_id: str) -> dict[str, str]:
    """id -> name of every server of the run, live and deleted (admin, all projects)."""
    found: dict[str, str] = {}
    for deleted in (False, True):
        params = {"all_tenants": 1, "deleted": deleted, "name": f"^cft-{run_id}-", "limit": 1000}
        for server in _get(conn, "/servers/detail", params)["servers"]:
            found[server["id"]] = server["name"]
    return found


def server_actions(conn: Any, server_id: str, name: str) -> list[Action]:
    """Every action of one server, with its events."""
    actions = []
    for summary in _get(conn, f"/servers/{server_id}/os-instance-actions")["instanceActions"]:
        detail = _get(conn, f"/servers/{server_id}/os-instance-actions/{summary['request_id']}")
        start = to_posix(summary["start_time"]) or 0.0
        events = tuple(
            (
                e["event"],
                to_posix(e["start_time"]) or start,
                to_posix(e.get("finish_time")) or to_posix(e["start_time"]) or start,
            )
            for e in detail["instanceAction"].get("events") or []
        )
        finish = max([start, *(f for _, _, f in events)])
        actions.append(
            Action(server_id, name, summary["action"], summary["request_id"], start, finish, events)
        )
    return actions


def run_actions(conn: Any, run_id: str) -> list[Action]:
    """Every instance action of every server of the run, oldest first."""
    actions = [a for sid, name in run_servers(conn, run_id).items() for a in server_actions(conn, sid, name)]
    return sorted(actions, key=lambda a: a.start)


_REQUEST = re.compile(
    r"^(\S+ \S+) \d+ INFO nova\.api\.openstack\.requestlog \[(\S+)[^\]]*\] \S+ "
    r"\"(\w+) (\S+)\" status: (\d+) len: \d+ microversion: \S+ time: ([\d.]+)"
)


@dataclasses.dataclass(frozen=True)
class Request:
    """One nova-api request: [start, end] in POSIX seconds."""

    method: str
    path: str
    status: int
    start: float
    end: float
    request_id: str


def api_requests(log: Path, start: float, end: float) -> list[Request]:
    """The nova-api requests that ended within [start, end] (the log's local time is UTC)."""
    found: list[Request] = []
    if not log.exists():
        return found
    with log.open(errors="replace") as lines:
        for line in lines:
            match = _REQUEST.match(line)
            if not match:
                continue
            stamp, rid, method, path, status, took = match.groups()
            ended = to_posix(stamp.replace(" ", "T")) or 0.0
            if start <= ended <= end:
                found.append(Request(method, path, int(status), ended - float(took), ended, rid))
    return found


def union(intervals: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """Merge overlapping [start, end] intervals."""
    merged: list[list[float]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(s, e) for s, e in merged]


def covered(
    intervals: Iterable[tuple[float, float]], start: float | None = None, end: float | None = None
) -> float:
    """Seconds covered by the union of ``intervals`` (clipped to [start, end] when given)."""
    total = 0.0
    for s, e in union(intervals):
        s = s if start is None else max(s, start)
        e = e if end is None else min(e, end)
        total += max(0.0, e - s)
    return total
