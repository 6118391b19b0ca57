"""Snapshots keep probe failures for the tests that read them; scenarios keep act failures."""

from __future__ import annotations

import pytest

from conformance.errors import HostUnreachable, InfraError, ServerFault
from conformance.lib.hosts import Inspection
from conformance.lib.observe import Observer, Scenario, Snapshot
from conformance.lib.placement import Placement
from conformance.lib.waiter import Polling
from tests.unit.fakes import FakeConn, server


class BrokenHypervisor:
    def inspect(self, uuid: str) -> None:
        raise HostUnreachable("ssh down")


def cloud() -> FakeConn:
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/s1")] = [(200, server(attrs={
        "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "node1"}))]
    conn.placement.routes[("GET", "/allocations/s1")] = [(200, {"allocations": {}})]
    conn.placement.routes[("GET", "/resource_providers")] = [(200, {"resource_providers": [{"uuid": "rp"}]})]
    conn.placement.routes[("GET", "/resource_providers/rp/usages")] = [(200, {"usages": {"VCPU": 0}})]
    return conn


def test_snapshot_reads_every_given_depth_and_keeps_failures() -> None:
    conn = cloud()
    observer = Observer(conn, admin=conn, placement=Placement(conn),
                        hypervisors={"compute1": BrokenHypervisor()})  # type: ignore[dict-item]
    snap = observer.snapshot("now", "s1")
    assert snap.server.status == "ACTIVE" and snap.host == "compute1"
    assert snap.provider == "rp" and snap.allocations == {} and snap.usages == {"VCPU": 0}
    with pytest.raises(HostUnreachable):
        _ = snap.domain_state
    with pytest.raises(HostUnreachable):
        _ = snap.instance_files


def test_a_depth_that_was_not_given_is_not_observed() -> None:
    snap = Observer(cloud()).snapshot("now", "s1")
    with pytest.raises(InfraError, match="did not observe 'allocations'"):
        _ = snap.allocations


def test_settle_returns_the_last_snapshot_even_if_never_settled() -> None:
    snap = Observer(cloud()).settle("late", "s1", lambda s: False, timeout=0.02,
                                    poll=Polling(0.001, 0.002))
    assert isinstance(snap, Snapshot) and snap.server is not None


def test_a_scenario_re_raises_its_failure_for_records_it_prevented() -> None:
    scenario = Scenario("pause")
    with scenario.acting():
        scenario.active = "seen"
        raise ServerFault("went to ERROR")
    assert scenario.active == "seen"
    with pytest.raises(ServerFault, match="went to ERROR"):
        _ = scenario.paused


def test_a_scenario_without_failure_names_a_missing_record() -> None:
    with pytest.raises(InfraError, match="no record 'paused'"):
        _ = Scenario("pause").paused


def test_settle_retries_snapshots_whose_probes_failed() -> None:
    class FlakyHypervisor:
        calls = 0

        def inspect(self, uuid: str) -> object:
            FlakyHypervisor.calls += 1
            if FlakyHypervisor.calls == 1:
                raise HostUnreachable("timeout")
            return Inspection(None, None, None)

    observer = Observer(cloud(), hypervisors={"compute1": FlakyHypervisor()})  # type: ignore[dict-item]
    snap = observer.settle("gone", "s1", lambda s: s.domain_state is None, timeout=5,
                           poll=Polling(0.001, 0.002), host="compute1")
    assert FlakyHypervisor.calls == 2 and snap.domain_state is None
