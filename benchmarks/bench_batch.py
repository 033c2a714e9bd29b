"""fit_batch against single fits and lme4's bootMer (grouseticks, parametric bootstrap).

Fits N responses simulated from `TICKS ~ YEAR + (1|LOCATION) + (1|INDEX)` (poisson) — the
model whose bootMer time is in benchmarks/r/r_times.csv — with each fit_batch strategy, and
times single `gj.glmm` calls on a subset. Prints per-fit times and the ratios.

Usage: python benchmarks/bench_batch.py [--n 1000] [--singles 50]
"""
from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from _common import r_times, table

FORMULA = "TICKS ~ YEAR + (1|LOCATION) + (1|INDEX)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=50)
    ap.add_argument("--formula", default=FORMULA)
    ap.add_argument("--strategies", default="chunked,map", help="comma-separated: chunked,map,vmap,threads")
    args = ap.parse_args()
    import glmmjax as gj

    warnings.simplefilter("ignore")
    data = gj.datasets.load("grouseticks")
    model = gj.GLMM(args.formula, data, family="poisson")
    fit = model.fit()
    Y = fit.simulate(nsim=args.n, seed=1)

    d = data.copy()
    gj.glmm(args.formula, d, family="poisson")  # compiled
    t = time.perf_counter()
    for y in Y[: args.singles]:
        d["TICKS"] = y
        gj.glmm(args.formula, d, family="poisson")
    single = (time.perf_counter() - t) / args.singles

    rows = [["gj.glmm, one call per dataset", f"{single * 1e3:.2f}", "1.0x", ""]]
    boot = r_times().get("bootMer_grouseticks_loc_index")
    boot_s = float(boot["median_s"]) if boot else float("nan")
    for strategy in args.strategies.split(","):
        for start, label in ((None, "GLM start"), (fit, "start at the fit")):
            model.fit_batch(Y, strategy=strategy, start=start)  # compile this shape
            t = time.perf_counter()
            b = model.fit_batch(Y, strategy=strategy, start=start)
            per = (time.perf_counter() - t) / args.n
            rows.append([f"fit_batch strategy={strategy}, {label}", f"{per * 1e3:.2f}", f"{single / per:.1f}x",
                         f"{boot_s / per:.0f}x"])
            print(rows[-1], flush=True)
    rows.append(["lme4 bootMer (r_times.csv)", f"{boot_s * 1e3:.1f}", "", "1x"])
    print(f"{args.n} simulated responses of {args.formula}; converged {b.converged.mean():.1%}")
    print(table(rows, ["method", "ms per fit", "vs gj.glmm", "vs bootMer"]))


if __name__ == "__main__":
    main()
