"""A fake openstacksdk connection: proxies that answer from a route table."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict

Handler = Callable[[dict[str, Any]], tuple[int, Any]]


def response(status: int, body: Any = None, request_id: str = "req-fake") -> requests.Response:
    """A real requests.Response with a JSON body (or none)."""
    resp = requests.Response()
    resp.status_code = status
    resp._content = b"" if body is None else json.dumps(body).encode()
    resp.headers = CaseInsensitiveDict({"content-type": "application/json",
                                        "x-openstack-request-id": request_id})
    resp.reason = "fake"
    resp.url = "http://fake"
    return resp


class FakeProxy:
    """Answers ``request(path, method, ...)`` from ``routes[(method, path)]``.

    A route is a handler taking the call's keyword arguments and returning
    (status, body), or a list of (status, body) pairs consumed in order (the
    last one repeats).
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.default_microversion: str | None = None

    def request(self, path: str, method: str, **kwargs: Any) -> requests.Response:
        self.calls.append((method, path, kwargs))
        route = self.routes.get((method, path))
        if route is None:
            return response(404, {"itemNotFound": {"message": f"no route {method} {path}"}})
        if callable(route):
            status, body = route(kwargs)
        else:
            status, body = route.pop(0) if len(route) > 1 else route[0]
        return response(status, body)


class FakeConn:
    def __init__(self) -> None:
        self.compute, self.placement, self.image = FakeProxy(), FakeProxy(), FakeProxy()

    def has_service(self, name: str) -> bool:
        return True


def server(status: str = "ACTIVE", task: str | None = None, power: int = 1, vm: str | None = None,
           sid: str = "s1", attrs: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A server body as GET /servers/{id} returns it (``attrs``/``extra``: more keys)."""
    extra.update(attrs or {})
    data = {"id": sid, "name": "cft-x", "status": status, "OS-EXT-STS:vm_state": vm or status.lower(),
            "OS-EXT-STS:task_state": task, "OS-EXT-STS:power_state": power, **extra}
    return {"server": data}


class FakeClock:
    """A clock that advances only when slept."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
