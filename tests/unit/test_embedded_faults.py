"""Injected API faults of the embedded cloud: the spec, determinism, the middleware, control."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from conformance.embedded.control import ControlApp
from conformance.embedded.faults import FAULTS, FaultInjector, Faults, FaultSpec, parse_spec


def test_parse_spec() -> None:
    """The documented spec parses into rates, status, delay, seed and services."""
    assert parse_spec("5xx=0.05,slow=0.1:2.0,seed=7") == FaultSpec(0.05, 503, 0.1, 2.0, 7)
    assert parse_spec("5xx=0.2:502,services=nova") == FaultSpec(0.2, 502, services=("nova",))
    assert parse_spec("") == FaultSpec()


@pytest.mark.parametrize(("text", "message"), [
    ("5xx=1.5", "between 0 and 1"), ("5xx=0.1:404", "must be 5xx"), ("slow=0.1", "SECONDS"),
    ("slow=0.1:0", "SECONDS > 0"), ("jitter=1", "unknown key"), ("5xx", "KEY=VALUE"),
    ("services=glance", "some of nova+placement"), ("5xx=0.6,slow=0.6:1", "more than 1"),
    ("seed=x", "seed=x"),
])
def test_bad_spec_named(text: str, message: str) -> None:
    """A bad spec is refused with a message naming the bad part."""
    with pytest.raises(ValueError, match=message.replace("+", r"\+")):
        parse_spec(text)


def fates(faults: Faults, n: int, service: str = "nova") -> list[str | None]:
    return [faults.decide(service)[0] for _ in range(n)]


def test_same_seed_same_decisions() -> None:
    """The k-th request gets the same fate for the same seed, another seed differs; rates hold."""
    faults = Faults()
    faults.set(parse_spec("5xx=0.05,slow=0.1:1,seed=7"))
    first = fates(faults, 2000)
    faults.set(parse_spec("5xx=0.05,slow=0.1:1,seed=7"))
    assert fates(faults, 2000) == first
    faults.set(parse_spec("5xx=0.05,slow=0.1:1,seed=8"))
    assert fates(faults, 2000) != first
    assert 60 <= first.count("error") <= 140 and 140 <= first.count("slow") <= 260
    assert faults.status()["counts"]["nova"]["requests"] == 2000


def test_services_filter_and_off() -> None:
    """Only the named services are faulty; with no spec nothing is."""
    faults = Faults()
    faults.set(parse_spec("5xx=1,services=placement"))
    assert fates(faults, 5, "nova") == [None] * 5
    assert fates(faults, 5, "placement") == ["error"] * 5
    faults.set(None)
    assert fates(faults, 5, "placement") == [None] * 5


class App:
    """A WSGI app that records its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.calls += 1
        start_response("200 OK", [])
        return [b"ok"]


def serve(app: Any, method: str = "POST") -> tuple[str, bytes]:
    seen: list[str] = []
    body = b"".join(app({"REQUEST_METHOD": method, "PATH_INFO": "/v2.1/servers"},
                        lambda status, headers: seen.append(status)))
    return seen[0], body


def test_error_answers_before_the_app() -> None:
    """An injected 5xx never reaches Nova, so a refused POST acted on nothing."""
    faults, app = Faults(), App()
    faults.set(parse_spec("5xx=1:503"))
    status, body = serve(FaultInjector(app, "nova", faults))
    assert status.startswith("503") and app.calls == 0
    assert json.loads(body)["computeFault"]["code"] == 503


def test_slow_delays_then_serves() -> None:
    """A slow request is served after the delay."""
    faults, app = Faults(), App()
    faults.set(parse_spec("slow=1:0.2"))
    started = time.monotonic()
    status, _ = serve(FaultInjector(app, "placement", faults))
    assert status == "200 OK" and app.calls == 1 and time.monotonic() - started >= 0.2


def test_control_endpoint_sets_shows_and_stops() -> None:
    """POST /faults?spec= switches faults on, GET shows counters, DELETE stops; bad spec is 400."""
    control = ControlApp(cloud=None)
    try:
        status, body = control.route("POST", ["faults"], "spec=5xx%3D0.5%2Cseed%3D3")
        assert status == "200 OK" and body["spec"].startswith("5xx=0.5:503")
        FaultInjector(App(), "nova")({"REQUEST_METHOD": "GET"}, lambda *a: None)
        assert control.route("GET", ["faults"])[1]["counts"]["nova"]["requests"] == 1
        with pytest.raises(Exception, match="unknown key"):
            control.route("POST", ["faults"], "spec=boom%3D1")
        assert control.route("DELETE", ["faults"])[1]["spec"] is None
    finally:
        FAULTS.set(None)
