"""Benchmark the embedded cloud itself: start-up, boot latency, a boot/delete soak, memory, teardown.

Usage: ``python -m bench.cloud [--clients 8] [--cycles 60] [--boots 20] [--poll S] [--workdir DIR]
[--up-arg ARG ...] [--out FILE]``

Measures, on one fresh cloud (the figures of issue 2):

- ``up`` wall time to ready (install excluded);
- median and p95 of boot to ACTIVE over ``--boots`` sequential boots (member role);
- a soak of ``--clients`` parallel clients x ``--cycles`` boot/delete cycles: hangs
  (an operation not done within the per-operation limit), servers in ERROR;
- RSS and thread count of every cloud process before and after the soak, and
  the Nova process's largest thread count during it;
- after ``down``: processes still alive and ports still bound (goal: none).

While the soak runs, a line every ``--every`` seconds (default 15) on stderr:
cycles done, operations in flight, median/p95 boot so far, hangs, ERROR,
exceptions, the Nova process's threads and RSS, the load average.  Soak
clients poll a server's status every ``--poll`` seconds (default 0.5, like a
patient client; Tempest polls every 1 s): 8 clients polling every 50 ms spent
40 % of the Nova process's CPU on their own status requests.  Sequential
boots poll every 50 ms (one client, fine resolution).

Writes reports/bench/cloud.json and prints a Markdown summary.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openstack

from conformance.embedded import procs

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "reports" / "bench" / "cloud.json"
OP_LIMIT_S = 120.0  # an operation slower than this counts as a hang
FINE_POLL_S = 0.05  # status poll of the sequential boots


def embedded(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conformance.embedded ARGS --workdir W``; raise with its output on failure."""
    cmd = [sys.executable, "-m", "conformance.embedded", *args, "--workdir", str(workdir)]
    proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_status(conn: Any, server_id: str, wanted: str, poll: float = FINE_POLL_S) -> str:
    """Poll every ``poll`` s until the server has status ``wanted`` (or is gone, for DELETED)."""
    deadline = time.monotonic() + OP_LIMIT_S
    while time.monotonic() < deadline:
        server = conn.compute.find_server(server_id, ignore_missing=True)
        status = "DELETED" if server is None else server.status
        if status == wanted or status == "ERROR":
            return str(status)
        time.sleep(poll)
    return "HANG"


def boot(conn: Any, state: dict[str, Any], name: str,
         poll: float = FINE_POLL_S) -> tuple[float, str, str]:
    """Boot one server; return (seconds to ACTIVE, end status, server id)."""
    started = time.monotonic()
    server = conn.compute.create_server(
        name=name, flavor_id=state["flavors"]["conformance.small"],
        image_id=state["images"]["conformance-image"], networks=[{"uuid": state["network_id"]}])
    status = wait_status(conn, server.id, "ACTIVE", poll)
    return time.monotonic() - started, status, server.id


def delete(conn: Any, server_id: str, poll: float = FINE_POLL_S) -> str:
    """Delete one server and wait until it is gone; return DELETED, ERROR or HANG."""
    conn.compute.delete_server(server_id, ignore_missing=True)
    return wait_status(conn, server_id, "DELETED", poll)


def boot_latency(conn: Any, state: dict[str, Any], boots: int) -> dict[str, Any]:
    """Sequential boots: median and p95 seconds to ACTIVE (each server deleted after)."""
    times = []
    for i in range(boots):
        seconds, status, server_id = boot(conn, state, f"bench-boot-{i}")
        delete(conn, server_id)
        if status != "ACTIVE":
            raise RuntimeError(f"boot {i} ended {status}")
        times.append(seconds)
    times.sort()
    return {"boots": boots, "median_s": round(statistics.median(times), 3),
            "p95_s": round(times[int(0.95 * (len(times) - 1))], 3), "max_s": round(times[-1], 3)}


def percentile(values: list[float], share: float) -> float:
    """The ``share`` percentile (nearest rank below) of ``values``; 0.0 when empty."""
    ordered = sorted(values)
    return ordered[int(share * (len(ordered) - 1))] if ordered else 0.0


