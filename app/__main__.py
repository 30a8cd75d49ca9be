"""``python -m app`` runs the fireorder command line."""

import sys

from app.cli import main

sys.exit(main())
