"""Conformance suite for the lifecycle guarantees of OpenStack Nova instances.

Tests import the two markers from here::

    from conformance import guarantee, requires

They are loaded lazily so that importing the package (e.g. by the embedded
cloud) does not import pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance.markers import conflicts_with, guarantee, requires

__all__ = ["conflicts_with", "guarantee", "requires"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from conformance import markers

        return getattr(markers, name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
