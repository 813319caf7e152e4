"""``python -m asd_se`` runs the ``asd-se`` command."""

import sys

from asd_se.cli import main

sys.exit(main())
