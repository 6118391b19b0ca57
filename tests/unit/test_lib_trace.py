"""State machines as data, and check_trace naming the offending transition."""

from __future__ import annotations

import pytest

from conformance.errors import TraceViolation
from conformance.lib.trace import DELETE, LAUNCH, PAUSE, Trace, check_trace


def trace(*states: tuple[str, str | None]) -> Trace:
    t = Trace("t")
    for status, task in states:
        t.record(status, task_state=task)
    return t


def test_launch_through_every_build_task() -> None:
    check_trace(trace(("BUILD", "scheduling"), ("BUILD", None), ("BUILD", "networking"),
                      ("BUILD", "block_device_mapping"), ("BUILD", "spawning"), ("ACTIVE", None)), LAUNCH)


def test_a_fast_launch_may_skip_phases() -> None:
    check_trace(trace(("ACTIVE", None)), LAUNCH)


def test_pause_going_back_names_the_transition() -> None:
    bad = trace(("ACTIVE", "pausing"), ("PAUSED", None), ("ACTIVE", "pausing"), ("PAUSED", None))
    with pytest.raises(TraceViolation, match=r"transition PAUSED/- .* -> ACTIVE/pausing"):
        check_trace(bad, PAUSE)


def test_error_is_outside_every_machine() -> None:
    with pytest.raises(TraceViolation, match="ERROR"):
        check_trace(trace(("BUILD", "spawning"), ("ERROR", None)), LAUNCH)


def test_the_trace_must_end_in_the_final_phase() -> None:
    with pytest.raises(TraceViolation, match="ended in ACTIVE/pausing"):
        check_trace(trace(("ACTIVE", None), ("ACTIVE", "pausing")), PAUSE)


def test_delete_from_any_status_to_gone() -> None:
    t = trace(("PAUSED", "deleting"))
    t.record_gone()
    check_trace(t, DELETE)


def test_nothing_observed_is_a_violation() -> None:
    with pytest.raises(TraceViolation, match="no state"):
        check_trace(Trace("empty"), PAUSE)


def test_repeats_are_recorded_once() -> None:
    t = trace(("BUILD", "spawning"), ("BUILD", "spawning"), ("ACTIVE", None))
    assert t.statuses() == ["BUILD", "ACTIVE"] and len(t.observations) == 2
