"""Interruptions and cleanup: a 500 is an ERROR; Ctrl-C, a killed worker or a killed run leave nothing.

One embedded cloud, started with ``--patch patches/server_get_500.py``: GET
/servers/{id} answers 500 while the patch's switch is on (it is on from the
start; the control endpoint switches it).  With it on, launch and pause
report ERROR, never FAIL (issue 3).  With it off, a launch+pause run
(``-n 2``, fixed ``--run-id``) is interrupted once its first server exists:

- SIGINT to pytest (as run_embedded forwards Ctrl-C) and to its process
  group (a terminal's Ctrl-C): nothing is left, the sweep finds nothing;
- SIGKILL to the xdist worker owning that server: the run ends with exit 6,
  the crashed test's guarantees are ERROR, the leak check deletes the
  server, nothing untagged is left;
- SIGKILL to every process of the run: what is left is all tagged, and
  ``python -m conformance sweep --run ID`` removes it.

Untagged servers of the member and of another project's member (one named
like a run's) and an untagged image are compared field by field after each
run and sweep and after ``sweep --all``.  ``-s`` shows each test's figures.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conformance.connect import role_connections
from conformance.lib.api import call
from conformance.lib.resources import NAME_PREFIX, RUN_PROPERTY, is_ours, resource_name
from conformance.profile import load_profile
from tests.selftest.cloud import REPO, EmbeddedCloud, started_cloud

pytestmark = pytest.mark.selftest

PATCH = Path(__file__).parent / "patches" / "server_get_500.py"
SWITCH = "server-get-500"  # the patch's entry in the control endpoint's /defects
SUITES = [str(REPO / "conformance" / "suites" / f"test_{name}.py") for name in ("launch", "pause")]
SUITE_TIMEOUT = 420.0


@pytest.fixture(scope="module")
def patched_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedCloud]:
    """An embedded cloud started with the server-GET-500 site patch."""
    yield from started_cloud(tmp_path_factory, "interrupt", "--patch", str(PATCH))


@pytest.fixture(scope="module")
def conns(patched_cloud: EmbeddedCloud) -> dict[str, Any]:
    """Connections of the admin, the member and another project's member."""
    return role_connections(load_profile(patched_cloud.profile), ["admin", "member", "other_member"])


LOOKALIKE = resource_name("0f0f0f0f", "gw0", "lookalike")  # named like a run's, but untagged


@pytest.fixture(scope="module")
def foreign(patched_cloud: EmbeddedCloud, conns: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Untagged servers (ACTIVE) and an image the suite did not create, made before any run; deleted after."""
    patched_cloud.defect(SWITCH, False)
    spec = load_profile(patched_cloud.profile).resources
    owners = {"customer-other-project": "other_member", "customer-same-project": "member",
              LOOKALIKE: "member"}
    made = {name: (owner, "servers", _boot(conns[owner], name, spec)) for name, owner in owners.items()}
    image = call(conns["member"], "POST", "/images", service="image",
                 json={"name": f"{LOOKALIKE}-image", "disk_format": "raw", "container_format": "bare"}).body
    made["image"] = ("member", "images", image["id"])
    for owner, kind, ref in made.values():
        if kind == "servers":
            _wait_active(conns[owner], ref)
    before = _describe(conns, made)
    servers = [d for label, d in before.items() if label != "image"]
    assert all(d["tags"] == ["customer"] and d["metadata"] == {"owner": "customer"} for d in servers), before
    yield {"made": made, "before": before}
    for owner, kind, ref in made.values():
        call(conns[owner], "DELETE", f"/{kind}/{ref}", service="compute" if kind == "servers" else "image")


def _boot(conn: Any, name: str, spec: Any) -> str:
    image = conn.image.find_image(spec.image, ignore_missing=False).id
    flavor = conn.compute.find_flavor(spec.flavor_small, ignore_missing=False).id
    body = {"name": name, "imageRef": image, "flavorRef": flavor, "networks": [{"uuid": spec.network}],
            "metadata": {"owner": "customer"}, "tags": ["customer"]}
    return str(call(conn, "POST", "/servers", json={"server": body}).body["server"]["id"])


def _wait_active(conn: Any, server_id: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while (status := call(conn, "GET", f"/servers/{server_id}").body["server"]["status"]) != "ACTIVE":
        assert status != "ERROR" and time.monotonic() < deadline, f"foreign server {server_id}: {status}"
        time.sleep(1)


def _describe(conns: dict[str, Any], made: dict[str, Any]) -> dict[str, Any]:
    """What must not change: a server's status, name, updated time, metadata and tags; an image's fields."""
    seen: dict[str, Any] = {}
    for label, (owner, kind, ref) in made.items():
        if kind == "images":
            seen[label] = call(conns[owner], "GET", f"/images/{ref}", service="image").body
        else:
            server = call(conns[owner], "GET", f"/servers/{ref}").body["server"]
            seen[label] = {k: server.get(k) for k in ("id", "name", "status", "updated", "metadata",
                                                      "tags", "OS-EXT-STS:task_state")}
    return seen


def assert_foreign_unchanged(conns: dict[str, Any], foreign: dict[str, Any]) -> None:
    """Every foreign resource is still there, every field as before."""
    assert _describe(conns, foreign["made"]) == foreign["before"]


def leftovers(admin: Any, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """Servers (every project) and images named or marked as run ``run_id``'s."""
    prefix = f"{NAME_PREFIX}{run_id}-"
    servers = call(admin, "GET", "/servers/detail", params={"all_tenants": 1}).body["servers"]
    images = call(admin, "GET", "/images", service="image", params={"limit": 1000}).body["images"]
    return {"servers": [s for s in servers if s["name"].startswith(prefix) or is_ours(s, run_id)],
            "images": [i for i in images if str(i.get("name")).startswith(prefix)
                       or i.get(RUN_PROPERTY) == run_id]}


def count(found: dict[str, list[dict[str, Any]]]) -> int:
    return sum(len(v) for v in found.values())


def sweep(cloud: EmbeddedCloud, *which: str) -> subprocess.CompletedProcess[str]:
    """``python -m conformance sweep --profile P`` with ``--run ID`` or ``--all``."""
    return subprocess.run([sys.executable, "-m", "conformance", "sweep", f"--profile={cloud.profile}",
                           *which], cwd=REPO, text=True, capture_output=True, timeout=SUITE_TIMEOUT)


def start_suite(cloud: EmbeddedCloud, reports: Path, run_id: str) -> subprocess.Popen[bytes]:
    """Launch and pause with ``-n 2`` in the background (own session; output in reports/../suite.log)."""
    reports.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", f"--profile={cloud.profile}", f"--reports={reports}",
           f"--run-id={run_id}", "-q", "-p", "no:cacheprovider", "-n", "2", *SUITES]
    log = (reports.parent / "suite.log").open("wb")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True, preexec_fn=_default_sigint)


