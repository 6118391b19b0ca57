"""Stable server states: the state x action table and how each state is reached.

``conformance/matrix.yaml`` is the one table of which server actions each
stable state forbids (:func:`load_matrix`).  :data:`REACH` says, as data, how
a booted ACTIVE server is brought into each state, and :class:`Reacher` does
it, raising :class:`Unreachable` (a skip, with its reason) when the cloud or
the caller's roles and capabilities cannot get there.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import yaml
from openstack import exceptions

from conformance.errors import ServerFault
from conformance.lib import evidence
from conformance.lib.api import Reply, call
from conformance.lib.resources import BootSpec, ServerFactory
from conformance.lib.servers import SRV, Server, delete_server, get_server, server_action
from conformance.lib.waiter import Polling, Progress, wait_for_server, wait_until

MATRIX_PATH = Path(__file__).resolve().parents[1] / "matrix.yaml"
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


class Unreachable(Exception):
    """The state cannot be reached here; the message is the skip reason."""


@dataclasses.dataclass(frozen=True)
class Action:
    """One state-gated server action of the matrix."""

    name: str
    body: Any
    role: str
    allowed_vm_states: frozenset[str]
    min_microversion: str | None = None

    def __str__(self) -> str:
        return self.name


@dataclasses.dataclass(frozen=True)
class State:
    """One stable state: its status, vm_state, capability and the answers that are not 409."""

    name: str
    vm_state: str
    capability: str | None
    reach: str
    not_409: Mapping[str, int]


@dataclasses.dataclass(frozen=True)
class Matrix:
    """The state x action table."""

    actions: Mapping[str, Action]
    states: Mapping[str, State]

    def refused(self, state: str) -> list[Action]:
        """Every action the state's vm_state forbids (409 expected, or its not_409 status)."""
        vm_state = self.states[state].vm_state
        return [a for a in self.actions.values() if vm_state not in a.allowed_vm_states]

    def expected_status(self, state: str, action: str) -> int:
        return self.states[state].not_409.get(action, 409)


@functools.cache
def load_matrix(path: Path = MATRIX_PATH) -> Matrix:
    """Read the state x action table (once per process: several suite modules read it at import)."""
    data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    actions = {name: Action(name, a["body"], a["role"], frozenset(a["allowed_vm_states"]),
                            a.get("min_microversion"))
               for name, a in data["actions"].items()}
    states = {name: State(name, s["vm_state"], s.get("capability"), s["reach"],
                          {n["action"]: int(n["status"]) for n in s.get("not_409") or []})
              for name, s in data["states"].items()}
    return Matrix(actions, states)


def fill(body: Any, values: Mapping[str, str | None]) -> Any:
    """``body`` with every ``${name}`` replaced by ``values[name]``."""
    if isinstance(body, dict):
        return {k: fill(v, values) for k, v in body.items()}
    if isinstance(body, list):
        return [fill(v, values) for v in body]
    if isinstance(body, str) and (match := _PLACEHOLDER.fullmatch(body)):
        value = values.get(match.group(1))
        if value is None:
            raise Unreachable(f"no value for {body} (see the profile's resources)")
        return value
    return body


