"""Tempest results from a subunit stream: per test, per module, as a table."""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable

from conformance.tempest.subunit import Packet

PASSED = ("success", "xfail")
FAILED = ("fail", "uxsuccess")
SKIPPED = ("skip",)
_FIXTURE = re.compile(r"^\w+ \((?P<inner>[^)]*)\)$")  # "setUpClass (module.Class)"


@dataclasses.dataclass
class TestResult:
    """One test (or class fixture) of a run, with its final status."""

    test_id: str
    status: str = "inprogress"
    started: datetime.datetime | None = None
    stopped: datetime.datetime | None = None
    details: dict[str, bytes] = dataclasses.field(default_factory=dict)

    @property
    def name(self) -> str:
        """The test id without its ``[id-...,tags]`` suffix."""
        return self.test_id.split("[", 1)[0]

    @property
    def module(self) -> str:
        """Dotted module of the test: the parts before the first class name."""
        match = _FIXTURE.match(self.name)
        parts = (match.group("inner") if match else self.name).split(".")
        end = next((i for i, part in enumerate(parts) if part[:1].isupper()), len(parts))
        return ".".join(parts[:end])

    @property
    def seconds(self) -> float:
        """How long the test ran (0 when a timestamp is missing)."""
        if self.started is None or self.stopped is None:
            return 0.0
        return (self.stopped - self.started).total_seconds()

    @property
    def why(self) -> str:
        """The skip reason, or the last line of the failure's traceback."""
        reason = self.details.get("reason", b"").decode(errors="replace").strip()
        if reason:
            return reason
        trace = self.details.get("traceback", b"").decode(errors="replace").strip()
        return trace.splitlines()[-1] if trace else ""


@dataclasses.dataclass
class ModuleSummary:
    """Counts and wall time (first start to last stop) of one test module."""

    module: str
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    seconds: float = 0.0


def collect(stream: Iterable[Packet]) -> list[TestResult]:
    """The tests of a stream in the order they first appeared, with their final status."""
    tests: dict[str, TestResult] = {}
    for packet in stream:
        if not packet.test_id:
            continue
        test = tests.setdefault(packet.test_id, TestResult(packet.test_id))
        if packet.file_name:
            test.details[packet.file_name] = test.details.get(packet.file_name, b"") + \
                packet.file_bytes
        if packet.status == "inprogress":
            test.started = test.started or packet.timestamp
        elif packet.status and packet.status != "exists":
            test.status = packet.status
            test.stopped = packet.timestamp or test.stopped
    return [t for t in tests.values() if t.status != "inprogress" or t.started]


def summarise(tests: Iterable[TestResult]) -> list[ModuleSummary]:
    """One summary per module, sorted by module name."""
    modules: dict[str, ModuleSummary] = {}
    spans: dict[str, list[datetime.datetime]] = {}
    for test in tests:
        summary = modules.setdefault(test.module, ModuleSummary(test.module))
        if test.status in PASSED:
            summary.passed += 1
        elif test.status in SKIPPED:
            summary.skipped += 1
        else:
            summary.failed += 1  # fail, uxsuccess, or never finished
        spans.setdefault(test.module, []).extend(
            t for t in (test.started, test.stopped) if t is not None)
    for name, times in spans.items():
        if times:
            modules[name].seconds = (max(times) - min(times)).total_seconds()
    return [modules[name] for name in sorted(modules)]


def totals(summaries: Iterable[ModuleSummary]) -> ModuleSummary:
    """The sum of the counts (seconds: the longest module)."""
    total = ModuleSummary("total")
    for summary in summaries:
        total.passed += summary.passed
        total.failed += summary.failed
        total.skipped += summary.skipped
        total.seconds = max(total.seconds, summary.seconds)
    return total


def table(summaries: list[ModuleSummary], prefix: str = "tempest.") -> str:
    """A Markdown table: module, passed, failed, skipped, wall seconds."""
    rows = ["| module | passed | failed | skipped | wall (s) |", "|---|---:|---:|---:|---:|"]
    for s in summaries:
        name = s.module.removeprefix(prefix)
        rows.append(f"| {name} | {s.passed} | {s.failed} | {s.skipped} | {s.seconds:.0f} |")
    total = totals(summaries)
    rows.append(f"| **total** | {total.passed} | {total.failed} | {total.skipped} | |")
    return "\n".join(rows)


def not_passed(tests: Iterable[TestResult]) -> list[str]:
    """``STATUS test: why`` for every test that did not pass (failures first)."""
    order = {"fail": 0, "uxsuccess": 0, "inprogress": 1, "skip": 2}
    lines = sorted((order.get(t.status, 1), t.status, t.name, t.why)
                   for t in tests if t.status not in PASSED)
    return [f"{status.upper()} {name}: {why}" for _, status, name, why in lines]
