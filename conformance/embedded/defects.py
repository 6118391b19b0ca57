"""Catalogue of injectable defects: each one breaks one documented guarantee.

A defect is a small, switchable patch: a wrapper installed once at start-up
that checks the defect's flag on every call and only then behaves wrongly.
Defects are switched on at start-up (``nova.json`` ``defects``) or at run
time (control endpoint), so a conformance suite can prove that it notices
each violation.  The installer's docstring is the defect's description.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from typing import Any

HOST = "host-consistency"
CLEANUP = "host-cleanup"
PLACEMENT = "placement-allocations"
SERVER = "server-attributes"
LOCK = "lock"
ACTIONS = "instance-actions"
IMAGE = "snapshot-image"

Installer = Callable[[str, Any], None]


@dataclasses.dataclass
class Defect:
    """One catalogue entry."""

    name: str
    family: str
    description: str
    install: Installer
    enabled: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The entry as the control endpoint shows it."""
        return {"name": self.name, "family": self.family,
                "description": self.description, "enabled": self.enabled}


class Catalogue:
    """All known defects and their run-time switches."""

    def __init__(self) -> None:
        self._defects: dict[str, Defect] = {}
        self._installed = False
        self._lock = threading.Lock()

    def add(self, defect: Defect) -> None:
        """Register a defect (import time)."""
        self._defects[defect.name] = defect

    def __iter__(self) -> Iterator[Defect]:
        return iter(sorted(self._defects.values(), key=lambda d: d.name))

    def enabled(self, name: str) -> bool:
        """Whether defect ``name`` is switched on (cheap; called per call)."""
        defect = self._defects.get(name)
        return defect is not None and defect.enabled

    def switch(self, name: str, on: bool) -> Defect:
        """Switch a defect on or off; KeyError for an unknown name."""
        with self._lock:
            defect = self._defects[name]
            defect.enabled = on
            return defect

    def active(self) -> list[str]:
        """Names of the defects that are on."""
        return [d.name for d in self if d.enabled]

    def install(self, cloud: Any) -> None:
        """Install every defect's (inactive) patch; idempotent."""
        with self._lock:
            if self._installed:
                return
            for defect in self:
                defect.install(defect.name, cloud)
            self._installed = True


CATALOGUE = Catalogue()


def defect(family: str, name: str) -> Callable[[Installer], Installer]:
    """Register the decorated installer as defect ``name`` of ``family``."""
    def register(install: Installer) -> Installer:
        doc = inspect.getdoc(install) or name
        CATALOGUE.add(Defect(name, family, doc.splitlines()[0], install))
        return install
    return register


def switch_method(cls: Any, attr: str, name: str, buggy: Callable[..., Any]) -> None:
    """Replace ``cls.attr`` by a wrapper calling ``buggy(self, real, ...)``
    while defect ``name`` is on, and the real method otherwise."""
    real = getattr(cls, attr)

    @functools.wraps(real)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if CATALOGUE.enabled(name):
            return buggy(self, real, *args, **kwargs)
        return real(self, *args, **kwargs)

    setattr(cls, attr, wrapper)


def call_with(real: Callable[..., Any], self: Any, args: tuple[Any, ...],
              kwargs: dict[str, Any], **overrides: Any) -> Any:
    """Call ``real`` with some arguments replaced, however they were passed."""
    bound = inspect.signature(real).bind(self, *args, **kwargs)
    bound.arguments.update(overrides)
    return real(*bound.args, **bound.kwargs)


