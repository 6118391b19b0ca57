"""Profile errors, marker validation, collect-only ids, leak check, redaction, xdist."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conformance import leaks
from tests.unit.suite_runs import PASSWORD, DummySuite

REPO = Path(__file__).resolve().parents[2]

ONE_TEST = """
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_one(profile, run_id):
    '''Passes.'''
"""


@pytest.fixture
def no_cloud(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every attempt to open a cloud connection or sweep (there must be none)."""
    import openstack.connection

    calls: list[Any] = []
    monkeypatch.setattr(openstack.connection, "Connection", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(leaks, "sweep_profile", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.parametrize(("profile_text", "expected"), [
    ("name: x\nroles: {member: dummy-member}\nresources: {image: i, flavor_small: f, network: n}\n"
     "capabilities: [pause, teleport]\nclouds_yaml: clouds.yaml\n",
     "*bad.yaml: capabilities: unknown capability 'teleport'. Fix: use one of: *"),
    ("name: x\nroles: {member: dummy-member}\nresources: {image: i, flavor_small: f, network: n}\n"
     "clouds_yaml: clouds.yaml\nflavour: m1\n",
     "*bad.yaml: flavour: unknown key. Fix: remove it or correct its spelling*"),
    ("name: x\nroles: {member: nosuchcloud}\nresources: {image: i, flavor_small: f, network: n}\n"
     "clouds_yaml: clouds.yaml\n",
     "*bad.yaml: roles.member: cloud 'nosuchcloud' is not usable in *. Fix: name a cloud defined*"),
    ("name: x\nroles: {member: dummy-member}\nresources: {image: i, flavor_small: f, network: n}\n"
     "clouds_yaml: missing.yaml\n",
     "*bad.yaml: clouds_yaml: *missing.yaml does not exist. Fix: *"),
])
def test_bad_profile_exits_4_without_cloud_call(pytester: pytest.Pytester, no_cloud: list[Any],
                                               profile_text: str, expected: str) -> None:
    """A broken profile stops the run with exit 4, file/key/fix, no traceback, no cloud call."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)
    (suite.path / "bad.yaml").write_text(profile_text)
    result = suite.run(profile="bad.yaml")
    assert result.ret == 4
    result.stderr.fnmatch_lines([f"ERROR: bad profile: {expected}"])
    assert "Traceback" not in result.stderr.str() + result.stdout.str()
    assert no_cloud == []
    assert not (suite.path / "reports" / "verdict.json").exists()


def test_profile_from_environment(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFORMANCE_PROFILE is used when --profile is not given."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)
    monkeypatch.setenv("CONFORMANCE_PROFILE", str(suite.path / "profile.yaml"))
    assert suite.run("--no-leak-check", profile=None).ret == 0


def test_suite_without_profile_is_usage_error(pytester: pytest.Pytester) -> None:
    """Running guarantee tests without any profile exits 4 with a hint."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)
    result = suite.run(profile=None)
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*no profile: pass --profile PATH or set CONFORMANCE_PROFILE*"])


@pytest.mark.parametrize(("decorators", "message"), [
    ('@guarantee("LAUNCH-99")', "*::test_bad: unknown guarantee id 'LAUNCH-99'*"),
    ('@guarantee("LAUNCH-01")\n@requires("teleport")', "*::test_bad: unknown capability 'teleport'*"),
])
def test_unknown_marker_value_is_collection_error(pytester: pytest.Pytester, decorators: str,
                                                  message: str) -> None:
    """An unknown guarantee id or capability is a collection error naming test and id."""
    suite = DummySuite(pytester)
    suite.write_tests(f"from conformance import guarantee, requires\n\n{decorators}\n"
                      "def test_bad():\n    '''Bad marker.'''\n")
    result = suite.run("--collect-only", "-q")
    assert result.ret == 2
    result.stdout.fnmatch_lines(["*ERROR collecting*", message])


def test_collect_only_shows_ids(pytester: pytest.Pytester) -> None:
    """--collect-only -q lists each test with its guarantee ids and capabilities."""
    suite = DummySuite(pytester)
    suite.write_tests('from conformance import guarantee, requires\n\n'
                      '@guarantee("PAUSE-01", "PAUSE-02")\n@requires("pause")\n'
                      'def test_pause():\n    """Pause."""\n')
    result = suite.run("--collect-only", "-q", profile=None)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["test_dummy.py::test_pause: PAUSE-01, PAUSE-02  requires: pause"])


def test_leaks_are_errors(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Resources left by the run are deleted, listed in the verdict and JUnit, and exit 6."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)
    seen: list[str | None] = []

    def fake_sweep(profile: Any, run_id: str | None) -> leaks.SweepResult:
        seen.append(run_id)
        return leaks.SweepResult(["server 1234 cft-x-main-active (ACTIVE)"], [],
                                 {"max_microversion": "2.96"})

    monkeypatch.setattr(leaks, "sweep_profile", fake_sweep)
    result = suite.run("--run-id", "feedf00d")
    assert result.ret == 6
    assert seen == ["feedf00d"]
    verdict = suite.verdict()
    assert verdict["leaks"] == ["server 1234 cft-x-main-active (ACTIVE)"]
    assert verdict["cloud"] == {"max_microversion": "2.96"}
    assert verdict["run_id"] == "feedf00d"
    assert suite.junit_case("session").find("error") is not None


def test_failing_leak_check_is_error(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """A leak check that cannot reach the cloud is an ERROR, not a pass."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)

    def unreachable(profile: Any, run_id: str | None) -> leaks.SweepResult:
        raise ConnectionError("keystone unreachable")

    monkeypatch.setattr(leaks, "sweep_profile", unreachable)
    assert suite.run().ret == 6
    assert "keystone unreachable" in suite.verdict()["errors"][0]


def test_secrets_redacted_everywhere(pytester: pytest.Pytester) -> None:
    """The clouds.yaml password never reaches Allure, JUnit or the verdict."""
    suite = DummySuite(pytester)
    suite.write_tests(f"""
import allure
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_leaky():
    '''Prints, attaches and fails with the password.'''
    print("password is {PASSWORD}")
    allure.attach("token {PASSWORD}", name="request")
    assert False, "auth with {PASSWORD} failed"
""")
    suite.run("--no-leak-check")
    texts = suite.report_texts()
    assert any("***REDACTED***" in text for text in texts.values())
    assert [str(p) for p, text in texts.items() if PASSWORD in text] == []
    assert suite.guarantee("LAUNCH-01")["outcome"] == "failed"


def test_xdist_one_run_id_and_outcomes(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under xdist all workers share the run id and ERROR survives report serialisation."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    suite = DummySuite(pytester)
    suite.write_tests("""
import os
from conformance import guarantee
from conformance.errors import WaitTimeout

@guarantee("LAUNCH-01")
def test_a(run_id):
    '''Writes its run id.'''
    open(f"run-{os.environ['PYTEST_XDIST_WORKER']}.txt", "w").write(run_id)

@guarantee("LAUNCH-02")
def test_b(run_id):
    '''Writes its run id, then errors.'''
    open(f"run-{os.environ['PYTEST_XDIST_WORKER']}-b.txt", "w").write(run_id)
    raise WaitTimeout("timed out")
""")
    result = pytester.runpytest_subprocess(
        *([] if _autoloaded() else ["-p", "conformance.plugin"]), "-p", "no:cacheprovider",
        "--profile=profile.yaml", "--no-leak-check", "-n", "2", "--run-id", "abcd1234")
    assert result.ret == 6
    ids = {p.read_text() for p in suite.path.glob("run-*.txt")}
    assert ids == {"abcd1234"}
    verdict = json.loads((suite.path / "reports" / "verdict.json").read_text())
    assert [g["outcome"] for g in verdict["guarantees"][:2]] == ["passed", "error"]


def _autoloaded() -> bool:
    from tests.unit.suite_runs import plugin_autoloaded

    return plugin_autoloaded()


def test_profile_as_two_words_outside_project_is_refused(pytester: pytest.Pytester) -> None:
    """`--profile PATH` that made pytest lose the project's rootdir stops with exit 4 and the fix."""
    suite = DummySuite(pytester)
    suite.write_tests(ONE_TEST)
    elsewhere = suite.path.parent / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    (elsewhere / "profile.yaml").write_text((suite.path / "profile.yaml").read_text())
    argv = [] if _autoloaded() else ["-p", "conformance.plugin"]
    result = pytester.runpytest_inprocess(*argv, "-p", "no:cacheprovider",
                                          "--profile", str(elsewhere / "profile.yaml"))
    assert result.ret == 4
    result.stderr.fnmatch_lines(["*took its rootdir*Fix: write --profile=PATH (one word)*"])
