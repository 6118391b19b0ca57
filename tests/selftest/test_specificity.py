"""Specificity: the whole suite, run N times on a clean embedded cloud, never FAILs or ERRORs.

N comes from CONFORMANCE_SPECIFICITY_RUNS (default 1; CI sets 5, the README's
figure is N=20). Each run's non-passing guarantees go to
reports/specificity.json, so a flaky guarantee is named with the run it broke in.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.selftest.cloud import EmbeddedCloud, started_cloud
from tests.selftest.test_sensitivity import SUITES

pytestmark = pytest.mark.selftest

RUNS = int(os.environ.get("CONFORMANCE_SPECIFICITY_RUNS", "1"))
OUT = Path(__file__).resolve().parents[2] / "reports" / "specificity.json"


@pytest.fixture(scope="module")
def clean_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """A fresh cloud of its own: the session cloud has had defects on (sensitivity) and
    hosts fenced (evacuate rows); clean means never touched by a defect."""
    yield from started_cloud(tmp_path_factory, "clean")


def test_clean_cloud_never_fails(clean_cloud: EmbeddedCloud, tmp_path: Path,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    """N whole-suite runs on a clean cloud: every guarantee passes or skips, every time."""
    extra = shlex.split(os.environ.get("CONFORMANCE_SPECIFICITY_ARGS", "-n 4"))
    runs: list[dict[str, Any]] = []
    for n in range(RUNS):
        started = time.monotonic()
        run = clean_cloud.run_suite(tmp_path / f"run{n}", *extra, str(SUITES))
        bad = {g: o for g, o in run.outcomes().items() if o not in ("passed", "skipped")}
        runs.append({"run": n + 1, "exit_code": run.exit_code, "non_passes": bad,
                     "seconds": round(time.monotonic() - started, 1)})
        if run.exit_code != 0 or bad:
            runs[-1]["output_tail"] = run.output[-3000:]
        with capsys.disabled():  # progress: each run takes minutes
            print(f"\n[specificity] run {n + 1}/{RUNS}: exit {run.exit_code}, {len(bad)} non-passes,"
                  f" {runs[-1]['seconds']} s", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    total = sum(len(r["non_passes"]) for r in runs)
    OUT.write_text(json.dumps({"runs": RUNS, "non_passes_total": total, "per_run": runs}, indent=1))
    failed = [r for r in runs if r["exit_code"] != 0 or r["non_passes"]]
    assert not failed, f"{len(failed)}/{RUNS} clean runs did not pass: " + json.dumps(failed, indent=1)[:6000]
