"""Command line: ``python -m conformance sweep|catalogue``.

``sweep --profile P [--run ID | --all]``
    Delete what the suite left behind in the cloud the profile names: only
    servers and images carrying the suite's tags (of run ID, or of any run
    with --all).  Exit 0 when nothing is left, 6 when a deletion failed,
    4 for a bad profile.

``report [--results DIR] [--output DIR]``
    Render the HTML report (reports/html/index.html) from the Allure results
    with the Allure command line (installed from npm on first use).  Exit 6
    when it cannot be rendered.

``scan-secrets --profile P [--reports DIR ...]``
    Look for the profile's passwords, tokens, application-credential secrets
    and private keys (and anything shaped like an issued token or a private
    key) in every file under the directories (default reports/).  Exit 0
    when none is found, 1 when any is (the files are listed, the secrets
    never), 4 for a bad profile.

``catalogue [--check] [--markdown FILE]``
    Validate guarantees.yaml; with --check also fail (exit 1) when a guarantee
    has no test or a test names an unknown id; with --markdown write the
    catalogue document.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from conformance.catalogue import (
    CatalogueError,
    coverage_problems,
    load_catalogue,
    render_markdown,
    scan_markers,
    suite_files,
)
from conformance.profile import ProfileError, load_profile
from conformance.verdict import EXIT_ERROR, EXIT_FAILED, EXIT_OK, EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = _parser().parse_args(argv)
    return int(args.func(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    sweep = commands.add_parser("sweep", help="delete what the suite left behind (tagged only)")
    sweep.add_argument("--profile", required=True, metavar="PATH", help="deployment profile")
    which = sweep.add_mutually_exclusive_group(required=True)
    which.add_argument("--run", metavar="RUN_ID", help="only the resources of this run")
    which.add_argument("--all", action="store_true", help="the resources of every run")
    sweep.set_defaults(func=_sweep)
    scan = commands.add_parser("scan-secrets", help="look for the profile's secrets in reports/")
    scan.add_argument("--profile", required=True, metavar="PATH", help="deployment profile")
    scan.add_argument("--reports", type=Path, action="append", metavar="DIR",
                      help="directory or file to scan (repeatable; default reports)")
    scan.set_defaults(func=_scan_secrets)
    catalogue = commands.add_parser("catalogue", help="validate the guarantee catalogue")
    catalogue.add_argument("--check", action="store_true",
                           help="also fail when a guarantee has no test (or a test an unknown id)")
    catalogue.add_argument("--markdown", metavar="FILE", type=Path,
                           help="write the catalogue as Markdown (e.g. docs/guarantees.md)")
    catalogue.add_argument("--suites", metavar="DIR", type=Path, default=None,
                           help="where the test modules are (default: conformance/suites)")
    catalogue.set_defaults(func=_catalogue)
    report = commands.add_parser("report", help="render reports/html/index.html from the Allure results")
    report.add_argument("--results", type=Path, default=Path("reports/allure-results"), metavar="DIR")
    report.add_argument("--output", type=Path, default=Path("reports/html"), metavar="DIR")
    report.add_argument("--allure-prefix", type=Path, default=None, metavar="DIR",
                        help="npm prefix to install the Allure command line into (default .tox/allure)")
    report.set_defaults(func=_report)
    return parser


def _report(args: argparse.Namespace) -> int:
    from conformance import report

    try:
        allure = report.allure_binary(args.allure_prefix or report.DEFAULT_PREFIX)
        index = report.render(args.results, args.output, allure)
    except report.ReportError as exc:
        print(f"ERROR: report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    print(f"report: {index}")
    return EXIT_OK


def _sweep(args: argparse.Namespace) -> int:
    from conformance.connect import check_roles
    from conformance.leaks import sweep_profile

    try:
        profile = load_profile(args.profile)
        check_roles(profile)
    except ProfileError as exc:
        print(f"ERROR: bad profile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    run_id = None if args.all else args.run
    result = sweep_profile(profile, run_id)
    scope = "every run" if run_id is None else f"run {run_id}"
    for line in result.found:
        print(f"deleted {line}")
    for line in result.failures:
        print(f"FAILED to delete {line}", file=sys.stderr)
    print(f"sweep of {scope}: {len(result.found)} found, {len(result.failures)} failed")
    return EXIT_ERROR if result.failures else EXIT_OK


def _scan_secrets(args: argparse.Namespace) -> int:
    from conformance import secrets_scan

    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"ERROR: bad profile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    roots = args.reports or [Path("reports")]
    missing = [str(r) for r in roots if not r.exists()]
    if missing:
        print(f"ERROR: scan-secrets: {', '.join(missing)} does not exist", file=sys.stderr)
        return EXIT_USAGE
    wanted, short = secrets_scan.scannable(secrets_scan.collect(profile))
    findings, files = secrets_scan.scan(roots, wanted)
    for finding in findings:
        print(f"SECRET {finding}", file=sys.stderr)
    for secret in short:
        print(f"warning: {secret.origin} is shorter than {secrets_scan.MIN_SCAN_LENGTH} characters: "
              "not scanned", file=sys.stderr)
    print(f"scan-secrets: {len(wanted)} secrets, {files} files, {len(findings)} finding(s)")
    return EXIT_FAILED if findings else EXIT_OK


def _catalogue(args: argparse.Namespace) -> int:
    try:
        catalogue = load_catalogue()
    except CatalogueError as exc:
        for problem in exc.problems:
            print(f"{exc.path}: {problem}", file=sys.stderr)
        return EXIT_FAILED
    used = scan_markers(suite_files(args.suites) if args.suites else suite_files())
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(render_markdown(catalogue, used))
        print(f"wrote {args.markdown}")
    problems = coverage_problems(catalogue, used) if args.check else []
    for problem in problems:
        print(f"catalogue: {problem}", file=sys.stderr)
    print(f"catalogue: {len(catalogue)} guarantees, {len(used)} ids used by tests, "
          f"{len(problems)} problem(s)")
    return EXIT_FAILED if problems else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
