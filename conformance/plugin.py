"""The pytest plugin: profile, run id, markers, gating, three outcomes, verdict.

Loaded through the ``pytest11`` entry point (or the repository's conftest.py).
Without ``--profile`` (or ``CONFORMANCE_PROFILE``) it only validates markers,
so the project's own tests run as plain pytest; with a profile the run is a
suite run: capabilities gate tests, call failures are split into FAIL and
ERROR, reports go to ``--reports`` (JUnit, Allure results, verdict.json) and
the exit code follows DESIGN.md (0 pass, 1 FAIL, 4 profile, 6 ERROR).

Cloud facts for the verdict: fixtures call :func:`record_cloud_info` (e.g.
``max_microversion``); the facts ride on test reports to the xdist controller.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from conformance import allure_support, outcomes, redact, selection
from conformance.capabilities import CAPABILITIES
from conformance.catalogue import CatalogueError, Guarantee, load_catalogue
from conformance.markers import CONFLICTS, GUARANTEE, MARKER_LINES, REQUIRES, ids_of
from conformance.profile import Profile, ProfileError, load_profile
from conformance.suiterun import CLOUD_ATTR, SuiteRun
from conformance.verdict import VerdictBuilder, worst

# The suite's fixtures (roles, servers, hosts, placement) are loaded with the plugin.
pytest_plugins = ["conformance.fixtures"]

PROFILE_KEY = pytest.StashKey[Profile | None]()
RUN_ID_KEY = pytest.StashKey[str]()
CATALOGUE_KEY = pytest.StashKey[dict[str, Guarantee]]()
CLOUD_INFO_KEY = pytest.StashKey[dict[str, Any]]()
"""``config.stash[CLOUD_INFO_KEY]``: cloud facts for verdict.json (use record_cloud_info)."""
ITEM_OUTCOME_KEY = pytest.StashKey[str]()
WORKER_RUN_ID = "conformance_run_id"
WORKER_DIST = "conformance_dist"
ENV_PROFILE = "CONFORMANCE_PROFILE"
NO_PROFILE = f"conformance tests selected but no profile: pass --profile PATH or set {ENV_PROFILE}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Options of a suite run."""
    group = parser.getgroup("conformance", "Nova conformance suite")
    group.addoption("--profile", metavar="PATH", default=None,
                    help=f"deployment profile (YAML); default: ${ENV_PROFILE}")
    group.addoption("--run-id", metavar="ID", default=None,
                    help="id tagged on every resource of this run (default: 8 random hex digits)")
    group.addoption("--reports", metavar="DIR", default="reports",
                    help="directory for junit.xml, allure-results/ and verdict.json (default: reports)")
    group.addoption("--no-leak-check", action="store_true", default=False,
                    help="skip the session-end check for resources this run left behind")
    group.addoption("--guarantee", action="append", metavar="ID[,ID]", default=None,
                    help="run only the tests that check these guarantee ids (repeatable)")
    group.addoption("--catalogue-url", metavar="URL", default="../../docs/guarantees.md",
                    help="base URL of the catalogue document linked from the Allure report")


def record_cloud_info(config: pytest.Config, **facts: Any) -> None:
    """Record facts about the cloud under test (e.g. max_microversion) for verdict.json."""
    config.stash.setdefault(CLOUD_INFO_KEY, {}).update(facts)


