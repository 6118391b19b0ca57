"""Drive an embedded cloud and the conformance suite from the project's own tests.

These helpers start `python -m conformance.embedded` in a workdir, toggle
defects through its control endpoint, and run the suite in a subprocess,
returning its exit code and parsed verdict.json.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


@dataclass
class SuiteRun:
    """The outcome of one suite run: exit code, verdict and captured output."""

    exit_code: int
    verdict: dict
    output: str

    def outcome(self, guarantee_id: str) -> str:
        """The verdict outcome of one guarantee ('missing' if absent)."""
        for entry in self.verdict.get("guarantees", []):
            if entry["id"] == guarantee_id:
                return str(entry["outcome"])
        return "missing"

    def outcomes(self) -> dict[str, str]:
        return {g["id"]: g["outcome"] for g in self.verdict.get("guarantees", [])}


class EmbeddedCloud:
    """One embedded cloud started in `workdir` by the real CLI."""

    def __init__(self, workdir: Path, *up_args: str):
        self.workdir = workdir
        self.up_args = up_args

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "conformance.embedded", *args, "--workdir", str(self.workdir)]
        return subprocess.run(cmd, cwd=REPO, text=True, capture_output=True, check=check)

    def up(self) -> None:
        # the cloud stops itself if this test process dies without `down` (watchdog)
        result = self.cli("up", *self.up_args, f"--owner-pid={os.getpid()}", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"embedded up failed:\n{result.stdout}\n{result.stderr}")

    def down(self) -> None:
        self.cli("down", check=False)

    @property
    def profile(self) -> Path:
        return self.workdir / "profile.yaml"

    @property
    def control_url(self) -> str:
        ready = json.loads((self.workdir / "nova.ready.json").read_text())
        return str(ready["control_url"]).rstrip("/")

    def defect(self, name: str, enabled: bool) -> None:
        """Switch one defect on or off at run time."""
        req = urllib.request.Request(f"{self.control_url}/defects/{name}",
                                     method="POST" if enabled else "DELETE")
        with urllib.request.urlopen(req, timeout=30) as resp:
            resp.read()

    def run_suite(self, reports: Path, *pytest_args: str, profile: Path | None = None) -> SuiteRun:
        """Run the conformance suite against this cloud in a subprocess."""
        cmd = [sys.executable, "-m", "pytest", "--profile", str(profile or self.profile),
               "--reports", str(reports), "-q", "-p", "no:cacheprovider", *pytest_args]
        env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
        proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True, env=env)
        verdict_file = reports / "verdict.json"
        verdict = json.loads(verdict_file.read_text()) if verdict_file.exists() else {}
        return SuiteRun(proc.returncode, verdict, proc.stdout + proc.stderr)


def started_cloud(factory: Any, name: str, *up_args: str) -> Iterator[EmbeddedCloud]:
    """Start an embedded cloud (``up_args``) in a fresh temporary workdir of ``factory``
    (pytest's tmp_path_factory), yield it, and stop it afterwards.

    CONFORMANCE_SELFTEST_CLOUD=WORKDIR yields the cloud already up there instead (left up),
    for a default cloud only: a cloud started with options cannot be stood in for.
    """
    existing = os.environ.get("CONFORMANCE_SELFTEST_CLOUD")
    if existing and not up_args:
        yield EmbeddedCloud(Path(existing))
        return
    embedded = EmbeddedCloud(factory.mktemp(name) / "w", *up_args)
    embedded.up()
    try:
        yield embedded
    finally:
        embedded.down()
