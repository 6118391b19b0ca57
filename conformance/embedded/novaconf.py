"""``nova.json``: the configuration of the embedded Nova process.

The orchestrator writes it (see ``docs/embedded-internals.md``); this module
reads and validates it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass(frozen=True)
class HostSpec:
    """One hypervisor host: its name, filesystem root and instances path."""

    name: str
    root: Path
    instances_path: Path
    address: str


@dataclasses.dataclass(frozen=True)
class NovaConfig:
    """The parsed ``nova.json``."""

    workdir: Path
    bind: str
    nova_port: int
    placement_port: int
    control_port: int
    keystone_url: str
    glance_url: str
    service_password: str
    region: str
    hosts: tuple[HostSpec, ...]
    shared_storage: bool
    defects: tuple[str, ...]
    patches: tuple[Path, ...]
    periodic_interval: float
    log_dir: Path
    ready_file: Path
    reclaim_instance_interval: int = 0  # > 0: DELETE is a soft delete (capability soft_delete)
    shelved_offload_time: int = -1  # -1: SHELVED is stable (an admin shelve-offloads)

    @classmethod
    def load(cls, path: str | Path) -> NovaConfig:
        """Read and check ``nova.json``."""
        data: dict[str, Any] = json.loads(Path(path).read_text())
        hosts = tuple(
            HostSpec(h["name"], Path(h["root"]),
                     Path(h.get("instances_path") or Path(h["root"]) / "instances"),
                     h.get("address") or f"127.0.0.{11 + i}")
            for i, h in enumerate(data["hosts"]))
        if not hosts:
            raise ValueError("nova.json: 'hosts' must name at least one host")
        if len({h.name for h in hosts}) != len(hosts):
            raise ValueError("nova.json: host names must be unique")
        workdir = Path(data["workdir"])
        ports = data.get("ports", {})
        return cls(
            workdir=workdir, bind=data.get("bind", "127.0.0.1"),
            nova_port=int(ports["nova"]), placement_port=int(ports["placement"]),
            control_port=int(ports["control"]),
            keystone_url=data["keystone_url"].rstrip("/"), glance_url=data["glance_url"],
            service_password=data["service_password"], region=data.get("region", "RegionOne"),
            hosts=hosts, shared_storage=bool(data.get("shared_storage", False)),
            defects=tuple(data.get("defects", [])),
            patches=tuple(Path(p) for p in data.get("patches", [])),
            periodic_interval=float(data.get("periodic_interval", 10.0)),
            log_dir=Path(data.get("log_dir") or workdir / "logs"),
            ready_file=Path(data.get("ready_file") or workdir / "nova.ready.json"),
            reclaim_instance_interval=int(data.get("reclaim_instance_interval", 0)),
            shelved_offload_time=int(data.get("shelved_offload_time", -1)))

    def url(self, port: int, path: str = "") -> str:
        """``http://bind:port`` plus ``path``."""
        return f"http://{self.bind}:{port}{path}"

    @property
    def host_names(self) -> list[str]:
        """The compute host names, in nova.json order."""
        return [h.name for h in self.hosts]