def _default_sigint() -> None:
    """In the child: SIGINT back to its default, as in a terminal.

    A shell without job control starts a background command with SIGINT ignored (e.g. CI
    launched as ``(nohup .ci/run &)``), every descendant inherits that, and Python then installs
    no KeyboardInterrupt handler: the SIGINT this module sends was lost and the run passed.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_first_server(proc: subprocess.Popen[bytes], admin: Any, run_id: str,
                          timeout: float = 180.0) -> float:
    """Poll (as admin, every project) until run ``run_id`` has a server; returns the seconds waited."""
    start = time.monotonic()
    while not leftovers(admin, run_id)["servers"]:
        assert proc.poll() is None, f"the suite ended (exit {proc.returncode}) before creating a server"
        assert time.monotonic() - start < timeout, f"no server of run {run_id} after {timeout:g}s"
        time.sleep(0.5)
    return time.monotonic() - start


def finish(proc: subprocess.Popen[bytes], reports: Path) -> tuple[int, str]:
    """Wait for the suite to exit (killing its process group if it hangs); exit code and log."""
    try:
        code = proc.wait(timeout=SUITE_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail(f"the suite did not exit within {SUITE_TIMEOUT:g}s of the interruption")
    return code, (reports.parent / "suite.log").read_text(errors="replace")


def xdist_worker(pid: int, name: str) -> int:
    """The pid of xdist worker ``name`` (gwN): the N-th child of ``pid`` (xdist starts gw0 first)."""
    children = sorted(int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    index = int(name.removeprefix("gw"))
    assert len(children) > index, f"{pid} has children {children}, no worker {name}"
    return children[index]


def new_run_id() -> str:
    return secrets.token_hex(4)


def test_server_get_500_is_error_not_fail(patched_cloud: EmbeddedCloud, conns: dict[str, Any],
                                          reports: Path) -> None:
    """With --patch making GET /servers/{id} answer 500, launch and pause are ERROR (exit 6), no FAIL."""
    patched_cloud.defect(SWITCH, True)
    try:
        run = patched_cloud.run_suite(reports, "-n", "2", *SUITES)
    finally:
        patched_cloud.defect(SWITCH, False)
    entries = run.verdict.get("guarantees", [])
    failed = [g for g in entries if g["outcome"] == "failed"]
    errors = [g for g in entries if g["outcome"] == "error"]
    print(f"\n--patch 500: exit {run.exit_code}, {len(errors)} ERROR, {len(failed)} FAIL")

    assert run.verdict and failed == [] and run.verdict["counts"]["failed"] == 0, run.output[-3000:]
    assert errors and all("injected by the server_get_500" in g["message"] for g in errors), errors
    assert run.exit_code == 6, run.output[-3000:]
    assert sweep(patched_cloud, f"--run={run.verdict['run_id']}").returncode == 0
    assert count(leftovers(conns["admin"], run.verdict["run_id"])) == 0


@pytest.mark.parametrize("target", ["pytest", "group"])
def test_sigint_mid_run_leaves_nothing(patched_cloud: EmbeddedCloud, conns: dict[str, Any],
                                       foreign: dict[str, Any], reports: Path, target: str) -> None:
    """SIGINT to pytest (or its process group, as Ctrl-C) once a server exists: nothing is left to sweep."""
    run_id, admin = new_run_id(), conns["admin"]
    proc = start_suite(patched_cloud, reports, run_id)
    waited = wait_for_first_server(proc, admin, run_id)
    if target == "group":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(signal.SIGINT)
    code, log = finish(proc, reports)
    verdict = json.loads((reports / "verdict.json").read_text())
    after_run = leftovers(admin, run_id)
    swept = sweep(patched_cloud, f"--run={run_id}")
    after_sweep = leftovers(admin, run_id)
    print(f"\nSIGINT to {target} after {waited:.1f}s: exit {code}, {count(after_run)} left after the run, "
          f"{count(after_sweep)} after the sweep ({swept.stdout.strip()})")

    assert (code, verdict["exit_code"], verdict["outcome"]) == (2, 2, "error"), log[-3000:]
    assert verdict["counts"]["failed"] == 0 and "interrupted" in verdict["errors"][-1], verdict
    assert count(after_run) == 0, (after_run, log[-3000:])
    assert swept.returncode == 0 and count(after_sweep) == 0, swept.stdout + swept.stderr
    assert_foreign_unchanged(conns, foreign)


def test_sigkill_one_worker_leaves_only_tagged(patched_cloud: EmbeddedCloud, conns: dict[str, Any],
                                               foreign: dict[str, Any], reports: Path) -> None:
    """SIGKILL to one xdist worker once a server exists: every leftover is tagged, the sweep removes all."""
    run_id, admin = new_run_id(), conns["admin"]
    proc = start_suite(patched_cloud, reports, run_id)
    waited = wait_for_first_server(proc, admin, run_id)
    server = leftovers(admin, run_id)["servers"][0]  # named cft-<run>-<worker>-<suffix>
    worker = server["name"].removeprefix(f"{NAME_PREFIX}{run_id}-").split("-")[0]
    os.kill(xdist_worker(proc.pid, worker), signal.SIGKILL)
    code, log = finish(proc, reports)
    verdict = json.loads((reports / "verdict.json").read_text())
    after_run = leftovers(admin, run_id)
    untagged = [s["id"] for s in after_run["servers"] if not is_ours(s, run_id)]
    unmarked = [i["id"] for i in after_run["images"] if i.get(RUN_PROPERTY) != run_id]
    swept = sweep(patched_cloud, f"--run={run_id}")
    after_sweep = leftovers(admin, run_id)
    print(f"\nSIGKILL of {worker} after {waited:.1f}s: exit {code}, leak check deleted "
          f"{len(verdict['leaks'])}, {count(after_run)} left after the run ({len(untagged) + len(unmarked)} "
          f"untagged), {count(after_sweep)} after the sweep ({swept.stdout.strip()})")

    assert code == 6 and verdict["counts"]["failed"] == 0, log[-3000:]
    assert any(server["id"] in leak for leak in verdict["leaks"]), (verdict["leaks"], log[-3000:])
    outcomes = {g["id"]: g for g in verdict["guarantees"] if g["id"].startswith(("LAUNCH-", "PAUSE-"))}
    crashed = [g for g in outcomes.values() if "crashed" in g["message"]]
    assert crashed and {g["outcome"] for g in outcomes.values()} <= {"passed", "error"}, outcomes
    assert untagged == [] and unmarked == [], (after_run, log[-3000:])
    assert swept.returncode == 0 and count(after_sweep) == 0, swept.stdout + swept.stderr
    assert_foreign_unchanged(conns, foreign)


def test_sigkill_everything_then_sweep_removes_all(patched_cloud: EmbeddedCloud, conns: dict[str, Any],
                                                  foreign: dict[str, Any], reports: Path) -> None:
    """SIGKILL to pytest and its workers (nothing can clean up): all left is tagged; the sweep removes it."""
    run_id, admin = new_run_id(), conns["admin"]
    proc = start_suite(patched_cloud, reports, run_id)
    waited = wait_for_first_server(proc, admin, run_id)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    after_run = leftovers(admin, run_id)
    untagged = [s["id"] for s in after_run["servers"] if not is_ours(s, run_id)]
    swept = sweep(patched_cloud, f"--run={run_id}")
    after_sweep = leftovers(admin, run_id)
    print(f"\nSIGKILL of every process after {waited:.1f}s: {count(after_run)} left after the run "
          f"({len(untagged)} untagged), {count(after_sweep)} after the sweep ({swept.stdout.strip()})")

    assert after_run["servers"] and untagged == [], after_run
    assert swept.returncode == 0 and count(after_sweep) == 0, swept.stdout + swept.stderr
    assert_foreign_unchanged(conns, foreign)


def test_foreign_resources_survive_sweep_all(patched_cloud: EmbeddedCloud, conns: dict[str, Any],
                                             foreign: dict[str, Any]) -> None:
    """`sweep --all` removes no untagged server or image (not even one named like a run's)."""
    swept = sweep(patched_cloud, "--all")
    print(f"\nsweep --all: {swept.stdout.strip()}")

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert_foreign_unchanged(conns, foreign)
