"""Tempest's own virtualenv: pinned Tempest plus the project's small plugin.

Tempest never goes into the suite's environment (its requirements would pull
the suite's OpenStack libraries around); it gets a venv of its own, made once
and reused while the pinned version and the plugin are unchanged.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TEMPEST_VERSION = "47.0.0"
PLUGIN_DIR = Path(__file__).with_name("plugin")
_MARKER = ".conformance-tempest"


class VenvError(RuntimeError):
    """The Tempest venv could not be made."""


def _fingerprint(version: str) -> str:
    """Changes when the Tempest pin or any plugin file changes."""
    digest = hashlib.sha256(version.encode())
    for path in sorted(PLUGIN_DIR.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path):
            digest.update(str(path.relative_to(PLUGIN_DIR)).encode())
            digest.update(path.read_bytes())
    return f"tempest=={version} plugin={digest.hexdigest()[:16]}"


def ensure_tempest(venv: str | Path, version: str = TEMPEST_VERSION) -> Path:
    """Make (or reuse) the venv at ``venv``; return its ``bin`` directory."""
    root = Path(venv).resolve()
    bindir = root / "bin"
    marker = root / _MARKER
    wanted = _fingerprint(version)
    if marker.is_file() and marker.read_text().strip() == wanted and (bindir / "tempest").exists():
        return bindir
    print(f"tempest: installing {wanted.split()[0]} and the plugin into {root}", flush=True)
    _run([sys.executable, "-m", "venv", "--clear", str(root)])
    # pip builds a local project in place: build a copy, so the source tree stays clean
    with tempfile.TemporaryDirectory(prefix="tempest-plugin-") as tmp:
        plugin = Path(tmp) / "plugin"
        shutil.copytree(PLUGIN_DIR, plugin, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        _run([str(bindir / "python"), "-m", "pip", "install", "--quiet",
              f"tempest=={version}", str(plugin)])
    marker.write_text(wanted + "\n")
    return bindir


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, check=False)
    if result.returncode != 0:
        raise VenvError(f"{' '.join(cmd)} exited with {result.returncode}")
