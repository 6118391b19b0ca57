"""Embedded cloud orchestrator pieces that need no running cloud."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from conformance.embedded import procs, profilegen
from conformance.embedded.orchestrator import defect_names
from conformance.embedded.workdir import Layout, free_port, port_in_use, tail
from conformance.profile import load_profile

REPO = Path(__file__).resolve().parents[2]


def fake_state(root: Path, n_hosts: int = 2, shared: bool = False) -> dict[str, Any]:
    ssh = root / "ssh"
    ssh.mkdir(parents=True)
    for name in ("id_ed25519", "known_hosts"):
        (ssh / name).write_text("")

    def host(name: str, address: str) -> dict[str, Any]:
        return {"name": name, "address": address, "port": 2200, "root": str(root / "hosts" / name),
                "instances_path": str(root / "hosts" / name / "instances")}

    return {
        "hosts": [host(f"compute{i}", f"127.0.0.{10 + i}") for i in range(1, n_hosts + 1)],
        "controller": host("controller", "127.0.0.10"),
        "ssh": {"user": "root", "key_file": str(ssh / "id_ed25519"),
                "known_hosts": str(ssh / "known_hosts")},
        "urls": {"control": "http://127.0.0.1:1234"}, "network_id": "net-1",
        "shared_storage": shared,
    }


def test_generated_profile_is_valid_and_complete(tmp_path: Path) -> None:
    state = fake_state(tmp_path)
    clouds = tmp_path / "clouds.yaml"
    passwords = {u: f"pw-{u}" for u, _ in profilegen.CLOUDS.values()}
    profilegen.write_clouds(clouds, "http://127.0.0.1:5000/v3", passwords)
    profilegen.write_profile(tmp_path / "profile.yaml", state, tmp_path, clouds)
    profile = load_profile(tmp_path / "profile.yaml")
    assert set(profile.hosts) == {"compute1", "compute2"}
    assert profile.hosts["compute1"].strict_host_key_checking
    assert profile.host_control.method == "embedded"
    assert profile.resources.network == "net-1"
    assert profile.claims("block_migration") and not profile.claims("shared_storage")
    assert oct(clouds.stat().st_mode & 0o777) == "0o600"
    doc = yaml.safe_load(clouds.read_text())
    assert doc["clouds"]["embedded-admin"]["auth"]["project_name"] == "conformance"
    assert doc["clouds"]["embedded-other-member"]["auth"]["username"] == "conformance-alt-member"


def test_capabilities_follow_hosts_and_storage() -> None:
    assert "live_migration" not in profilegen.capabilities(1, False)
    caps = profilegen.capabilities(3, True, ["soft_delete"])
    assert "shared_storage" in caps and "block_migration" not in caps and "soft_delete" in caps


def test_defect_names_accepts_list_or_mapping() -> None:
    assert defect_names([{"name": "a"}, {"name": "b"}]) == {"a", "b"}
    assert defect_names({"defects": [{"name": "c"}]}) == {"c"}
    assert defect_names({"d": {"enabled": False}}) == {"d"}


def test_ports_and_tail(tmp_path: Path) -> None:
    port = free_port()
    assert not port_in_use("127.0.0.1", port)
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()
        assert port_in_use("127.0.0.1", port)
    log = tmp_path / "x.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert tail(log, 2) == "line 98\nline 99"
    assert Layout(tmp_path).log("keystone") == tmp_path.resolve() / "logs" / "keystone.log"


def test_stop_only_touches_processes_with_their_marker(tmp_path: Path) -> None:
    marker = str(tmp_path / "marker.json")
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", marker],
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10  # /proc/PID/cmdline can be empty while exec completes
        while not procs.alive(proc.pid, marker) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert procs.alive(proc.pid, marker)
        assert not procs.alive(proc.pid, "some-other-marker")
        assert procs.stop({"x": {"pid": proc.pid, "marker": "some-other-marker"}}, 1) == []
        assert proc.poll() is None  # a recycled pid with another command line is left alone
        rec = procs.record(proc, marker, tmp_path / "x.log")
        assert procs.running(rec)
        assert not procs.running({**rec, "start": rec["start"] + 1})  # same pid, other process
        assert procs.stop({"x": rec}, 2) == []
        assert proc.wait(5) is not None
    finally:
        if proc.poll() is None:
            proc.kill()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "conformance.embedded", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=60)


def test_bad_input_gives_one_line_errors(tmp_path: Path) -> None:
    work = str(tmp_path / "w")
    cases = [
        (["up", "--workdir", work, "--hosts", "0"], "--hosts must be between"),
        (["up", "--workdir", work, "--patch", str(tmp_path / "no.py")], "not an existing .py file"),
        (["up", "--workdir", "/proc/embedded-nope"], "cannot create workdir"),
        (["status", "--workdir", work], "no embedded cloud"),
        (["compute", "stop", "compute1", "--workdir", work], "no embedded cloud"),
    ]
    for argv, message in cases:
        result = cli(*argv)
        assert result.returncode != 0, argv
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        result = cli("up", "--workdir", work, "--port", f"keystone={s.getsockname()[1]}")
        assert result.returncode != 0 and "already in use" in result.stderr


def test_down_is_idempotent(tmp_path: Path) -> None:
    assert cli("down", "--workdir", str(tmp_path / "never")).returncode == 0
    (tmp_path / "w" / "logs").mkdir(parents=True)
    assert cli("down", "--workdir", str(tmp_path / "w")).returncode == 0
    assert (tmp_path / "w" / "logs").is_dir()
