"""Fixtures for self-tests that run the suite against a real embedded cloud."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.selftest.cloud import EmbeddedCloud, started_cloud


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """A clean embedded cloud shared by the self-tests (defects toggled per test)."""
    yield from started_cloud(tmp_path_factory, "cloud")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A private reports directory for one suite run."""
    return tmp_path / "reports"