def bound_arguments(real: Callable[..., Any], self: Any, args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments of a call of ``real`` by name, defaults included, however they were passed."""
    bound = inspect.signature(real).bind(self, *args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


def bound_argument(real: Callable[..., Any], self: Any, args: tuple[Any, ...],
                   kwargs: dict[str, Any], name: str) -> Any:
    """Argument ``name`` of a call of ``real`` (its default if the caller left it out)."""
    return bound_arguments(real, self, args, kwargs)[name]


def embedded_driver() -> Any:
    """The embedded cloud's virt driver class (imported when a defect is installed)."""
    from conformance.embedded.driver import EmbeddedDriver

    return EmbeddedDriver


def compute_manager() -> Any:
    """Nova's ComputeManager class (imported when a defect is installed)."""
    from nova.compute import manager

    return manager.ComputeManager


def drop_event(name: str, event: str) -> None:
    """While ``name`` is on, never record the instance-action event ``event`` (EventReporter does nothing)."""
    from nova.compute import utils

    def enter(self: Any, real: Any) -> Any:
        return self if self.event_name == event else real(self)

    def leave(self: Any, real: Any, *exc: Any) -> Any:
        return False if self.event_name == event else real(self, *exc)

    switch_method(utils.EventReporter, "__enter__", name, enter)
    switch_method(utils.EventReporter, "__exit__", name, leave)


def frees_allocations(method: str, name: str) -> None:
    """While ``name`` is on, ComputeManager.``method`` deletes the server's allocations once it is done."""
    def act(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        result = real(self, *args, **kwargs)
        context = bound_argument(real, self, args, kwargs, "context")
        self.reportclient.delete_allocation_for_instance(
            context, bound_argument(real, self, args, kwargs, "instance").uuid, force=True)
        return result

    switch_method(compute_manager(), method, name, act)


def keeps_move_allocation(name: str, migration_type: str) -> None:
    """While ``name`` is on, a finished ``migration_type`` move keeps the migration consumer's allocation."""
    def delete(self: Any, real: Any, context: Any, instance: Any, migration: Any) -> Any:
        if migration.migration_type == migration_type:
            return None
        return real(self, context, instance, migration)

    switch_method(compute_manager(), "_delete_allocation_after_move", name, delete)


# ------------------------------------------------------------------ host state
@defect(HOST, "pause-leaves-domain-running")
def _pause_noop(name: str, cloud: Any) -> None:
    """Pause leaves the domain running: the API says PAUSED, virsh says running."""
    switch_method(embedded_driver(), "pause", name, lambda self, real, instance: self._require(instance))


@defect(HOST, "launch-wrong-power-state")
def _launch_not_started(name: str, cloud: Any) -> None:
    """A new server's domain is defined but never started: ACTIVE with power_state 4."""
    from nova.compute import vm_states

    def spawn(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        instance = bound_argument(real, self, args, kwargs, "instance")
        if instance.vm_state == vm_states.BUILDING:
            return call_with(real, self, args, kwargs, power_on=False)
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "spawn", name, spawn)


@defect(HOST, "suspend-no-managed-save")
def _suspend_destroys(name: str, cloud: Any) -> None:
    """Suspend destroys the guest without a managed-save image (memory is lost)."""
    def suspend(self: Any, real: Any, context: Any, instance: Any) -> None:
        self._require(instance)
        self.hv.destroy(instance.name)

    switch_method(embedded_driver(), "suspend", name, suspend)


@defect(HOST, "rescue-no-rescue-disk")
def _rescue_without_disk(name: str, cloud: Any) -> None:
    """Rescue boots the original disk again: no disk.rescue, no rescue device."""
    def rescue(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        instance = bound_argument(real, self, args, kwargs, "instance")
        (self.hv.instance_dir(instance.uuid) / "disk.rescue").unlink(missing_ok=True)
        self.hv.define(instance.name, instance.uuid, instance.flavor.vcpus,
                       instance.flavor.memory_mb, self._disks(instance))

    switch_method(embedded_driver(), "rescue", name, rescue)


@defect(HOST, "hard-reboot-no-redefine")
def _hard_reboot_is_soft(name: str, cloud: Any) -> None:
    """A HARD reboot behaves like a SOFT one: the domain is not destroyed and redefined."""
    def reboot(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if bound_argument(real, self, args, kwargs, "reboot_type") == "HARD":
            return call_with(real, self, args, kwargs, reboot_type="SOFT")
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "reboot", name, reboot)


@defect(HOST, "soft-reboot-redefines")
def _soft_reboot_is_hard(name: str, cloud: Any) -> None:
    """A SOFT reboot destroys and redefines the domain like a HARD one."""
    def reboot(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        return call_with(real, self, args, kwargs, reboot_type="HARD")

    switch_method(embedded_driver(), "reboot", name, reboot)


@defect(HOST, "stop-undefines-domain")
def _stop_undefines(name: str, cloud: Any) -> None:
    """Stopping a server undefines its domain (virsh list --all no longer shows it)."""
    from nova.compute import task_states

    def power_off(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        instance = bound_argument(real, self, args, kwargs, "instance")
        if instance.task_state == task_states.POWERING_OFF:
            self.hv.undefine(instance.name)

    switch_method(embedded_driver(), "power_off", name, power_off)


# ------------------------------------------------------------------ host cleanup
@defect(CLEANUP, "delete-leaves-instance-dir")
def _delete_keeps_files(name: str, cloud: Any) -> None:
    """Deleting a server leaves its instance directory on the host."""
    from nova.compute import task_states

    def delete_files(self: Any, real: Any, instance: Any) -> bool:
        if instance.task_state == task_states.DELETING or instance.deleted:
            return True
        return bool(real(self, instance))

    switch_method(embedded_driver(), "delete_instance_files", name, delete_files)


@defect(CLEANUP, "resize-confirm-leaves-resize-dir")
def _confirm_keeps_resize_dir(name: str, cloud: Any) -> None:
    """Confirming a resize or migration leaves <uuid>_resize on the source host."""
    def confirm(self: Any, real: Any, context: Any, migration: Any, instance: Any,
                network_info: Any) -> None:
        if instance.host != self._host:
            self.hv.undefine(instance.name)

    switch_method(embedded_driver(), "confirm_migration", name, confirm)


@defect(CLEANUP, "live-migration-leaves-source-dir")
def _live_migration_keeps_source(name: str, cloud: Any) -> None:
    """A block live migration leaves the instance directory on the source host."""
    def cleanup(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        if bound_argument(real, self, args, kwargs, "migrate_data") is not None:
            return call_with(real, self, args, kwargs, destroy_disks=False)
        return real(self, *args, **kwargs)

    switch_method(embedded_driver(), "cleanup", name, cleanup)


# ------------------------------------------------------------------ image
@defect(IMAGE, "snapshot-not-active")
def _snapshot_uploads_nothing(name: str, cloud: Any) -> None:
    """Snapshots upload no data: the image stays queued and never becomes active."""
    from nova.compute import task_states

    def snapshot(self: Any, real: Any, context: Any, instance: Any, image_id: str,
                 update_task_state: Any) -> None:
        self._require(instance)
        update_task_state(task_state=task_states.IMAGE_UPLOADING)

    switch_method(embedded_driver(), "snapshot", name, snapshot)


from conformance.embedded import (  # noqa: E402  (they register the rest)
    defects_core,  # noqa: F401  (launch, pause, terminate)
    defects_inplace,  # noqa: F401  (stop/start, reboot, suspend, rescue, snapshot)
    defects_migration,  # noqa: F401  (moves between hosts)
    defects_moves,  # noqa: F401  (shelve, rebuild, resize)
    defects_nova,  # noqa: F401
    defects_policy,  # noqa: F401  (lock, state gates and precedence, soft delete)
)
