"""``python -m conformance.embedded``: see :mod:`conformance.embedded.cli`."""

import sys

from conformance.embedded.cli import main

sys.exit(main())
