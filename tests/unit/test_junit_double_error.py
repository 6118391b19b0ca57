"""An ERROR call whose teardown fails too stays an ERROR in JUnit (junitxml writes two testcases)."""

from __future__ import annotations

import pytest

from tests.unit.suite_runs import DummySuite


@pytest.mark.parametrize("xdist", [False, True])
def test_error_call_with_failing_teardown_is_no_failure(pytester: pytest.Pytester,
                                                        monkeypatch: pytest.MonkeyPatch, xdist: bool) -> None:
    """A 5xx in the call and a failed cleanup give <error> elements only, never <failure>."""
    from tests.unit.test_plugin_session import REPO

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    suite = DummySuite(pytester)
    suite.write_tests('''
import pytest
from conformance import guarantee
from conformance.errors import InfraError, WaitTimeout

@pytest.fixture
def server():
    yield "s"
    raise InfraError("cleanup failed: DELETE answered 503")

@guarantee("LAUNCH-01")
def test_x(server):
    """The call errors (a timeout), then the cleanup fails."""
    raise WaitTimeout("server never became ACTIVE")
''')
    args = ["--no-leak-check", *(["-n", "2"] if xdist else [])]
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--profile=profile.yaml", *args) \
        if xdist else suite.run(*args)
    assert result.ret == 6
    cases = list(suite.junit().iter("testcase"))
    assert [c.find("failure") for c in cases if c.find("failure") is not None] == []
    assert sum(c.find("error") is not None for c in cases) >= 1
    assert suite.guarantee("LAUNCH-01")["outcome"] == "error"
