"""``python -m glmmjax``: the glmmjax command line (see glmmjax.cli)."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
