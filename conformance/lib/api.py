"""Raw REST calls through an openstacksdk connection.

The suite reads servers, actions and allocations as plain JSON so that what it
asserts on is exactly what the cloud answered, and so that a failure can show
that JSON.  Every call goes through :func:`call`, which returns a
:class:`Reply` carrying the status code and the ``x-openstack-request-id``,
raises openstacksdk's ``HttpException`` for 4xx/5xx answers (see
:func:`conformance.errors.classify`), and records each state-changing call as
evidence.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from openstack import exceptions

from conformance.lib import evidence

REQUEST_ID_HEADER = "x-openstack-request-id"


@dataclasses.dataclass(frozen=True)
class Reply:
    """One HTTP answer: status, decoded body (or None) and request id."""

    method: str
    path: str
    status: int
    body: Any
    request_id: str | None
    headers: Mapping[str, str]

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status} ({self.request_id or 'no request id'})"


def call(conn: Any, method: str, path: str, *, service: str = "compute", json: Any = None,
         params: Mapping[str, Any] | None = None, microversion: str | None = None) -> Reply:
    """Send one request to ``service`` of ``conn`` and return its :class:`Reply`.

    ``microversion`` overrides the connection's default for this call only.
    Raises ``openstack.exceptions.HttpException`` (NotFoundException,
    ConflictException, ...) when the answer is 4xx or 5xx.
    """
    proxy = getattr(conn, service)
    kwargs: dict[str, Any] = {"json": json, "params": dict(params or {})}
    if microversion:
        kwargs["microversion"] = microversion
    response = proxy.request(path, method, **kwargs)
    reply = Reply(method, path, response.status_code, _body(response),
                  response.headers.get(REQUEST_ID_HEADER), dict(response.headers))
    if method != "GET":
        evidence.attach_text(f"{method} {path}", f"{reply}\n\nrequest:\n{evidence.to_json(json)}"
                             f"\n\nresponse:\n{evidence.to_json(reply.body)}")
    exceptions.raise_from_response(response, error_message=f"{method} {path}")
    return reply


def _body(response: Any) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text


def max_microversion(conn: Any, service: str = "compute") -> str | None:
    """The highest microversion ``service`` announces (None if it has none)."""
    data = getattr(conn, service).get_endpoint_data()
    version = getattr(data, "max_microversion", None)
    if not version:
        return None
    major, minor = version if isinstance(version, tuple) else str(version).split(".")
    return f"{int(major)}.{int(minor)}"


def version_tuple(version: str) -> tuple[int, int]:
    """'2.51' -> (2, 51), for comparing microversions."""
    major, minor = version.split(".")
    return int(major), int(minor)


def lower_version(a: str, b: str) -> str:
    """The lower of two microversions."""
    return a if version_tuple(a) <= version_tuple(b) else b


def pin_microversion(conn: Any, ceiling: str, service: str = "compute") -> str | None:
    """Make ``conn`` send the highest microversion both the cloud and ``ceiling`` allow.

    Sets the proxy's default microversion (raw calls and openstacksdk resource
    calls both use it) and returns it; None if the service has no microversions.
    """
    cloud_max = max_microversion(conn, service)
    if cloud_max is None:
        return None
    chosen = lower_version(cloud_max, ceiling)
    getattr(conn, service).default_microversion = chosen
    return chosen


def status_of(send: Callable[[], Reply]) -> int:
    """The HTTP status of ``send()``, whether it succeeded or raised an HttpException.

    For calls a guarantee expects to be refused (403, 409): the status is
    recorded and asserted on, instead of aborting the scenario.  A 5xx still
    raises: the cloud could not answer, which is an ERROR, not a refusal.
    """
    try:
        return send().status
    except exceptions.HttpException as exc:
        if exc.status_code is None or int(exc.status_code) >= 500:
            raise
        return int(exc.status_code)
