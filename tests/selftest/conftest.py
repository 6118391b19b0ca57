"""Fixtures for self-tests that run the suite against a real embedded cloud."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.selftest.cloud import EmbeddedCloud


def started_cloud(factory: pytest.TempPathFactory, name: str, *up_args: str) -> Iterator[EmbeddedCloud]:
    """Start an embedded cloud in a fresh temporary workdir, yield it, stop it afterwards.

    CONFORMANCE_SELFTEST_CLOUD=WORKDIR yields the cloud already up there instead (left up).
    """
    existing = os.environ.get("CONFORMANCE_SELFTEST_CLOUD")
    if existing:
        yield EmbeddedCloud(Path(existing))
        return
    embedded = EmbeddedCloud(factory.mktemp(name) / "w", *up_args)
    embedded.up()
    try:
        yield embedded
    finally:
        embedded.down()


@pytest.fixture(scope="session")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """A clean embedded cloud shared by the self-tests (defects toggled per test)."""
    yield from started_cloud(tmp_path_factory, "cloud")


@pytest.fixture
def reports(tmp_path: Path) -> Path:
    """A private reports directory for one suite run."""
    return tmp_path / "reports"
