"""The exact linear mixed model, with beta and sigma profiled out (lme4's PLS).

For y = X beta + Z b + e, b = sigma Lambda(theta) u, u ~ N(0, I), e ~ N(0, sigma^2 W^{-1})
(W the prior weights), the penalized least-squares problem

    r^2(theta) = min_{u, beta} |W^{1/2}(y - X beta - Z Lambda u)|^2 + |u|^2

is solved through the Cholesky factor L of H = Lambda' Z' W Z Lambda + I (structure-aware,
see _blocked) and the p x p factor L_X of X'WX - R_ZX' R_ZX with R_ZX = L^{-1} Lambda' Z' W X.
The profiled deviances (lme4's) are

    ML:    log det H + n (1 + log(2 pi r^2 / n))                             - sum log w
    REML:  log det H + log det L_X L_X' + (n - p)(1 + log(2 pi r^2 / (n - p))) - sum log w

and the objective returned is half of them, so that logLik = -objective (REML: lme4's
REML log-likelihood, -REMLcrit / 2). With sigma explicit instead of profiled (profile
intervals, Satterthwaite's and Wald's Hessians in (theta, sigma)),

    ML:    log det H + r^2 / sigma^2 + n log(2 pi sigma^2)                       - sum log w
    REML:  log det H + log det L_X L_X' + r^2 / sigma^2 + (n - p) log(2 pi sigma^2) - sum log w,

which at sigma^2 = r^2 / n (REML: r^2 / (n - p)) is the profiled form. ``deviance`` writes
both once; every other module takes them from here. The residual sum r^2 is computed from the explicit
residuals, not by cancelling y'Wy, so it stays accurate in float32.

One grouping factor, float64 (the optimizer's objective, ``lmm_objective_crossproducts``):
with G_j = Z_j' W Z_j, Z_j' W X and Z_j' W y per level and X'WX, X'Wy, y'Wy computed once
(``crossproducts``), an evaluation costs O(m k^2 p) instead of O(n k p): H's blocks are
L' G_j L + I, and r^2 = y'Wy - |c_u|^2 - |c_beta|^2 (the solves' right-hand sides; lme4's
and MixedModels.jl's identity), which cancels y'Wy: a relative rounding error of
~eps y'Wy / r^2, negligible in float64 (the fitted results are computed by
``lmm_solution`` from the explicit residuals).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ..spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z
from . import _blocked as blk
from . import _smallk as smallk

__all__ = ["LmmSolution", "SigmaDeviance", "CrossProducts", "ols_residual", "lmm_solution", "deviance",
           "solution_deviance", "lmm_objective", "deviance_at_sigma", "hessian_theta_log_sigma", "crossproducts",
           "lmm_objective_crossproducts"]


def _seg(z, c, m, v):
    """Lambda_b' Z_b' v for v of shape (n, ...) -> (m, k, ...)."""
    prod = z.reshape(z.shape + (1,) * (v.ndim - 1)) * v[:, None, ...]
    return jax.ops.segment_sum(prod, c, num_segments=m)


class LmmSolution(NamedTuple):
    """The PLS solution at theta (``lmm_solution``).

    F: the blocked factor of H; LX: the p x p factor L_X; beta, u: the solution; pwrss: r^2;
    Ls: the Cholesky factors; resid: y - offset - fitted (n,).
    """

    F: object
    LX: jax.Array
    beta: jax.Array
    u: tuple
    pwrss: jax.Array
    Ls: tuple
    resid: jax.Array


class SigmaDeviance(NamedTuple):
    """``deviance_at_sigma``: the deviance, the fixed effects that minimize it, and L_X L_X'
    (= X'V^{-1}X sigma^2, lme4's RX'RX)."""

    deviance: jax.Array
    beta: jax.Array
    XtVinvX: jax.Array


def lmm_solution(spec: ModelSpec, theta, data: ModelData) -> LmmSolution:
    """Solve the PLS problem at theta."""
    prm = Params.unpack(spec, theta)
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    w = data.weights
    X = data.X
    y, beta_ols = ols_residual(X, w, data.y - data.offset)
    lay = spec.layout
    F = blk.factorize(lay, Zl, data.codes, w)
    cu = blk.solve_lower(lay, F, tuple(_seg(z, c, m, w * y) for z, c, m in zip(Zl, data.codes, lay.nlevels)))
    RZX = blk.solve_lower(lay, F, tuple(_seg(z, c, m, w[:, None] * X) for z, c, m in zip(Zl, data.codes, lay.nlevels)))
    XtWX = X.T @ (w[:, None] * X) - sum(jnp.einsum("mkp,mkr->pr", r, r) for r in RZX)
    XtWy = X.T @ (w * y) - sum(jnp.einsum("mkp,mk->p", r, c) for r, c in zip(RZX, cu))
    LX = smallk.cholesky(XtWX[None])[0]
    cb = smallk.solve_lower(LX[None], XtWy[None])[0]
    beta = smallk.solve_upper(LX[None], cb[None])[0]
    u = blk.solve_upper(lay, F, tuple(c - jnp.einsum("mkp,p->mk", r, beta) for c, r in zip(cu, RZX)))
    fitted = X @ beta
    for z, c, ub in zip(Zl, data.codes, u):
        fitted = fitted + jnp.sum(z * ub[c], axis=1)
    res = y - fitted
    pwrss = jnp.sum(w * res * res) + sum(jnp.sum(ub * ub) for ub in u)
    return LmmSolution(F, LX, beta + beta_ols, u, pwrss, Ls, res)


def ols_residual(X, w, y):
    """(y - X beta_OLS, beta_OLS), the weighted least-squares fit refined once.

    beta is profiled out, so the PLS problem of y and of y - X c are the same for any c, the
    solution's beta shifted by c. Solving it for the OLS residual keeps the sums of squares
    free of the response's mean: the cross-product identity r^2 = y'Wy - |c_u|^2 - |c_beta|^2
    cancels y'Wy, which for a response around 1e7 or 1e9 (a shifted time, a large count)
    leaves rounding of the order of the residual variance itself. One refinement step
    removes the normal equations' own error (relative cond(X'WX) eps |y|).
    """
    p = X.shape[1]
    if p == 0:
        return y, jnp.zeros(0, y.dtype)
    XtWX = X.T @ (w[:, None] * X)
    beta = jnp.zeros(p, y.dtype)
    r = y
    for _ in range(2):
        step = jnp.linalg.solve(XtWX, X.T @ (w * r))
        beta, r = beta + step, r - X @ step
    return r, beta


def deviance(ldH, ldX, pwrss, n, p, sumlogw, reml, sigma2=None):
    """lme4's (RE)ML deviance from its pieces (module docstring): log det H, log det L_X L_X',
    r^2, n, p and sum log w. ``sigma2`` None: sigma profiled out; else sigma^2 explicit.
    ``reml`` may be a traced 0/1 (one compiled program for ML and REML fits)."""
    nr = n - reml * p
    if sigma2 is None:
        core = nr * (1.0 + jnp.log(2.0 * jnp.pi * pwrss / nr))
    else:
        core = pwrss / sigma2 + nr * jnp.log(2.0 * jnp.pi * sigma2)
    return ldH + reml * ldX + core - sumlogw


def _logdet_lx(LX):
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(LX)))


