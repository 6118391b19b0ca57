"""Defects in lock handling, state gates, error precedence and soft delete.

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import; see
that module for how defects work.  Each breaks guarantees of the LOCK, MATRIX
or SOFTDEL families (tests/selftest/sensitivity/lock.yaml, matrix.yaml,
softdel.yaml name them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

from conformance.embedded.defects import CATALOGUE, LOCK, compute_manager, defect, switch_method

GATES = "state-gates"
SOFT_DELETE = "soft-delete"

_LOCKED_BY_USER: dict[str, str] = {}  # instance uuid -> user who locked it (unlock-only-by-locker)

# compute.API methods with a lock check and a state gate (matrix actions; api.py of nova 34.0.0)
GATED = ("start", "stop", "reboot", "pause", "unpause", "suspend", "resume", "rescue", "unrescue",
         "rebuild", "resize", "confirm_resize", "revert_resize", "shelve", "shelve_offload", "unshelve",
         "restore", "set_admin_password", "trigger_crash_dump", "live_migrate", "evacuate", "snapshot",
         "backup")
# ... of which the controllers ignore what the method returns (safe to "accept" with None)
SILENT = ("start", "stop", "reboot", "pause", "unpause", "suspend", "resume", "unrescue",
          "confirm_resize", "revert_resize", "shelve", "shelve_offload", "unshelve", "restore",
          "set_admin_password", "trigger_crash_dump", "resize", "rebuild", "live_migrate")


def _api() -> Any:
    from nova.compute import api as compute_api

    return compute_api.API


def _refused(exc: BaseException) -> bool:
    """A state-gate refusal (InstanceInvalidState), not a lock refusal."""
    from nova import exception

    return isinstance(exc, exception.InstanceInvalidState) and not isinstance(
        exc, exception.InstanceIsLocked)


def on_refusal(name: str, methods: Iterable[str],
               react: Callable[[Any, str, Any, Any], Any]) -> None:
    """While ``name`` is on, call ``react(api, method, context, instance)`` when a gated
    compute.API method refuses with InstanceInvalidState; the refusal is re-raised unless
    ``react`` returns something other than None, which is then returned instead."""
    for method in methods:
        def buggy(self: Any, real: Any, context: Any, instance: Any, *args: Any,
                  _method: str = method, **kwargs: Any) -> Any:
            try:
                return real(self, context, instance, *args, **kwargs)
            except Exception as exc:
                if not _refused(exc):
                    raise
                if react(self, _method, context, instance) is None:
                    raise
                return None

        switch_method(_api(), method, name, buggy)


# ------------------------------------------------------------------ lock
@defect(LOCK, "lock-reason-dropped")
def _lock_without_reason(name: str, cloud: Any) -> None:
    """lock ignores locked_reason: GET shows locked_reason null."""
    switch_method(_api(), "lock", name,
                  lambda self, real, context, instance, reason=None: real(self, context, instance))


@defect(LOCK, "lock-blocks-admin")
def _admin_locked_out(name: str, cloud: Any) -> None:
    """A lock also blocks the admin role: the admin gets 409 on a locked server."""
    from nova import exception

    def check(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.locked and context.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=instance.uuid)
        return real(self, context, instance, *args, **kwargs)

    for method in GATED:
        switch_method(_api(), method, name, check)


@defect(LOCK, "lock-state-gated")
def _lock_only_when_active(name: str, cloud: Any) -> None:
    """lock and unlock are refused (403) unless the server is ACTIVE."""
    from nova import exception
    from nova.compute import vm_states

    def gated(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.vm_state != vm_states.ACTIVE:
            raise exception.Forbidden(f"cannot lock or unlock a server in vm_state {instance.vm_state}")
        return real(self, context, instance, *args, **kwargs)

    for method in ("lock", "unlock"):
        switch_method(_api(), method, name, gated)


@defect(LOCK, "unlock-only-by-locker")
def _unlock_by_locker(name: str, cloud: Any) -> None:
    """Only the user who set an owner lock may lift it: another member of the project gets 403."""
    def lock(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if not instance.locked:
            _LOCKED_BY_USER[instance.uuid] = context.user_id
        return real(self, context, instance, *args, **kwargs)

    def expected(self: Any, real: Any, context: Any, instance: Any) -> bool:
        locker = _LOCKED_BY_USER.get(instance.uuid)
        return bool(real(self, context, instance)) and locker in (None, context.user_id)

    switch_method(_api(), "lock", name, lock)
    switch_method(_api(), "is_expected_locked_by", name, expected)


@defect(LOCK, "snapshot-lock-checked")
def _snapshot_locked(name: str, cloud: Any) -> None:
    """createImage is refused (409) for a non-admin on a locked server."""
    from nova import exception

    def snapshot(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.locked and not context.is_admin:
            raise exception.InstanceIsLocked(instance_uuid=instance.uuid)
        return real(self, context, instance, *args, **kwargs)

    switch_method(_api(), "snapshot", name, snapshot)


# ------------------------------------------------------------------ state gates
@defect(GATES, "invalid-state-answers-400")
def _conflict_as_bad_request(name: str, cloud: Any) -> None:
    """A request refused for the server's state answers 400 instead of 409."""
    import webob.exc
    from nova.api.openstack import common

    real = common.raise_http_conflict_for_instance_invalid_state

    def raise_for_state(exc: Any, action: str, server_id: str) -> None:
        if CATALOGUE.enabled(name):
            # A 409 whose response says 400: Nova's expected_errors() turns an HTTP error whose
            # code the action does not list (400 is not listed for most actions) into a 500.
            refusal = webob.exc.HTTPConflict(explanation=f"Cannot '{action}' instance {server_id} now")
            refusal.status = "400 Bad Request"
            raise refusal
        real(exc, action, server_id)

    common.raise_http_conflict_for_instance_invalid_state = raise_for_state


