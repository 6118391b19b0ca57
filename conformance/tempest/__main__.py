"""``python -m conformance.tempest`` (see :mod:`conformance.tempest.cli`)."""

import sys

from conformance.tempest.cli import main

sys.exit(main())
