"""Keep secrets out of every report the suite writes.

A process-wide registry holds the secrets of this run (passwords and tokens
from clouds.yaml, private key contents, tokens issued during the run).  The
plugin registers them at session start; every writer of evidence (Allure
attachments and results, JUnit, verdict.json) passes text through
:func:`redact`.  Well-known secret shapes (auth token headers, PEM private key
blocks, ``"password": ...`` pairs) are masked even when never registered.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

MASK = "***REDACTED***"

# Shorter values (e.g. "a") would mask ordinary words all over a report.
MIN_SECRET_LENGTH = 4

# Keys of a clouds.yaml `auth:` section (or anywhere below a cloud) whose value is secret.
SECRET_KEY = re.compile(r"(password|secret|token|passcode|api_key|private_key)", re.IGNORECASE)

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?-----END \1PRIVATE KEY-----", re.DOTALL),
     MASK),
    (re.compile(r"(?i)\b(x-(?:auth|subject|service)-token)([\"']?\s*[:=]\s*[\"']?)([^\s\"',}]+)"),
     rf"\1\2{MASK}"),
    (re.compile(r"(?i)([\"'](?:password|passwd|secret|token|application_credential_secret)[\"']"
                r"\s*:\s*[\"'])([^\"']+)"),
     rf"\1{MASK}"),
)

_lock = threading.Lock()
_secrets: set[str] = set()


def register(secret: str | None) -> None:
    """Add a secret to the registry; every later :func:`redact` masks it.

    Also registers the JSON-escaped form, so the secret is masked inside
    serialised JSON too.  Values shorter than MIN_SECRET_LENGTH are ignored.
    """
    if not secret or len(secret) < MIN_SECRET_LENGTH:
        return
    escaped = json.dumps(secret)[1:-1]
    with _lock:
        _secrets.add(secret)
        _secrets.add(escaped)


def register_many(secrets: Iterable[str | None]) -> None:
    """Register each of several secrets (see :func:`register`)."""
    for secret in secrets:
        register(secret)


def clear() -> None:
    """Forget every registered secret (used between test sessions)."""
    with _lock:
        _secrets.clear()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and known secret shape masked."""
    if not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_bytes(body: bytes) -> bytes:
    """Redact a byte string if it is UTF-8 text; binary data is returned unchanged."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return body
    cleaned = redact(text)
    return body if cleaned == text else cleaned.encode("utf-8")


def redact_data(value: Any) -> Any:
    """Redact every string inside nested dicts, lists and tuples (e.g. a server's JSON)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_data(v) for v in value)
    return value


def clouds_yaml_candidates(explicit: Path | None) -> list[Path]:
    """The clouds.yaml (and secure.yaml) files openstacksdk would read, in its order."""
    if explicit is not None:
        return [explicit, explicit.with_name("secure.yaml")]
    dirs = [Path.cwd(), Path.home() / ".config" / "openstack", Path("/etc/openstack")]
    files = [d / name for d in dirs for name in ("clouds.yaml", "secure.yaml")]
    env = os.environ.get("OS_CLIENT_CONFIG_FILE")
    return [Path(env), *files] if env else files


def secrets_from_clouds_yaml(files: Iterable[Path], clouds: Iterable[str]) -> list[str]:
    """Collect the secret values of the named clouds from clouds.yaml-style files.

    Missing or unreadable files are ignored: this only feeds the registry.
    """
    wanted = set(clouds)
    found: list[str] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        for name, cloud in (data.get("clouds") or {}).items():
            if name in wanted:
                found.extend(_secret_values(cloud))
    return found


def secrets_from_environment(environ: Mapping[str, str] | None = None) -> list[str]:
    """Secret OS_* variables (OS_PASSWORD, OS_TOKEN, ...) from the environment."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if k.startswith("OS_") and SECRET_KEY.search(k)]


def secrets_from_key_file(path: Path) -> list[str]:
    """The contents of a private key file and each of its body lines."""
    try:
        content = path.read_text()
    except (OSError, UnicodeDecodeError):
        return []
    lines = [ln.strip() for ln in content.splitlines() if ln.strip() and not ln.startswith("-----")]
    return [content.strip(), *[ln for ln in lines if len(ln) >= 16]]


def _secret_values(node: Any, secret: bool = False) -> list[str]:
    if isinstance(node, Mapping):
        out: list[str] = []
        for key, value in node.items():
            out.extend(_secret_values(value, secret or bool(SECRET_KEY.search(str(key)))))
        return out
    if isinstance(node, list):
        return [s for item in node for s in _secret_values(item, secret)]
    if secret and isinstance(node, str | int) and not isinstance(node, bool):
        return [str(node)]
    return []
