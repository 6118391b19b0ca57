"""Allure integration: categories, labels, the ERROR status and redaction.

allure-pytest decides a result's status from the exception type alone
(AssertionError: failed, anything else: broken).  The suite's outcome comes
from :mod:`conformance.outcomes`, so :func:`set_status` overrides the status of
the current test result after allure-pytest set its own.  :func:`install_redaction`
wraps the one object that writes to the results directory (allure-commons'
file logger), so every result, step, parameter and attachment is redacted on
its way to disk, whoever attached it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attr
import pytest

from conformance.catalogue import Guarantee
from conformance.redact import redact, redact_bytes

HOOKIMPL_MARK = "allure_impl"  # pluggy's "<project>_impl" attribute for allure-commons
ALLURE_STATUS = {"failed": "failed", "error": "broken", "passed": "passed", "skipped": "skipped"}

CATEGORIES: list[dict[str, Any]] = [
    {"name": "FAIL: guarantee violated", "matchedStatuses": ["failed"],
     "description": "The cloud broke a guarantee it must keep (non-conformance)."},
    {"name": "ERROR: infrastructure or suite", "matchedStatuses": ["broken"],
     "description": "The check could not run: HTTP 5xx, timeout, SSH unreachable or a suite bug."},
    {"name": "SKIP: capability not claimed", "matchedStatuses": ["skipped"],
     "messageRegex": ".*does not claim capability.*"},
    {"name": "SKIP: not applicable (a claimed capability conflicts)", "matchedStatuses": ["skipped"],
     "messageRegex": ".*under which this guarantee does not apply.*"},
    {"name": "SKIP: depth not available (no admin or host access)", "matchedStatuses": ["skipped"]},
]


def active(config: pytest.Config) -> bool:
    """Whether allure-pytest writes results in this run."""
    return bool(getattr(config.option, "allure_report_dir", None))


def add_marks(item: pytest.Item, guarantees: list[Guarantee], link_base: str) -> None:
    """Label a test with its guarantees (tags, behaviours, links) and their MUST statements."""
    for g in guarantees:
        item.add_marker(pytest.mark.allure_label(g.id, f"depth:{g.depth}", label_type="tag"))
        item.add_marker(pytest.mark.allure_label(g.family, label_type="epic"))
        item.add_marker(pytest.mark.allure_label(g.operation, label_type="feature"))
        item.add_marker(pytest.mark.allure_label(g.id, label_type="story"))
        item.add_marker(pytest.mark.allure_label(g.id, label_type="guarantee"))
        item.add_marker(pytest.mark.allure_label(g.depth, label_type="depth"))
        item.add_marker(pytest.mark.allure_link(f"{link_base}#{g.anchor}", link_type="link", name=g.id))
    if guarantees:
        item.add_marker(pytest.mark.allure_description(description(item, guarantees)))


def description(item: pytest.Item, guarantees: list[Guarantee]) -> str:
    """The test's docstring followed by the MUST statement of each guarantee."""
    doc = (getattr(getattr(item, "function", None), "__doc__", None) or "").strip()
    musts = "\n".join(f"- **{g.id}** ({g.depth}): {g.must.strip()}" for g in guarantees)
    return f"{doc}\n\nGuarantees checked:\n\n{musts}\n".lstrip()


def attach_guarantees(guarantees: list[Guarantee]) -> None:
    """Attach the MUST statements to the running test (as a text attachment)."""
    import allure

    text = "\n\n".join(f"{g.id} [{g.depth}] {g.operation}\n{g.must.strip()}\nsource: {g.source}"
                       for g in guarantees)
    allure.attach(text, name="guarantees", attachment_type=allure.attachment_type.TEXT)


def set_status(config: pytest.Config, outcome: str) -> None:
    """Make the current Allure test result show the test's outcome so far.

    ``outcome`` is the worst outcome of the phases reported so far; only a
    failed or error outcome changes anything (to failed or broken).
    """
    listener = config.pluginmanager.get_plugin("allure_listener")
    if listener is None or outcome not in ("failed", "error"):
        return
    result = listener.allure_logger.get_test(None)
    if result is not None:
        result.status = ALLURE_STATUS[outcome]


def write_results_metadata(results_dir: Path, environment: dict[str, str]) -> None:
    """Write categories.json and environment.properties into the results directory."""
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "categories.json").write_text(json.dumps(CATEGORIES, indent=2) + "\n")
    lines = [f"{key}={redact(str(value))}" for key, value in environment.items()]
    (results_dir / "environment.properties").write_text("\n".join(lines) + "\n")


def install_redaction() -> None:
    """Redact everything allure-commons' file loggers write from now on."""
    import allure_commons
    from allure_commons.logger import AllureFileLogger

    manager = allure_commons.plugin_manager
    for logger in list(manager.get_plugins()):
        if isinstance(logger, AllureFileLogger) and not getattr(logger, "_conformance_redacts", False):
            name = manager.get_name(logger)
            manager.unregister(logger)
            _wrap(logger)
            manager.register(logger, name)


def _wrap(logger: Any) -> None:
    cls = type(logger)
    report_item, attached_data = logger._report_item, logger.report_attached_data
    attached_file = logger.report_attached_file

    def redacting_report_item(item: Any) -> None:
        report_item(_scrub(item))

    def redacting_attached_data(body: str | bytes, file_name: str) -> None:
        attached_data(body=redact(body) if isinstance(body, str) else redact_bytes(body),
                      file_name=file_name)

    def redacting_attached_file(source: str | Path, file_name: str) -> None:
        try:
            body = Path(source).read_bytes()
        except OSError:
            attached_file(source=source, file_name=file_name)
            return
        attached_data(body=redact_bytes(body), file_name=file_name)

    # pluggy only registers functions carrying allure-commons' hookimpl marker.
    for name, func in (("report_attached_data", redacting_attached_data),
                       ("report_attached_file", redacting_attached_file)):
        setattr(func, HOOKIMPL_MARK, getattr(getattr(cls, name), HOOKIMPL_MARK))
        setattr(logger, name, func)
    logger._report_item = redacting_report_item
    logger._conformance_redacts = True


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if attr.has(type(value)):
        for field in attr.fields(type(value)):
            setattr(value, field.name, _scrub(getattr(value, field.name)))
    return value
