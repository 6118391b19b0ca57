"""Evidence for reports: redacted JSON and text attached to Allure.

Every helper redacts through :func:`conformance.redact.redact` before anything
leaves the process, so passwords, tokens and keys never reach a report.
Outside an Allure-enabled pytest run, or outside any test (the session-end
leak check), the attachments are silently dropped.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import allure


def redact(text: str) -> str:
    """Redact secrets from ``text`` (identity if the redaction module is absent)."""
    try:
        from conformance import redact as _redact
    except ImportError:  # pragma: no cover - the plugin ships it
        return text
    return str(_redact.redact(text))


def to_json(data: Any) -> str:
    """Render ``data`` as stable, readable JSON (unknown types via ``str``)."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)


def attach_json(name: str, data: Any) -> None:
    """Attach ``data`` as a redacted JSON attachment called ``name``."""
    _attach(redact(to_json(data)), name, allure.attachment_type.JSON)


def attach_text(name: str, text: str) -> None:
    """Attach ``text`` as a redacted plain-text attachment called ``name``."""
    _attach(redact(text), name, allure.attachment_type.TEXT)


def _attach(body: str, name: str, kind: Any) -> None:
    # Outside any test or fixture (the session-end leak check) allure-pytest has nothing to
    # attach to and raises KeyError(None); the evidence is dropped, the call goes on.
    with contextlib.suppress(KeyError):
        allure.attach(body, name=name, attachment_type=kind)


@contextlib.contextmanager
def step(title: str) -> Iterator[None]:
    """An Allure step (shown as a collapsible block in the report)."""
    with allure.step(redact(title)):
        yield
