"""The sensitivity batch plan: defects that share a batch never share a suite module."""

from __future__ import annotations

from typing import Any

import pytest

from tests.selftest.sensitivity_plan import (
    SHARED_PATH_SUITES,
    batch_id,
    keyword_expression,
    load_table,
    plan_batches,
    runs_alone,
)

ROWS = [row for row in load_table() if "cloud" not in row]


def test_every_row_is_planned_once() -> None:
    """Each row of the table lands in exactly one batch."""
    planned = [row["defect"] + "/" + row["table"] for batch in plan_batches(ROWS) for row in batch]
    assert sorted(planned) == sorted(row["defect"] + "/" + row["table"] for row in ROWS)


def test_rows_of_a_batch_share_no_module() -> None:
    """No two rows of one batch run the same suite module."""
    for batch in plan_batches(ROWS):
        modules = [s for row in batch for s in row["suites"]]
        assert len(modules) == len(set(modules)), batch_id(batch)


def test_shared_path_and_argument_rows_run_alone() -> None:
    """Launch/terminate rows, rows with pytest args and `solo` rows get a batch of their own."""
    for batch in plan_batches(ROWS):
        if any(runs_alone(row) for row in batch):
            assert len(batch) == 1, batch_id(batch)
    assert runs_alone({"suites": [next(iter(SHARED_PATH_SUITES))]})
    assert runs_alone({"suites": ["test_pause.py"], "args": ["-k", "x"]})
    assert runs_alone({"suites": ["test_pause.py"], "solo": True})
    assert not runs_alone({"suites": ["test_pause.py"]})


def test_plan_is_deterministic_and_bounded() -> None:
    """The same table gives the same batches; none is larger than asked."""
    first = [[row["defect"] for row in batch] for batch in plan_batches(ROWS, max_size=5)]
    again = [[row["defect"] for row in batch] for batch in plan_batches(ROWS, max_size=5)]
    assert first == again
    assert max(len(batch) for batch in first) <= 5


def test_batches_are_even() -> None:
    """Shared batches differ in size by at most one row (least-loaded placement)."""
    sizes = [len(batch) for batch in plan_batches(ROWS) if not runs_alone(batch[0])]
    assert max(sizes) - min(sizes) <= 1, sizes


def test_select_narrows_only_its_own_modules() -> None:
    """A row's `select` becomes a -k clause that lets every other module's tests through."""
    rows: list[dict[str, Any]] = [{"suites": ["test_matrix.py"], "select": "ACTIVE or PAUSED"},
                                  {"suites": ["test_pause.py"]}]
    expression = keyword_expression(rows)
    assert expression == "((not test_matrix.py) or (ACTIVE or PAUSED))"
    assert keyword_expression([{"suites": ["test_pause.py"]}]) is None
    assert not runs_alone(rows[0])


def test_select_expression_selects_as_meant(pytester: pytest.Pytester) -> None:
    """pytest applies the clause as intended: other modules whole, the row's module narrowed."""
    pytester.makepyfile(
        test_matrix="import pytest\n"
                    "@pytest.mark.parametrize('s', ['ACTIVE', 'ERROR'])\ndef test_m(s): pass\n",
        test_other="def test_o(): pass\n")
    expression = keyword_expression([{"suites": ["test_matrix.py"], "select": "ACTIVE"}])
    result = pytester.runpytest("-k", str(expression), "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, deselected=1)
