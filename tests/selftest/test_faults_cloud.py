"""Faults the suite must survive: it may report ERROR, never FAIL (FAIL = the cloud broke a guarantee).

One embedded cloud, started with ``--faults`` (10 % of Nova/Placement API
calls answer 503, 10 % are 1 s late, seed 7), runs launch, pause and
terminate; then, faults off, the same cloud with every hypervisor's sshd
unreachable, with a revoked token and with a wrong password.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.selftest.cloud import REPO, EmbeddedCloud, SuiteRun, started_cloud

pytestmark = pytest.mark.selftest

FAULTS = "5xx=0.1,slow=0.1:1.0,seed=7"
SUITES = REPO / "conformance" / "suites"
MEMBER = "embedded-member"


@pytest.fixture(scope="module")
def faulty_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """An embedded cloud whose API misbehaves as FAULTS says from the moment it is ready."""
    yield from started_cloud(tmp_path_factory, "faults", "--faults", FAULTS)


def control(cloud: EmbeddedCloud, method: str, path: str) -> Any:
    """One request to the cloud's control endpoint; the decoded JSON answer."""
    req = urllib.request.Request(f"{cloud.control_url}{path}", method=method,
                                 data=b"" if method != "GET" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def assert_no_fail(run: SuiteRun) -> list[dict[str, Any]]:
    """No FAIL anywhere (verdict and exit code); returns the ERROR entries."""
    entries = run.verdict.get("guarantees", [])
    failed = [g for g in entries if g["outcome"] == "failed"]
    assert run.verdict, run.output[-3000:]
    assert failed == [] and run.verdict["counts"]["failed"] == 0, f"{failed}\n{run.output[-3000:]}"
    assert run.exit_code in (0, 6), run.output[-3000:]
    return [g for g in entries if g["outcome"] == "error"]


def scan_secrets(profile: Path, reports: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conformance", "scan-secrets", f"--profile={profile}",
                           f"--reports={reports}"], cwd=REPO, text=True, capture_output=True)


def test_api_faults_give_errors_never_fails(faulty_cloud: EmbeddedCloud, reports: Path) -> None:
    """Under injected 503s and slow answers launch/pause/terminate report ERROR or pass, never FAIL."""
    suites = [str(SUITES / f"test_{name}.py") for name in ("launch", "pause", "terminate")]
    run = faulty_cloud.run_suite(reports, "-n", "2", *suites)
    counts = control(faulty_cloud, "GET", "/faults")["counts"]

    print(f"faults {FAULTS}: {run.verdict.get('counts')}, exit {run.exit_code}, injected {counts}")
    errors = assert_no_fail(run)
    assert counts["nova"]["errors"] > 0 and counts["nova"]["slow"] > 0, counts  # faults did happen
    assert all("Traceback" not in g.get("message", "") for g in errors)
    scan = scan_secrets(faulty_cloud.profile, reports)
    assert scan.returncode == 0 and "0 finding(s)" in scan.stdout, scan.stdout + scan.stderr


def closed_port(address: str) -> int:
    """A port on ``address`` nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def test_unreachable_ssh_hosts_give_errors(faulty_cloud: EmbeddedCloud, tmp_path: Path,
                                           reports: Path) -> None:
    """With no hypervisor's sshd reachable the host-depth checks are ERRORs, never FAIL or SKIP."""
    control(faulty_cloud, "DELETE", "/faults")
    data = yaml.safe_load(faulty_cloud.profile.read_text())
    for host in data["hosts"].values():
        host["port"] = closed_port(host["address"])
    data["clouds_yaml"] = str(faulty_cloud.workdir / "clouds.yaml")
    profile = tmp_path / "profile.yaml"
    profile.write_text(yaml.safe_dump(data))

    run = faulty_cloud.run_suite(reports, "-n", "2", str(SUITES / "test_pause.py"), profile=profile)

    errors = assert_no_fail(run)
    assert run.exit_code == 6 and errors, run.output[-3000:]
    assert all("HostUnreachable" in g["message"] for g in errors), errors
    assert run.outcomes()["PAUSE-01"] == "passed"  # the API depth does not need SSH


def revoked_token(cloud: EmbeddedCloud) -> dict[str, Any]:
    """The member's auth section with a token that Keystone has revoked."""
    import openstack
    from openstack.config.loader import OpenStackConfig

    config = OpenStackConfig(config_files=[str(cloud.workdir / "clouds.yaml")]).get_one(cloud=MEMBER)
    conn = openstack.connection.Connection(config=config)
    token = conn.auth_token
    identity = str(conn.session.get_endpoint(service_type="identity", interface="public")).rstrip("/")
    answer = conn.session.delete(f"{identity}/auth/tokens", headers={"X-Subject-Token": token})
    assert answer.status_code == 204
    conn.close()
    auth = yaml.safe_load((cloud.workdir / "clouds.yaml").read_text())["clouds"][MEMBER]["auth"]
    return {"auth_type": "v3token",
            "auth": {"auth_url": auth["auth_url"], "token": token, "project_name": auth["project_name"],
                     "project_domain_name": auth.get("project_domain_name", "Default")}}


@pytest.mark.parametrize("broken", ["revoked-token", "wrong-password"])
def test_refused_credentials_give_errors(faulty_cloud: EmbeddedCloud, tmp_path: Path, reports: Path,
                                         broken: str) -> None:
    """A revoked token or a wrong password: every test is an ERROR naming clouds.yaml and the fix."""
    control(faulty_cloud, "DELETE", "/faults")
    clouds = yaml.safe_load((faulty_cloud.workdir / "clouds.yaml").read_text())
    if broken == "revoked-token":
        clouds["clouds"][MEMBER].update(revoked_token(faulty_cloud))
    else:
        clouds["clouds"][MEMBER]["auth"]["password"] = "not-the-password"
    (tmp_path / "clouds.yaml").write_text(yaml.safe_dump(clouds))
    data = yaml.safe_load(faulty_cloud.profile.read_text())
    data["clouds_yaml"] = str(tmp_path / "clouds.yaml")
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(data))

    run = faulty_cloud.run_suite(reports, "-n", "2", str(SUITES / "test_launch.py"),
                                 profile=tmp_path / "profile.yaml")

    errors = assert_no_fail(run)
    assert run.exit_code == 6 and errors and run.verdict["counts"]["passed"] == 0, run.output[-3000:]
    assert all(f"clouds.{MEMBER}.auth: Keystone refused the credentials" in g["message"]
               for g in errors), errors
