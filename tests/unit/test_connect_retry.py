"""Retries of the suite's connections: only idempotent methods, and a bounded number of times."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import requests

from conformance.connect import retry_idempotent


class FlakyServer:
    """A loopback HTTP server answering 503 to the first ``failures`` requests, then 200."""

    def __init__(self, failures: int):
        self.failures = failures
        self.hits: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                outer.hits.append(self.command)
                status = 503 if len(outer.hits) <= outer.failures else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_DELETE = _answer

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/x"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A requests session with the suite's retry policy (no backoff, to stay fast)."""
    sess = requests.Session()
    retry_idempotent(SimpleNamespace(session=SimpleNamespace(session=sess)), attempts=3, backoff=0)
    yield sess
    sess.close()


def test_get_retried_until_success(session: requests.Session) -> None:
    """A GET answered 503 twice is retried and succeeds on the third try."""
    server = FlakyServer(failures=2)
    assert session.get(server.url, timeout=5).status_code == 200
    assert server.hits == ["GET"] * 3


def test_get_retries_are_bounded(session: requests.Session) -> None:
    """A GET that keeps failing is tried 1 + 3 times, then its 503 is returned."""
    server = FlakyServer(failures=100)
    assert session.get(server.url, timeout=5).status_code == 503
    assert server.hits == ["GET"] * 4


@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_non_idempotent_never_retried(session: requests.Session, method: str) -> None:
    """A POST or DELETE answered 503 is sent exactly once."""
    server = FlakyServer(failures=1)
    assert session.request(method, server.url, timeout=5).status_code == 503
    assert server.hits == [method]


def test_post_connection_error_not_retried(session: requests.Session,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A POST whose connection fails raises at once (one attempt), a GET is tried 1 + 3 times."""
    import urllib3.connection

    attempts: list[str] = []
    real = urllib3.connection.HTTPConnection.connect

    def refused(self: Any) -> None:
        attempts.append("x")
        real(self)

    monkeypatch.setattr(urllib3.connection.HTTPConnection, "connect", refused)
    server = FlakyServer(failures=0)
    server.server.shutdown()
    server.server.server_close()
    with pytest.raises(requests.ConnectionError):
        session.post(server.url, timeout=5)
    assert len(attempts) == 1
    with pytest.raises(requests.ConnectionError):
        session.get(server.url, timeout=5)
    assert len(attempts) == 1 + 4
