"""Defects of the in-place operations: stop/start, reboot, suspend, rescue, snapshot.

Registered into :data:`conformance.embedded.defects.CATALOGUE` on import;
see that module for how defects work.  Each one breaks the guarantee of
conformance/guarantees.yaml named in its comment (tests/selftest/sensitivity/
inplace.yaml proves it).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from conformance.embedded.defects import (
    ACTIONS,
    HOST,
    PLACEMENT,
    Installer,
    bound_argument,
    compute_manager,
    defect,
    drop_event,
    embedded_driver,
    frees_allocations,
    switch_method,
)

POWER = "power-state"
GATE = "state-gates"
_STOPPED_BEFORE_RESCUE: set[str] = set()


def _domain_state(driver: Any, instance: Any) -> str | None:
    dom = driver.hv.get(instance.name)
    return None if dom is None else str(dom.state)


def _after_reboot(kind: str, when: Callable[[str | None], bool], then: Callable[[Any, Any, str | None], None],
                  name: str) -> None:
    """Patch the driver's reboot: for ``kind`` reboots whose guest was ``when(state)``, run ``then``."""
    def reboot(self: Any, real: Any, *args: Any, **kwargs: Any) -> Any:
        instance = bound_argument(real, self, args, kwargs, "instance")
        before = _domain_state(self, instance)
        result = real(self, *args, **kwargs)
        if bound_argument(real, self, args, kwargs, "reboot_type") == kind and when(before):
            then(self, instance, before)
        return result

    switch_method(embedded_driver(), "reboot", name, reboot)


def _pull_plug(driver: Any, instance: Any, *_: Any) -> None:
    driver.hv.destroy(instance.name)


# ------------------------------------------------------------------ power state (API depth)
@defect(POWER, "stop-leaves-guest-running")  # POWER-01
def _stop_noop(name: str, cloud: Any) -> None:
    """Stop does not power the guest off: SHUTOFF with power_state 1, the domain still running."""
    switch_method(embedded_driver(), "power_off", name,
                  lambda self, real, instance, *a, **k: self._require(instance))


