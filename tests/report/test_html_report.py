"""The rendered HTML report opens in headless Chromium and shows the run's results.

Needs Java (the Allure 2 command line), npm (to install it once into
.tox/allure) and Debian's ``chromium`` package; skipped only when chromium is
missing (CI installs it: ``apt-get install chromium``).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import html
import http.server
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance import report
from tests.unit.suite_runs import DummySuite

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")

TESTS = """
from conformance import guarantee, requires
from conformance.errors import WaitTimeout

@guarantee("LAUNCH-01")
def test_boots():
    '''Passes.'''

@guarantee("PAUSE-01")
def test_pause_state():
    '''Fails.'''
    assert "ACTIVE" == "PAUSED"

@guarantee("DELETE-01")
def test_delete_timeout():
    '''Errors.'''
    raise WaitTimeout("waited 120 s for 404; last status ACTIVE")

@guarantee("LAUNCH-02")
@requires("evacuate")
def test_not_claimed():
    '''Skipped.'''
"""


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on a loopback port for the duration."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def browse(url: str, profile_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium on ``url`` with the given extra flags."""
    assert CHROMIUM is not None
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={profile_dir}", "--virtual-time-budget=15000", *extra, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def visible_text(dom: str) -> str:
    """The text a person would see in a dumped DOM (scripts and styles removed)."""
    dom = re.sub(r"<(script|style)\b.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", dom)))


def result_link(index: Path, test_name: str) -> str:
    """The report's URL fragment of one test result (read from the embedded suites data)."""
    match = re.search(r"d\('data/suites\.json','([^']*)'", index.read_text())
    assert match, "the single-file report embeds data/suites.json"
    stack = [json.loads(base64.b64decode(match.group(1)))]
    while stack:
        node = stack.pop()
        if node.get("name") == test_name and "parentUid" in node:
            return f"#suites/{node['parentUid']}/{node['uid']}"
        stack.extend(node.get("children", []))
    raise AssertionError(f"{test_name} not in the report")


def test_report_renders_results(pytester: pytest.Pytester, tmp_path: Path) -> None:
    """The report's overview and a test page show counts, categories, statuses and the MUST text."""
    suite = DummySuite(pytester)
    suite.write_tests(TESTS)
    suite.run("--no-leak-check")
    allure = report.allure_binary(REPO / report.DEFAULT_PREFIX)
    index = report.render(suite.path / "reports" / "allure-results", suite.path / "reports" / "html", allure)
    with serve(index.parent) as base:
        overview = browse(f"{base}/index.html", tmp_path / "chromium", "--dump-dom")
        page = browse(f"{base}/index.html{result_link(index, 'test_delete_timeout')}",
                      tmp_path / "chromium", "--dump-dom")
        shot = browse(f"{base}/index.html", tmp_path / "chromium", "--window-size=1280,800",
                      f"--screenshot={tmp_path / 'overview.png'}")
    text = visible_text(overview.stdout)
    assert "4 test cases" in text
    for category in ("FAIL: guarantee violated", "ERROR: infrastructure or suite",
                     "SKIP: capability not claimed"):
        assert category in text
    detail = visible_text(page.stdout)
    assert "test_delete_timeout" in detail and "Broken" in detail
    assert "waited 120 s for 404" in detail and "DELETE-01" in detail and "MUST answer 204" in detail
    assert shot.returncode == 0 and (tmp_path / "overview.png").stat().st_size > 10_000
