"""The Markdown summary of a ``bench.suite`` result (the JSON is the record; this is for people)."""

from __future__ import annotations

from typing import Any


def _load(values: Any) -> str:
    return " ".join(f"{v:.2f}" for v in values) if values else "?"


def _full(full: dict[str, Any]) -> list[str]:
    critical, overhead, waits = full["critical_path"], full["overhead"], full["waits"]
    delay, per_wait = waits["detection_delay_s"], waits["requests_per_wait_that_waited"]
    lines = [
        "## Full suite",
        "",
        f"`{full['command']}` (load average at start {_load(full['load_average_at_start'])})",
        "",
        "| figure | value |",
        "|---|---|",
        f"| wall time | {full['wall_s']:.0f} s (tests {full['tests_wall_s']:.0f} s, pytest start/finish "
        f"{full['fixed_overhead_s']:.0f} s) |",
        f"| tests, guarantees | {full['tests']}; {full['guarantees']} |",
        f"| critical path (cloud busy with >= 1 action of the run) | {critical['seconds']:.0f} s "
        f"({critical['actions']} actions on {critical['servers']} servers; "
        f"per worker {critical['per_worker']}) |",
        f"| wall / critical path | {full['wall_over_critical_path']} "
        f"(tests only: {full['tests_wall_over_critical_path']}) |",
        f"| per-test overhead (test time not covered by its worker's actions) | {overhead['overhead']:.0f} s "
        f"of {overhead['seconds']:.0f} s test time ({overhead['tests']} tests) |",
        f"| state change -> noticed | median {delay.get('median')} s, p90 {delay.get('p90')} s, "
        f"max {delay.get('max')} s ({delay.get('count')} waits) |",
        f"| HTTP requests per wait (waits that waited) | median {per_wait.get('median')}, "
        f"p90 {per_wait.get('p90')}, max {per_wait.get('max')} ({waits['waits']} waits in all) |",
    ]
    if "api" in full:
        api = full["api"]
        lines.append(
            f"| nova-api requests | {api['requests']} ({api['per_second']}/s), {api['by_method']}; "
            f"nova-api busy {api['busy_seconds']} s |"
        )
    cpu = full.get("cpu_s") or {}
    if "cloud_nova_s" in cpu:
        lines.append(
            f"| CPU: the Nova process (one GIL) / the suite's processes | {cpu['cloud_nova_s']:.0f} s "
            f"({cpu['cloud_nova_s'] / full['wall_s']:.0%} of the wall time) / {cpu['suite_s']:.0f} s |"
        )
    lines += [
        "",
        "Most overhead:",
        "",
        "| test | worker | s | cloud s | overhead s |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| `{r['nodeid']}` | {r['worker']} | {r['seconds']} | {r['cloud']} | {r['overhead']} |"
        for r in overhead["top"][:10]
    ]
    return lines


def _scaling(scaling: dict[str, Any]) -> list[str]:
    lines = [
        "## Speed-up by xdist workers (cloud-bound suites)",
        "",
        "Suites: " + ", ".join(f"`{s.rsplit('/', 1)[-1]}`" for s in scaling["suites"]),
        "",
        "| workers | wall s | tests wall s | critical path s | speed-up (tests wall) | load at start "
        "| exit |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['workers']} | {r['wall_s']:.0f} | {r['tests_wall_s']:.0f} | {r['critical_path_s']:.0f} | "
        f"{r['speedup']} | {_load(r['load_average_at_start'])} | {r['exit_code']} |"
        for r in scaling["runs"]
    ]
    return lines


def _coverage(rows: list[dict[str, Any]], tempest: dict[str, Any] | None) -> list[str]:
    lines = ["## Coverage by depth: the suite's passed guarantees and Tempest's passed tests", ""]
    if tempest:
        lines += [
            f"Tempest: `{tempest['command']}`: {tempest['wall_s']:.0f} s wall, {tempest['counts']} "
            f"(load at start {_load(tempest['load_average_at_start'])})",
            "",
        ]
    else:
        lines += ["Tempest: not run (pass `--tempest`).", ""]
    lines += [
        "| family | guarantees | passed | api | trace | placement | host | Tempest tests (passed, api) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['family']} | {r['guarantees']} | {r['passed']} | {r['api']} | {r['trace']} | "
        f"{r['placement']} | {r['host']} | {r['tempest_tests']} ({r['tempest_passed']}) |"
        for r in rows
    ]
    return lines


def markdown(result: dict[str, Any]) -> str:
    machine = result["machine_at_start"]
    lines = [
        "# Suite benchmark on the embedded cloud",
        "",
        f"`{result['command']}` on {machine['cores']} cores, {machine['platform']}, Python "
        f"{machine['python']}; started {machine['utc']} with load average {_load(machine['load_average'])}, "
        f"ended {result['machine_at_end']['utc']} with {_load(result['machine_at_end']['load_average'])}.",
        "",
    ]
    if "full" in result:
        lines += [*_full(result["full"]), ""]
    if "scaling" in result:
        lines += [*_scaling(result["scaling"]), ""]
    if "tempest" in result and "full" in result:
        ratio = result["tempest"]["wall_s"] / result["full"]["wall_s"]
        lines += [
            f"**Tempest / suite wall time: {ratio:.2f}x** ({result['tempest']['wall_s']:.0f} s against "
            f"{result['full']['wall_s']:.0f} s, the same embedded cloud configuration).",
            "",
        ]
    if "coverage" in result:
        lines += [*_coverage(result["coverage"], result.get("tempest")), ""]
    return "\n".join(lines)
