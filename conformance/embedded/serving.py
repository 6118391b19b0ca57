"""Serve a WSGI application on a loopback port until SIGTERM (service side).

Every embedded service (Keystone, Glance) is served by Werkzeug's threaded
server: unlike :mod:`wsgiref` it reads chunked request bodies, which Nova's
image uploads to Glance use.  Access lines go to the ``access`` logger, so
they end up in the service's own log file.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

WSGIApp = Callable[..., Any]

# Exit status of a service that could not bind its port; the orchestrator
# reports it as "port in use".
EXIT_PORT_IN_USE = 98


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size of a process in MiB (0.0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def load_config(path: str) -> dict[str, Any]:
    """Read a service's JSON config file (written by the orchestrator)."""
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def serve_forever(app: WSGIApp, host: str, port: int, name: str) -> NoReturn:
    """Serve ``app`` on ``host:port`` with Werkzeug until SIGTERM/SIGINT.

    Exits with :data:`EXIT_PORT_IN_USE` if the port cannot be bound.  The
    process leaves with ``os._exit`` so that library threads and atexit
    hooks (which may block for a long time) cannot delay ``down``.
    """
    from werkzeug.serving import WSGIRequestHandler, make_server

    access = logging.getLogger("access")

    class Handler(WSGIRequestHandler):
        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            access.info('%s "%s" %s %s', self.address_string(), self.requestline, code, size)

    try:
        server = make_server(host, port, app, threaded=True, request_handler=Handler)
    except OSError as exc:
        print(f"{name}: cannot bind {host}:{port}: {exc.strerror}", file=sys.stderr, flush=True)
        os._exit(EXIT_PORT_IN_USE)

    def stop(signum: int, _frame: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"{name}: serving on http://{host}:{port} (pid {os.getpid()}, rss {rss_mb():.0f} MB)",
          file=sys.stderr, flush=True)
    server.serve_forever(poll_interval=0.2)
    print(f"{name}: stopped", file=sys.stderr, flush=True)
    os._exit(0)


def write_json_atomic(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    """Write ``data`` as JSON to ``path`` atomically with the given mode."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)
