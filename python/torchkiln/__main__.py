"""``python -m torchkiln``: the same as the ``torchkiln`` command."""

from __future__ import annotations

import sys

from torchkiln.cli import main

if __name__ == "__main__":
    sys.exit(main())
