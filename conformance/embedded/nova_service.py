"""The embedded cloud's Nova process: real Nova 34 and Placement 16 in one process.

Usage: ``python -m conformance.embedded.nova_service /abs/WORKDIR/nova.json``

Starts Nova's functional-test harness as a long-lived cloud (see
:mod:`conformance.embedded.cloud`) in native threading mode, serves nova-api,
Placement and the control endpoint with Werkzeug's threaded server on the
ports from ``nova.json``, runs the periodic tasks every
``periodic_interval`` seconds and writes ``nova.ready.json`` atomically once
everything answers.  SIGTERM/SIGINT stop serving, remove the sqlite files
(under ``WORKDIR/nova-tmp/<pid>``) and exit 0.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from conformance.embedded.novaconf import NovaConfig
from conformance.embedded.serving import EXIT_PORT_IN_USE, rss_mb, write_json_atomic

LOG = logging.getLogger("conformance.embedded.nova_service")


def _prepare_environment(config: NovaConfig) -> Path:
    """Environment Nova must see before it is imported; returns the temp dir."""
    os.environ["OS_NOVA_DISABLE_EVENTLET_PATCHING"] = "1"
    os.environ.pop("OS_DEBUG", None)
    tmp = config.workdir / "nova-tmp" / str(os.getpid())
    tmp.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(tmp)
    tempfile.tempdir = str(tmp)  # the harness's sqlite files go here
    sys.argv = sys.argv[:1]  # oslo.config must not parse our arguments
    config.log_dir.mkdir(parents=True, exist_ok=True)
    return tmp


def _register_hosts(config: NovaConfig) -> dict[str, Path]:
    """Create each host's hypervisor; returns the compute log path per host."""
    from conformance.embedded import hypervisor
    from conformance.embedded.hoststate import HostState

    shared = config.workdir / "shared" / "instances"
    logs = {}
    for spec in config.hosts:
        instances = shared if config.shared_storage and len(
            {h.instances_path for h in config.hosts}) > 1 else spec.instances_path
        state = HostState(spec.root, str(instances))
        hypervisor.register(spec.name, state, spec.address)
        logs[spec.name] = state.log_file
    return logs


def _log_handlers(config: NovaConfig, compute_logs: dict[str, Path]) -> list[logging.Handler]:
    """nova-api.log (everything at INFO) and the per-host compute logs."""
    from conformance.embedded.computelog import ComputeLogHandler, NovaFormatter

    main = logging.FileHandler(config.log_dir / "nova-api.log")
    main.setLevel(logging.INFO)
    main.setFormatter(NovaFormatter())
    return [main, ComputeLogHandler(compute_logs)]


def _apply_patches(paths: tuple[Path, ...]) -> None:
    """Import each site patch file and call its ``apply()`` if it has one."""
    for index, path in enumerate(paths):
        spec = importlib.util.spec_from_file_location(f"embedded_site_patch_{index}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import patch {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        apply = getattr(module, "apply", None)
        if callable(apply):
            apply()
        LOG.info("applied site patch %s", path)


def _enable_defects(names: tuple[str, ...]) -> None:
    from conformance.embedded.defects import CATALOGUE

    for name in names:
        try:
            CATALOGUE.switch(name, True)
        except KeyError:
            known = ", ".join(d.name for d in CATALOGUE)
            raise SystemExit(f"nova.json: unknown defect {name!r} (known: {known})") from None


def _build_cloud(config: NovaConfig, handlers: list[logging.Handler]) -> Any:
    """Import Nova, apply the fixes, patches and defects; set the cloud up."""
    import nova.tests.functional  # noqa: F401  (imports Nova in threading mode)

    from conformance.embedded import computelog, fixes, lean

    fixes.fix_cell_databases()
    fixes.fix_neutron()
    fixes.fix_service_stop()
    fixes.pool_sqlite_connections()
    fixes.per_host_resource_locks()
    lean.policy_rules_loaded_once()
    lean.throwaway_sqlite()
    lean.schema_validators_reused()
    computelog.install_thread_tracking(set(config.host_names))
    from conformance.embedded.cloud import EmbeddedCloud
    from conformance.embedded.defects import CATALOGUE

    _apply_patches(config.patches)
    _enable_defects(config.defects)
    cloud = EmbeddedCloud(config, handlers)
    CATALOGUE.install(cloud)
    cloud.setUp()
    fixes.relax_warnings()
    fixes.enforce_new_policy_defaults()
    fixes.calm_idle_workers()
    return cloud


def _serve(app: Any, bind: str, port: int, name: str) -> Any:
    """Serve ``app`` on a daemon thread with Werkzeug's threaded server."""
    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            """Nova and Placement log their own requests."""

    try:
        server = make_server(bind, port, app, threaded=True, request_handler=QuietHandler)
    except OSError as exc:
        print(f"nova_service: cannot bind {name} on {bind}:{port}: {exc.strerror}",
              file=sys.stderr, flush=True)
        os._exit(EXIT_PORT_IN_USE)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                     name=f"http-{name}", daemon=True).start()
    return server


