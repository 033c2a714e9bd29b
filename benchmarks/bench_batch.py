"""fit_batch against single fits and lme4's bootMer (grouseticks, parametric bootstrap).

Fits N responses simulated from `TICKS ~ YEAR + (1|LOCATION) + (1|INDEX)` (poisson) — the
model whose bootMer time is in benchmarks/r/r_times.csv — with each fit_batch strategy, and
times single `gj.glmm` calls on a subset. Prints per-fit times and the ratios.

Rows per strategy: each dataset started at its GLM fit; started at the fit (with the fit's
inverse Hessian as the optimizer's initial metric, fit_batch's default for start=fit); and,
for comparison, started at the fit with the identity metric. "chunked" is timed for each
size in --chunks.

"threads" splits the rows over the process's CPUs, each part run as chunks of --chunks.

Usage: python benchmarks/bench_batch.py [--n 1000] [--singles 50] [--strategies threads,chunked,map]
       [--chunks 2] (e.g. --strategies threads,chunked,vmap,map --chunks 1,8,16,50)
"""
from __future__ import annotations

import argparse
import time
import warnings

from _common import r_times, table

FORMULA = "TICKS ~ YEAR + (1|LOCATION) + (1|INDEX)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--singles", type=int, default=50)
    ap.add_argument("--formula", default=FORMULA)
    ap.add_argument("--strategies", default="threads,chunked,map", help="comma-separated: threads,chunked,map,vmap")
    ap.add_argument("--chunks", default="2", help="comma-separated chunk sizes for 'chunked' and 'threads'")
    args = ap.parse_args()
    import glmmjax as gj
    from glmmjax.fit import _batch

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

    rows = [["gj.glmm, one call per dataset", f"{single * 1e3:.2f}", "1.0x", "", ""]]
    boot = r_times().get("bootMer_grouseticks_loc_index")
    boot_s = float(boot["median_s"]) if boot else float("nan")
    metric = _batch._inverse_hessian
    chunked = ("chunked", "threads")
    runs = [(s, int(c)) for s in args.strategies.split(",") for c in (args.chunks.split(",") if s in chunked else [1])]
    for strategy, chunk in runs:
        name = f"{strategy}({chunk})" if strategy in chunked else strategy
        for start, label, use_metric in ((None, "GLM start", True), (fit, "start at the fit", True),
                                         (fit, "start at the fit, identity metric", False)):
            _batch._inverse_hessian = metric if use_metric else (lambda m, f: None)
            try:
                model.fit_batch(Y, strategy=strategy, start=start, chunk=chunk)  # compile this shape
                t = time.perf_counter()
                b = model.fit_batch(Y, strategy=strategy, start=start, chunk=chunk)
                per = (time.perf_counter() - t) / args.n
            finally:
                _batch._inverse_hessian = metric
            rows.append([f"fit_batch {name}, {label}", f"{per * 1e3:.2f}", f"{single / per:.1f}x",
                         f"{boot_s / per:.0f}x", f"{b.iterations.mean():.1f}"])
            print(rows[-1], flush=True)
    rows.append(["lme4 bootMer (r_times.csv)", f"{boot_s * 1e3:.1f}", "", "1x", ""])
    print(f"{args.n} simulated responses of {args.formula}; converged {b.converged.mean():.1%}")
    print(table(rows, ["method", "ms per fit", "vs gj.glmm", "vs bootMer", "mean iterations"]))


if __name__ == "__main__":
    main()
