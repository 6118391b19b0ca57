"""Run independent calls at once, a bounded number at a time, and keep every result.

For requests whose answers do not depend on each other (the refusals of one
state: none of them may change the server), sending them at once costs the
slowest of them instead of their sum.  Results come back in the order of the
inputs; the first exception (a 5xx, a timeout) is raised after every call has
ended, so no request is left in flight.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fan_out(call: Callable[[T], R], items: Sequence[T], limit: int) -> list[R]:
    """``[call(item) for item in items]``, at most ``limit`` at a time (1: one after another)."""
    if limit <= 1 or len(items) <= 1:
        return [call(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="fan-out") as pool:
        futures = [pool.submit(call, item) for item in items]
    return [future.result() for future in futures]
