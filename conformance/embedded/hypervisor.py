"""libvirtd, QEMU and the instances filesystem of one embedded host.

:class:`Hypervisor` is the layer *below* the compute driver: it does what
libvirt and QEMU do to a real hypervisor host when Nova's libvirt driver asks
them to (define, start, shut down, destroy, pause, managed-save, migrate,
undefine a domain) and what the driver's image backend does to the instances
path (``disk``, ``disk.info``, ``console.log``, the ``_base`` image cache).
All of it is written through :class:`~conformance.embedded.hoststate.HostState`
so the host's ``virsh`` shim sees exactly this state.

Hypervisor objects live for the whole Nova process (one per host, see
:func:`register`): like a real libvirtd they outlive nova-compute restarts,
keep allocating fresh domain ids and remember how often a domain was defined.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import shutil
import struct
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from conformance.embedded.hoststate import PAUSED, RUNNING, SHUTOFF, Domain, HostState

GIB = 1024**3
DISK_FORMAT = "qcow2"
_REGISTRY: dict[str, Hypervisor] = {}


class DomainNotFound(LookupError):
    """No domain of that name is defined on the host (VIR_ERR_NO_DOMAIN)."""


def register(name: str, state: HostState, address: str) -> Hypervisor:
    """Create (or return) the process-wide hypervisor of host ``name``."""
    if name not in _REGISTRY:
        _REGISTRY[name] = _REGISTRY[address] = Hypervisor(name, state, address)
    return _REGISTRY[name]


def lookup(host: str) -> Hypervisor:
    """The hypervisor of a host, by name or IP address (KeyError if unknown)."""
    return _REGISTRY[host]


def base_image_name(image_id: str) -> str:
    """File name of an image in the ``_base`` cache (libvirt: sha1 of the id)."""
    return hashlib.sha1(image_id.encode()).hexdigest()


def qcow2_bytes(backing: str | None, virtual_size: int, payload: bytes) -> bytes:
    """A small qcow2 image: a v3 header (naming ``backing``, if any) plus ``payload``."""
    name = (backing or "").encode()
    header = struct.pack(">4sIQIIQ", b"QFI\xfb", 3, 104 if name else 0, len(name), 16,
                         virtual_size)
    header = header.ljust(104, b"\0")
    return header + name + b"\0" * (512 - (104 + len(name)) % 512) + payload


class Hypervisor:
    """The libvirt/QEMU side of one host, persisted as :class:`HostState`."""

    def __init__(self, name: str, state: HostState, address: str):
        self.name = name
        self.address = address
        self.state = state
        self.lock = threading.RLock()
        state.ensure()
        existing = [d.dom_id for d in state.domains() if d.dom_id is not None]
        self._ids = itertools.count(max(existing, default=0) + 1)
        self._generations = {d.name: d.generation for d in state.domains()}

    # ---------------------------------------------------------------- domains
    def get(self, name: str) -> Domain | None:
        """The defined domain called ``name``, or None."""
        return self.state.read_domain(name)

    def require(self, name: str) -> Domain:
        """The defined domain called ``name``; :class:`DomainNotFound` if none."""
        dom = self.state.read_domain(name)
        if dom is None:
            raise DomainNotFound(name)
        return dom

    def domains(self) -> list[Domain]:
        """Every defined domain (running or not), as ``virsh list --all``."""
        return self.state.domains()

    def define(self, name: str, uuid: str, vcpus: int, memory_mb: int,
               disks: list[dict[str, str]]) -> Domain:
        """virDomainDefineXML: create or replace the persistent definition.

        Runtime state (running, paused, managed save) of an existing domain is
        kept; the definition generation goes up by one every time, also across
        an undefine (so a hard reboot shows as a redefinition).
        """
        with self.lock:
            old = self.get(name)
            gen = max(self._generations.get(name, 0), old.generation if old else 0) + 1
            dom = Domain(name=name, uuid=uuid, vcpus=vcpus, memory_kib=memory_mb * 1024,
                         disks=disks, generation=gen)
            if old is not None:
                dom.state, dom.reason, dom.dom_id = old.state, old.reason, old.dom_id
                dom.managed_save, dom.autostart = old.managed_save, old.autostart
            self._generations[name] = gen
            self.state.write_domain(dom)
            return dom

    def start(self, name: str, console: list[str], paused: bool = False) -> Domain:
        """virDomainCreate: boot the domain, or restore its managed-save image."""
        with self.lock:
            dom = self.require(name)
            if dom.state != SHUTOFF:
                return dom
            dom.dom_id = next(self._ids)
            if dom.managed_save:
                dom.state, dom.reason, dom.managed_save = RUNNING, "restored", False
                self.state.save_image(name).unlink(missing_ok=True)
            else:
                dom.state, dom.reason = RUNNING, "booted"
                self.append_console(dom.uuid, console)
            if paused:
                dom.state, dom.reason = PAUSED, "user"
            self.state.write_domain(dom)
            return dom

    def _stop(self, name: str, reason: str) -> Domain:
        with self.lock:
            dom = self.require(name)
            if dom.state != SHUTOFF:
                dom.state, dom.reason, dom.dom_id = SHUTOFF, reason, None
                self.state.write_domain(dom)
            return dom

    def shutdown(self, name: str) -> Domain:
        """virDomainShutdown: the guest answers ACPI and powers itself off."""
        return self._stop(name, "shutdown")

    def destroy(self, name: str) -> Domain:
        """virDomainDestroy: pull the plug (no-op for a shut-off domain)."""
        return self._stop(name, "destroyed")

    def _set_active(self, name: str, state: str, reason: str) -> Domain:
        with self.lock:
            dom = self.require(name)
            if dom.state in (RUNNING, PAUSED):
                dom.state, dom.reason = state, reason
                self.state.write_domain(dom)
            return dom

    def pause(self, name: str) -> Domain:
        """virDomainSuspend: freeze the vCPUs."""
        return self._set_active(name, PAUSED, "user")

    def unpause(self, name: str) -> Domain:
        """virDomainResume: thaw the vCPUs."""
        return self._set_active(name, RUNNING, "unpaused")

    def managed_save(self, name: str) -> Domain:
        """virDomainManagedSave: write guest memory to disk and stop the guest."""
        with self.lock:
            dom = self.require(name)
            image = self.state.save_image(name)
            image.parent.mkdir(parents=True, exist_ok=True)
            image.write_bytes(b"LibvirtQemudSave" + json.dumps(
                {"name": name, "uuid": dom.uuid, "memory_kib": dom.memory_kib}).encode())
            dom.state, dom.reason, dom.dom_id, dom.managed_save = SHUTOFF, "saved", None, True
            self.state.write_domain(dom)
            return dom

    def undefine(self, name: str) -> bool:
        """virDomainUndefineFlags(MANAGED_SAVE|NVRAM): drop the definition."""
        with self.lock:
            found = self.get(name) is not None
            self.state.undefine(name)
            return found

    def migrate(self, name: str, dest: Hypervisor, disks: list[dict[str, str]]) -> Domain:
        """virDomainMigrateToURI3(PERSIST_DEST|UNDEFINE_SOURCE): move a live guest."""
        with self.lock:
            src = self.require(name)
            new = dest.define(name, src.uuid, src.vcpus, src.memory_kib // 1024, disks)
            with dest.lock:
                new.dom_id = next(dest._ids)
                new.state = PAUSED if src.state == PAUSED else RUNNING
                new.reason = "migration" if src.state == PAUSED else "migrated"
                dest.state.write_domain(new)
            self._stop(name, "migrated")
            self.undefine(name)
            return new

    # ------------------------------------------------------------ files
    def instance_dir(self, uuid: str) -> Path:
        """``<instances_path>/<uuid>``."""
        return self.state.instance_dir(uuid)

    def resize_dir(self, uuid: str) -> Path:
        """``<instances_path>/<uuid>_resize`` (source copy during a resize)."""
        return self.state.instances / f"{uuid}_resize"

    def shares_instances_with(self, other: Hypervisor) -> bool:
        """True when both hosts mount the same instances path (shared storage)."""
        return os.path.realpath(self.state.instances) == os.path.realpath(other.state.instances)

    def cache_image(self, image_id: str, data: bytes) -> Path:
        """Put an image into the ``_base`` cache (kept, as libvirt keeps it)."""
        base = self.state.instances / "_base" / base_image_name(image_id)
        if not base.exists():
            base.parent.mkdir(parents=True, exist_ok=True)
            base.write_bytes(data)
        return base

    def create_disk(self, uuid: str, fname: str, image_id: str, size_gb: int) -> Path:
        """Create ``<uuid>/<fname>`` as a qcow2 overlay of the cached image.

        An existing disk is kept (libvirt's ``_create_image`` does not
        overwrite), which is what evacuation on shared storage relies on.
        """
        base = self.cache_image(image_id or "volume", f"image {image_id}\n".encode() * 64)
        path = self.instance_dir(uuid) / fname
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = f"{fname} of instance {uuid} from image {image_id}\n".encode() * 32
            path.write_bytes(qcow2_bytes(str(base), size_gb * GIB, payload))
        self.record_disk_format(uuid, path)
        return path

    def extract_snapshot(self, uuid: str, out_path: Path) -> None:
        """``qemu-img convert`` of the root disk: a standalone qcow2 (no backing)."""
        disk = (self.instance_dir(uuid) / "disk").read_bytes()
        virtual_size, payload = len(disk), disk
        if disk[:4] == b"QFI\xfb":
            _magic, _v, _off, name_len, _bits, virtual_size = struct.unpack(">4sIQIIQ", disk[:32])
            payload = disk[-(-(104 + name_len) // 512) * 512:]
        out_path.write_bytes(qcow2_bytes(None, virtual_size, payload))

    def record_disk_format(self, uuid: str, path: Path) -> None:
        """Add ``path`` to ``disk.info`` (the image backend's format cache)."""
        info_path = self.instance_dir(uuid) / "disk.info"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        info[str(path)] = DISK_FORMAT
        info_path.write_text(json.dumps(info))

    def disk_spec(self, uuid: str, fname: str, target: str, image_id: str) -> dict[str, str]:
        """The ``<disk>`` element of a domain, as a HostState disk dict."""
        return {"type": "file", "device": "disk", "format": DISK_FORMAT, "bus": "virtio",
                "target": target, "source": str(self.instance_dir(uuid) / fname),
                "backing": str(self.state.instances / "_base" /
                               base_image_name(image_id or "volume"))}

    def append_console(self, uuid: str, lines: list[str]) -> None:
        """Append serial-console output to ``<uuid>/console.log``."""
        path = self.instance_dir(uuid) / "console.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.writelines(line + "\n" for line in lines)

    def delete_instance_files(self, uuid: str) -> tuple[Path, bool]:
        """libvirt ``delete_instance_files``: rename to ``_del`` and remove.

        Returns the ``_del`` path and whether nothing is left behind.
        """
        target, resize = self.instance_dir(uuid), self.resize_dir(uuid)
        target_del = target.with_name(f"{uuid}_del")
        for path in (target, resize):
            with contextlib.suppress(OSError):
                path.rename(target_del)
                break
        shutil.rmtree(target_del, ignore_errors=True)
        return target_del, not (target.exists() or resize.exists() or target_del.exists())

    @contextlib.contextmanager
    def snapshot_workdir(self) -> Iterator[Path]:
        """A temporary directory under ``<instances>/snapshots`` (libvirt's)."""
        import tempfile

        root = self.state.instances / "snapshots"
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root))
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def domain_xml(dom: Domain) -> str:
    """Render a domain definition as libvirt XML (what nova saves to disk)."""
    root = ET.Element("domain", type="kvm")
    ET.SubElement(root, "name").text = dom.name
    ET.SubElement(root, "uuid").text = dom.uuid
    ET.SubElement(root, "memory", unit="KiB").text = str(dom.memory_kib)
    ET.SubElement(root, "vcpu").text = str(dom.vcpus)
    devices = ET.SubElement(root, "devices")
    for disk in dom.disks:
        el = ET.SubElement(devices, "disk", type=disk.get("type", "file"),
                           device=disk.get("device", "disk"))
        ET.SubElement(el, "driver", name="qemu", type=disk.get("format", DISK_FORMAT))
        ET.SubElement(el, "source", file=disk.get("source", ""))
        if disk.get("backing"):
            store = ET.SubElement(el, "backingStore", type="file")
            ET.SubElement(store, "source", file=disk["backing"])
        ET.SubElement(el, "target", dev=disk.get("target", "vda"), bus=disk.get("bus", "virtio"))
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def domain_from_xml(text: str) -> Domain:
    """Parse :func:`domain_xml` output back into a (shut-off) Domain."""
    root = ET.fromstring(text)
    disks = []
    for el in root.iterfind("devices/disk"):
        backing = el.find("backingStore/source")
        disk = {"type": el.get("type", "file"), "device": el.get("device", "disk"),
                "format": el.find("driver").get("type", DISK_FORMAT),  # type: ignore[union-attr]
                "source": el.find("source").get("file", ""),  # type: ignore[union-attr]
                "target": el.find("target").get("dev", "vda"),  # type: ignore[union-attr]
                "bus": el.find("target").get("bus", "virtio")}  # type: ignore[union-attr]
        if backing is not None:
            disk["backing"] = backing.get("file", "")
        disks.append(disk)
    return Domain(name=root.findtext("name", ""), uuid=root.findtext("uuid", ""),
                  vcpus=int(root.findtext("vcpu", "1")),
                  memory_kib=int(root.findtext("memory", "524288")), disks=disks)
