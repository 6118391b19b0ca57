"""Lock and unlock as a matrix over roles: member, reader, other_member, admin, other_admin.

The ``locking`` scenario acts once per module on one server: the member locks
it with a reason; outsiders try; both admins stop and start it through the
lock; the member snapshots it; owner and admin locks are unlocked by the
other kind of caller; then, locked by the member again, the server is moved
by the admin through the states in LOCK_CHECKED and the member sends each
lock-checked action (destructive ones last).  The server is unlocked and
deleted at the end.  LOCK-04 (lock and unlock in every stable state) is checked on the
matrix's per-state servers: conformance/suites/test_matrix.py.
"""

from __future__ import annotations

import contextlib
from functools import partial
from itertools import groupby
from typing import Any

import pytest
from openstack import exceptions

from conformance import guarantee, requires
from conformance.fixtures import optional
from conformance.lib.actions import get_action
from conformance.lib.api import call
from conformance.lib.observe import Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import Server, get_server, server_action
from conformance.lib.states import Answer, Reacher, answer_of, fill, lock, unlock
from conformance.lib.waiter import Polling, wait_for_server, wait_until
from conformance.profile import Profile

pytestmark = requires("lock")

REASON = "conformance: lock matrix"
# Lock-checked requests a member may send, by the state the server is in when it is sent (each is
# allowed in that state, so only the lock can refuse it); destructive ones last.  Reference §1.4.
# A request is an action body, or (method, path, body) for the other lock-checked calls.
LOCK_CHECKED = (
    # id                  state        request                                            capability
    ("stop",              "ACTIVE",    {"os-stop": None},                                 None),
    ("reboot-soft",       "ACTIVE",    {"reboot": {"type": "SOFT"}},                      None),
    ("reboot-hard",       "ACTIVE",    {"reboot": {"type": "HARD"}},                      None),
    ("pause",             "ACTIVE",    {"pause": None},                                   None),
    ("suspend",           "ACTIVE",    {"suspend": None},                                 None),
    ("rescue",            "ACTIVE",    {"rescue": None},                                  None),
    ("rebuild",           "ACTIVE",    {"rebuild": {"imageRef": "${image}"}},             None),
    ("resize",            "ACTIVE",    {"resize": {"flavorRef": "${flavor}"}},            None),
    ("shelve",            "ACTIVE",    {"shelve": None},                                  None),
    ("changePassword",    "ACTIVE",    {"changePassword": {"adminPass": "Cft-Lock-1"}},   None),
    ("trigger_crash_dump", "ACTIVE",   {"trigger_crash_dump": None},                      None),
    ("metadata-update",   "ACTIVE",    ("POST", "metadata", {"metadata": {"cft": "x"}}),  None),
    ("metadata-delete",   "ACTIVE",    ("DELETE", "metadata/conformance_run", None),      None),
    ("start",             "SHUTOFF",   {"os-start": None},                                None),
    ("unpause",           "PAUSED",    {"unpause": None},                                 "pause"),
    ("resume",            "SUSPENDED", {"resume": None},                                  "suspend"),
    ("unrescue",          "RESCUE",    {"unrescue": None},                                "rescue"),
    ("forceDelete",       "ACTIVE",    {"forceDelete": None},                             None),
    ("delete",            "ACTIVE",    ("DELETE", "", None),                              None),
)
# How the admin moves the locked server into a state (through the lock) and back to ACTIVE.
MOVES = {"SHUTOFF": ("os-stop", "os-start"), "PAUSED": ("pause", "unpause"),
         "SUSPENDED": ("suspend", "resume"), "RESCUE": ("rescue", "unrescue")}
SCENARIO = pytest.mark.xdist_group("lock-scenario")  # the tests that share the `locking` server


def _locked(server: Server) -> tuple[Any, Any]:
    return server.data.get("locked"), server.data.get("locked_reason")


def _state(server: Server) -> tuple[Any, ...]:
    return server.status, server.vm_state, server.task_state, server.power_state, server.host, \
        server.flavor, server.image_id, server.addresses, server.metadata, server.data.get("locked")


def _unlock_at_cleanup(factory: ServerFactory, admin: Any, server_id: str) -> None:
    """Before the delete (cleanups run last-in first-out) lift any lock, whoever set it."""
    def lift() -> None:
        with contextlib.suppress(exceptions.NotFoundException):
            unlock(admin, server_id)
    factory.cleanup.add(f"unlock server {server_id}", lift)


