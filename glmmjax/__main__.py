"""``python -m glmmjax``: the glmmjax command line (see glmmjax.cli)."""
from .cli import run

if __name__ == "__main__":
    run()
