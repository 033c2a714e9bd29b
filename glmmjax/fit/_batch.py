"""Many datasets of one design fitted in one compiled computation.

``fit_batch`` fits each row of Y (responses of the same design: simulated datasets,
bootstrap replicates) with the same compiled fit as a single ``GLMM.fit``. How the rows are
spread over the hardware is a strategy, chosen by backend:

    "vmap"     one vectorized fit; natural on GPU/TPU, where lanes run in parallel. On CPU,
               with 1000 datasets, the nested while-loops run to the slowest lane of all.
    "chunked"  lax.map over chunks of ``chunk`` datasets, each chunk vectorized: the loops
               run to the slowest of a few lanes, and each operation does several datasets'
               work. Small chunks do best: the lanes' iteration counts differ, and an
               operation on a few hundred numbers costs about as much per number as its
               launch (chunks of 2 were the fastest of 1, 2 and 8 in
               benchmarks/bench_batch.py --strategies threads --chunks 1,2,8; figures in
               benchmarks/README.md).
    "map"      jax.lax.map: a compiled loop over datasets, one at a time.
    "threads"  the rows split into equal parts, one per CPU, each part run as "chunked" (as
               "map" for chunk=1) from its own host thread with the same compiled
               computation; XLA releases the GIL while it runs. A fit's operations are small
               (a 466-effect model: mostly per-operation overhead), so XLA's thread pool
               leaves the second core idle and two parts run side by side. A refit this way
               costs a small fraction of a gj.glmm call (benchmarks/bench_batch.py, 1000
               refits of grouseticks' (1|LOCATION) + (1|INDEX) started at the fit; figures
               in benchmarks/README.md).
    "auto"     vmap on GPU/TPU; on CPU threads when the process may use more than one CPU,
               else chunked.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ..laplace import lmm_objective, lmm_solution
from ._asymptote import asymptotes
from ._convergence import check_convergence, converged
from ._fit import fit_arrays
from ._optimize import OptimizerOptions

__all__ = ["BatchFit", "fit_batch"]

CHUNK = 2   # datasets per vectorized chunk on CPU (benchmarks/bench_batch.py --chunks 1,2,8)


@dataclass(frozen=True, eq=False)
class BatchFit:
    """Per-dataset results of ``GLMM.fit_batch``.

    Attributes:
        params: (B, n_params) DataFrame of the flat parameters (see GLMM.parameter_names).
        fixef: (B, p) DataFrame of fixed effects.
        loglik: (B,) log-likelihoods (REML fits: REML log-likelihoods).
        max_grad: (B,) max|gradient| at each optimum.
        converged: (B,) bool.
        iterations: (B,) outer iterations.
        strategy: how the batch was run.
    """

    params: pd.DataFrame
    fixef: pd.DataFrame
    loglik: np.ndarray
    max_grad: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    strategy: str

    def __len__(self):
        return len(self.loglik)


def _one(spec, opts, glm_start, hessian, data, x0, h0, ye):
    y, eta_start = ye
    res = fit_arrays(spec, opts, data.with_response(y), x0, glm_start=glm_start, h0=h0, eta_start=eta_start,
                     hessian=hessian)
    out = (res.x, res.value, res.grad, res.iterations, res.boundary_checked)
    return out + (res.hess,) if hessian else out


@partial(jax.jit, static_argnames=("spec", "opts", "glm_start", "hessian"))
def _map(spec, opts, glm_start, hessian, data, x0, h0, Y, E):
    return jax.lax.map(lambda ye: _one(spec, opts, glm_start, hessian, data, x0, h0, ye), (Y, E))


@partial(jax.jit, static_argnames=("spec", "opts", "glm_start", "hessian"))
def _vmap(spec, opts, glm_start, hessian, data, x0, h0, Y, E):
    return jax.vmap(lambda y, e: _one(spec, opts, glm_start, hessian, data, x0, h0, (y, e)))(Y, E)


@partial(jax.jit, static_argnames=("spec", "opts", "glm_start", "hessian", "chunk"))
def _chunked(spec, opts, glm_start, hessian, data, x0, h0, Y, E, chunk):
    return jax.lax.map(lambda ye: _one(spec, opts, glm_start, hessian, data, x0, h0, ye), (Y, E), batch_size=chunk)


def _eta_start(model, Y):
    """Each row's working response: the link of ``Family.initial_mu`` (host side), where
    fit_arrays starts the modes (laplace._glmm.start_modes)."""
    fam, size = model.family, model.trials
    with np.errstate(all="ignore"):
        return np.stack([np.asarray(fam.link.host_linkfun(np.asarray(fam.initial_mu(y, size), float)), float)
                         for y in Y])


def _inverse_hessian(model, fit):
    """The inverse Hessian of the objective at ``fit`` in the optimizer's coordinates.

    Refits of responses simulated from (or resampled around) a fit start at its estimates,
    where the objective's curvature is known: L-BFGS started with this metric takes Newton
    steps from the first iteration, so refits need fewer iterations than with the identity
    metric (benchmarks/bench_batch.py; figures in benchmarks/README.md).
    Eigenvalues are floored so that
    a boundary (singular) fit's flat directions give bounded steps.
    """
    if model.spec.profiled:
        H = np.asarray(jax.hessian(lambda t: lmm_objective(model.spec, t, model.data))(jnp.asarray(fit.x)), float)
    elif fit.hessian is not None:
        J = model.jacobian_external()
        H = J.T @ np.asarray(fit.hessian, float) @ J
    else:
        return None
    if not np.all(np.isfinite(H)) or H.size == 0:
        return None
    lam, V = np.linalg.eigh(0.5 * (H + H.T))
    top = np.max(np.abs(lam))
    if top <= 0:
        return None
    lam = np.maximum(lam, 1e-6 * top)
    return (V / lam) @ V.T


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def _threads(spec, opts, glm_start, hessian, data, x0, h0, Y, E, n_threads, chunk):
    """Equal parts of the rows, each fitted by the same compiled computation (``_chunked``,
    or ``_map`` for chunk 1) from its own host thread; XLA releases the GIL while it runs."""
    B = Y.shape[0]
    n_threads = max(1, min(n_threads, B))
    size = -(-B // n_threads)
    pad = lambda A: np.concatenate([A, np.repeat(A[-1:], size * n_threads - B, axis=0)])
    Y, E = pad(Y), pad(E)
    chunk = max(1, min(chunk, size))

    def run(i):
        part = jnp.asarray(Y[i * size:(i + 1) * size]), jnp.asarray(E[i * size:(i + 1) * size])
        if chunk == 1:
            out = _map(spec, opts, glm_start, hessian, data, x0, h0, *part)
        else:
            out = _chunked(spec, opts, glm_start, hessian, data, x0, h0, *part, chunk)
        return [np.asarray(o) for o in out]

    with ThreadPoolExecutor(n_threads) as pool:
        outs = list(pool.map(run, range(n_threads)))
    return tuple(np.concatenate([o[i] for o in outs])[:B] for i in range(len(outs[0])))


def _auto_strategy(n_datasets: int) -> str:
    if jax.default_backend() != "cpu":
        return "vmap"
    return "threads" if usable_cpus() > 1 and n_datasets > 1 else "chunked"


def fit_batch(model, Y, *, start=None, method="lbfgs", gtol=1e-6, maxiter=500, strategy="auto",
              threads=None, chunk=None, check_hessian=False) -> BatchFit:
    """Fit every row of ``Y`` with ``model``'s design (see GLMM.fit_batch)."""
    Y = np.asarray(Y, dtype=float)
    chunk = CHUNK if chunk is None else chunk
    n = model.design.nobs
    if Y.ndim == 1:
        Y = Y[None, :]
    if Y.ndim != 2 or Y.shape[1] != n:
        raise ValueError(f"Y must have shape (n_datasets, {n}); got {Y.shape}")
    size = np.asarray(model.data.size) if model.family.trials else None
    model.family.check_response(Y.reshape(-1), None if size is None else np.tile(size, Y.shape[0]))
    if strategy == "auto":
        strategy = _auto_strategy(len(Y))
    if strategy not in ("map", "vmap", "chunked", "threads"):
        raise ValueError(f"Unknown strategy {strategy!r}; choose 'auto', 'chunked', 'map', 'vmap' or 'threads'")
    opts = OptimizerOptions(method=method, gtol=gtol, maxiter=maxiter)
    dt = model.data.y.dtype
    glm_start = start is None and model.family.glm_start
    h0 = None
    if start is not None and hasattr(start, "x"):   # a FitResult: start every fit at its estimates
        if start.model.spec == model.spec:
            h0 = _inverse_hessian(model, start)
        start = start.x
    x0 = jnp.asarray(model.start_vector(start) if start is not None else model.to_internal(model.start()), dt)
    h0 = None if h0 is None else jnp.asarray(h0, dt)
    E = _eta_start(model, Y).astype(dt)
    Yd = Y.astype(dt)
    hessian = bool(check_hessian) and method == "lbfgs"
    run = partial(_run, model, opts, strategy, threads, chunk, hessian)
    x, value, grad, its, checked, *hess = run(glm_start, x0, h0, Yd, E)
    at_limit = [bool(a) for a in asymptotes(model, x @ model.jacobian_external().T)] if not model.spec.profiled else []
    if any(at_limit):
        # rows at an asymptote: refitted from the interior start, the better optimum kept
        # (fit/_asymptote.py; a single fit also tries its optimum with the submodel reset)
        rows = np.flatnonzero(at_limit)
        interior = jnp.asarray(model.to_internal(model.start()), dt)
        again = run(False, interior, None, Yd[rows], E[rows])
        better = np.isfinite(again[1]) & (again[1] < value[rows] - 1e-9 * np.abs(value[rows]))
        for full, part in zip((x, value, grad, its, checked, *hess), again):
            full[rows[better]] = part[better]
    if hessian:
        # lme4's criterion row by row (fit/_convergence.py), boundary parameters left out
        coords = model.spec.variance_coordinates()
        ok = np.array([check_convergence(v, g, H, [i for i in coords if abs(xi[i]) < 1e-4], c).converged
                       for v, g, H, xi, c in zip(value, grad, hess[0], x, checked)])
    J = model.jacobian_external()
    max_grad_opt = np.max(np.abs(grad), axis=1) if grad.shape[1] else np.zeros(len(x))
    x = np.asarray(x, float) @ J.T
    grad = np.asarray(grad, float) @ np.linalg.inv(J)
    max_grad = np.max(np.abs(grad), axis=1) if grad.shape[1] else np.zeros(len(x))
    value = np.asarray(value, float)
    names = model.parameter_names()
    params = pd.DataFrame(x, columns=names)
    if model.spec.profiled:
        fixef = pd.DataFrame(np.full((len(x), model.spec.p), np.nan), columns=list(model.fixed_names))
        fixef.loc[:, :] = _profiled_fixef(model, x, jnp.asarray(Yd))
    else:
        fixef = params[list(model.fixed_names)].copy()
    return BatchFit(params=params, fixef=fixef, loglik=-value, max_grad=max_grad,
                    converged=ok if hessian else converged(value, max_grad_opt, np.asarray(checked)),
                    iterations=np.asarray(its), strategy=strategy)


