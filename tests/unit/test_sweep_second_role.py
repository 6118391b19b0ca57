"""Sweep: a server its own role cannot delete (locked by an admin) is deleted by a role that can."""

from __future__ import annotations

from conformance.lib.resources import sweep
from conformance.lib.waiter import Polling
from tests.unit.fakes import FakeConn, server

FAST = Polling(initial=0.001, maximum=0.002)
LOCKED = server(sid="locked", status="RESCUE", tags=["conformance", "cft-run-r1"])


def member_cloud() -> FakeConn:
    """The member lists the tagged server but every way to delete it is refused (admin lock)."""
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/detail")] = [(200, {"servers": [LOCKED["server"]]})]
    locked = (409, {"conflictingRequest": {"message": "locked"}})
    conn.compute.routes[("DELETE", "/servers/locked")] = [locked]
    conn.compute.routes[("POST", "/servers/locked/action")] = lambda kw: (
        (403, {"forbidden": {"message": "unlock_override"}}) if "unlock" in kw["json"] else locked)
    conn.image.routes[("GET", "/images")] = [(200, {"images": []})]
    return conn


def admin_cloud(readable: bool = True) -> FakeConn:
    """An admin who does not list the member's project but reads and deletes the server by id."""
    conn = FakeConn()
    conn.compute.routes[("GET", "/servers/detail")] = [(200, {"servers": []})]
    conn.image.routes[("GET", "/images")] = [(200, {"images": []})]
    if readable:
        conn.compute.routes[("GET", "/servers/locked")] = [(200, LOCKED), (404, {"itemNotFound": {}})]
        conn.compute.routes[("DELETE", "/servers/locked")] = [(204, None)]
    return conn


def test_admin_deletes_what_the_member_could_not() -> None:
    """The member's 403 is not final: the admin deletes the server by id; no failure remains."""
    member, admin = member_cloud(), admin_cloud()
    found, failures = sweep([member, admin], "r1", timeout=1, poll=FAST)
    assert [s["id"] for s in found.servers] == ["locked"]
    assert failures == []
    assert ("DELETE", "/servers/locked") in [(m, p) for m, p, _ in admin.compute.calls]


def test_failure_stays_when_no_role_can_delete() -> None:
    """Without a role that can read the server the member's failure is reported, nothing else deleted."""
    member, other = member_cloud(), admin_cloud(readable=False)
    _, failures = sweep([member, other], "r1", timeout=1, poll=FAST)
    assert len(failures) == 1 and failures[0].startswith("server locked: ForbiddenException")
    assert [m for m, _, _ in other.compute.calls if m != "GET"] == []
