"""Tiny stdlib HTTP helpers for health checks and the Nova control endpoint."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


def status_code(url: str, timeout: float = 2.0) -> int | None:
    """HTTP status of ``GET url``, or None if nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            code: int = resp.status
            return code
    except urllib.error.HTTPError as exc:
        return exc.code
    except (OSError, ValueError):
        return None


def call_json(method: str, url: str, timeout: float = 60.0) -> tuple[int, Any]:
    """Send ``method url`` (no body); return (status, decoded JSON or text).

    Raises OSError if nothing answers.
    """
    req = urllib.request.Request(url, method=method, data=b"" if method != "GET" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    try:
        return status, json.loads(body or b"null")
    except ValueError:
        return status, body.decode(errors="replace")