@defect(GATES, "refused-pause-sets-task-state")
def _refused_pause_marks_task(name: str, cloud: Any) -> None:
    """A pause refused for the server's state still leaves task_state 'pausing' behind."""
    from nova.compute import task_states

    def mark(api: Any, method: str, context: Any, instance: Any) -> None:
        instance.task_state = task_states.PAUSING
        instance.save()

    on_refusal(name, ["pause"], mark)


@defect(GATES, "refused-action-recorded")
def _refused_recorded(name: str, cloud: Any) -> None:
    """A request refused for the server's state still records an instance action."""
    def record(api: Any, method: str, context: Any, instance: Any) -> None:
        api._record_action_start(context, instance, method)

    on_refusal(name, GATED, record)


@defect(GATES, "refused-stop-drops-allocations")
def _refused_stop_frees(name: str, cloud: Any) -> None:
    """A stop refused for the server's state deletes the server's Placement allocations."""
    def drop(api: Any, method: str, context: Any, instance: Any) -> None:
        api.placementclient.delete_allocation_for_instance(context, instance.uuid, force=True)

    on_refusal(name, ["stop"], drop)


@defect(GATES, "refused-rescue-leaves-disk")
def _refused_rescue_disk(name: str, cloud: Any) -> None:
    """A rescue refused for the server's state still creates disk.rescue on the host."""
    from conformance.embedded import hypervisor

    def touch(api: Any, method: str, context: Any, instance: Any) -> None:
        if instance.host:
            directory = hypervisor.lookup(instance.host).instance_dir(instance.uuid)
            if directory.is_dir():
                (directory / "disk.rescue").touch()

    on_refusal(name, ["rescue"], touch)


@defect(GATES, "admin-skips-state-gate")
def _admin_accepted(name: str, cloud: Any) -> None:
    """The admin's request in a forbidden state is accepted (202) and silently ignored."""
    def accept(api: Any, method: str, context: Any, instance: Any) -> Any:
        return True if context.is_admin else None

    on_refusal(name, SILENT, accept)