class Progress:
    """Shared counters of the soak clients, and the progress line made from them."""

    KEYS = ("cycles", "hangs", "errors", "exceptions")

    def __init__(self, total: int):
        self.total = total
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.counts = dict.fromkeys(self.KEYS, 0)
        self.in_flight = 0
        self.boots: list[float] = []

    def begin(self) -> None:
        """A client starts a boot/delete cycle."""
        with self.lock:
            self.in_flight += 1

    def end(self, boot_s: float | None = None, **counts: int) -> None:
        """A client ends a cycle: its boot time (if it booted) and counts to add."""
        with self.lock:
            self.in_flight -= 1
            if boot_s is not None:
                self.boots.append(boot_s)
            for key, value in counts.items():
                self.counts[key] += value

    def line(self, extra: str = "") -> str:
        """``[soak +75 s] 120/480 cycles, 8 in flight, boot median 5.2 s p95 12.0 s, ...``."""
        with self.lock:
            counts, boots, flying = dict(self.counts), list(self.boots), self.in_flight
        elapsed = time.monotonic() - self.started
        return (f"[soak {time.strftime('%H:%M:%S')} +{elapsed:.0f} s] {counts['cycles']}/"
                f"{self.total} cycles, {flying} in flight, boot median "
                f"{percentile(boots, 0.5):.1f} s p95 {percentile(boots, 0.95):.1f} s,"
                f" {counts['hangs']} hangs, {counts['errors']} ERROR,"
                f" {counts['exceptions']} exceptions{extra}")


def soak_client(cloud: str, state: dict[str, Any], client: int, cycles: int,
                progress: Progress, poll: float) -> None:
    """One client's boot/delete cycles, counted in ``progress``."""
    conn = openstack.connect(cloud=cloud)
    for i in range(cycles):
        progress.begin()
        try:
            seconds, status, server_id = boot(conn, state, f"bench-soak-{client}-{i}", poll)
            gone = delete(conn, server_id, poll)
        except Exception:  # a soak counts every kind of failure
            progress.end(exceptions=1)
            continue
        progress.end(seconds if status == "ACTIVE" else None, cycles=1,
                     hangs=(status == "HANG") + (gone == "HANG"),
                     errors=(status == "ERROR") + (gone == "ERROR"))


def report_progress(progress: Progress, state: dict[str, Any], every: float,
                    done: threading.Event, peak: dict[str, int]) -> None:
    """Print a progress line every ``every`` s until ``done``; track the Nova threads' peak."""
    while not done.wait(every):
        nova = process_figures(state).get("nova", {})
        peak["threads"] = max(peak.get("threads", 0), nova.get("threads", 0))
        print(progress.line(f"; nova {nova.get('threads', '?')} threads, "
                            f"{nova.get('rss_mb', '?')} MB; load {os.getloadavg()[0]:.1f}"),
              file=sys.stderr, flush=True)


def soak(state: dict[str, Any], clients: int, cycles: int, poll: float = 0.5,
         every: float = 15.0) -> dict[str, Any]:
    """``clients`` parallel clients x ``cycles`` boot/delete cycles; summed counts and wall time."""
    progress = Progress(clients * cycles)
    done, peak = threading.Event(), {"threads": 0}
    reporter = threading.Thread(target=report_progress, daemon=True,
                                args=(progress, state, every, done, peak))
    reporter.start()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(soak_client, "embedded-member", state, c, cycles, progress, poll)
                   for c in range(clients)]
        for future in futures:
            future.result()
    done.set()
    reporter.join()
    print(progress.line(), file=sys.stderr, flush=True)
    return {"clients": clients, "cycles_per_client": cycles, "poll_s": poll, **progress.counts,
            "boot_median_s": round(percentile(progress.boots, 0.5), 2),
            "boot_p95_s": round(percentile(progress.boots, 0.95), 2),
            "nova_threads_peak": peak["threads"], "load_at_end": os.getloadavg()[0],
            "wall_s": round(time.monotonic() - progress.started, 1)}


