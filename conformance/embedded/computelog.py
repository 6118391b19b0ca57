"""Per-host nova-compute logs (devstack's ``n-cpu.log``) in a shared process.

All nova-compute services of the embedded cloud run in one process, so a
log record does not say which "host" wrote it.  This module tracks the
compute host a thread is working for:

* an RPC message dispatched to a compute manager marks its worker thread
  with the manager's host (patch of oslo.messaging's dispatcher);
* ``nova.thread_pool_factory.spawn_on`` carries the mark into the threads
  Nova spawns (builds, snapshots, live migrations), exactly as it carries
  the request context;
* the embedded cloud marks the threads that start services and run
  periodic tasks itself (:func:`acting_as`).

:class:`ComputeLogHandler` then appends ``nova.compute.*`` and ``nova.virt.*``
records to the host's ``log/nova-compute.log`` in Nova's own format, with the
request id, user and project of the request that caused them::

    2026-11-21 20:30:00.123 4242 INFO nova.compute.manager [req-... user project] \
[instance: <uuid>] Took 0.52 seconds to spawn the instance on the hypervisor.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_CURRENT = threading.local()
ROUTED_PREFIXES = ("nova.compute", "nova.virt")


def current_host() -> str | None:
    """The compute host the calling thread works for, if any."""
    return getattr(_CURRENT, "host", None)


@contextlib.contextmanager
def acting_as(host: str | None) -> Iterator[None]:
    """Mark the calling thread as working for compute ``host``."""
    previous = current_host()
    _CURRENT.host = host
    try:
        yield
    finally:
        _CURRENT.host = previous


def _endpoint_host(endpoint: Any, hosts: set[str]) -> str | None:
    """The compute host behind an RPC endpoint (Nova wraps managers)."""
    for obj in (endpoint, getattr(endpoint, "_endpoint", None),
                getattr(getattr(endpoint, "_endpoint", None), "manager", None)):
        host = getattr(obj, "host", None) if obj is not None else None
        if isinstance(host, str) and host in hosts:
            return host
    return None


def install_thread_tracking(hosts: set[str]) -> None:
    """Patch RPC dispatch and Nova's thread spawning to track the host."""
    from nova import thread_pool_factory
    from oslo_messaging.rpc import dispatcher

    real_dispatch = dispatcher.RPCDispatcher._do_dispatch

    @functools.wraps(real_dispatch)
    def do_dispatch(self: Any, endpoint: Any, method: str, ctxt: Any, args: Any) -> Any:
        with acting_as(_endpoint_host(endpoint, hosts) or current_host()):
            return real_dispatch(self, endpoint, method, ctxt, args)

    real_spawn_on = thread_pool_factory.spawn_on

    @functools.wraps(real_spawn_on)
    def spawn_on(executor_type: Any, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        host = current_host()

        @functools.wraps(func)
        def run(*a: Any, **kw: Any) -> Any:
            with acting_as(host):
                return func(*a, **kw)

        return real_spawn_on(executor_type, run, *args, **kwargs)

    dispatcher.RPCDispatcher._do_dispatch = do_dispatch
    thread_pool_factory.spawn_on = spawn_on


def _instance_uuid(record: logging.LogRecord) -> str | None:
    inst = getattr(record, "instance", None)
    if inst is not None:
        try:
            return str(inst["uuid"])
        except (KeyError, TypeError, IndexError):
            return getattr(inst, "uuid", None)
    uuid = getattr(record, "instance_uuid", None)
    return str(uuid) if uuid else None


class NovaFormatter(logging.Formatter):
    """Nova's default context format, with names for user and project."""

    def format(self, record: logging.LogRecord) -> str:
        from oslo_context import context as common_context

        ctx = getattr(record, "context", None) or common_context.get_current()
        if ctx is not None and getattr(ctx, "request_id", None):
            user = getattr(ctx, "user_name", None) or getattr(ctx, "user_id", None) or "-"
            project = (getattr(ctx, "project_name", None)
                       or getattr(ctx, "project_id", None) or "-")
            who = f"[{ctx.request_id} {user} {project}]"
        else:
            who = "[-]"
        uuid = _instance_uuid(record)
        instance = f"[instance: {uuid}] " if uuid else ""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(record.created))
        text = (f"{stamp}.{int(record.msecs):03d} {os.getpid()} {record.levelname} "
                f"{record.name} {who} {instance}{record.getMessage()}")
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


class ComputeLogHandler(logging.Handler):
    """Route compute/virt records to the log file of the host that wrote them."""

    def __init__(self, files: dict[str, Path], level: int = logging.INFO):
        super().__init__(level)
        self.setFormatter(NovaFormatter())
        self._paths = files
        self._files: dict[str, Any] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(ROUTED_PREFIXES):
            return
        host = getattr(record, "compute_host", None) or current_host()
        if host not in self._paths:
            return
        try:
            line = self.format(record) + "\n"
            f = self._files.get(host)
            if f is None:
                self._paths[host].parent.mkdir(parents=True, exist_ok=True)
                f = self._files[host] = open(self._paths[host], "a", buffering=1)  # noqa: SIM115
            f.write(line)
        except Exception:
            self.handleError(record)

    def close(self) -> None:
        """Close every host's log file."""
        for f in self._files.values():
            f.close()
        self._files.clear()
        super().close()