@defect(GATES, "lock-checked-before-policy")
def _lock_before_policy(name: str, cloud: Any) -> None:
    """A reader gets 409 (locked) instead of 403 on a locked server: the lock is checked first."""
    import webob.exc
    from nova.api.openstack import common

    real = common.get_instance

    def get_instance(compute_api: Any, context: Any, instance_id: str, *args: Any, **kwargs: Any) -> Any:
        instance = real(compute_api, context, instance_id, *args, **kwargs)
        if (CATALOGUE.enabled(name) and instance.locked and not context.is_admin
                and "member" not in context.roles):
            raise webob.exc.HTTPConflict(explanation=f"Instance {instance.uuid} is locked")
        return instance

    common.get_instance = get_instance


# ------------------------------------------------------------------ soft delete
@defect(SOFT_DELETE, "soft-delete-keeps-running")
def _soft_delete_no_power_off(name: str, cloud: Any) -> None:
    """A soft delete leaves the guest running: SOFT_DELETED with power_state 1."""
    from nova.compute import task_states

    def power_off(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.task_state == task_states.SOFT_DELETING:
            return None
        return real(self, context, instance, *args, **kwargs)

    switch_method(compute_manager(), "_power_off_instance", name, power_off)


@defect(SOFT_DELETE, "soft-delete-unrecorded")
def _soft_delete_no_event(name: str, cloud: Any) -> None:
    """The soft delete runs without its compute_soft_delete_instance event."""
    switch_method(compute_manager(), "soft_delete_instance", name,
                  lambda self, real, context, instance: inspect.unwrap(real)(self, context, instance))


@defect(SOFT_DELETE, "soft-delete-frees-allocations")
def _soft_delete_frees(name: str, cloud: Any) -> None:
    """A soft delete deletes the server's allocations (a later restore runs without them)."""
    def soft_delete(self: Any, real: Any, context: Any, instance: Any) -> None:
        real(self, context, instance)
        self.reportclient.delete_allocation_for_instance(context, instance.uuid, force=True)

    switch_method(compute_manager(), "soft_delete_instance", name, soft_delete)


@defect(SOFT_DELETE, "soft-delete-removes-files")
def _soft_delete_removes_files(name: str, cloud: Any) -> None:
    """A soft delete removes the instance directory (restore recreates the disk)."""
    from conformance.embedded import hypervisor

    def soft_delete(self: Any, real: Any, context: Any, instance: Any) -> None:
        real(self, context, instance)
        hypervisor.lookup(self.host).delete_instance_files(instance.uuid)

    switch_method(compute_manager(), "soft_delete_instance", name, soft_delete)


@defect(SOFT_DELETE, "restore-leaves-shutoff")
def _restore_no_power_on(name: str, cloud: Any) -> None:
    """restore does not power the guest on: ACTIVE with power_state 4."""
    from nova.compute import task_states

    def power_on(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        if instance.task_state == task_states.RESTORING:
            return None
        return real(self, context, instance, *args, **kwargs)

    switch_method(compute_manager(), "_power_on", name, power_on)


@defect(SOFT_DELETE, "force-delete-needs-soft-deleted")
def _force_delete_gated(name: str, cloud: Any) -> None:
    """forceDelete is refused (409) unless the server is SOFT_DELETED."""
    import webob.exc
    from nova.compute import vm_states

    def force_delete(self: Any, real: Any, context: Any, instance: Any) -> Any:
        if instance.vm_state != vm_states.SOFT_DELETED:
            raise webob.exc.HTTPConflict(
                explanation=f"Cannot 'forceDelete' instance {instance.uuid} in vm_state {instance.vm_state}")
        return real(self, context, instance)

    switch_method(_api(), "force_delete", name, force_delete)
