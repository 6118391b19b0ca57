"""The state x action conflict matrix, generated from ONE table: conformance/matrix.yaml.

For each stable state, :class:`Refusals` boots one server (per xdist worker),
brings it into the state, and sends every action the state forbids once, as
the action's role, recording each answer and the server right after it, and
the server once more after them all; then the same requests as the admin;
then, with the server locked, as another project's member, the reader, the
member and the admin.  Each of these three batches is sent FAN_OUT requests at
a time (none of them may change the server, so their order does not matter).
Between the admin's batch and the locked one, the same server runs LOCK-04's
lock/unlock sequence (so LOCK-04 needs no server of its own per state).  The
server is deleted as soon as its state is done, so the matrix holds one server
at a time.  Each test asserts one guarantee for one (state, action) from those
records; states the profile cannot reach skip with the reason.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from functools import partial
from typing import Any

import pytest
from openstack import exceptions

from conformance import guarantee, requires
from conformance.fixtures import optional
from conformance.lib.api import version_tuple
from conformance.lib.fanout import fan_out
from conformance.lib.observe import Observer, Scenario
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import Server, get_server, server_action
from conformance.lib.states import (
    Action,
    Answer,
    Reacher,
    Unreachable,
    action_ids,
    answer_of,
    attempt,
    fill,
    load_matrix,
    lock,
    unlock,
)
from conformance.lib.waiter import wait_for_server
from conformance.profile import Profile, Timeouts

MATRIX = load_matrix()
LOCKED_ROLES = ("other_member", "reader", "member", "admin")
PRECEDENCE = {"other_member": 404, "reader": 403, "member": 409}
# Refused requests in flight at once per batch (none may change the server, so their order does
# not matter; each is still read back right after its answer, and the server once after them all).
FAN_OUT = 8
# LOCK-04: in order, in every stable state; a 409 never comes, whoever asks and however often.
LOCK_SEQUENCE = (
    ("member", "lock", 202), ("member", "lock", 202),
    ("reader", "lock", 403), ("reader", "unlock", 403),
    ("other_member", "lock", 404), ("other_member", "unlock", 404),
    ("member", "unlock", 202), ("member", "unlock", 202),
    ("admin", "lock", 202), ("admin", "unlock", 202),
    ("other_admin", "lock", 202), ("other_admin", "lock", 202), ("other_admin", "unlock", 202),
)


def _marks(state: str) -> list[Any]:
    """The state's capability, and one xdist group per state (its tests share one server)."""
    capability = MATRIX.states[state].capability
    return [pytest.mark.xdist_group(f"matrix-{state}"), *([requires(capability)] if capability else [])]


def _cases(roles: tuple[str, ...] = ("member", "admin")) -> list[Any]:
    """One param per (state, refused action) whose action is sent by one of ``roles``."""
    return [pytest.param(state, action.name, id=f"{state}-{action.name}", marks=_marks(state))
            for state in MATRIX.states for action in MATRIX.refused(state) if action.role in roles]


STATES = [pytest.param(state, id=state, marks=_marks(state)) for state in MATRIX.states]


