"""The typed deployment profile: what a cloud claims and how to reach it.

One :class:`Profile` object is loaded per run and handed to tests as a
fixture; nothing else reads the YAML.  Every model forbids unknown keys, so a
typo is an error, and :func:`load_profile` turns validation errors into a
:class:`ProfileError` that names the file, the key and the fix.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from conformance.capabilities import CAPABILITIES


class ProfileError(Exception):
    """A profile (or a file it names) is unusable; no cloud call was made."""

    def __init__(self, file: str | Path, key: str, problem: str, fix: str):
        self.file, self.key, self.problem, self.fix = str(file), key, problem, fix
        super().__init__(f"{file}: {key}: {problem}. Fix: {fix}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Roles(_Model):
    """clouds.yaml cloud names per role; only `member` is mandatory."""

    member: str
    admin: str | None = None
    reader: str | None = None
    other_member: str | None = None
    other_admin: str | None = None


class Resources(_Model):
    """Names or ids of what the suite boots with."""

    image: str
    image_alt: str | None = None
    flavor_small: str
    flavor_large: str | None = None
    network: str = Field(description="network id or name, or 'none' / 'auto'")


class HostLogs(_Model):
    nova_compute: str | None = None
    nova_api: str | None = None


class Host(_Model):
    """How to reach one hypervisor (or the controller) over SSH."""

    address: str
    port: int = 22
    user: str = "root"
    key_file: Path | None = None
    known_hosts: Path | None = None
    strict_host_key_checking: bool = True
    jump_host: str | None = Field(None, description="user@host[:port] of a bastion")
    command_prefix: str = Field("", description="e.g. 'sudo' or 'docker exec nova_libvirt'")
    instances_path: str = "/var/lib/nova/instances"
    logs: HostLogs = HostLogs()
    hypervisor_hostname: str | None = None
    connect_timeout: float = 10.0


class HostControl(_Model):
    """How the suite stops, starts and fences a compute service."""

    method: Literal["none", "embedded", "ssh"] = "none"
    control_url: str | None = None
    stop_command: str | None = None
    start_command: str | None = None


class Timeouts(_Model):
    """Named timeouts in seconds; tests never use literal ones."""

    api_call: float = 30
    server_build: float = 120
    server_action: float = 120
    server_delete: float = 120
    snapshot: float = 300
    migration: float = 300
    host_command: float = 30
    cleanup: float = 120
    host_lease: float = 900  # waiting for exclusive hosts: other tests' leases and servers
    # Effects that follow an operation's end state: its instance-action events finishing, Placement
    # allocations moving or going, host files cleaned up, a migration record's final status, log
    # lines. Waited for only after the end state was seen, so a defect that never produces them
    # costs this long (not server_action) before the guarantee FAILs.
    settle: float = 60


class Polling(_Model):
    initial_interval: float = 0.2
    max_interval: float = 2.0
    backoff: float = 1.5


class Concurrency(_Model):
    max_servers: int = Field(4, ge=1)


PolicyEra = Literal["srbac-2023.1", "srbac-2025.2"]


class Profile(_Model):
    """One deployment under test."""

    name: str
    description: str = ""
    clouds_yaml: Path | None = None
    roles: Roles
    resources: Resources
    capabilities: list[str] = []
    policy_era: PolicyEra = "srbac-2025.2"
    hosts: dict[str, Host] = {}
    controller: Host | None = None
    host_control: HostControl = HostControl()
    timeouts: Timeouts = Timeouts()
    polling: Polling = Polling()
    concurrency: Concurrency = Concurrency()
    source: Path | None = None
    sha256: str | None = None

    @field_validator("capabilities")
    @classmethod
    def _known_capabilities(cls, value: list[str]) -> list[str]:
        unknown = [c for c in value if c not in CAPABILITIES]
        if unknown:
            raise ValueError(f"unknown capability {unknown[0]!r}")
        return value

    def claims(self, capability: str) -> bool:
        return capability in self.capabilities


def load_profile(path: str | Path) -> Profile:
    """Load and validate a profile YAML file.

    Relative paths inside it (clouds_yaml, key files, known_hosts) are taken
    relative to the profile's directory, and the files they name must exist.
    Raises ProfileError naming the file, the offending key and the fix.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ProfileError(path, "-", f"cannot read the profile ({exc.strerror})",
                           "pass an existing file with --profile") from None
    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ProfileError(path, "-", yaml_problem(exc), "fix the YAML syntax") from None
    if not isinstance(data, dict):
        raise ProfileError(path, "-", "the top level is not a mapping",
                           "start the file with keys such as `name:` and `roles:`")
    data = {**data, "source": path.resolve(), "sha256": hashlib.sha256(raw).hexdigest()}
    try:
        profile = Profile.model_validate(_resolve_paths(data, path.resolve().parent))
    except ValidationError as exc:
        raise _first_error(path, exc) from None
    _check_files(path, profile)
    return profile


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML syntax error in one line: where and what."""
    mark = getattr(exc, "problem_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    return f"not valid YAML{where} ({what})"


def _resolve_paths(data: dict[str, Any], base: Path) -> dict[str, Any]:
    def fix(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = os.path.expanduser(value)
        return value if value.startswith("/") else str(base / value)

    if "clouds_yaml" in data:
        data["clouds_yaml"] = fix(data["clouds_yaml"])
    hosts = data.get("hosts")
    for host in [*(hosts.values() if isinstance(hosts, dict) else []), data.get("controller")]:
        if isinstance(host, dict):
            for key in ("key_file", "known_hosts"):
                if key in host:
                    host[key] = fix(host[key])
    return data


def _first_error(path: Path, exc: ValidationError) -> ProfileError:
    err = exc.errors()[0]
    key = ".".join(str(p) for p in err["loc"]) or "-"
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden" and key.startswith("roles."):
        known = ", ".join(Roles.model_fields)
        return ProfileError(path, key, "unknown role", f"use one of: {known}")
    if kind == "extra_forbidden":
        return ProfileError(path, key, "unknown key", "remove it or correct its spelling")
    if kind == "missing":
        return ProfileError(path, key, "required key is missing", f"add `{key}:` to the profile")
    if "unknown capability" in msg:
        known = ", ".join(sorted(CAPABILITIES))
        return ProfileError(path, key, msg.removeprefix("Value error, "),
                            f"use one of: {known}")
    expected = _EXPECTED.get(kind)
    fix = f"write {expected} (see profiles/README.md)" if expected else \
        "correct the value (see profiles/README.md)"
    return ProfileError(path, key, msg, fix)


# What a value of each pydantic error type must be instead, for the fix of a wrong type.
_EXPECTED = {
    "float_parsing": "a number", "float_type": "a number", "int_parsing": "an integer",
    "int_type": "an integer", "int_from_float": "an integer", "bool_parsing": "true or false",
    "bool_type": "true or false", "string_type": "a string", "list_type": "a YAML list, e.g. [a, b]",
    "dict_type": "a mapping of `key: value` lines", "model_type": "a mapping of `key: value` lines",
    "model_attributes_type": "a mapping of `key: value` lines", "path_type": "a file path",
    "literal_error": "one of the values listed",
}


def _check_files(path: Path, profile: Profile) -> None:
    if profile.clouds_yaml and not profile.clouds_yaml.is_file():
        raise ProfileError(path, "clouds_yaml", f"{profile.clouds_yaml} does not exist",
                           "point clouds_yaml at your clouds.yaml or remove the key")
    hosts = dict(profile.hosts)
    if profile.controller:
        hosts["controller"] = profile.controller
    for name, host in hosts.items():
        for key in ("key_file", "known_hosts"):
            value = getattr(host, key)
            if value is not None and not value.is_file():
                where = "controller" if name == "controller" else f"hosts.{name}"
                raise ProfileError(path, f"{where}.{key}", f"{value} does not exist",
                                   f"create the file or correct `{key}`")
