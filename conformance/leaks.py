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

OWNER_ROLES = ["member", "other_member", "admin", "other_admin"]


@dataclasses.dataclass
class SweepResult:
    """What a sweep found (and deleted), what it failed to delete, and cloud facts."""

    found: list[str]
    failures: list[str]
    cloud: dict[str, str]


def sweep_profile(profile: Profile, run_id: str | None) -> SweepResult:
    """Delete the tagged servers and images of run ``run_id`` (None: of every run)."""
    from conformance.lib.api import max_microversion
    from conformance.lib.resources import sweep
    from conformance.lib.waiter import Polling

    poll = Polling(initial=profile.polling.initial_interval, maximum=profile.polling.max_interval,
                   backoff=profile.polling.backoff)
    conns = role_connections(profile, OWNER_ROLES)
    found, failures = sweep(conns.values(), run_id, timeout=profile.timeouts.cleanup, poll=poll)
    version = max_microversion(conns["member"]) if "member" in conns else None
    cloud = {"max_microversion": version} if version else {}
    return SweepResult(found.describe(), list(failures), cloud)
