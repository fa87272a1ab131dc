"""``python -m botcore`` runs the command line."""

import sys

from botcore.cli import main

sys.exit(main())
