"""Sensitivity: every guarantee FAILs against a defect of the embedded cloud made to break it."""

from __future__ import annotations

import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.catalogue import load_catalogue
from tests.selftest.cloud import EmbeddedCloud, SuiteRun
from tests.selftest.sensitivity_plan import (
    batch_id,
    keyword_expression,
    load_table,
    plan_batches,
    selected_rows,
)

pytestmark = pytest.mark.selftest

SUITES = Path(__file__).resolve().parents[2] / "conformance" / "suites"
# Per-row results for the generated table (docs/sensitivity.md).
RESULTS_DIR = Path(os.environ.get("CONFORMANCE_SENSITIVITY_RESULTS",
                                  Path(__file__).resolve().parents[2] / "reports" / "sensitivity"))

TABLE = load_table()
# Rows with a `cloud:` key need another kind of cloud and run in their own self-test
# (`cloud: shared-storage`: tests/selftest/test_shared_storage_cloud.py).
DEFAULT_CLOUD_ROWS = [row for row in TABLE if "cloud" not in row]

# CONFORMANCE_SENSITIVITY_FOCUS=1: run only the tests of the row's guarantees (breaks and
# collateral), not its whole suite module. Proves sensitivity for every row in a fraction of the
# time; that the rest of a module still passes is then shown by the unfocused family/core rows
# and by the specificity self-test.
# CONFORMANCE_SENSITIVITY_BATCH=1: several defects of different families on at once, one focused
# run per batch (tests/selftest/sensitivity_plan.py): how CI affords every row.
BATCH = os.environ.get("CONFORMANCE_SENSITIVITY_BATCH", "0") == "1"
FOCUS = BATCH or os.environ.get("CONFORMANCE_SENSITIVITY_FOCUS", "0") == "1"
ROWS = selected_rows(DEFAULT_CLOUD_ROWS, os.environ.get("CONFORMANCE_SENSITIVITY", "family"))
BATCHES = plan_batches(ROWS) if BATCH else [[row] for row in ROWS]


def test_every_guarantee_has_a_defect() -> None:
    """Every catalogue guarantee is named in the `breaks` of at least one defect row."""
    covered = {gid for row in TABLE for gid in row["breaks"]}
    missing = sorted(gid for gid in load_catalogue() if gid not in covered)
    assert not missing, f"guarantees without a defect that breaks them: {missing}"


@pytest.mark.parametrize("batch", BATCHES, ids=[batch_id(b) for b in BATCHES])
def test_defect_is_caught(cloud: EmbeddedCloud, batch: list[dict[str, Any]], reports: Path) -> None:
    """With the defect(s) on, their guarantees FAIL and the rest of the run still passes."""
    check_batch(cloud, batch, reports)


def check_batch(cloud: EmbeddedCloud, batch: list[dict[str, Any]], reports: Path) -> None:
    """Run the batch's suites with its defects on, record each row, assert each was caught.

    Each row's result (outcome of every guarantee of the run) goes to :func:`result_path`
    whatever happens, for `python -m tests.selftest.sensitivity_report`.
    """
    if os.environ.get("CONFORMANCE_SENSITIVITY_RESUME") == "1" and all(
            result_path(row).exists() for row in batch):
        pytest.skip("results already recorded (CONFORMANCE_SENSITIVITY_RESUME=1)")
    started = time.monotonic()
    run = run_with_defects(cloud, batch, reports)
    outcomes = run.outcomes()
    allowed = set(declared(batch))
    noise = {g: o for g, o in outcomes.items() if g not in allowed and o not in ("passed", "skipped")}
    noise |= {g: outcomes.get(g, "missing") for g in canary_ids(batch)
              if g not in allowed and outcomes.get(g) != "passed"}  # the canary must really pass
    seconds = time.monotonic() - started
    missed = {}
    for row in batch:
        missed[row["defect"]] = [g for g in row["breaks"] if outcomes.get(g) != "failed"]
        record_result(row, batch, outcomes, missed[row["defect"]], noise, run.exit_code, seconds)
    tail = run.output[-4000:]
    not_failed = {d: m for d, m in missed.items() if m}
    assert not not_failed, f"not failed: {not_failed}\n{outcomes}\n{tail}"
    assert not noise, f"unrelated guarantees did not pass: {noise}\n{tail}"
    assert run.exit_code == 1, tail


