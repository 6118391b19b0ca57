"""Tempest beside the suite on the same embedded cloud: wall time and coverage by depth.

The Tempest venv, ``tempest.conf`` and the run come from
:mod:`conformance.tempest` (the project's one Tempest runner).  The modules
are the ones covering the suite's operations (server actions, shelve, lock,
rescue, resize, migrations, live migration).

Coverage compares, per operation family, the suite's guarantees (from the
catalogue and the run's verdict) at each depth (api, trace, placement, host)
with the Tempest tests that exercise the family; Tempest reads the API only
(status codes, server status), so each of its tests counts at depth api.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from conformance.catalogue import load_catalogue

# Tempest test name pattern -> the suite's guarantee family (first match wins).
FAMILIES: tuple[tuple[str, str], ...] = (
    (r"live_migrat|live_block_migrat", "LIVE"),
    (r"evacuat", "EVACUATE"),
    (r"revert|confirm|resize", "RESIZE"),
    (r"cold_migrat|migrat", "MIGRATE"),
    (r"unshelve|shelve", "SHELVE"),
    (r"rescue", "RESCUE"),
    (r"\block|unlock", "LOCK"),
    (r"rebuild", "REBUILD"),
    (r"reboot", "REBOOT"),
    (r"pause", "PAUSE"),
    (r"suspend|resume", "SUSPEND"),
    (r"stop|start", "POWER"),
    (r"snapshot|create_image|image", "SNAPSHOT"),
    (r"delete", "DELETE"),
    (r"create_server|create|list_servers|get_server", "LAUNCH"),
)
DEPTHS = ("api", "trace", "placement", "host")


def family_of(test_id: str) -> str | None:
    """The suite family a Tempest test exercises (None: none of ours); negative tests: MATRIX."""
    if "negative" in test_id.lower():
        return "MATRIX"
    name = test_id.split("[", 1)[0].rpartition(".")[2].lower()
    return next((family for pattern, family in FAMILIES if re.search(pattern, name)), None)


def run_tempest(workdir: Path, out: Path, concurrency: int, venv_dir: Path,
                modules: Sequence[str] | None = None) -> dict[str, Any]:
    """Run Tempest's modules against the cloud in ``workdir``; wall time and per-test results."""
    import os

    from conformance.tempest import config, runner, venv

    bindir = venv.ensure_tempest(venv_dir)
    workspace = out / "tempest-workspace"
    conf = config.write_conf(workdir, workspace / "etc" / "tempest.conf")
    load = os.getloadavg()
    outcome = runner.run_modules(bindir, workspace, conf, modules or runner.MODULES, concurrency, echo=None)
    tests = [
        {"id": t.test_id, "status": t.status, "seconds": round(t.seconds, 2), "family": family_of(t.test_id)}
        for t in outcome.tests
        if not t.test_id.startswith("setUp")
    ]
    return {
        "command": f"tempest run --concurrency {concurrency} --include-list <{len(modules or runner.MODULES)}"
        " modules of conformance.tempest.runner.MODULES>",
        "modules": list(modules or runner.MODULES),
        "concurrency": concurrency,
        "load_average_at_start": [round(x, 2) for x in load],
        "wall_s": round(outcome.seconds, 1),
        "exit_code": outcome.returncode,
        "tests": tests,
        "counts": _counts(t["status"] for t in tests),
    }


def _counts(statuses: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return counts


def coverage(verdict: dict[str, Any], tempest: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per family: the suite's passed guarantees by depth, and Tempest's passed tests (depth api)."""
    catalogue = load_catalogue()
    passed = {e["id"] for e in verdict.get("guarantees", []) if e["outcome"] == "passed"}
    rows: dict[str, dict[str, Any]] = {}
    for gid, entry in catalogue.items():
        if entry.retired:
            continue
        row = rows.setdefault(
            entry.family,
            {
                "family": entry.family,
                "guarantees": 0,
                "passed": 0,
                **{d: 0 for d in DEPTHS},
                "tempest_tests": 0,
                "tempest_passed": 0,
            },
        )
        row["guarantees"] += 1
        if gid in passed:
            row["passed"] += 1
            row[entry.depth] = row.get(entry.depth, 0) + 1
    for test in (tempest or {}).get("tests", []):
        family = rows.get(test["family"] or "")
        if family is not None:
            family["tempest_tests"] += 1
            family["tempest_passed"] += test["status"] == "success"
    return sorted(rows.values(), key=lambda r: r["family"])
