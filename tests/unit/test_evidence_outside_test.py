"""Evidence attached outside any test (e.g. by the session-end leak check) is dropped, not an error."""

from __future__ import annotations

import pytest

from tests.unit.suite_runs import DummySuite


def test_attach_at_session_end_is_dropped(pytester: pytest.Pytester) -> None:
    """A DELETE's evidence during the leak check (no current test) neither raises nor breaks the run."""
    suite = DummySuite(pytester)
    pytester.makeconftest("""
from conformance.lib import evidence

def pytest_sessionfinish(session):
    evidence.attach_text("DELETE /servers/x", "outside any test")
    evidence.attach_json("body", {"a": 1})
    with evidence.step("a step outside any test"):
        pass
    open("attached.ok", "w").write("yes")
""")
    suite.write_tests("""
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_one():
    '''Passes.'''
""")
    result = suite.run("--no-leak-check")
    assert (suite.path / "attached.ok").exists(), result.stdout.str() + result.stderr.str()
    assert result.ret == 0
