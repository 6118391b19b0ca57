"""Defects in Nova itself (API, compute manager, resource tracker).

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import;
see that module for how defects work.
"""

from __future__ import annotations

import functools
import inspect
import threading
from typing import Any

from conformance.embedded.defects import (
    ACTIONS,
    CATALOGUE,
    LOCK,
    PLACEMENT,
    SERVER,
    bound_arguments,
    call_with,
    defect,
    switch_method,
)

_SUPPRESS = threading.local()
_LEAKED: dict[str, set[str]] = {"offload-keeps-allocations": set(),
                                "delete-keeps-allocations": set()}
_LOCK_EVENT = "compute_lock_instance"


def _keep_allocations_of(name: str, consumer: str) -> None:
    _LEAKED[name].add(consumer)


def _allocation_kept(consumer: str) -> bool:
    """Whether a leaked allocation must survive (also the periodic heal)."""
    if getattr(_SUPPRESS, "delete", False) and CATALOGUE.enabled("delete-keeps-allocations"):
        return True
    return any(consumer in uuids and CATALOGUE.enabled(name) for name, uuids in _LEAKED.items())


def _guard_allocation_deletes() -> None:
    """Make the report client skip deletes of allocations a defect keeps."""
    from nova.scheduler.client import report

    cls = report.SchedulerReportClient
    if getattr(cls.delete_allocation_for_instance, "_embedded_guard", False):
        return
    real = cls.delete_allocation_for_instance

    @functools.wraps(real)
    def delete(self: Any, context: Any, uuid: str, *args: Any, **kwargs: Any) -> Any:
        if _allocation_kept(uuid):
            if getattr(_SUPPRESS, "delete", False):
                _keep_allocations_of("delete-keeps-allocations", uuid)
            return None
        return real(self, context, uuid, *args, **kwargs)

    delete._embedded_guard = True  # type: ignore[attr-defined]
    cls.delete_allocation_for_instance = delete


# ------------------------------------------------------------------ placement
@defect(PLACEMENT, "offload-keeps-allocations")
def _offload_keeps(name: str, cloud: Any) -> None:
    """Shelve-offload keeps the server's allocations on its old compute node."""
    from nova.compute import resource_tracker

    _guard_allocation_deletes()

    def delete(self: Any, real: Any, context: Any, instance: Any) -> None:
        _keep_allocations_of(name, instance.uuid)

    switch_method(resource_tracker.ResourceTracker,
                  "delete_allocation_for_shelve_offloaded_instance", name, delete)


@defect(PLACEMENT, "delete-keeps-allocations")
def _delete_keeps(name: str, cloud: Any) -> None:
    """Deleting a server leaves its allocations in Placement (usage never drops)."""
    from nova.compute import manager

    _guard_allocation_deletes()

    def complete(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        _SUPPRESS.delete = True
        try:
            return real(self, *args, **kwargs)
        finally:
            _SUPPRESS.delete = False

    switch_method(manager.ComputeManager, "_complete_deletion", name, complete)


# ------------------------------------------------------------------ server attributes
def _other_flavor(context: Any, flavor: Any) -> Any:
    """Another flavor the instance's disk fits into (the next one by size)."""
    from nova import objects

    flavors = sorted(objects.FlavorList.get_all(context.elevated()),
                     key=lambda f: (f.memory_mb, f.vcpus, f.root_gb, f.flavorid))
    fitting = [f for f in flavors if f.flavorid != flavor.flavorid and not f.extra_specs
               and f.root_gb >= flavor.root_gb]
    return fitting[0] if fitting else flavor


@defect(SERVER, "unshelve-changes-flavor")
def _unshelve_flavor(name: str, cloud: Any) -> None:
    """Unshelve brings the server back with a different flavor."""
    from nova.compute import manager

    def unshelve(self: Any, real: Any, context: Any, instance: Any, *args: Any,
                 **kwargs: Any) -> Any:
        instance.flavor = _other_flavor(context, instance.flavor)
        instance.save()
        return real(self, context, instance, *args, **kwargs)

    switch_method(manager.ComputeManager, "_unshelve_instance", name, unshelve)


@defect(SERVER, "rebuild-changes-ip")
def _rebuild_renumbers(name: str, cloud: Any) -> None:
    """Rebuild gives the server a new fixed IP address."""
    from nova.compute import manager

    from conformance.embedded import fixes

    def rebuild(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        arguments = bound_arguments(real, self, args, kwargs)
        context, instance = arguments["context"], arguments["instance"]
        if not arguments["evacuate"]:
            for port in list(cloud.neutron._ports.values()):
                if port.get("device_id") == instance.uuid:
                    fixes.renumber_port(cloud.neutron, port["id"])
            nw_info = self.network_api.get_instance_nw_info(context, instance)
            return call_with(real, self, args, kwargs, network_info=nw_info)
        return real(self, *args, **kwargs)

    switch_method(manager.ComputeManager, "_rebuild_default_impl", name, rebuild)


# ------------------------------------------------------------------ lock
def _lock_checked_links(api_cls: Any) -> list[tuple[str, Any, Any]]:
    """(attribute, wrapper above the check or None, the check) per method."""
    from nova.compute import api as compute_api

    check_code = compute_api.check_instance_lock(lambda *a, **k: None).__code__
    links: list[tuple[str, Any, Any]] = []
    for attr, func in vars(api_cls).items():
        parent: Any = None
        current = func
        while inspect.isfunction(current):
            if current.__code__ is check_code:
                links.append((attr, parent, current))
                break
            parent, current = current, getattr(current, "__wrapped__", None)
    return links


@defect(LOCK, "lock-not-enforced")
def _lock_ignored(name: str, cloud: Any) -> None:
    """A locked server accepts actions from its non-admin owner."""
    from nova.compute import api as compute_api

    for attr, parent, checked in _lock_checked_links(compute_api.API):
        unchecked = checked.__wrapped__

        def maybe_checked(*args: Any, _checked: Any = checked, _unchecked: Any = unchecked,
                          **kwargs: Any) -> Any:
            return (_unchecked if CATALOGUE.enabled(name) else _checked)(*args, **kwargs)

        functools.update_wrapper(maybe_checked, unchecked)
        if parent is None:
            setattr(compute_api.API, attr, maybe_checked)
            continue
        for cell in parent.__closure__ or ():
            if cell.cell_contents is checked:
                cell.cell_contents = maybe_checked
        parent.__wrapped__ = maybe_checked


@defect(LOCK, "unlock-ignores-admin-lock")
def _member_unlocks(name: str, cloud: Any) -> None:
    """A project member can unlock a server that an admin locked."""
    from nova.compute import api as compute_api

    switch_method(compute_api.API, "is_expected_locked_by", name,
                  lambda self, real, context, instance: True)


@defect(ACTIONS, "lock-reaches-compute")
def _lock_cast(name: str, cloud: Any) -> None:
    """Lock is cast to the compute host: the lock action gets a compute event."""
    from nova import exception, objects
    from nova.compute import api as compute_api

    def lock(self: Any, real: Any, context: Any, instance: Any, *args: Any,
             **kwargs: Any) -> Any:
        result = real(self, context, instance, *args, **kwargs)
        admin = context.elevated()
        try:
            objects.InstanceActionEvent.event_start(admin, instance.uuid, _LOCK_EVENT,
                                                    want_result=False, host=instance.host)
            objects.InstanceActionEvent.event_finish(admin, instance.uuid, _LOCK_EVENT,
                                                     want_result=False)
        except exception.InstanceActionNotFound:
            pass  # lock was a no-op (already locked by the owner): no action
        return result

    switch_method(compute_api.API, "lock", name, lock)