class Locking:
    """The acts of the ``locking`` scenario, in order (each stores its records on ``rec``)."""

    def __init__(self, rec: Scenario, roles: dict[str, Any], server_id: str, reacher: Reacher,
                 profile: Profile, factory: ServerFactory):
        self.rec, self.roles, self.sid, self.reacher = rec, roles, server_id, reacher
        self.profile, self.factory, self.timeouts = profile, factory, profile.timeouts
        self.member, self.admin = roles["member"], roles["admin"] or roles["member"]

    def ask(self, role: str, verb: str, body: Any = None) -> Answer | None:
        """The answer to ``verb`` sent by ``role`` (None: the profile lacks the role)."""
        conn = self.roles[role]
        return None if conn is None else answer_of(lambda: server_action(conn, self.sid, verb, body))

    def wait(self, status: str, timeout: float | None = None) -> Server:
        server, _ = wait_for_server(self.admin, self.sid, status=status, poll=self.reacher.poll,
                                    timeout=timeout or self.timeouts.server_action)
        return server

    def wait_if(self, answer: Answer | None, status: str) -> Server | None:
        return self.wait(status) if answer is not None and answer.status == 202 else None

    def lock_with_reason(self) -> None:
        self.rec.lock = self.ask("member", "lock", {"locked_reason": REASON})
        self.rec.locked = get_server(self.member, self.sid)
        self.rec.locked_29 = get_server(self.member, self.sid, microversion="2.9")
        self.rec.lock_action = get_action(self.member, self.sid, "lock")

    def admins_bypass(self) -> None:
        self.rec.admin_stop = self.ask("admin", "os-stop")
        self.rec.admin_stopped = self.wait_if(self.rec.admin_stop, "SHUTOFF")
        self.rec.other_admin_start = self.ask("other_admin", "os-start")
        self.rec.other_admin_started = self.wait_if(self.rec.other_admin_start, "ACTIVE")
        if self.rec.admin_stopped is not None and self.rec.other_admin_started is None:
            server_action(self.admin, self.sid, "os-start")
            self.wait("ACTIVE")

    def snapshot(self) -> None:
        body = {"name": self.factory.name("lock-snapshot"), "metadata": self.factory.image_properties()}
        reply = None
        with contextlib.suppress(exceptions.ConflictException):
            reply = server_action(self.member, self.sid, "createImage", body)
        self.rec.snapshot = reply
        if reply is not None:
            image_id = str(reply.body["image_id"])
            self.factory.track_image(image_id)
            self.rec.image = _settled_image(self.member, image_id, self.timeouts.snapshot, self.reacher.poll)
        self.rec.after_snapshot = self.wait("ACTIVE", self.timeouts.snapshot)

    def unlocks(self) -> None:
        self.rec.unlock = self.ask("member", "unlock")
        self.rec.unlocked = get_server(self.member, self.sid)
        self.rec.unlock_action = get_action(self.member, self.sid, "unlock")
        self.rec.owner_lock = (self.ask("admin", "lock"), self.ask("member", "unlock"))
        self.rec.after_owner_unlock = get_server(self.member, self.sid)
        self.rec.admin_lock = self.ask("other_admin", "lock")
        self.rec.member_unlock_of_admin_lock = self.ask("member", "unlock")
        locks_before = _count(self.member, self.sid, "lock")
        self.rec.member_relock = self.ask("member", "lock")
        self.rec.relock_added_actions = _count(self.member, self.sid, "lock") - locks_before
        self.rec.still_locked = get_server(self.member, self.sid)
        self.rec.admin_unlock = self.ask("admin", "unlock")
        self.rec.after_admin_unlock = get_server(self.member, self.sid)

    def send(self, request: Any) -> Any:
        """Send a LOCK_CHECKED request as the member."""
        method, path, body = request if isinstance(request, tuple) else ("POST", "action", request)
        return call(self.member, method, f"/servers/{self.sid}/{path}".rstrip("/"),
                    json=fill(body, self.reacher.values))

    def refusals(self) -> None:
        """Locked by the member; each LOCK_CHECKED request in its state, the admin moving the server."""
        self.rec.refused = {}
        lock(self.member, self.sid)
        for state, rows in groupby(LOCK_CHECKED, key=lambda row: row[1]):
            todo = [row for row in rows if not row[3] or self.profile.claims(row[3])]
            if state != "ACTIVE" and todo:
                server_action(self.admin, self.sid, MOVES[state][0])
                self.wait(state)
            for name, _, request, _ in todo:
                before = _view(self.admin, self.sid)
                answer = answer_of(partial(self.send, request))
                self.rec.refused[name] = (answer, before, _view(self.admin, self.sid))
            if state != "ACTIVE" and todo:
                server_action(self.admin, self.sid, MOVES[state][1])
                self.wait("ACTIVE")
        unlock(self.admin, self.sid)


def _view(conn: Any, server_id: str) -> Server | None:
    with contextlib.suppress(exceptions.NotFoundException):
        return get_server(conn, server_id)
    return None


def _count(conn: Any, server_id: str, action: str) -> int:
    body = call(conn, "GET", f"/servers/{server_id}/os-instance-actions").body
    return sum(1 for a in body["instanceActions"] if a["action"] == action)


def _settled_image(conn: Any, image_id: str, timeout: float, poll: Polling) -> dict[str, Any]:
    """The image once it is no longer uploading (or as last seen when time is up)."""
    seen: dict[str, Any] = {}

    def settled() -> bool:
        seen.update(call(conn, "GET", f"/images/{image_id}", service="image").body)
        return seen.get("status") not in ("queued", "saving", "uploading", "importing")

    with contextlib.suppress(Exception):
        wait_until(settled, timeout=timeout, poll=poll, describe=f"image {image_id} upload")
    return seen


