"""Fit every reference model; print glmmjax's times beside lme4's/glmmTMB's.

Columns:
  R warm        R's fit call in a warm R session (benchmarks/r/r_times.csv, median)
  jax warm      glmmjax's gj.glmm(...) with the compiled code reused (best of 5): building
                the design, optimizing, and the Hessian/standard errors
  speedup       R warm / jax warm
  R process     a fresh `Rscript` loading lme4/glmmTMB, reading the CSV and fitting: timed in
                this run, each R process alternating with the two python ones (the scripts
                are written by time_r.R with R_WRITE_SCRIPTS); from r_times.csv with --no-r
                or without Rscript and lme4/glmmTMB
  py cold       a fresh `python -c` importing glmmjax and fitting, persistent compilation
                cache empty
  py cached     the same with the cache filled by the cold run: XLA's executables and
                glmmjax's traces of the fit (glmmjax/_trace_cache.py), so the process
                neither traces nor compiles
  The process columns are medians over --reps runs; each cold run starts from its own
  empty cache.

Usage: python benchmarks/bench_reference.py [--no-process] [--no-r] [--only REGEX] [--reps N]
R's times: taskset -c 1 Rscript benchmarks/r/time_r.R (rewrites benchmarks/r/r_times.csv).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

from _common import best_of, glmmjax_call, r_times, references, table


def process_time(ref, cache_dir: str) -> float:
    formula, dataset, fam, reml = glmmjax_call(ref)
    code = (
        "import jax; jax.config.update('jax_compilation_cache_dir', %r); "
        "jax.config.update('jax_persistent_cache_min_compile_time_secs', 0.0); "
        "import glmmjax as gj; import warnings; warnings.simplefilter('ignore'); "
        "f = gj.glmm(%r, gj.datasets.load(%r), family=%r, reml=%r); print(f.loglik)"
    ) % (cache_dir, formula, dataset, fam, reml)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    return time.perf_counter() - t


def r_scripts(directory: str) -> dict:
    """{model id: path} of the fresh-process R scripts, written by time_r.R ({} without R)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {}
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, R_WRITE_SCRIPTS=directory)
    done = subprocess.run([rscript, os.path.join(here, "r", "time_r.R")], env=env, capture_output=True)
    if done.returncode != 0:
        return {}
    return {f[:-2]: os.path.join(directory, f) for f in os.listdir(directory) if f.endswith(".R")}


def r_process_time(script: str) -> float:
    t = time.perf_counter()
    subprocess.run([shutil.which("Rscript"), script], check=True, capture_output=True)
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-process", action="store_true", help="skip the fresh-process timings")
    ap.add_argument("--only", default="", help="regex on model ids")
    ap.add_argument("--reps", type=int, default=3, help="fresh processes per column (median)")
    ap.add_argument("--no-r", action="store_true", help="take R's process times from r_times.csv")
    args = ap.parse_args()
    import glmmjax as gj

    warnings.simplefilter("ignore")
    rt = r_times()
    script_dir = tempfile.mkdtemp(prefix="glmmjax_r_")
    scripts = {} if args.no_r or args.no_process else r_scripts(script_dir)
    rows = []
    for ref in references():
        if args.only and not re.search(args.only, ref["id"]):
            continue
        formula, dataset, fam, reml = glmmjax_call(ref)
        data = gj.datasets.load(dataset)
        fit = gj.glmm(formula, data, family=fam, reml=reml)  # compile
        warm = best_of(lambda: gj.glmm(formula, data, family=fam, reml=reml))
        r = rt.get(ref["id"], {})
        r_warm = float(r["median_s"]) if r else float("nan")
        r_proc = float(r["process_s"]) if r and r.get("process_s") else float("nan")
        cold = cached = float("nan")
        if not args.no_process:
            colds, cacheds, rs = [], [], []
            for _ in range(args.reps):
                if ref["id"] in scripts:
                    rs.append(r_process_time(scripts[ref["id"]]))
                with tempfile.TemporaryDirectory() as cache:
                    colds.append(process_time(ref, cache))
                    cacheds.append(process_time(ref, cache))
            cold, cached = statistics.median(colds), statistics.median(cacheds)
            r_proc = statistics.median(rs) if rs else r_proc
        rows.append([ref["id"], ref["engine"], f"{r_warm:.3f}", f"{warm:.4f}", f"{r_warm / warm:.1f}x",
                     f"{r_proc:.2f}", f"{cold:.2f}", f"{cached:.2f}",
                     f"{fit.loglik - ref['fit_stats']['logLik']:+.1e}"])
        print(rows[-1], file=sys.stderr, flush=True)
    print(table(rows, ["model", "R engine", "R warm s", "jax warm s", "speedup", "R process s",
                       "py cold s", "py cached s", "dlogLik"]))
    shutil.rmtree(script_dir, ignore_errors=True)
    source = "timed in this run" if scripts else "benchmarks/r/r_times.csv"
    print(f"\nR process: {source}; process columns: median of {args.reps}")
    print(f"machine: {os.cpu_count()} cores; jax {__import__('jax').__version__}, "
          f"backend {__import__('jax').default_backend()}")


if __name__ == "__main__":
    main()
