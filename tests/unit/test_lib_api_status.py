"""status_of: a refusal (4xx) is a status to assert on, a 5xx is an ERROR (it raises)."""

from __future__ import annotations

import pytest
from openstack import exceptions

from conformance.errors import classify
from conformance.lib.api import Reply, status_of


def refused(code: int) -> Reply:
    raise exceptions.HttpException(message=f"answered {code}", http_status=code)


def test_success_and_refusal_are_statuses() -> None:
    """A 2xx reply and a 4xx refusal both give their status."""
    assert status_of(lambda: Reply("POST", "/x", 202, None, "req-1", {})) == 202
    assert status_of(lambda: refused(409)) == 409


@pytest.mark.parametrize("code", [500, 503])
def test_server_error_raises_as_error(code: int) -> None:
    """A 5xx is not a refusal: it raises, and the plugin calls it an ERROR."""
    with pytest.raises(exceptions.HttpException) as info:
        status_of(lambda: refused(code))
    assert classify(info.value) == "error"