def process_figures(state: dict[str, Any]) -> dict[str, dict[str, int]]:
    """RSS (MB) and thread count of each cloud process, from /proc."""
    figures = {}
    for name, proc in state["processes"].items():
        try:
            status = Path(f"/proc/{proc['pid']}/status").read_text()
        except OSError:  # gone
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        figures[name] = {"rss_mb": int(fields["VmRSS"].split()[0]) // 1024,
                         "threads": int(fields["Threads"])}
    return figures


def leftovers(state: dict[str, Any]) -> dict[str, list[Any]]:
    """Processes still alive and ports still bound after ``down``."""
    alive = [name for name, rec in state["processes"].items() if procs.running(rec)]
    bound = []
    for port in state["ports"].values():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", int(port))) == 0:
                bound.append(port)
    return {"processes_alive": alive, "ports_bound": bound}


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Bring a cloud up, measure, bring it down; return every figure."""
    started = time.monotonic()
    embedded("up", *args.up_arg, workdir=workdir)
    result: dict[str, Any] = {"up_s": round(time.monotonic() - started, 1),
                              "load_at_start": os.getloadavg()[0], "cpus": os.cpu_count(),
                              "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
                              "settle_s": args.settle}
    state = json.loads((workdir / "state.json").read_text())
    try:
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(workdir / "clouds.yaml")
        result["boot"] = boot_latency(openstack.connect(cloud="embedded-member"), state, args.boots)
        result["before_soak"] = process_figures(state)
        result["soak"] = soak(state, args.clients, args.cycles, args.poll, args.every)
        result["after_soak"] = process_figures(state)
        time.sleep(args.settle)
        result["after_settle"] = process_figures(state)
    finally:
        embedded("down", workdir=workdir)
    result["after_down"] = leftovers(state)
    return result


def summary(result: dict[str, Any]) -> str:
    """The figures as Markdown lines."""
    soak_ = result["soak"]
    rss = sum(p["rss_mb"] for p in result["after_soak"].values())
    return "\n".join([
        f"- `up` to ready: {result['up_s']} s"
        f" (load average {result['load_at_start']:.1f}, {result['cpus']} cores)",
        f"- boot to ACTIVE: median {result['boot']['median_s']} s, p95 {result['boot']['p95_s']} s"
        f" ({result['boot']['boots']} sequential boots)",
        f"- soak {soak_['clients']} clients x {soak_['cycles_per_client']} boot/delete cycles:"
        f" {soak_['cycles']} done, {soak_['hangs']} hangs, {soak_['errors']} ERROR,"
        f" {soak_['exceptions']} exceptions, {soak_['wall_s']} s; boot median"
        f" {soak_['boot_median_s']} s, p95 {soak_['boot_p95_s']} s (poll {soak_['poll_s']} s);"
        f" load average {soak_['load_at_end']:.1f} at the end",
        f"- Nova threads: {result['before_soak']['nova']['threads']} before the soak,"
        f" {soak_['nova_threads_peak']} at most during it, {result['after_soak']['nova']['threads']}"
        f" after, {result['after_settle']['nova']['threads']} {result['settle_s']} s later",
        f"- RSS after the soak: {rss} MB in all "
        + ", ".join(f"{n} {p['rss_mb']} MB/{p['threads']} threads" for n, p in result["after_soak"].items()
                    if not n.startswith("sshd")),
        f"- after `down`: {len(result['after_down']['processes_alive'])} processes alive,"
        f" {len(result['after_down']['ports_bound'])} ports bound",
    ])


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark, write reports/bench/cloud.json, print the summary."""
    parser = argparse.ArgumentParser(prog="python -m bench.cloud", description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--cycles", type=int, default=60)
    parser.add_argument("--boots", type=int, default=20)
    parser.add_argument("--poll", type=float, default=0.5, help="status poll of the soak clients (s)")
    parser.add_argument("--every", type=float, default=15.0, help="seconds between progress lines")
    parser.add_argument("--settle", type=float, default=30.0,
                        help="seconds after the soak before the last RSS/thread figures")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--up-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for `up` (repeatable), e.g. --up-arg=--patch=FILE.py")
    parser.add_argument("--out", type=Path, default=OUT, help=f"result file (default {OUT})")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cloud-")) / "w"
    result = run(args, workdir)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(summary(result))
    if args.workdir is None:
        shutil.rmtree(workdir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
