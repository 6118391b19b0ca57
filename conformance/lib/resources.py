"""Resources the suite creates: naming, tagging, cleanup, leak finding and sweeping.

Every server is named ``cft-<run_id>-<worker>-<suffix>``, tagged ``conformance``
and ``cft-run-<run_id>`` and carries the metadata ``conformance_run=<run_id>``.
Its cleanup is registered the moment its id exists, before any wait.  Images
the suite creates (snapshots) carry the same name prefix and the property
``conformance_run``.  :func:`sweep` deletes only what carries those marks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import filelock
from openstack import exceptions

from conformance.errors import InfraError
from conformance.lib import evidence
from conformance.lib.api import Reply, call
from conformance.lib.servers import create_server, delete_server, get_server, list_servers, server_action
from conformance.lib.waiter import Polling, wait_for_deleted, wait_until

TAG = "conformance"
RUN_PROPERTY = "conformance_run"
NAME_PREFIX = "cft-"


def run_tag(run_id: str) -> str:
    return f"cft-run-{run_id}"


def resource_name(run_id: str, worker: str, suffix: str) -> str:
    return f"{NAME_PREFIX}{run_id}-{worker}-{suffix}"


class CleanupRegistry:
    """Cleanups run last-in first-out; failures are collected, never hidden."""

    def __init__(self) -> None:
        self._items: list[tuple[str, Callable[[], None]]] = []
        self.failures: list[str] = []

    def add(self, description: str, fn: Callable[[], None]) -> None:
        self._items.append((description, fn))

    def run_one(self, description: str) -> None:
        """Run (and forget) the newest cleanup named ``description`` now; its errors propagate."""
        index = max(i for i, (d, _) in enumerate(self._items) if d == description)
        _, fn = self._items.pop(index)
        fn()

    def run(self) -> list[str]:
        """Run every cleanup; return (and keep) the failures as readable lines."""
        while self._items:
            description, fn = self._items.pop()
            try:
                fn()
            except Exception as exc:
                self.failures.append(f"{description}: {type(exc).__name__}: {exc}")
        if self.failures:
            evidence.attach_text("cleanup failures", "\n".join(self.failures))
        return list(self.failures)


class ServerSlots:
    """A cross-process counting semaphore: ``count`` lock files in ``directory``.

    A turnstile (one more lock file) keeps an :meth:`exclusive` waiter from
    starving: while it waits, a process that holds no slot (a test about to
    start) waits too; processes holding slots (tests under way) go on, so
    their tests end and free the slots.
    """

    def __init__(self, directory: str | Path, count: int, poll: float = 0.2):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.count = count
        self.poll = poll
        self.exclusive_held = False
        self._handed: list[filelock.BaseFileLock] = []

    def _try(self, name: str) -> filelock.BaseFileLock | None:
        lock = filelock.FileLock(self.directory / f"{name}.lock", thread_local=False)
        try:
            lock.acquire(blocking=False)
        except filelock.Timeout:
            return None
        return lock

    def _holds_a_slot(self) -> bool:
        self._handed = [lock for lock in self._handed if lock.is_locked]
        return bool(self._handed)

    def _pass_turnstile(self) -> bool:
        """True unless an exclusive waiter holds the turnstile (a slot holder always passes)."""
        if self._holds_a_slot():
            return True
        turnstile = self._try("turnstile")
        if turnstile is None:
            return False
        turnstile.release()
        return True

    def acquire(self, timeout: float) -> filelock.BaseFileLock | None:
        """Take a free slot, waiting up to ``timeout`` s; raise InfraError if none frees up.

        Returns None (no slot needed) while this object holds every slot.
        """
        if self.exclusive_held:
            return None
        deadline = time.monotonic() + timeout
        while True:
            if self._pass_turnstile():
                for index in range(self.count):
                    lock = self._try(f"slot-{index}")
                    if lock is not None:
                        self._handed.append(lock)
                        return lock
            if time.monotonic() >= deadline:
                raise InfraError(f"no server slot free after {timeout:g}s "
                                 f"(concurrency.max_servers={self.count})")
            time.sleep(self.poll)

    def _hold_all(self, deadline: float, timeout: float) -> list[filelock.BaseFileLock]:
        """Every slot, all-or-nothing attempts (never hold-and-wait) until ``deadline``."""
        while True:
            held = [lock for lock in (self._try(f"slot-{i}") for i in range(self.count)) if lock is not None]
            if len(held) == self.count:
                return held
            for lock in held:
                lock.release()
            if time.monotonic() >= deadline:
                raise InfraError(f"could not hold all {self.count} server slots within {timeout:g}s")
            time.sleep(self.poll)

    @contextlib.contextmanager
    def exclusive(self, timeout: float) -> Iterator[None]:
        """Hold every slot, so no other server of this run exists meanwhile.

        Takes the turnstile first (no new test starts a server meanwhile), then
        every slot; raises InfraError if they do not all come free in time.
        """
        deadline = time.monotonic() + timeout
        turnstile = self._try("turnstile")
        while turnstile is None:
            if time.monotonic() >= deadline:
                raise InfraError(f"could not hold all {self.count} server slots within {timeout:g}s "
                                 "(another test holds them all)")
            time.sleep(self.poll)
            turnstile = self._try("turnstile")
        try:
            held = self._hold_all(deadline, timeout)
        finally:
            turnstile.release()
        self.exclusive_held = True
        try:
            yield
        finally:
            self.exclusive_held = False
            for lock in held:
                lock.release()


@dataclasses.dataclass(frozen=True)
class Created:
    """A server the factory created: its id, name and the POST reply."""

    id: str
    name: str
    reply: Reply


class ServerFactory:
    """Creates tagged servers for one owner and registers their cleanup at once."""

    def __init__(self, conn: Any, run_id: str, worker: str, cleanup: CleanupRegistry, *,
                 delete_timeout: float, poll: Polling, slots: ServerSlots | None = None,
                 slot_timeout: float = 0.0):
        self.conn, self.run_id, self.worker, self.cleanup = conn, run_id, worker, cleanup
        self.delete_timeout, self.poll = delete_timeout, poll
        self.slots, self.slot_timeout = slots, slot_timeout
        self.created: list[Created] = []

    def name(self, suffix: str) -> str:
        return resource_name(self.run_id, self.worker, suffix)

    def create_server(self, name_suffix: str, *, image: str, flavor: str, network: str,
                      **extra: Any) -> Created:
        """POST /servers (tags need microversion 2.52+); the cleanup exists before any wait."""
        slot = self.slots.acquire(self.slot_timeout) if self.slots else None
        body = {"name": self.name(name_suffix), "imageRef": image, "flavorRef": flavor,
                "networks": network if network in ("none", "auto") else [{"uuid": network}],
                "tags": [TAG, run_tag(self.run_id)], "metadata": {RUN_PROPERTY: self.run_id}, **extra}
        try:
            reply = create_server(self.conn, body)
        except BaseException:
            if slot:
                slot.release()
            raise
        server_id = str(reply.body["server"]["id"])
        self.cleanup.add(f"delete server {server_id}", lambda: self._delete(server_id, slot))
        self.created.append(Created(server_id, body["name"], reply))
        return self.created[-1]

    def delete(self, server_id: str) -> None:
        """Run the server's cleanup now (delete, wait for 404, free its slot)."""
        self.cleanup.run_one(f"delete server {server_id}")

    def _delete(self, server_id: str, slot: filelock.BaseFileLock | None) -> None:
        try:
            delete_and_wait(self.conn, server_id, timeout=self.delete_timeout, poll=self.poll)
        finally:
            if slot:
                slot.release()

    def image_properties(self) -> dict[str, str]:
        """Metadata for a createImage body, so the snapshot can be swept."""
        return {RUN_PROPERTY: self.run_id}

    def track_image(self, image_id: str) -> None:
        """Register the deletion of an image this test created (e.g. a snapshot)."""
        self.cleanup.add(f"delete image {image_id}", lambda: delete_image(self.conn, image_id))


