"""Benchmark the embedded cloud itself: start-up, boot latency, a boot/delete soak, memory, teardown.

Usage: ``python -m bench.cloud [--clients 8] [--cycles 60] [--boots 20] [--workdir DIR]``

Measures, on one fresh cloud (the figures of issue 2):

- ``up`` wall time to ready (install excluded);
- median and p95 of boot to ACTIVE over ``--boots`` sequential boots (member role);
- a soak of ``--clients`` parallel clients x ``--cycles`` boot/delete cycles: hangs
  (an operation not done within the per-operation limit), servers in ERROR;
- RSS and thread count of every cloud process after the soak;
- after ``down``: processes still alive and ports still bound (goal: none).

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
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import openstack

from conformance.embedded import procs

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "reports" / "bench" / "cloud.json"
OP_LIMIT_S = 120.0  # an operation slower than this counts as a hang


def embedded(*args: str, workdir: Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m conformance.embedded ARGS --workdir W``; raise with its output on failure."""
    cmd = [sys.executable, "-m", "conformance.embedded", *args, "--workdir", str(workdir)]
    proc = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_status(conn: Any, server_id: str, wanted: str) -> str:
    """Poll every 50 ms until the server has status ``wanted`` (or is gone, for DELETED)."""
    deadline = time.monotonic() + OP_LIMIT_S
    while time.monotonic() < deadline:
        server = conn.compute.find_server(server_id, ignore_missing=True)
        status = "DELETED" if server is None else server.status
        if status == wanted or status == "ERROR":
            return str(status)
        time.sleep(0.05)
    return "HANG"


def boot(conn: Any, state: dict[str, Any], name: str) -> tuple[float, str, str]:
    """Boot one server; return (seconds to ACTIVE, end status, server id)."""
    started = time.monotonic()
    server = conn.compute.create_server(
        name=name, flavor_id=state["flavors"]["conformance.small"],
        image_id=state["images"]["conformance-image"], networks=[{"uuid": state["network_id"]}])
    status = wait_status(conn, server.id, "ACTIVE")
    return time.monotonic() - started, status, server.id


def delete(conn: Any, server_id: str) -> str:
    """Delete one server and wait until it is gone; return DELETED, ERROR or HANG."""
    conn.compute.delete_server(server_id, ignore_missing=True)
    return wait_status(conn, server_id, "DELETED")


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


def soak_client(cloud: str, state: dict[str, Any], client: int, cycles: int) -> dict[str, int]:
    """One client's boot/delete cycles: counts of hangs, servers in ERROR and exceptions."""
    conn = openstack.connect(cloud=cloud)
    counts = {"cycles": 0, "hangs": 0, "errors": 0, "exceptions": 0}
    for i in range(cycles):
        try:
            _, status, server_id = boot(conn, state, f"bench-soak-{client}-{i}")
            gone = delete(conn, server_id)
        except Exception:  # a soak counts every kind of failure
            counts["exceptions"] += 1
            continue
        counts["cycles"] += 1
        counts["hangs"] += (status == "HANG") + (gone == "HANG")
        counts["errors"] += (status == "ERROR") + (gone == "ERROR")
    return counts


def soak(state: dict[str, Any], clients: int, cycles: int) -> dict[str, Any]:
    """``clients`` parallel clients x ``cycles`` boot/delete cycles; summed counts and wall time."""
    started = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        futures = [pool.submit(soak_client, "embedded-member", state, c, cycles)
                   for c in range(clients)]
        results = [f.result() for f in futures]
    total = {k: sum(r[k] for r in results) for k in results[0]}
    return {"clients": clients, "cycles_per_client": cycles, **total,
            "wall_s": round(time.monotonic() - started, 1)}


def process_figures(state: dict[str, Any]) -> dict[str, dict[str, int]]:
    """RSS (MB) and thread count of each cloud process, from /proc."""
    figures = {}
    for name, proc in state["processes"].items():
        status = Path(f"/proc/{proc['pid']}/status").read_text()
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
    embedded("up", workdir=workdir)
    result: dict[str, Any] = {"up_s": round(time.monotonic() - started, 1),
                              "load_at_start": os.getloadavg()[0], "cpus": os.cpu_count()}
    state = json.loads((workdir / "state.json").read_text())
    try:
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(workdir / "clouds.yaml")
        result["boot"] = boot_latency(openstack.connect(cloud="embedded-member"), state, args.boots)
        result["soak"] = soak(state, args.clients, args.cycles)
        result["after_soak"] = process_figures(state)
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
        f" {soak_['exceptions']} exceptions, {soak_['wall_s']} s",
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
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-cloud-")) / "w"
    result = run(args, workdir)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=1) + "\n")
    print(summary(result))
    if args.workdir is None:
        shutil.rmtree(workdir.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
