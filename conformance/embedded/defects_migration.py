"""Defects of moves between hosts: cold migration, live migration and evacuate.

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import (see
that module for how defects work).  Each one breaks a MIGRATE-, LIVE- or
EVACUATE- guarantee the way a real regression would: a port renumbered on
the destination, an allocation left on the wrong consumer, a migration record
left in the wrong status, a host left uncleaned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from conformance.embedded.defects import (
    ACTIONS,
    CLEANUP,
    HOST,
    PLACEMENT,
    SERVER,
    bound_argument,
    compute_manager,
    defect,
    embedded_driver,
    keeps_move_allocation,
    switch_method,
)

MIGRATION = "migration-records"
# long enough for a poller (2 s apart at most, plus slow answers on a loaded host) to see it
FLIP_SECONDS = 15.0
_LOCAL = threading.local()


@contextlib.contextmanager
def _flag(name: str) -> Iterator[None]:
    """Mark this thread as inside ``name`` (e.g. the evacuated-instances cleanup)."""
    setattr(_LOCAL, name, True)
    try:
        yield
    finally:
        setattr(_LOCAL, name, False)


def _mark_thread(cls: Any, attr: str, flag: str) -> None:
    """Wrap ``cls.attr`` so that the thread running it carries ``flag`` (installed once)."""
    real = getattr(cls, attr)
    if getattr(real, f"_marks_{flag}", False):
        return

    def marked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _flag(flag):
            return real(self, *args, **kwargs)

    setattr(marked, f"_marks_{flag}", True)
    marked.__wrapped__ = real  # type: ignore[attr-defined]
    setattr(cls, attr, marked)


def _while(flag: str, cls: Any, attr: str, name: str, buggy: Callable[..., Any]) -> None:
    """Like switch_method, but misbehave only on a thread carrying ``flag``."""
    def maybe(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(_LOCAL, flag, False):
            return buggy(self, real, *args, **kwargs)
        return real(self, *args, **kwargs)

    switch_method(cls, attr, name, maybe)


def _renumber_ports(cloud: Any, instance_uuid: str) -> None:
    from conformance.embedded import fixes

    for port in list(cloud.neutron._ports.values()):
        if port.get("device_id") == instance_uuid:
            fixes.renumber_port(cloud.neutron, port["id"])


def _merge_allocations(report: Any, context: Any, source: str, target: str) -> None:
    """Move every allocation of consumer ``source`` onto ``target``, keeping target's own."""
    src = report.get_allocs_for_consumer(context, source)
    dst = report.get_allocs_for_consumer(context, target)
    merged: dict[str, dict[str, dict[str, int]]] = {
        rp: {"resources": dict(a["resources"])} for rp, a in dst["allocations"].items()}
    for rp, alloc in src["allocations"].items():
        resources = merged.setdefault(rp, {"resources": {}})["resources"]
        for rc, amount in alloc["resources"].items():
            resources[rc] = resources.get(rc, 0) + amount
    body = {source: {"allocations": {}, "project_id": src["project_id"], "user_id": src["user_id"],
                     "consumer_generation": src["consumer_generation"]},
            target: {"allocations": merged, "project_id": dst["project_id"], "user_id": dst["user_id"],
                     "consumer_generation": dst["consumer_generation"]}}
    report.post("/allocations", body, version="1.28", global_request_id=context.global_id)


# ------------------------------------------------------------------ cold migration
@defect(SERVER, "migrate-changes-ip")
def _migrate_renumbers(name: str, cloud: Any) -> None:
    """A cold migration gives the server a new fixed IP on the destination."""
    def finish(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        migration = bound_argument(real, self, args, kwargs, "migration")
        if migration.migration_type == "migration":
            _renumber_ports(cloud, bound_argument(real, self, args, kwargs, "instance").uuid)
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "_finish_resize", name, finish)


@defect(MIGRATION, "confirm-leaves-migration-confirming")
def _confirm_status(name: str, cloud: Any) -> None:
    """Confirming a cold migration leaves its migration record `confirming`."""
    from nova.compute import resource_tracker

    def drop(self: Any, real: Any, context: Any, instance: Any, migration: Any) -> Any:
        result = real(self, context, instance, migration)
        if migration.migration_type == "migration":
            migration.status = "confirming"
            migration.save()
        return result

    switch_method(resource_tracker.ResourceTracker, "drop_move_claim_at_source", name, drop)


