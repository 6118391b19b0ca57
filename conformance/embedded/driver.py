"""Compute driver of the embedded cloud: Nova's FakeDriver, true to libvirt.

:class:`EmbeddedDriver` keeps no guests in memory.  Every operation does to
the host what Nova's libvirt driver (``nova/virt/libvirt/driver.py``, Nova
34) does, through the host's :class:`~conformance.embedded.hypervisor.Hypervisor`,
and logs the libvirt driver's own INFO lines to the host's compute log.
Highlights (libvirt method in brackets):

* spawn [``spawn``]: ``<uuid>/disk``, ``disk.info``, ``console.log``, the
  image in ``_base``; the domain is defined and booted;
* stop [``power_off``]: ACPI shutdown, then destroy; the domain stays
  defined; start [``power_on``] is a hard reboot;
* soft reboot [``_soft_reboot``]: guest shutdown and start of the same
  definition; hard reboot [``_hard_reboot``]: destroy, undefine, define anew;
* suspend: managed save; rescue: ``disk.rescue``, ``unrescue.xml`` and a
  redefined domain; snapshot: the disk uploaded to Glance;
* delete [``destroy`` + ``cleanup``]: undefine and remove the instance dir.

Moves (resize, cold and live migration, shared-storage checks) are in
:mod:`conformance.embedded.moves`.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from typing import Any

from nova import exception
from nova.compute import power_state, task_states
from nova.image import glance
from nova.objects import fields as obj_fields
from nova.virt import fake, hardware
from oslo_log import log as logging

from conformance.embedded import hypervisor
from conformance.embedded.hoststate import PAUSED, RUNNING, SHUTOFF, Domain
from conformance.embedded.hypervisor import DomainNotFound, Hypervisor, domain_from_xml, domain_xml
from conformance.embedded.moves import MovesMixin

LOG = logging.getLogger("nova.virt.libvirt.driver")
CONSOLE_READ_LIMIT = 100 * 1024
_POWER_STATES = {RUNNING: power_state.RUNNING, PAUSED: power_state.PAUSED,
                 SHUTOFF: power_state.SHUTDOWN, "crashed": power_state.CRASHED,
                 "pmsuspended": power_state.SUSPENDED}


def console_boot_lines(instance: Any, network_info: Any) -> list[str]:
    """What a cloud image prints on its serial console while booting."""
    blocks = instance.flavor.root_gb * 1024**3 // 512
    lines = [
        "SeaBIOS (version 1.16.3-debian-1.16.3-2)",
        "Booting from Hard Disk...",
        "[    0.000000] Linux version 6.1.0-27-cloud-amd64 (debian-kernel@lists.debian.org) "
        "(gcc-12 (Debian 12.2.0-14) 12.2.0) #1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1",
        "[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-27-cloud-amd64 "
        "root=/dev/vda1 ro console=tty0 console=ttyS0,115200",
        "[    0.000000] DMI: OpenStack Foundation OpenStack Nova, BIOS 1.16.3-debian-1.16.3-2",
        f"[    0.912345] virtio_blk virtio2: [vda] {blocks} 512-byte logical blocks",
        "[    1.734012] EXT4-fs (vda1): mounted filesystem with ordered data mode.",
        "[    3.120442] cloud-init[412]: Cloud-init v. 22.4.2 running 'init'. Up 3.05 seconds.",
    ]
    for vif in network_info or []:
        for ip in vif.fixed_ips():
            lines.append(f"ci-info: |  eth0  | True | {ip['address']:>15} | global | "
                         f"{vif['address']} |")
    lines += [
        "[    4.001122] cloud-init[530]: Cloud-init v. 22.4.2 finished. "
        "Datasource DataSourceOpenStackLocal.  Up 3.98 seconds",
        f"{instance.hostname or instance.name} login:",
    ]
    return lines


class EmbeddedDriver(MovesMixin, fake.FakeDriver):
    """FakeDriver whose guests live on an embedded host, as with libvirt."""

    vcpus = 16
    memory_mb = 32768
    local_gb = 1000

    def __init__(self, virtapi: Any, read_only: bool = False):
        super().__init__(virtapi, read_only)
        self._hv: Hypervisor | None = None
        self._image_api = glance.API()
        self.host_status_base.update(
            hypervisor_type="QEMU", hypervisor_version=8002002,
            supported_instances=[(obj_fields.Architecture.X86_64, hv, obj_fields.VMMode.HVM)
                                 for hv in (obj_fields.HVType.KVM, obj_fields.HVType.QEMU)])

    # ------------------------------------------------------------ plumbing
    @property
    def hv(self) -> Hypervisor:
        """This host's hypervisor (set by :meth:`init_host`)."""
        if self._hv is None:
            raise RuntimeError("EmbeddedDriver used before init_host()")
        return self._hv

    def init_host(self, host: str) -> None:
        """Attach to the hypervisor of ``host`` (registered by the service)."""
        super().init_host(host)
        self._hv = hypervisor.lookup(host)

    def get_host_ip_addr(self) -> str:
        """The host's own address (``my_ip``): where migrations are sent."""
        return self.hv.address

    def _info(self, msg: str, instance: Any, *args: Any) -> None:
        LOG.info(msg, *args, instance=instance, compute_host=self._host)

    def _require(self, instance: Any) -> Domain:
        try:
            return self.hv.require(instance.name)
        except DomainNotFound:
            raise exception.InstanceNotFound(instance_id=instance.uuid) from None

    @staticmethod
    def _image_id(instance: Any, image_meta: Any = None) -> str:
        if image_meta is not None and image_meta.obj_attr_is_set("id"):
            return str(image_meta.id)
        return str(instance.image_ref or "")

    def _disks(self, instance: Any, image_id: str | None = None) -> list[dict[str, str]]:
        image = image_id if image_id is not None else self._image_id(instance)
        return [self.hv.disk_spec(instance.uuid, "disk", "vda", image)]

    def _create_image(self, instance: Any, image_id: str, suffix: str = "") -> None:
        self.hv.create_disk(instance.uuid, "disk" + suffix, image_id, instance.flavor.root_gb)
        (self.hv.instance_dir(instance.uuid) / "console.log").touch()

    def _create_guest(self, instance: Any, disks: list[dict[str, str]], power_on: bool,
                      network_info: Any = None) -> Domain:
        flavor = instance.flavor
        dom = self.hv.define(instance.name, instance.uuid, flavor.vcpus, flavor.memory_mb, disks)
        if power_on:
            if network_info is None:
                network_info = instance.get_network_info()
            dom = self.hv.start(instance.name, console_boot_lines(instance, network_info))
        return dom

    def _remember_vifs(self, network_info: Any) -> None:
        for vif in network_info or []:
            vif.fixed_ips()  # like a real driver, wait for async allocation
            self._interfaces[vif["id"]] = vif

    # ------------------------------------------------------------ inventory
    def list_instances(self) -> list[str]:
        """Names of the domains defined on this host (``virsh list --all``)."""
        return [d.name for d in self.hv.domains()]

    def list_instance_uuids(self) -> list[str]:
        """UUIDs of the domains defined on this host."""
        return [d.uuid for d in self.hv.domains()]

    def instance_exists(self, instance: Any) -> bool:
        """Whether the instance's domain is defined here."""
        return self.hv.get(instance.name) is not None

    def get_info(self, instance: Any, use_cache: bool = True) -> hardware.InstanceInfo:
        """Power state and domain id, read from the host."""
        dom = self._require(instance)
        return hardware.InstanceInfo(state=_POWER_STATES.get(dom.state, power_state.NOSTATE),
                                     internal_id=dom.dom_id)

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """FakeDriver's resources, with libvirt's ``disk_available_least``."""
        res: dict[str, Any] = super().get_available_resource(nodename)
        if res:
            res["disk_available_least"] = self.local_gb
        return res

    def get_console_output(self, context: Any, instance: Any) -> str:
        """The tail of ``console.log``, as libvirt returns it."""
        path = self.hv.instance_dir(instance.uuid) / "console.log"
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._info("console logfile for instance does not exist", instance)
            return ""
        return data[-CONSOLE_READ_LIMIT:].decode(errors="replace")

    # ------------------------------------------------------------ spawn/delete
    def spawn(self, context: Any, instance: Any, image_meta: Any, injected_files: Any,
              admin_password: Any, allocations: Any, network_info: Any = None,
              block_device_info: Any = None, power_on: bool = True,
              accel_info: Any = None) -> None:
        """Create the instance dir and disks, define and boot the domain."""
        self._remember_vifs(network_info)
        image_id = self._image_id(instance, image_meta)
        self._info("Creating image(s)", instance)
        self._create_image(instance, image_id)
        self._create_guest(instance, self._disks(instance, image_id), power_on, network_info)
        if power_on:
            self._info("Instance spawned successfully.", instance)

    def _destroy(self, instance: Any) -> None:
        """libvirt ``_destroy``: pull the plug if the guest runs."""
        dom = self.hv.get(instance.name)
        if dom is not None and dom.state != SHUTOFF:
            self.hv.destroy(instance.name)
        self._info("Instance destroyed successfully.", instance)

    def destroy(self, context: Any, instance: Any, network_info: Any,
                block_device_info: Any = None, destroy_disks: bool = True,
                destroy_secrets: bool = True) -> None:
        """Stop the guest, then :meth:`cleanup` (undefine, maybe remove files)."""
        self._destroy(instance)
        self.cleanup(context, instance, network_info, block_device_info, destroy_disks,
                     destroy_secrets=destroy_secrets)

    def cleanup(self, context: Any, instance: Any, network_info: Any,
                block_device_info: Any = None, destroy_disks: bool = True,
                migrate_data: Any = None, destroy_vifs: bool = True,
                destroy_secrets: bool = True) -> None:
        """Undefine the domain; remove the instance dir when libvirt would."""
        cleanup_dir = destroy_disks
        if not destroy_disks and migrate_data and "is_shared_block_storage" in migrate_data:
            cleanup_dir = (migrate_data.is_shared_block_storage
                           and not migrate_data.is_shared_instance_path)
        if cleanup_dir:
            attempts = int(instance.system_metadata.get("clean_attempts", "0"))
            success = self.delete_instance_files(instance)
            instance.system_metadata["clean_attempts"] = str(attempts + 1)
            if success:
                instance.cleaned = True
            with contextlib.suppress(exception.InstanceNotFound):
                instance.save()
        self.hv.undefine(instance.name)

    def delete_instance_files(self, instance: Any) -> bool:
        """Rename the instance dir to ``<uuid>_del`` and remove it."""
        existed = (self.hv.instance_dir(instance.uuid).exists()
                   or self.hv.resize_dir(instance.uuid).exists())
        target_del, ok = self.hv.delete_instance_files(instance.uuid)
        if existed:
            self._info("Deleting instance files %s", instance, target_del)
        if not ok:
            self._info("Deletion of %s failed", instance, target_del)
            return False
        self._info("Deletion of %s complete", instance, target_del)
        return True

    # ------------------------------------------------------------ power
    def _clean_shutdown(self, instance: Any) -> bool:
        dom = self.hv.get(instance.name)
        if dom is None:
            return True
        if dom.state == SHUTOFF:
            self._info("Instance already shutdown.", instance)
            return True
        self.hv.shutdown(instance.name)
        self._info("Instance shutdown successfully after %d seconds.", instance, 0)
        return True

    def power_off(self, instance: Any, timeout: int = 0, retry_interval: int = 0) -> None:
        """Clean (ACPI) shutdown when a timeout is given, then destroy."""
        if timeout:
            self._clean_shutdown(instance)
        self._destroy(instance)

    def power_on(self, context: Any, instance: Any, network_info: Any,
                 block_device_info: Any = None, accel_info: Any = None,
                 share_info: Any = None) -> None:
        """libvirt powers on through a hard reboot (fresh definition)."""
        self._hard_reboot(context, instance, network_info, block_device_info)

    def reboot(self, context: Any, instance: Any, network_info: Any, reboot_type: str,
               block_device_info: Any = None, bad_volumes_callback: Any = None,
               accel_info: Any = None, share_info: Any = None) -> None:
        """SOFT: guest shutdown and start; HARD (or failed soft): redefine."""
        if reboot_type == "SOFT":
            if self._soft_reboot(instance, network_info):
                self._info("Instance soft rebooted successfully.", instance)
                return
            LOG.warning("Failed to soft reboot instance. Trying hard reboot.",
                        instance=instance, compute_host=self._host)
        self._hard_reboot(context, instance, network_info, block_device_info)

    def _soft_reboot(self, instance: Any, network_info: Any) -> bool:
        dom = self._require(instance)
        if dom.state != RUNNING:
            return False  # libvirt waits for a new domain id that never comes
        self.hv.shutdown(instance.name)
        self._info("Instance shutdown successfully.", instance)
        self.hv.start(instance.name, console_boot_lines(instance, network_info))
        self._info("Instance running successfully.", instance)
        return True

    def _hard_reboot(self, context: Any, instance: Any, network_info: Any,
                     block_device_info: Any = None) -> None:
        self.destroy(context, instance, network_info, destroy_disks=False,
                     block_device_info=block_device_info, destroy_secrets=False)
        self.hv.instance_dir(instance.uuid).mkdir(parents=True, exist_ok=True)
        if context.auth_token is not None:
            self._create_image(instance, self._image_id(instance))
        self._create_guest(instance, self._disks(instance), True, network_info)
        self._info("Instance rebooted successfully.", instance)

    def resume_state_on_host_boot(self, context: Any, instance: Any, network_info: Any,
                                  share_info: Any, block_device_info: Any = None) -> None:
        """Bring a guest that is not running back with a hard reboot."""
        dom = self.hv.get(instance.name)
        if dom is not None and dom.state in (RUNNING, PAUSED):
            return
        self._hard_reboot(context, instance, network_info, block_device_info)

    def soft_delete(self, instance: Any) -> None:
        """libvirt has none: the manager falls back to a hard power-off (domain and dir kept)."""
        raise NotImplementedError()

    def restore(self, instance: Any) -> None:
        """libvirt has none: the manager falls back to ``_power_on`` (a hard reboot)."""
        raise NotImplementedError()

    def pause(self, instance: Any) -> None:
        """Freeze the guest's vCPUs."""
        self._require(instance)
        self.hv.pause(instance.name)

    def unpause(self, instance: Any) -> None:
        """Thaw the guest's vCPUs."""
        self._require(instance)
        self.hv.unpause(instance.name)

    def suspend(self, context: Any, instance: Any) -> None:
        """Managed save: memory image on disk, domain shut off ("saved")."""
        self._require(instance)
        self.hv.managed_save(instance.name)

    def resume(self, context: Any, instance: Any, network_info: Any,
               block_device_info: Any = None, share_info: Any = None) -> None:
        """Redefine from the existing XML and start (restores the save image)."""
        dom = self._require(instance)
        self.hv.define(dom.name, dom.uuid, dom.vcpus, dom.memory_kib // 1024, dom.disks)
        self.hv.start(dom.name, console_boot_lines(instance, network_info))
        self._info("Instance running successfully.", instance)

    # ------------------------------------------------------------ rescue
    def rescue(self, context: Any, instance: Any, network_info: Any, image_meta: Any,
               rescue_password: Any, block_device_info: Any, share_info: Any) -> None:
        """Boot from ``disk.rescue`` with the original disk second."""
        dom = self._require(instance)
        inst_dir = self.hv.instance_dir(instance.uuid)
        (inst_dir / "unrescue.xml").write_text(domain_xml(dom))
        rescue_image = self._image_id(instance, image_meta)
        self._info("Attempting rescue", instance)
        self._create_image(instance, rescue_image, suffix=".rescue")
        disks = [self.hv.disk_spec(instance.uuid, "disk.rescue", "vda", rescue_image),
                 self.hv.disk_spec(instance.uuid, "disk", "vdb", self._image_id(instance))]
        self._destroy(instance)
        self._create_guest(instance, disks, True, network_info)

    def unrescue(self, context: Any, instance: Any) -> None:
        """Redefine the saved ``unrescue.xml`` and drop the rescue files."""
        inst_dir = self.hv.instance_dir(instance.uuid)
        original = domain_from_xml((inst_dir / "unrescue.xml").read_text())
        self._destroy(instance)
        self._create_guest(instance, original.disks, True)
        (inst_dir / "unrescue.xml").unlink()
        for path in glob.glob(str(inst_dir / "*.rescue")):
            if os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)

    # ------------------------------------------------------------ snapshot
    def _snapshot_metadata(self, instance: Any, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "status": "active", "name": name, "disk_format": hypervisor.DISK_FORMAT,
            "properties": {"kernel_id": instance.kernel_id, "image_location": "snapshot",
                           "image_state": "available", "owner_id": instance.project_id,
                           "ramdisk_id": instance.ramdisk_id}}
        if instance.os_type:
            meta["properties"]["os_type"] = instance.os_type
        image_meta = instance.image_meta
        meta["container_format"] = (image_meta.container_format
                                    if image_meta.obj_attr_is_set("container_format") else "bare")
        return meta

    def snapshot(self, context: Any, instance: Any, image_id: str,
                 update_task_state: Any) -> None:
        """Extract the root disk and upload it to Glance (image goes active)."""
        try:
            dom = self.hv.require(instance.name)
        except DomainNotFound:
            raise exception.InstanceNotRunning(instance_id=instance.uuid) from None
        snapshot = self._image_api.get(context, image_id)
        metadata = self._snapshot_metadata(instance, snapshot["name"])
        kind = "cold" if dom.state == SHUTOFF else "live"
        self._info(f"Beginning {kind} snapshot process", instance)
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD)
        update_task_state(task_state=task_states.IMAGE_UPLOADING,
                          expected_state=task_states.IMAGE_PENDING_UPLOAD)
        # qcow2 has no direct snapshot: libvirt falls back to extract + upload
        update_task_state(task_state=task_states.IMAGE_PENDING_UPLOAD,
                          expected_state=task_states.IMAGE_UPLOADING)
        with self.hv.snapshot_workdir() as tmpdir:
            out_path = tmpdir / image_id.replace("-", "")
            self.hv.extract_snapshot(instance.uuid, out_path)
            self._info("Snapshot extracted, beginning image upload", instance)
            update_task_state(task_state=task_states.IMAGE_UPLOADING,
                              expected_state=task_states.IMAGE_PENDING_UPLOAD)
            with open(out_path, "rb") as image_file:
                self._image_api.update(context, image_id, metadata, image_file)
        self._info("Snapshot image upload complete", instance)