class Refusals:
    """Lazily, per state: one server, every refused request sent once, every answer recorded."""

    def __init__(self, factory: ServerFactory, spec: BootSpec, reacher: Reacher, observer: Observer,
                 roles: dict[str, Any], locking: bool, timeouts: Timeouts):
        self.factory, self.spec, self.reacher, self.observer = factory, spec, reacher, observer
        self.roles, self.locking, self.timeouts = roles, locking, timeouts
        self.runs: dict[str, Scenario] = {}
        self.skips: dict[str, str] = {}

    def of(self, state: str) -> Scenario:
        """The records of ``state`` (acted on first use); skips if the state is unreachable."""
        if state not in self.runs:
            self.runs[state] = self._run(state)
        if state in self.skips:
            pytest.skip(self.skips[state])
        return self.runs[state]

    def answer(self, state: str, action: str, role: str | None = None) -> Answer:
        """The answer to ``action`` sent by its own role (or by the admin); skips if it was not sent."""
        run = self.of(state)
        answers = run.admin_answers if role == "admin" else run.answers
        if action not in answers:
            act = MATRIX.actions[action]
            pytest.skip(self.unsent(act, self.roles.get(role or act.role)) or f"{action} was not sent")
        return answers[action]

    def unsent(self, action: Action, conn: Any) -> str | None:
        """Why ``action`` cannot be sent with ``conn`` (None: it can)."""
        if conn is None:
            return f"{action} needs the {action.role} role, which the profile lacks"
        pinned = conn.compute.default_microversion
        if action.min_microversion and pinned and version_tuple(pinned) < version_tuple(
                action.min_microversion):
            return f"{action} needs microversion {action.min_microversion}; the cloud offers {pinned}"
        return None

    def _run(self, state: str) -> Scenario:
        run, member = Scenario(f"matrix {state}"), self.roles["member"]
        created = self.factory.create_server(f"matrix-{state.lower()}", **self.spec.kwargs())
        with run.acting():
            wait_for_server(member, created.id, status="ACTIVE", timeout=self.timeouts.server_build,
                            poll=self.reacher.poll, progress=self.reacher.progress)
            try:
                server = self.reacher.reach(created.id, state)
            except Unreachable as exc:
                self.skips[state] = str(exc)
            else:
                self._refuse(run, server, state)
        with run.acting():
            self.factory.delete(created.id)
        return run

    def _send_all(self, server: Server, state: str, conn_of: Any, after: Any = None,
                  limit: int = FAN_OUT) -> dict[str, Any]:
        """Send each refused action of ``state`` with ``conn_of(action)``, ``limit`` at a time.

        ``after(action)`` runs in the same thread right after each answer (the per-request read).
        """
        values = {**self.reacher.values, "az": server.data.get("OS-EXT-AZ:availability_zone") or "nova",
                  "compute_host": server.host or "conformance-any-host"}
        todo = [(action, conn) for action in MATRIX.refused(state)
                if self.unsent(action, conn := conn_of(action)) is None]

        def one(item: tuple[Action, Any]) -> tuple[str, Answer]:
            action, conn = item
            answer = attempt(conn, server.id, fill(action.body, values))
            if after is not None:
                after(action.name)
            return action.name, answer

        return dict(fan_out(one, todo, limit))

    def _refuse(self, run: Scenario, server: Server, state: str) -> None:
        member, admin, sid = self.roles["member"], self.roles.get("admin"), server.id
        run.before = self.observer.snapshot(f"{state} before", sid)
        run.after = {}

        def observe(action: str) -> None:
            run.after[action] = self._view(sid)

        run.answers = self._send_all(server, state, lambda a: self.roles.get(a.role), observe)
        run.recorded = set(action_ids(member, sid))  # request ids of every instance action
        run.settled = self.observer.snapshot(f"{state} after the refusals", sid)
        run.admin_answers = self._send_all(server, state, lambda a: admin)
        try:  # LOCK-04's own records: an error here is LOCK-04's alone, the locked batch still runs
            run.lock_sequence = self._lock_sequence(sid) if self.locking else None
        except Exception as exc:
            run.lock_sequence = exc
        run.locked = self._locked(server, state) if self.locking else None

    def _lock_sequence(self, server_id: str) -> list[tuple[str, str, int]] | None:
        """LOCK-04: each LOCK_SEQUENCE step sent by its role, in order, as (role, verb, status).

        None if the profile lacks one of the roles.  If the answers differ from the sequence's,
        the admin unlocks the server afterwards so the locked batch and the delete still work.
        """
        if any(self.roles.get(role) is None for role, _, _ in LOCK_SEQUENCE):
            return None
        got: list[tuple[str, str, int]] = []
        try:
            for role, verb, _ in LOCK_SEQUENCE:
                got.append((role, verb, answer_of(partial(server_action, self.roles[role], server_id,
                                                          verb)).status))
        finally:
            if got != list(LOCK_SEQUENCE):
                with contextlib.suppress(exceptions.HttpException):
                    unlock(self.roles["admin"], server_id)
        return got

    def _locked(self, server: Server, state: str) -> dict[str, dict[str, Answer]]:
        """Answers per member action and role while the member holds a lock (all roles at once)."""
        member = self.roles["member"]
        lock(member, server.id)
        try:
            per_role = dict(fan_out(lambda role: (role, self._as_locked(server, state, role)),
                                    LOCKED_ROLES, len(LOCKED_ROLES)))
        finally:
            unlock(member, server.id)
        return {action.name: {role: per_role[role][action.name] for role in per_role
                              if action.name in per_role[role]}
                for action in MATRIX.refused(state) if action.role == "member"}

    def _as_locked(self, server: Server, state: str, role: str) -> dict[str, Any]:
        """The member's refused actions sent by ``role`` (the roles share FAN_OUT between them)."""
        return self._send_all(server, state, lambda a: self._locked_conn(a, role),
                              limit=FAN_OUT // len(LOCKED_ROLES))

    def _locked_conn(self, action: Action, role: str) -> Any:
        return self.roles.get(role) if action.role == "member" else None

    def _view(self, server_id: str) -> Server:
        return get_server(self.roles.get("admin") or self.roles["member"], server_id)


@pytest.fixture(scope="module")
def refusals(request: pytest.FixtureRequest, profile: Profile, module_server_factory: ServerFactory,
             boot_spec: BootSpec, reacher: Reacher, observer: Observer,
             timeouts: Timeouts) -> Iterator[Refusals]:
    """The per-state records of this module (servers are deleted as each state is done)."""
    roles = {role: optional(request, role) for role in ("admin", "reader", "other_member", "other_admin")}
    roles["member"] = observer.member
    yield Refusals(module_server_factory, boot_spec, reacher, observer, roles, profile.claims("lock"),
                   timeouts)


def _identity(server: Server) -> tuple[Any, ...]:
    """What a refused request must not change."""
    return (server.status, server.vm_state, server.task_state, server.power_state, server.host,
            server.flavor, server.image_id, server.addresses, server.data.get("locked"))


def _server_of(snap: Any) -> Server:
    """The server of a snapshot, as the admin saw it if the profile has an admin."""
    return snap.facts.get("admin_server") or snap.server


def _before(run: Scenario) -> Server:
    return _server_of(run.before)


@guarantee("MATRIX-01")
@pytest.mark.parametrize(("state", "action"), _cases())
def test_forbidden_action_is_409(refusals: Refusals, state: str, action: str) -> None:
    """An action the state forbids answers 409 (or the status the matrix documents)."""
    answer = refusals.answer(state, action)

    assert answer.status == MATRIX.expected_status(state, action), f"{action} in {state}: {answer}"


@guarantee("MATRIX-02")
@pytest.mark.parametrize(("state", "action"), _cases())
def test_refusal_leaves_server_unchanged(refusals: Refusals, state: str, action: str) -> None:
    """After a refused request the server's state, host, flavor, image and addresses are the same."""
    answer, run = refusals.answer(state, action), refusals.of(state)

    assert _identity(run.after[action]) == _identity(_before(run)), f"{action} in {state}: {answer}"
    assert _identity(_server_of(run.settled)) == _identity(_before(run)), f"{state}, after all refusals"


@guarantee("MATRIX-03")
@pytest.mark.parametrize(("state", "action"), _cases())
def test_refusal_records_no_action(refusals: Refusals, state: str, action: str) -> None:
    """A refused request adds no instance action."""
    answer, run = refusals.answer(state, action), refusals.of(state)

    assert answer.request_id, f"{action} in {state}: no request id to look the action up by"
    assert answer.request_id not in run.recorded, f"{action} in {state} recorded an action: {answer}"


@guarantee("MATRIX-04")
@pytest.mark.parametrize("state", STATES)
def test_refusals_keep_allocations(refusals: Refusals, state: str, placement: Any) -> None:
    """The refused requests of a state leave the server's allocations unchanged."""
    run = refusals.of(state)

    assert run.settled.allocations == run.before.allocations, sorted(run.answers)


@guarantee("MATRIX-05")
@requires("lock")
@pytest.mark.parametrize(("state", "action"), _cases(roles=("member",)))
def test_precedence_on_locked_server(refusals: Refusals, state: str, action: str, reader: Any,
                                     other_member: Any) -> None:
    """Locked and in a forbidding state: another project gets 404, the reader 403, the member 409."""
    answers = refusals.of(state).locked[action]

    got = {role: answers[role].status for role in PRECEDENCE}
    assert got == PRECEDENCE, {role: str(answers[role]) for role in PRECEDENCE}


@guarantee("MATRIX-06")
@pytest.mark.parametrize(("state", "action"), _cases())
def test_admin_also_refused(refusals: Refusals, state: str, action: str, admin: Any) -> None:
    """The admin too gets the refusal for a forbidden action, unlocked and locked."""
    expected, run = MATRIX.expected_status(state, action), refusals.of(state)
    answer = refusals.answer(state, action, role="admin")

    assert answer.status == expected, f"admin, unlocked: {answer}"
    if run.locked is not None and action in run.locked:
        assert run.locked[action]["admin"].status == expected, f"admin, locked: {run.locked[action]['admin']}"


@guarantee("MATRIX-07")
@pytest.mark.parametrize("state", STATES)
def test_refusals_leave_host_unchanged(refusals: Refusals, state: str, hosts: Any) -> None:
    """The refused requests of a state leave the domain's state and the instance files unchanged."""
    before, after = refusals.of(state).before, refusals.of(state).settled
    if before.host is None:
        pytest.skip(f"a {state} server has no host, so no domain to compare")

    assert before.host in hosts, f"server is on {before.host!r}, profile has hosts {sorted(hosts)}"
    assert (after.host, after.domain_state) == (before.host, before.domain_state)
    assert after.instance_files == before.instance_files


@guarantee("LOCK-04")
@requires("lock")
@pytest.mark.parametrize("state", STATES)
def test_lock_unlock_never_409(refusals: Refusals, state: str, reader: Any, other_member: Any,
                               admin: Any, other_admin: Any) -> None:
    """In every stable state lock/unlock answer 202 for members and admins, 403 reader, 404 outsider."""
    got = refusals.of(state).lock_sequence
    if isinstance(got, Exception):
        raise got

    assert got == list(LOCK_SEQUENCE), f"in {state}: (role, verb, status) in order"
