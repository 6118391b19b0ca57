"""Move helpers: host leases, migration records, the one-round-trip host view, draining a host."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from conformance.errors import InfraError
from conformance.lib import hostcontrol
from conformance.lib.hosts import CommandResult
from conformance.lib.leases import HostLeases
from conformance.lib.moves import COLD_CONFIRMED, LIVE, MigrationLog, host_view, order_problem, state_problems
from conformance.lib.trace import Trace
from conformance.lib.waiter import Polling
from tests.unit.fakes import FakeConn

FAST = Polling(initial=0.01, maximum=0.01)


# ------------------------------------------------------------------ leases
def test_a_lease_is_all_or_nothing_and_exclusive(tmp_path: Path) -> None:
    leases, hosts = HostLeases(tmp_path, poll=0.01), ["c1", "c2", "c3"]
    with leases.hold(lambda: hosts, 2, timeout=1) as first:
        assert first == ["c1", "c2"]
        with pytest.raises(InfraError, match="could not lease 2"), leases.hold(lambda: hosts, 2, 0.05):
            pass
        with leases.hold(lambda: hosts, 1, timeout=1) as spare:
            assert spare == ["c3"]
    with leases.hold(lambda: hosts, 2, timeout=1) as again:
        assert again == ["c1", "c2"]


def test_a_lease_waits_for_the_holder(tmp_path: Path) -> None:
    leases, hosts = HostLeases(tmp_path, poll=0.01), ["c1", "c2"]
    released = threading.Event()

    def hold_briefly() -> None:
        with HostLeases(tmp_path).hold(lambda: hosts, 2, timeout=1):
            released.wait(0.2)

    holder = threading.Thread(target=hold_briefly)
    holder.start()
    try:
        with leases.hold(lambda: hosts, 2, timeout=5) as got:
            assert sorted(got) == hosts  # the order follows which lease freed first
    finally:
        released.set()
        holder.join()


def test_shared_leases_share_a_host_an_exclusive_one_does_not(tmp_path: Path) -> None:
    leases, hosts = HostLeases(tmp_path, poll=0.01, slots=2), ["c1", "c2", "c3"]
    with leases.hold(lambda: hosts, 2, timeout=1, exclusive=0) as live:
        assert live == ["c1", "c2"]
        with leases.hold(lambda: hosts, 2, timeout=1, exclusive=0) as cold:
            assert cold == ["c1", "c2"]
            with pytest.raises(InfraError, match="could not lease 2"), \
                    leases.hold(lambda: hosts, 2, 0.05, exclusive=0):  # both slots of c1, c2 are held
                pass
        with leases.hold(lambda: hosts, 2, timeout=1, exclusive=1) as (fenced, dest):
            assert (fenced, dest) == ("c3", "c1")  # the only host no one shares is the one to fence
            with pytest.raises(InfraError), leases.hold(lambda: ["c3"], 1, 0.05, exclusive=0):
                pass
    with leases.hold(lambda: hosts, 1, timeout=1, exclusive=1) as first:
        assert first == ["c1"]


def test_only_usable_hosts_are_leased(tmp_path: Path) -> None:
    with HostLeases(tmp_path, poll=0.01).hold(lambda: ["c3"], 1, timeout=1) as got:
        assert got == ["c3"]


# ------------------------------------------------------------------ migration records
@pytest.mark.parametrize(("seen", "order", "ok"), [
    ([], COLD_CONFIRMED, True),
    (["finished", "confirmed"], COLD_CONFIRMED, True),
    (["pre-migrating", "migrating", "finished", "confirming", "confirmed"], COLD_CONFIRMED, True),
    (["confirmed", "finished"], COLD_CONFIRMED, False),
    (["finished", "reverted"], COLD_CONFIRMED, False),
    (["accepted", "running", "completed"], LIVE, True),
    (["running", "running"], LIVE, False),
])
def test_order_problem(seen: list[str], order: tuple[str, ...], ok: bool) -> None:
    assert (order_problem(seen, order) is None) == ok


def test_migration_log_keeps_each_status_once_in_order() -> None:
    conn = FakeConn()
    record = {"id": 7, "uuid": "m-7", "migration_type": "live-migration", "instance_uuid": "s1"}
    conn.compute.routes[("GET", "/os-migrations")] = [
        (200, {"migrations": [{**record, "status": status}]})
        for status in ("accepted", "running", "running", "completed")]
    log = MigrationLog(conn, "s1", "live-migration")
    for _ in range(3):
        log.sample()
    latest = log.latest()

    assert latest["status"] == "completed"
    assert log.statuses(latest) == ["accepted", "running", "completed"]
    params = conn.compute.calls[0][2]
    assert params["params"] == {"instance_uuid": "s1", "migration_type": "live-migration"}
    assert params["microversion"] == "2.59"


def test_state_problems_name_the_observations_outside() -> None:
    trace = Trace("live")
    trace.record("MIGRATING", "active", "migrating", 1)
    trace.record("MIGRATING", "active", "migrating", 3)
    trace.record("ACTIVE", "active", None, 1)

    problems = state_problems(trace, vm_state="active", power_state=1, statuses={"ACTIVE", "MIGRATING"})

    assert len(problems) == 1 and "power=3" in problems[0]


# ------------------------------------------------------------------ host view (the real script, locally)
class LocalHost:
    """Runs the argv locally with a fake `virsh` first on PATH (the Host facade's run contract)."""

    def __init__(self, bin_dir: Path):
        self.env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}

    def run(self, *argv: str, check: bool = True) -> CommandResult:
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        return CommandResult("local", " ".join(argv), proc.returncode, proc.stdout, proc.stderr, 0.0)


