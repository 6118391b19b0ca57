"""``python -m bench.suite``: the suite's speed on the embedded cloud, in one run.

    python -m bench.suite --workdir /tmp/bench-cloud --workers 1,2,4 --tempest

1. brings up an embedded cloud in ``--workdir`` (unless one is up there);
2. runs the full suite with ``--full-workers`` xdist workers: wall time, the
   cloud's critical path from instance-action events and wall / critical
   path, per-test overhead, detection delay, HTTP requests per wait;
3. with ``--tempest``, runs Tempest's modules on the same cloud
   (:mod:`bench.tempest`): wall time and the coverage table by depth;
4. runs ``--scaling`` (the cloud-bound suites) at each of ``--workers``: the
   speed-up over the first;
5. writes ``OUT/bench.json`` and ``OUT/bench.md`` (default reports/bench).

It is a benchmark, never a test: it asserts nothing and exits 0 when it
could measure (the figures say how the runs went).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import report, run, tempest

# cloud-bound: every test acts on servers (no refusal matrix, no policy-only suites)
SCALING = (
    "conformance/suites/test_launch.py",
    "conformance/suites/test_pause.py",
    "conformance/suites/test_power.py",
    "conformance/suites/test_reboot.py",
    "conformance/suites/test_rebuild.py",
    "conformance/suites/test_rescue.py",
    "conformance/suites/test_snapshot.py",
    "conformance/suites/test_suspend.py",
    "conformance/suites/test_shelve.py",
    "conformance/suites/test_terminate.py",
    "conformance/suites/test_resize.py",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.suite", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path("/tmp/bench-cloud"),
        help="embedded cloud workdir (brought up if nothing runs there)",
    )
    parser.add_argument("--workers", default="1,2,4", help="xdist workers for the scaling runs")
    parser.add_argument("--full-workers", type=int, default=2, help="xdist workers for the full suite")
    parser.add_argument("--scaling", nargs="*", default=list(SCALING), help="suites of the scaling runs")
    parser.add_argument("--no-full", action="store_true", help="skip the full-suite run")
    parser.add_argument("--tempest", action="store_true", help="also run Tempest on the same cloud")
    parser.add_argument("--tempest-from", type=Path, default=None, metavar="BENCH_JSON",
                        help="take the Tempest figures of an earlier bench.json (same cloud kind) instead")
    parser.add_argument("--tempest-concurrency", type=int, default=2)
    parser.add_argument("--tempest-venv", type=Path, default=Path(".tempest/venv"),
                        help="Tempest's own venv (made if missing; as python -m conformance.tempest)")
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    return parser


def _cloud_up(workdir: Path) -> bool:
    """Bring the cloud up unless it runs; True if this call started it."""
    embedded = [sys.executable, "-m", "conformance.embedded"]
    status = subprocess.run(
        [*embedded, "status", "--workdir", str(workdir)], capture_output=True, check=False
    )
    if status.returncode == 0 and (workdir / "profile.yaml").exists():
        return False
    subprocess.run([*embedded, "up", "--workdir", str(workdir)], check=True)
    return True


def _machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "utc": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }


def _scaling(profile: Path, args: argparse.Namespace, conn: Any, pid: int | None) -> dict[str, Any]:
    rows = []
    for workers in [int(w) for w in args.workers.split(",") if w]:
        done = run.run_suite(profile, args.scaling, workers, args.out, f"scaling-{workers}",
                             cloud_pid=pid)
        figures = run.measure(done, conn, None)
        rows.append(
            {
                k: figures[k]
                for k in (
                    "workers",
                    "wall_s",
                    "tests_wall_s",
                    "exit_code",
                    "load_average_at_start",
                    "tests",
                    "command",
                )
            }
            | {
                "critical_path_s": figures["critical_path"]["seconds"],
                "wall_over_critical_path": figures["wall_over_critical_path"],
                "cpu_s": figures["cpu_s"],
            }
        )
    base = rows[0]["tests_wall_s"] if rows else None
    for row in rows:
        row["speedup"] = round(base / row["tests_wall_s"], 2) if base and row["tests_wall_s"] else None
    return {"suites": list(args.scaling), "runs": rows}


def _write(out: Path, result: dict[str, Any]) -> None:
    """Write bench.json and bench.md (after every stage: an interrupted run keeps what it measured)."""
    result["machine_at_end"] = _machine()
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "bench.md").write_text(report.markdown(result))


def _nova_pid(workdir: Path) -> int | None:
    """The embedded cloud's Nova process (its CPU is the run's bound), if the workdir names it."""
    try:
        return int(json.loads((workdir / "nova.ready.json").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def _stages(args: argparse.Namespace, workdir: Path, result: dict[str, Any]) -> None:
    """Full suite, then Tempest beside it, then the scaling runs; the result grows after each."""
    profile = workdir / "profile.yaml"
    conn = run.admin_connection(profile)
    pid = _nova_pid(workdir)
    if not args.no_full:
        full = run.run_suite(profile, ["conformance/suites"], args.full_workers, args.out, "full",
                             cloud_pid=pid)
        result["full"] = run.measure(full, conn, workdir / "logs" / "nova-api.log")
        result["coverage"] = tempest.coverage(full.verdict, None)
        _write(args.out, result)
    if args.tempest or args.tempest_from:
        if args.tempest_from:
            earlier = json.loads(args.tempest_from.read_text())["tempest"]
            result["tempest"] = earlier | {"from": str(args.tempest_from)}
        else:
            before = run.process_cpu(pid)
            result["tempest"] = tempest.run_tempest(workdir, args.out, args.tempest_concurrency,
                                                    args.tempest_venv.resolve())
            if before is not None and (after := run.process_cpu(pid)) is not None:
                result["tempest"]["cpu_s"] = {"cloud_nova_s": round(after - before, 1)}
        result["coverage"] = tempest.coverage(_full_verdict(args.out), result["tempest"])
        _write(args.out, result)
    result["scaling"] = _scaling(profile, args, conn, pid)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.out = args.out.resolve()
    workdir = args.workdir.resolve()
    started = _cloud_up(workdir)
    result: dict[str, Any] = {"machine_at_start": _machine(), "workdir": str(workdir),
                              "command": " ".join(["python -m bench.suite", *(argv or sys.argv[1:])])}
    try:
        _stages(args, workdir, result)
    finally:
        _write(args.out, result)
        if started:
            subprocess.run([sys.executable, "-m", "conformance.embedded", "down", "--workdir", str(workdir)],
                           check=False)
    print(f"bench: wrote {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    return 0


def _full_verdict(out: Path) -> dict[str, Any]:
    path = out / "full" / "reports" / "verdict.json"
    return json.loads(path.read_text()) if path.exists() else {}


if __name__ == "__main__":
    sys.exit(main())
