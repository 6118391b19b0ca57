"""The embedded hosts' virsh shim prints libvirt's own formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conformance.embedded import virsh
from conformance.embedded.hoststate import Domain, HostState

UUID_A = "6c1f3a8e-2b7d-4a51-9a0e-0f3c2d1e4b5a"
UUID_B = "0b7e5a11-8c2d-4f3e-9d1a-2e4f6a8b0c1d"
UUID_C = "9f8e7d6c-5b4a-4392-8e1f-0a9b8c7d6e5f"


@pytest.fixture
def host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> HostState:
    state = HostState(tmp_path / "compute1")
    state.ensure()
    disk = {"target": "vda", "source": f"{state.instances}/{UUID_A}/disk", "format": "qcow2"}
    state.write_domain(Domain(name="instance-00000002", uuid=UUID_A, state="running",
                              reason="booted", dom_id=3, disks=[disk]))
    state.write_domain(Domain(name="instance-00000001", uuid=UUID_B, state="shut off",
                              reason="saved", managed_save=True))
    state.write_domain(Domain(name="instance-00000003", uuid=UUID_C, state="paused",
                              reason="user", dom_id=1))
    monkeypatch.setenv("EMBEDDED_HOST_ROOT", str(state.root))
    monkeypatch.delenv("EMBEDDED_HOST", raising=False)
    return state


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = virsh.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_list_all_is_a_vsh_table_sorted_like_virsh(host: HostState, capsys) -> None:
    code, out, _ = run(capsys, "list", "--all")
    assert code == 0
    assert out == (" Id   Name                State\n"
                   "------------------------------------\n"
                   " 1    instance-00000003   paused\n"
                   " 3    instance-00000002   running\n"
                   " -    instance-00000001   shut off\n"
                   "\n")


def test_list_defaults_to_active_domains_and_filters_states(host: HostState, capsys) -> None:
    assert "instance-00000001" not in run(capsys, "list")[1]
    assert run(capsys, "list", "--name", "--state-running")[1] == "instance-00000002\n\n"
    assert run(capsys, "list", "--inactive", "--uuid")[1] == f"{UUID_B}\n\n"
    assert run(capsys, "list", "--id")[1] == "1\n3\n\n"
    assert "saved" in run(capsys, "list", "--all", "--managed-save")[1]


def test_quiet_drops_header_and_trailing_blank_line(host: HostState, capsys) -> None:
    out = run(capsys, "-q", "-c", "qemu:///system", "list", "--all")[1]
    assert out.splitlines()[0] == " 1    instance-00000003   paused"
    assert not out.endswith("\n\n")


def test_empty_list_still_prints_header(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("EMBEDDED_HOST_ROOT", str(tmp_path))
    assert run(capsys, "list", "--all")[1] == " Id   Name   State\n--------------------\n\n"


@pytest.mark.parametrize(("key", "expected"), [
    ("instance-00000001", "shut off (saved)"), ("3", "running (booted)"),
    (UUID_C, "paused (user)")])
def test_domstate_reason_by_name_id_or_uuid(host: HostState, capsys, key: str, expected: str) -> None:
    assert run(capsys, "domstate", key, "--reason")[1] == f"{expected}\n\n"


def test_dominfo_and_ids(host: HostState, capsys) -> None:
    info = run(capsys, "dominfo", "instance-00000001")[1]
    assert "Id:             -\n" in info
    assert "State:          shut off\n" in info
    assert "Managed save:   yes\n" in info
    assert run(capsys, "domid", "instance-00000002")[1] == "3\n\n"
    assert run(capsys, "domid", "instance-00000001")[1] == "-\n\n"
    assert run(capsys, "domuuid", "3")[1] == f"{UUID_A}\n\n"


def test_domblklist_and_details(host: HostState, capsys) -> None:
    out = run(capsys, "domblklist", "instance-00000002")[1].splitlines()
    assert out[0].split() == ["Target", "Source"]
    assert out[2].split() == ["vda", f"{host.instances}/{UUID_A}/disk"]
    details = run(capsys, "domblklist", "--details", "instance-00000002")[1].splitlines()
    assert details[2].split()[:3] == ["file", "disk", "vda"]


def test_dumpxml_is_valid_domain_xml(host: HostState, capsys) -> None:
    import xml.etree.ElementTree as ET

    root = ET.fromstring(run(capsys, "dumpxml", "instance-00000002")[1])
    assert root.tag == "domain" and root.get("id") == "3"
    assert root.findtext("uuid") == UUID_A
    source = root.find("devices/disk/source")
    assert source is not None and str(source.get("file")).endswith("/disk")
    shut = ET.fromstring(run(capsys, "dumpxml", "instance-00000001")[1])
    assert shut.get("id") is None


def test_errors_match_virsh(host: HostState, capsys) -> None:
    assert run(capsys, "dominfo", "nope") == (1, "\n", "error: failed to get domain 'nope'\n")
    assert run(capsys, "frobnicate") == (1, "", "error: unknown command: 'frobnicate'\n")
    code, _, err = run(capsys, "list", "--bogus")
    assert code == 1 and err == "error: command 'list' doesn't support option --bogus\n"
    assert run(capsys, "domstate")[2] == "error: command 'domstate' requires <domain> option\n"


def test_runs_as_a_stdlib_only_script(host: HostState) -> None:
    """bin/virsh runs the file with `python -S -E` (no site-packages, no package import)."""
    shim = Path(virsh.__file__)
    env = {"EMBEDDED_HOST_ROOT": str(host.root), "EMBEDDED_HOST": "compute1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-S", "-E", str(shim), "hostname"], env=env,
                            capture_output=True, text=True, check=True)
    assert result.stdout == "compute1\n\n"
