"""The control endpoint of the embedded Nova process (loopback, not OpenStack).

======  ==============================  =====================================
GET     /health                         rss, threads, computes, active defects
GET     /threads                        live threads grouped by what they run
POST    /computes/<host>/<action>       stop, start, restart, fence, unfence
POST    /periodics                      run the periodic tasks now
GET     /defects                        the defect catalogue
POST    /defects/<name>                 switch a defect on
DELETE  /defects/<name>                 switch a defect off
GET     /faults                         injected API faults and their counters
POST    /faults?spec=5xx=0.05,...       inject API faults (see faults.py)
DELETE  /faults                         stop injecting faults
======  ==============================  =====================================

Every answer is JSON; errors are ``{"error": "..."}`` with 400, 404, 405 or 500.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from conformance.embedded.defects import CATALOGUE
from conformance.embedded.serving import rss_mb

LOG = logging.getLogger(__name__)
COMPUTE_ACTIONS = ("stop", "start", "restart", "fence", "unfence")
StartResponse = Callable[..., Any]


class HTTPError(Exception):
    """An error answer: status line and message."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = status


def _respond(start_response: StartResponse, status: str, body: Any) -> list[bytes]:
    data = json.dumps(body, sort_keys=True).encode()
    start_response(status, [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data)))])
    return [data]


def thread_summary() -> dict[str, int]:
    """Count live threads by name pattern and the function they run."""
    frames = sys._current_frames()
    counts: collections.Counter[str] = collections.Counter()
    executors: set[int] = set()
    for thread in threading.enumerate():
        frame, where = frames.get(thread.ident or -1), "?"
        while frame is not None:
            if not frame.f_code.co_filename.endswith("threading.py"):
                where = f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_code.co_name}"
            frame = frame.f_back
        executor = getattr(thread, "executor_ref", lambda: None)()  # futurist workers
        if executor is not None:
            state = "idle" if getattr(thread, "idle", False) else "busy"
            where += f" [{getattr(executor, 'name', type(executor).__name__)}, {state}]"
            executors.add(id(executor))
        counts[f"{re.sub(r'[0-9]+', 'N', thread.name)} @ {where}"] += 1
    summary = dict(counts.most_common())
    summary["(pool executors)"] = len(executors)
    return summary


class ControlApp:
    """WSGI application that drives an :class:`~conformance.embedded.cloud.EmbeddedCloud`."""

    def __init__(self, cloud: Any):
        self.cloud = cloud

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        parts = [p for p in environ.get("PATH_INFO", "").split("/") if p]
        try:
            status, body = self.route(method, parts, environ.get("QUERY_STRING", ""))
        except HTTPError as exc:
            status, body = exc.status, {"error": str(exc)}
        except Exception as exc:
            LOG.exception("control request %s %s failed", method, parts)
            status, body = "500 Internal Server Error", {"error": repr(exc)}
        return _respond(start_response, status, body)

    def route(self, method: str, parts: list[str], query: str = "") -> tuple[str, Any]:
        """Dispatch one request; returns (status, JSON body)."""
        if parts == ["faults"]:
            self._allow(method, "GET", "POST", "DELETE")
            return "200 OK", self.faults(method, query)
        if parts == ["health"]:
            self._allow(method, "GET")
            return "200 OK", self.health()
        if parts == ["threads"]:
            self._allow(method, "GET")
            return "200 OK", thread_summary()
        if parts == ["periodics"]:
            self._allow(method, "POST")
            self.cloud.run_periodics()
            return "200 OK", {"ok": True}
        if len(parts) == 3 and parts[0] == "computes":
            self._allow(method, "POST")
            return "200 OK", self.compute_action(parts[1], parts[2])
        if parts == ["defects"]:
            self._allow(method, "GET")
            return "200 OK", [d.as_dict() for d in CATALOGUE]
        if len(parts) == 2 and parts[0] == "defects":
            self._allow(method, "POST", "DELETE")
            return "200 OK", self.switch_defect(parts[1], method == "POST")
        raise HTTPError("404 Not Found", f"no such resource: /{'/'.join(parts)}")

    @staticmethod
    def _allow(method: str, *allowed: str) -> None:
        if method not in allowed:
            raise HTTPError("405 Method Not Allowed", f"use {' or '.join(allowed)}")

    def health(self) -> dict[str, Any]:
        """Process and compute status."""
        return {"rss_mb": round(rss_mb(), 1), "threads": threading.active_count(),
                "computes": self.cloud.compute_states(), "defects": CATALOGUE.active()}

    def compute_action(self, host: str, action: str) -> dict[str, Any]:
        """Run stop/start/restart/fence/unfence on one compute host."""
        if action not in COMPUTE_ACTIONS:
            raise HTTPError("404 Not Found", f"unknown compute action {action!r}")
        if host not in self.cloud.compute_states():
            raise HTTPError("404 Not Found", f"unknown compute host {host!r}")
        getattr(self.cloud, f"{action}_compute" if action in COMPUTE_ACTIONS[:3] else action)(host)
        LOG.info("control: %s %s", action, host)
        return {"host": host, "action": action, "state": self.cloud.compute_states()[host]}

    @staticmethod
    def faults(method: str, query: str) -> dict[str, Any]:
        """Show, set (``?spec=5xx=0.05,...``) or stop the injected API faults."""
        import urllib.parse

        from conformance.embedded.faults import FAULTS, parse_spec

        if method == "POST":
            spec = urllib.parse.parse_qs(query).get("spec", [""])[0]
            try:
                FAULTS.set(parse_spec(spec))
            except ValueError as exc:
                raise HTTPError("400 Bad Request", str(exc)) from None
        elif method == "DELETE":
            FAULTS.set(None)
        return FAULTS.status()

    @staticmethod
    def switch_defect(name: str, on: bool) -> dict[str, Any]:
        """Switch one defect on or off."""
        try:
            defect = CATALOGUE.switch(name, on)
        except KeyError:
            raise HTTPError("404 Not Found", f"unknown defect {name!r}") from None
        LOG.info("control: defect %s %s", name, "on" if on else "off")
        return defect.as_dict()
