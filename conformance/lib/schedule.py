"""The order in which xdist hands out work units: tests that wait on each other first.

xdist's loadgroup scheduler hands each free worker the next work unit (one
``xdist_group``, or one test) of its queue.  By default it orders the queue by
the number of tests of a unit, so the host-leasing move scenarios (a handful of
tests, but the longest scenarios of the run, which share a few hosts) started
only after the state matrix (about a hundred cheap tests per state) and ended
the run.  :func:`order` puts the units that lease hosts first, then the others
by size, and keeps each unit's tests together and in collection order.
"""

from __future__ import annotations

from collections.abc import Sequence


def order(units: Sequence[str], leasing: Sequence[bool]) -> list[int]:
    """Test indexes in run order (``units[i]``: test i's work unit; ``leasing[i]``: it leases hosts)."""
    size: dict[str, int] = {}
    leases: dict[str, bool] = {}
    first: dict[str, int] = {}
    for index, (unit, lease) in enumerate(zip(units, leasing, strict=True)):
        size[unit] = size.get(unit, 0) + 1
        leases[unit] = leases.get(unit, False) or lease
        first.setdefault(unit, index)

    def key(index: int) -> tuple[bool, int, int, int]:
        unit = units[index]
        return not leases[unit], -size[unit], first[unit], index

    return sorted(range(len(units)), key=key)
