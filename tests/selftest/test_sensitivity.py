"""Sensitivity: every guarantee FAILs against a defect of the embedded cloud made to break it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance.catalogue import load_catalogue
from tests.selftest.cloud import EmbeddedCloud

pytestmark = pytest.mark.selftest

TABLE_DIR = Path(__file__).parent / "sensitivity"
SUITES = Path(__file__).resolve().parents[2] / "conformance" / "suites"


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
    or the rows of one table file (scope = its stem, e.g. 'core').

    Each row costs one suite-module run against the cloud, so `tox -e self` (and CI)
    proves one defect per family and `tox -e sensitivity` proves every row.
    """
    if scope == "all":
        return rows
    if scope != "family":
        return [row for row in rows if row["table"] == scope]
    seen: set[tuple[str, ...]] = set()
    picked = []
    for row in rows:
        key = tuple(row["suites"])
        if key not in seen:
            seen.add(key)
            picked.append(row)
    return picked


ROWS = selected_rows(DEFAULT_CLOUD_ROWS, os.environ.get("CONFORMANCE_SENSITIVITY", "family"))


def test_every_guarantee_has_a_defect() -> None:
    """Every catalogue guarantee is named in the `breaks` of at least one defect row."""
    covered = {gid for row in TABLE for gid in row["breaks"]}
    missing = sorted(gid for gid in load_catalogue() if gid not in covered)
    assert not missing, f"guarantees without a defect that breaks them: {missing}"


@pytest.mark.parametrize("row", ROWS, ids=[row["defect"] for row in ROWS])
def test_defect_is_caught(cloud: EmbeddedCloud, row: dict[str, Any], reports: Path) -> None:
    """With the defect on, its guarantees FAIL and the rest of the run still passes."""
    cloud.defect(row["defect"], True)
    try:
        run = cloud.run_suite(reports, *[str(SUITES / s) for s in row["suites"]])
    finally:
        cloud.defect(row["defect"], False)
    outcomes = run.outcomes()
    missed = [g for g in row["breaks"] if outcomes.get(g) != "failed"]
    assert not missed, f"{row['defect']}: not failed: {missed}\n{outcomes}\n{run.output[-4000:]}"
    allowed = set(row["breaks"]) | set(row.get("collateral", []))
    noise = {g: o for g, o in outcomes.items() if g not in allowed and o not in ("passed", "skipped")}
    assert not noise, f"{row['defect']}: unrelated guarantees did not pass: {noise}\n{run.output[-4000:]}"
    assert run.exit_code == 1, run.output[-4000:]
