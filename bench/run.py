"""One timed suite run against a profile, and what the cloud did during it.

:func:`run_suite` runs ``pytest --profile=... -n N`` in a subprocess with the
probe plugin (:mod:`bench.probe`), timing it from outside; :func:`measure`
adds the run's instance actions and nova-api requests and computes the
figures of :mod:`bench.analyse`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from bench import analyse, timeline
from conformance.embedded import procs

REPO = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class SuiteRun:
    """One pytest run: its command, times (POSIX), exit code, verdict and probe records."""

    command: list[str]
    workers: int
    run_id: str
    start: float
    end: float
    exit_code: int
    load_at_start: tuple[float, float, float]
    verdict: dict[str, Any]
    records: list[dict[str, Any]]
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def wall(self) -> float:
        return self.end - self.start

    def first_test_start(self) -> float:
        tests = [r["start"] for r in self.records if r["kind"] == "test"]
        return min(tests) if tests else self.start


def _read_records(directory: Path) -> list[dict[str, Any]]:
    records = []
    for path in sorted(directory.glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return records


def process_cpu(pid: int | None) -> float | None:
    """CPU seconds (user + system) a live process has used so far (None if it is not there)."""
    return None if pid is None else procs.cpu_seconds(pid)


def children_cpu() -> float:
    """CPU seconds of every waited-for child process so far (pytest and its xdist workers)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(
    profile: Path, selection: Sequence[str], workers: int, out: Path, label: str, extra: Sequence[str] = (),
    cloud_pid: int | None = None,
) -> SuiteRun:
    """Run the suite (``selection``) with ``workers`` xdist workers; keep its reports.

    With ``cloud_pid`` (the embedded cloud's Nova process) the run also records the CPU seconds
    that process and the suite's own processes used meanwhile.
    """
    run_id = f"b{secrets.token_hex(3)}{workers}"
    work = out / label
    probe = work / "probe"
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"--profile={profile}",
        f"--run-id={run_id}",
        f"--reports={work / 'reports'}",
        "-p",
        "bench.probe",
        "-p",
        "no:cacheprovider",
        "-q",
        "-n",
        str(workers),  # -n 1 too: the same xdist machinery at every count (and its markers)
        *extra,
        *selection,
    ]
    env = {
        # bytecode as under tox (tox.ini): written and reused, pytest's rewritten modules too
        **{key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
        "BENCH_PROBE_DIR": str(probe),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(probe, ignore_errors=True)  # the probe appends: records of an earlier run would mix in
    load = os.getloadavg()
    print(f"bench: [{label}] load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}: {' '.join(command)}", flush=True)
    cloud_cpu, suite_cpu = process_cpu(cloud_pid), children_cpu()
    start = time.time()
    with (work / "pytest.log").open("w") as log:
        code = subprocess.run(
            command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        ).returncode
    end = time.time()
    cpu = {"suite_s": round(children_cpu() - suite_cpu, 1)}
    if cloud_cpu is not None and (cloud_after := process_cpu(cloud_pid)) is not None:
        cpu["cloud_nova_s"] = round(cloud_after - cloud_cpu, 1)
    verdict_path = work / "reports" / "verdict.json"
    verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else {}
    print(f"bench: [{label}] exit {code} in {end - start:.0f} s: {verdict.get('counts')}", flush=True)
    return SuiteRun(command, workers, run_id, start, end, code, load, verdict, _read_records(probe), cpu)


def admin_connection(profile: Path) -> Any:
    """An openstacksdk connection as the profile's admin role."""
    import openstack
    from openstack.config.loader import OpenStackConfig

    data = yaml.safe_load(profile.read_text())
    config = OpenStackConfig(config_files=[data["clouds_yaml"]])
    return openstack.connection.Connection(config=config.get_one(cloud=data["roles"]["admin"]))


def guarantee_counts(verdict: dict[str, Any]) -> dict[str, int]:
    """How many guarantees ended in each outcome."""
    counts: dict[str, int] = {}
    for entry in verdict.get("guarantees", []):
        counts[entry["outcome"]] = counts.get(entry["outcome"], 0) + 1
    return counts


def measure(run: SuiteRun, conn: Any, api_log: Path | None) -> dict[str, Any]:
    """Every figure of one run."""
    actions = timeline.run_actions(conn, run.run_id)
    tests = [r for r in run.records if r["kind"] == "test"]
    waits = [r for r in run.records if r["kind"] == "wait"]
    critical = analyse.critical_path(actions)
    first = run.first_test_start()
    last = max([t["end"] for t in tests] or [run.end])
    figures = {
        "label": run.command[-1],
        "command": " ".join(run.command),
        "workers": run.workers,
        "run_id": run.run_id,
        "exit_code": run.exit_code,
        "load_average_at_start": [round(x, 2) for x in run.load_at_start],
        "wall_s": round(run.wall, 1),
        "tests_wall_s": round(last - first, 1),
        "fixed_overhead_s": round(run.wall - (last - first), 1),
        "startup_s": round(first - run.start, 1),  # pytest start-up: imports, collection, workers
        "finish_s": round(run.end - last, 1),  # after the last test: leak check, reports, exit
        "tests": run.verdict.get("counts"),
        "guarantees": guarantee_counts(run.verdict),
        "critical_path": critical,
        "wall_over_critical_path": round(run.wall / critical["seconds"], 2) if critical["seconds"] else None,
        "tests_wall_over_critical_path": round((last - first) / critical["seconds"], 2)
        if critical["seconds"]
        else None,
        "overhead": analyse.test_overhead(tests, actions),
        "waits": analyse.waits(waits, actions),
        "idle_gaps": analyse.idle_gaps(actions, first, last),
        "cpu_s": run.cpu,  # the Nova process (nova_s / wall = how busy its one GIL was) and the suite
    }
    if api_log is not None:
        figures["api"] = analyse.api_load(timeline.api_requests(api_log, run.start, run.end), run.wall)
    return figures
