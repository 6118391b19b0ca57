"""``python -m conformance.tempest``: Tempest's compute tests against the embedded cloud.

    run        make the Tempest venv, start a cloud, configure, run, summarise, stop
    configure  write tempest.conf for a cloud already running in --workdir
    summary    summarise a subunit stream (e.g. WORKSPACE/last-run.subunit)

``run`` stops the cloud whatever happens (failure, Ctrl-C, SIGTERM) and exits
0 only if no test failed.  It writes WORKSPACE/summary.md (per-module table
and every test that did not pass, with the reason).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

from conformance.tempest import config, results, runner, subunit, venv

EXIT_FAILED = 1
EXIT_ERROR = 6  # as the suite: the infrastructure could not decide


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m conformance.tempest",
                                     description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="up, configure, tempest run, summary, down")
    run.add_argument("--workdir", type=Path, default=Path(".tempest/cloud"),
                     help="the embedded cloud's workdir (default .tempest/cloud)")
    run.add_argument("--workspace", type=Path, default=Path(".tempest/workspace"),
                     help="tempest workspace: tempest.conf, logs, results (default .tempest/workspace)")
    run.add_argument("--venv", type=Path, default=Path(".tempest/venv"),
                     help=f"Tempest's own venv (tempest=={venv.TEMPEST_VERSION}; default .tempest/venv)")
    run.add_argument("--concurrency", type=int, default=2, help="tempest workers (default 2)")
    run.add_argument("--exclude-regex", default=None, help="tests to leave out (regex)")
    run.add_argument("--module", action="append", default=None, metavar="DOTTED",
                     help="run this module instead of the default set (repeatable)")
    run.add_argument("--hosts", type=int, default=2, help="compute hosts (default 2)")
    run.add_argument("--keep-up", action="store_true", help="leave the cloud running afterwards")
    conf = sub.add_parser("configure", help="write tempest.conf for a running cloud")
    conf.add_argument("--workdir", type=Path, required=True, help="the running cloud's workdir")
    conf.add_argument("--out", type=Path, required=True, help="where to write tempest.conf")
    summary = sub.add_parser("summary", help="summarise a subunit v2 stream")
    summary.add_argument("stream", type=Path, help="subunit v2 file (stestr last --subunit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.command == "configure":
        print(config.write_conf(args.workdir, args.out))
        return 0
    if args.command == "summary":
        tests = results.collect(subunit.packets(args.stream.read_bytes()))
        print(report(tests, None))
        return EXIT_FAILED if any(t.status in results.FAILED for t in tests) else 0
    return run(args)


def run(args: argparse.Namespace) -> int:
    """The whole ``run`` command; the cloud is stopped in every case."""
    workdir, workspace = args.workdir.resolve(), args.workspace.resolve()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        bindir = venv.ensure_tempest(args.venv)
        # Nova's and Tempest's default shelved_offload_time: shelve offloads at once
        if _embedded("up", workdir, "--hosts", str(args.hosts), "--shelved-offload-time=0") != 0:
            print(f"tempest: the embedded cloud did not come up; see {workdir}/logs", file=sys.stderr)
            return EXIT_ERROR
        conf = config.write_conf(workdir, workspace / "etc" / "tempest.conf")
        outcome = runner.run_modules(bindir, workspace, conf, args.module or runner.MODULES,
                                     args.concurrency, args.exclude_regex)
        text = report(outcome.tests, outcome)
        (workspace / "summary.md").write_text(text + "\n")
        print(text)
        if not outcome.tests:
            return EXIT_ERROR
        return EXIT_FAILED if outcome.failed or outcome.returncode != 0 else 0
    except venv.VenvError as exc:
        print(f"tempest: {exc}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        if not args.keep_up:
            _embedded("down", workdir)
        signal.signal(signal.SIGTERM, previous)


def report(tests: list[results.TestResult], outcome: runner.RunOutcome | None) -> str:
    """Per-module table, the run's conditions, every test that did not pass, a closing count."""
    summaries = results.summarise(tests)
    lines = [results.table(summaries), ""]
    if outcome is not None:
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        lines.append(f"tempest run: {outcome.seconds:.0f} s wall, exit {outcome.returncode}; "
                     f"{os.cpu_count()} cores, load average {load}; {platform.python_version()}; "
                     f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
        lines.append("")
    lines += [f"- {line}" for line in results.not_passed(tests)]
    total = results.totals(summaries)
    lines += ["", f"tempest: {total.passed} passed, {total.failed} failed, {total.skipped} skipped"]
    return "\n".join(lines)


def _embedded(command: str, workdir: Path, *extra: str) -> int:
    """``python -m conformance.embedded COMMAND --workdir DIR`` with this interpreter."""
    cmd = [sys.executable, "-m", "conformance.embedded", command, "--workdir", str(workdir), *extra]
    print(f"tempest: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, check=False).returncode