def solution_deviance(reml, sol: LmmSolution, data: ModelData):
    """The profiled (RE)ML deviance of ``lmm_solution``'s result (one solution gives both:
    the post-fit pass reports the ML deviance of a REML fit)."""
    n, p = data.X.shape
    return deviance(blk.logdet(sol.F), _logdet_lx(sol.LX), sol.pwrss, n, p, jnp.sum(jnp.log(data.weights)), reml)


def lmm_objective(spec: ModelSpec, theta, data: ModelData):
    """Half the profiled deviance (ML) or REML criterion at theta."""
    return 0.5 * solution_deviance(spec.reml, lmm_solution(spec, theta, data), data)


def deviance_at_sigma(spec: ModelSpec, theta, sigma2, data: ModelData, reml, e_beta=None, beta_value=0.0,
                      beta_on=False) -> SigmaDeviance:
    """The deviance at (theta, sigma^2) with beta at its conditional optimum, or with the
    fixed effect e' beta held at ``beta_value`` when ``beta_on``: r^2 then grows by
    (beta_value - e' beta_hat)^2 / e' A^{-1} e (A = L_X L_X'), and beta moves along A^{-1} e.
    ``reml`` and ``beta_on`` may be traced."""
    sol = lmm_solution(spec, theta, data)
    n, p = data.X.shape
    pwrss, beta = sol.pwrss, sol.beta
    if e_beta is not None:
        r = jax.scipy.linalg.solve_triangular(sol.LX, e_beta, lower=True)
        a_jj = jnp.where(beta_on, r @ r, 1.0)
        gap = jnp.where(beta_on, beta_value - e_beta @ sol.beta, 0.0)
        pwrss = pwrss + gap * gap / a_jj
        beta = beta + jax.scipy.linalg.solve_triangular(sol.LX, r, lower=True, trans="T") * gap / a_jj
    dev = deviance(blk.logdet(sol.F), _logdet_lx(sol.LX), pwrss, n, p, jnp.sum(jnp.log(data.weights)), reml, sigma2)
    return SigmaDeviance(dev, beta, sol.LX @ sol.LX.T)


