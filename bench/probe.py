"""A pytest plugin for benchmarks (``-p bench.probe``): when each test ran, and how each wait went.

It records, into ``$BENCH_PROBE_DIR/<worker>.jsonl`` (one JSON object a line):

* ``{"kind": "test", "nodeid", "worker", "start", "end", "outcome"}``: one per
  test, from the start of its setup to the end of its teardown;
* ``{"kind": "wait", "describe", "worker", "start", "end", "checks", "calls",
  "first", "last_miss", "ok"}``: one per :func:`conformance.lib.waiter.wait_until`
  call: how many checks and HTTP requests it took, whether the first check
  already held, and when the last failed check ended (the state changed after
  that and before ``end``).

Times are POSIX seconds.  The probe only observes: it wraps ``wait_until``
and keystoneauth's ``Session.request`` (to count requests) and changes no
outcome; without ``BENCH_PROBE_DIR`` it does nothing.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

_calls = threading.local()


def _out() -> Path | None:
    directory = os.environ.get("BENCH_PROBE_DIR")
    return Path(directory) if directory else None


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _write(record: dict[str, Any]) -> None:
    out = _out()
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    with (out / f"{_worker()}.jsonl").open("a") as stream:
        stream.write(json.dumps(record) + "\n")


def _count_requests(request: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(request)
    def counted(*args: Any, **kwargs: Any) -> Any:
        _calls.count = getattr(_calls, "count", 0) + 1
        return request(*args, **kwargs)

    return counted


def _timed_wait(wait_until: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(wait_until)
    def timed(check: Callable[[], bool], **kwargs: Any) -> None:
        seen: dict[str, Any] = {"checks": 0, "first": None, "last_miss": None}

        def counted_check() -> bool:
            held = check()
            seen["checks"] += 1
            if seen["first"] is None:
                seen["first"] = bool(held)
            if not held:
                seen["last_miss"] = time.time()
            return held

        start, calls = time.time(), getattr(_calls, "count", 0)
        ok = False
        try:
            wait_until(counted_check, **kwargs)
            ok = True
        finally:
            _write(
                {
                    "kind": "wait",
                    "describe": str(kwargs.get("describe", "")),
                    "worker": _worker(),
                    "start": start,
                    "end": time.time(),
                    "calls": getattr(_calls, "count", 0) - calls,
                    "ok": ok,
                    **seen,
                }
            )

    return timed


def _patch() -> None:
    """Wrap wait_until everywhere it was imported by name, and count HTTP requests."""
    from keystoneauth1 import session

    from conformance.lib import waiter

    original = waiter.wait_until
    wrapped = _timed_wait(original)
    for name, module in list(sys.modules.items()):
        if name.startswith(("conformance", "bench")) and getattr(module, "wait_until", None) is original:
            module.wait_until = wrapped  # type: ignore[attr-defined]
    session.Session.request = _count_requests(session.Session.request)  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    if _out() is not None:
        _patch()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    start = time.time()
    try:
        return (yield)
    finally:
        _write(
            {"kind": "test", "nodeid": item.nodeid, "worker": _worker(), "start": start, "end": time.time()}
        )
