"""The controller side of a suite run: verdict, leak check, reports, exit code.

One :class:`SuiteRun` is registered as a pytest plugin in the process that
sees every report (the only process without xdist, the controller with it).
At session end it runs the leak check, writes ``verdict.json``, rewrites
``junit.xml`` for the ERROR outcome, writes Allure's categories and
environment, and sets the exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conformance import allure_support, leaks, outcomes
from conformance.catalogue import guarantees_of_test
from conformance.markers import GUARANTEE
from conformance.profile import Profile
from conformance.verdict import EXIT_ERROR, EXIT_FAILED, VerdictBuilder

CLOUD_ATTR = "conformance_cloud"
KNOWN_PHASES = ("setup", "call", "teardown")
EXIT_MEANING = {0: "every claimed guarantee passed", EXIT_FAILED: "FAIL: non-conformance",
                EXIT_ERROR: "ERROR: the infrastructure or the suite could not decide"}


class SuiteRun:
    """Aggregates reports into the verdict and finishes the run."""

    def __init__(self, config: pytest.Config, profile: Profile, builder: VerdictBuilder):
        self.config, self.profile, self.builder = config, profile, builder
        self.reports = Path(config.getoption("reports"))
        self.document: dict[str, Any] | None = None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Feed one phase report (xdist forwards the workers' reports here)."""
        outcome = outcomes.phase_outcome(report)
        guarantees = [str(v) for k, v in report.user_properties if k == GUARANTEE]
        if outcome is not None and not guarantees and report.when not in KNOWN_PHASES:
            # xdist's report of the test a dead worker was running: no properties, when="???"
            guarantees = guarantees_of_test(self.config.rootpath, report.nodeid)
        if outcome is not None:
            self.builder.add_phase(report.nodeid, guarantees, outcome, outcomes.message_of(report))
        self.builder.cloud.update(getattr(report, CLOUD_ATTR, None) or {})

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        """Check for leaks, write the verdict and reports, and set the exit code."""
        if self.config.option.collectonly or exitstatus in (pytest.ExitCode.USAGE_ERROR,
                                                            pytest.ExitCode.NO_TESTS_COLLECTED):
            return
        if not self.config.getoption("no_leak_check"):
            self._leak_check()
        self.document = self.builder.write(self.reports / "verdict.json", int(exitstatus))
        self._finish_junit()
        self._finish_allure()
        session.exitstatus = self.document["exit_code"]

    def _leak_check(self) -> None:
        run_id = self.builder.run_id
        try:
            result = leaks.sweep_profile(self.profile, run_id)
        except Exception as exc:
            self.builder.add_error(f"leak check for run {run_id} could not run: "
                                   f"{type(exc).__name__}: {exc}")
            return
        self.builder.add_leaks(result.found)
        for key, value in result.cloud.items():
            self.builder.cloud.setdefault(key, value)
        for failure in result.failures:
            self.builder.add_error(f"leak check could not delete {failure}")

    def _finish_junit(self) -> None:
        xmlpath = getattr(self.config.option, "xmlpath", None)
        if xmlpath and Path(xmlpath).is_file():
            outcomes.rewrite_junit(Path(xmlpath), self.builder.leaks, self.builder.errors)

    def _finish_allure(self) -> None:
        if not allure_support.active(self.config):
            return
        environment = {"profile": self.profile.name, "run_id": self.builder.run_id,
                       **{f"cloud.{k}": str(v) for k, v in self.builder.cloud.items()}}
        allure_support.write_results_metadata(Path(self.config.option.allure_report_dir), environment)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        """Summarise the verdict: guarantee outcomes, leaks and the exit code."""
        doc = self.document
        if doc is None:
            return
        tr = terminalreporter
        tr.write_sep("=", f"conformance verdict: run {doc['run_id']}, profile {doc['profile']['name']}")
        tally: dict[str, int] = {}
        for entry in doc["guarantees"]:
            tally[entry["outcome"]] = tally.get(entry["outcome"], 0) + 1
            if entry["outcome"] in ("failed", "error"):
                tr.write_line(f"{entry['outcome'].upper():6} {entry['id']}: {entry['message'][:200]}")
        for leak in doc["leaks"]:
            tr.write_line(f"LEAKED {leak} (deleted)")
        for error in doc["errors"]:
            tr.write_line(f"ERROR  {error}")
        counts = ", ".join(f"{tally.get(o, 0)} {o}" for o in ("passed", "failed", "error", "skipped"))
        tr.write_line(f"guarantees: {counts}; verdict: {self.reports / 'verdict.json'}")
        code = doc["exit_code"]
        tr.write_line(f"exit code {code}: {EXIT_MEANING.get(code, 'see pytest')}")
