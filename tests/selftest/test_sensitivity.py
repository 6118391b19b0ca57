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
from tests.selftest.cloud import EmbeddedCloud

pytestmark = pytest.mark.selftest

TABLE_DIR = Path(__file__).parent / "sensitivity"
SUITES = Path(__file__).resolve().parents[2] / "conformance" / "suites"
# Per-row results for the generated table (docs/sensitivity.md).
RESULTS_DIR = Path(os.environ.get("CONFORMANCE_SENSITIVITY_RESULTS",
                                  Path(__file__).resolve().parents[2] / "reports" / "sensitivity"))


def load_table() -> list[dict[str, Any]]:
    """All rows of tests/selftest/sensitivity/*.yaml, in file order."""
    rows: list[dict[str, Any]] = []
    for path in sorted(TABLE_DIR.glob("*.yaml")):
        rows.extend({**row, "table": path.stem} for row in yaml.safe_load(path.read_text()) or [])
    return rows


TABLE = load_table()
# Rows with a `cloud:` key need another kind of cloud and run in their own self-test
# (`cloud: shared-storage`: tests/selftest/test_shared_storage_cloud.py).
DEFAULT_CLOUD_ROWS = [row for row in TABLE if "cloud" not in row]


def selected_rows(rows: list[dict[str, Any]], scope: str) -> list[dict[str, Any]]:
    """Every row (scope 'all'), the first row per suite module set (scope 'family'),
    or the rows of some table files (scope = their stems, e.g. 'core' or 'lock,live').

    Each row costs one suite-module run against the cloud, so `tox -e self` (and CI)
    proves one defect per family and `tox -e sensitivity` proves every row.
    """
    if scope == "all":
        return rows
    if scope != "family":
        return [row for row in rows if row["table"] in scope.split(",")]
    seen: set[tuple[str, ...]] = set()
    picked = []
    for row in rows:
        key = tuple(row["suites"])
        if key not in seen:
            seen.add(key)
            picked.append(row)
    return picked


# CONFORMANCE_SENSITIVITY_FOCUS=1: run only the tests of the row's guarantees (breaks and
# collateral), not its whole suite module. Proves sensitivity for every row in a fraction of the
# time; that the rest of a module still passes is then shown by the unfocused family/core rows
# and by the specificity self-test.
FOCUS = os.environ.get("CONFORMANCE_SENSITIVITY_FOCUS", "0") == "1"
ROWS = selected_rows(DEFAULT_CLOUD_ROWS, os.environ.get("CONFORMANCE_SENSITIVITY", "family"))


def test_every_guarantee_has_a_defect() -> None:
    """Every catalogue guarantee is named in the `breaks` of at least one defect row."""
    covered = {gid for row in TABLE for gid in row["breaks"]}
    missing = sorted(gid for gid in load_catalogue() if gid not in covered)
    assert not missing, f"guarantees without a defect that breaks them: {missing}"


@pytest.mark.parametrize("row", ROWS, ids=[row["defect"] for row in ROWS])
def test_defect_is_caught(cloud: EmbeddedCloud, row: dict[str, Any], reports: Path) -> None:
    """With the defect on, its guarantees FAIL and the rest of the run still passes."""
    check_row(cloud, row, reports)


def check_row(cloud: EmbeddedCloud, row: dict[str, Any], reports: Path) -> None:
    """Run the row's suites with its defect on, record the result, assert it was caught.

    The result (outcome of every guarantee of the run) goes to :func:`result_path`
    whatever happens, for `python -m tests.selftest.sensitivity_report`.
    """
    resume = os.environ.get("CONFORMANCE_SENSITIVITY_RESUME") == "1"
    if resume and result_path(row).exists():
        pytest.skip("result already recorded (CONFORMANCE_SENSITIVITY_RESUME=1)")
    extra = shlex.split(os.environ.get("CONFORMANCE_SENSITIVITY_ARGS", "")) + row.get("args", [])
    if FOCUS:
        extra.append("--guarantee=" + ",".join([*row["breaks"], *row.get("collateral", [])]))
    started = time.monotonic()
    cloud.defect(row["defect"], True)
    try:
        run = cloud.run_suite(reports, *extra, *[str(SUITES / s) for s in row["suites"]],
                              profile=short_timeouts(cloud.profile, reports.parent))
    finally:
        cloud.defect(row["defect"], False)
    outcomes = run.outcomes()
    missed = [g for g in row["breaks"] if outcomes.get(g) != "failed"]
    allowed = set(row["breaks"]) | set(row.get("collateral", []))
    noise = {g: o for g, o in outcomes.items() if g not in allowed and o not in ("passed", "skipped")}
    record_result(row, outcomes, missed, noise, run.exit_code, time.monotonic() - started)
    assert not missed, f"{row['defect']}: not failed: {missed}\n{outcomes}\n{run.output[-4000:]}"
    assert not noise, f"{row['defect']}: unrelated guarantees did not pass: {noise}\n{run.output[-4000:]}"
    assert run.exit_code == 1, run.output[-4000:]


def result_path(row: dict[str, Any]) -> Path:
    """Where one row's result goes: the same defect may be a row of two tables."""
    return RESULTS_DIR / f"{row['table']}--{row['defect']}.json"


def short_timeouts(profile: Path, directory: Path) -> Path:
    """A copy of ``profile`` whose operation timeouts are CONFORMANCE_SENSITIVITY_TIMEOUT seconds.

    A defect makes the suite wait a timeout out (a state or an eventual effect that never
    comes, then the assertion FAILs); the embedded cloud's clean operations take a second or
    two, so a short timeout keeps a row fast without turning a clean check into an ERROR.
    """
    seconds = float(os.environ.get("CONFORMANCE_SENSITIVITY_TIMEOUT", "20"))
    data = yaml.safe_load(profile.read_text())
    timeouts = data.setdefault("timeouts", {})
    for name in ("server_build", "server_action", "server_delete"):
        timeouts[name] = seconds
    for name in ("snapshot", "migration"):
        timeouts[name] = 2 * seconds
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "profile-short-timeouts.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def record_result(row: dict[str, Any], outcomes: dict[str, str], missed: list[str],
                  noise: dict[str, str], exit_code: int, seconds: float) -> None:
    """Write one row's result as JSON to :func:`result_path` (one file per table and defect)."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    result = {
        "defect": row["defect"], "table": row["table"], "suites": row["suites"],
        "breaks": row["breaks"], "collateral": row.get("collateral", []),
        "cloud": row.get("cloud", "default"), "outcomes": outcomes, "missed": missed,
        "noise": noise, "exit_code": exit_code, "seconds": round(seconds, 1),
        "caught": not missed and not noise and exit_code == 1, "focused": FOCUS,
    }
    result_path(row).write_text(json.dumps(result, indent=1) + "\n")
