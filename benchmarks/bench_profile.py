"""Profile-likelihood confidence intervals: glmmjax's confint(fit) against lme4's confint(m).

Models: sleepstudy (Days | Subject) REML (6 parameters), cbpp binomial (5), grouseticks
poisson (4). Each glmmjax model runs in a fresh Python process with an empty persistent
compilation cache:

  R confint       lme4's confint(m) in a warm R session, fit not timed (median of R_REPS);
                  run by benchmarks/r/time_profile.R when Rscript is available (pinned to one
                  core with taskset when available), else read from benchmarks/r/profile_times.csv
  jax warm        glmmjax's confint(fit) with its code compiled (best of --reps)
  jax first       the first confint(fit) in the process: compilation included, fit not timed
  jax process     import glmmjax + fit (its compilation included) + first confint
  first cached    jax first in a second process whose persistent compilation cache the first
                  process filled (compiled code loaded from disk)
  first / R       jax first / R confint (the acceptance criterion: under 3x for cbpp)

Usage: python benchmarks/bench_profile.py [--no-r] [--reps N] [--only REGEX]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, table

R_SCRIPT = ROOT / "benchmarks" / "r" / "time_profile.R"
R_CSV = ROOT / "benchmarks" / "r" / "profile_times.csv"
MODELS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", "gaussian"),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial"),
    "grouseticks": ("TICKS ~ YEAR + (1 | LOCATION)", "grouseticks", "poisson"),
}

CHILD = r"""
import json, sys, time, warnings
t0 = time.perf_counter()
import jax
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
import glmmjax as gj
from glmmjax.inference._confint import confint
warnings.simplefilter("ignore")
formula, dataset, family, reps = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
data = gj.datasets.load(dataset)
t1 = time.perf_counter()
fit = gj.glmm(formula, data, family=family)
t2 = time.perf_counter()
ci = confint(fit)
t3 = time.perf_counter()
warm = float("inf")
for _ in range(reps):
    t = time.perf_counter()
    confint(fit)
    warm = min(warm, time.perf_counter() - t)
print(json.dumps(dict(import_s=t1 - t0, fit_s=t2 - t1, first_s=t3 - t2, warm_s=warm, npar=len(ci),
                      process_s=t3 - t0)))
"""


def glmmjax_times(name: str, reps: int) -> dict:
    """Times of a fresh process with an empty compilation cache, and first_cached_s of a
    second process using the cache the first one filled."""
    formula, dataset, family = MODELS[name]
    runs = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", CHILD, cache, formula, dataset, family, str(reps)],
                                 check=True, capture_output=True, text=True, cwd=ROOT)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return dict(runs[0], first_cached_s=runs[1]["first_s"])


def r_times(run_r: bool, only: str) -> tuple[dict, str]:
    """{id: median seconds} and where they came from."""
    rscript = shutil.which("Rscript")
    if run_r and rscript:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "profile_times.csv"
            cmd = ([shutil.which("taskset"), "-c", "1"] if shutil.which("taskset") else []) + [rscript, str(R_SCRIPT)]
            subprocess.run(cmd, check=True, capture_output=True, env=dict(os.environ, R_OUT=str(out), R_ONLY=only))
            return _read_csv(out), "measured now (Rscript)"
    return _read_csv(R_CSV), f"read from {R_CSV.relative_to(ROOT)}"


def _read_csv(path: Path) -> dict:
    if not path.exists():
        return {}
    with open(path) as fh:
        return {row["id"]: float(row["median_s"]) for row in csv.DictReader(fh)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-r", action="store_true", help="use the committed R timings instead of running R")
    ap.add_argument("--reps", type=int, default=5, help="warm confint() calls (best of)")
    ap.add_argument("--only", default="", help="regex on model names")
    args = ap.parse_args()
    names = [n for n in MODELS if re.search(args.only, n)]
    rt, source = r_times(not args.no_r, args.only)
    rows = []
    for name in names:
        t = glmmjax_times(name, args.reps)
        r = rt.get(name, float("nan"))
        rows.append([name, t["npar"], f"{r:.2f}", f"{t['warm_s']:.3f}", f"{t['first_s']:.2f}", f"{t['process_s']:.2f}",
                     f"{t['first_cached_s']:.2f}", f"{t['warm_s'] / r:.3f}x", f"{t['first_s'] / r:.2f}x"])
        print(rows[-1], file=sys.stderr, flush=True)
    print(table(rows, ["model", "npar", "R confint s", "jax warm s", "jax first s", "jax process s",
                       "first cached s", "warm / R", "first / R"]))
    print(f"\nR timings: {source}. machine: {os.cpu_count()} cores, 1-min load average "
          f"{os.getloadavg()[0]:.1f}; jax {__import__('jax').__version__}")


if __name__ == "__main__":
    main()
