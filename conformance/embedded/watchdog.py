"""Owner watchdog: stop the embedded cloud when the process that owns it dies.

Usage: ``python -m conformance.embedded.watchdog /abs/WORKDIR/watchdog.json``

``up --owner-pid PID`` starts it once every service is spawned.  ``up``
returns when the cloud is ready, so the owner is whoever asked for the cloud:
a test harness, ``run_embedded`` or a script.  If that owner is killed
without running ``down`` (SIGKILL, a crash, or a SIGINT that also removed the
workdir) the cloud would run on with nothing to stop it.  The watchdog reads
its config once (so it works after the workdir is gone), then polls every
``interval`` seconds:

* the owner gone (its pid dead, or reused by a process with another start
  time): SIGTERM every cloud process, SIGKILL after a grace period (the same
  :func:`procs.stop` as ``down``, sshd's sessions included), then exit;
* every cloud process gone (``down`` ran, which also stops the watchdog):
  exit.

``watchdog.json``: ``{"owner": {"pid": N, "start": TICKS}, "processes":
{name: record of procs.record}, "interval": 1.0, "grace": 10.0}``.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from conformance.embedded import procs

MODULE = "conformance.embedded.watchdog"


def owner_record(pid: int) -> dict[str, Any]:
    """The owner entry for ``pid`` (raises ValueError if no such process runs)."""
    start = procs.start_time(pid)
    if pid <= 0 or start is None:
        raise ValueError(f"--owner-pid {pid}: no such process")
    return {"pid": pid, "start": start}


def config(owner: dict[str, Any], processes: dict[str, dict[str, Any]],
           interval: float = 1.0, grace: float = 10.0) -> dict[str, Any]:
    """The content of ``watchdog.json``."""
    return {"owner": owner, "processes": processes, "interval": interval, "grace": grace}


def check(cfg: dict[str, Any]) -> str | None:
    """What to do now: ``"stop"`` (owner gone), ``"exit"`` (cloud gone) or None (watch on)."""
    owner = cfg["owner"]
    if not procs.alive(owner["pid"], "", owner["start"]):
        return "stop"
    if not any(procs.running(r) for r in cfg["processes"].values()):
        return "exit"
    return None


def watch(cfg: dict[str, Any], log: Any = sys.stderr) -> int:
    """Poll until the owner or the cloud is gone; returns the exit code."""
    while True:
        verdict = check(cfg)
        if verdict == "exit":
            print("watchdog: every cloud process is gone; exiting", file=log, flush=True)
            return 0
        if verdict == "stop":
            owner = cfg["owner"]["pid"]
            print(f"watchdog: owner pid {owner} is gone; stopping the cloud", file=log, flush=True)
            left = procs.stop(cfg["processes"], float(cfg.get("grace", 10.0)))
            print(f"watchdog: cloud stopped{f'; still alive: {left}' if left else ''}",
                  file=log, flush=True)
            return 1 if left else 0
        time.sleep(float(cfg.get("interval", 1.0)))


def main(argv: list[str] | None = None) -> int:
    """Entry point: read the config once, then :func:`watch`."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m conformance.embedded.watchdog /abs/WORKDIR/watchdog.json",
              file=sys.stderr)
        return 2
    cfg = json.loads(Path(args[0]).read_text())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # `down` stops the watchdog too
    signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
    return watch(cfg)


if __name__ == "__main__":
    raise SystemExit(main())
