"""Verdict aggregation: outcome precedence, messages, counts and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance.verdict import VerdictBuilder, worst


def builder() -> VerdictBuilder:
    return VerdictBuilder(["A-01", "A-02", "A-03"], "demo", "abc", "run1")


@pytest.mark.parametrize(("outcomes", "expected"), [
    (["passed", "failed", "error"], "failed"),
    (["passed", "error", "skipped"], "error"),
    (["skipped", "passed"], "passed"),
    (["skipped"], "skipped"),
    ([], "skipped"),
])
def test_worst(outcomes: list[str], expected: str) -> None:
    """failed > error > passed > skipped."""
    assert worst(outcomes) == expected
    assert worst(iter(outcomes)) == expected


def test_guarantee_takes_worst_test() -> None:
    """A guarantee fails if any of its tests fails, and names that test."""
    b = builder()
    b.add_phase("t.py::ok", ["A-01"], "passed")
    b.add_phase("t.py::bad", ["A-01", "A-02"], "failed", "assert 1 == 2")
    b.add_phase("t.py::err", ["A-02"], "error", "timeout")
    entries = {g["id"]: g for g in b.guarantees()}
    assert entries["A-01"] == {"id": "A-01", "outcome": "failed", "tests": ["t.py::ok", "t.py::bad"],
                               "message": "t.py::bad: assert 1 == 2"}
    assert entries["A-02"]["outcome"] == "failed"
    assert entries["A-03"]["outcome"] == "skipped"


def test_teardown_error_after_pass_is_error() -> None:
    """A passing call with a teardown error makes the test (and guarantee) an error."""
    b = builder()
    b.add_phase("t.py::x", ["A-01"], "passed")
    b.add_phase("t.py::x", ["A-01"], "error", "cleanup failed")
    entry = b.guarantees()[0]
    assert (entry["outcome"], entry["message"]) == ("error", "cleanup failed")
    assert b.counts == {"passed": 1, "failed": 0, "error": 1, "skipped": 0}


def test_failure_message_kept_over_later_teardown_error() -> None:
    """The failure's message stays when the teardown errors afterwards."""
    b = builder()
    b.add_phase("t.py::x", ["A-01"], "failed", "server stayed ACTIVE")
    b.add_phase("t.py::x", ["A-01"], "error", "cleanup failed")
    assert b.guarantees()[0]["message"] == "server stayed ACTIVE"


@pytest.mark.parametrize(("phases", "leaks", "pytest_status", "code"), [
    ([("passed", ["A-01"])], [], 0, 0),
    ([("passed", ["A-01"]), ("skipped", ["A-02"])], [], 0, 0),
    ([("failed", ["A-01"]), ("error", ["A-02"])], [], 1, 1),
    ([("error", ["A-01"])], [], 1, 6),
    ([("passed", ["A-01"])], ["server x"], 0, 6),
    ([("failed", ["A-01"])], ["server x"], 1, 1),
    ([("passed", ["A-01"])], [], 2, 2),
    ([], [], 5, 5),
])
def test_exit_codes(phases: list[tuple[str, list[str]]], leaks: list[str], pytest_status: int,
                    code: int) -> None:
    """0 pass, 1 any FAIL, 6 ERROR without FAIL (leaks too); pytest's 2 and 5 are kept."""
    b = builder()
    for i, (outcome, ids) in enumerate(phases):
        b.add_phase(f"t.py::{i}", ids, outcome)
    b.add_leaks(leaks)
    assert b.exit_code(pytest_status) == code


def test_document_shape(tmp_path: Path) -> None:
    """verdict.json has the keys DESIGN.md names."""
    b = builder()
    b.cloud["max_microversion"] = "2.96"
    b.add_phase("t.py::x", ["A-01"], "passed")
    doc = b.write(tmp_path / "verdict.json", 0)
    assert json.loads((tmp_path / "verdict.json").read_text()) == doc
    assert {"suite_version", "profile", "cloud", "started", "finished", "counts", "guarantees",
            "leaks"} <= set(doc)
    assert doc["profile"] == {"name": "demo", "sha256": "abc"}
    assert doc["cloud"] == {"max_microversion": "2.96"}
    assert set(doc["guarantees"][0]) == {"id", "outcome", "tests", "message"}
