"""On-disk state of one embedded hypervisor host (stdlib only).

The embedded cloud's compute driver (running inside the Nova process) writes
this state; the ``virsh`` shim that the host's sshd exposes reads it.  The
layout mirrors what Nova's libvirt driver leaves on a real hypervisor::

    <root>/                       the host's "filesystem root" (one per host)
      instances/                  CONF.instances_path (or a shared dir)
        <uuid>/disk, disk.info, console.log, disk.rescue (rescued)
        <uuid>_resize/            source copy between resize/migrate and confirm
      libvirt/qemu/<name>.json    one persistent domain definition (+ live state)
      libvirt/qemu/save/<name>.save   managed-save image while suspended
      log/nova-compute.log        compute log with request ids (n-cpu.log)
      bin/virsh                   the shim, first on PATH over SSH

A domain record is JSON (see :class:`Domain`).  Writes are atomic (tmp file +
rename) so a reader never sees a half-written record.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path

# libvirt's virDomainState names as printed by `virsh domstate`.
RUNNING = "running"
PAUSED = "paused"
SHUTOFF = "shut off"
STATES = (RUNNING, PAUSED, SHUTOFF, "crashed", "pmsuspended")


@dataclasses.dataclass
class Domain:
    """A libvirt domain as the embedded host keeps it.

    ``generation`` counts (re)definitions: Nova's libvirt driver undefines and
    redefines the domain XML on hard reboot, but not on soft reboot.
    ``dom_id`` is libvirt's runtime id: set while running or paused, None
    while shut off; a fresh id is allocated per host on every start.
    ``defined_at`` is when this definition was made (every new Domain object
    is a new definition; records read back keep theirs): the ``virsh``
    shim shows it as ``nova:creationTime``, which Nova's libvirt driver
    writes into every XML it generates.
    """

    name: str
    uuid: str
    state: str = SHUTOFF
    reason: str = "unknown"
    dom_id: int | None = None
    vcpus: int = 1
    memory_kib: int = 524288
    disks: list[dict[str, str]] = dataclasses.field(default_factory=list)
    generation: int = 1
    managed_save: bool = False
    autostart: bool = False
    defined_at: float = dataclasses.field(default_factory=time.time)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Domain:
        data = {"defined_at": 0.0, **json.loads(text)}  # 0: written before it was recorded
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})


class HostState:
    """Paths and atomic record I/O for one host root."""

    def __init__(self, root: str | os.PathLike[str], instances_path: str | None = None):
        self.root = Path(root)
        self.instances = Path(instances_path) if instances_path else self.root / "instances"
        self.qemu = self.root / "libvirt" / "qemu"
        self.save_dir = self.qemu / "save"
        self.log_file = self.root / "log" / "nova-compute.log"

    def ensure(self) -> None:
        for d in (self.instances, self.save_dir, self.log_file.parent, self.root / "bin"):
            d.mkdir(parents=True, exist_ok=True)

    def domain_path(self, name: str) -> Path:
        return self.qemu / f"{name}.json"

    def save_image(self, name: str) -> Path:
        return self.save_dir / f"{name}.save"

    def instance_dir(self, uuid: str) -> Path:
        return self.instances / uuid

    def write_domain(self, dom: Domain) -> None:
        _atomic_write(self.domain_path(dom.name), dom.to_json())

    def read_domain(self, name: str) -> Domain | None:
        try:
            return Domain.from_json(self.domain_path(name).read_text())
        except FileNotFoundError:
            return None

    def undefine(self, name: str) -> None:
        for p in (self.domain_path(name), self.save_image(name)):
            p.unlink(missing_ok=True)

    def domains(self) -> list[Domain]:
        out = []
        for p in sorted(self.qemu.glob("*.json")):
            try:
                out.append(Domain.from_json(p.read_text()))
            except (FileNotFoundError, ValueError):
                continue  # removed or replaced between glob and read
        return out

    def find(self, key: str) -> Domain | None:
        """Find a domain by name, UUID or runtime id (as virsh does)."""
        for dom in self.domains():
            if key in (dom.name, dom.uuid) or (dom.dom_id is not None and key == str(dom.dom_id)):
                return dom
        return None


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
