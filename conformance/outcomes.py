"""Three outcomes (FAIL, ERROR, SKIP) on top of pytest's pass/fail/skip.

pytest knows one kind of call-phase failure.  The suite needs two: a broken
guarantee (FAIL) and a check that could not run (ERROR).  The plugin decides
in ``pytest_runtest_makereport`` with :func:`conformance.errors.classify` and
stores the decision on the report as the JSON-serialisable attribute
``conformance_outcome`` (so it survives xdist's report serialisation) and as
the user property ``conformance.outcome`` (so it reaches the teardown report
and therefore JUnit).  Everything else reads it back from there:

- the terminal, via ``pytest_report_teststatus`` (category "error");
- JUnit, by rewriting ``<failure>`` to ``<error>`` after junitxml wrote the file;
- Allure, by setting the test result's status to broken (see allure_support);
- the verdict, via :func:`phase_outcome`.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from conformance.errors import classify
from conformance.redact import redact

REPORT_ATTR = "conformance_outcome"
PROPERTY = "conformance.outcome"


def classify_phase(report: pytest.TestReport, excinfo: pytest.ExceptionInfo[BaseException] | None) -> str:
    """The outcome of one phase: passed, failed, error or skipped.

    A failing call is FAIL or ERROR as :func:`conformance.errors.classify`
    decides (``pytest.fail()`` is always FAIL); a failing setup or teardown is
    always ERROR, as in pytest.
    """
    if report.skipped:
        return "skipped"
    if report.passed:
        return "passed"
    if report.when != "call":
        return "error"
    if hasattr(report, "wasxfail") or excinfo is None:
        return "failed"  # strict XPASS, or a failure without an exception
    if isinstance(excinfo.value, pytest.fail.Exception):
        return "failed"
    return classify(excinfo.value)


def phase_outcome(report: pytest.TestReport) -> str | None:
    """The verdict outcome of a (possibly deserialised) report; None: nothing to count."""
    outcome = getattr(report, REPORT_ATTR, None)
    if outcome is None:  # a report made without the plugin's hook (should not happen)
        outcome = "passed" if report.passed else "skipped" if report.skipped else (
            "failed" if report.when == "call" else "error")
    if outcome == "passed" and report.when != "call":
        return None
    return str(outcome)


def message_of(report: pytest.TestReport) -> str:
    """A one-paragraph message for a report: the crash line or the skip reason."""
    longrepr: Any = report.longrepr
    if longrepr is None:
        return ""
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    return str(longrepr).strip().splitlines()[-1] if str(longrepr).strip() else ""


def teststatus(report: pytest.TestReport) -> tuple[str, str, str] | None:
    """The terminal category for a call reported as ERROR (None: pytest decides)."""
    if report.when == "call" and getattr(report, REPORT_ATTR, None) == "error":
        return "error", "E", "ERROR"
    return None


def scrub_report(report: pytest.TestReport) -> None:
    """Redact secrets from a report's traceback text and captured output, in place."""
    if report.longrepr is not None:
        text = str(report.longrepr)
        cleaned = redact(text)
        if cleaned != text:
            report.longrepr = cleaned
    report.sections = [(title, redact(body)) for title, body in report.sections]


def rewrite_junit(path: Path, leaks: list[str], errors: list[str]) -> None:
    """Turn ERROR-classified failures into ``<error>``, add run-level errors, redact.

    Run-level problems (leaked resources, a leak check that could not run)
    become one ``conformance::session`` test case with an ``<error>``, so a CI
    gate that only reads JUnit sees them.
    """
    tree = ET.parse(path)
    root = tree.getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    for case in root.iter("testcase"):
        if _property(case, PROPERTY) == "error":
            for failure in case.findall("failure"):
                failure.tag = "error"
    if suites and (leaks or errors):
        suites[0].append(_session_case(leaks, errors))
    for suite in suites:
        _recount(suite)
    for element in root.iter():
        element.attrib = {k: redact(v) for k, v in element.attrib.items()}
        element.text = redact(element.text) if element.text else element.text
    tree.write(path, encoding="utf-8", xml_declaration=True)


def _property(case: ET.Element, name: str) -> str | None:
    for prop in case.iter("property"):
        if prop.get("name") == name:
            return prop.get("value")
    return None


def _session_case(leaks: list[str], errors: list[str]) -> ET.Element:
    case = ET.Element("testcase", classname="conformance", name="session", time="0")
    lines = [f"leaked (deleted by the leak check): {leak}" for leak in leaks] + errors
    summary = f"{len(leaks)} leaked resource(s)" if leaks else errors[0]
    error = ET.SubElement(case, "error", message=summary)
    error.text = "\n".join(lines)
    return case


def _recount(suite: ET.Element) -> None:
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(len(c.findall("failure")) for c in cases)))
    suite.set("errors", str(sum(len(c.findall("error")) for c in cases)))
