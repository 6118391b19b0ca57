"""The order of xdist work units (conformance/lib/schedule.py)."""

from __future__ import annotations

from conformance.lib.schedule import order


def test_leasing_units_first_then_by_size_each_unit_together() -> None:
    """Units that lease hosts go first, then larger units; a unit's tests stay together and in order."""
    units = ["a", "m", "m", "m", "b", "live", "a", "live", "c"]
    leasing = [False, False, False, False, False, True, False, False, False]

    assert [units[i] for i in order(units, leasing)] == ["live", "live", "m", "m", "m", "a", "a", "b", "c"]
    assert order(units, leasing)[:2] == [5, 7]
