"""Compile time: the first (compiling) fit of a model in a fresh process, no compilation cache.

Each model runs in its own `python` process with JAX_ENABLE_COMPILATION_CACHE=false, so every
figure includes tracing, lowering and XLA compilation. Columns:

  first fit s   the first gj.GLMM(...).fit() (model building, the compiled fit, the post-fit
                pass with the standard errors' Hessian)
  fit_arrays s  of which the compiled fit (GLM start, L-BFGS with the Laplace objective and,
                for the default optimizer, the central-difference Hessian in its loop)
  post s        of which the post-fit pass of a GLMM (glmm_post: conditional modes and
                variances; the Hessian too when the optimizer did not make it)
  warm s        a second fit of the same model (compiled code reused)
  ddf s         for the LMM row: the first summary(ddf="satterthwaite") coefficient table
                after the fit (compiles the deviance gradient's Richardson differences)

Models: GLMMs from the glmmTMB reference JSONs (--models, ids as in bench_tmb.py) and Exam's
nested LMM for the Satterthwaite row. To compare with an older checkout, run this script with
PYTHONPATH pointing at it.

Usage: python benchmarks/bench_compile.py [--models nb1,zinb2_re_crossed,petrol_tmb_beta]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from _common import table

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time, warnings
sys.path.insert(0, %(here)r)
warnings.simplefilter("ignore")
import jax
import glmmjax as gj
import glmmjax._model as M
from glmmjax.results import _result
T = {}
def timed(mod, name):
    f = getattr(mod, name)
    def g(*a, **k):
        t = time.perf_counter(); r = f(*a, **k); jax.block_until_ready(r)
        T[name] = T.get(name, 0.0) + time.perf_counter() - t
        return r
    setattr(mod, name, g)
timed(M, "fit_arrays"); timed(_result, "glmm_post")
mid = %(mid)r
out = {}
if mid == "exam_lmer_reml_nested":
    data = gj.datasets.load("Exam")
    make = lambda: gj.GLMM("normexam ~ standLRT + (1|school/student)", data)
else:
    from _common import TmbModel, tmb_reference_paths
    tm = {m.id: m for m in (TmbModel.from_json(p) for p in tmb_reference_paths()) if m}[mid]
    data = tm.data()
    make = lambda: tm.model(data)
t = time.perf_counter(); fit = make().fit(); out["first"] = time.perf_counter() - t
out["fit_arrays"] = T.get("fit_arrays", 0.0); out["post"] = T.get("glmm_post")
t = time.perf_counter(); make().fit(); out["warm"] = time.perf_counter() - t
if fit.is_lmm:
    from glmmjax.inference._ddf import ddf_coef_table
    t = time.perf_counter(); ddf_coef_table(fit, "satterthwaite"); out["ddf"] = time.perf_counter() - t
print(json.dumps(out))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="nb1,zinb2_re_crossed,petrol_tmb_beta,arabidopsis_tmb_zinb2")
    args = ap.parse_args()
    env = dict(os.environ, JAX_ENABLE_COMPILATION_CACHE="false")
    rows = []
    for mid in args.models.split(",") + ["exam_lmer_reml_nested"]:
        res = subprocess.run([sys.executable, "-c", CHILD % dict(here=str(HERE), mid=mid)], env=env,
                             capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append([mid, f"{r['first']:.2f}", f"{r['fit_arrays']:.2f}",
                     f"{r['post']:.2f}" if r["post"] is not None else "", f"{r['warm']:.3f}",
                     f"{r['ddf']:.2f}" if "ddf" in r else ""])
        print(rows[-1], flush=True)
    import glmmjax  # noqa: F401  (which checkout was measured)
    print(table(rows, ["model", "first fit s", "fit_arrays s", "post s", "warm s", "ddf s"]))
    print(f"glmmjax from {Path(glmmjax.__file__).parent} (this process's import path)")


if __name__ == "__main__":
    main()
