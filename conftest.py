"""Root conftest: load the conformance plugin when running from a source checkout.

An installed package registers the plugin through its ``pytest11`` entry point
(which imports ``conformance.plugin`` before this file is read); registering it
a second time would fail, so this only loads it when that did not happen
(not installed, or plugin autoloading disabled).  ``pytester`` serves the
project's own tests (tests/unit run dummy suites through the plugin).
"""

import sys

pytest_plugins = ["pytester"]
if "conformance.plugin" not in sys.modules:
    pytest_plugins.append("conformance.plugin")
