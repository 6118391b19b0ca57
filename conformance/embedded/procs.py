"""Start, recognise and stop the embedded cloud's background processes.

Every service runs in its own session (detached from the terminal, so it
survives the ``up`` command and never gets the terminal's signals), with
stdin from /dev/null and stdout/stderr appended to its log file.  A process
is recorded with a *marker*: a string that its command line must contain
(the path of its config file).  ``down`` only signals a recorded pid whose
command line still has the marker, so a recycled pid is never touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# The project root, so that `python -m conformance.embedded.X` works from any cwd.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a service: this project importable, no OpenStack client vars."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def spawn(argv: list[str], log_file: Path, env: dict[str, str] | None = None,
          cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session with output appended to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                env=env, cwd=cwd, start_new_session=True, close_fds=True)


def spawn_module(module: str, config: Path, log_file: Path, cwd: Path) -> subprocess.Popen[bytes]:
    """Start ``python -m module config`` with this interpreter."""
    return spawn([sys.executable, "-m", module, str(config)], log_file, python_env(), cwd)


def record(proc: subprocess.Popen[bytes], marker: str, log_file: Path) -> dict[str, Any]:
    """The state.json entry of a started process (pid, start time, marker, log)."""
    return {"pid": proc.pid, "start": start_time(proc.pid), "marker": marker,
            "log": str(log_file)}


def _stat(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (state is [0], ppid [1])."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) ``pid`` has used so far (None if it is gone)."""
    try:
        fields = _stat(pid)
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks since boot (None if it is gone)."""
    try:
        return int(_stat(pid)[19])
    except (OSError, IndexError, ValueError):
        return None


def running(rec: dict[str, Any]) -> bool:
    """True if the process of a :func:`record` still runs (same pid *and* start time)."""
    return alive(rec["pid"], rec.get("marker", ""), rec.get("start"))


def alive(pid: int, marker: str, start: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and is the recorded process.

    With ``start`` the start time identifies the process (immune to a changed
    process title).  Otherwise its command line must contain ``marker``; a
    command line stays empty for a moment while a fresh process completes
    exec, so it is read again, and a persistently empty one counts as a match
    (kernel threads, the only other such processes, ignore signals).
    """
    try:
        fields = _stat(pid)
        if fields[0] in ("Z", "X"):
            return False
        if start is not None:
            return int(fields[19]) == start
        for _ in range(20):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
            if cmdline:
                return marker.encode() in cmdline
            time.sleep(0.01)
    except (OSError, IndexError, ValueError):
        return False
    return True


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first found by a /proc scan)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(_stat(int(entry))[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    """Signal the process group of ``pid`` (it leads its own session), else the pid."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop(records: dict[str, dict[str, Any]], grace: float = 10.0) -> list[str]:
    """SIGTERM every live recorded process, SIGKILL it after ``grace`` seconds.

    Returns the names of the processes still alive at the end (normally none).
    """
    live = {name: r for name, r in records.items() if running(r)}
    for name, r in list(live.items()):
        for pid in descendants(r["pid"]):  # e.g. sshd's per-connection sessions
            live[f"{name} child {pid}"] = {"pid": pid, "start": start_time(pid)}
    for r in live.values():
        _signal(r["pid"], signal.SIGTERM)
    for sig, wait in ((signal.SIGKILL, grace), (None, 3.0)):
        deadline = time.monotonic() + wait
        while live and time.monotonic() < deadline:
            _reap()
            live = {n: r for n, r in live.items() if running(r)}
            time.sleep(0.05)
        if sig is not None:
            for r in live.values():
                _signal(r["pid"], sig)
    return sorted(live)


def _reap() -> None:
    """Collect exited children of this process (only relevant inside ``up``)."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass
