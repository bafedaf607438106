"""``python -m durable``: the command line of `durable.cli` (worker, publish, status)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