@pytest.fixture(scope="module")
def locking(request: pytest.FixtureRequest, profile: Profile, module_server_factory: ServerFactory,
            boot_spec: BootSpec, reacher: Reacher, member: Any, admin: Any) -> Scenario:
    """One member's server through every lock act of the module (see the module docstring)."""
    rec = Scenario("lock")
    roles = {role: optional(request, role) for role in ("reader", "other_member", "other_admin")}
    roles.update(member=member, admin=admin)
    server = module_server_factory.create_server("lock", **boot_spec.kwargs())
    _unlock_at_cleanup(module_server_factory, admin, server.id)
    acts = Locking(rec, roles, server.id, reacher, profile, module_server_factory)
    with rec.acting():
        acts.wait("ACTIVE", profile.timeouts.server_build)
        for act in (acts.lock_with_reason, acts.admins_bypass, acts.snapshot, acts.unlocks, acts.refusals):
            act()
    with rec.acting():
        module_server_factory.delete(server.id)
    return rec


@SCENARIO
@guarantee("LOCK-01")
def test_locked_and_reason_exposed(locking: Scenario) -> None:
    """lock with a reason answers 202 and shows locked/locked_reason; unlock clears both."""
    assert locking.lock.status == 202, locking.lock
    assert _locked(locking.locked) == (True, REASON)
    assert "locked" in locking.locked_29.data and locking.locked_29.data["locked"] is True
    assert "locked_reason" not in locking.locked_29.data, "locked_reason is shown below 2.73"
    assert locking.unlock.status == 202, locking.unlock
    assert _locked(locking.unlocked) == (False, None)


@SCENARIO
@guarantee("LOCK-02")
@pytest.mark.parametrize("name", [pytest.param(row[0], marks=[requires(row[3])] if row[3] else [])
                                  for row in LOCK_CHECKED])
def test_lock_refuses_member(locking: Scenario, name: str) -> None:
    """While locked, a lock-checked request by the member answers 409 and changes nothing."""
    if name not in locking.refused:
        raise locking.failure or AssertionError(f"{name} was never sent")
    answer, before, after = locking.refused[name]

    assert answer.status == 409, f"{name}: {answer}"
    assert after is not None and _state(after) == _state(before), f"{name}: {answer}"


@SCENARIO
@guarantee("LOCK-03")
def test_admins_bypass_lock(locking: Scenario, other_admin: Any) -> None:
    """The admin stops and the other project's admin starts the locked server; it stays locked."""
    assert locking.admin_stop.status == 202, locking.admin_stop
    assert locking.admin_stopped.status == "SHUTOFF" and _locked(locking.admin_stopped)[0] is True
    assert locking.other_admin_start.status == 202, locking.other_admin_start
    assert locking.other_admin_started.status == "ACTIVE" and _locked(locking.other_admin_started)[0]


@SCENARIO
@guarantee("LOCK-05")
def test_owner_lock_unlocked_by_other_member(locking: Scenario) -> None:
    """A lock by the owning project's admin is an owner lock: the member unlocks it."""
    admin_lock, member_unlock = locking.owner_lock

    assert (admin_lock.status, member_unlock.status) == (202, 202), locking.owner_lock
    assert _locked(locking.after_owner_unlock)[0] is False


@SCENARIO
@guarantee("LOCK-06")
def test_admin_lock_needs_admin_to_unlock(locking: Scenario, other_admin: Any) -> None:
    """Another project's admin lock: member unlock 403, member relock a no-op, admin unlock 202."""
    assert locking.admin_lock.status == 202, locking.admin_lock
    assert locking.member_unlock_of_admin_lock.status == 403, locking.member_unlock_of_admin_lock
    assert locking.member_relock.status == 202 and locking.relock_added_actions == 0
    assert _locked(locking.still_locked)[0] is True
    assert locking.admin_unlock.status == 202 and _locked(locking.after_admin_unlock)[0] is False


@SCENARIO
@guarantee("LOCK-07")
@requires("snapshot")
def test_snapshot_not_blocked(locking: Scenario) -> None:
    """createImage by the member on the locked server answers 202, the image goes active, still locked."""
    assert locking.snapshot is not None, "createImage on the locked server was refused with 409"
    assert locking.snapshot.status == 202, locking.snapshot
    assert locking.image.get("status") == "active", locking.image
    assert locking.after_snapshot.status == "ACTIVE" and _locked(locking.after_snapshot)[0] is True


@SCENARIO
@guarantee("LOCK-08")
def test_lock_never_reaches_compute(locking: Scenario) -> None:
    """The lock and unlock actions each hold exactly one successful api_ event and nothing else."""
    for detail, event in ((locking.lock_action, "api_lock"), (locking.unlock_action, "api_unlock")):
        events = [(e["event"], e.get("result")) for e in detail.get("events") or []]
        assert events == [(event, "Success")], detail
