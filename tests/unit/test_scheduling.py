"""The xdist work order: API-bound units kept to half the workers (conformance/scheduling.py)."""

from __future__ import annotations

from collections import OrderedDict

from conformance.scheduling import MixedScheduling, api_bound, pick


class Node:
    """A stand-in xdist worker that records the tests it was sent."""

    def __init__(self, name: str):
        self.name = name
        self.sent: list[list[int]] = []

    def send_runtest_some(self, indexes: list[int]) -> None:
        self.sent.append(indexes)


def _scheduler(units: dict[str, int], workers: int) -> tuple[MixedScheduling, list[Node]]:
    """A scheduler past collection, its queue in xdist's order (largest unit first)."""
    sched = MixedScheduling.__new__(MixedScheduling)
    collection = [f"{scope}::t{i}" for scope, size in units.items() for i in range(size)]
    nodes = [Node(f"gw{i}") for i in range(workers)]
    sched.workqueue = OrderedDict((scope, {f"{scope}::t{i}": False for i in range(size)})
                                  for scope, size in units.items())
    sched.assigned_work = {node: {} for node in nodes}
    sched.registered_collections = {node: collection for node in nodes}
    return sched, nodes


def _finish(sched: MixedScheduling, node: Node, scope: str) -> None:
    for nodeid in sched.assigned_work[node][scope]:
        sched.assigned_work[node][scope][nodeid] = True


def test_api_bound_units_are_the_matrix_groups() -> None:
    """Matrix groups are API-bound; other groups and ungrouped tests are not."""
    assert api_bound("matrix-SHUTOFF")
    assert not api_bound("test_resize.resized")
    assert not api_bound("conformance/suites/test_launch.py::test_boot")


def test_pick_prefers_the_kind_under_the_limit() -> None:
    """Under the limit the first API-bound unit comes next, at it the first other one."""
    queue = ["matrix-A", "matrix-B", "moves", "power"]

    assert pick(queue, running_api_bound=1, limit=2) == "matrix-A"
    assert pick(queue, running_api_bound=2, limit=2) == "moves"
    assert pick(["matrix-A", "matrix-B"], running_api_bound=2, limit=2) == "matrix-A"
    assert pick(["moves", "power"], running_api_bound=0, limit=2) == "moves"


def test_four_workers_start_with_two_matrix_states() -> None:
    """Of 4 workers 2 start a matrix state and 2 a scenario; a finished state makes room for one."""
    sched, nodes = _scheduler({"matrix-A": 9, "matrix-B": 9, "matrix-C": 9, "moves": 5, "power": 4,
                               "rescue": 3}, workers=4)
    for node in nodes:
        sched._assign_work_unit(node)
    first = [next(iter(sched.assigned_work[node])) for node in nodes]
    assert first == ["matrix-A", "matrix-B", "moves", "power"]

    _finish(sched, nodes[2], "moves")
    sched._assign_work_unit(nodes[2])
    assert "rescue" in sched.assigned_work[nodes[2]], "2 states still run: a scenario comes next"
    _finish(sched, nodes[0], "matrix-A")
    sched._assign_work_unit(nodes[0])
    assert "matrix-C" in sched.assigned_work[nodes[0]]
    assert not sched.workqueue