def delete_and_wait(conn: Any, server_id: str, *, timeout: float, poll: Polling) -> None:
    """Delete a server and wait for 404.

    A refused delete (409) falls back to forceDelete, and a refused forceDelete
    (a lock) to unlocking first (any member may lift an owner lock).  A server
    that becomes SOFT_DELETED (reclaim_instance_interval > 0) is force-deleted.
    """
    try:
        _request_delete(conn, server_id)
        if _soft_deleted(conn, server_id, timeout=timeout, poll=poll):
            server_action(conn, server_id, "forceDelete")
            wait_for_deleted(conn, server_id, timeout=timeout, poll=poll)
    except exceptions.NotFoundException:
        return


def _request_delete(conn: Any, server_id: str) -> None:
    try:
        delete_server(conn, server_id)
        return
    except exceptions.ConflictException:
        pass
    try:
        server_action(conn, server_id, "forceDelete")
        return
    except exceptions.ConflictException:
        server_action(conn, server_id, "unlock")
    delete_server(conn, server_id)


def _soft_deleted(conn: Any, server_id: str, *, timeout: float, poll: Polling) -> bool:
    """Wait until the server is gone (False) or settled in SOFT_DELETED (True)."""
    seen: list[Any] = []

    def settled() -> bool:
        try:
            seen[:] = [get_server(conn, server_id)]
        except exceptions.NotFoundException:
            seen.clear()
            return True
        return bool(seen[0].status == "SOFT_DELETED" and seen[0].task_state is None)

    wait_until(settled, timeout=timeout, poll=poll, describe=f"server {server_id} to be gone (404)",
               state=lambda: repr(seen[0]) if seen else "gone")
    return bool(seen)


def delete_image(conn: Any, image_id: str) -> None:
    """DELETE /images/{id} (Glance v2), ignoring 404."""
    with contextlib.suppress(exceptions.NotFoundException):
        call(conn, "DELETE", f"/images/{image_id}", service="image")


