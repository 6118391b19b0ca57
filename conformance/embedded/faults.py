"""Injected API faults: a fraction of Nova and Placement requests fail with a 5xx or answer slowly.

``up --faults 5xx=0.05,slow=0.1:2.0,seed=7`` (or ``POST /faults?spec=...`` on
the control endpoint, ``DELETE /faults`` to stop) makes the WSGI middleware
:class:`FaultInjector`, which wraps the nova-api and Placement apps the suite
talks to, answer 5 % of requests with ``503`` before Nova sees them (so a
refused POST acted on nothing) and delay 10 % of the others by 2.0 s.

Spec keys (comma-separated, all optional):

=================  ====================================================
``5xx=RATE[:CODE]`` fraction of requests answered CODE (default 503)
``slow=RATE:SECS``  fraction of requests delayed SECS before being served
``seed=N``          the decision sequence (default 0)
``services=A+B``    which APIs: nova, placement (default both)
=================  ====================================================

Deterministic: the k-th request a service receives after the faults were set
gets the same decision for the same seed (the order of requests from parallel
workers may still differ between runs).  Nova's own calls to Placement do not
pass through here: only the API the suite sees is faulty.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

LOG = logging.getLogger(__name__)
SERVICES = ("nova", "placement")
StartResponse = Callable[..., Any]


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """What to inject: rates in [0, 1], the error status, the delay, the seed and the services."""

    error_rate: float = 0.0
    error_status: int = 503
    slow_rate: float = 0.0
    delay: float = 0.0
    seed: int = 0
    services: tuple[str, ...] = SERVICES

    def __str__(self) -> str:
        return (f"5xx={self.error_rate}:{self.error_status},slow={self.slow_rate}:{self.delay},"
                f"seed={self.seed},services={'+'.join(self.services)}")


def parse_spec(text: str) -> FaultSpec:
    """Parse ``5xx=0.05,slow=0.1:2.0,seed=7``; raises ValueError naming the bad part."""
    values: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"fault spec {part!r}: expected KEY=VALUE")
        try:
            values.update(_parse_part(key.strip(), value.strip()))
        except ValueError as exc:
            raise ValueError(f"fault spec {part!r}: {exc}") from None
    spec = FaultSpec(**values)
    if spec.error_rate + spec.slow_rate > 1:
        raise ValueError("fault spec: 5xx and slow rates add up to more than 1")
    return spec


def _parse_part(key: str, value: str) -> dict[str, Any]:
    if key == "5xx":
        rate, _, status = value.partition(":")
        code = int(status) if status else 503
        if not 500 <= code <= 599:
            raise ValueError("the status must be 5xx")
        return {"error_rate": _rate(rate), "error_status": code}
    if key == "slow":
        rate, sep, delay = value.partition(":")
        if not sep or float(delay) <= 0:
            raise ValueError("expected slow=RATE:SECONDS with SECONDS > 0")
        return {"slow_rate": _rate(rate), "delay": float(delay)}
    if key == "seed":
        return {"seed": int(value)}
    if key == "services":
        names = tuple(s for s in value.split("+") if s)
        unknown = [s for s in names if s not in SERVICES]
        if unknown or not names:
            raise ValueError(f"services must be some of {'+'.join(SERVICES)}")
        return {"services": names}
    raise ValueError("unknown key; use 5xx, slow, seed or services")


def _rate(text: str) -> float:
    rate = float(text)
    if not 0 <= rate <= 1:
        raise ValueError("a rate is a fraction between 0 and 1")
    return rate


class Faults:
    """The process-wide fault setting and its counters (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spec: FaultSpec | None = None
        self._rngs: dict[str, random.Random] = {}
        self.counts: dict[str, dict[str, int]] = {}

    def set(self, spec: FaultSpec | None) -> None:
        """Start injecting ``spec`` (sequences and counters restart), or stop (None)."""
        with self._lock:
            self.spec = spec
            self._rngs = {s: random.Random(f"{spec.seed}:{s}") for s in SERVICES} if spec else {}
            if spec is not None or not self.counts:  # stopping keeps the last counts
                self.counts = {s: {"requests": 0, "errors": 0, "slow": 0} for s in SERVICES}
        LOG.info("faults: %s", spec or "off")

    def decide(self, service: str) -> tuple[str | None, FaultSpec | None]:
        """The fate of the next request to ``service``: 'error', 'slow' or None."""
        with self._lock:
            spec = self.spec
            if spec is None or service not in spec.services:
                return None, spec
            draw = self._rngs[service].random()
            counts = self.counts[service]
            counts["requests"] += 1
            fate = ("error" if draw < spec.error_rate else
                    "slow" if draw < spec.error_rate + spec.slow_rate else None)
            if fate:
                counts["errors" if fate == "error" else "slow"] += 1
            return fate, spec

    def status(self) -> dict[str, Any]:
        """The current spec and counters (for the control endpoint)."""
        with self._lock:
            return {"spec": str(self.spec) if self.spec else None,
                    "counts": {s: dict(c) for s, c in self.counts.items()}}


FAULTS = Faults()


class FaultInjector:
    """WSGI middleware: answer a request with a 5xx, or delay it, as :data:`FAULTS` decides."""

    def __init__(self, app: Any, service: str, faults: Faults = FAULTS):
        self.app, self.service, self.faults = app, service, faults

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        fate, spec = self.faults.decide(self.service)
        if fate is None or spec is None:
            return self.app(environ, start_response)
        request = f"{environ.get('REQUEST_METHOD')} {environ.get('PATH_INFO')}"
        if fate == "slow":
            LOG.info("fault: %s delayed %.1fs (%s)", request, spec.delay, self.service)
            time.sleep(spec.delay)
            return self.app(environ, start_response)
        LOG.info("fault: %s answered %d (%s)", request, spec.error_status, self.service)
        message = "injected fault (embedded cloud --faults)"
        body = json.dumps(
            {"computeFault": {"code": spec.error_status, "message": message}} if self.service == "nova"
            else {"errors": [{"status": spec.error_status, "title": "Injected Fault", "detail": message}]}
        ).encode()
        start_response(f"{spec.error_status} Injected Fault",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                        ("x-openstack-request-id", "req-injected-fault")])
        return [body]
