"""Interrupted runs in the verdict: a dead xdist worker's test is an ERROR of its guarantees (never
'no test selected'), and a Ctrl-C'd run is an ERROR that keeps exit code 2."""

from __future__ import annotations

import types
from pathlib import Path

import pytest

from conformance.catalogue import guarantees_of_test
from conformance.suiterun import SuiteRun
from conformance.verdict import INTERRUPTED, VerdictBuilder

SOURCE = '''
import pytest
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_plain(): ...

class TestGroup:
    @guarantee("LAUNCH-02", "LAUNCH-03")
    @pytest.mark.parametrize("n", [1])
    def test_in_class(self, n): ...

def test_plain_twin(): ...
'''


@pytest.mark.parametrize(("nodeid", "expected"), [
    ("suites/test_x.py::test_plain", ["LAUNCH-01"]),
    ("suites/test_x.py::test_plain@test_x.launched", ["LAUNCH-01"]),
    ("suites/test_x.py::TestGroup::test_in_class[1]@group", ["LAUNCH-02", "LAUNCH-03"]),
    ("suites/test_x.py::test_in_class", []),  # only inside its class
    ("suites/test_x.py::test_plain_twin", []),
    ("suites/test_missing.py::test_plain", []),
])
def test_guarantees_of_test_reads_decorators(tmp_path: Path, nodeid: str, expected: list[str]) -> None:
    """The ids come from the test's own @guarantee decorators; anything not found gives []."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_x.py").write_text(SOURCE)
    assert guarantees_of_test(tmp_path, nodeid) == expected


def crash_report(nodeid: str) -> pytest.TestReport:
    """The report xdist's controller makes for the test a dead worker was running."""
    return pytest.TestReport(nodeid=nodeid, location=(nodeid.split("::")[0], None, ""), keywords={},
                             outcome="failed", longrepr=f"worker 'gw0' crashed while running {nodeid!r}",
                             when="???")  # type: ignore[arg-type]


def test_crashed_worker_test_is_error_of_its_guarantees(tmp_path: Path) -> None:
    """xdist's crash report (no properties, when='???') makes the test's guarantees ERROR."""
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "test_x.py").write_text(SOURCE)
    config = types.SimpleNamespace(rootpath=tmp_path, getoption=lambda name: str(tmp_path / "reports"))
    builder = VerdictBuilder(["LAUNCH-01", "LAUNCH-02", "LAUNCH-03"], "demo", "abc", "run1")
    run = SuiteRun(config, None, builder)  # type: ignore[arg-type]

    run.pytest_runtest_logreport(crash_report("suites/test_x.py::TestGroup::test_in_class[1]@group"))

    entries = {g["id"]: g for g in builder.guarantees()}
    assert [entries[g]["outcome"] for g in ("LAUNCH-01", "LAUNCH-02", "LAUNCH-03")] == \
        ["skipped", "error", "error"]
    assert "crashed while running" in entries["LAUNCH-02"]["message"]


def test_interrupted_run_is_error_and_keeps_exit_2() -> None:
    """pytest's exit 2 (Ctrl-C): outcome error, the reason once in errors, exit code still 2."""
    builder = VerdictBuilder(["LAUNCH-01", "LAUNCH-02"], "demo", "abc", "run1")
    builder.add_phase("t.py::ok", ["LAUNCH-01"], "passed")

    doc = builder.document(2)

    assert (doc["outcome"], doc["exit_code"], doc["errors"]) == ("error", 2, [INTERRUPTED])
    assert builder.document(2)["errors"] == [INTERRUPTED]
    assert VerdictBuilder(["LAUNCH-01"], "demo", "abc", "run2").document(0)["errors"] == []