def is_worker(config: pytest.Config) -> bool:
    """True in an xdist worker process."""
    return hasattr(config, "workerinput")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register markers, then load the catalogue and the profile (exit 4 if either is bad)."""
    for line in MARKER_LINES:
        config.addinivalue_line("markers", line)
    try:
        config.stash[CATALOGUE_KEY] = load_catalogue()
    except CatalogueError as exc:
        raise pytest.UsageError(f"guarantee catalogue: {exc}") from None
    catalogue = config.stash[CATALOGUE_KEY]
    selection.check_known(selection.requested(config.getoption("guarantee")), catalogue)
    path = config.getoption("profile") or os.environ.get(ENV_PROFILE) or None
    if path:
        _check_rootdir(config)
    profile = _load(path) if path else None
    config.stash[PROFILE_KEY] = profile
    config.stash[RUN_ID_KEY] = _run_id(config)
    _keep_groups_together(config)
    if profile is not None:
        _configure_suite_run(config, profile)


def _check_rootdir(config: pytest.Config) -> None:
    """Refuse a rootdir pytest derived from the profile's path instead of the project.

    pytest picks its rootdir before plugins' options are known, so the value of
    ``--profile PATH`` (two words) counts as a test path.  With a profile outside
    the project and no test paths, that loses the project's configuration
    (testpaths) and pytest would collect the current directory.
    """
    two_words = "--profile" in config.invocation_params.args
    moved = config.rootpath != config.invocation_params.dir
    derived = config.inipath is None and not config.option.rootdir and moved
    if two_words and derived and config.args_source == pytest.Config.ArgsSource.INVOCATION_DIR:
        raise pytest.UsageError(
            f"pytest took its rootdir ({config.rootpath}) from the profile's path and found no "
            f"configuration there. Fix: write --profile=PATH (one word) or set {ENV_PROFILE}=PATH")


def _load(path: str) -> Profile:
    from conformance.connect import check_roles

    try:
        profile = load_profile(path)
        check_roles(profile)
    except ProfileError as exc:
        raise pytest.UsageError(f"bad profile: {exc}") from None
    return profile


def _run_id(config: pytest.Config) -> str:
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return str(workerinput.get(WORKER_RUN_ID) or workerinput["testrunuid"][:8])
    return str(config.getoption("run_id") or secrets.token_hex(4))


def _configure_suite_run(config: pytest.Config, profile: Profile) -> None:
    _register_secrets(profile)
    reports = Path(config.getoption("reports"))
    if not getattr(config.option, "xmlpath", None) and not config.option.collectonly:
        config.option.xmlpath = str(reports / "junit.xml")
    if not getattr(config.option, "allure_report_dir", None):
        config.option.allure_report_dir = str(reports / "allure-results")
        if not is_worker(config) and not config.option.collectonly:
            shutil.rmtree(config.option.allure_report_dir, ignore_errors=True)
    if not is_worker(config):
        catalogue = config.stash[CATALOGUE_KEY]
        builder = VerdictBuilder([gid for gid, g in catalogue.items() if not g.retired],
                                 profile.name, profile.sha256, config.stash[RUN_ID_KEY])
        config.pluginmanager.register(SuiteRun(config, profile, builder), "conformance-suiterun")


def _register_secrets(profile: Profile) -> None:
    from conformance.connect import role_clouds

    files = redact.clouds_yaml_candidates(profile.clouds_yaml)
    redact.register_many(redact.secrets_from_clouds_yaml(files, role_clouds(profile).values()))
    redact.register_many(redact.secrets_from_environment())
    hosts = [*profile.hosts.values(), *([profile.controller] if profile.controller else [])]
    for host in hosts:
        if host.key_file is not None:
            redact.register_many(redact.secrets_from_key_file(host.key_file))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand the controller's run id (and distribution mode) to each xdist worker."""
    node.workerinput[WORKER_RUN_ID] = node.config.stash[RUN_ID_KEY]
    node.workerinput[WORKER_DIST] = getattr(node.config.option, "dist", "no")


