"""The two markers a conformance test carries.

``@guarantee("PAUSE-01", ...)`` names the catalogue entries the test checks;
``@requires("pause", ...)`` names the profile capabilities it needs.  Both are
plain pytest markers (registered by the plugin; ``--strict-markers`` is on),
validated at collection: an unknown id or capability is a collection error.
"""

from __future__ import annotations

import pytest

GUARANTEE = "guarantee"
REQUIRES = "requires"

guarantee = getattr(pytest.mark, GUARANTEE)
requires = getattr(pytest.mark, REQUIRES)

MARKER_LINES = (
    f"{GUARANTEE}(*ids): the guarantee ids (conformance/guarantees.yaml) a test checks",
    f"{REQUIRES}(*capabilities): profile capabilities the test needs (skipped if not claimed)",
)


def ids_of(item: pytest.Item, name: str) -> list[str]:
    """The arguments of every ``name`` marker on ``item``, in order, without repeats."""
    found: list[str] = []
    for mark in item.iter_markers(name=name):
        found.extend(str(arg) for arg in mark.args if str(arg) not in found)
    return found
