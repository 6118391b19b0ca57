"""``tempest.conf`` for a running embedded cloud, generated from its workdir.

Everything comes from what ``python -m conformance.embedded up`` wrote:
``state.json`` (endpoints, the Keystone bootstrap admin, image and flavor
ids, hosts).  Tempest's admin is Keystone's bootstrap admin (``admin`` in
project ``admin``), as on a devstack; Tempest creates its own projects and
users for every test class (dynamic credentials).

The feature flags say what the embedded cloud has: Nova with a fake virt
driver and Nova's in-process Neutron fake (one shared network, so no
``fixed_network_name``), Glance, Placement; no Cinder, Swift or real
Neutron, no guest that could be reached over SSH.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# the embedded cloud's names (conformance.embedded.profilegen; not imported: this
# module also runs without the embedded extra)
IMAGE = "conformance-image"
IMAGE_ALT = "conformance-image-alt"
FLAVOR_SMALL = "conformance.small"
FLAVOR_LARGE = "conformance.large"
REGION = "RegionOne"
BOOTSTRAP_ADMIN = ("admin", "admin")  # (user, project) made by keystone-manage bootstrap
# Nova's shelved_offload_time in the embedded cloud unless `up --shelved-offload-time`
DEFAULT_SHELVED_OFFLOAD_TIME = -1


class TargetError(RuntimeError):
    """The workdir holds no ready embedded cloud."""


@dataclasses.dataclass(frozen=True)
class Target:
    """What Tempest needs to know about one running embedded cloud."""

    keystone_url: str
    admin_password: str
    image: str
    image_alt: str
    flavor: str
    flavor_alt: str
    compute_hosts: int
    shelved_offload_time: int = DEFAULT_SHELVED_OFFLOAD_TIME

    @classmethod
    def from_workdir(cls, workdir: str | Path) -> Target:
        """Read ``state.json`` (and ``nova.json``) of a cloud started with ``up``."""
        path = Path(workdir) / "state.json"
        nova = _read_json(Path(workdir) / "nova.json")
        try:
            state: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TargetError(f"{path}: cannot read the cloud state: {exc}") from exc
        if state.get("status") != "ready":
            raise TargetError(f"{path}: the cloud is not ready (status {state.get('status')!r})")
        try:
            return cls(keystone_url=state["urls"]["keystone"],
                       admin_password=state["bootstrap_admin_password"],
                       image=state["images"][IMAGE], image_alt=state["images"][IMAGE_ALT],
                       flavor=state["flavors"][FLAVOR_SMALL],
                       flavor_alt=state["flavors"][FLAVOR_LARGE],
                       compute_hosts=len(state["hosts"]),
                       shelved_offload_time=int(nova.get("shelved_offload_time",
                                                         DEFAULT_SHELVED_OFFLOAD_TIME)))
        except KeyError as exc:
            raise TargetError(f"{path}: no {exc} in the cloud state") from exc


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON file of the workdir, or ``{}`` if it is missing or unreadable."""
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data


def sections(target: Target, build_timeout: int = 120) -> dict[str, dict[str, str]]:
    """The tempest.conf sections for ``target``, as ``{section: {option: value}}``."""
    user, project = BOOTSTRAP_ADMIN
    return {
        "DEFAULT": {"log_file": "tempest.log", "debug": "false"},
        "auth": {"use_dynamic_credentials": "true", "create_isolated_networks": "false",
                 "admin_username": user, "admin_password": target.admin_password,
                 "admin_project_name": project, "admin_domain_name": "Default",
                 "default_credentials_domain_name": "Default", "tempest_roles": "member"},
        "identity": {"uri_v3": target.keystone_url, "auth_version": "v3", "region": REGION,
                     "v3_endpoint_type": "public"},
        "identity-feature-enabled": {"api_v2": "false", "api_v3": "true"},
        # the embedded Nova enforces the new policy defaults and scope (fixes.py), with the
        # manager role that Keystone's bootstrap creates
        "enforce_scope": {"nova": "true"},
        "service_available": _services(),
        "compute": _compute(target, build_timeout),
        "compute-feature-enabled": _compute_features(target),
        "image": {"disk_formats": "raw,qcow2,ami,ari,aki,vhd,vmdk,iso",
                  "container_formats": "bare,ami,ari,aki,ovf", "build_interval": "1"},
        "image-feature-enabled": {"api_v2": "true", "import_image": "false"},
        "validation": {"run_validation": "false"},
        "network-feature-enabled": {"floating_ips": "false"},
    }


def _services() -> dict[str, str]:
    available = {"nova": True, "glance": True, "placement": True, "neutron": False,
                 "cinder": False, "swift": False, "horizon": False, "heat": False}
    return {name: str(on).lower() for name, on in available.items()}


def _compute(target: Target, build_timeout: int) -> dict[str, str]:
    return {
        "image_ref": target.image, "image_ref_alt": target.image_alt,
        "flavor_ref": target.flavor, "flavor_ref_alt": target.flavor_alt,
        "region": REGION, "min_compute_nodes": str(target.compute_hosts),
        "build_interval": "1", "build_timeout": str(build_timeout), "ready_wait": "0",
        "shelved_offload_time": str(target.shelved_offload_time),
        "min_microversion": "2.1", "max_microversion": "latest", "hypervisor_type": "fake",
    }


def _compute_features(target: Target) -> dict[str, str]:
    multi = target.compute_hosts > 1
    on = ["pause", "suspend", "rescue", "shelve", "resize", "snapshot", "console_output",
          "enable_instance_password", "disk_config", "personality", "hostname_fqdn_sanitization"]
    off = ["stable_rescue", "shelve_migrate", "interface_attach", "change_password",
           "metadata_service", "config_drive", "vnc_console", "spice_console",
           "serial_console", "swap_volume", "volume_multiattach", "attach_encrypted_volume",
           "live_migrate_back_and_forth"]
    flags = {**dict.fromkeys(on, True), **dict.fromkeys(off, False)}
    for name in ("cold_migration", "live_migration", "block_migration_for_live_migration",
                 "can_migrate_between_any_hosts"):
        flags[name] = multi
    return {"nova_policy_roles": "admin,manager,member,reader,service",
            **{name: str(value).lower() for name, value in flags.items()}}


def render(conf: Mapping[str, Mapping[str, str]]) -> str:
    """INI text of ``conf`` (sections in order, options as given)."""
    out: list[str] = []
    for section, options in conf.items():
        out.append(f"[{section}]")
        out += [f"{key} = {value}" for key, value in options.items()]
        out.append("")
    return "\n".join(out)


def write_conf(workdir: str | Path, dest: str | Path, build_timeout: int = 120) -> Path:
    """Write ``dest`` (a tempest.conf) for the cloud running in ``workdir``."""
    target = Target.from_workdir(workdir)
    path = Path(dest)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(sections(target, build_timeout)))
    path.chmod(0o600)  # holds the bootstrap admin's password
    return path
