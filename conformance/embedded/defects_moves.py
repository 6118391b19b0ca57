"""Defects of shelve / shelve-offload / unshelve, rebuild and resize (with confirm / revert).

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import (see
that module for how defects work).  Each one breaks a SHELVE-, REBUILD- or
RESIZE- guarantee the way a real regression would: a guest left running, an
allocation freed too early or never, a host field never cleared, a policy
opened, the wrong error code, an instance-action event never recorded, a
flavor not applied, a disk not recreated.  Resize defects act only on
migrations of type ``resize``, so cold migration (defects_migration) keeps
its own.
"""

from __future__ import annotations

from typing import Any

from conformance.embedded.defects import (
    ACTIONS,
    CLEANUP,
    HOST,
    PLACEMENT,
    SERVER,
    bound_argument,
    bound_arguments,
    call_with,
    compute_manager,
    defect,
    drop_event,
    embedded_driver,
    keeps_move_allocation,
    switch_method,
)

POLICY = "policy"
RESIZE = "resize"  # Migration.migration_type of a resize (the flavor changes)


def _delete_allocations(manager: Any, context: Any, consumer: str, consumer_type: str = "instance") -> None:
    manager.reportclient.delete_allocation_for_instance(context, consumer, consumer_type=consumer_type,
                                                        force=True)