@dataclasses.dataclass
class Leftovers:
    """Tagged servers and marked images still present."""

    servers: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    images: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.servers or self.images)

    def describe(self) -> list[str]:
        return ([f"server {s['id']} {s.get('name')} ({s.get('status')})" for s in self.servers]
                + [f"image {i['id']} {i.get('name')} ({i.get('status')})" for i in self.images])


def is_ours(server: dict[str, Any], run_id: str | None) -> bool:
    """True if a server carries the suite's tag (and this run's tag when given)."""
    tags = set(server.get("tags") or [])
    return TAG in tags and (run_id is None or run_tag(run_id) in tags)


def is_our_image(image: dict[str, Any], run_id: str | None) -> bool:
    """True if an image has our name prefix and our run property (this run's, when given)."""
    value = image.get(RUN_PROPERTY)
    named = str(image.get("name") or "").startswith(NAME_PREFIX + (f"{run_id}-" if run_id else ""))
    return named and value is not None and (run_id is None or value == run_id)


def find_leftovers(conn: Any, run_id: str | None) -> Leftovers:
    """What ``conn``'s project still holds from run ``run_id`` (None: from any run)."""
    tags = TAG if run_id is None else f"{TAG},{run_tag(run_id)}"
    servers = [s.data for s in list_servers(conn, {"tags": tags}) if is_ours(s.data, run_id)]
    return Leftovers(servers, [i for i in _images(conn, run_id) if is_our_image(i, run_id)])


def _images(conn: Any, run_id: str | None) -> list[dict[str, Any]]:
    if not conn.has_service("image"):
        return []
    query: dict[str, str] = {RUN_PROPERTY: run_id} if run_id else {}
    images: list[dict[str, Any]] = []
    while True:
        body = call(conn, "GET", "/images", service="image", params=query).body
        images.extend(body.get("images", []))
        if "next" not in body or not body.get("images"):
            return images
        query["marker"] = body["images"][-1]["id"]


def sweep(conns: Iterable[Any], run_id: str | None, *, timeout: float,
          poll: Polling) -> tuple[Leftovers, list[str]]:
    """Delete every tagged server and marked image the connections can see.

    Returns what was found and the failures (as readable lines).  Untagged
    resources are never touched: each candidate is re-checked before deletion.
    A server one role could not delete (e.g. locked by an admin) is tried
    again, by id, by every other role that can read it.
    """
    conns = list(conns)
    found, failures, seen, tried = Leftovers(), dict[str, str](), set[str](), dict[str, Any]()
    for conn in conns:
        leftovers = find_leftovers(conn, run_id)
        for server in (s for s in leftovers.servers if s["id"] not in seen):
            seen.add(server["id"])
            found.servers.append(server)
            tried[f"server {server['id']}"] = conn
            _attempt(failures, f"server {server['id']}",
                     functools.partial(delete_and_wait, conn, server["id"], timeout=timeout, poll=poll))
        for image in (i for i in leftovers.images if i["id"] not in seen):
            seen.add(image["id"])
            found.images.append(image)
            _attempt(failures, f"image {image['id']}", functools.partial(delete_image, conn, image["id"]))
    for what in [w for w in failures if w.startswith("server ")]:
        server_id = what.removeprefix("server ")
        for conn in (c for c in conns if c is not tried[what] and _can_read(c, server_id)):
            if _attempt(failures, what, functools.partial(delete_and_wait, conn, server_id,
                                                          timeout=timeout, poll=poll)):
                break
    return found, list(failures.values())


def _can_read(conn: Any, server_id: str) -> bool:
    try:
        get_server(conn, server_id)
    except exceptions.HttpException:
        return False
    return True


def _attempt(failures: dict[str, str], what: str, fn: Callable[[], None]) -> bool:
    """Run ``fn``; record (or, on success, clear) the failure of ``what``."""
    try:
        fn()
    except Exception as exc:
        failures[what] = f"{what}: {type(exc).__name__}: {exc}"
        return False
    failures.pop(what, None)
    return True


@dataclasses.dataclass(frozen=True)
class BootSpec:
    """What servers boot with, resolved to ids: image, flavor and network."""

    image_id: str
    flavor_id: str
    flavor_name: str
    network: str  # a network id, or "none" / "auto"

    def kwargs(self) -> dict[str, str]:
        """Keyword arguments for :meth:`ServerFactory.create_server`."""
        return {"image": self.image_id, "flavor": self.flavor_id, "network": self.network}


def resolve_boot_spec(conn: Any, *, image: str, flavor: str, network: str) -> BootSpec:
    """Resolve image, flavor and network names (or ids) with ``conn``.

    Raises InfraError naming what could not be found: a wrong name is a
    configuration problem, not a verdict on the cloud.
    """
    try:
        image_id = image if _is_uuid(image) else conn.image.find_image(image, ignore_missing=False).id
        found_flavor = conn.compute.find_flavor(flavor, ignore_missing=False)
        net = network if network in ("none", "auto") or _is_uuid(network) else \
            conn.network.find_network(network, ignore_missing=False).id
    except exceptions.ResourceNotFound as exc:
        raise InfraError(f"cannot resolve the boot resources: {exc}") from None
    return BootSpec(image_id, found_flavor.id, found_flavor.name, net)


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
