"""Fixtures for self-tests that run the suite against a real embedded cloud."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.selftest.cloud import EmbeddedCloud


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """A clean embedded cloud shared by the self-tests (defects toggled per test).

    CONFORMANCE_SELFTEST_CLOUD=WORKDIR uses a cloud already up there (left up afterwards).
    """
    existing = os.environ.get("CONFORMANCE_SELFTEST_CLOUD")
    if existing:
        yield EmbeddedCloud(Path(existing))
        return
    embedded = EmbeddedCloud(tmp_path_factory.mktemp("cloud") / "w")
    embedded.up()
    try:
        yield embedded
    finally:
        embedded.down()


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A private reports directory for one suite run."""
    return tmp_path / "reports"
