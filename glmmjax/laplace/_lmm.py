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
REML log-likelihood, -REMLcrit / 2). The residual sum r^2 is computed from the explicit
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

import jax
import jax.numpy as jnp

from . import _blocked as blk
from . import _smallk as smallk
from ._spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z

__all__ = ["lmm_objective", "lmm_solution", "half_deviance", "crossproducts", "lmm_objective_crossproducts"]


def _seg(z, c, m, v):
    """Lambda_b' Z_b' v for v of shape (n, ...) -> (m, k, ...)."""
    prod = z.reshape(z.shape + (1,) * (v.ndim - 1)) * v[:, None, ...]
    return jax.ops.segment_sum(prod, c, num_segments=m)


def lmm_solution(spec: ModelSpec, theta, data: ModelData):
    """Solve the PLS problem at theta. Returns a dict of the pieces."""
    prm = Params.unpack(spec, theta)
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    w = data.weights
    y = data.y - data.offset
    X = data.X
    n, p = X.shape
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
    return dict(F=F, LX=LX, beta=beta, u=u, pwrss=pwrss, Ls=Ls, resid=res, n=n, p=p)


def lmm_objective(spec: ModelSpec, theta, data: ModelData):
    """Half the profiled deviance (ML) or REML criterion at theta."""
    return half_deviance(spec.reml, lmm_solution(spec, theta, data), data)


def half_deviance(reml: bool, s: dict, data: ModelData):
    """Half the profiled deviance (ML) or REML criterion from ``lmm_solution``'s pieces
    (one solution gives both: the post-fit pass reports the ML deviance of a REML fit)."""
    n, p = data.X.shape
    ldH = blk.logdet(s["F"])
    sumlogw = jnp.sum(jnp.log(data.weights))
    if reml:
        nr = n - p
        ldX = 2.0 * jnp.sum(jnp.log(jnp.diagonal(s["LX"])))
        dev = ldH + ldX + nr * (1.0 + jnp.log(2.0 * jnp.pi * s["pwrss"] / nr))
    else:
        dev = ldH + n * (1.0 + jnp.log(2.0 * jnp.pi * s["pwrss"] / n))
    return 0.5 * (dev - sumlogw)


def crossproducts(spec: ModelSpec, data: ModelData) -> dict:
    """The products of Z, X and y (one grouping factor) that do not change with theta."""
    w = data.weights
    y = data.y - data.offset
    X, Z, c = data.X, data.Z[0], data.codes[0]
    m = spec.layout.nlevels[0]
    wz = w[:, None] * Z
    return dict(
        G=jax.ops.segment_sum(wz[:, :, None] * Z[:, None, :], c, num_segments=m),   # (m, k, k)
        ZX=jax.ops.segment_sum(wz[:, :, None] * X[:, None, :], c, num_segments=m),  # (m, k, p)
        Zy=jax.ops.segment_sum(wz * y[:, None], c, num_segments=m),                 # (m, k)
        XX=X.T @ (w[:, None] * X), Xy=X.T @ (w * y), yy=jnp.sum(w * y * y),
        sumlogw=jnp.sum(jnp.log(w)), n=y.shape[0])


def lmm_objective_crossproducts(spec: ModelSpec, theta, cp: dict):
    """``lmm_objective`` for one grouping factor from ``crossproducts`` (module docstring)."""
    (L,) = cholesky_factors(spec, Params.unpack(spec, theta).thetas)
    k = L.shape[0]
    A = jnp.einsum("ji,mjl,lk->mik", L, cp["G"], L) + jnp.eye(k, dtype=L.dtype)
    # small k and p (the usual case) unrolled into elementwise operations (_smallk), which
    # XLA fuses: the LAPACK calls on 2 x 2 blocks cost more in overhead than in arithmetic
    LA = smallk.cholesky(A)
    cu = smallk.solve_lower(LA, jnp.einsum("ji,mj->mi", L, cp["Zy"]))
    RZX = smallk.solve_lower(LA, jnp.einsum("ji,mjp->mip", L, cp["ZX"]))
    XtWX = cp["XX"] - jnp.einsum("mkp,mkr->pr", RZX, RZX)
    XtWy = cp["Xy"] - jnp.einsum("mkp,mk->p", RZX, cu)
    LX = smallk.cholesky(XtWX[None])[0]
    cb = smallk.solve_lower(LX[None], XtWy[None])[0]
    pwrss = cp["yy"] - jnp.sum(cu * cu) - jnp.sum(cb * cb)
    ldH = 2.0 * jnp.sum(jnp.log(jnp.diagonal(LA, axis1=1, axis2=2)))
    n, p = cp["n"], XtWX.shape[0]
    if spec.reml:
        nr = n - p
        ldX = 2.0 * jnp.sum(jnp.log(jnp.diagonal(LX)))
        dev = ldH + ldX + nr * (1.0 + jnp.log(2.0 * jnp.pi * pwrss / nr))
    else:
        dev = ldH + n * (1.0 + jnp.log(2.0 * jnp.pi * pwrss / n))
    return 0.5 * (dev - cp["sumlogw"])
