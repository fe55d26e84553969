"""`python -m tuiapp`: the same entry point as the `tuiapp` console script."""

import sys

from tuiapp.cli import main

if __name__ == "__main__":
    sys.exit(main())