# ------------------------------------------------------------------ shelve
@defect(HOST, "shelve-leaves-guest-running")  # SHELVE-01
def _shelve_no_power_off(name: str, cloud: Any) -> None:
    """Shelve snapshots the guest without powering it off: SHELVED with power_state 1."""
    from nova.compute import task_states

    def power_off(self: Any, real: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.task_state == task_states.SHELVING:
            return None
        return real(self, instance, *args, **kwargs)

    switch_method(embedded_driver(), "power_off", name, power_off)


@defect(CLEANUP, "unshelve-keeps-shelved-image")  # SHELVE-02
def _shelved_image_kept(name: str, cloud: Any) -> None:
    """Unshelve never deletes the '<name>-shelved' snapshot image from Glance."""
    switch_method(compute_manager(), "_delete_snapshot_of_shelved_instance", name,
                  lambda self, real, *args, **kwargs: None)


@defect(PLACEMENT, "shelve-frees-allocations")  # SHELVE-03
def _shelve_frees(name: str, cloud: Any) -> None:
    """Shelving (without offload) deletes the server's allocations: a SHELVED server holds none."""
    def shelve(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        _delete_allocations(self, context, instance.uuid)  # before SHELVED is saved: no window
        return real(self, context, instance, *args, **kwargs)

    switch_method(compute_manager(), "_shelve_instance", name, shelve)


@defect(SERVER, "offload-keeps-host")  # SHELVE-04
def _offload_keeps_host(name: str, cloud: Any) -> None:
    """Shelve-offload never clears host, node and compute_id: the server still names its old host."""
    from nova.compute import vm_states

    def nil_out(self: Any, real: Any, instance: Any) -> Any:
        if instance.vm_state == vm_states.SHELVED_OFFLOADED:
            return None
        return real(self, instance)

    switch_method(compute_manager(), "_nil_out_instance_obj_host_and_node", name, nil_out)


@defect(CLEANUP, "offload-leaves-instance-dir")  # SHELVE-06
def _offload_keeps_files(name: str, cloud: Any) -> None:
    """Shelve-offload undefines the domain but leaves the instance directory on the old host."""
    from nova.compute import task_states

    def destroy(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if bound_argument(real, self, args, kwargs, "instance").task_state == task_states.SHELVING_OFFLOADING:
            return call_with(real, self, args, kwargs, destroy_disks=False)
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "destroy", name, destroy)


@defect(ACTIONS, "shelve-event-missing")  # SHELVE-07
def _no_shelve_event(name: str, cloud: Any) -> None:
    """The compute_shelve_instance event of a shelve is never recorded."""
    drop_event(name, "compute_shelve_instance")


@defect(ACTIONS, "unshelve-schedule-event-missing")  # SHELVE-09
def _no_schedule_event(name: str, cloud: Any) -> None:
    """The conductor's schedule_instances event of an unshelve is never recorded."""
    drop_event(name, "schedule_instances")


@defect(PLACEMENT, "unshelve-loses-allocations")  # SHELVE-10
def _unshelve_unclaimed(name: str, cloud: Any) -> None:
    """An unshelved server ends ACTIVE holding no allocations on its new host."""
    from nova import context as nova_context
    from nova.compute import vm_states

    def after_spawn(self: Any, real: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.vm_state == vm_states.SHELVED_OFFLOADED:  # before ACTIVE is saved: no window
            _delete_allocations(self, nova_context.get_admin_context(), instance.uuid)
        return real(self, instance, *args, **kwargs)

    switch_method(compute_manager(), "_update_instance_after_spawn", name, after_spawn)


@defect(POLICY, "unshelve-to-host-open")  # SHELVE-11
def _unshelve_to_host_open(name: str, cloud: Any) -> None:
    """Policy os-shelve:unshelve_to_host lets a project member pick the host (202, not 403)."""
    from nova import context as nova_context

    rule = "os_compute_api:os-shelve:unshelve_to_host"

    def can(self: Any, real: Any, action: str, *args: Any, **kwargs: Any) -> Any:
        return True if action == rule else real(self, action, *args, **kwargs)

    switch_method(nova_context.RequestContext, "can", name, can)


@defect(SERVER, "unshelve-shelved-with-az-400")  # SHELVE-12
def _unshelve_conflict_is_400(name: str, cloud: Any) -> None:
    """An AZ or host given to unshelve a SHELVED (not offloaded) server answers 400 instead of 409."""
    from nova import exception
    from nova.compute import api as compute_api

    def unshelve(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return real(self, *args, **kwargs)
        except exception.UnshelveInstanceInvalidState as exc:
            raise exception.InvalidRequest() from exc

    switch_method(compute_api.API, "unshelve", name, unshelve)


# ------------------------------------------------------------------ rebuild
@defect(SERVER, "rebuild-starts-stopped-server")  # REBUILD-02
def _rebuild_forgets_stopped(name: str, cloud: Any) -> None:
    """A rebuild of a stopped server leaves it ACTIVE and running instead of stopping it again."""
    from nova.compute import vm_states

    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = bound_arguments(real, self, args, kwargs)
        instance = arguments["instance"]
        if not arguments["evacuate"] and instance.vm_state == vm_states.STOPPED:
            instance.vm_state = vm_states.ACTIVE
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "_do_rebuild_instance", name, rebuild)


@defect(ACTIONS, "rebuild-server-event-missing")  # REBUILD-03
def _no_rebuild_event(name: str, cloud: Any) -> None:
    """The conductor's rebuild_server event of a rebuild is never recorded."""
    drop_event(name, "rebuild_server")


@defect(PLACEMENT, "rebuild-drops-allocations")  # REBUILD-04
def _rebuild_frees(name: str, cloud: Any) -> None:
    """A rebuild (not an evacuation) deletes the server's allocations while it keeps running."""
    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = bound_arguments(real, self, args, kwargs)
        if not arguments["evacuate"]:  # before the rebuilt server is saved ACTIVE: no window
            _delete_allocations(self, arguments["context"], arguments["instance"].uuid)
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "_do_rebuild_instance", name, rebuild)


@defect(HOST, "rebuild-keeps-old-disk")  # REBUILD-05
def _rebuild_keeps_disk(name: str, cloud: Any) -> None:
    """A rebuild keeps the old root disk: the guest still boots the old image (API shows the new one)."""
    from nova.compute import task_states

    old_disks: dict[str, list[dict[str, str]]] = {}

    def destroy(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        instance = bound_argument(real, self, args, kwargs, "instance")
        if instance.task_state == task_states.REBUILDING:
            dom = self.hv.get(instance.name)
            if dom is not None:
                old_disks[instance.uuid] = dom.disks
            return call_with(real, self, args, kwargs, destroy_disks=False)
        return real(self, *args, **kwargs)

    def spawn(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        instance = bound_argument(real, self, args, kwargs, "instance")
        disks = old_disks.pop(instance.uuid, None)
        if disks is not None:  # the kept disk is an overlay of the old image: so is the domain's
            self.hv.define(instance.name, instance.uuid, instance.flavor.vcpus, instance.flavor.memory_mb,
                           disks)
        return result

    switch_method(embedded_driver(), "destroy", name, destroy)
    switch_method(embedded_driver(), "spawn", name, spawn)


# ------------------------------------------------------------------ resize
@defect(SERVER, "resize-confirm-restores-old-flavor")  # RESIZE-01
def _confirm_old_flavor(name: str, cloud: Any) -> None:
    """After confirmResize the server shows its old flavor again (the resources stay the new ones)."""
    from nova.compute import resource_tracker

    def drop(self: Any, real: Any, context: Any, instance: Any, migration: Any) -> Any:
        result = real(self, context, instance, migration)
        if migration.migration_type == RESIZE and instance.old_flavor is not None:
            instance.flavor = instance.old_flavor  # saved with vm_state ACTIVE by _confirm_resize
        return result

    switch_method(resource_tracker.ResourceTracker, "drop_move_claim_at_source", name, drop)


@defect(PLACEMENT, "resize-drops-source-allocation")  # RESIZE-02
def _resize_drops_source(name: str, cloud: Any) -> None:
    """In VERIFY_RESIZE the migration consumer holds nothing: the source allocation is gone."""
    def finish(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = bound_arguments(real, self, args, kwargs)
        migration = arguments["migration"]
        if migration.migration_type == RESIZE:  # before VERIFY_RESIZE is saved: no window
            _delete_allocations(self, arguments["context"], migration.uuid, "migration")
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "_finish_resize", name, finish)


@defect(PLACEMENT, "resize-confirm-keeps-migration-allocation")  # RESIZE-03
def _confirm_keeps_source(name: str, cloud: Any) -> None:
    """Confirming a resize leaves the migration consumer's (old flavor) allocation on the source."""
    keeps_move_allocation(name, RESIZE)


@defect(SERVER, "resize-revert-keeps-new-flavor")  # RESIZE-04
def _revert_new_flavor(name: str, cloud: Any) -> None:
    """After revertResize the server is back on its source host but still shows the new flavor."""
    def revert(self: Any, real: Any, instance: Any, migration: Any) -> Any:
        new = instance.flavor
        result = real(self, instance, migration)
        if migration.migration_type == RESIZE:
            instance.flavor = new
            instance.save()
        return result

    switch_method(compute_manager(), "_revert_instance_flavor_host_node", name, revert)


@defect(HOST, "resize-powers-on-stopped-guest")  # RESIZE-06
def _resize_powers_on(name: str, cloud: Any) -> None:
    """A resize of a stopped server boots the guest on the destination: VERIFY_RESIZE with power 1."""
    from nova.compute import power_state

    def finish(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if bound_argument(real, self, args, kwargs, "migration").migration_type != RESIZE:
            return real(self, *args, **kwargs)
        result = call_with(real, self, args, kwargs, power_on=True)
        # what the power-state sync would find: Nova's own save of RESIZED carries it, so the
        # API shows it at once rather than after the next periodic run
        bound_argument(real, self, args, kwargs, "instance").power_state = power_state.RUNNING
        return result

    switch_method(embedded_driver(), "finish_migration", name, finish)
