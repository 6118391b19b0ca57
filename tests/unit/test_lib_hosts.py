"""The Host facade against a real local sshd, and the libvirt/instance-file readers."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.errors import HostCommandError, HostUnreachable, classify
from conformance.lib.hosts import Host, Hypervisor, parse_domstate

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
pytestmark = pytest.mark.skipif(not (os.path.exists(SSHD) and shutil.which("ssh-keygen")),
                                reason="needs OpenSSH (sshd, ssh-keygen)")

VIRSH = """#!/bin/sh
# a stub virsh: one running domain u1 (instance-00000001), one paused domain u2
missing() { echo "error: failed to get domain '$1'" >&2; exit 1; }
case "$1 $2" in
  "domstate --reason") case "$3" in
      u1) echo "running (booted)";; u2) echo "paused (user)";; *) missing "$3";; esac;;
  "list --all") printf 'u1\\nu2\\n\\n';;
  "dominfo u1") printf 'Id:             1\\nName:           instance-00000001\\nState:          running\\n';;
  "dominfo u2") echo "error: internal error" >&2; exit 2;;
  dominfo*) missing "$2";;
  *) echo "error: unsupported" >&2; exit 2;;
esac
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """A throw-away sshd on a loopback port accepting one client key."""
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    port = _free_port()
    (d / "sshd_config").write_text(
        f"ListenAddress 127.0.0.1\nPort {port}\nHostKey {d / 'host'}\nPidFile {d / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nUsePAM no\nStrictModes no\n"
        "PasswordAuthentication no\nPermitRootLogin yes\n")
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {(d / 'host.pub').read_text()}")
    bin_dir = d / "bin"
    bin_dir.mkdir()
    (bin_dir / "virsh").write_text(VIRSH)
    (bin_dir / "virsh").chmod(0o755)
    Path("/run/sshd").mkdir(exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stderr=subprocess.DEVNULL)
    _await_port(port)
    yield {"dir": d, "port": port, "user": os.environ.get("USER") or "root"}
    proc.terminate()
    proc.wait(10)


def _await_port(port: int) -> None:
    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("sshd did not start")


def host(sshd: dict[str, object], **overrides: object) -> Host:
    d = sshd["dir"]
    assert isinstance(d, Path)
    kwargs: dict[str, object] = {"port": sshd["port"], "user": "root", "key_file": d / "client",
                                 "known_hosts": d / "known_hosts", "timeout": 60.0, "connect_timeout": 30.0,
                                 "command_prefix": f"env PATH={d / 'bin'}:/usr/bin:/bin", **overrides}
    return Host("127.0.0.1", **kwargs)  # type: ignore[arg-type]


def test_arguments_are_quoted_and_prefixed(sshd: dict[str, object]) -> None:
    result = host(sshd).run("printf", "%s|", "two words", "it's", "$HOME", ";echo no")
    assert result.stdout == "two words|it's|$HOME|;echo no|"
    assert result.command.startswith("env PATH=")


def test_a_failing_command_carries_the_whole_result(sshd: dict[str, object]) -> None:
    with pytest.raises(HostCommandError) as info:
        host(sshd).run("sh", "-c", "echo out; echo err >&2; exit 3")
    text = str(info.value)
    assert "exit code: 3" in text and "out" in text and "err" in text and "sh -c" in text
    assert classify(info.value) == "error"


def test_unchecked_commands_return_the_exit_code(sshd: dict[str, object]) -> None:
    assert host(sshd).run("false", check=False).exit_code == 1


def test_unknown_host_keys_are_rejected(sshd: dict[str, object], tmp_path: Path) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    with pytest.raises(HostUnreachable, match=r"not found in known_hosts|SSHException"):
        host(sshd, known_hosts=empty).run("true")
    assert host(sshd, known_hosts=empty, strict=False).run("true").exit_code == 0


def test_unreachable_hosts_are_errors() -> None:
    with pytest.raises(HostUnreachable):
        Host("127.0.0.1", port=_free_port(), timeout=2, connect_timeout=2, strict=False).run("true")


def test_commands_time_out(sshd: dict[str, object]) -> None:
    with pytest.raises(HostCommandError, match="timed out"):
        host(sshd).run("sleep", "5", timeout=0.5)


def test_libvirt_reader(sshd: dict[str, object]) -> None:
    hv = Hypervisor("compute1", host(sshd), "/nonexistent")
    assert hv.domain_state("u1") == ("running", "booted")
    assert hv.domain_state("u2") == ("paused", "user")
    assert hv.domain_state("u3") is None and not hv.domain_exists("u3")
    assert hv.libvirt.domains() == ["u1", "u2"]
    assert hv.libvirt.dominfo("u1") == {"Id": "1", "Name": "instance-00000001", "State": "running"}
    with pytest.raises(HostCommandError, match="unsupported"):
        hv.libvirt.domain_xml("u1")


def test_instance_files_and_logs(sshd: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "u1").mkdir()
    for name in ("disk", "disk.info", "console.log"):
        (tmp_path / "u1" / name).write_text("x")
    (tmp_path / "u1_resize").mkdir()
    log = tmp_path / "n-cpu.log"
    log.write_text("a req-1 start\nb req-2\nc req-1 done\n")
    hv = Hypervisor("compute1", host(sshd), str(tmp_path), {"nova_compute": str(log)})
    assert hv.instance_files("u1") == ["console.log", "disk", "disk.info"]
    assert hv.instance_files("u2") is None and not hv.instance_dir_exists("u2")
    assert hv.files.resize_dir_exists("u1")
    assert hv.log_lines("req-1") == ["a req-1 start", "c req-1 done"]
    assert hv.log_lines("req-9") == []


def test_inspect_reads_domain_and_files_in_one_command(sshd: dict[str, object], tmp_path: Path) -> None:
    (tmp_path / "u1").mkdir()
    (tmp_path / "u1" / "disk").write_text("x")
    hv = Hypervisor("compute1", host(sshd), str(tmp_path))
    seen = hv.inspect("u1")
    assert seen.domain_state == ("running", "booted") and seen.instance_files == ["disk"]
    assert seen.dominfo is not None and seen.dominfo["Name"] == "instance-00000001"
    gone = hv.inspect("u3")
    assert (gone.domain_state, gone.dominfo, gone.instance_files) == (None, None, None)
    with pytest.raises(HostCommandError, match="inspection step 2 failed"):
        hv.inspect("u2")


def test_parse_domstate() -> None:
    assert parse_domstate("shut off (destroyed)\n\n") == ("shut off", "destroyed")
    assert parse_domstate("running\n") == ("running", "")
