"""Leases on compute hosts, shared by every xdist worker of a run.

A test that takes a host down (evacuate) or moves servers between hosts it
names holds a lease on those hosts for its whole scenario: lock files per
host in a run-scoped directory.  A lease is *shared* (a move names the host:
boots there, migrates to or from it) or *exclusive* (the host is drained and
fenced).  Leases are taken all-or-nothing (never hold-and-wait), so two tests
cannot deadlock on them; take the lease before creating any server, so that
a lease never waits on a server slot held by its own test.

The design, and what it protects (see ``conformance/fixtures.py``):

* only a lease holder names hosts (boot with ``host``, migrate, live-migrate
  or evacuate to a host), and only its own leased hosts;
* moves sharing a host do not disturb each other: each reads and asserts only
  its own server, its own Placement consumers (instance and migration) and its
  own domain and files on the host, and the hosts have room for every server
  the run may hold at once (``concurrency.max_servers``);
* tests without a lease boot wherever the scheduler puts them, leased hosts
  included; that is harmless except for a host about to be fenced, so the
  fencer leases it exclusively (no move names it meanwhile) and *drains* it
  before fencing (:mod:`conformance.lib.hostcontrol`): it disables the compute
  service, so the scheduler places nothing new there, and waits until every
  allocation on the host's resource provider is its own.  No other test's
  server is ever on a fenced host.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import filelock

from conformance.errors import InfraError


class HostLeases:
    """Lock files ``<directory>/<host>.<slot>.lock``: a shared lease holds one slot, an exclusive one all.

    A shared lease lets its holder name the host (boot there, move servers to or
    from it); tests sharing a host only read and assert their own servers, consumers
    and files there.  An exclusive lease (a host to drain and fence) waits until no
    one else holds any slot of the host, and keeps everyone else out until released.
    """

    def __init__(self, directory: str | Path, poll: float = 0.5, slots: int = 4):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.poll, self.slots = poll, slots

    def _try(self, host: str, slot: int) -> filelock.BaseFileLock | None:
        lock = filelock.FileLock(self.directory / f"{host}.{slot}.lock", thread_local=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return None
        return lock

    def _take(self, host: str, exclusive: bool) -> list[filelock.BaseFileLock]:
        """Every slot of ``host`` (exclusive) or the first free one; [] (nothing held) if not possible."""
        held: list[filelock.BaseFileLock] = []
        for slot in range(self.slots):
            lock = self._try(host, slot)
            if lock is not None:
                held.append(lock)
                if not exclusive:
                    return held
            elif exclusive:
                break
        if exclusive and len(held) == self.slots:
            return held
        _release(held)
        return []

    def _attempt(self, candidates: list[str], count: int, exclusive: int) -> list[tuple[str, list[Any]]]:
        """The first ``exclusive`` of ``count`` hosts exclusively, the rest shared; all or nothing."""
        held: list[tuple[str, list[Any]]] = []
        for position in range(count):
            for host in candidates:
                if host in (h for h, _ in held):
                    continue
                locks = self._take(host, position < exclusive)
                if locks:
                    held.append((host, locks))
                    break
            else:
                for _, locks in held:
                    _release(locks)
                return []
        return held

    @contextlib.contextmanager
    def hold(self, candidates: Callable[[], list[str]], count: int, timeout: float,
             exclusive: int | None = None) -> Iterator[list[str]]:
        """Lease ``count`` of the hosts ``candidates()`` names (asked anew on every attempt).

        The first ``exclusive`` of them (default: all) are leased exclusively, the
        others shared.  Yields the leased host names in that order; raises
        InfraError if they cannot all be leased within ``timeout`` s.
        """
        exclusive = count if exclusive is None else exclusive
        deadline = time.monotonic() + timeout
        while True:
            usable = candidates()
            held = self._attempt(usable, count, exclusive)
            if held:
                break
            if time.monotonic() >= deadline:
                raise InfraError(f"could not lease {count} compute hosts within {timeout:g}s "
                                 f"(usable now: {', '.join(usable) or 'none'}; other tests hold the rest)")
            time.sleep(self.poll)
        try:
            yield [host for host, _ in held]
        finally:
            for _, locks in held:
                _release(locks)


def _release(locks: list[Any]) -> None:
    for lock in locks:
        lock.release()
