"""The soft-delete embedded cloud: SOFTDEL passes clean and FAILs with each of its defects.

``up --soft-delete`` sets reclaim_instance_interval (DELETE becomes a soft
delete) and writes a profile that claims ``soft_delete``.  test_softdel.py
runs clean on it while test_terminate.py's DELETE-01..04 skip (they conflict
with soft_delete), then each sensitivity row marked ``cloud: soft-delete``
runs exactly as test_sensitivity.py runs the others.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.profile import load_profile
from tests.selftest import test_sensitivity as sensitivity
from tests.selftest.cloud import EmbeddedCloud, started_cloud

pytestmark = pytest.mark.selftest

ROWS = [row for row in sensitivity.TABLE if row.get("cloud") == "soft-delete"]
DELETE_IDS = ("DELETE-01", "DELETE-02", "DELETE-03", "DELETE-04")


@pytest.fixture(scope="module")
def soft_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """An embedded cloud whose DELETE is a soft delete."""
    yield from started_cloud(tmp_path_factory, "softdel", "--soft-delete")


def test_profile_claims_soft_delete(soft_cloud: EmbeddedCloud) -> None:
    """The profile of a --soft-delete cloud claims soft_delete."""
    assert load_profile(soft_cloud.profile).claims("soft_delete")


def test_softdel_passes_clean(soft_cloud: EmbeddedCloud, reports: Path) -> None:
    """Without defects SOFTDEL-* pass, and the hard-delete guarantees DELETE-01..04 skip."""
    suites = [str(sensitivity.SUITES / s) for s in ("test_softdel.py", "test_terminate.py")]
    run = soft_cloud.run_suite(reports, "-n", "2", *suites)
    outcomes = run.outcomes()
    softdel = {g: o for g, o in outcomes.items() if g.startswith("SOFTDEL-")}

    assert softdel and set(softdel.values()) == {"passed"}, f"{softdel}\n{run.output[-4000:]}"
    assert {outcomes.get(g) for g in DELETE_IDS} == {"skipped"}, outcomes
    assert run.exit_code == 0, run.output[-4000:]


@pytest.mark.parametrize("row", ROWS, ids=[row["defect"] for row in ROWS])
def test_defect_is_caught(soft_cloud: EmbeddedCloud, row: dict[str, Any], reports: Path) -> None:
    """With the defect on, its guarantees FAIL on the soft-delete cloud and the rest still pass."""
    sensitivity.check_batch(soft_cloud, [row], reports)
