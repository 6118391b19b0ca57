"""One suite run against a fresh embedded cloud: up, pytest, report, down.

``python -m conformance.run_embedded [--workdir DIR] [--up-arg ARG ...] [--report] [-- PYTEST_ARGS]``

``down`` runs whatever happens (failure, Ctrl-C: the suite gets the interrupt
once, runs its teardown and leak check, then the cloud stops), and the exit code is the
suite's (see DESIGN.md: 0, 1, 4, 6, or pytest's 2 and 5).  If the cloud does
not come up the exit code is 6 (ERROR: the infrastructure could not decide).
A report that cannot be rendered is reported but does not change the code.
Before ``down``, ``scan-secrets`` looks for the profile's secrets in the
reports; a finding turns a passing run's exit code into 6 (a suite bug).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from conformance.verdict import EXIT_ERROR


def main(argv: list[str] | None = None) -> int:
    """Run up, pytest, report and down; return pytest's exit code."""
    args, pytest_args = _parse(sys.argv[1:] if argv is None else argv)
    workdir = args.workdir.resolve()
    # SIGTERM (tox escalating, a CI timeout) is handled like Ctrl-C, so `down` still runs.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # a watchdog stops the cloud if this process is killed before its `down`
        up = _embedded("up", workdir, f"--owner-pid={os.getpid()}", *args.up_arg)
        if up != 0:
            print(f"run_embedded: `embedded up` failed (exit {up}); see {workdir}", file=sys.stderr)
            return EXIT_ERROR
        code = _pytest(workdir / "profile.yaml", pytest_args)
        if args.report:
            _report()
        if _secrets_found(workdir / "profile.yaml", _reports_dir(pytest_args)) and code == 0:
            code = EXIT_ERROR  # a report holding a secret is a suite bug
        return code
    finally:
        _embedded("down", workdir)
        signal.signal(signal.SIGTERM, previous)


def _parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    pytest_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, pytest_args = argv[:cut], argv[cut + 1:]
    parser = argparse.ArgumentParser(prog="python -m conformance.run_embedded",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path(".embedded"),
                        help="the embedded cloud's work directory (default .embedded)")
    parser.add_argument("--up-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `embedded up` (repeatable), e.g. --up-arg=--defect=NAME")
    parser.add_argument("--report", action="store_true", help="render reports/html after the run")
    return parser.parse_args(argv), pytest_args


def _embedded(command: str, workdir: Path, *extra: str) -> int:
    cmd = [sys.executable, "-m", "conformance.embedded", command, "--workdir", str(workdir), *extra]
    print(f"run_embedded: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, check=False).returncode


def _pytest(profile: Path, pytest_args: list[str]) -> int:
    """Run the suite; Ctrl-C reaches it exactly once per press, so it can clean up."""
    cmd = [sys.executable, "-m", "pytest", f"--profile={profile}", *pytest_args]  # one word: see plugin
    print(f"run_embedded: {' '.join(cmd)}", flush=True)
    # Its own process group: a terminal's Ctrl-C reaches only this process, which forwards it.
    with subprocess.Popen(cmd, process_group=0) as proc:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                print("run_embedded: interrupted; the suite is cleaning up", file=sys.stderr, flush=True)
                proc.send_signal(signal.SIGINT)


def _reports_dir(pytest_args: list[str]) -> Path:
    """The --reports directory the suite writes to (the plugin's default: reports)."""
    for i, arg in enumerate(pytest_args):
        if arg.startswith("--reports="):
            return Path(arg.partition("=")[2])
        if arg == "--reports" and i + 1 < len(pytest_args):
            return Path(pytest_args[i + 1])
    return Path("reports")


def _secrets_found(profile: Path, reports: Path) -> bool:
    """Scan the reports (and HTML) for the profile's secrets before `down` removes the profile."""
    if not reports.is_dir():
        return False
    cmd = [sys.executable, "-m", "conformance", "scan-secrets", f"--profile={profile}",
           f"--reports={reports}"]
    print(f"run_embedded: {' '.join(cmd)}", flush=True)
    return subprocess.run(cmd, check=False).returncode == 1


def _report() -> None:
    cmd = [sys.executable, "-m", "conformance", "report"]
    if subprocess.run(cmd, check=False).returncode != 0:
        print("run_embedded: the HTML report could not be rendered (the verdict stands)", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
