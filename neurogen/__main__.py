"""``python -m neurogen`` behaves like the ``neurogen`` command."""

import sys

from .cli import main

sys.exit(main())
