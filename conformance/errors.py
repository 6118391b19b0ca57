"""Exception types that decide a test's outcome.

FAIL  = the cloud broke a guarantee: AssertionError and its subclasses here
        (GuaranteeViolation, ServerFault, TraceViolation), and an unexpected
        4xx answer to a documented call.
ERROR = the check could not run: InfraError and its subclasses (WaitTimeout,
        HostUnreachable, HostCommandError, CloudAccessError), HTTP 5xx, connection failures,
        authentication failures, and any other exception (a suite bug).

:func:`classify` is the single place that maps an exception to an outcome.
"""

from __future__ import annotations

from typing import Any, Literal

Outcome = Literal["failed", "error"]


class GuaranteeViolation(AssertionError):
    """A guarantee's assertion was broken by the cloud."""


class ServerFault(GuaranteeViolation):
    """A server went to ERROR while an operation was expected to succeed."""


class TraceViolation(GuaranteeViolation):
    """Observed transitions left the operation's declared state machine."""


class InfraError(Exception):
    """The suite or the cloud could not run the check (not a verdict)."""


class WaitTimeout(InfraError):
    """A wait ran out of its named timeout; carries the last seen state."""

    def __init__(self, message: str, last: Any = None, history: list[Any] | None = None):
        super().__init__(message)
        self.last = last
        self.history = history or []


class HostUnreachable(InfraError):
    """SSH to a hypervisor host failed (connect, auth, host key)."""


class CloudAccessError(InfraError):
    """Keystone could not be reached or refused the credentials of a clouds.yaml cloud."""


class HostCommandError(InfraError):
    """A host command that must succeed did not; carries the whole result."""


def classify(exc: BaseException) -> Outcome:
    """Return 'failed' for a broken guarantee, 'error' for anything else."""
    if isinstance(exc, InfraError):
        return "error"
    if isinstance(exc, AssertionError):
        return "failed"
    status = _http_status(exc)
    if status is not None and 400 <= status < 500 and status != 401:
        return "failed"
    return "error"


def _http_status(exc: BaseException) -> int | None:
    try:
        from openstack import exceptions as sdk_exc
    except ImportError:  # pragma: no cover - openstacksdk is a dependency
        return None
    if isinstance(exc, sdk_exc.HttpException):
        code = getattr(exc, "status_code", None)
        return int(code) if code else None
    return None