def send(conn: Any, server_id: str, body: Any, microversion: str | None = None) -> Reply:
    """POST ``body`` (one action key) to /servers/{id}/action, or DELETE when body is "DELETE"."""
    if body == "DELETE":
        return delete_server(conn, server_id)
    (action, value), = body.items()
    return server_action(conn, server_id, action, value, microversion=microversion)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a request got: the status, the error message (if any) and the request id."""

    status: int
    message: str = ""
    request_id: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.message}".strip() + f" ({self.request_id or 'no request id'})"


def attempt(conn: Any, server_id: str, body: Any, microversion: str | None = None) -> Answer:
    """Send one request and return its answer, 2xx or 4xx (a 5xx still raises: an ERROR)."""
    return answer_of(lambda: send(conn, server_id, body, microversion))


def answer_of(request: Callable[[], Reply]) -> Answer:
    """Run ``request`` and return its answer, 2xx or 4xx (a 5xx still raises)."""
    try:
        reply = request()
    except exceptions.HttpException as exc:
        if exc.status_code is None or exc.status_code >= 500:
            raise
        return Answer(int(exc.status_code), str(exc.details or exc.message), exc.request_id)
    return Answer(reply.status, "", reply.request_id)


@dataclasses.dataclass(frozen=True)
class Step:
    """One move: ``role`` sends ``body``, then the server settles in one of ``until``."""

    role: str
    body: Any
    until: tuple[str, ...]
    timeout: str = "server_action"  # the name of the profile timeout to wait with
    capability: str | None = None  # needed only if the step is not already done
    host_gone: bool = False  # also wait (as the admin) for OS-EXT-SRV-ATTR:host to be null


REACH: dict[str, tuple[Step, ...]] = {
    "ACTIVE": (),
    "SHUTOFF": (Step("member", {"os-stop": None}, ("SHUTOFF",)),),
    "PAUSED": (Step("member", {"pause": None}, ("PAUSED",)),),
    "SUSPENDED": (Step("member", {"suspend": None}, ("SUSPENDED",)),),
    "RESCUE": (Step("member", {"rescue": None}, ("RESCUE",)),),
    "SHELVED": (Step("member", {"shelve": None}, ("SHELVED", "SHELVED_OFFLOADED")),),
    "SHELVED_OFFLOADED": (Step("member", {"shelve": None}, ("SHELVED", "SHELVED_OFFLOADED")),
                          Step("admin", {"shelveOffload": None}, ("SHELVED_OFFLOADED",),
                               capability="shelve_offload", host_gone=True)),
    "VERIFY_RESIZE": (Step("member", {"resize": {"flavorRef": "${flavor_large}"}}, ("VERIFY_RESIZE",),
                           timeout="migration"),),
    "SOFT_DELETED": (Step("member", "DELETE", ("SOFT_DELETED",)),),
    "ERROR": (Step("admin", {"os-resetState": {"state": "error"}}, ("ERROR",)),),
}


class Reacher:
    """Boots servers and brings them into a stable state.

    ``conns`` maps roles (member, admin) to connections (None: absent);
    ``values`` fills placeholders (flavor_large, ...); ``timeouts`` has the
    attributes the steps name.
    """

    def __init__(self, conns: Mapping[str, Any], values: Mapping[str, str | None],
                 capabilities: Collection[str], timeouts: Any, poll: Polling,
                 progress: Progress | None = None):
        self.conns, self.values, self.capabilities = conns, values, capabilities
        self.timeouts, self.poll, self.progress = timeouts, poll, progress

    def boot(self, factory: ServerFactory, spec: BootSpec, state: str, suffix: str) -> Server:
        """Boot a server with ``factory`` and bring it into ``state`` (raises Unreachable)."""
        created = factory.create_server(suffix, **spec.kwargs())
        wait_for_server(factory.conn, created.id, status="ACTIVE", timeout=self.timeouts.server_build,
                        poll=self.poll, progress=self.progress)
        return self.reach(created.id, state)

    def reach(self, server_id: str, state: str) -> Server:
        """Bring the ACTIVE server into ``state``; returns the admin's view (else the member's)."""
        for step in REACH[state]:
            self._move(server_id, state, step)
        server = get_server(self.conns.get("admin") or self.conns["member"], server_id)
        if server.status != state:
            raise Unreachable(f"{state} is not a stable state on this cloud: the server went on to "
                              f"{server.status} (e.g. shelved_offload_time = 0 offloads at once)")
        return server

    def _move(self, server_id: str, state: str, step: Step) -> None:
        conn = self.conns.get(step.role)
        if conn is None:
            raise Unreachable(f"reaching {state} needs the {step.role} role, which the profile lacks")
        if get_server(conn, server_id).status not in step.until:
            if step.capability and step.capability not in self.capabilities:
                raise Unreachable(f"reaching {state} needs capability {step.capability!r}")
            send(conn, server_id, fill(step.body, self.values))
        self._settle(conn, server_id, step)

    def _settle(self, conn: Any, server_id: str, step: Step) -> None:
        seen: list[Server] = []

        def settled() -> bool:
            seen[:] = [get_server(conn, server_id)]
            server = seen[0]
            if server.status == "ERROR" and "ERROR" not in step.until:
                raise ServerFault(f"server {server_id} went to ERROR while waiting for "
                                  f"{'/'.join(step.until)}\nfault: {evidence.to_json(server.fault)}")
            gone = not step.host_gone or server.data.get(SRV + "host") is None
            return server.status in step.until and server.task_state is None and gone

        wait_until(settled, timeout=getattr(self.timeouts, step.timeout), poll=self.poll,
                   describe=f"server {server_id} to be {'/'.join(step.until)}", progress=self.progress,
                   state=lambda: repr(seen[0]) if seen else "")


def lock(conn: Any, server_id: str, reason: str | None = None) -> Reply:
    """POST lock (with ``locked_reason`` when given; needs microversion 2.73)."""
    body = {"locked_reason": reason} if reason is not None else None
    return server_action(conn, server_id, "lock", body)


def unlock(conn: Any, server_id: str) -> Reply:
    return server_action(conn, server_id, "unlock")


def action_ids(conn: Any, server_id: str) -> list[str]:
    """The request ids of every instance action of the server."""
    body = call(conn, "GET", f"/servers/{server_id}/os-instance-actions").body
    return [a["request_id"] for a in body["instanceActions"]]
