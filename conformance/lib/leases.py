"""Exclusive leases on compute hosts, shared by every xdist worker of a run.

A test that takes a host down (evacuate) or moves servers between hosts it
names holds a lease on those hosts for its whole scenario: one lock file per
host in a run-scoped directory.  Leases are taken all-or-nothing (never
hold-and-wait), so two tests cannot deadlock on them; take the lease before
creating any server, so that a lease never waits on a server slot held by
its own test.

The design, and what it protects (see ``conformance/fixtures.py``):

* only a lease holder names hosts (boot with ``host``, migrate, live-migrate
  or evacuate to a host), and only its own leased hosts, so no two tests ever
  target the same host;
* tests without a lease boot wherever the scheduler puts them, leased hosts
  included; that is harmless except for a host about to be fenced, so before
  fencing the holder *drains* it (:mod:`conformance.lib.hostcontrol`): it
  disables the compute service, so the scheduler places nothing new there,
  and waits until every allocation on the host's resource provider is its
  own.  No other test's server is ever on a fenced host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import filelock

from conformance.errors import InfraError


class HostLeases:
    """Lock files ``<directory>/<host>.lock``; a held lock is a lease on that host."""

    def __init__(self, directory: str | Path, poll: float = 0.5):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.poll = poll

    def _try(self, host: str) -> filelock.BaseFileLock | None:
        lock = filelock.FileLock(self.directory / f"{host}.lock", thread_local=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return None
        return lock

    def _attempt(self, candidates: list[str], count: int) -> list[tuple[str, filelock.BaseFileLock]]:
        held: list[tuple[str, filelock.BaseFileLock]] = []
        for host in candidates:
            lock = self._try(host)
            if lock is not None:
                held.append((host, lock))
            if len(held) == count:
                return held
        for _, lock in held:
            lock.release()
        return []

    @contextlib.contextmanager
    def hold(self, candidates: Callable[[], list[str]], count: int, timeout: float) -> Iterator[list[str]]:
        """Lease ``count`` of the hosts ``candidates()`` names (asked anew on every attempt).

        Yields the leased host names in ``candidates()`` order; raises
        InfraError if they cannot all be leased within ``timeout`` s.
        """
        deadline = time.monotonic() + timeout
        while True:
            usable = candidates()
            held = self._attempt(usable, count)
            if held:
                break
            if time.monotonic() >= deadline:
                raise InfraError(f"could not lease {count} compute hosts within {timeout:g}s "
                                 f"(usable now: {', '.join(usable) or 'none'}; other tests hold the rest)")
            time.sleep(self.poll)
        try:
            yield [host for host, _ in held]
        finally:
            for _, lock in held:
                lock.release()
