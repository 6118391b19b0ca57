"""The markers a conformance test carries.

``@guarantee("PAUSE-01", ...)`` names the catalogue entries the test checks;
``@requires("pause", ...)`` names the profile capabilities it needs;
``@conflicts_with("soft_delete", ...)`` names capabilities under which its
guarantee cannot hold (DELETE is a soft delete there), so a profile claiming
one skips it.  All are plain pytest markers (registered by the plugin;
``--strict-markers`` is on), validated at collection: an unknown id or
capability is a collection error.
"""

from __future__ import annotations

import pytest

GUARANTEE = "guarantee"
REQUIRES = "requires"
CONFLICTS = "conflicts_with"

guarantee = getattr(pytest.mark, GUARANTEE)
requires = getattr(pytest.mark, REQUIRES)
conflicts_with = getattr(pytest.mark, CONFLICTS)

MARKER_LINES = (
    f"{GUARANTEE}(*ids): the guarantee ids (conformance/guarantees.yaml) a test checks",
    f"{REQUIRES}(*capabilities): profile capabilities the test needs (skipped if not claimed)",
    f"{CONFLICTS}(*capabilities): capabilities under which the test does not apply (skipped if claimed)",
)


def ids_of(item: pytest.Item, name: str) -> list[str]:
    """The arguments of every ``name`` marker on ``item``, in order, without repeats."""
    found: list[str] = []
    for mark in item.iter_markers(name=name):
        found.extend(str(arg) for arg in mark.args if str(arg) not in found)
    return found