def _periodic_loop(cloud: Any, interval: float, stop: threading.Event) -> None:
    while not stop.wait(interval):
        try:
            cloud.run_periodics()
        except Exception:
            LOG.exception("periodic tasks failed")


def _ready_info(config: NovaConfig, cloud: Any, started: float) -> dict[str, Any]:
    return {"pid": os.getpid(), "network_id": cloud.network["id"],
            "network_name": cloud.network["name"],
            "nova_url": config.url(config.nova_port, "/v2.1"),
            "placement_url": config.url(config.placement_port),
            "control_url": config.url(config.control_port),
            "hosts": config.host_names, "shared_storage": config.shared_storage,
            "capabilities": ["soft_delete"] if config.reclaim_instance_interval > 0 else [],
            "startup_s": round(time.monotonic() - started, 2), "rss_mb": round(rss_mb(), 1)}


def _remove_tree(path: Path) -> None:
    """Remove the sqlite temp dir although threads still use the databases.

    Renaming first makes the old path vanish at once, so no thread can
    create a new file under it while the tree is being removed.
    """
    doomed = path.with_name(path.name + ".removing")
    try:
        path.rename(doomed)
    except OSError:
        doomed = path
    for _ in range(5):
        shutil.rmtree(doomed, ignore_errors=True)
        if not doomed.exists():
            break
        time.sleep(0.05)
    with contextlib.suppress(OSError):
        path.parent.rmdir()  # nova-tmp/, if no other Nova process uses it


def _shutdown(servers: list[Any], tmp: Path, config: NovaConfig, code: int) -> NoReturn:
    """Stop serving, drop the sqlite files and leave at once."""
    for server in servers:
        threading.Thread(target=server.shutdown, daemon=True).start()
    config.ready_file.unlink(missing_ok=True)
    _remove_tree(tmp)
    for handler in logging.getLogger().handlers:
        handler.flush()
    print(f"nova_service: stopped (rss {rss_mb():.0f} MB)", file=sys.stderr, flush=True)
    os._exit(code)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the Nova process."""
    started = time.monotonic()
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.exit("usage: python -m conformance.embedded.nova_service /abs/WORKDIR/nova.json")
    config = NovaConfig.load(args[0])
    tmp = _prepare_environment(config)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    servers: list[Any] = []
    try:
        cloud = _build_cloud(config, _log_handlers(config, _register_hosts(config)))
        from conformance.embedded.faults import FaultInjector

        servers = [_serve(FaultInjector(cloud.nova_app(), "nova"), config.bind, config.nova_port,
                          "nova-api"),
                   _serve(FaultInjector(cloud.placement_app(), "placement"), config.bind,
                          config.placement_port, "placement")]
        from conformance.embedded.control import ControlApp

        servers.append(_serve(ControlApp(cloud), config.bind, config.control_port, "control"))
    except BaseException:
        traceback.print_exc()
        _shutdown(servers, tmp, config, 1)
    threading.Thread(target=_periodic_loop, args=(cloud, config.periodic_interval, stop),
                     name="periodics", daemon=True).start()
    info = _ready_info(config, cloud, started)
    write_json_atomic(config.ready_file, info, mode=0o644)
    LOG.info("ready: %s", info)
    print(f"nova_service: ready in {info['startup_s']}s (rss {info['rss_mb']} MB)",
          file=sys.stderr, flush=True)
    while not stop.wait(1.0):
        pass
    _shutdown(servers, tmp, config, 0)


if __name__ == "__main__":
    main()