def _run(model, opts, strategy, threads, chunk, hessian, glm_start, x0, h0, Yd, E):
    """The batch's fits in the optimizer's coordinates, as host arrays (x, value, grad,
    iterations, boundary_checked)."""
    if strategy == "threads":
        out = _threads(model.spec, opts, glm_start, hessian, model.data, x0, h0, Yd, E, threads or usable_cpus(),
                       int(chunk))
    else:
        args = (model.spec, opts, glm_start, hessian, model.data, x0, h0, jnp.asarray(Yd), jnp.asarray(E))
        if strategy == "map":
            out = _map(*args)
        elif strategy == "vmap":
            out = _vmap(*args)
        else:
            out = _chunked(*args, int(max(1, min(chunk, len(Yd)))))
    return tuple(np.array(o, dtype=float if i < 3 else None) for i, o in enumerate(out))


@partial(jax.jit, static_argnames=("spec",))
def _lmm_beta(spec, data, X, Y):
    return jax.vmap(lambda th, y: lmm_solution(spec, th, data.with_response(y)).beta)(X, Y)


def _profiled_fixef(model, theta, Y):
    """Fixed effects of profiled LMM fits (beta is profiled out of the optimized vector)."""
    return np.asarray(_lmm_beta(model.spec, model.data, jnp.asarray(theta, Y.dtype), Y))
