"""``down``, ``status`` and ``compute``: act on a cloud recorded in state.json."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conformance.embedded import procs
from conformance.embedded.httpcheck import call_json, status_code
from conformance.embedded.serving import rss_mb
from conformance.embedded.sshd import banner_ok
from conformance.embedded.workdir import Layout, WorkdirError, listening, locked, read_state

# service -> (path below its URL to GET, acceptable statuses)
HTTP_CHECKS = {"keystone": ("", (200,)), "glance": ("/", (200, 300)), "nova": ("/", (200,)),
               "placement": ("/", (200,)), "control": ("/health", (200,))}
# process -> the HTTP services it serves
PROCESS_SERVICES = {"keystone": ("keystone",), "glance": ("glance",),
                    "nova": ("nova", "placement", "control")}
COMPUTE_ACTIONS = ("stop", "start", "restart", "fence", "unfence")


class CommandError(RuntimeError):
    """A lifecycle command failed; the message is the one-line reason."""


def recorded_ports(state: dict[str, Any]) -> list[tuple[str, int]]:
    """Every (address, port) the cloud in ``state`` listens on."""
    bind = state.get("bind", "127.0.0.1")
    out = [(bind, int(p)) for p in state.get("ports", {}).values()]
    hosts = [*state.get("hosts", []), *([state["controller"]] if "controller" in state else [])]
    return out + [(h["address"], int(h["port"])) for h in hosts]


def running_processes(state: dict[str, Any]) -> list[str]:
    """Names of the recorded processes that are still alive."""
    return [f"{name} (pid {r['pid']})" for name, r in state.get("processes", {}).items()
            if procs.running(r)]


def stop_cloud(layout: Layout, state: dict[str, Any], grace: float = 10.0) -> None:
    """Stop every recorded process and check that no recorded port stays bound."""
    left = procs.stop(state.get("processes", {}), grace)
    if left:
        raise CommandError(f"still running after SIGKILL: {', '.join(left)}")
    deadline = time.monotonic() + 15.0  # a loaded machine may take a while to tear down
    bound = recorded_ports(state)
    while bound and time.monotonic() < deadline:
        now = listening()
        bound = [(a, p) for a, p in bound if (a, p) in now or ("0.0.0.0", p) in now]
        if bound:
            time.sleep(0.1)
    if bound:
        raise CommandError("ports still listening after stopping every process: "
                           + ", ".join(f"{a}:{p}" for a, p in bound) + " (see `ss -ltnp`)")


def down(workdir: Path, grace: float = 10.0) -> int:
    """Stop the cloud in ``workdir`` and remove its generated files (idempotent)."""
    from conformance.embedded.orchestrator import remove_generated

    layout = Layout(workdir)
    if not layout.root.is_dir():
        print(f"nothing to stop: {layout.root} does not exist")
        return 0
    with locked(layout):
        state = read_state(layout)
        if state is not None:
            stop_cloud(layout, state, grace)
        remove_generated(layout)
    if state is None:
        print(f"nothing was running in {layout.root}; generated files removed")
    else:
        print(f"embedded cloud in {layout.root} stopped: {len(state.get('processes', {}))} "
              f"processes, {len(recorded_ports(state))} ports released; logs kept in "
              f"{layout.logs}")
    return 0


def load_running(workdir: Path) -> dict[str, Any]:
    """The state of the cloud in ``workdir``; raise if none was started there."""
    layout = Layout(workdir)
    state = read_state(layout)
    if state is None:
        raise CommandError(f"no embedded cloud in {layout.root} (run `up` first)")
    return state


def _check_process(name: str, rec: dict[str, Any], state: dict[str, Any]) -> tuple[bool, str]:
    """Health of one recorded process: (healthy, detail)."""
    if not procs.running(rec):
        return False, "not running"
    detail = f"rss {rss_mb(rec['pid']):.0f} MB"
    if name.startswith("sshd-"):
        host = next(h for h in [*state["hosts"], state["controller"]]
                    if f"sshd-{h['name']}" == name)
        ok = banner_ok(host["address"], host["port"], timeout=10)
        return ok, f"{detail}, ssh {host['address']}:{host['port']} {'answers' if ok else 'silent'}"
    for service in PROCESS_SERVICES.get(name, ()):
        path, good = HTTP_CHECKS[service]
        code = status_code(state["urls"][service] + path, timeout=10)
        if code not in good:
            return False, f"{detail}, {service} {state['urls'][service]} answered {code}"
        detail += f", {service} ok"
    return True, detail


def status(workdir: Path) -> int:
    """Print the health of every service; 0 if all are healthy."""
    state = load_running(workdir)
    healthy = state.get("status") == "ready"
    print(f"embedded cloud in {state['workdir']}: {state.get('status')}, started "
          f"{state.get('started')}")
    for name, rec in state.get("processes", {}).items():
        ok, detail = _check_process(name, rec, state)
        healthy &= ok
        print(f"  {'ok  ' if ok else 'FAIL'} {name:<18} pid {rec['pid']:<7} {detail}")
    nova = state.get("processes", {}).get("nova")
    if "control" in state.get("urls", {}) and nova and procs.running(nova):
        try:
            _, health = call_json("GET", state["urls"]["control"] + "/health", timeout=5)
            print(f"  computes: {health.get('computes')}  defects: {health.get('defects')}")
        except (OSError, AttributeError):
            pass
    print("healthy" if healthy else "NOT healthy")
    return 0 if healthy else 1


def compute(workdir: Path, action: str, host: str) -> int:
    """Forward a compute service action to the Nova process's control endpoint."""
    state = load_running(workdir)
    names = [h["name"] for h in state.get("hosts", [])]
    if host not in names:
        raise CommandError(f"unknown compute host {host!r}; hosts: {', '.join(names)}")
    if action not in COMPUTE_ACTIONS:
        raise CommandError(f"unknown action {action!r}; use one of {', '.join(COMPUTE_ACTIONS)}")
    url = f"{state['urls']['control']}/computes/{host}/{action}"
    try:
        code, body = call_json("POST", url, timeout=120)
    except OSError as exc:
        raise CommandError(f"the control endpoint {url} does not answer: {exc}") from None
    if not 200 <= code < 300:
        raise CommandError(f"{action} {host} failed: HTTP {code}: {body}")
    print(f"{action} {host}: {body}")
    return 0


__all__ = ["COMPUTE_ACTIONS", "CommandError", "WorkdirError", "compute", "down", "status"]
