"""The secret registry and the patterns masked without registration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import redact


@pytest.fixture(autouse=True)
def empty_registry() -> Iterator[None]:
    redact.clear()
    yield
    redact.clear()


def test_registered_secret_masked() -> None:
    """A registered secret is masked wherever it appears, also JSON-escaped."""
    redact.register('pa"ss\\word')
    assert redact.redact('x pa"ss\\word y') == f"x {redact.MASK} y"
    assert redact.redact('{"p": "pa\\"ss\\\\word"}') == f'{{"p": "{redact.MASK}"}}'


def test_short_values_not_registered() -> None:
    """Values too short to be secrets would mask ordinary words, so they are ignored."""
    redact.register("ab")
    redact.register(None)
    assert redact.redact("ab cd") == "ab cd"


@pytest.mark.parametrize("text", [
    "X-Auth-Token: gAAAAABlongtokenvalue",
    '{"X-Subject-Token": "gAAAAABlongtokenvalue"}',
    '{"password": "hunter2hunter2"}',
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----",
])
def test_patterns_masked_without_registration(text: str) -> None:
    """Token headers, password JSON and PEM private keys are masked even if unregistered."""
    cleaned = redact.redact(text)
    assert redact.MASK in cleaned
    assert "gAAAAABlongtokenvalue" not in cleaned and "hunter2" not in cleaned
    assert "b3BlbnNzaC1rZXk" not in cleaned


def test_redact_data_and_bytes() -> None:
    """Nested data and UTF-8 bytes are redacted; binary bytes pass unchanged."""
    redact.register("s3cr3t-value")
    assert redact.redact_data({"a": ["s3cr3t-value", 1]}) == {"a": [redact.MASK, 1]}
    assert redact.redact_bytes(b"is s3cr3t-value") == f"is {redact.MASK}".encode()
    assert redact.redact_bytes(b"\xff\xfe") == b"\xff\xfe"


def test_secrets_from_clouds_yaml(tmp_path: Path) -> None:
    """Passwords, tokens and secrets of the named clouds are collected, others not."""
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text("clouds:\n  a:\n    auth: {username: u, password: pw-a-123,"
                      " application_credential_secret: acs-456}\n"
                      "  b:\n    auth: {password: pw-b-789}\n")
    secure = tmp_path / "secure.yaml"
    secure.write_text("clouds:\n  a:\n    auth: {token: tok-000}\n")
    found = redact.secrets_from_clouds_yaml([clouds, secure, tmp_path / "missing.yaml"], ["a"])
    assert sorted(found) == ["acs-456", "pw-a-123", "tok-000"]


def test_secrets_from_key_file_and_environment(tmp_path: Path) -> None:
    """A key file's contents and body lines, and OS_PASSWORD-like variables, are secrets."""
    key = tmp_path / "id"
    key.write_text("-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQ\n-----END KEY-----\n")
    found = redact.secrets_from_key_file(key)
    assert "AAAAB3NzaC1yc2EAAAADAQABAAABAQ" in found
    assert redact.secrets_from_environment({"OS_PASSWORD": "x1", "OS_USERNAME": "u"}) == ["x1"]
