"""The secrets scanner: what it collects, what it finds, its command line, a real plugin run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conformance import secrets_scan
from conformance.__main__ import main
from conformance.profile import load_profile
from tests.unit.suite_runs import PASSWORD, DummySuite

APP_SECRET = "appcred-S3cret-value-77"
TOKEN = "tok-0123456789abcdef"
KEY_BODY = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW"
PRIVATE_KEY = f"-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}\n-----END OPENSSH PRIVATE KEY-----\n"
FERNET = "gAAAAAB" + "x" * 120

CLOUDS = f"""\
clouds:
  m:
    auth: {{auth_url: "http://127.0.0.1:9/v3", username: u, password: {PASSWORD}, project_name: p}}
  a:
    auth_type: v3applicationcredential
    auth: {{auth_url: "http://127.0.0.1:9/v3", application_credential_id: id1,
            application_credential_secret: {APP_SECRET}}}
  t:
    auth_type: token
    auth: {{auth_url: "http://127.0.0.1:9/v3", token: {TOKEN}, project_id: p}}
  unused:
    auth: {{auth_url: "http://127.0.0.1:9/v3", password: not-a-role-secret}}
"""

PROFILE = """\
name: s
clouds_yaml: clouds.yaml
roles: {member: m, admin: a, reader: t}
resources: {image: i, flavor_small: f, network: n}
hosts: {c1: {address: 127.0.0.1, key_file: id_c1}}
"""


@pytest.fixture
def profile_path(tmp_path: Path) -> Path:
    """A profile with a password, an application credential, a token and an SSH key."""
    (tmp_path / "clouds.yaml").write_text(CLOUDS)
    (tmp_path / "id_c1").write_text(PRIVATE_KEY)
    (tmp_path / "profile.yaml").write_text(PROFILE)
    return tmp_path / "profile.yaml"


def test_collect_every_role_and_key(profile_path: Path) -> None:
    """Passwords, app-credential secrets, tokens of each role's cloud and the key file are collected."""
    secrets = secrets_scan.collect(load_profile(profile_path), environ={"OS_PASSWORD": "envpass-123"})
    values = {s.value for s in secrets}
    origins = {s.origin for s in secrets}

    assert {PASSWORD, APP_SECRET, TOKEN, "envpass-123", KEY_BODY, PRIVATE_KEY.strip()} <= values
    assert "not-a-role-secret" not in values
    assert any(o.endswith("clouds.a.auth.application_credential_secret") for o in origins)
    assert all(s.value not in s.origin for s in secrets)


def test_scan_finds_plain_escaped_and_shaped(profile_path: Path, tmp_path: Path) -> None:
    """A secret is found verbatim or JSON-escaped, in any file; token and key shapes too."""
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "clean.txt").write_text("nothing here but ***REDACTED*** and an inlined image "
                                       f"data:image/png;base64,AAAB+/{FERNET}AAAA==")
    (reports / "allure-results" / "a-attachment.json").write_text(json.dumps({"k": PRIVATE_KEY}))
    (reports / "junit.xml").write_text(f"<error message='auth {APP_SECRET}'/>")
    (reports / "log.txt").write_text(f"X-Auth-Token: {FERNET}\n")
    secrets = secrets_scan.collect(load_profile(profile_path), environ={})

    findings, files = secrets_scan.scan([reports], secrets)
    where = {(f.path.name, f.origin.split(": ")[-1]) for f in findings}

    assert files == 4
    assert ("junit.xml", "clouds.a.auth.application_credential_secret") in where
    assert ("a-attachment.json", "private key block (by shape)") in where
    assert any(name == "a-attachment.json" and "private key of c1" in o for name, o in where)
    assert ("log.txt", "fernet token (by shape)") in where
    assert not any(f.path.name == "clean.txt" for f in findings)


def test_cli_exit_codes_never_print_secrets(profile_path: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """scan-secrets exits 0 when clean, 1 naming the file when not, 4 for a bad profile."""
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "verdict.json").write_text('{"ok": true}')
    assert main(["scan-secrets", "--profile", str(profile_path), "--reports", str(reports)]) == 0
    assert "0 finding(s)" in capsys.readouterr().out

    (reports / "verdict.json").write_text(f'{{"message": "login {TOKEN} failed"}}')
    assert main(["scan-secrets", "--profile", str(profile_path), "--reports", str(reports)]) == 1
    out = capsys.readouterr()
    assert "verdict.json: " in out.err and "clouds.t.auth.token" in out.err
    assert TOKEN not in out.out + out.err

    assert main(["scan-secrets", "--profile", str(tmp_path / "none.yaml")]) == 4


def test_plugin_reports_hold_no_secret(pytester: pytest.Pytester) -> None:
    """A suite run that prints, attaches and fails with the password and key leaves 0 findings."""
    suite = DummySuite(pytester)
    (suite.path / "id_c1").write_text(PRIVATE_KEY)
    (suite.path / "profile.yaml").write_text((suite.path / "profile.yaml").read_text()
                                             + "hosts: {c1: {address: 127.0.0.1, key_file: id_c1}}\n")
    suite.write_tests(f"""
import allure
from conformance import guarantee

@guarantee("LAUNCH-01")
def test_leaky():
    '''Prints, attaches and fails with the password and the private key.'''
    print("password is {PASSWORD}", {KEY_BODY!r})
    allure.attach({PRIVATE_KEY!r} + " {PASSWORD}", name="request")
    assert False, "auth with {PASSWORD} failed"
""")
    suite.run("--no-leak-check")
    secrets = secrets_scan.collect(load_profile(suite.path / "profile.yaml"), environ={})

    findings, files = secrets_scan.scan([suite.path / "reports"], secrets)

    assert files >= 3
    assert [str(f) for f in findings] == []
