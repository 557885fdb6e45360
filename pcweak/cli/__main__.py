"""``python -m pcweak.cli``: the ``pcweak`` command."""
import sys

from . import main

sys.exit(main())
