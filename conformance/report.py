"""Render the HTML report (``reports/html/index.html``) from the Allure results.

Uses the Allure 2 command line from npm (``allure-commandline``, which needs
Java 11 or newer).  It is installed on first use into a project-local prefix
(``.tox/allure`` by default) with ``npm install``; nothing is installed
globally.  The report is generated as one self-contained ``index.html``
(``--single-file``), so it opens from disk as well as over HTTP.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ALLURE_PACKAGE = "allure-commandline@2.46.1"
DEFAULT_PREFIX = Path(".tox") / "allure"
ENV_ALLURE = "CONFORMANCE_ALLURE"


class ReportError(Exception):
    """The HTML report could not be rendered (tool missing, generation failed)."""


def allure_binary(prefix: Path = DEFAULT_PREFIX, install: bool = True) -> Path:
    """The allure executable: $CONFORMANCE_ALLURE, the local prefix (installed if asked), or PATH."""
    configured = os.environ.get(ENV_ALLURE)
    if configured:
        return Path(configured)
    local = prefix / "node_modules" / ".bin" / "allure"
    if not local.exists() and install:
        _npm_install(prefix)
    if local.exists():
        return local
    found = shutil.which("allure")
    if found:
        return Path(found)
    raise ReportError(f"no allure command: install it with `npm install --prefix {prefix} {ALLURE_PACKAGE}`")


def _npm_install(prefix: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise ReportError("npm is not installed (needed once to install the Allure command line)")
    prefix.mkdir(parents=True, exist_ok=True)
    cmd = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--loglevel=error",
           ALLURE_PACKAGE]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ReportError(f"`{' '.join(cmd)}` failed:\n{result.stderr.strip()}")


def render(results: Path, output: Path, allure: Path) -> Path:
    """Generate the single-file HTML report of ``results`` into ``output``; return index.html."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"{results} holds no Allure results (run the suite first)")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ReportError("java is not installed (the Allure 2 command line needs Java 11+)")
    cmd = [str(allure), "generate", "--single-file", "--clean", "-o", str(output), str(results)]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    index = output / "index.html"
    if result.returncode != 0 or not index.is_file():
        raise ReportError(f"`{' '.join(cmd)}` failed:\n{result.stdout}{result.stderr}".strip())
    return index
