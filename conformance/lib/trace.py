"""Transition traces and the per-operation state machines they must follow.

The waiter records every distinct (status, vm_state, task_state, power_state,
host) it observes into a :class:`Trace`.  A :class:`StateMachine` declares, as
data, the ordered phases an operation may pass through; :func:`check_trace`
raises :class:`~conformance.errors.TraceViolation` naming the first observed
transition that leaves the machine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable
from typing import Any

from conformance.errors import TraceViolation

ANY = "*"
GONE = "DELETED"  # what a trace records when GET /servers/{id} answers 404


@dataclasses.dataclass(frozen=True)
class Observation:
    """One distinct server state, ``at`` seconds after the trace started."""

    at: float
    status: str | None
    vm_state: str | None
    task_state: str | None
    power_state: int | None
    host: str | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.status, self.vm_state, self.task_state, self.power_state, self.host)

    def __str__(self) -> str:
        task = self.task_state or "-"
        text = f"{self.status}/{task} (vm={self.vm_state}, power={self.power_state}"
        return text + (f", host={self.host})" if self.host else ")")


class Trace:
    """The ordered, de-duplicated observations of one wait."""

    def __init__(self, label: str = "", clock: Any = time.monotonic):
        self.label = label
        self.observations: list[Observation] = []
        self._clock = clock
        self._start = clock()

    def record(self, status: str | None, vm_state: str | None = None, task_state: str | None = None,
               power_state: int | None = None, host: str | None = None) -> bool:
        """Record a state if it differs from the last one; True if it was new."""
        obs = Observation(round(self._clock() - self._start, 3), status, vm_state, task_state,
                          power_state, host)
        if self.observations and self.observations[-1].key() == obs.key():
            return False
        self.observations.append(obs)
        return True

    def record_gone(self) -> bool:
        """Record that the server is gone (404)."""
        return self.record(GONE)

    @property
    def last(self) -> Observation | None:
        return self.observations[-1] if self.observations else None

    def statuses(self) -> list[str | None]:
        """The distinct statuses in order (consecutive repeats collapsed)."""
        out: list[str | None] = []
        for obs in self.observations:
            if not out or out[-1] != obs.status:
                out.append(obs.status)
        return out

    def __str__(self) -> str:
        lines = [f"+{o.at:7.2f}s  {o}" for o in self.observations]
        return f"trace {self.label}:\n" + ("\n".join(lines) or "  (nothing observed)")

    def to_data(self) -> list[dict[str, Any]]:
        return [dataclasses.asdict(o) for o in self.observations]


@dataclasses.dataclass(frozen=True)
class Phase:
    """A set of allowed (status, task_state) pairs; ``status`` may be ANY."""

    status: str
    task_states: frozenset[str | None]

    def matches(self, obs: Observation) -> bool:
        return self.status in (ANY, obs.status) and obs.task_state in self.task_states

    def __str__(self) -> str:
        tasks = "|".join(sorted(t or "null" for t in self.task_states))
        return f"{self.status}({tasks})"


def phase(status: str, *task_states: str | None) -> Phase:
    """A phase for ``status`` with the given task states (none given: null only)."""
    return Phase(status, frozenset(task_states or (None,)))


@dataclasses.dataclass(frozen=True)
class StateMachine:
    """Ordered phases; a trace may skip phases but never go back to an earlier one."""

    operation: str
    phases: tuple[Phase, ...]

    def __str__(self) -> str:
        return f"{self.operation}: " + " -> ".join(str(p) for p in self.phases)


# nova/compute/api.py and manager.py set these task states (reference §2.1, §2.6, §2.7).
LAUNCH = StateMachine("launch", (
    phase("BUILD", "scheduling", None, "networking", "block_device_mapping", "spawning"),
    phase("ACTIVE"),
))
PAUSE = StateMachine("pause", (phase("ACTIVE", None, "pausing"), phase("PAUSED")))
UNPAUSE = StateMachine("unpause", (phase("PAUSED", None, "unpausing"), phase("ACTIVE")))
DELETE = StateMachine("delete", (phase(ANY, None), phase(ANY, "deleting"), phase(GONE)))
# Moves and shelving (reference §2.11-2.13; nova/api/openstack/common.py:_STATE_MAP).
_REBUILDING = ("rebuilding", "rebuild_block_device_mapping", "rebuild_spawning")
_RESIZING = ("resize_prep", "resize_migrating", "resize_migrated", "resize_finish")
SHELVE = StateMachine("shelve", (
    phase("ACTIVE", None, "shelving", "shelving_image_pending_upload", "shelving_image_uploading"),
    phase("SHELVED"),
))
SHELVE_OFFLOAD = StateMachine("shelveOffload", (
    phase("SHELVED", None, "shelving_offloading"), phase("SHELVED_OFFLOADED"),
))
UNSHELVE = StateMachine("unshelve", (
    phase("SHELVED_OFFLOADED", None, "unshelving", "spawning"), phase("ACTIVE"),
))
REBUILD = StateMachine("rebuild", (phase("REBUILD", *_REBUILDING), phase("ACTIVE")))
# a STOPPED server shows a short settled-looking ACTIVE after the spawn, then is stopped
REBUILD_STOPPED = StateMachine("rebuild (stopped)", (
    phase("REBUILD", *_REBUILDING), phase("ACTIVE", None, "powering-off"), phase("SHUTOFF"),
))
RESIZE = StateMachine("resize", (phase("RESIZE", *_RESIZING), phase("VERIFY_RESIZE")))
CONFIRM_RESIZE = StateMachine("confirmResize", (phase("VERIFY_RESIZE"), phase("ACTIVE")))
REVERT_RESIZE = StateMachine("revertResize", (
    phase("VERIFY_RESIZE"), phase("REVERT_RESIZE", "resize_reverting"), phase("ACTIVE"),
))
MACHINES = {m.operation: m for m in (LAUNCH, PAUSE, UNPAUSE, DELETE, SHELVE, SHELVE_OFFLOAD, UNSHELVE,
                                     REBUILD, REBUILD_STOPPED, RESIZE, CONFIRM_RESIZE, REVERT_RESIZE)}

# In-place operations (reference §2.2-2.4, §2.8-2.10).  The API sets the first task state before it
# answers, so a trace starts inside the operation.  _STATE_MAP shows REBOOT/HARD_REBOOT only for
# vm_state active: a HARD reboot of a SHUTOFF, PAUSED or SUSPENDED server keeps that status.
_HARD_REBOOTING = ("rebooting_hard", "reboot_pending_hard", "reboot_started_hard")
STOP = StateMachine("stop", (phase("ACTIVE", None, "powering-off"), phase("SHUTOFF")))
START = StateMachine("start", (phase("SHUTOFF", None, "powering-on"), phase("ACTIVE")))
REBOOT_SOFT = StateMachine("reboot SOFT", (
    phase("REBOOT", "rebooting", "reboot_pending", "reboot_started"), phase("ACTIVE"),
))
REBOOT_HARD = StateMachine("reboot HARD", (phase("HARD_REBOOT", *_HARD_REBOOTING), phase("ACTIVE")))
SUSPEND = StateMachine("suspend", (phase("ACTIVE", None, "suspending"), phase("SUSPENDED")))
RESUME = StateMachine("resume", (phase("SUSPENDED", None, "resuming"), phase("ACTIVE")))
RESCUE = StateMachine("rescue", (phase("ACTIVE", None, "rescuing"), phase("RESCUE")))
UNRESCUE = StateMachine("unrescue", (phase("RESCUE", None, "unrescuing"), phase("ACTIVE")))
MACHINES.update({m.operation: m for m in (STOP, START, REBOOT_SOFT, REBOOT_HARD, SUSPEND, RESUME,
                                          RESCUE, UNRESCUE)})


def hard_reboot_from(status: str) -> StateMachine:
    """A HARD reboot of a server showing ``status`` (ACTIVE, SHUTOFF, PAUSED, SUSPENDED)."""
    if status == "ACTIVE":
        return REBOOT_HARD
    return StateMachine(f"reboot HARD from {status}", (phase(status, *_HARD_REBOOTING), phase("ACTIVE")))


def snapshot_of(status: str) -> StateMachine:
    """createImage of a server showing ``status``: the status never changes, only the task.

    libvirt's snapshot falls back from image_uploading to image_pending_upload when the image
    backend has no direct snapshot (qcow2, flat), so the two upload states may alternate.
    """
    return StateMachine(f"createImage of {status}", (
        phase(status, "image_snapshot_pending"), phase(status, "image_snapshot"),
        phase(status, "image_pending_upload", "image_uploading"), phase(status),
    ))


def check_trace(trace: Trace | Iterable[Observation], machine: StateMachine) -> None:
    """Raise TraceViolation unless every observation fits ``machine`` in order.

    Each observation must match the current phase or a later one, and the last
    observation must match the machine's final phase.
    """
    observations = list(trace.observations if isinstance(trace, Trace) else trace)
    if not observations:
        raise TraceViolation(f"{machine.operation}: no state was observed")
    index, previous = 0, None
    for obs in observations:
        nxt = next((i for i in range(index, len(machine.phases)) if machine.phases[i].matches(obs)), None)
        if nxt is None:
            came_from = f"{previous} -> " if previous else "first state "
            raise TraceViolation(f"{machine.operation}: transition {came_from}{obs} at +{obs.at:.2f}s "
                                 f"leaves the state machine [{machine}]\n{_render(observations)}")
        index, previous = nxt, obs
    if not machine.phases[-1].matches(observations[-1]):
        raise TraceViolation(f"{machine.operation}: ended in {observations[-1]}, expected "
                             f"{machine.phases[-1]} [{machine}]\n{_render(observations)}")


def _render(observations: list[Observation]) -> str:
    return "\n".join(f"  +{o.at:7.2f}s  {o}" for o in observations)