@partial(jax.jit, static_argnames=("spec",))
def hessian_theta_log_sigma(spec: ModelSpec, data: ModelData, theta, log_sigma, reml):
    """Hessian of half the (RE)ML deviance in (theta, log sigma) (Wald intervals and profiles)."""

    def half(q):
        return 0.5 * deviance_at_sigma(spec, q[:-1], jnp.exp(2.0 * q[-1]), data, reml).deviance

    return jax.hessian(half)(jnp.concatenate([theta, jnp.reshape(log_sigma, (1,))]))


class CrossProducts(NamedTuple):
    """The products of Z, X and y (one grouping factor) that do not change with theta: per level
    G = Z_j'WZ_j (m, k, k), Z_j'WX (m, k, p), Z_j'Wy (m, k); X'WX, X'Wy, y'Wy, sum log w, n."""

    G: jax.Array
    ZX: jax.Array
    Zy: jax.Array
    XX: jax.Array
    Xy: jax.Array
    yy: jax.Array
    sumlogw: jax.Array
    n: int


def crossproducts(spec: ModelSpec, data: ModelData) -> CrossProducts:
    """The products of Z, X and y (one grouping factor) that do not change with theta."""
    w = data.weights
    X, Z, c = data.X, data.Z[0], data.codes[0]
    y, _ = ols_residual(X, w, data.y - data.offset)
    m = spec.layout.nlevels[0]
    wz = w[:, None] * Z
    return CrossProducts(
        G=jax.ops.segment_sum(wz[:, :, None] * Z[:, None, :], c, num_segments=m),
        ZX=jax.ops.segment_sum(wz[:, :, None] * X[:, None, :], c, num_segments=m),
        Zy=jax.ops.segment_sum(wz * y[:, None], c, num_segments=m),
        XX=X.T @ (w[:, None] * X), Xy=X.T @ (w * y), yy=jnp.sum(w * y * y),
        sumlogw=jnp.sum(jnp.log(w)), n=y.shape[0])


def lmm_objective_crossproducts(spec: ModelSpec, theta, cp: CrossProducts):
    """``lmm_objective`` for one grouping factor from ``crossproducts`` (module docstring)."""
    (L,) = cholesky_factors(spec, Params.unpack(spec, theta).thetas)
    k = L.shape[0]
    A = jnp.einsum("ji,mjl,lk->mik", L, cp.G, L) + jnp.eye(k, dtype=L.dtype)
    # small k and p (the usual case) unrolled into elementwise operations (_smallk), which
    # XLA fuses: the LAPACK calls on 2 x 2 blocks cost more in overhead than in arithmetic
    LA = smallk.cholesky(A)
    cu = smallk.solve_lower(LA, jnp.einsum("ji,mj->mi", L, cp.Zy))
    RZX = smallk.solve_lower(LA, jnp.einsum("ji,mjp->mip", L, cp.ZX))
    XtWX = cp.XX - jnp.einsum("mkp,mkr->pr", RZX, RZX)
    XtWy = cp.Xy - jnp.einsum("mkp,mk->p", RZX, cu)
    LX = smallk.cholesky(XtWX[None])[0]
    cb = smallk.solve_lower(LX[None], XtWy[None])[0]
    pwrss = cp.yy - jnp.sum(cu * cu) - jnp.sum(cb * cb)
    ldH = 2.0 * jnp.sum(jnp.log(jnp.diagonal(LA, axis1=1, axis2=2)))
    return 0.5 * deviance(ldH, _logdet_lx(LX), pwrss, cp.n, XtWX.shape[0], cp.sumlogw, spec.reml)