@defect(ACTIONS, "resize-instance-event-missing")
def _no_resize_event(name: str, cloud: Any) -> None:
    """The compute_resize_instance event of a migration or resize is never recorded."""
    from nova.compute import utils

    def enter(self: Any, real: Any) -> Any:
        return self if self.event_name == "compute_resize_instance" else real(self)

    def leave(self: Any, real: Any, *exc: Any) -> Any:
        return False if self.event_name == "compute_resize_instance" else real(self, *exc)

    switch_method(utils.EventReporter, "__enter__", name, enter)
    switch_method(utils.EventReporter, "__exit__", name, leave)


@defect(PLACEMENT, "migration-allocation-merged")
def _merge_on_finish(name: str, cloud: Any) -> None:
    """In VERIFY_RESIZE the instance consumer holds source and destination; the migration nothing."""
    def finish(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        migration = bound_argument(real, self, args, kwargs, "migration")
        if migration.migration_type == "migration":
            _merge_allocations(self.reportclient, bound_argument(real, self, args, kwargs, "context"),
                               migration.uuid, migration.instance_uuid)
        return result

    switch_method(compute_manager(), "_finish_resize", name, finish)


@defect(PLACEMENT, "confirm-keeps-migration-allocation")
def _confirm_keeps(name: str, cloud: Any) -> None:
    """Confirming a cold migration leaves the migration consumer's allocation on the source."""
    keeps_move_allocation(name, "migration")


@defect(PLACEMENT, "revert-keeps-allocations")
def _revert_no_swap(name: str, cloud: Any) -> None:
    """Reverting leaves the instance's allocation on the destination and the migration's on the source."""
    switch_method(compute_manager(), "_revert_allocation", name,
                  lambda self, real, context, instance, migration: False)


@defect(CLEANUP, "revert-leaves-destination-files")
def _revert_keeps_files(name: str, cloud: Any) -> None:
    """Reverting a migration undefines the destination domain but leaves its instance directory."""
    _mark_thread(compute_manager(), "revert_resize", "reverting")
    _while("reverting", compute_manager(), "_is_instance_storage_shared", name,
           lambda self, real, *args, **kwargs: True)


# ------------------------------------------------------------------ live migration
@defect(SERVER, "live-migration-changes-ip")
def _live_renumbers(name: str, cloud: Any) -> None:
    """A live migration gives the server a new fixed IP on the destination."""
    def post(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        _renumber_ports(cloud, bound_argument(real, self, args, kwargs, "instance").uuid)
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "post_live_migration_at_destination", name, post)


@defect(SERVER, "live-migration-flips-power-state")
def _live_flips_power(name: str, cloud: Any) -> None:
    """While an ACTIVE server live-migrates its power_state is shown as 3 (paused) for a while."""
    from nova.compute import power_state

    def migrate(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        instance = bound_argument(real, self, args, kwargs, "instance")
        if instance.power_state == power_state.RUNNING:
            instance.power_state = power_state.PAUSED
            instance.save()
            time.sleep(FLIP_SECONDS)
            instance.power_state = power_state.RUNNING
            instance.save()
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "live_migration", name, migrate)


@defect(HOST, "live-migration-resumes-paused-guest")
def _live_resumes(name: str, cloud: Any) -> None:
    """A PAUSED server's guest runs again on the destination after a live migration (power_state 1)."""
    from conformance.embedded.hoststate import PAUSED

    def post(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        instance = bound_argument(real, self, args, kwargs, "instance")
        dom = self.hv.get(instance.name)
        if dom is not None and dom.state == PAUSED:
            self.hv.unpause(instance.name)
        return result

    switch_method(embedded_driver(), "post_live_migration_at_destination", name, post)


@defect(MIGRATION, "live-migration-stays-running")
def _live_not_completed(name: str, cloud: Any) -> None:
    """A finished live migration's record stays `running` instead of `completed`."""
    def post(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        migrate_data = bound_argument(real, self, args, kwargs, "migrate_data")
        if migrate_data is not None and migrate_data.obj_attr_is_set("migration"):
            migrate_data.migration.status = "running"
            migrate_data.migration.save()
        return result

    switch_method(compute_manager(), "_post_live_migration", name, post)


@defect(PLACEMENT, "live-migration-keeps-migration-allocation")
def _live_keeps(name: str, cloud: Any) -> None:
    """A live migration leaves the migration consumer's allocation on the source."""
    keeps_move_allocation(name, "live-migration")


@defect(HOST, "shared-live-migration-copies-disk")
def _shared_copies(name: str, cloud: Any) -> None:
    """A live migration on a shared instances path rewrites the disk as a copy (a new file)."""
    from conformance.embedded import hypervisor

    def migrate(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        instance = bound_argument(real, self, args, kwargs, "instance")
        if self.hv.shares_instances_with(hypervisor.lookup(bound_argument(real, self, args, kwargs, "dest"))):
            disk = self.hv.instance_dir(instance.uuid) / "disk"
            copy = disk.with_name("disk.copy")
            shutil.copyfile(disk, copy)
            os.replace(copy, disk)
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "live_migration", name, migrate)


# ------------------------------------------------------------------ evacuate
@defect(SERVER, "evacuate-ignores-source-up")
def _evacuate_while_up(name: str, cloud: Any) -> None:
    """Evacuate is accepted while the source nova-compute is still up."""
    from nova.compute import api as compute_api
    from nova.servicegroup import api as servicegroup_api

    _mark_thread(compute_api.API, "evacuate", "evacuating")
    _while("evacuating", servicegroup_api.API, "service_is_up", name,
           lambda self, real, member: False)


def _rebuild_evacuated(name: str, buggy: Callable[..., Any]) -> None:
    """switch_method on _do_rebuild_instance, misbehaving for evacuations only."""
    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if bound_argument(real, self, args, kwargs, "evacuate"):
            return buggy(self, real, *args, **kwargs)
        return real(self, *args, **kwargs)

    switch_method(compute_manager(), "_do_rebuild_instance", name, rebuild)


@defect(SERVER, "evacuate-changes-ip")
def _evacuate_renumbers(name: str, cloud: Any) -> None:
    """An evacuated server comes up on the destination with a new fixed IP."""
    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        _renumber_ports(cloud, bound_argument(real, self, args, kwargs, "instance").uuid)
        return real(self, *args, **kwargs)

    _rebuild_evacuated(name, rebuild)


@defect(SERVER, "evacuate-ignores-target-state")
def _evacuate_stays_active(name: str, cloud: Any) -> None:
    """Evacuate at >= 2.95 leaves the server ACTIVE instead of stopping it."""
    from conformance.embedded.defects import call_with

    _rebuild_evacuated(name, lambda self, real, *args, **kwargs:
                       call_with(real, self, args, kwargs, target_state=None))


@defect(PLACEMENT, "evacuate-frees-source-early")
def _evacuate_drops_source(name: str, cloud: Any) -> None:
    """Evacuate removes the source allocation at once instead of when the source compute restarts."""
    from nova import objects

    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        context = bound_argument(real, self, args, kwargs, "context")
        migration = bound_argument(real, self, args, kwargs, "migration")
        node = objects.ComputeNode.get_by_host_and_nodename(context, migration.source_compute,
                                                            migration.source_node)
        self.reportclient.remove_provider_tree_from_instance_allocation(context, migration.instance_uuid,
                                                                        node.uuid)
        return result

    _rebuild_evacuated(name, rebuild)


@defect(MIGRATION, "evacuation-completed-early")
def _evacuation_completed(name: str, cloud: Any) -> None:
    """An evacuation record goes `completed` on the destination instead of `done` (never cleaned up)."""
    from nova.compute import resource_tracker

    def finish(self: Any, real: Any, instance: Any, node: Any, migration: Any) -> Any:
        result = real(self, instance, node, migration)
        if migration:
            migration.status = "completed"
            migration.save()
        return result

    switch_method(resource_tracker.ResourceTracker, "finish_evacuation", name, finish)


@defect(PLACEMENT, "evacuated-source-keeps-allocation")
def _restart_keeps_allocation(name: str, cloud: Any) -> None:
    """A restarted source compute leaves the evacuated server's allocation on its provider."""
    from nova.scheduler.client import report

    _mark_thread(compute_manager(), "_destroy_evacuated_instances", "evacuated_cleanup")
    _while("evacuated_cleanup", report.SchedulerReportClient,
           "remove_provider_tree_from_instance_allocation", name, lambda self, real, *args, **kwargs: True)


@defect(MIGRATION, "evacuation-never-completed")
def _restart_not_completed(name: str, cloud: Any) -> None:
    """A restarted source compute cleans up but leaves the evacuation record `done`."""
    def cleanup(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        evacuations = real(self, *args, **kwargs)
        for migration in evacuations.values():
            if migration.status == "completed":
                migration.status = "done"
                migration.save()
        return evacuations

    switch_method(compute_manager(), "_destroy_evacuated_instances", name, cleanup)


@defect(CLEANUP, "evacuated-source-not-cleaned")
def _restart_keeps_guest(name: str, cloud: Any) -> None:
    """A restarted source compute leaves the evacuated server's domain and instance directory."""
    _mark_thread(compute_manager(), "_destroy_evacuated_instances", "evacuated_cleanup")
    _while("evacuated_cleanup", embedded_driver(), "destroy", name, lambda self, real, *args, **kwargs: None)
