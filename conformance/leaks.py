"""Find and delete what a run left behind (session-end leak check and `sweep`).

Only resources carrying the suite's tags (see :mod:`conformance.lib.resources`)
are candidates; untagged resources are never touched.  Every role the profile
names is asked, so servers created by other_member in its own project are
found too.
"""

from __future__ import annotations

import dataclasses

from conformance.connect import role_connections
from conformance.profile import Profile


@dataclasses.dataclass
class SweepResult:
    """What a sweep found (and deleted) and what it failed to delete."""

    found: list[str]
    failures: list[str]


def sweep_profile(profile: Profile, run_id: str | None) -> SweepResult:
    """Delete the tagged servers and images of run ``run_id`` (None: of every run)."""
    from conformance.lib.resources import sweep
    from conformance.lib.waiter import Polling

    poll = Polling(initial=profile.polling.initial_interval, maximum=profile.polling.max_interval,
                   backoff=profile.polling.backoff)
    conns = role_connections(profile)
    ordered = [conns[r] for r in ("member", "other_member", "admin", "other_admin") if r in conns]
    found, failures = sweep(ordered, run_id, timeout=profile.timeouts.cleanup, poll=poll)
    return SweepResult(found.describe(), list(failures))