class LocalHypervisor:
    def __init__(self, bin_dir: Path, instances: Path):
        self.host = LocalHost(bin_dir)
        self.files = type("Files", (), {"path": lambda _self, uuid: str(instances / uuid)})()


def _virsh(bin_dir: Path, script: str) -> None:
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "virsh").write_text(f"#!/bin/sh\n{script}\n")
    (bin_dir / "virsh").chmod(0o755)


def test_host_view_of_a_running_guest(tmp_path: Path) -> None:
    _virsh(tmp_path / "bin", 'echo "running (booted)"')
    inst = tmp_path / "instances" / "u1"
    inst.mkdir(parents=True)
    (inst / "disk").write_text("x")
    (inst / "console.log").write_text("")
    (tmp_path / "instances" / "u1_resize").mkdir()

    view = host_view(LocalHypervisor(tmp_path / "bin", tmp_path / "instances"), "u1")  # type: ignore[arg-type]

    assert view["domain"] == ("running", "booted")
    assert view["files"] == ["console.log", "disk"]
    assert view["resize_dir"] is True
    assert view["disk"] == str((inst / "disk").stat().st_ino)


def test_host_view_of_nothing(tmp_path: Path) -> None:
    _virsh(tmp_path / "bin", "echo \"error: failed to get domain '$3'\" >&2; exit 1")

    view = host_view(LocalHypervisor(tmp_path / "bin", tmp_path / "instances"), "u1")  # type: ignore[arg-type]

    assert view == {"domain": None, "files": None, "resize_dir": False, "disk": None}


def test_host_view_raises_when_virsh_breaks(tmp_path: Path) -> None:
    _virsh(tmp_path / "bin", 'echo "error: failed to connect to the hypervisor" >&2; exit 1')

    with pytest.raises(Exception, match="virsh domstate failed"):
        host_view(LocalHypervisor(tmp_path / "bin", tmp_path / "instances"), "u1")  # type: ignore[arg-type]


# ------------------------------------------------------------------ draining a host before fencing
class FakePlacement:
    def __init__(self, rounds: list[dict[str, Any]]):
        self.rounds = rounds

    def provider_allocations(self, provider: str) -> dict[str, Any]:
        return self.rounds.pop(0) if len(self.rounds) > 1 else self.rounds[0]


def _services(conn: FakeConn, updates: list[dict[str, Any]]) -> None:
    service = {"id": "svc-1", "host": "c1", "state": "up", "status": "enabled"}
    conn.compute.routes[("GET", "/os-services")] = [(200, {"services": [service]})]

    def put(kwargs: dict[str, Any]) -> tuple[int, Any]:
        updates.append(kwargs["json"])
        return 200, {"service": {**service, **kwargs["json"]}}

    conn.compute.routes[("PUT", "/os-services/svc-1")] = put


def test_drain_disables_then_waits_for_other_servers_to_leave() -> None:
    conn, updates = FakeConn(), []  # type: ignore[var-annotated]
    _services(conn, updates)
    placement = FakePlacement([{"mine": {}, "other": {}}, {"mine": {}, "other": {}}, {"mine": {}}])

    hostcontrol.drain(conn, placement, "c1", "rp-1", ["mine"], timeout=5, poll=FAST)  # type: ignore[arg-type]

    assert updates == [{"status": "disabled", "disabled_reason": hostcontrol.LEASE_REASON}]
    assert placement.rounds == [{"mine": {}}]


def test_drain_gives_up_with_an_infra_error() -> None:
    conn, updates = FakeConn(), []  # type: ignore[var-annotated]
    _services(conn, updates)
    placement = FakePlacement([{"mine": {}, "other": {}}])

    with pytest.raises(InfraError, match="cannot be fenced"):
        hostcontrol.drain(conn, placement, "c1", "rp-1", ["mine"], timeout=0.05, poll=FAST)  # type: ignore[arg-type]
