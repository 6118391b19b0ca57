"""The one waiting mechanism: adaptive polling with a named timeout.

:func:`wait_until` polls a check (fast at first, backing off to a maximum
interval) until it holds or the timeout runs out; every other waiter is a thin
layer on it.  :func:`wait_for_server` waits for a status with task_state null
and records the transitions into a :class:`~conformance.lib.trace.Trace`;
:func:`wait_for_deleted` waits for a 404.

A wait that runs out raises :class:`~conformance.errors.WaitTimeout` (an
ERROR: the cloud did not decide in time); a server that goes to ERROR raises
:class:`~conformance.errors.ServerFault` at once (a FAIL), showing the fault.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from typing import Any

from openstack import exceptions

from conformance.errors import ServerFault, WaitTimeout
from conformance.lib import evidence
from conformance.lib.servers import Server, get_server
from conformance.lib.trace import Trace

Progress = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class Polling:
    """Poll intervals: start at ``initial``, multiply by ``backoff`` up to ``maximum``."""

    initial: float = 0.2
    maximum: float = 2.0
    backoff: float = 1.5
    progress_every: float = 10.0

    def intervals(self) -> Iterator[float]:
        interval = self.initial
        while True:
            yield interval
            interval = min(self.maximum, interval * self.backoff)


def wait_until(check: Callable[[], bool], *, timeout: float, poll: Polling, describe: str,
               state: Callable[[], str] | None = None, progress: Progress | None = None,
               clock: Callable[[], float] = time.monotonic,
               sleep: Callable[[float], None] = time.sleep) -> None:
    """Call ``check`` until it returns True, or raise WaitTimeout after ``timeout`` s.

    ``state`` describes what was last seen (for progress lines and the timeout
    message); ``progress`` receives a line every ``poll.progress_every`` s.
    Exceptions raised by ``check`` propagate unchanged.
    """
    start = clock()
    next_report = start + poll.progress_every
    for interval in poll.intervals():
        if check():
            return
        now = clock()
        seen = state() if state else ""
        if now - start >= timeout:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {describe}"
                              + (f"\nlast seen: {seen}" if seen else ""))
        if progress and now >= next_report:
            progress(f"still waiting ({now - start:.0f}s of {timeout:g}s) for {describe}"
                     + (f": {seen}" if seen else ""))
            next_report = now + poll.progress_every
        sleep(min(interval, max(0.0, start + timeout - now)))


def observe(trace: Trace, server: Server) -> None:
    """Record the server's current state into ``trace``."""
    trace.record(server.status, server.vm_state, server.task_state, server.power_state, server.host)


def wait_for_server(conn: Any, server_id: str, *, status: str | None, timeout: float, poll: Polling,
                    task_state: str | None = None, predicate: Callable[[Server], bool] | None = None,
                    label: str = "", progress: Progress | None = None,
                    on_poll: Callable[[Server], None] | None = None) -> tuple[Server, Trace]:
    """Wait until the server shows ``status`` and ``task_state`` (null by default) and ``predicate``.

    ``on_poll`` is called with every server seen (e.g. to sample migration records meanwhile).

    ``status=None`` accepts any status: the wait ends when the task is done
    (``task_state`` null), for operations whose end state is what a test asserts.

    Returns the final server and the trace of every distinct state seen.
    Raises ServerFault as soon as the server is ERROR (unless ERROR is the
    target) and WaitTimeout, with the last server JSON and the trace, on
    timeout.  A 404 while waiting propagates as NotFoundException.
    """
    target = status or "settled"
    trace = Trace(label or f"{server_id} -> {target}")
    last: list[Server] = []

    def read() -> Server:
        server = get_server(conn, server_id)
        last[:] = [server]
        observe(trace, server)
        if on_poll is not None:
            on_poll(server)
        if server.status == "ERROR" and status != "ERROR":
            raise ServerFault(f"server {server_id} went to ERROR while waiting for {target}\n"
                              f"fault: {evidence.to_json(server.fault)}\n{trace}")
        return server

    def reached(server: Server) -> bool:
        return status in (None, server.status) and server.task_state == task_state

    def check() -> bool:
        server = read()
        if not reached(server) or predicate is None:
            return reached(server)
        # A predicate may read more than this server (events, migration records) and so see a
        # later moment than it: the end state is the server read after the predicate held.
        return predicate(server) and reached(read())

    try:
        wait_until(check, timeout=timeout, poll=poll, describe=f"server {server_id} to be {target}",
                   state=lambda: str(trace.last), progress=progress)
    except WaitTimeout as exc:
        seen = last[0].data if last else None
        raise WaitTimeout(f"{exc.args[0].splitlines()[0]}\n{trace}\nlast server JSON:\n"
                          f"{evidence.redact(evidence.to_json(seen))}",
                          last=seen, history=trace.to_data()) from None
    finally:
        evidence.attach_text(f"trace {trace.label}", str(trace))
    return last[0], trace


def wait_for_deleted(conn: Any, server_id: str, *, timeout: float, poll: Polling,
                     progress: Progress | None = None) -> Trace:
    """Wait until GET /servers/{id} answers 404; returns the trace up to then."""
    trace = Trace(f"{server_id} -> deleted")

    def check() -> bool:
        try:
            observe(trace, get_server(conn, server_id))
        except exceptions.NotFoundException:
            trace.record_gone()
            return True
        return False

    try:
        wait_until(check, timeout=timeout, poll=poll, describe=f"server {server_id} to be gone (404)",
                   state=lambda: str(trace.last), progress=progress)
    except WaitTimeout as exc:
        raise WaitTimeout(f"{exc.args[0]}\n{trace}", history=trace.to_data()) from None
    finally:
        evidence.attach_text(f"trace {trace.label}", str(trace))
    return trace
