"""FAIL, ERROR and SKIP through the plugin: terminal, JUnit, Allure, verdict, exit code."""

from __future__ import annotations

import pytest

from tests.unit.suite_runs import DummySuite

THREE_OUTCOMES = """
import pytest
from openstack import exceptions
from conformance import guarantee, requires
from conformance.errors import WaitTimeout

@guarantee("LAUNCH-01")
def test_passes():
    '''Passes.'''

@guarantee("PAUSE-01")
@requires("pause")
def test_assertion_fails():
    '''An assertion is a FAIL.'''
    assert "ACTIVE" == "PAUSED", "server stayed ACTIVE"

@guarantee("DELETE-01")
def test_timeout_errors():
    '''A WaitTimeout is an ERROR.'''
    raise WaitTimeout("waited 120 s for SHUTOFF; last status ACTIVE")

@guarantee("DELETE-02")
def test_http_500_errors():
    '''An HTTP 500 is an ERROR.'''
    raise exceptions.HttpException("boom", http_status=500)

@guarantee("DELETE-03")
def test_http_409_fails():
    '''An unexpected 409 to a documented call is a FAIL.'''
    raise exceptions.ConflictException("conflict", http_status=409)

@guarantee("LAUNCH-02")
@requires("evacuate")
def test_not_claimed():
    '''Skipped: the profile does not claim evacuate.'''
"""


@pytest.fixture
def suite(pytester: pytest.Pytester) -> DummySuite:
    """A dummy suite with one test per outcome."""
    suite = DummySuite(pytester)
    suite.write_tests(THREE_OUTCOMES)
    return suite


def test_terminal_shows_error_not_failed(suite: DummySuite) -> None:
    """A WaitTimeout and a 500 are reported as ERROR, assertions and 4xx as FAILED."""
    result = suite.run("--no-leak-check", "-rA")
    result.assert_outcomes(passed=1, failed=2, errors=2, skipped=1)
    result.stdout.fnmatch_lines(["ERROR *::test_timeout_errors*", "ERROR *::test_http_500_errors*",
                                 "FAILED *::test_assertion_fails*", "FAILED *::test_http_409_fails*"])
    assert result.ret == 1


def test_verdict_outcomes_per_guarantee(suite: DummySuite) -> None:
    """verdict.json carries failed, error, passed and skipped with messages."""
    suite.run("--no-leak-check")
    assert suite.guarantee("LAUNCH-01")["outcome"] == "passed"
    assert suite.guarantee("PAUSE-01")["outcome"] == "failed"
    assert "server stayed ACTIVE" in suite.guarantee("PAUSE-01")["message"]
    assert suite.guarantee("DELETE-01")["outcome"] == "error"
    assert "waited 120 s" in suite.guarantee("DELETE-01")["message"]
    assert suite.guarantee("DELETE-02")["outcome"] == "error"
    assert suite.guarantee("DELETE-03")["outcome"] == "failed"
    skipped = suite.guarantee("LAUNCH-02")
    assert skipped["outcome"] == "skipped"
    assert skipped["message"] == "profile dummy does not claim capability 'evacuate'"
    assert suite.verdict()["counts"] == {"passed": 1, "failed": 2, "error": 2, "skipped": 1}


def test_verdict_unselected_guarantee_is_skipped(suite: DummySuite) -> None:
    """A catalogue guarantee without a selected test is skipped with a reason."""
    suite.run("--no-leak-check")
    entry = suite.guarantee("PAUSE-05")
    assert entry == {"id": "PAUSE-05", "outcome": "skipped", "tests": [],
                     "message": "no test for this guarantee was selected in this run"}


def test_junit_error_and_failure(suite: DummySuite) -> None:
    """JUnit has <error> for ERROR and <failure> for FAIL, with matching suite counts."""
    suite.run("--no-leak-check")
    assert suite.junit_case("test_timeout_errors").find("error") is not None
    assert suite.junit_case("test_timeout_errors").find("failure") is None
    assert suite.junit_case("test_assertion_fails").find("failure") is not None
    testsuite = next(suite.junit().iter("testsuite"))
    assert (testsuite.get("errors"), testsuite.get("failures")) == ("2", "2")


def test_allure_statuses_and_categories(suite: DummySuite) -> None:
    """Allure marks ERROR broken and FAIL failed, labels ids, and gets categories.json."""
    suite.run("--no-leak-check")
    results = suite.allure_results()
    assert results["test_timeout_errors"]["status"] == "broken"
    assert results["test_http_500_errors"]["status"] == "broken"
    assert results["test_http_409_fails"]["status"] == "failed"
    assert results["test_assertion_fails"]["status"] == "failed"
    assert results["test_not_claimed"]["status"] == "skipped"
    labels = {(lb["name"], lb["value"]) for lb in results["test_assertion_fails"]["labels"]}
    assert {("tag", "PAUSE-01"), ("depth", "api"), ("epic", "PAUSE")} <= labels
    assert "MUST" in results["test_assertion_fails"]["description"]
    assert (suite.path / "reports" / "allure-results" / "categories.json").is_file()


def test_exit_6_when_only_errors(pytester: pytest.Pytester) -> None:
    """No FAIL but an ERROR exits 6."""
    suite = DummySuite(pytester)
    suite.write_tests("""
from conformance import guarantee
from conformance.errors import HostUnreachable

@guarantee("LAUNCH-01")
def test_ok():
    '''Passes.'''

@guarantee("LAUNCH-06")
def test_ssh_down():
    '''SSH unreachable is an ERROR.'''
    raise HostUnreachable("ssh compute01: connection refused")
""")
    result = suite.run("--no-leak-check")
    assert result.ret == 6
    assert suite.verdict()["exit_code"] == 6
    assert suite.verdict()["outcome"] == "error"


def test_exit_0_when_all_pass_or_skip(pytester: pytest.Pytester) -> None:
    """Passing and capability-skipped tests exit 0."""
    suite = DummySuite(pytester)
    suite.write_tests("""
from conformance import guarantee, requires

@guarantee("LAUNCH-01")
def test_ok():
    '''Passes.'''

@guarantee("LAUNCH-02")
@requires("live_migration")
def test_skipped():
    '''Not claimed.'''
""")
    assert suite.run("--no-leak-check").ret == 0


def test_setup_error_is_error(pytester: pytest.Pytester) -> None:
    """An exception in a fixture is an ERROR even when it is an AssertionError."""
    suite = DummySuite(pytester)
    suite.write_tests("""
import pytest
from conformance import guarantee

@pytest.fixture
def broken():
    assert False, "could not boot"

@guarantee("LAUNCH-01")
def test_needs_fixture(broken):
    '''Never runs.'''
""")
    result = suite.run("--no-leak-check")
    assert result.ret == 6
    assert suite.guarantee("LAUNCH-01")["outcome"] == "error"
    assert suite.allure_results()["test_needs_fixture"]["status"] == "broken"
