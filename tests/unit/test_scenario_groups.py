"""xdist grouping of tests that share a scenario fixture of their module (conformance/plugin.py)."""

from __future__ import annotations

import dataclasses
from typing import Any

from conformance.plugin import _scenario_groups

MODULE = "conformance/suites/test_x.py"


@dataclasses.dataclass
class FixtureDef:
    scope: str
    baseid: str


@dataclasses.dataclass
class Info:
    name2fixturedefs: dict[str, list[FixtureDef]]


@dataclasses.dataclass
class Item:
    nodeid: str
    _fixtureinfo: Info


def item(name: str, **fixtures: tuple[str, str]) -> Any:
    defs = {fixture: [FixtureDef(scope, baseid)] for fixture, (scope, baseid) in fixtures.items()}
    return Item(f"{MODULE}::{name}", Info(defs))


def test_tests_sharing_a_module_scenario_form_one_group() -> None:
    """Users of one module-scoped fixture of the module share a group; connected scenarios merge."""
    items = [item("a", cycle=("module", MODULE)),
             item("b", cycle=("module", MODULE), other=("module", MODULE)),
             item("c", other=("module", MODULE)), item("d", alone=("module", MODULE))]

    groups = _scenario_groups(items)

    assert groups[items[0].nodeid] == groups[items[1].nodeid] == groups[items[2].nodeid]
    assert groups[items[3].nodeid] == "test_x.alone"
    assert groups[items[0].nodeid] != groups[items[3].nodeid]


def test_function_session_and_plugin_fixtures_do_not_group() -> None:
    """Function- or session-scoped fixtures, and module-scoped ones defined elsewhere, leave a test free."""
    items = [item("a", server=("function", MODULE)), item("b", conn=("session", "")),
             item("c", module_server_factory=("module", ""))]

    assert _scenario_groups(items) == {}