def run_with_defects(cloud: EmbeddedCloud, batch: list[dict[str, Any]], reports: Path) -> SuiteRun:
    """One suite run of the batch's suite modules (focused: only the batch's guarantees,
    plus the canary family) with every defect of the batch on, and off again afterwards."""
    extra, suites = suite_args(batch)
    switched = []
    try:
        for row in batch:
            cloud.defect(row["defect"], True)
            switched.append(row["defect"])
        return cloud.run_suite(reports, *extra, *suites,
                               profile=short_timeouts(cloud.profile, reports.parent))
    finally:
        for name in switched:
            cloud.defect(name, False)


# A focused run also runs this unrelated family whole, which must pass: a defect that leaks
# out of its own family shows up there (launch is the step every other family starts from).
CANARY = "test_launch.py"


def declared(batch: list[dict[str, Any]]) -> list[str]:
    """The guarantees the batch's defects may make fail: every row's breaks and collateral."""
    return [g for row in batch for g in [*row["breaks"], *row.get("collateral", [])]]


def canary_ids(batch: list[dict[str, Any]]) -> list[str]:
    """The canary family's guarantees if this batch's focused run includes it, else none."""
    if not FOCUS or any(CANARY in row["suites"] or row.get("args") for row in batch):
        return []
    return [g for g in load_catalogue() if g.startswith("LAUNCH-")]


def suite_args(batch: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The pytest arguments and suite module paths of one batch's run."""
    extra = shlex.split(os.environ.get("CONFORMANCE_SENSITIVITY_ARGS", ""))
    extra += [arg for row in batch for arg in row.get("args", [])]
    modules = [s for row in batch for s in row["suites"]]
    if FOCUS:
        canary = canary_ids(batch)
        if canary:
            modules.append(CANARY)
        extra.append("--guarantee=" + ",".join(dict.fromkeys([*declared(batch), *canary])))
    selection = keyword_expression(batch)
    if selection:
        extra += ["-k", selection]
    if len(batch) > 1 and "-n" not in extra:
        extra += ["-n", "4"]
    return extra, [str(SUITES / s) for s in dict.fromkeys(modules)]


def result_path(row: dict[str, Any]) -> Path:
    """Where one row's result goes: the same defect may be a row of two tables."""
    return RESULTS_DIR / f"{row['table']}--{row['defect']}.json"


def short_timeouts(profile: Path, directory: Path) -> Path:
    """A copy of ``profile`` whose operation timeouts are CONFORMANCE_SENSITIVITY_TIMEOUT seconds.

    A defect makes the suite wait a timeout out (a state or an eventual effect that never
    comes, then the assertion FAILs); the embedded cloud's clean operations take a second or
    two, so a short timeout keeps a row fast without turning a clean check into an ERROR.
    Effects after an end state (``settle``: events, allocations, host files) follow within a
    second: CONFORMANCE_SENSITIVITY_SETTLE seconds (default 8) for those.
    """
    seconds = float(os.environ.get("CONFORMANCE_SENSITIVITY_TIMEOUT", "20"))
    data = yaml.safe_load(profile.read_text())
    timeouts = data.setdefault("timeouts", {})
    timeouts["settle"] = float(os.environ.get("CONFORMANCE_SENSITIVITY_SETTLE", "8"))
    for name in ("server_build", "server_action", "server_delete"):
        timeouts[name] = seconds
    for name in ("snapshot", "migration"):
        timeouts[name] = 2 * seconds
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "profile-short-timeouts.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def record_result(row: dict[str, Any], batch: list[dict[str, Any]], outcomes: dict[str, str],
                  missed: list[str], noise: dict[str, str], exit_code: int, seconds: float) -> None:
    """Write one row's result as JSON to :func:`result_path` (one file per table and defect)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {
        "defect": row["defect"], "table": row["table"], "suites": row["suites"],
        "breaks": row["breaks"], "collateral": row.get("collateral", []),
        "cloud": row.get("cloud", "default"), "outcomes": outcomes, "missed": missed,
        "noise": noise, "exit_code": exit_code, "seconds": round(seconds, 1),
        "caught": not missed and not noise and exit_code == 1, "focused": FOCUS,
        "batch": [r["defect"] for r in batch if r is not row],
    }
    result_path(row).write_text(json.dumps(result, indent=1) + "\n")
