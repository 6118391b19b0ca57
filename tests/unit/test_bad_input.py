"""Broken profiles and clouds.yaml files: exit 4 (or ERROR when the cloud is unreachable).

Rows are in bad_input.yaml.  Every message must name the file, the key and
the fix; an exit-4 row must make no cloud call and write no verdict; an
unreachable cloud must give ERRORs and exit 6, never a FAIL.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from conformance import leaks
from tests.unit.suite_runs import CLOUDS_YAML, PROFILE_YAML, DummySuite

TABLE = yaml.safe_load((Path(__file__).with_name("bad_input.yaml")).read_text())

ONE_TEST = """
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_one(member):
    '''Needs the member connection.'''
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def edited_profile(row: dict[str, Any]) -> str:
    """The valid profile with the row's `unset` and `set` applied (or its `profile_text`)."""
    if "profile_text" in row:
        return str(row["profile_text"])
    data = yaml.safe_load(PROFILE_YAML)
    for dotted in row.get("unset", []):
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        del node[last]
    for dotted, value in row.get("set", {}).items():
        *parents, last = dotted.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return yaml.safe_dump(data, sort_keys=False)


def write_row(suite: DummySuite, row: dict[str, Any]) -> str:
    """Write the row's files; return the --profile argument."""
    suite.write_tests(ONE_TEST)
    (suite.path / "profile.yaml").write_text(edited_profile(row))
    clouds = row.get("clouds_text", CLOUDS_YAML).replace("{closed_port}", str(closed_port()))
    (suite.path / "clouds.yaml").write_text(clouds)
    return str(row.get("args", "--profile=profile.yaml"))


def expected_file(row: dict[str, Any]) -> str:
    return {"profile": "profile.yaml", "clouds": "clouds.yaml"}.get(row["file"], row["file"])


@pytest.fixture
def cloud_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every attempt to open a cloud connection or sweep."""
    import openstack.connection

    calls: list[Any] = []
    monkeypatch.setattr(openstack.connection, "Connection", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(leaks, "sweep_profile", lambda *a, **k: calls.append(a))
    return calls


@pytest.mark.parametrize("row", [r for r in TABLE if r["exit"] == 4], ids=lambda r: r["name"])
def test_bad_input_exits_4(pytester: pytest.Pytester, cloud_calls: list[Any],
                           row: dict[str, Any]) -> None:
    """Exit 4 with one message naming file, key and fix; no cloud call, no traceback, no verdict."""
    suite = DummySuite(pytester)
    result = suite.run(write_row(suite, row), profile=None)
    err = result.stderr.str()

    assert result.ret == 4, err + result.stdout.str()
    line = next((ln for ln in err.splitlines() if ln.startswith("ERROR: bad profile: ")), err)
    assert f"{expected_file(row)}: {row['key']}: " in line
    assert f". Fix: {row['fix']}" in line
    assert "Traceback" not in err + result.stdout.str()
    assert cloud_calls == []
    assert not (suite.path / "reports" / "verdict.json").exists()


@pytest.mark.parametrize("row", [r for r in TABLE if r["exit"] == 6], ids=lambda r: r["name"])
def test_unreachable_cloud_is_error(pytester: pytest.Pytester, row: dict[str, Any]) -> None:
    """An unreachable Keystone makes every test an ERROR (exit 6) whose message names file, key, fix."""
    suite = DummySuite(pytester)
    result = suite.run(write_row(suite, row), profile=None)
    verdict = suite.verdict()
    message = suite.guarantee("LAUNCH-01")["message"]

    assert result.ret == 6, result.stdout.str()
    assert verdict["counts"]["failed"] == 0
    assert suite.guarantee("LAUNCH-01")["outcome"] == "error"
    assert f"{expected_file(row)}: {row['key']}: " in message
    assert f"Fix: {row['fix']}" in message
