"""Look for the profile's secrets in what a run wrote (reports/, logs): the count must be 0.

:func:`collect` gathers every secret a run could leak: the secret values of
each role's cloud in clouds.yaml (and secure.yaml: passwords, tokens,
application-credential secrets), secret ``OS_*`` variables, and the contents
of every SSH private key file the profile names.  :func:`scan` reads every
file under the given directories as bytes and reports where a secret occurs
(verbatim or JSON-escaped), plus anything shaped like an issued Keystone token
or a private key block, which no report may carry either.

A finding names the file and the secret's origin, never the secret itself.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from conformance import redact
from conformance.profile import Profile

# Shorter secrets would match ordinary text; they are counted as unscannable instead.
MIN_SCAN_LENGTH = 6

# Values that are secrets by shape, whoever issued them.
SHAPES: dict[str, re.Pattern[bytes]] = {
    # a whole url-safe base64 word: not a stretch of a larger base64 blob (e.g. an inlined image)
    "fernet token": re.compile(rb"(?<![A-Za-z0-9+/=_\-])gAAAAAB[A-Za-z0-9_\-]{80,400}={0,2}"
                               rb"(?![A-Za-z0-9+/=_\-])"),
    "private key block": re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----"),
}


@dataclasses.dataclass(frozen=True)
class Secret:
    """One secret value and where it comes from (e.g. ``clouds.yaml: clouds.x.auth.password``)."""

    origin: str
    value: str = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Finding:
    """A secret (or a secret-shaped value) found in a file."""

    path: Path
    origin: str
    count: int

    def __str__(self) -> str:
        return f"{self.path}: {self.origin} ({self.count}x)"


def collect(profile: Profile, environ: Mapping[str, str] | None = None) -> list[Secret]:
    """Every secret of the profile: its roles' clouds, OS_* variables and SSH private keys."""
    from conformance.connect import role_clouds

    clouds = set(role_clouds(profile).values())
    found: list[Secret] = []
    for path in redact.clouds_yaml_candidates(profile.clouds_yaml):
        found += _from_clouds_file(path, clouds)
    found += [Secret("environment OS_* secret", v) for v in redact.secrets_from_environment(environ)]
    hosts = {**profile.hosts, **({"controller": profile.controller} if profile.controller else {})}
    for name, host in hosts.items():
        if host.key_file is not None:
            found += [Secret(f"{host.key_file} (private key of {name})", v)
                      for v in redact.secrets_from_key_file(host.key_file)]
    return _unique(found)


def _from_clouds_file(path: Path, clouds: set[str]) -> list[Secret]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return []
    entries = data.get("clouds") if isinstance(data, dict) else None
    if not isinstance(entries, dict):
        return []
    return [Secret(f"{path}: {key}", value) for name, cloud in entries.items() if name in clouds
            for key, value in _secret_items(cloud, f"clouds.{name}")]


def _secret_items(node: Any, where: str, secret: bool = False) -> list[tuple[str, str]]:
    if isinstance(node, Mapping):
        return [item for key, value in node.items()
                for item in _secret_items(value, f"{where}.{key}",
                                          secret or bool(redact.SECRET_KEY.search(str(key))))]
    if isinstance(node, list):
        return [item for i, value in enumerate(node)
                for item in _secret_items(value, f"{where}[{i}]", secret)]
    if secret and isinstance(node, str | int) and not isinstance(node, bool):
        return [(where, str(node))]
    return []


def _unique(secrets: Iterable[Secret]) -> list[Secret]:
    seen: dict[str, Secret] = {}
    for secret in secrets:
        seen.setdefault(secret.value, secret)
    return list(seen.values())


def scannable(secrets: Iterable[Secret]) -> tuple[list[Secret], list[Secret]]:
    """Split secrets into those long enough to scan for and those too short."""
    items = list(secrets)
    return ([s for s in items if len(s.value) >= MIN_SCAN_LENGTH],
            [s for s in items if len(s.value) < MIN_SCAN_LENGTH])


def _needles(secret: Secret) -> set[bytes]:
    """The byte forms a secret takes in a report: verbatim and JSON-escaped."""
    return {secret.value.encode(), json.dumps(secret.value)[1:-1].encode()}


def scan_bytes(data: bytes, secrets: Iterable[Secret]) -> dict[str, int]:
    """Occurrences per origin of each secret and each secret shape in ``data``."""
    hits: dict[str, int] = {}
    for secret in secrets:
        count = max(data.count(needle) for needle in _needles(secret))
        if count:
            hits[secret.origin] = hits.get(secret.origin, 0) + count
    for shape, pattern in SHAPES.items():
        count = len(pattern.findall(data))
        if count:
            hits[f"{shape} (by shape)"] = count
    return hits


def scan(roots: Iterable[Path], secrets: Iterable[Secret]) -> tuple[list[Finding], int]:
    """Scan every file below ``roots``; returns the findings and the number of files read."""
    wanted, _ = scannable(secrets)
    findings: list[Finding] = []
    files = 0
    for root in roots:
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                continue
            files += 1
            findings += [Finding(path, origin, n) for origin, n in scan_bytes(data, wanted).items()]
    return findings, files
