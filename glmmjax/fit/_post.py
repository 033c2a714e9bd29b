"""Quantities computed once at the optimum, in one compiled call per model structure.

GLMMs: the gradient and the Hessian of the Laplace objective over all outer parameters,
the conditional modes and their conditional covariances Lambda H^{-1} Lambda'. The Hessian
is, by the ``hessian`` argument:

* "fd" (default): central differences of the exact (autodiff, implicit) gradient,
  H e_i = (g(x + h_i e_i) - g(x - h_i e_i)) / (2 h_i), h_i = 1e-4 max(1, |x_i|) (float32:
  1e-2), symmetrized; each gradient re-solves the mode from the one at the optimum. This
  is how glmmTMB's standard errors are made (TMB's sdreport differentiates the autodiff
  gradient numerically, with optimHess). Truncation error ~h^2 relative, rounding ~1e-12/h
  (the mode's tolerance), so ~1e-8 in float64: standard errors agree with the exact
  Hessian's to ~1e-7 (tests/test_objective.py). It costs 2 p gradient evaluations. With the
  default optimizer ("lbfgs") they are made by the optimizer's own loop after it stops
  (fit_arrays(..., hessian=True), see fit/_lbfgs.py) and passed in as ``hess``, so that
  the gradient is in one compiled program per model (benchmarks/bench_compile.py times the
  first fit and this pass).
* "autodiff": jax.jacfwd of jax.grad of the objective with two implicit Newton steps,
  which makes the second derivatives exact. It differentiates the family's log-density
  four times in the linear predictor, which for families with lgamma terms (nbinom1, say)
  makes the compiled Hessian several times larger and slower to compile than "fd"'s
  (measured for an nbinom1 model with two crossed factors: benchmarks/README.md).
LMMs: the PLS solution at theta-hat, sigma, (X'V^{-1}X)^{-1} sigma^2 as lme4's vcov.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..laplace import (
    factorize,
    inverse_diag_blocks,
    laplace_nll,
    lmm_solution,
    loglik_terms,
    predictors,
    solution_deviance,
)
from ..spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z
from ._fit import fit_arrays
from ._lbfgs import fd_hessian, fd_steps
from ._optimize import OptimizerOptions

__all__ = ["HESSIANS", "glmm_post", "lmm_post", "fit_and_post"]


def _modes_and_condvar(spec, Ls, u, F, scale2=1.0):
    Hinv = inverse_diag_blocks(spec.layout, F)
    b = tuple(ub @ L.T for ub, L in zip(u, Ls))
    cv = tuple(scale2 * jnp.einsum("ik,mkl,jl->mij", L, Hi, L) for L, Hi in zip(Ls, Hinv))
    return b, cv


HESSIANS = ("fd", "autodiff")


def _fd_hessian(spec: ModelSpec, data: ModelData, x, u):
    """(Hessian by central differences of the exact gradient, gradient at x); module docstring."""
    grad = jax.grad(lambda z: laplace_nll(spec, z, data, u), has_aux=True)
    p = x.shape[0]
    h = fd_steps(x)
    steps = jnp.eye(p, dtype=x.dtype) * h[:, None]
    G = jax.lax.map(lambda d: grad(x + d)[0], jnp.concatenate([steps, -steps, jnp.zeros((1, p), x.dtype)]))
    return fd_hessian(G, h), G[2 * p]


@partial(jax.jit, static_argnames=("spec", "hessian"))
def glmm_post(spec: ModelSpec, data: ModelData, x, u, hessian: str = "fd", hess=None, grad=None):
    """``u`` is the converged mode at ``x`` (the optimizer's final warm-start state);
    ``hessian``: "fd" or "autodiff" (module docstring); ``hess``, ``grad``: the "fd"
    Hessian and the gradient at x when the optimizer computed them."""
    if hess is None and hessian == "fd":
        hess, grad = _fd_hessian(spec, data, x, u)
    elif hess is None:
        obj2 = lambda z: laplace_nll(spec, z, data, u, second_order=True)[0]
        hess, grad = jax.jacfwd(lambda z: (lambda g: (g, g))(jax.grad(obj2)(z)), has_aux=True)(x)
    prm = Params.unpack(spec, x)
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    etas = predictors(spec, data, prm, Zl, u)
    eta = etas[0] if isinstance(etas, tuple) else etas
    out = dict(grad=grad, hess=hess, eta=eta, Ls=Ls, u=u)
    if isinstance(etas, tuple):
        out["zi_eta"] = etas[1]
    if spec.nblocks:
        _, _, d2 = loglik_terms(spec, data, etas, prm, eta_only=True)
        F = factorize(spec.layout, Zl, data.codes, -d2)
        out["b"], out["condvar"] = _modes_and_condvar(spec, Ls, u, F)
    else:
        out["b"], out["condvar"] = (), ()
    return out


@partial(jax.jit, static_argnames=("spec",))
def lmm_post(spec: ModelSpec, data: ModelData, theta, hess=None):
    """The LMM's results at theta; ``hess``: the objective's Hessian in theta when the
    optimizer computed it (else the autodiff Hessian, for the convergence check)."""
    if hess is None:
        hess = jax.hessian(lambda t: 0.5 * solution_deviance(spec.reml, lmm_solution(spec, t, data), data))(theta)

    # one factorization: the objective, its gradient and the solution's pieces together
    def objective(t):
        sol = lmm_solution(spec, t, data)
        return 0.5 * solution_deviance(spec.reml, sol, data), sol

    (obj, s), grad = jax.value_and_grad(objective, has_aux=True)(theta)
    n, p = data.X.shape
    sigma2 = s.pwrss / (n - p if spec.reml else n)
    LXinv = jax.scipy.linalg.solve_triangular(s.LX, jnp.eye(p, dtype=theta.dtype), lower=True)
    vcov = sigma2 * (LXinv.T @ LXinv)
    b, cv = _modes_and_condvar(spec, s.Ls, s.u, s.F, sigma2)
    dev_ml = solution_deviance(False, s, data)
    eta = data.y - s.resid
    return dict(objective=obj, grad=grad, hess=hess, beta=s.beta, sigma=jnp.sqrt(sigma2), vcov=vcov, b=b,
                condvar=cv, Ls=s.Ls, u=s.u, eta=eta, deviance_ml=dev_ml, pwrss=s.pwrss)


@partial(jax.jit, static_argnames=("spec", "opts", "glm_start", "hessian"))
def fit_and_post(spec: ModelSpec, opts: OptimizerOptions, data: ModelData, x0, glm_start: bool = True,
                 hessian: str = "fd"):
    """``fit_arrays`` and the post-fit pass (``lmm_post`` / ``glmm_post``) in one compiled
    call: GLMM.fit's path. One program to trace, compile, cache and dispatch instead of two,
    with no wait for the optimum on the host in between (a fresh process with a filled cache
    loads one executable; a warm fit makes one call). A non-finite optimum flows through the
    post-fit pass, and FitResult.from_optimum raises on it."""
    in_loop = hessian == "fd" and opts.method == "lbfgs"
    res = fit_arrays(spec, opts, data, x0, glm_start=glm_start, hessian=in_loop)
    if spec.profiled:
        return res, lmm_post(spec, data, res.x, hess=res.hess)
    given = {} if res.hess is None else dict(hess=res.hess, grad=res.grad)
    return res, glmm_post(spec, data, res.x, res.aux, hessian=hessian, **given)
