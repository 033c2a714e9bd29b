"""glmmjax's heavy acceptance checks, too slow for the CI suite (README: "Validation").

    python tests/validate.py [--only PREFIX] [--workers N] [--no-batch] [--out results.csv]

The correctness sweep: every dataset of tests/sweep (620 simulated datasets over 22 model
classes, each fitted by lme4 1.1-31 or glmmTMB 1.1.5 in tests/sweep/r_results.csv) is
fitted by glmmjax, singly and with ``fit_batch`` over the replicates of each design. Prints
per model class how many fits are at least as good as R's (logLik within 1e-6 relative or
better), how many are worse and by how much, where R warned or failed, and fit_batch's
agreement with the single fits; then every worse fit. Exits 1 when a glmmjax fit that
reports convergence is worse than a clean R fit, when fit_batch disagrees with the single
fits, or when any of the 60 random-intercept datasets (ri60_*) is worse than lme4.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _work(args):
    ids, batch = args
    import jax

    from sweep.compare import fit_group

    try:
        return fit_group(ids, batch=batch)
    finally:
        jax.clear_caches()      # hundreds of compiled structures in one process exhaust XLA's code memory


def _init():
    # as tests/conftest.py: XLA's backend at optimization level 0 compiles the many small
    # programs of the sweep faster than they would run slower (the arithmetic is the same)
    if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
        os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""),
                                            "--xla_backend_optimization_level=0"]).strip()
    import jax

    jax.config.update("jax_compilation_cache_dir", str(HERE.parent / ".jax_cache"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="", help="only the datasets whose id starts with this")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--no-batch", action="store_true", help="skip the fit_batch comparison")
    ap.add_argument("--out", default=None, help="write the per-dataset table here (CSV)")
    args = ap.parse_args(argv)

    import pandas as pd

    from sweep.compare import groups, judge, manifest, summary

    ids = [i for i in manifest().index if i.startswith(args.only)]
    jobs = [(g, not args.no_batch) for g in groups(ids)]
    t0 = time.time()
    with mp.get_context("spawn").Pool(args.workers, initializer=_init, maxtasksperchild=20) as pool:
        parts = []
        for k, part in enumerate(pool.imap_unordered(_work, jobs), 1):
            parts.append(part)
            print(f"\r{k}/{len(jobs)} designs fitted ({time.time() - t0:.0f} s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    table = judge(pd.concat(parts).reindex(ids))
    if args.out:
        table.to_csv(args.out)
    summ = summary(table)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 20)
    print(f"Correctness sweep: {len(table)} datasets, {time.time() - t0:.0f} s\n")
    print(summ.to_string(float_format=lambda v: f"{v:.2g}"))
    tot = summ.sum(numeric_only=True)
    print(f"\nall: {int(tot.datasets)} datasets, {int(tot.as_good)} at least as good as R, {int(tot.worse)} worse "
          f"({int(tot.worse_converged_r_clean)} reported converged where R was clean), R failed on "
          f"{int(tot.r_failed)} and warned on {int(tot.r_warned)}, glmmjax refused {int(tot.j_refused)}, "
          f"fit_batch differed on {int(tot.batch_mismatch)}")
    worse = table[table.status == "worse"]
    if len(worse):
        print("\nWorse than R:")
        cols = ["r_loglik", "j_loglik", "deficit", "j_converged", "j_singular", "r_warning", "j_messages"]
        print(worse[cols].to_string())
    failed = table[table.status.isin(["j_failed", "r_failed", "both_failed"])]
    if len(failed):
        print("\nNot compared (a refusal or an R error):")
        print(failed[["status", "j_error", "r_warning"]].to_string())
    ri60 = table[table.index.str.startswith("ri60_")]
    bad = int(tot.worse_converged_r_clean) + int(tot.batch_mismatch) + int((ri60.status == "worse").sum())
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
