"""Write the embedded cloud's ``clouds.yaml`` and its suite ``profile.yaml``.

The profile is validated with :func:`conformance.profile.load_profile` right
after it is written, so ``up`` never leaves a profile the suite would reject.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Any

import yaml

from conformance.embedded.keystone_service import REGION

# clouds.yaml cloud -> (user, project); the profile role -> cloud mapping.
CLOUDS: dict[str, tuple[str, str]] = {
    "embedded-admin": ("conformance-admin", "conformance"),
    "embedded-member": ("conformance-member", "conformance"),
    "embedded-reader": ("conformance-reader", "conformance"),
    "embedded-other-member": ("conformance-alt-member", "conformance-alt"),
    "embedded-other-admin": ("conformance-alt-admin", "conformance-alt"),
}
ROLES = {"admin": "embedded-admin", "member": "embedded-member", "reader": "embedded-reader",
         "other_member": "embedded-other-member", "other_admin": "embedded-other-admin"}

# What every embedded cloud supports, and what needs at least two hosts.
SINGLE_HOST_CAPABILITIES = ["pause", "suspend", "rescue", "lock", "snapshot", "rebuild", "shelve",
                            "shelve_offload", "unshelve_to_host", "resize", "console_log"]
MULTI_HOST_CAPABILITIES = ["cold_migration", "live_migration", "evacuate"]

FLAVOR_SMALL = "conformance.small"
FLAVOR_LARGE = "conformance.large"
IMAGE = "conformance-image"
IMAGE_ALT = "conformance-image-alt"


def ssh_user() -> str:
    """The account the suite logs in as on the embedded hosts (the current user)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "root"


def clouds_config(keystone_url: str, passwords: dict[str, str]) -> dict[str, Any]:
    """The clouds.yaml document: one password-auth, project-scoped cloud per role."""
    clouds = {}
    for cloud, (user, project) in CLOUDS.items():
        clouds[cloud] = {
            "auth_type": "password",
            "auth": {"auth_url": keystone_url, "username": user, "password": passwords[user],
                     "project_name": project, "user_domain_name": "Default",
                     "project_domain_name": "Default"},
            "region_name": REGION,
            "identity_api_version": 3,
            "interface": "public",
        }
    return {"clouds": clouds}


def write_clouds(path: Path, keystone_url: str, passwords: dict[str, str]) -> None:
    """Write clouds.yaml (mode 0600: it holds the per-run passwords)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# Written by `python -m conformance.embedded up`; passwords change every run.\n")
        yaml.safe_dump(clouds_config(keystone_url, passwords), f, sort_keys=False)


def capabilities(n_hosts: int, shared_storage: bool, extra: list[str] | None = None) -> list[str]:
    """Capabilities the embedded cloud supports with ``n_hosts`` compute hosts."""
    caps = list(SINGLE_HOST_CAPABILITIES)
    if n_hosts >= 2:
        caps += MULTI_HOST_CAPABILITIES
        caps.append("shared_storage" if shared_storage else "block_migration")
    caps += [c for c in extra or [] if c not in caps]
    return caps


def _host_entry(host: dict[str, Any], ssh: dict[str, str], logs: dict[str, str]) -> dict[str, Any]:
    return {
        "address": host["address"], "port": host["port"], "user": ssh["user"],
        "key_file": ssh["key_file"], "known_hosts": ssh["known_hosts"],
        "strict_host_key_checking": True, "instances_path": host["instances_path"],
        "logs": logs, "connect_timeout": 5.0,
    }


def profile_config(state: dict[str, Any], layout_root: Path, clouds: Path) -> dict[str, Any]:
    """The profile document for a cloud described by ``state`` (see workdir.py)."""
    ssh = state["ssh"]
    hosts = {}
    for h in state["hosts"]:
        entry = _host_entry(h, ssh, {"nova_compute": f"{h['root']}/log/nova-compute.log"})
        hosts[h["name"]] = {**entry, "hypervisor_hostname": h["name"]}
    controller = _host_entry(state["controller"], ssh,
                             {"nova_api": f"{state['controller']['root']}/log/nova-api.log"})
    controller.pop("instances_path")
    return {
        "name": "embedded",
        "description": f"embedded cloud in {layout_root} (real Nova, Placement, Keystone, "
                       f"Glance; {len(hosts)} compute hosts over SSH)",
        "clouds_yaml": str(clouds),
        "roles": dict(ROLES),
        "resources": {"image": IMAGE, "image_alt": IMAGE_ALT, "flavor_small": FLAVOR_SMALL,
                      "flavor_large": FLAVOR_LARGE, "network": state["network_id"]},
        "capabilities": capabilities(len(hosts), state["shared_storage"],
                                     state.get("extra_capabilities")),
        "policy_era": "srbac-2025.2",
        "hosts": hosts,
        "controller": controller,
        "host_control": {"method": "embedded", "control_url": state["urls"]["control"]},
        # The fake driver finishes an operation in about a second; these leave 30x headroom for a
        # loaded 2-core machine while keeping a defect run (which waits a timeout out) short.
        "timeouts": {"server_build": 60, "server_action": 60, "server_delete": 60,
                     "snapshot": 120, "migration": 120, "host_command": 30,
                     # after the end state, events and allocations follow within a second here
                     "settle": 20},
        "concurrency": {"max_servers": 4},
        # Operations end within seconds here: polls at most 1 s apart notice the end sooner (the
        # default 2 s cap suits clouds whose operations take minutes); a GET costs nova ~20 ms CPU.
        "polling": {"initial_interval": 0.2, "max_interval": 1.0, "backoff": 1.5},
    }


def write_profile(path: Path, state: dict[str, Any], layout_root: Path, clouds: Path) -> None:
    """Write profile.yaml and validate it with the suite's own loader."""
    from conformance.profile import load_profile

    doc = profile_config(state, layout_root, clouds)
    with open(path, "w") as f:
        f.write("# Suite profile of the embedded cloud; written by `up`, valid until `down`.\n")
        yaml.safe_dump(doc, f, sort_keys=False)
    load_profile(path)
