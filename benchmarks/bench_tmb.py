"""glmmjax against glmmTMB, both timed in this run, on the glmmTMB reference models with
zero-inflation, hurdle, dispersion formulas and the extra families.

Models: every JSON in tests/fixtures/reference/ whose name contains "tmb", every JSON in
tests/fixtures/reference_extra/ and in its sub-folders (globbed: new folders are picked
up). Each JSON is turned into a glmmjax model as the reference tests do (_common.TmbModel):
its conditional formula, family and link, zi formula (none for ~0), disp formula (none for
~1), ML; the bundled dataset or the simulated CSV next to the JSON. glmmTMB fits the JSON's
own `call` (benchmarks/r/time_tmb.R).

Columns:
  model        the JSON's id
  n            observations
  glmmTMB s    glmmTMB(<the JSON's call>) with its default settings (so including sdreport's
               standard errors), minimum over --repeats timed fits in one warm R session
               (package loaded, data in memory, one untimed warm-up fit), measured now by
               benchmarks/r/time_tmb.R; n/a without R (--no-r, no Rscript, no glmmTMB) or
               for a reference that is not a glmmTMB call (lognormal_sim: a TMB template,
               glmmTMB 1.1.5 has no lognormal family)
  JSON R s     the R time recorded in the JSON when the reference was made (min of its 3
               runs; only tests/fixtures/reference/ JSONs record one), for comparison
  jax s        glmmjax warm: gj.GLMM(...).fit() -- building the model from the data frame,
               the fit and the post-fit Hessian / standard errors, i.e. gj.glmm(...) as a
               user calls it -- minimum over --repeats calls after a first (compiling) call,
               so the compiled code is reused
  jax fit s    the same for model.fit() alone on an already built model (min of --repeats)
  ratio        glmmTMB s / jax s (how many times faster glmmjax is)
  10x          "yes" when ratio >= 10 (the goal: glmmjax warm at least 10x faster), else "NO"
  cpu ratio    the same ratio of CPU times (R: user + system of the fit; glmmjax: this
               process's CPU time, all threads), minima over the same repeats: a check
               that is much less sensitive than wall time to other processes competing for
               the cores (with a load above the core count, wall times inflate, CPU
               times much less)
  iters        glmmjax's outer (L-BFGS) iterations (FitResult.iterations), and glmmTMB's
               nlminb iterations recorded in the JSON
  first s      the first, compiling gj.GLMM(...).fit() in this process (empty in-memory
               cache; with --cache DIR a filled persistent cache turns it into loading time)
  dlogLik      glmmjax's logLik minus the JSON's (>= -2e-3: the same optimum or better)

Profiling (--profile; --profile-all for every model): for each model that misses 10x (or
has no glmmTMB time), where the warm time goes. Times are minima over --repeats rounds (at
least 10 for the single evaluations) in which all the pieces run in turn, so a change of
load hits them alike:
  fit s        model.fit() (as "jax fit s")
  build s      gj.GLMM(...): design matrices from the data frame
  optimize s   the compiled fit (fit_arrays: GLM start + outer L-BFGS with the inner Newton
               mode solves), block_until_ready
  GLM s        of which the GLM start (the model without random effects, same L-BFGS),
               timed on its own
  post s       the post-fit pass (glmm_post: exact Hessian of the Laplace objective by
               forward-over-reverse differentiation, conditional modes and variances)
  host s       fit s - optimize s - post s: starting values, FitResult assembly, Hessian
               inversion, checks (can come out slightly negative: separate minima)
  iters/GLM    outer L-BFGS iterations of the fit / of the GLM start
  evals/GLM    objective+gradient evaluations (line-search trials included) of each,
               counted on an instrumented copy of the fit (same iterates; "check" says
               "differs" if its optimum or iteration count did not match)
  newton sum/max  inner Newton iterations over the fit's evaluations, and the most in one
  f+g warm ms  one objective+gradient evaluation at the optimum warm-started at the
               converged modes (no Newton iteration): the cheapest evaluation
  ms/newton    one Newton iteration: the mode solve from u = 0 at the optimum / its
               iterations ("newton cold")
  lik ms       the family's log-likelihood with its first two derivatives in eta over all
               rows (loglik_terms), the core of a Newton iteration
  f cold ms, grad cold ms  model.objective() at the optimum (modes solved from 0) and
               jax.grad of it
  model s      GLM s + evals x f+g warm + newton sum x ms/newton: how much of "optimize s"
               these unit costs explain

Usage:
  python benchmarks/bench_tmb.py [--repeats N] [--only SUBSTRING] [--no-r] [--pin CORE]
                                 [--cache DIR] [--profile | --profile-all]
--only keeps the models whose id or JSON path contains SUBSTRING (e.g. "families_a", "nb2");
--pin CORE runs this process and R on that one CPU core (os.sched_setaffinity / taskset).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _common import ROOT, TmbModel, best_of, table, tmb_reference_paths

R_SCRIPT = ROOT / "benchmarks" / "r" / "time_tmb.R"
GOAL = 10.0


def run_r(models, repeats: int, pin) -> tuple[dict, str]:
    """{id: row of time_tmb.R's CSV} and a note on where the times came from."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return {}, "R not run: no Rscript on PATH"
    paths = [str(m.path) for m in models]
    cmd = [rscript, str(R_SCRIPT), "--reps", str(repeats)]
    if pin is not None and shutil.which("taskset"):
        cmd = [shutil.which("taskset"), "-c", str(pin)] + cmd
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "tmb_times.csv"
        t = time.perf_counter()
        proc = subprocess.run(cmd + ["--out", str(out)] + paths, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            msg = (proc.stderr.strip().splitlines() or ["?"])[-1]
            return {}, f"R failed ({msg})"
        with open(out) as fh:
            rows = {r["id"]: r for r in csv.DictReader(fh)}
    return rows, f"glmmTMB measured now by {R_SCRIPT.relative_to(ROOT)} ({time.perf_counter() - t:.0f} s)"


def best_wall_cpu(fn, repeats: int) -> tuple:
    """(minimum wall time, minimum CPU time of this process) of fn() over repeats calls."""
    wall = cpu = float("inf")
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return wall, cpu


def fmt(v, spec=".3f", na="n/a"):
    return na if v is None or v != v else format(v, spec)


# ---------------------------------------------------------------------------------------
# profiling
# ---------------------------------------------------------------------------------------
def _ready(tree):
    import jax

    return jax.block_until_ready(tree)


def best_of_each(fns: dict, repeats: int) -> dict:
    """{name: minimum wall time of fns[name]()}, the functions interleaved in each round so
    that a change of the machine's load affects all of them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def profile(tm: TmbModel, data, repeats: int) -> dict:
    """Where the warm fit time of one model goes (see the module docstring)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from glmmjax.fit._fit import _objective as opt_objective
    from glmmjax.fit._fit import fit_arrays, glm_part, glm_start_spec, with_glm_part
    from glmmjax.fit._optimize import OptimizerOptions, minimize
    from glmmjax.fit._post import glmm_post
    from glmmjax.laplace._glmm import _eta, _fixed, conditional_mode, laplace_nll, loglik_terms
    from glmmjax.spec import Params, cholesky_factors, scaled_z

    model = tm.model(data)
    spec, mdata = model.spec, model.data
    opts = OptimizerOptions()
    x0 = model.start_vector(None)
    res = fit_arrays(spec, opts, mdata, x0)
    out = {"iters": int(res.iterations)}
    fns = {"fit": model.fit, "build": lambda: tm.model(data),
           "optimize": lambda: _ready(fit_arrays(spec, opts, mdata, x0))}
    if not spec.profiled:
        _ready(glmm_post(spec, mdata, res.x, res.aux))
        fns["post"] = lambda: _ready(glmm_post(spec, mdata, res.x, res.aux))
    if spec.profiled or not spec.nblocks:
        out.update(best_of_each(fns, repeats))
        out["host"] = out["fit"] - out["optimize"] - out.get("post", 0.0)
        return out

    glm = glm_start_spec(spec)
    glm_fit = jax.jit(lambda d, x: minimize(opt_objective(glm, d), glm_part(spec, x), (), opts))
    out["glm_iters"] = int(_ready(glm_fit(mdata, x0)).iterations)
    fns["glm"] = lambda: _ready(glm_fit(mdata, x0))

    # single evaluations at the optimum
    vg = jax.jit(jax.value_and_grad(lambda x, u: laplace_nll(spec, x, mdata, u), has_aux=True))
    obj = model.objective()
    f, gr = jax.jit(obj), jax.jit(jax.grad(obj))
    xe = jnp.asarray(model.to_external(np.asarray(res.x)))
    u0 = tuple(jnp.zeros((m, k), xe.dtype) for m, k in zip(spec.layout.nlevels, spec.layout.ks))
    mode = jax.jit(lambda x, u: conditional_mode(spec, mdata, Params.unpack(spec, x), u))

    @jax.jit
    def lik(x, u):
        prm = Params.unpack(spec, x)
        Zl = scaled_z(mdata, cholesky_factors(spec, prm.thetas))
        return loglik_terms(spec, mdata, _eta(spec, mdata, _fixed(spec, mdata, prm), Zl, u), prm)

    out["newton_cold"] = int(_ready(mode(res.x, u0))[1])
    for name, fn in {"fg_warm": lambda: vg(res.x, res.aux), "f_cold": lambda: f(xe), "g_cold": lambda: gr(xe),
                     "mode_cold": lambda: mode(res.x, u0), "lik": lambda: lik(res.x, res.aux)}.items():
        _ready(fn())
        fns[name] = (lambda fn: lambda: _ready(fn()))(fn)
    out.update(best_of_each(fns, max(repeats, 10)))
    out["host"] = out["fit"] - out["optimize"] - out["post"]

    # an instrumented copy of the outer fit: counts objective evaluations and the Newton
    # iterations of each inner mode solve (a second, identical solve whose count is sent
    # to the host; the fit itself is unchanged)
    counts: list = []
    glm_counts: list = []

    def counted(sp, sink):
        def fun(x, u):
            if sp.nblocks:
                _, it = conditional_mode(sp, mdata, jax.lax.stop_gradient(Params.unpack(sp, x)), u)
            else:
                it = jnp.asarray(0)
            jax.debug.callback(lambda i: sink.append(int(i)), it)
            return laplace_nll(sp, x, mdata, u)
        return fun

    @jax.jit
    def instrumented(x):
        g = minimize(counted(glm, glm_counts), glm_part(spec, x), (), opts)
        x = with_glm_part(spec, x, g.x)
        return minimize(counted(spec, counts), x, u0, opts)

    ri = _ready(instrumented(x0))
    out["same_optimum"] = bool(np.allclose(np.asarray(ri.x), np.asarray(res.x), rtol=1e-10, atol=1e-12)
                               and int(ri.iterations) == int(res.iterations))
    out["evals"], out["glm_evals"] = len(counts), len(glm_counts)
    out["newton"], out["newton_max"] = sum(counts), max(counts) if counts else 0
    # the optimize time as evaluations at the warm cost plus Newton iterations at the cold
    # solve's cost per iteration (the rest: the GLM start, L-BFGS bookkeeping, loop overhead)
    per_newton = out["mode_cold"] / max(out["newton_cold"], 1)
    out["newton_ms"] = per_newton
    out["model_s"] = out["glm"] + out["evals"] * out["fg_warm"] + out["newton"] * per_newton
    return out


# ---------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats per model, glmmjax and R (min of)")
    ap.add_argument("--only", default="", help="substring of the model id or JSON path")
    ap.add_argument("--no-r", action="store_true", help="do not run R (glmmTMB columns n/a)")
    ap.add_argument("--pin", type=int, default=None, metavar="CORE", help="run glmmjax and R on this CPU core")
    ap.add_argument("--cache", default=None, metavar="DIR",
                    help="persistent JAX compilation cache (a rerun then loads compiled code: 'first s' "
                         "becomes loading time; warm times are unaffected)")
    ap.add_argument("--profile", action="store_true", help="profile the models that miss the 10x goal")
    ap.add_argument("--profile-all", action="store_true", help="profile every model")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats needs a positive integer")
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})   # before JAX starts its threads

    paths = [p for p in tmb_reference_paths() if args.only in str(p.relative_to(ROOT))
             or args.only in p.stem]
    models = [m for m in map(TmbModel.from_json, paths) if m is not None]   # model fits only
    if not models:
        sys.exit(f"no reference JSON matches --only {args.only!r}")

    if args.no_r:
        rt, r_note = {}, "R not run (--no-r)"
    else:
        rt, r_note = run_r(models, args.repeats, args.pin)
    print(r_note, file=sys.stderr, flush=True)

    import jax

    if args.cache:
        jax.config.update("jax_compilation_cache_dir", args.cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    import glmmjax as gj  # noqa: F401  (imported before timing)

    warnings.simplefilter("ignore")
    rows, misses, notes = [], [], []
    for tm in models:
        r = rt.get(tm.id, {})
        r_s = float(r["min_s"]) if r.get("min_s") else None
        if r and r.get("status") != "ok":
            notes.append(f"{tm.id}: glmmTMB {r['status']}")
        if r.get("logLik") and abs(float(r["logLik"]) - tm.ref["fit_stats"]["logLik"]) > 1e-4:
            notes.append(f"{tm.id}: glmmTMB's logLik now {float(r['logLik']):.6f}, "
                         f"JSON {tm.ref['fit_stats']['logLik']:.6f}")
        data = tm.data()
        try:
            tm.glmm_family()
        except ValueError as e:
            notes.append(f"{tm.id}: skipped, {str(e).split(';')[0]}")
            rows.append([tm.id, len(data), fmt(r_s), fmt(tm.r_recorded_s)] + ["n/a"] * 8)
            continue
        t = time.perf_counter()
        try:
            fit = tm.model(data).fit()
        except Exception as e:   # a family or feature glmmjax does not (yet) fit
            notes.append(f"{tm.id}: glmmjax failed, {type(e).__name__}: {e}")
            rows.append([tm.id, len(data), fmt(r_s), fmt(tm.r_recorded_s)] + ["n/a"] * 8)
            continue
        first = time.perf_counter() - t
        warm, warm_cpu = best_wall_cpu(lambda: tm.model(data).fit(), args.repeats)
        model = fit.model
        warm_fit = best_of(model.fit, args.repeats)
        ratio = r_s / warm if r_s else None
        ok = "n/a" if ratio is None else ("yes" if ratio >= GOAL else "NO")
        r_cpu = float(r["min_cpu_s"]) if r.get("min_cpu_s") else None
        cpu_ratio = r_cpu / warm_cpu if r_cpu and warm_cpu > 0 else None
        if args.profile_all or ratio is None or ratio < GOAL:
            misses.append((tm, data))
        r_iters = tm.ref.get("estimation", {}).get("iterations")
        rows.append([tm.id, fit.nobs, fmt(r_s), fmt(tm.r_recorded_s), fmt(warm, ".4f"), fmt(warm_fit, ".4f"),
                     fmt(ratio, ".1f"), ok, fmt(cpu_ratio, ".1f"),
                     f"{fit.iterations}/{r_iters if r_iters is not None else '?'}",
                     fmt(first, ".1f"), f"{fit.loglik - tm.ref['fit_stats']['logLik']:+.1e}"])
        print(rows[-1], file=sys.stderr, flush=True)
        jax.clear_caches()
    print(table(rows, ["model", "n", "glmmTMB s", "JSON R s", "jax s", "jax fit s", "ratio", "10x", "cpu ratio",
                       "iters jax/R", "first s", "dlogLik"]))
    n_ok = sum(r[7] == "yes" for r in rows)
    n_r = sum(r[7] in ("yes", "NO") for r in rows)
    goal = f"10x goal met by {n_ok} of {n_r} models with a glmmTMB time" if n_r else "no glmmTMB times"
    print(f"\n{goal}. {r_note}.")
    for n in notes:
        print("  " + n)
    print(f"machine: {os.cpu_count()} cores{f', pinned to core {args.pin}' if args.pin is not None else ''}, "
          f"1-min load average {os.getloadavg()[0]:.2f}; jax {jax.__version__} ({jax.default_backend()}); "
          f"repeats {args.repeats}; {time.strftime('%Y-%m-%d %H:%M')}")

    if (args.profile or args.profile_all) and misses:
        prow = []
        for tm, data in misses:
            p = profile(tm, data, args.repeats)
            ms = lambda k: fmt(p.get(k) and 1e3 * p[k], ".2f")
            prow.append([tm.id, fmt(p["fit"], ".4f"), fmt(p["build"], ".4f"), fmt(p["optimize"], ".4f"),
                         fmt(p.get("glm"), ".4f"), fmt(p.get("post"), ".4f"), fmt(p["host"], ".4f"),
                         f"{p['iters']}/{p.get('glm_iters', '-')}", f"{p.get('evals', '-')}/{p.get('glm_evals', '-')}",
                         f"{p.get('newton', '-')}/{p.get('newton_max', '-')}", ms("fg_warm"), ms("newton_ms"),
                         ms("lik"), ms("f_cold"), ms("g_cold"), p.get("newton_cold", "-"),
                         fmt(p.get("model_s"), ".4f"), "" if p.get("same_optimum", True) else "differs"])
            print(prow[-1], file=sys.stderr, flush=True)
            jax.clear_caches()
        print(f"\nProfile of {'all models' if args.profile_all else 'the models that miss 10x'} "
              "(seconds unless ms; see the module docstring):")
        print(table(prow, ["model", "fit s", "build s", "optimize s", "GLM s", "post s", "host s", "iters/GLM",
                           "evals/GLM", "newton sum/max", "f+g warm ms", "ms/newton", "lik ms", "f cold ms",
                           "grad cold ms", "newton cold", "model s", "check"]))


if __name__ == "__main__":
    main()
