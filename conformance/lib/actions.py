"""Instance actions and their events (GET /servers/{id}/os-instance-actions).

Non-admins see events only from microversion 2.51, and actions of a deleted
server are readable only from 2.21; callers pass a suitable microversion (or
an admin connection) through ``microversion``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from conformance.errors import GuaranteeViolation, WaitTimeout
from conformance.lib import evidence
from conformance.lib.api import call
from conformance.lib.waiter import Polling, wait_until

EVENTS_MICROVERSION = "2.51"


def list_actions(conn: Any, server_id: str, microversion: str | None = None) -> list[dict[str, Any]]:
    """Every action recorded for the server, newest first."""
    body = call(conn, "GET", f"/servers/{server_id}/os-instance-actions", microversion=microversion).body
    return list(body["instanceActions"])


def get_action(conn: Any, server_id: str, action: str, microversion: str | None = None,
               request_id: str | None = None) -> dict[str, Any]:
    """The newest action named ``action`` (of ``request_id`` if given), with its ``events``.

    Raises GuaranteeViolation if the server has no such action.
    """
    found = [a for a in list_actions(conn, server_id, microversion) if a["action"] == action
             and request_id in (None, a["request_id"])]
    if not found:
        raise GuaranteeViolation(f"server {server_id} has no instance action {action!r}"
                                 + (f" for request {request_id}" if request_id else ""))
    newest = max(found, key=lambda a: a.get("start_time") or "")
    path = f"/servers/{server_id}/os-instance-actions/{newest['request_id']}"
    return dict(call(conn, "GET", path, microversion=microversion).body["instanceAction"])


def event_problems(detail: dict[str, Any], expected: Iterable[str]) -> list[str]:
    """What is wrong with an action's events (empty if all expected ones succeeded)."""
    events = {e["event"]: e for e in detail.get("events") or []}
    problems = [f"event {e['event']} has result {e.get('result')!r}"
                for e in events.values() if e.get("result") == "Error"]
    for name in expected:
        if name not in events:
            problems.append(f"event {name} is missing (events: {sorted(events) or 'none'})")
        elif events[name].get("result") != "Success":
            problems.append(f"event {name} has result {events[name].get('result')!r}, not 'Success'")
    return problems


def expect_action_events(conn: Any, server_id: str, action: str, events: Iterable[str], *,
                         timeout: float, poll: Polling, microversion: str | None = None,
                         request_id: str | None = None) -> dict[str, Any]:
    """Assert that ``action`` (of ``request_id`` if given) recorded each of ``events`` with result Success.

    Events finish slightly after the state change a waiter saw, so this polls
    until the events are complete; if they never are, the GuaranteeViolation
    names what is missing or failed.  Returns the action with its events.
    """
    wanted = list(events)
    seen: dict[str, Any] = {}

    def complete() -> bool:
        seen.update(get_action(conn, server_id, action, microversion, request_id))
        return not event_problems(seen, wanted)

    with contextlib.suppress(WaitTimeout):  # the assertion below says what is missing
        wait_until(complete, timeout=timeout, poll=poll, describe=f"events of action {action}")
    evidence.attach_json(f"instance action {action}", seen)
    problems = event_problems(seen, wanted)
    if problems:
        raise GuaranteeViolation(f"instance action {action!r} of server {server_id}: "
                                 + "; ".join(problems) + f"\n{evidence.to_json(seen)}")
    return seen
