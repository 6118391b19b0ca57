"""The machine-readable verdict of a run: ``reports/verdict.json``.

The plugin feeds one :class:`VerdictBuilder` with each test phase's outcome
(on the xdist controller, from the workers' reports) and asks it for the
document at session end.  Aggregation rules:

- a test's outcome is the worst of its phases; a guarantee's outcome is the
  worst of its tests; worst first: failed > error > passed > skipped;
- a guarantee with no executed test is skipped, with the skip reason (or
  "no test selected") as its message;
- leaks found by the session-end check make the run an ERROR.
"""

from __future__ import annotations

import dataclasses
import datetime
import importlib.metadata
import json
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from conformance.redact import redact

OUTCOMES = ("failed", "error", "passed", "skipped")  # worst first
MESSAGE_LIMIT = 2000

# Exit codes of a suite run (pytest's own 2, 3 and 5 keep their meaning).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 4
EXIT_ERROR = 6
EXIT_INTERRUPTED = 2  # pytest's: Ctrl-C
INTERRUPTED = "the run was interrupted (exit 2): a guarantee shown skipped may not have been checked"


def worst(outcomes: Iterable[str]) -> str:
    """The worst outcome of several (failed > error > passed > skipped)."""
    seen = set(outcomes)
    ranked = [o for o in OUTCOMES if o in seen]
    return ranked[0] if ranked else "skipped"


def now() -> str:
    """The current UTC time in ISO 8601 (seconds)."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def suite_version() -> str:
    """The installed version of the suite (or the source tree's pyproject version)."""
    try:
        return importlib.metadata.version("openstack-nova-conformance")
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        try:
            return str(tomllib.loads(pyproject.read_text())["project"]["version"])
        except (OSError, KeyError, tomllib.TOMLDecodeError):
            return "unknown"


@dataclasses.dataclass
class TestRecord:
    """What the verdict knows of one test (a pytest node id)."""

    nodeid: str
    guarantees: list[str]
    outcome: str = "skipped"
    message: str = ""
    phases: list[str] = dataclasses.field(default_factory=list)

    def add(self, outcome: str, message: str) -> None:
        """Merge one phase's outcome; keep the message of the worst phase."""
        self.phases.append(outcome)
        merged = worst(self.phases)
        if merged == outcome and (merged != self.outcome or not self.message):
            self.message = message
        self.outcome = merged


@dataclasses.dataclass
class VerdictBuilder:
    """Accumulates test outcomes and renders the verdict document."""

    catalogue_ids: list[str]
    profile_name: str
    profile_sha256: str | None
    run_id: str
    started: str = dataclasses.field(default_factory=now)
    cloud: dict[str, Any] = dataclasses.field(default_factory=dict)
    counts: dict[str, int] = dataclasses.field(
        default_factory=lambda: {"passed": 0, "failed": 0, "error": 0, "skipped": 0})
    tests: dict[str, TestRecord] = dataclasses.field(default_factory=dict)
    leaks: list[str] = dataclasses.field(default_factory=list)
    errors: list[str] = dataclasses.field(default_factory=list)

    def add_phase(self, nodeid: str, guarantees: list[str], outcome: str, message: str = "") -> None:
        """Record one reported phase (outcome one of OUTCOMES) of a test."""
        self.counts[outcome] += 1
        record = self.tests.setdefault(nodeid, TestRecord(nodeid, list(guarantees)))
        record.add(outcome, message)

    def add_leaks(self, leaks: Iterable[str]) -> None:
        """Record resources the leak check found (and deleted) after the run."""
        self.leaks.extend(leaks)

    def add_error(self, message: str) -> None:
        """Record a run-level error (e.g. the leak check could not run)."""
        self.errors.append(message)

    def outcome(self) -> str:
        """The run's overall outcome: failed, error, passed or skipped."""
        if self.counts["failed"]:
            return "failed"
        if self.counts["error"] or self.leaks or self.errors:
            return "error"
        return "passed" if self.counts["passed"] else "skipped"

    def exit_code(self, pytest_status: int) -> int:
        """The suite's exit code given pytest's own (2, 3, 4 and 5 are kept)."""
        if pytest_status in (2, 3, 4, 5):
            return pytest_status
        outcome = self.outcome()
        if outcome == "failed":
            return EXIT_FAILED
        return EXIT_ERROR if outcome == "error" else EXIT_OK

    def guarantees(self) -> list[dict[str, Any]]:
        """One entry per catalogue guarantee (and per unknown id seen), in catalogue order."""
        by_id: dict[str, list[TestRecord]] = {gid: [] for gid in self.catalogue_ids}
        for record in self.tests.values():
            for gid in record.guarantees:
                by_id.setdefault(gid, []).append(record)
        return [_guarantee_entry(gid, records) for gid, records in by_id.items()]

    def document(self, pytest_status: int) -> dict[str, Any]:
        """The verdict as a JSON-ready dict (see DESIGN.md); an interrupted run is an ERROR."""
        if pytest_status == EXIT_INTERRUPTED and INTERRUPTED not in self.errors:
            self.add_error(INTERRUPTED)
        return {
            "suite_version": suite_version(),
            "run_id": self.run_id,
            "profile": {"name": self.profile_name, "sha256": self.profile_sha256},
            "cloud": dict(self.cloud),
            "started": self.started,
            "finished": now(),
            "outcome": self.outcome(),
            "exit_code": self.exit_code(pytest_status),
            "counts": dict(self.counts),
            "guarantees": self.guarantees(),
            "leaks": [redact(leak) for leak in self.leaks],
            "errors": [redact(err) for err in self.errors],
        }

    def write(self, path: Path, pytest_status: int) -> dict[str, Any]:
        """Write the verdict document to ``path`` atomically and return it."""
        doc = self.document(pytest_status)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        tmp.replace(path)
        return doc


def _guarantee_entry(gid: str, records: list[TestRecord]) -> dict[str, Any]:
    if not records:
        return {"id": gid, "outcome": "skipped", "tests": [],
                "message": "no test for this guarantee was selected in this run"}
    outcome = worst(r.outcome for r in records)
    decisive = [r for r in records if r.outcome == outcome]
    message = decisive[0].message
    if outcome in ("failed", "error") and len(records) > 1:
        message = f"{decisive[0].nodeid}: {message}"
    return {"id": gid, "outcome": outcome, "tests": [r.nodeid for r in records],
            "message": _shorten(redact(message))}


def _shorten(message: str) -> str:
    message = message.strip()
    if len(message) <= MESSAGE_LIMIT:
        return message
    return message[: MESSAGE_LIMIT - 15] + " ... (truncated)"
