"""The shared-storage embedded cloud: its guarantees pass clean and FAIL with their defects.

``up --shared-storage`` gives every host one instances path and a profile that
claims ``shared_storage`` instead of ``block_migration``.  The move suites run
clean on it, then each sensitivity row marked ``cloud: shared-storage`` runs
exactly as test_sensitivity.py runs the others.
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

ROWS = [row for row in sensitivity.TABLE if row.get("cloud") == "shared-storage"]
MOVE_SUITES = ["test_live.py", "test_migrate.py", "test_evacuate.py"]


@pytest.fixture(scope="module")
def shared_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """An embedded cloud whose hosts share one instances path."""
    yield from started_cloud(tmp_path_factory, "shared", "--shared-storage")


def test_profile_claims_shared_storage(shared_cloud: EmbeddedCloud) -> None:
    """The profile claims shared_storage, not block_migration, and every host has the same path."""
    profile = load_profile(shared_cloud.profile)

    assert profile.claims("shared_storage") and not profile.claims("block_migration")
    assert len({host.instances_path for host in profile.hosts.values()}) == 1, profile.hosts


def test_move_suites_pass_clean(shared_cloud: EmbeddedCloud, reports: Path) -> None:
    """Without defects the move suites pass on shared storage, LIVE-07 included."""
    run = shared_cloud.run_suite(reports, "-n", "2", *[str(sensitivity.SUITES / s) for s in MOVE_SUITES])
    bad = {g: o for g, o in run.outcomes().items() if o not in ("passed", "skipped")}

    assert not bad, f"{bad}\n{run.output[-4000:]}"
    assert run.outcome("LIVE-07") == "passed", run.outcomes()
    assert run.exit_code == 0, run.output[-4000:]


@pytest.mark.parametrize("row", ROWS, ids=[row["defect"] for row in ROWS])
def test_defect_is_caught(shared_cloud: EmbeddedCloud, row: dict[str, Any], reports: Path) -> None:
    """With the defect on, its guarantees FAIL on the shared-storage cloud and the rest still pass."""
    sensitivity.check_batch(shared_cloud, [row], reports)
