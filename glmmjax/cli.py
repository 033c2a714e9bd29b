"""The ``glmmjax`` command line.

    glmmjax fit --dataset grouseticks "TICKS ~ YEAR + (1|LOCATION)" --family poisson
    glmmjax fit --data mydata.csv "y ~ x + (1|g)" --family binomial --ml
    glmmjax datasets

Bad input (an unknown column, dataset or family, a malformed formula) prints
``glmmjax: error: <message>`` on stderr and exits with status 2.
"""
from __future__ import annotations

import argparse
import os
import stat
import sys

__all__ = ["main", "build_parser"]

PROG = "glmmjax"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.print_usage(sys.stderr)
        raise _UsageError(message)


class _UsageError(Exception):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog=PROG, description="Fit linear and generalized linear mixed models (lme4 / glmmTMB style).")
    from . import __version__
    from .families import FAMILIES

    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    f = sub.add_parser("fit", help="fit a model and print its summary")
    f.add_argument("formula", help='lme4 formula, e.g. "Reaction ~ Days + (Days | Subject)"')
    src = f.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", metavar="NAME", help="a bundled dataset (see `glmmjax datasets`)")
    src.add_argument("--data", metavar="FILE", help="a CSV file (read with pandas.read_csv)")
    f.add_argument("--family", default="gaussian",
                   help="a glmmTMB family name (default gaussian): " + ", ".join(FAMILIES))
    f.add_argument("--link", default=None, help="link function (default: the family's default link)")
    reml = f.add_mutually_exclusive_group()
    reml.add_argument("--reml", dest="reml", action="store_const", const=True, default=None,
                      help="fit by REML (Gaussian LMMs; the default for them)")
    reml.add_argument("--ml", dest="reml", action="store_const", const=False, help="fit by maximum likelihood")
    f.add_argument("--disp", metavar="FORMULA", default=None, help='dispersion formula, e.g. "~ x"')
    f.add_argument("--method", choices=["lbfgs", "bfgs"], default="lbfgs", help="outer optimizer (default lbfgs)")
    f.add_argument("--float32", action="store_true", help="fit in single precision")

    sub.add_parser("datasets", help="list the bundled datasets and their sources")
    return p


def _enable_compilation_cache():
    import jax

    try:
        jax.config.update("jax_compilation_cache_dir", os.path.expanduser("~/.cache/glmmjax/jax"))
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    except Exception:  # an older/newer JAX without these options: fit without the cache
        pass


def _load_data(args):
    import glmmjax as gj

    if args.dataset is not None:
        return gj.datasets.load(args.dataset), args.dataset
    import pandas as pd

    path = args.data
    if not os.path.exists(path):
        raise ValueError(f"data file not found: {path}")
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise ValueError(f"--data {path}: not a regular file (a directory, a FIFO or a device); give a CSV file")
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read {path} as CSV: {e}") from None
    return df, os.path.splitext(os.path.basename(path))[0]


def _cmd_fit(args, out) -> int:
    _enable_compilation_cache()
    import glmmjax as gj

    data, name = _load_data(args)
    if args.dataset is not None:
        name = next((n for n in gj.datasets.names() if n.lower() == name.lower()), name)
    family = gj.families.get_family(args.family, args.link)
    model = gj.GLMM(args.formula, data, family, disp=args.disp, reml=args.reml,
                    dtype="float32" if args.float32 else "float64", data_name=name)
    fit = model.fit(method=args.method)
    print(fit.summary(), file=out)
    return 0


def _cmd_datasets(out) -> int:
    import glmmjax as gj

    names = gj.datasets.names()
    w = max(len(n) for n in names)
    for n in names:
        src = gj.datasets.describe(n).get("source", "")
        print(f"{n.ljust(w)}  {src}", file=out)
    return 0


def run() -> None:
    """The ``glmmjax`` console command: ``main()``, then exit (importing glmmjax has
    registered the exit-time ``gc.freeze``, see the package docstring)."""
    sys.exit(main())


def main(argv=None) -> int:
    """Entry point of the ``glmmjax`` command; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help(sys.stdout)
            return 2
        if args.command == "datasets":
            return _cmd_datasets(sys.stdout)
        return _cmd_fit(args, sys.stdout)
    except SystemExit as e:        # --help / --version
        return int(e.code or 0) if not isinstance(e.code, str) else 2
    except _UsageError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, KeyError, FileNotFoundError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 2
    except FloatingPointError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
