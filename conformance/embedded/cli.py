"""Command line of the embedded cloud: ``python -m conformance.embedded ...``.

    up       start the cloud in the background; return when it is ready
    down     stop it and remove its generated files (logs stay)
    status   health of every service (exit 0 if all are healthy)
    compute  stop/start/restart/fence/unfence one nova-compute service

Every failure prints a one-line ``error: ...`` (plus, for ``up``, the tail of
the log of the service that failed) and exits non-zero; a failed ``up``
leaves nothing running.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from conformance.embedded.workdir import Layout, WorkdirError

DEFAULT_WORKDIR = ".embedded"
DEFAULT_RECLAIM = 3600  # seconds a SOFT_DELETED server is kept with --soft-delete


def _port(text: str) -> tuple[str, int]:
    from conformance.embedded.orchestrator import PORTS

    name, _, value = text.partition("=")
    if name not in PORTS or not value.isdigit() or not 0 < int(value) < 65536:
        raise argparse.ArgumentTypeError(f"expected SERVICE=PORT with SERVICE in {', '.join(PORTS)}")
    return name, int(value)


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for all subcommands."""
    parser = argparse.ArgumentParser(prog="python -m conformance.embedded",
                                     description="Run a real Nova cloud on this machine.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    workdir = argparse.ArgumentParser(add_help=False)
    workdir.add_argument("--workdir", type=Path, default=Path(DEFAULT_WORKDIR),
                         help=f"state, logs and generated files (default {DEFAULT_WORKDIR})")
    up = sub.add_parser("up", parents=[workdir], help="start the cloud and wait until ready")
    up.add_argument("--hosts", type=int, default=3, help="compute hosts (default 3)")
    up.add_argument("--shared-storage", action="store_true",
                    help="one instances path shared by every host")
    up.add_argument("--defect", action="append", default=[], metavar="NAME",
                    help="switch on a known defect (repeatable)")
    up.add_argument("--patch", action="append", default=[], type=Path, metavar="FILE.py",
                    help="python file the Nova process executes at start (repeatable)")
    up.add_argument("--soft-delete", nargs="?", type=int, const=DEFAULT_RECLAIM, default=None,
                    metavar="SECONDS", help="DELETE is a soft delete: reclaim_instance_interval = "
                    f"SECONDS (default {DEFAULT_RECLAIM}); the profile claims soft_delete")
    up.add_argument("--shelved-offload-time", type=int, default=None, metavar="S",
                    help="Nova's [DEFAULT] shelved_offload_time (default -1: SHELVED stays until "
                    "shelveOffload; 0, Nova's own default, offloads at once)")
    up.add_argument("--faults", default=None, metavar="SPEC",
                    help="once ready, make Nova/Placement API calls fail or answer slowly, e.g. "
                    "5xx=0.05,slow=0.1:2.0,seed=7 (see conformance/embedded/faults.py)")
    up.add_argument("--periodic-interval", type=float, metavar="S",
                    help="seconds between Nova's periodic task runs")
    up.add_argument("--port", action="append", default=[], type=_port, metavar="SERVICE=PORT",
                    help="fixed port for keystone, glance, nova, placement or control")
    up.add_argument("--timeout", type=float, default=300.0, metavar="S",
                    help="give up after S seconds (default 300)")
    up.add_argument("--owner-pid", type=int, default=None, metavar="PID",
                    help="stop the cloud when process PID exits without `down` (a watchdog "
                    "process polls it every second; default: no watchdog)")
    up.add_argument("--nova-module", default=None, help=argparse.SUPPRESS)
    sub.add_parser("down", parents=[workdir], help="stop the cloud, keep its logs")
    sub.add_parser("status", parents=[workdir], help="health of every service")
    compute = sub.add_parser("compute", parents=[workdir], help="act on one compute service")
    compute.add_argument("action", choices=["stop", "start", "restart", "fence", "unfence"])
    compute.add_argument("host", help="compute host name, e.g. compute1")
    return parser


def _validate_up(args: argparse.Namespace) -> None:
    """Reject bad ``up`` input before anything starts (raises ValueError)."""
    if not 1 <= args.hosts <= 50:
        raise ValueError(f"--hosts must be between 1 and 50, not {args.hosts}")
    if args.periodic_interval is not None and args.periodic_interval <= 0:
        raise ValueError("--periodic-interval must be positive")
    if args.soft_delete is not None and args.soft_delete <= 0:
        raise ValueError("--soft-delete must be a positive number of seconds")
    if args.faults is not None:
        from conformance.embedded.faults import parse_spec

        parse_spec(args.faults)  # raises ValueError naming the bad part
    for patch in args.patch:
        if patch.suffix != ".py" or not patch.is_file():
            raise ValueError(f"--patch {patch}: not an existing .py file")
    if args.owner_pid is not None:
        from conformance.embedded.watchdog import owner_record

        owner_record(args.owner_pid)  # raises ValueError if no such process
    known = _known_defects()
    unknown = [d for d in args.defect if known is not None and d not in known]
    if unknown:
        raise ValueError(f"unknown defect {unknown[0]!r}; known: {', '.join(sorted(known or []))}")


def _known_defects() -> set[str] | None:
    """Defect names from conformance.embedded.defects' CATALOGUE, or None if unavailable."""
    try:
        from conformance.embedded import defects
    except ImportError:
        return None
    catalogue = getattr(defects, "CATALOGUE", None)
    if catalogue is None:
        return None
    return {str(getattr(entry, "name", entry)) for entry in catalogue}


def cmd_up(args: argparse.Namespace) -> int:
    """Start the cloud; on failure explain why and stop whatever was started."""
    from conformance.embedded import orchestrator, sshd
    from conformance.embedded.lifecycle import running_processes
    from conformance.embedded.workdir import ensure_writable, locked, read_state

    _validate_up(args)
    sshd.check_installed()
    layout = Layout(args.workdir)
    ensure_writable(layout)
    opts = orchestrator.UpOptions(
        workdir=layout.root, hosts=args.hosts, shared_storage=args.shared_storage,
        defects=args.defect, patches=[p.resolve() for p in args.patch],
        periodic_interval=args.periodic_interval, ports=dict(args.port), timeout=args.timeout,
        soft_delete=args.soft_delete, faults=args.faults,
        shelved_offload_time=args.shelved_offload_time,
        owner_pid=args.owner_pid,
        nova_module=args.nova_module or orchestrator.NOVA_MODULE)
    orchestrator.check_fixed_ports(opts)
    with locked(layout):
        previous = read_state(layout)
        if previous is not None and running_processes(previous):
            raise WorkdirError(f"{layout.root} already runs a cloud "
                               f"({', '.join(running_processes(previous))}); run `down` first")
        progress = orchestrator.Progress()
        run = orchestrator.Up(opts, layout, progress)
        for sig in (signal.SIGTERM, signal.SIGHUP):  # clean up like on Ctrl-C
            signal.signal(sig, _interrupted)
        try:
            state = run.run()
        except BaseException as exc:
            _report_failure(exc, layout, run.state)
            return 1
    print(orchestrator.summary(state), flush=True)
    return 0


def _interrupted(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _report_failure(exc: BaseException, layout: Layout, state: dict[str, object]) -> None:
    """Print the reason and a log tail, then stop everything ``up`` started."""
    from conformance.embedded.lifecycle import CommandError, stop_cloud
    from conformance.embedded.orchestrator import StartError, remove_generated
    from conformance.embedded.workdir import tail

    reason = str(exc) or repr(exc)
    if isinstance(exc, KeyboardInterrupt):
        reason = f"interrupted{f' by {exc}' if str(exc) else ''}"
    print(f"error: {reason.splitlines()[0] if reason else type(exc).__name__}",
          file=sys.stderr, flush=True)
    log = exc.log if isinstance(exc, StartError) else None
    if log is not None and tail(log):
        print(f"--- last lines of {log} ---\n{tail(log)}\n---", file=sys.stderr, flush=True)
    elif not isinstance(exc, (StartError, KeyboardInterrupt)):
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    try:
        stop_cloud(layout, state, grace=5.0)
        remove_generated(layout)
    except CommandError as err:
        print(f"error: cleanup incomplete: {err}", file=sys.stderr)
    print(f"stopped everything that was started; logs are in {layout.logs}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the subcommand, turn known errors into one line."""
    from conformance.embedded import lifecycle
    from conformance.profile import ProfileError

    args = build_parser().parse_args(argv)
    try:
        if args.command == "up":
            return cmd_up(args)
        if args.command == "down":
            return lifecycle.down(args.workdir)
        if args.command == "status":
            return lifecycle.status(args.workdir)
        return lifecycle.compute(args.workdir, args.action, args.host)
    except (ValueError, RuntimeError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
