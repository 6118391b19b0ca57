"""Run dummy suites through the conformance plugin with pytester (no cloud).

:class:`DummySuite` writes a profile and a clouds.yaml into the pytester
directory, runs pytest in-process with the plugin, and reads back the
verdict, junit.xml and Allure results.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

PASSWORD = "pw-Sup3rSecret-42"

CLOUDS_YAML = f"""\
clouds:
  dummy-member:
    auth:
      auth_url: http://127.0.0.1:9/v3
      username: member
      password: {PASSWORD}
      project_name: demo
      user_domain_name: Default
      project_domain_name: Default
"""

PROFILE_YAML = """\
name: dummy
clouds_yaml: clouds.yaml
roles:
  member: dummy-member
resources:
  image: cirros
  flavor_small: m1.tiny
  network: private
capabilities: [pause]
"""


def plugin_autoloaded() -> bool:
    """True if the installed entry point loads the plugin into every pytest run."""
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return bool(importlib.metadata.entry_points(group="pytest11", name="conformance"))


class DummySuite:
    """A throw-away suite directory with a valid profile."""

    def __init__(self, pytester: pytest.Pytester):
        self.pytester = pytester
        self.path = pytester.path
        (self.path / "clouds.yaml").write_text(CLOUDS_YAML)
        (self.path / "profile.yaml").write_text(PROFILE_YAML)

    def write_tests(self, source: str, name: str = "test_dummy") -> None:
        """Write one test module (``from conformance import ...`` works in it)."""
        self.pytester.makepyfile(**{name: source})

    def run(self, *args: str, profile: str | None = "profile.yaml") -> pytest.RunResult:
        """Run pytest in-process with the plugin (and no leak check unless asked)."""
        argv = [] if plugin_autoloaded() else ["-p", "conformance.plugin"]
        argv += ["-p", "no:cacheprovider"]
        if profile is not None:
            argv.append(f"--profile={profile}")
        return self.pytester.runpytest_inprocess(*argv, *args)

    def verdict(self) -> dict[str, Any]:
        """The run's reports/verdict.json."""
        return dict(json.loads((self.path / "reports" / "verdict.json").read_text()))

    def guarantee(self, gid: str) -> dict[str, Any]:
        """One guarantee's entry in the verdict."""
        return next(g for g in self.verdict()["guarantees"] if g["id"] == gid)

    def junit(self) -> ET.Element:
        """The parsed reports/junit.xml."""
        return ET.parse(self.path / "reports" / "junit.xml").getroot()

    def junit_case(self, name: str) -> ET.Element:
        """The first <testcase> called ``name``."""
        return next(c for c in self.junit().iter("testcase") if c.get("name") == name)

    def allure_results(self) -> dict[str, dict[str, Any]]:
        """Allure results by test name."""
        results = {}
        for path in (self.path / "reports" / "allure-results").glob("*-result.json"):
            data = json.loads(path.read_text())
            results[data["name"]] = data
        return results

    def report_texts(self) -> dict[Path, str]:
        """The text of every file under reports/ (to look for secrets)."""
        return {p: p.read_text(errors="replace") for p in (self.path / "reports").rglob("*")
                if p.is_file()}
