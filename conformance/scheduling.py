"""The order in which xdist hands out work: API-bound groups are kept to half the workers.

xdist's ``loadgroup`` hands out work units (one per ``xdist_group``, else one per
test) largest first by test count.  The matrix's per-state groups hold about a
hundred tests each, so all of them came first: every worker booted a server at
once and then sent refusals at once (requests the cloud answers without an
instance action), and for those stretches the cloud had no operation in flight
(bench/: the run's idle gaps).  :class:`MixedScheduling` starts an API-bound
unit only while fewer than half of the workers run one, and otherwise the next
other unit, so refusals overlap other workers' boots and moves.  When only one
kind is left, it is handed out as xdist would.  Which tests run, and on which
worker each group runs as a whole, is unchanged: only the order of the units.
"""

from __future__ import annotations

from typing import Any

from xdist.scheduler import LoadGroupScheduling

# xdist_group names whose tests mostly wait on API answers, not on instance actions.
API_BOUND_PREFIXES = ("matrix-",)


def api_bound(scope: str) -> bool:
    """Whether a work unit (an xdist group name, or a test's node id) is API-bound."""
    return scope.startswith(API_BOUND_PREFIXES)


def pick(queue: list[str], running_api_bound: int, limit: int) -> str:
    """The next unit of ``queue`` (in xdist's order): API-bound only while under ``limit``.

    Falls back to the first unit when the queue holds only one kind.
    """
    want_api = running_api_bound < limit
    return next((scope for scope in queue if api_bound(scope) == want_api), queue[0])


class MixedScheduling(LoadGroupScheduling):  # type: ignore[misc, unused-ignore]
    """``loadgroup`` with at most half the workers (at least one) in an API-bound unit."""

    def _running_api_bound(self) -> int:
        return sum(1 for work in self.assigned_work.values() for scope, tests in work.items()
                   if api_bound(scope) and not all(tests.values()))

    def _assign_work_unit(self, node: Any) -> None:
        limit = max(1, len(self.nodes) // 2)
        scope = pick(list(self.workqueue), self._running_api_bound(), limit)
        self.workqueue.move_to_end(scope, last=False)
        super()._assign_work_unit(node)
