"""Run Tempest test modules against a configured cloud and read the results.

:func:`run_modules` runs ``tempest run`` in a workspace directory (its
``.stestr`` repository, ``tempest.log`` and our files live there), then
reads the run back with ``stestr last --subunit``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from conformance.tempest.results import TestResult, collect
from conformance.tempest.subunit import packets

# The compute modules this project checks the embedded cloud with (issue 8).
MODULES = (
    "tempest.api.compute.servers.test_server_actions",
    "tempest.api.compute.servers.test_servers_negative",
    "tempest.api.compute.servers.test_server_rescue",
    "tempest.api.compute.servers.test_server_rescue_negative",
    "tempest.api.compute.servers.test_delete_server",
    "tempest.api.compute.servers.test_create_server",
    "tempest.api.compute.admin.test_migrations",
    "tempest.api.compute.admin.test_live_migration",
    "tempest.api.compute.admin.test_servers",
    "tempest.api.compute.servers.test_instance_actions",
    "tempest.api.compute.images.test_images",
    "tempest.scenario.test_shelve_instance",
)


@dataclasses.dataclass
class RunOutcome:
    """What one ``tempest run`` did."""

    returncode: int
    seconds: float
    tests: list[TestResult]
    workspace: Path

    @property
    def failed(self) -> list[TestResult]:
        """Tests that failed (or never finished)."""
        return [t for t in self.tests if t.status not in ("success", "xfail", "skip")]


def include_list(modules: Sequence[str]) -> str:
    """Tempest ``--include-list`` content: one anchored regex per module."""
    return "".join(f"^{re.escape(m)}\\.\n" for m in modules)


def run_modules(tempest_bin: Path, workspace: Path, conf: Path, modules: Sequence[str] = MODULES,
                concurrency: int = 2, exclude_regex: str | None = None,
                echo: TextIO | None = sys.stdout) -> RunOutcome:
    """Run ``modules`` with ``tempest run``; ``echo`` gets its output as it comes."""
    workspace.mkdir(parents=True, exist_ok=True)
    selection = workspace / "include-list.txt"
    selection.write_text(include_list(modules))
    cmd = [str(tempest_bin / "tempest"), "run", "--config-file", str(conf.resolve()),
           "--concurrency", str(concurrency), "--include-list", str(selection)]
    if exclude_regex:
        cmd += ["--exclude-regex", exclude_regex]
    start = time.monotonic()
    code = _stream(cmd, workspace, workspace / "tempest-run.log", echo)
    seconds = time.monotonic() - start
    return RunOutcome(code, seconds, read_last_run(tempest_bin, workspace), workspace)


def _stream(cmd: list[str], cwd: Path, log: Path, echo: TextIO | None) -> int:
    """Run ``cmd``, copy its output to ``log`` (and ``echo``); return its exit code."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}  # one line per test as it finishes
    with log.open("w") as out, subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                                stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if echo is not None:
                echo.write(line)
                echo.flush()
        return proc.wait()


def read_last_run(tempest_bin: Path, workspace: Path) -> list[TestResult]:
    """The tests of the workspace's last run (``stestr last --subunit``)."""
    result = subprocess.run([str(tempest_bin / "stestr"), "last", "--subunit"], cwd=workspace,
                            capture_output=True, check=False)
    (workspace / "last-run.subunit").write_bytes(result.stdout)
    return collect(packets(result.stdout))