@defect(POWER, "start-leaves-guest-off")  # POWER-02
def _start_off(name: str, cloud: Any) -> None:
    """Start redefines the domain but leaves it shut off: ACTIVE with power_state 4."""
    def power_on(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        _pull_plug(self, bound_argument(real, self, args, kwargs, "instance"))

    switch_method(embedded_driver(), "power_on", name, power_on)


@defect(POWER, "soft-reboot-leaves-guest-off")  # REBOOT-01
def _soft_off(name: str, cloud: Any) -> None:
    """A SOFT reboot shuts the guest down and never starts it again: ACTIVE with power_state 4."""
    _after_reboot("SOFT", lambda state: True, _pull_plug, name)


@defect(POWER, "hard-reboot-leaves-guest-off")  # REBOOT-02
def _hard_off(name: str, cloud: Any) -> None:
    """A HARD reboot of a running guest leaves the new domain shut off: ACTIVE with power_state 4."""
    from conformance.embedded.hoststate import RUNNING

    _after_reboot("HARD", lambda state: state == RUNNING, _pull_plug, name)


@defect(POWER, "hard-reboot-keeps-power-state")  # REBOOT-03
def _hard_keeps(name: str, cloud: Any) -> None:
    """A HARD reboot of a shut-off, suspended or paused guest brings it back shut off or paused."""
    from conformance.embedded.hoststate import PAUSED, RUNNING

    def restore(driver: Any, instance: Any, before: str | None) -> None:
        if before == PAUSED:
            driver.hv.pause(instance.name)
        else:
            driver.hv.destroy(instance.name)

    _after_reboot("HARD", lambda state: state not in (None, RUNNING), restore, name)


@defect(POWER, "suspend-reports-pmsuspended")  # SUSPEND-01
def _suspend_s3(name: str, cloud: Any) -> None:
    """Suspend puts the guest into S3 (pmsuspended) instead of a managed save: power_state 7."""
    from conformance.embedded.hoststate import RUNNING

    def set_state(driver: Any, instance: Any, state: str, reason: str) -> None:
        with driver.hv.lock:
            dom = driver._require(instance)
            dom.state, dom.reason = state, reason
            driver.hv.state.write_domain(dom)

    def suspend(self: Any, real: Any, context: Any, instance: Any) -> None:
        set_state(self, instance, "pmsuspended", "unknown")

    def resume(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> None:
        if _domain_state(self, instance) == "pmsuspended":
            set_state(self, instance, RUNNING, "wakeup")
            return
        real(self, context, instance, *args, **kwargs)

    switch_method(embedded_driver(), "suspend", name, suspend)
    switch_method(embedded_driver(), "resume", name, resume)


@defect(POWER, "rescue-guest-not-started")  # RESCUE-01
def _rescue_off(name: str, cloud: Any) -> None:
    """Rescue defines the rescue domain but never starts it: RESCUE with power_state 4."""
    def rescue(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        _pull_plug(self, bound_argument(real, self, args, kwargs, "instance"))

    switch_method(embedded_driver(), "rescue", name, rescue)


@defect(POWER, "unrescue-keeps-stopped-guest-off")  # RESCUE-02
def _unrescue_off(name: str, cloud: Any) -> None:
    """Unrescue of a server that was stopped before rescue leaves the guest shut off (power 4)."""
    from conformance.embedded.hoststate import SHUTOFF

    def rescue(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        instance = bound_argument(real, self, args, kwargs, "instance")
        if _domain_state(self, instance) == SHUTOFF:
            _STOPPED_BEFORE_RESCUE.add(instance.uuid)
        real(self, *args, **kwargs)

    def unrescue(self: Any, real: Any, context: Any, instance: Any) -> None:
        real(self, context, instance)
        if instance.uuid in _STOPPED_BEFORE_RESCUE:
            _STOPPED_BEFORE_RESCUE.discard(instance.uuid)
            _pull_plug(self, instance)

    switch_method(embedded_driver(), "rescue", name, rescue)
    switch_method(embedded_driver(), "unrescue", name, unrescue)


@defect(POWER, "snapshot-records-saved-power-state")  # SNAPSHOT-02
def _snapshot_power(name: str, cloud: Any) -> None:
    """After a snapshot the server records power_state 4 (the managed-save moment), whatever it runs."""
    from nova.compute import power_state

    def snapshot_instance(self: Any, real: Any, *args: Any, **kwargs: Any) -> None:
        real(self, *args, **kwargs)
        instance = bound_argument(real, self, args, kwargs, "instance")
        instance.power_state = power_state.SHUTDOWN
        instance.save()

    switch_method(compute_manager(), "snapshot_instance", name, snapshot_instance)


# ------------------------------------------------------------------ state gates (API depth)
def _ungated(api_attr: str, vm_states: Callable[[], tuple[str, ...]], name: str) -> None:
    """Let compute.API.<api_attr> skip its check_instance_state for ``vm_states()``."""
    from nova.compute import api as compute_api

    def call(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> Any:
        target = inspect.unwrap(real) if instance.vm_state in vm_states() else real
        return target(self, context, instance, *args, **kwargs)

    switch_method(compute_api.API, api_attr, name, call)


@defect(GATE, "soft-reboot-any-state")  # REBOOT-04
def _soft_anywhere(name: str, cloud: Any) -> None:
    """A SOFT reboot is accepted for SHUTOFF, PAUSED and SUSPENDED servers (202, not 409)."""
    from nova.compute import vm_states

    _ungated("_soft_reboot", lambda: (vm_states.STOPPED, vm_states.PAUSED, vm_states.SUSPENDED), name)


@defect(GATE, "reboot-while-rescued")  # RESCUE-03
def _reboot_rescued(name: str, cloud: Any) -> None:
    """SOFT and HARD reboots are accepted while the server is RESCUE (202, not 409)."""
    from nova.compute import vm_states

    for attr in ("_soft_reboot", "_hard_reboot"):
        _ungated(attr, lambda: (vm_states.RESCUED,), name)


# ------------------------------------------------------------------ placement
@defect(PLACEMENT, "stop-frees-allocations")  # POWER-04
def _stop_frees(name: str, cloud: Any) -> None:
    """Stopping a server deletes its Placement allocations (start does not claim them again)."""
    frees_allocations("stop_instance", name)


@defect(PLACEMENT, "suspend-frees-allocations")  # SUSPEND-03
def _suspend_frees(name: str, cloud: Any) -> None:
    """Suspending a server deletes its Placement allocations (resume does not claim them again)."""
    frees_allocations("suspend_instance", name)


# ------------------------------------------------------------------ host
@defect(HOST, "snapshot-unpauses-guest")  # SNAPSHOT-04
def _snapshot_unpauses(name: str, cloud: Any) -> None:
    """A snapshot of a paused server relaunches its guest running (the API still says PAUSED)."""
    from conformance.embedded.hoststate import PAUSED

    def snapshot(self: Any, real: Any, context: Any, instance: Any, *args: Any, **kwargs: Any) -> None:
        paused = _domain_state(self, instance) == PAUSED
        real(self, context, instance, *args, **kwargs)
        if paused:
            self.hv.unpause(instance.name)

    switch_method(embedded_driver(), "snapshot", name, snapshot)


# ------------------------------------------------------------------ instance action events
def _drop_event(event: str) -> Installer:
    """An installer that keeps compute event ``event`` out of the instance action."""
    def install(name: str, cloud: Any) -> None:
        drop_event(name, event)

    install.__doc__ = f"The {event} event is never recorded: its instance action has no compute event."
    return install


for _name, _event in (("stop-event-missing", "compute_stop_instance"),            # POWER-03
                      ("reboot-event-missing", "compute_reboot_instance"),        # REBOOT-05
                      ("suspend-event-missing", "compute_suspend_instance"),      # SUSPEND-02
                      ("rescue-event-missing", "compute_rescue_instance"),        # RESCUE-04
                      ("snapshot-event-missing", "compute_snapshot_instance")):   # SNAPSHOT-03
    defect(ACTIONS, _name)(_drop_event(_event))
