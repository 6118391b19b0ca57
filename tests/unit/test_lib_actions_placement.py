"""Instance-action event checks and Placement helpers against a fake cloud."""

from __future__ import annotations

import pytest

from conformance.errors import GuaranteeViolation
from conformance.lib.actions import expect_action_events
from conformance.lib.placement import Placement, flavor_resources
from conformance.lib.waiter import Polling
from tests.unit.fakes import FakeConn

FAST = Polling(initial=0.001, maximum=0.002)
ACTIONS = "/servers/s1/os-instance-actions"


def action_cloud(*event_results: list[dict[str, object]]) -> FakeConn:
    conn = FakeConn()
    conn.compute.routes[("GET", ACTIONS)] = [(200, {"instanceActions": [
        {"action": "pause", "request_id": "req-old", "start_time": "2026-01-01T00:00:00"},
        {"action": "pause", "request_id": "req-new", "start_time": "2026-01-02T00:00:00"}]})]
    conn.compute.routes[("GET", f"{ACTIONS}/req-new")] = [
        (200, {"instanceAction": {"action": "pause", "request_id": "req-new", "events": events}})
        for events in event_results]
    return conn


def test_waits_for_the_newest_action_events_to_finish() -> None:
    conn = action_cloud([{"event": "compute_pause_instance", "result": None}],
                        [{"event": "compute_pause_instance", "result": "Success"}])
    detail = expect_action_events(conn, "s1", "pause", ["compute_pause_instance"], timeout=5, poll=FAST)
    assert detail["request_id"] == "req-new"


def test_missing_or_failed_events_are_violations() -> None:
    conn = action_cloud([{"event": "compute_other", "result": "Error"}])
    problems = r"compute_other has result 'Error'.*compute_pause_instance is missing"
    with pytest.raises(GuaranteeViolation, match=problems):
        expect_action_events(conn, "s1", "pause", ["compute_pause_instance"], timeout=0.02, poll=FAST)


def test_a_missing_action_is_a_violation() -> None:
    conn = action_cloud([])
    with pytest.raises(GuaranteeViolation, match="no instance action 'unpause'"):
        expect_action_events(conn, "s1", "unpause", [], timeout=0.02, poll=FAST)


def test_allocations_usages_and_providers() -> None:
    conn = FakeConn()
    conn.placement.routes[("GET", "/allocations/s1")] = [(200, {"allocations": {
        "rp1": {"generation": 3, "resources": {"VCPU": 1, "MEMORY_MB": 512}}}})]
    conn.placement.routes[("GET", "/resource_providers/rp1/usages")] = [(200, {"usages": {"VCPU": 2}})]
    conn.placement.routes[("GET", "/resource_providers")] = [(200, {"resource_providers": [{"uuid": "rp1"}]})]
    placement = Placement(conn)
    assert placement.allocations("s1") == {"rp1": {"VCPU": 1, "MEMORY_MB": 512}}
    assert placement.usages("rp1") == {"VCPU": 2}
    assert placement.provider_for_host("compute1") == "rp1"
    assert conn.placement.calls[-1][2]["params"] == {"name": "compute1"}


def test_flavor_resources_count_ephemeral_and_swap() -> None:
    assert flavor_resources({"vcpus": 2, "ram": 1024, "disk": 10, "ephemeral": 1, "swap": 1536}) == {
        "VCPU": 2, "MEMORY_MB": 1024, "DISK_GB": 13}
    assert flavor_resources({"vcpus": 1, "ram": 512, "disk": 0, "swap": ""}) == {"VCPU": 1, "MEMORY_MB": 512}
