"""Resize, cold and live migration of the embedded driver, as libvirt does them.

* ``migrate_disk_and_power_off`` (source): power off, rename ``<uuid>`` to
  ``<uuid>_resize``, copy ``disk`` and ``disk.info`` into ``<uuid>`` on the
  destination (the same directory with shared storage).  As in libvirt the
  source domain stays defined (shut off) until the resize is confirmed.
* ``finish_migration`` (destination): define and boot the domain.
* ``confirm_migration`` (source): remove ``<uuid>_resize``, undefine.
* revert: the destination's domain and dir are destroyed by the compute
  manager; ``finish_revert_migration`` (source) renames ``<uuid>_resize``
  back and redefines and boots the source domain.
* live migration: the shared-storage checks use a temporary file in the
  instances path, exactly like libvirt, so ``block_migration=auto`` picks
  block migration without shared storage and ``block_migration=True`` is
  rejected on shared storage.  ``pre_live_migration`` creates the dir on the
  destination, the migration moves the domain (persist on the destination,
  undefine on the source) and copies the disk for block migrations, and the
  compute manager's cleanup removes the source dir when it is not shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import TYPE_CHECKING, Any

from nova import exception, objects
from nova.i18n import _

from conformance.embedded import hypervisor
from conformance.embedded.hypervisor import Hypervisor

if TYPE_CHECKING:
    from conformance.embedded.hoststate import Domain


def disk_info_json(hv: Hypervisor, instance: Any) -> str:
    """libvirt's ``_get_instance_disk_info`` for the instance's local disks."""
    out = []
    for name in ("disk", "disk.config"):
        path = hv.instance_dir(instance.uuid) / name
        if path.exists():
            size = path.stat().st_size
            virt = instance.flavor.root_gb * hypervisor.GIB if name == "disk" else size
            out.append({"type": hypervisor.DISK_FORMAT, "path": str(path), "disk_size": size,
                        "virt_disk_size": virt, "backing_file": "",
                        "over_committed_disk_size": max(virt - size, 0)})
    return json.dumps(out)


class MovesMixin:
    """Move operations of :class:`~conformance.embedded.driver.EmbeddedDriver`."""

    if TYPE_CHECKING:
        _host: str

        @property
        def hv(self) -> Hypervisor: ...
        def _info(self, msg: str, instance: Any, *args: Any) -> None: ...
        def _require(self, instance: Any) -> Domain: ...
        def _image_id(self, instance: Any, image_meta: Any = None) -> str: ...
        def _disks(self, instance: Any, image_id: str | None = None) -> list[dict[str, str]]: ...
        def _create_image(self, instance: Any, image_id: str, suffix: str = "") -> None: ...
        def _create_guest(self, instance: Any, disks: list[dict[str, str]], power_on: bool,
                          network_info: Any = None) -> Domain: ...
        def power_off(self, instance: Any, timeout: int = 0, retry_interval: int = 0) -> None: ...
        def destroy(self, context: Any, instance: Any, network_info: Any,
                    block_device_info: Any = None, destroy_disks: bool = True,
                    destroy_secrets: bool = True) -> None: ...

    # ------------------------------------------------------------ cold moves
    def migrate_disk_and_power_off(self, context: Any, instance: Any, dest: str, flavor: Any,
                                   network_info: Any, block_device_info: Any = None,
                                   timeout: int = 0, retry_interval: int = 0) -> str:
        """Power off and move the disks to ``dest`` (``<uuid>_resize`` stays)."""
        if flavor.root_gb < instance.flavor.root_gb and instance.image_ref:
            raise exception.InstanceFaultRollback(
                exception.ResizeError(reason=_("Unable to resize disk down.")))
        dest_hv = hypervisor.lookup(dest)
        shared = self.hv.shares_instances_with(dest_hv)
        inst_base, inst_resize = self.hv.instance_dir(instance.uuid), self.hv.resize_dir(
            instance.uuid)
        target = dest_hv.instance_dir(instance.uuid)
        if not shared:
            target.mkdir(parents=True, exist_ok=True)
        self.power_off(instance, timeout, retry_interval)
        disk_info = disk_info_json(self.hv, instance)
        shutil.rmtree(inst_resize, ignore_errors=True)
        inst_base.rename(inst_resize)
        target.mkdir(parents=True, exist_ok=True)
        for name in ("disk", "disk.config"):
            if (inst_resize / name).exists():
                shutil.copyfile(inst_resize / name, target / name)
        # disk.info goes along (rewritten: each host has its own instances path)
        (target / "disk.info").unlink(missing_ok=True)
        dest_hv.record_disk_format(instance.uuid, target / "disk")
        return disk_info

    def finish_migration(self, context: Any, migration: Any, instance: Any, disk_info: Any,
                         network_info: Any, image_meta: Any, resize_instance: bool,
                         allocations: Any, block_device_info: Any = None,
                         power_on: bool = True, share_info: Any = None) -> None:
        """Define and boot the moved guest on this (destination) host."""
        self._create_image(instance, self._image_id(instance))
        self._create_guest(instance, self._disks(instance), power_on, network_info)
        if power_on:
            self._info("Instance running successfully.", instance)

    def confirm_migration(self, context: Any, migration: Any, instance: Any,
                          network_info: Any) -> None:
        """libvirt ``_cleanup_resize``: drop ``<uuid>_resize``, undefine here."""
        shutil.rmtree(self.hv.resize_dir(instance.uuid), ignore_errors=True)
        if instance.host != self._host:
            self.hv.undefine(instance.name)

    def finish_revert_migration(self, context: Any, instance: Any, network_info: Any,
                                migration: Any, block_device_info: Any = None,
                                power_on: bool = True, share_info: Any = None) -> None:
        """Restore ``<uuid>_resize`` and redefine and boot the source guest."""
        inst_base, inst_resize = (self.hv.instance_dir(instance.uuid),
                                  self.hv.resize_dir(instance.uuid))
        if inst_resize.exists():
            shutil.rmtree(inst_base, ignore_errors=True)
            inst_resize.rename(inst_base)
        self._create_guest(instance, self._disks(instance), power_on, network_info)
        if power_on:
            self._info("Instance running successfully.", instance)

    def get_instance_disk_info(self, instance: Any, block_device_info: Any = None) -> str:
        """JSON list of the local disks (for block live migration)."""
        return disk_info_json(self.hv, instance)

    # ------------------------------------------------------------ shared storage
    def instance_on_disk(self, instance: Any) -> bool:
        """Whether the instance's files are reachable here (evacuate)."""
        return os.access(self.hv.instance_dir(instance.uuid), os.W_OK)

    # libvirt passes the test file's absolute path: instances_path is the same
    # on every real host.  Embedded hosts each have their own instances path,
    # so the path travels relative to it.
    def check_instance_shared_storage_local(self, context: Any, instance: Any) -> Any:
        """Drop a temporary file into the instance dir for the other host."""
        dirpath = self.hv.instance_dir(instance.uuid)
        if not dirpath.exists():
            return None
        fd, tmp_file = tempfile.mkstemp(dir=dirpath)
        os.close(fd)
        return {"filename": os.path.relpath(tmp_file, self.hv.state.instances)}

    def check_instance_shared_storage_remote(self, context: Any, data: Any) -> bool:
        """Whether the other host's temporary file is visible here."""
        return (self.hv.state.instances / data["filename"]).exists()

    def check_instance_shared_storage_cleanup(self, context: Any, data: Any) -> None:
        """Remove the temporary file again."""
        if data:
            with_missing_ok(str(self.hv.state.instances / data["filename"]))

    # ------------------------------------------------------------ live migration
    def check_can_live_migrate_destination(self, context: Any, instance: Any,
                                           src_compute_info: Any, dst_compute_info: Any,
                                           block_migration: bool = False,
                                           disk_over_commit: bool = False) -> Any:
        """Create the shared-storage test file in this host's instances path."""
        fd, tmp_file = tempfile.mkstemp(dir=self.hv.state.instances)
        os.close(fd)
        data = objects.LibvirtLiveMigrateData()
        data.filename = os.path.basename(tmp_file)
        data.image_type = "default"
        data.graphics_listen_addr_vnc = "127.0.0.1"
        data.graphics_listen_addr_spice = "127.0.0.1"
        data.serial_listen_addr = None
        if block_migration is not None:
            data.block_migration = block_migration
        if disk_over_commit is not None:
            data.disk_over_commit = disk_over_commit
        data.disk_available_mb = dst_compute_info.get("disk_available_least", 0) * 1024
        data.dst_wants_file_backed_memory = False
        return data

    def cleanup_live_migration_destination_check(self, context: Any,
                                                 dest_check_data: Any) -> None:
        """Remove the shared-storage test file."""
        with_missing_ok(str(self.hv.state.instances / dest_check_data.filename))

    def check_can_live_migrate_source(self, context: Any, instance: Any, dest_check_data: Any,
                                      block_device_info: Any = None) -> Any:
        """Decide block vs shared-storage migration the way libvirt does."""
        data = dest_check_data
        data.is_shared_instance_path = (self.hv.state.instances / data.filename).exists()
        data.is_shared_block_storage = not instance.image_ref
        if "block_migration" not in data:
            data.block_migration = not data.is_on_shared_storage()
        if data.block_migration and data.is_on_shared_storage():
            raise exception.InvalidLocalStorage(
                reason=_("Block migration can not be used with shared storage."),
                path=self._host)
        if not data.block_migration and not data.is_on_shared_storage():
            raise exception.InvalidSharedStorage(
                reason=_("Shared storage live-migration requires either shared storage or "
                         "boot-from-volume with no local disks."), path=self._host)
        data.instance_relative_path = instance.uuid
        return data

    def pre_live_migration(self, context: Any, instance: Any, block_device_info: Any,
                           network_info: Any, disk_info: Any, migrate_data: Any) -> Any:
        """Create the instance dir, ``disk.info`` and backing disks here."""
        if not migrate_data.is_shared_instance_path:
            inst_dir = self.hv.instance_dir(instance.uuid)
            if inst_dir.exists():
                raise exception.DestinationDiskExists(path=str(inst_dir))
            inst_dir.mkdir(parents=True)
            for info in json.loads(disk_info) if disk_info else []:
                self.hv.record_disk_format(instance.uuid,
                                           inst_dir / os.path.basename(info["path"]))
            if not migrate_data.is_shared_block_storage:
                self._create_image(instance, self._image_id(instance))
        migrate_data.bdms = []
        migrate_data.target_connect_addr = None
        migrate_data.supported_perf_events = []
        migrate_data.serial_listen_ports = []
        return migrate_data

    def live_migration(self, context: Any, instance: Any, dest: str, post_method: Any,
                       recover_method: Any, block_migration: bool = False,
                       migrate_data: Any = None) -> None:
        """Move the running guest to ``dest``, then call ``post_method``."""
        dest_hv = hypervisor.lookup(dest)
        try:
            dom = self._require(instance)
            src_dir, dst_dir = self.hv.instance_dir(instance.uuid), dest_hv.instance_dir(
                instance.uuid)
            if block_migration and not self.hv.shares_instances_with(dest_hv):
                shutil.copyfile(src_dir / "disk", dst_dir / "disk")
            src_root, dst_root = str(self.hv.state.instances), str(dest_hv.state.instances)
            disks = [{k: v.replace(src_root, dst_root) for k, v in d.items()}
                     for d in dom.disks]
            self.hv.migrate(instance.name, dest_hv, disks)
            (dst_dir / "console.log").touch()
        except Exception:
            self._info("Live Migration failure", instance)
            recover_method(context, instance, dest, migrate_data)
            return
        self._info("Migration operation has completed", instance)
        post_method(context, instance, dest, block_migration, migrate_data)

    def post_live_migration(self, context: Any, instance: Any, block_device_info: Any,
                            migrate_data: Any = None) -> None:
        """Volumes would be disconnected here; nothing on the host."""

    def post_live_migration_at_source(self, context: Any, instance: Any,
                                      network_info: Any) -> None:
        """VIFs would be unplugged here; the domain is already gone."""

    def post_live_migration_at_destination(self, context: Any, instance: Any,
                                           network_info: Any, block_migration: bool = False,
                                           block_device_info: Any = None) -> None:
        """The migration already persisted the domain here."""

    def rollback_live_migration_at_destination(self, context: Any, instance: Any,
                                               network_info: Any, block_device_info: Any,
                                               destroy_disks: bool = True,
                                               migrate_data: Any = None) -> None:
        """Destroy what pre_live_migration created on this host."""
        try:
            self.destroy(context, instance, network_info, block_device_info, destroy_disks)
        finally:
            if migrate_data is not None and not migrate_data.is_shared_instance_path:
                shutil.rmtree(self.hv.instance_dir(instance.uuid), ignore_errors=True)


def with_missing_ok(path: str) -> None:
    """Remove a file that may already be gone."""
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
