"""Run the compute test classes that want a default network without Neutron.

Tempest skips every compute class with ``create_default_network = True``
("Neutron is not available") when ``[service_available] neutron = false``:
on a real cloud a new project has no network to boot on.  The embedded
cloud's Neutron is Nova's in-process fake, which serves one shared network
to every project, so Nova boots servers without any network set up.  The
plugin, loaded by Tempest in every test worker, makes those classes ask for
no network; everything else they check is unchanged.
"""

from __future__ import annotations

import os
from typing import Any

from tempest.api.compute import base
from tempest.test_discover import plugins

_real_skip_checks = base.BaseV2ComputeTest.skip_checks.__func__


def _skip_checks(cls: Any) -> Any:
    cls.create_default_network = False
    return _real_skip_checks(cls)


base.BaseV2ComputeTest.skip_checks = classmethod(_skip_checks)


class EmbeddedCloudPlugin(plugins.TempestPlugin):
    """Registers no options and no tests; importing it is what matters."""

    def load_tests(self) -> tuple[str, str]:
        here = os.path.dirname(os.path.abspath(__file__))
        return os.path.join(here, "tests"), os.path.dirname(here)

    def register_opts(self, conf: Any) -> None:
        """No options of its own."""

    def get_opt_lists(self) -> list[Any]:
        return []
