"""``--guarantee ID[,ID...]``: run only the tests that check the named guarantees.

Used to re-check one guarantee after a fix, and by the sensitivity self-test
to run just the tests a defect row is about.
"""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from conformance.markers import GUARANTEE, ids_of


def requested(values: Iterable[str] | None) -> set[str]:
    """The guarantee ids of repeated, comma-separated ``--guarantee`` values."""
    return {part.strip() for value in values or () for part in value.split(",") if part.strip()}


def check_known(wanted: set[str], catalogue: Iterable[str]) -> None:
    """Stop with exit 4 naming any id that is not in the catalogue."""
    unknown = sorted(wanted - set(catalogue))
    if unknown:
        raise pytest.UsageError(
            f"--guarantee: unknown guarantee id(s) {', '.join(unknown)}; the ids are in "
            "conformance/guarantees.yaml (e.g. PAUSE-01)")


def deselect(config: pytest.Config, items: list[pytest.Item], wanted: set[str]) -> None:
    """Keep only the tests declaring at least one wanted id; report the rest as deselected."""
    if not wanted:
        return
    keep = [item for item in items if wanted & set(ids_of(item, GUARANTEE))]
    dropped = [item for item in items if wanted.isdisjoint(ids_of(item, GUARANTEE))]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
