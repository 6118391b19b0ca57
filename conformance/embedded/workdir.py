"""The embedded cloud's working directory: layout, state.json, lock, ports.

``state.json`` is the single record of a running cloud: ``up`` writes it as
soon as the first process starts (so ``down`` can always clean up) and
completes it once the cloud is ready; ``down`` and ``status`` only read it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from conformance.embedded.serving import write_json_atomic


class WorkdirError(RuntimeError):
    """The workdir cannot be used (not writable, locked, already running)."""


class Layout:
    """Paths inside one workdir (see docs/embedded-internals.md)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).expanduser().resolve()
        self.state = self.root / "state.json"
        self.clouds = self.root / "clouds.yaml"
        self.profile = self.root / "profile.yaml"
        self.nova_json = self.root / "nova.json"
        self.nova_ready = self.root / "nova.ready.json"
        self.keystone = self.root / "keystone"
        self.glance = self.root / "glance"
        self.ssh = self.root / "ssh"
        self.hosts = self.root / "hosts"
        self.shared = self.root / "shared" / "instances"
        self.logs = self.root / "logs"
        self.lock = self.root / ".lock"

    def log(self, name: str) -> Path:
        """Path of a service log (``logs/<name>.log``)."""
        return self.logs / f"{name}.log"

    def generated(self) -> list[Path]:
        """Everything ``up`` creates and ``down`` removes (logs and reports stay)."""
        return [self.state, self.clouds, self.profile, self.nova_json, self.nova_ready,
                self.keystone, self.glance, self.ssh, self.hosts, self.root / "shared",
                self.root / "tmp", self.root / "nova-tmp", self.root / "watchdog.json"]


def ensure_writable(layout: Layout) -> None:
    """Create the workdir if needed; raise :class:`WorkdirError` if it is not writable."""
    try:
        layout.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkdirError(f"cannot create workdir {layout.root}: {exc.strerror}") from None
    if not layout.root.is_dir():
        raise WorkdirError(f"workdir {layout.root} is not a directory")
    probe = layout.root / ".write-probe"
    try:
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise WorkdirError(f"workdir {layout.root} is not writable: {exc.strerror}") from None


@contextlib.contextmanager
def locked(layout: Layout) -> Iterator[None]:
    """Hold an exclusive lock on the workdir (one ``up``/``down`` at a time)."""
    fd = os.open(layout.lock, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WorkdirError(
                f"another up/down is running on workdir {layout.root}") from None
        yield
    finally:
        os.close(fd)


def read_state(layout: Layout) -> dict[str, Any] | None:
    """The recorded state, or None if no cloud was started in this workdir."""
    try:
        data: dict[str, Any] = json.loads(layout.state.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WorkdirError(f"{layout.state} is unreadable ({exc}); remove it by hand") from None
    return data


def write_state(layout: Layout, state: dict[str, Any]) -> None:
    """Atomically (re)write state.json (mode 0600: it holds passwords)."""
    write_json_atomic(layout.state, state)


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        port: int = s.getsockname()[1]
        return port


def port_in_use(address: str, port: int) -> bool:
    """True if something listens on (or otherwise holds) ``address:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def listening() -> set[tuple[str, int]]:
    """Every (IPv4 address, port) with a socket in LISTEN state (from /proc/net/tcp)."""
    found = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            addr_hex, port_hex = fields[1].split(":")
            addr = socket.inet_ntoa(struct.pack("<I", int(addr_hex, 16)))
            found.add((addr, int(port_hex, 16)))
    return found


def tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
