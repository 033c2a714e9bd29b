"""Laplace-approximated marginal likelihood of a GLMM.

With spherical random effects u ~ N(0, I), b = Lambda(theta) u and

    f(u) = -sum_i w_i log p(y_i | eta_i) + |u|^2 / 2,   eta = X beta + Z Lambda u + offset,

the Laplace approximation of -log L(beta, theta, ...) is

    f(u*) + 1/2 log det H(u*),    H(u) = Lambda' Z' W(u) Z Lambda + I,

where u* minimizes f and W = -d^2 log p / d eta^2 is the exact (observed) weight, as
glmmTMB's autodiff Laplace uses (lme4's glmer uses expected weights; they agree for
canonical links).

u* is found by a penalized Newton iteration with step halving (per group when there is one
grouping factor, where f separates over groups; globally otherwise); its Hessian uses
max(W, 0) so every step is a descent direction. The mode solve is not differentiated:
from the converged, stop-gradient mode û one (or, for second derivatives, two) exact
Newton steps u1 = û - H(û)^{-1} grad f(û) are taken inside the differentiated function.
At û = u*, u1 = u* and du1/dtheta = -H^{-1} d^2 f / du dtheta, the implicit-function-theorem
derivative; two steps make second derivatives exact as well.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import _blocked as blk
from ._spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z

__all__ = ["laplace_nll", "conditional_mode", "loglik_terms"]

MAX_NEWTON = 100
MAX_HALVINGS = 30


def loglik_terms(spec: ModelSpec, data: ModelData, eta, prm: Params):
    """Per-observation weighted log-likelihood and its first two eta-derivatives."""
    fam = spec.family
    disp_eta = data.Xd @ prm.betad if spec.pd else jnp.zeros_like(eta)

    def ll(e):
        return data.weights * fam.loglik(data.y, e, disp_eta, prm.extra, data.size)

    ones = jnp.ones_like(eta)

    def d1(e):
        return jax.jvp(ll, (e,), (ones,))[1]

    (v, g), (_, h) = jax.jvp(lambda e: (ll(e), d1(e)), (eta,), (ones,))
    return v, g, h


def _maxabs(arrs):
    return jnp.max(jnp.stack([jnp.max(jnp.abs(a)) for a in arrs]))


def _eta(data: ModelData, fixed, Zl, u):
    eta = fixed
    for z, c, ub in zip(Zl, data.codes, u):
        eta = eta + jnp.sum(z * ub[c], axis=1)
    return eta


def _grad_u(spec: ModelSpec, data: ModelData, Zl, u, d1):
    return tuple(
        jax.ops.segment_sum(z * (-d1)[:, None], c, num_segments=m) + ub
        for z, c, ub, m in zip(Zl, data.codes, u, spec.layout.nlevels)
    )


def _f(spec, data, fixed, Zl, u, prm):
    ll, _, _ = loglik_terms(spec, data, _eta(data, fixed, Zl, u), prm)
    return -jnp.sum(ll) + 0.5 * sum(jnp.sum(ub * ub) for ub in u)


def _f_groups(spec, data, fixed, Zl, u, prm):
    """Per-group f for a single grouping factor: (m0,) (f separates over groups)."""
    ll, _, _ = loglik_terms(spec, data, _eta(data, fixed, Zl, u), prm)
    return -jax.ops.segment_sum(ll, data.codes[0], num_segments=spec.layout.nlevels[0]) + 0.5 * jnp.sum(u[0] ** 2, axis=1)


def _newton_direction(spec, data, fixed, Zl, u, prm, exact: bool):
    eta = _eta(data, fixed, Zl, u)
    _, d1, d2 = loglik_terms(spec, data, eta, prm)
    w = -d2 if exact else jnp.maximum(-d2, 0.0)
    g = _grad_u(spec, data, Zl, u, d1)
    F = blk.factorize(spec.layout, Zl, data.codes, w)
    step = blk.solve(spec.layout, F, tuple(-gb for gb in g))
    return step, g


def conditional_mode(spec: ModelSpec, data: ModelData, prm: Params, u0, tol=1e-10):
    """u* = argmin f(u) by safeguarded Newton, starting at u0. Returns (u*, iterations)."""
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    fixed = data.X @ prm.beta + data.offset
    single = spec.nblocks == 1

    def cond(state):
        _, it, done = state
        return (it < MAX_NEWTON) & ~done

    def body(state):
        u, it, _ = state
        step, _ = _newton_direction(spec, data, fixed, Zl, u, prm, exact=False)
        if single:
            f0 = _f_groups(spec, data, fixed, Zl, u, prm)

            def hcond(s):
                alpha, k = s
                fn = _f_groups(spec, data, fixed, Zl, (u[0] + alpha[:, None] * step[0],), prm)
                bad = ~(fn <= f0 + 1e-12 * jnp.abs(f0))
                return jnp.any(bad & (alpha > 0)) & (k < MAX_HALVINGS)

            def hbody(s):
                alpha, k = s
                fn = _f_groups(spec, data, fixed, Zl, (u[0] + alpha[:, None] * step[0],), prm)
                bad = ~(fn <= f0 + 1e-12 * jnp.abs(f0))
                alpha = jnp.where(bad, alpha * 0.5, alpha)
                alpha = jnp.where(bad & (k == MAX_HALVINGS - 1), 0.0, alpha)
                return alpha, k + 1

            alpha, _ = jax.lax.while_loop(hcond, hbody, (jnp.ones(spec.layout.nlevels[0], step[0].dtype), 0))
            new = (u[0] + alpha[:, None] * step[0],)
            moved = jnp.max(jnp.abs(alpha[:, None] * step[0]))
        else:
            f0 = _f(spec, data, fixed, Zl, u, prm)

            def trial(alpha):
                return tuple(ub + alpha * sb for ub, sb in zip(u, step))

            def hcond(s):
                alpha, k = s
                fn = _f(spec, data, fixed, Zl, trial(alpha), prm)
                return ~(fn <= f0 + 1e-12 * jnp.abs(f0)) & (k < MAX_HALVINGS)

            def hbody(s):
                alpha, k = s
                return alpha * 0.5, k + 1

            alpha, k = jax.lax.while_loop(hcond, hbody, (jnp.asarray(1.0, step[0].dtype), 0))
            alpha = jnp.where(k >= MAX_HALVINGS, 0.0, alpha)
            new = trial(alpha)
            moved = alpha * _maxabs(step)
        scale = 1.0 + _maxabs(new)
        return new, it + 1, moved <= tol * scale

    u, it, _ = jax.lax.while_loop(cond, body, (u0, 0, jnp.asarray(False)))
    return u, it


def laplace_nll(spec: ModelSpec, x, data: ModelData, u0, second_order: bool = False):
    """Laplace approximation of the negative log-likelihood at parameters ``x``.

    Arguments:
        spec: the static model structure.
        x: the flat outer parameter vector.
        data: the model's arrays.
        u0: starting random effects (tuple of (m_b, k_b)); the previous mode warm-starts.
        second_order: take two implicit Newton steps so that jax.hessian is exact.

    Returns:
        (nll, u*) with u* the conditional mode (not differentiated).
    """
    prm = Params.unpack(spec, x)
    if spec.nblocks == 0:
        eta = data.X @ prm.beta + data.offset
        ll, _, _ = loglik_terms(spec, data, eta, prm)
        return -jnp.sum(ll), u0
    u_hat, _ = conditional_mode(spec, data, jax.lax.stop_gradient(prm), u0)
    u_hat = jax.lax.stop_gradient(u_hat)
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    fixed = data.X @ prm.beta + data.offset
    u = u_hat
    for _ in range(2 if second_order else 1):
        step, _ = _newton_direction(spec, data, fixed, Zl, u, prm, exact=True)
        u = tuple(ub + sb for ub, sb in zip(u, step))
    eta = _eta(data, fixed, Zl, u)
    ll, _, d2 = loglik_terms(spec, data, eta, prm)
    F = blk.factorize(spec.layout, Zl, data.codes, -d2)
    nll = -jnp.sum(ll) + 0.5 * sum(jnp.sum(ub * ub) for ub in u) + 0.5 * blk.logdet(F)
    return nll, u_hat


def zero_modes(spec: ModelSpec, dtype):
    return tuple(jnp.zeros((m, k), dtype) for m, k in zip(spec.layout.nlevels, spec.layout.ks))