def _keep_groups_together(config: pytest.Config) -> None:
    """With ``-n``, run the tests of one ``xdist_group`` on one worker (e.g. sharing one server).

    xdist's default ``load`` becomes ``loadgroup``, which distributes unmarked tests the same way;
    a worker learns it from the controller (it must tag its node ids with the group).
    """
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        config.option.loadgroup = workerinput.get(WORKER_DIST) == "loadgroup"
    elif getattr(config.option, "dist", "no") == "load":
        config.option.dist = "loadgroup"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """With ``loadgroup``: the same units, API-bound ones kept to half the workers (scheduling.py)."""
    if getattr(config.option, "dist", "no") != "loadgroup":
        return None
    from conformance.scheduling import MixedScheduling  # xdist is only needed with -n
    return MixedScheduling(config, log)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Redact everything Allure writes (its file logger exists once configure is done)."""
    if session.config.stash[PROFILE_KEY] is not None and allure_support.active(session.config):
        allure_support.install_redaction()


@pytest.fixture(scope="session")
def profile(pytestconfig: pytest.Config) -> Profile:
    """The deployment profile of this run."""
    loaded = pytestconfig.stash[PROFILE_KEY]
    if loaded is None:
        raise pytest.UsageError(NO_PROFILE)
    return loaded


@pytest.fixture(scope="session")
def run_id(pytestconfig: pytest.Config) -> str:
    """The id of this run (the same in every xdist worker)."""
    return pytestconfig.stash[RUN_ID_KEY]


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """Turn an unknown guarantee id or capability into a collection error of its module."""
    report = yield
    if report.passed and isinstance(report.result, list):
        problems = [p for node in report.result if isinstance(node, pytest.Item)
                    for p in _marker_problems(node, collector.config.stash[CATALOGUE_KEY])]
        if problems:
            report.outcome, report.longrepr, report.result = "failed", "\n".join(problems), []
    return report


def _marker_problems(item: pytest.Item, catalogue: dict[str, Guarantee]) -> list[str]:
    problems = []
    for gid in ids_of(item, GUARANTEE):
        if gid not in catalogue:
            problems.append(f"{item.nodeid}: unknown guarantee id {gid!r} "
                            "(not in conformance/guarantees.yaml)")
        elif catalogue[gid].retired:
            problems.append(f"{item.nodeid}: guarantee {gid!r} is retired")
    for cap in ids_of(item, REQUIRES) + ids_of(item, CONFLICTS):
        if cap not in CAPABILITIES:
            problems.append(f"{item.nodeid}: unknown capability {cap!r} "
                            "(not in conformance/capabilities.py)")
    return problems


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Record ids on each test, gate on capabilities and label tests for Allure."""
    profile, catalogue = config.stash[PROFILE_KEY], config.stash[CATALOGUE_KEY]
    suite_items = [item for item in items if ids_of(item, GUARANTEE)]
    if profile is None and suite_items and not config.option.collectonly:
        _refuse_without_profile(config, suite_items)
    for item in suite_items:
        guarantees = [catalogue[gid] for gid in ids_of(item, GUARANTEE)]
        item.user_properties.extend((GUARANTEE, g.id) for g in guarantees)
        if profile is not None:
            allure_support.add_marks(item, guarantees, config.getoption("catalogue_url"))
    selection.deselect(config, items, selection.requested(config.getoption("guarantee")))
    if profile is not None:
        _gate(profile, items)
    if is_worker(config) and getattr(config.option, "loadgroup", False):
        _tag_groups(items)


def _scenario_fixtures(item: pytest.Item) -> list[str]:
    """The module- or class-scoped fixtures the test uses that its own module defines."""
    info = getattr(item, "_fixtureinfo", None)
    module = item.nodeid.partition("::")[0]
    return sorted(name for name, defs in (info.name2fixturedefs.items() if info is not None else [])
                  if defs and defs[-1].scope in ("module", "class") and defs[-1].baseid == module)


def _scenario_groups(items: list[pytest.Item]) -> dict[str, str]:
    """nodeid -> group for tests that share a module's scenario fixture (connected by shared use).

    Such a fixture is set up once per worker that runs one of its tests: split
    over two workers, the scenario acts (boots, moves, ...) twice.
    """
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        while parent.setdefault(key, key) != key:
            key = parent[key]
        return key

    used = {item.nodeid: [f"{item.nodeid.partition('::')[0]}:{name}" for name in _scenario_fixtures(item)]
            for item in items}
    for keys in used.values():
        for key in keys[1:]:
            parent[root(key)] = root(keys[0])
    return {nodeid: root(keys[0]).rpartition("/")[2].replace(".py:", ".")
            for nodeid, keys in used.items() if keys}


