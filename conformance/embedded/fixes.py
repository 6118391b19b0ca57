"""Fixes that make Nova's functional-test harness fit for a long-lived cloud.

Nova's ``_IntegratedTestBase`` is built for one short test.  Running it as a
service for hours, with many projects and real concurrency, needs these
changes (each function documents the problem it solves):

* :func:`fix_cell_databases`: the CellDatabases fixture deadlocks under
  concurrent requests; the cell travels with the request context instead.
* :func:`fix_neutron`: ports get the requesting project, device, a unique IP
  and MAC; the network (and the default security group) serve every project.
* :func:`relax_warnings`: SQLAlchemy warnings are no longer exceptions.
* :func:`enforce_new_policy_defaults`: undo the Placement fixture's silent
  switch to the legacy policy defaults.
* :func:`install_logging`: no unbounded in-memory log capture.
* :func:`fix_service_stop`: a stopped compute leaves no threads behind;
  :func:`calm_idle_workers`: idle pool threads stop busy-polling.
* :func:`per_host_resource_locks`: each compute host has its own resource
  tracker lock, as each nova-compute process has.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import itertools
import logging
import threading
import warnings
from typing import Any

from conformance.embedded import lean, neutron_sg

_HANDLE_ERROR = logging.Handler.handleError
_IP_LOCK = threading.Lock()
_ADDRESSES = itertools.count(100)
SUBNET_CIDR = "192.168.0.0/16"


def fix_cell_databases() -> None:
    """Let the target cell travel with the request context.

    The fixture emulates ``target_cell`` by switching one global "current
    cell database" behind a reader/writer lock.  Combined with the per
    database write locks this inverts lock order and hangs the process under
    concurrent boots.  With file-backed sqlite, Nova's real ``target_cell``
    (which stores the cell's context manager on the context) just works;
    untargeted access goes to the default cell, as in a one-cell deployment.
    """
    module = importlib.import_module("nova.tests.fixtures.nova")
    cls = module.CellDatabases

    def wrap_target_cell(self: Any, context: Any, cell_mapping: Any) -> Any:
        return self._real_target_cell(context, cell_mapping)

    def wrap_get_context_manager(self: Any, context: Any) -> Any:
        return getattr(context, "db_connection", None) or self._default_ctxt_mgr

    cls._wrap_target_cell = wrap_target_cell
    cls._wrap_get_context_manager = wrap_get_context_manager


def _next_address() -> tuple[str, str]:
    """A fresh (IPv4 address, MAC address) pair from the fixture subnet."""
    with _IP_LOCK:
        n = next(_ADDRESSES)
    ip = f"192.168.{1 + n // 250}.{2 + n % 250}"
    mac = f"fa:16:3e:{(n >> 16) & 255:02x}:{(n >> 8) & 255:02x}:{n & 255:02x}"
    return ip, mac


def _apply_port_request(port: dict[str, Any], request: dict[str, Any], subnet_id: str) -> None:
    """Give a fixture port what the request asked for and fresh addresses."""
    port.update({k: v for k, v in request.items() if k not in ("fixed_ips", "id")})
    if "tenant_id" in request:
        port["project_id"] = request.get("project_id", request["tenant_id"])
    ip, mac = _next_address()
    wanted = [f for f in request.get("fixed_ips", []) if f.get("ip_address")]
    port["fixed_ips"] = wanted or [{"ip_address": ip, "subnet_id": subnet_id}]
    port["mac_address"] = request.get("mac_address", mac)


def fix_neutron() -> None:
    """Make the Neutron fixture serve many projects like a real Neutron.

    The fixture copies one template port (project, device, IP) into every new
    port, so servers of other projects show no addresses and all servers
    share an IP.  Keep what the request asked for, hand out unique addresses
    from a /16, share the network, and give every project the default
    security group (and the security-group API: :mod:`neutron_sg`).
    """
    from nova.tests.fixtures import neutron

    fixture = neutron.NeutronFixture
    fixture.network_1["shared"] = True
    fixture.subnet_1["cidr"] = SUBNET_CIDR
    fixture.subnet_1["allocation_pools"] = [{"start": "192.168.1.2", "end": "192.168.255.254"}]
    real_create = fixture.create_port

    @functools.wraps(real_create)
    def create_port(self: Any, body: Any = None) -> dict[str, Any]:
        request = copy.deepcopy((body or {}).get("port", {}))
        port = self._ports[real_create(self, body)["port"]["id"]]
        _apply_port_request(port, request, fixture.subnet_1["id"])
        return {"port": copy.deepcopy(port)}

    fixture.create_port = create_port
    neutron_sg.install(fixture)  # per-project security groups, lookups by name
    serialize_ports(fixture)


# The fixture's port methods read and write plain dicts; nova-api listing ports while a compute
# creates or deletes one raised "dictionary changed size during iteration" (a 500 on GET /servers/ID).
PORT_METHODS = ("_list_resource", "show_port", "create_port", "update_port", "delete_port",
                "create_port_binding", "delete_port_binding", "activate_port_binding",
                "show_port_binding")


def serialize_ports(fixture: Any) -> None:
    """Run the Neutron fixture's port methods one at a time (one re-entrant lock), as a real
    Neutron's database would make them atomic."""
    lock = threading.RLock()
    for name in PORT_METHODS:
        setattr(fixture, name, _locked(getattr(fixture, name), lock))


def _locked(func: Any, lock: Any) -> Any:
    @functools.wraps(func)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return func(*args, **kwargs)
    return locked


def renumber_port(neutron_fixture: Any, port_id: str) -> str:
    """Give a port a new fixed IP (used by the ``rebuild-changes-ip`` defect)."""
    ip, _mac = _next_address()
    port = neutron_fixture._ports[port_id]
    port["fixed_ips"] = [{"ip_address": ip, "subnet_id": neutron_fixture.subnet_1["id"]}]
    return ip


def relax_warnings() -> None:
    """Stop turning warnings into exceptions.

    Nova's WarningsFixture raises SQLAlchemy (and some other) warnings as
    errors to keep Nova's code clean; in a long-lived service that turns a
    harmless deprecation into an HTTP 500.
    """
    warnings.resetwarnings()
    warnings.simplefilter("ignore")
    # ForbidNewLegacyNotificationFixture makes an unlisted legacy notification fatal, and
    # compute.instance.force_delete.* (forceDelete of a host-less server) is unlisted: a 500
    from nova import rpc

    rpc.LegacyValidatingNotifier.fatal = False


def enforce_new_policy_defaults() -> None:
    """Nova policy with the new defaults and scope checks, as Nova 34 ships.

    The Placement fixture calls ``oslo_policy.opts.set_defaults(...,
    enforce_new_defaults=False)``, which changes the *shared* option object
    and so relaxes Nova's policy as well (a reader could then reboot).
    """
    import nova.policy
    from oslo_config import cfg

    cfg.CONF.set_override("enforce_new_defaults", True, group="oslo_policy")
    if "enforce_scope" in cfg.CONF.oslo_policy:  # oslo.policy >= 6 always enforces scope
        cfg.CONF.set_override("enforce_scope", True, group="oslo_policy")
    nova.policy.reset()
    nova.policy.init(suppress_deprecation_warnings=True)


def install_logging(handlers: list[logging.Handler], level: int = logging.INFO) -> None:
    """Replace the harness's log capture by ``handlers``.

    StandardLogging keeps every INFO line in a StringIO for the test's
    lifetime and formats every DEBUG record just to check it, and the
    handle-error fixture turns a logging error into an exception in the
    caller.  Remove all of that, log at ``level`` to ``handlers`` only.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)
    logging.Handler.handleError = _HANDLE_ERROR  # type: ignore[method-assign]
    # the service user's auth options are passed as paste options, which
    # keystonemiddleware reports one by one as "not known"; stevedore reports
    # the optional memcache driver that is not installed
    for noisy in ("keystonemiddleware._common.config", "stevedore.extension"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)


def calm_idle_workers(poll_seconds: float = 5.0) -> None:
    """Let idle pool workers poll their queue rarely; wake them when they are stopped.

    The harness sets futurist's idle poll to 10 ms (fast test teardown); in a
    long-lived process every idle worker of every pool then wakes up 100
    times a second.  After a suite run the process holds ~140 idle workers
    (eight RPC servers' executors, Nova's pools): even at a 0.2 s poll the idle
    process used 7 % of a core.  A stopped worker (executor shutdown, compute
    stop) is woken at once by a no-op work item, so a rarer poll does not
    delay a shutdown; only if the queue's lock is busy at that moment (a stop
    from a garbage-collector callback, say) does the worker wait for its
    next poll.
    """
    import futurist._thread

    worker = futurist._thread.ThreadWorker
    # MAX_IDLE_FOR is typed int; unused-ignore: without the embedded extra futurist is untyped (Any)
    worker.MAX_IDLE_FOR = poll_seconds  # type: ignore[assignment, unused-ignore]

    def make(real_stop: Any) -> Any:
        def stop(self: Any) -> None:
            real_stop(self)
            work_queue = self.work_queue
            if work_queue.mutex.acquire(blocking=False):  # never wait (nor deadlock) for the lock
                work_queue.mutex.release()
                work_queue.put(_WAKE)
        return stop

    lean.replace_once(worker, "stop", make)


class _Wake:
    """A no-op work item: a worker that takes it looks at its stop flag again."""

    def run(self) -> None:
        """Nothing to do."""


_WAKE = _Wake()


def fix_service_stop() -> None:
    """Let the threads of a finished looping call go.

    oslo.service's threading backend runs every looping call (the service
    heartbeat of each nova service, for one) on a one-worker futurist
    executor that it never shuts down.  The executor sits in a reference
    cycle, so its idle worker lives on until the cyclic garbage collector
    happens to run: every compute restart left threads behind.  Shut the
    executor down as soon as its loop has finished.
    """
    import futurist
    from oslo_service.backend._threading import loopingcall

    def spawn_loop(self: Any, loop_func: Any) -> Any:
        executor = futurist.ThreadPoolExecutor(max_workers=1)
        future = executor.submit(loop_func)
        future.add_done_callback(self._on_done)
        future.add_done_callback(lambda _f: executor.shutdown(wait=False))
        return future

    loopingcall.LoopingCallBase._spawn_loop = spawn_loop


def pool_sqlite_connections(pool_size: int = 16) -> None:
    """Keep Nova's and Placement's sqlite connections open between transactions.

    oslo.db gives a file-backed sqlite engine a NullPool: every transaction
    opened the file, registered its functions and closed it again, about a
    fifth of the process's CPU per API request.  A QueuePool (SQLAlchemy's own
    choice for sqlite files; ``check_same_thread`` off, which it allows) reuses
    them; the reset on return (a rollback) stays.  No ``pool_pre_ping``: its
    ``SELECT 1`` per checkout was 5 % of the process's CPU under load, and a
    sqlite file connection does not go stale.
    """
    from oslo_db.sqlalchemy import engines
    from sqlalchemy import pool

    original = engines._init_connection_args

    def init_connection_args(url: Any, engine_args: dict[str, Any], kw: dict[str, Any]) -> None:
        original(url, engine_args, kw)
        if url.drivername.startswith("sqlite") and engine_args.get("poolclass") is pool.NullPool:
            # beyond pool_size, a connection is opened and closed as before (no waiting for one)
            engine_args.update(poolclass=pool.QueuePool, pool_size=pool_size, max_overflow=-1,
                               pool_pre_ping=False)  # a sqlite file never drops a connection
            engine_args["connect_args"]["check_same_thread"] = False

    engines._init_connection_args = init_connection_args


def per_host_resource_locks() -> None:
    """Give each compute host its own ``compute_resources`` lock.

    Nova serialises a host's resource tracker (claims, usage updates on
    delete, the periodic update) with ``COMPUTE_RESOURCE_SEMAPHORE``, a lock
    of the nova-compute *process*.  Every compute of the embedded cloud runs in
    one process, so the computes shared that one lock: under 8 parallel
    boot/delete clients a claim waited 14 s (median) for the other hosts'
    tracker updates.  Re-lock every such method on ``compute_resources-<host>``
    (still fair, still reentrant), which is what separate processes give.
    """
    from nova import utils
    from nova.compute import resource_tracker

    shared = resource_tracker.COMPUTE_RESOURCE_SEMAPHORE
    cls = resource_tracker.ResourceTracker
    for attr, func in list(vars(cls).items()):
        wrapped = getattr(func, "__wrapped__", None)
        if wrapped is not None and inspect.getclosurevars(func).nonlocals.get("name") == shared:
            setattr(cls, attr, _locked_per_host(wrapped, shared, utils.synchronized))


def _locked_per_host(func: Any, shared: str, synchronized: Any) -> Any:
    """``func`` (a tracker method) under the lock ``<shared>-<tracker host>``."""
    by_host: dict[str, Any] = {}

    @functools.wraps(func)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        call = by_host.get(self.host)
        if call is None:
            call = by_host.setdefault(self.host,
                                      synchronized(f"{shared}-{self.host}", fair=True)(func))
        return call(self, *args, **kwargs)

    return locked
