"""``python -m detector.cli``: the same as the ``keywatch`` command."""

import sys

from detector.cli.main import main

sys.exit(main())