def _tag_groups(items: list[pytest.Item]) -> None:
    """Suffix ``@group`` to the node id of each xdist_group test, as xdist's loadgroup means to.

    xdist (3.8) sets ``item._nodeid``, which pytest 9.2 no longer reads (``item._id``), so its
    scheduler saw no groups and split them over the workers.  A test without an xdist_group that
    shares a scenario fixture of its module joins the group of its sharers (:func:`_scenario_groups`).
    """
    scenarios = _scenario_groups(items)
    for item in items:
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})
        if not names and item.nodeid in scenarios:
            names = [scenarios[item.nodeid]]
        if names and "@" not in item.nodeid.rpartition("]")[2]:
            tagged = f"{item.nodeid}@{'_'.join(names)}"
            if hasattr(item, "_id"):
                from _pytest.nodeid import coerce_node_id

                item._id = coerce_node_id(tagged)
            else:
                item._nodeid = tagged  # type: ignore[attr-defined]  # pytest < 9 (pytest 9 has _id)


def _refuse_without_profile(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Stop with exit 4 (an xdist worker cannot stop the run cleanly: its tests error in setup)."""
    if not is_worker(config):
        raise pytest.UsageError(NO_PROFILE)


def pytest_runtest_setup(item: pytest.Item) -> None:
    """In an xdist worker without a profile, each conformance test errors with the hint."""
    if item.config.stash[PROFILE_KEY] is None and ids_of(item, GUARANTEE):
        raise pytest.UsageError(NO_PROFILE)


def _gate(profile: Profile, items: list[pytest.Item]) -> None:
    for item in items:
        missing = [cap for cap in ids_of(item, REQUIRES) if not profile.claims(cap)]
        conflicting = [cap for cap in ids_of(item, CONFLICTS) if profile.claims(cap)]
        if missing:
            reason = f"profile {profile.name} does not claim capability {missing[0]!r}"
            item.add_marker(pytest.mark.skip(reason=reason))
        elif conflicting:
            reason = (f"profile {profile.name} claims capability {conflicting[0]!r}, under which this "
                      f"guarantee does not apply ({CAPABILITIES[conflicting[0]]})")
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """With --collect-only, list the guarantee ids of each collected test."""
    config = session.config
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not config.option.collectonly or reporter is None or not session.items:
        return
    reporter.write_line("")
    reporter.write_sep("-", "guarantees per test")
    for item in session.items:
        ids = ids_of(item, GUARANTEE)
        caps = ids_of(item, REQUIRES)
        extra = f"  requires: {', '.join(caps)}" if caps else ""
        reporter.write_line(f"{item.nodeid}: {', '.join(ids) or '-'}{extra}")


def pytest_runtest_call(item: pytest.Item) -> None:
    """Attach the MUST statements of the test's guarantees to its Allure result."""
    config = item.config
    if config.stash[PROFILE_KEY] is not None and allure_support.active(config):
        catalogue = config.stash[CATALOGUE_KEY]
        guarantees = [catalogue[gid] for gid in ids_of(item, GUARANTEE) if gid in catalogue]
        if guarantees:
            allure_support.attach_guarantees(guarantees)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    """Decide FAIL vs ERROR for each phase and make Allure and the report carry it."""
    report = yield
    config = item.config
    if config.stash[PROFILE_KEY] is None:
        return report
    outcome = outcomes.classify_phase(report, call.excinfo)
    setattr(report, outcomes.REPORT_ATTR, outcome)
    if report.when == "call":
        item.user_properties.append((outcomes.PROPERTY, outcome))
        # junitxml closes the call's testcase with this report's own properties when the
        # teardown fails too (an ERROR call whose cleanup also failed): it must carry the outcome.
        report.user_properties.append((outcomes.PROPERTY, outcome))
    merged = _merge_outcome(item, outcome)
    allure_support.set_status(config, merged)
    outcomes.scrub_report(report)
    facts = config.stash.get(CLOUD_INFO_KEY, {})
    if report.when == "teardown" and facts:
        setattr(report, CLOUD_ATTR, dict(facts))
    return report


def _merge_outcome(item: pytest.Item, outcome: str) -> str:
    previous = item.stash.get(ITEM_OUTCOME_KEY, None)
    merged = worst([outcome, previous] if previous else [outcome])
    item.stash[ITEM_OUTCOME_KEY] = merged
    return merged


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> tuple[str, str, str] | None:
    """Show an ERROR-classified call as ERROR (not FAILED) in the terminal."""
    return outcomes.teststatus(report)
