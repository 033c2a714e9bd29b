"""Laplace-approximated marginal likelihood of a GLMM.

With spherical random effects u ~ N(0, I), b = Lambda(theta) u and

    f(u) = -sum_i w_i log p(y_i | eta_i) + |u|^2 / 2,   eta = X beta + Z Lambda u + offset,

the Laplace approximation of -log L(beta, theta, ...) is

    f(u*) + 1/2 log det H(u*),    H(u) = Lambda' Z' W(u) Z Lambda + I,

where u* minimizes f and W = -d^2 log p / d eta^2 is the exact (observed) weight, as
glmmTMB's autodiff Laplace uses (lme4's glmer uses expected weights; they agree for
canonical links).

u* is found by a penalized Newton iteration with step halving (per group when there is one
grouping factor, where f separates over groups; globally otherwise); its Hessian is the
exact one when positive definite (always, for a canonical link without zero-inflation:
W = Var(y) / dispersion) and otherwise uses max(W, 0), so every step is a descent
direction (clipping always made convergence linear wherever some W_i < 0, as at the zeros of
a zero-inflated model: 7 Newton iterations per evaluation for a hurdle nbinom1 fit). The mode
solve is not differentiated: from the converged, stop-gradient mode û one (or, for second derivatives, two) exact
Newton steps u1 = û - H(û)^{-1} grad f(û) are taken inside the differentiated function.
At û = u*, u1 = u* and du1/dtheta = -H^{-1} d^2 f / du dtheta, the implicit-function-theorem
derivative; two steps make second derivatives exact as well. For first derivatives H(û) in
that step is held constant (its derivative multiplies grad f(û) = 0), so it is factorized
without a backward pass, and log det H(u1) is differentiated through the Schur complement's
tr(S^{-1} dS) (_blocked.logdet_H) rather than through the dense Cholesky factorization.

Cost per objective evaluation: the Newton loop carries f, grad f and W of the current
iterate, so an iteration is one factorization plus one likelihood evaluation, and a warm
start that is already converged (the usual case late in the outer optimization) costs none.
The mode search evaluates only the terms of the log-density that involve eta
(``Family.loglik_eta``); the rest (``Family.loglik_rest``, tweedie's series) enters the
objective once.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from ..families import zero_inflated_loglik
from ..spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z
from . import _blocked as blk

__all__ = ["laplace_nll", "conditional_mode", "loglik_terms", "predictors", "start_modes", "zero_modes"]

MAX_NEWTON = 100
MAX_HALVINGS = 30


def _disp_eta(spec: ModelSpec, data: ModelData, prm: Params):
    return data.Xd @ prm.betad if spec.pd else jnp.zeros_like(data.y)


def loglik_rest(spec: ModelSpec, data: ModelData, prm: Params):
    """sum_i w_i (loglik - loglik_eta)_i: the part of the log-likelihood free of the
    predictors (Family.loglik_rest), 0 for most families."""
    rest = spec.family.loglik_rest(data.y, _disp_eta(spec, data, prm), prm.extra, data.size)
    return 0.0 if rest is None else jnp.sum(data.weights * rest)


def _weighted_loglik(spec: ModelSpec, data: ModelData, prm: Params, eta_only: bool = False):
    """(eta, zi_eta or None) -> per-observation weighted log-likelihood."""
    disp_eta = _disp_eta(spec, data, prm)
    density = spec.family.loglik_eta if eta_only else spec.family.loglik

    def ll2(e, z):
        lp = density(data.y, e, disp_eta, prm.extra, data.size)
        if z is not None:
            lp = zero_inflated_loglik(lp, data.y, z)
        return data.weights * lp

    return ll2


def loglik_terms(spec: ModelSpec, data: ModelData, eta, prm: Params, eta_only: bool = False):
    """Per-observation weighted log-likelihood and its first two derivatives in the predictors.

    ``eta`` is the conditional linear predictor (n,), or, when the zero-inflation model has
    random effects (``spec.layout.npred == 2``), the pair (eta, zi_eta). Returns (ll, d1, d2):
    for one predictor d1, d2 are (n,); for two, d1 is the pair of first derivatives and d2
    the (n, 2, 2) Hessian over (eta, zi_eta). ``eta_only``: ll without the family's terms
    free of eta (``loglik_rest``; the derivatives are the same).
    """
    if isinstance(eta, tuple):
        eta, zi_eta = eta
    else:
        zi_eta = data.Xzi @ prm.betazi if spec.pz else None
    ll2 = _weighted_loglik(spec, data, prm, eta_only)
    ones = jnp.ones_like(eta)
    if spec.layout.npred == 1:
        ll = lambda e: ll2(e, zi_eta)

        def d1(e):
            return jax.jvp(ll, (e,), (ones,))[1]

        (v, g), (_, h) = jax.jvp(lambda e: (ll(e), d1(e)), (eta,), (ones,))
        return v, g, h

    zeros = jnp.zeros_like(eta)

    def grads(e, z):
        return (jax.jvp(lambda a: ll2(a, z), (e,), (ones,))[1], jax.jvp(lambda c: ll2(e, c), (z,), (ones,))[1])

    (g0, g1), (h00, h01) = jax.jvp(grads, (eta, zi_eta), (ones, zeros))
    _, (_, h11) = jax.jvp(grads, (eta, zi_eta), (zeros, ones))
    h = jnp.stack([jnp.stack([h00, h01], -1), jnp.stack([h01, h11], -1)], -2)
    return ll2(eta, zi_eta), (g0, g1), h


def _fixed(spec: ModelSpec, data: ModelData, prm: Params):
    """The fixed part of the predictor(s) that carry random effects."""
    f = data.X @ prm.beta + data.offset
    if spec.layout.npred == 2:
        return (f, data.Xzi @ prm.betazi)
    return f


def _eta(spec: ModelSpec, data: ModelData, fixed, Zl, u):
    """Linear predictor(s): fixed part plus each block's Z_b Lambda_b u_b in its own predictor."""
    if spec.layout.npred == 1:
        eta = fixed
        for b, (z, c, ub) in enumerate(zip(Zl, data.codes, u)):
            eta = eta + jnp.sum(z * blk.at_rows(spec.layout, b, ub, c), axis=1)
        return eta
    etas = list(fixed)
    for b, (z, c, ub) in enumerate(zip(Zl, data.codes, u)):
        t = spec.layout.target(b)
        etas[t] = etas[t] + jnp.sum(z * blk.at_rows(spec.layout, b, ub, c), axis=1)
    return tuple(etas)


def predictors(spec: ModelSpec, data: ModelData, prm: Params, Zl, u):
    """The linear predictor(s) at modes u: eta, or (eta, zi_eta) when the zero-inflation model
    has random effects. ``Zl``: ``scaled_z(data, cholesky_factors(spec, prm.thetas))``."""
    return _eta(spec, data, _fixed(spec, data, prm), Zl, u)


def _clip_weights(w):
    """A positive semidefinite version of W (keeps the Newton step a descent direction):
    max(W, 0) for one predictor; for 2 x 2 blocks the diagonal clipped at 0 and the
    off-diagonal clipped to |w01| <= sqrt(w00 w11)."""
    if w.ndim == 1:
        return jnp.maximum(w, 0.0)
    a, c = jnp.maximum(w[:, 0, 0], 0.0), jnp.maximum(w[:, 1, 1], 0.0)
    r = jnp.sqrt(a * c)
    b = jnp.clip(w[:, 0, 1], -r, r)
    return jnp.stack([jnp.stack([a, b], -1), jnp.stack([b, c], -1)], -2)


def _grad_u(spec: ModelSpec, data: ModelData, Zl, u, d1):
    lay = spec.layout
    d1s = d1 if isinstance(d1, tuple) else (d1,)
    return tuple(
        blk.sum_levels(lay, b, z * (-d1s[lay.target(b)])[:, None], c) + ub
        for b, (z, c, ub) in enumerate(zip(Zl, data.codes, u))
    )


def _state(spec, data, fixed, Zl, u, prm):
    """f (per group for one grouping factor, else total), grad f and the weights at u."""
    ll, d1, d2 = loglik_terms(spec, data, _eta(spec, data, fixed, Zl, u), prm, eta_only=True)
    if spec.nblocks == 1:
        f = -blk.sum_levels(spec.layout, 0, ll, data.codes[0]) + 0.5 * jnp.sum(u[0] ** 2, axis=1)
    else:
        f = -jnp.sum(ll) + 0.5 * sum(jnp.sum(ub * ub) for ub in u)
    return f, _grad_u(spec, data, Zl, u, d1), -d2


def conditional_mode(spec: ModelSpec, data: ModelData, prm: Params, u0, tol=1e-8, gtol=1e-8):
    """u* = argmin f(u) by safeguarded Newton, starting at u0. Returns (u*, iterations).

    Each iteration factorizes H with the exact weights W; when that H is not positive
    definite (its Cholesky factorization fails) it refactorizes with the clipped weights
    max(W, 0), so the step is always a descent direction. It tries the full step and halves it
    until f does not increase (per group when f separates over the levels of a single grouping factor). f, its gradient
    and W at the accepted point are carried to the next iteration, so an iteration costs
    one factorization and (when the full step is accepted) one evaluation of the
    likelihood. The loop stops before factorizing once |grad f| <= gtol (1 + |u|)
    elementwise -- a warm start at the mode costs no factorization -- or when a step moved
    every u_i by at most tol (1 + |u_i|) (the gradient test can be defeated by rounding for
    huge n).

    The tolerances (1e-8) are set by the objective's gradient, not its value: laplace_nll's
    exact Newton step from the result squares the error of the value, but its derivative of
    log det H is taken at the returned modes, so the gradient's error is of the order of
    the modes' own, and 1e-8 keeps it far below the outer optimizer's gtol (1e-6).
    """
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    fixed = _fixed(spec, data, prm)
    single = spec.nblocks == 1
    # A canonical link without zero-inflation has W = Var(y) / dispersion >= 0, so H is positive
    # definite and the clipped fallback is never needed (under vmap, a fit_batch chunk, the
    # lax.cond below would evaluate both factorizations)
    psd = spec.family.canonical and spec.layout.npred == 1 and not spec.pz
    dt = data.y.dtype
    one = jnp.ones(spec.layout.nlevels[0], dt) if single else jnp.asarray(1.0, dt)

    def small(v, u, t):
        # |v| <= t (1 + |u|) elementwise over every block: one fused reduction per block
        return jnp.all(jnp.stack([jnp.all(jnp.abs(vb) <= t * (1.0 + jnp.abs(ub))) for vb, ub in zip(v, u)]))

    def cond(state):
        _, _, _, _, it, done = state
        return (it < MAX_NEWTON) & ~done

    def body(state):
        u, f0, g, w, it, _ = state
        # the exact Hessian when it is positive definite (fast, quadratic convergence; with
        # zero-inflation or overdispersion many W_i < 0 are usual), else the clipped one
        F = blk.factorize(spec.layout, Zl, data.codes, w)
        if not psd:
            F = jax.lax.cond(jnp.isfinite(blk.logdet(F)), lambda: F,
                             lambda: blk.factorize(spec.layout, Zl, data.codes, _clip_weights(w)))
        step = blk.solve(spec.layout, F, tuple(-gb for gb in g))

        def trial(alpha):
            a = alpha[:, None] if single else alpha
            un = tuple(ub + a * sb for ub, sb in zip(u, step))
            return (un,) + _state(spec, data, fixed, Zl, un, prm)

        def bad(alpha, fn):
            return ~(fn <= f0 + 1e-12 * jnp.abs(f0)) & (alpha > 0)

        # k = 0 evaluates the full step (the placeholder f = inf makes every group "bad");
        # each later pass halves the steps still bad (zeroes them at the last pass).
        # Evaluating only inside the loop traces the likelihood once, for compile time.
        def hcond(s):
            alpha, k, t = s
            return jnp.any(bad(alpha, t[1])) & (k <= MAX_HALVINGS)

        def hbody(s):
            alpha, k, t = s
            b = bad(alpha, t[1]) & (k > 0)
            alpha = jnp.where(b, jnp.where(k == MAX_HALVINGS, 0.0, 0.5 * alpha), alpha)
            return alpha, k + 1, trial(alpha)

        init = (one, 0, (u, jnp.full_like(f0, jnp.inf), g, w))
        alpha, _, (un, fn, gn, wn) = jax.lax.while_loop(hcond, hbody, init)
        a = alpha[:, None] if single else alpha
        done = small(gn, un, gtol) | small([a * sb for sb in step], un, tol)
        return un, fn, gn, wn, it + 1, done

    f0, g0, w0 = _state(spec, data, fixed, Zl, u0, prm)
    init = (tuple(u0), f0, g0, w0, 0, small(g0, u0, gtol))
    u, _, _, _, it, _ = jax.lax.while_loop(cond, body, init)
    return u, it


def _newton_direction(spec, data, fixed, Zl, u, prm):
    """Exact Newton step -H(u)^{-1} grad f(u), differentiable in every argument."""
    _, d1, d2 = loglik_terms(spec, data, _eta(spec, data, fixed, Zl, u), prm, eta_only=True)
    F = blk.factorize(spec.layout, Zl, data.codes, -d2)
    return blk.solve(spec.layout, F, tuple(-gb for gb in _grad_u(spec, data, Zl, u, d1)))


def laplace_nll(spec: ModelSpec, x, data: ModelData, u0, second_order: bool = False):
    """Laplace approximation of the negative log-likelihood at parameters ``x``.

    From the stop-gradient mode û the differentiated function takes the exact Newton step
    u1 = û - H^{-1} grad f(û). For first derivatives H is held constant (stop-gradient):
    at grad f(û) = 0 its derivative multiplies grad f(û) and vanishes, so
    du1/dtheta = -H^{-1} d grad f / dtheta, the implicit-function-theorem derivative, and H
    is factorized without a backward pass. second_order=True differentiates H as well
    and takes two steps, which makes jax.hessian exact.

    Arguments:
        spec: the static model structure.
        x: the flat outer parameter vector.
        data: the model's arrays.
        u0: starting random effects (tuple of (m_b, k_b)); the previous mode warm-starts.
        second_order: take two differentiated Newton steps so that jax.hessian is exact.

    Returns:
        (nll, u*) with u* the conditional mode (not differentiated).
    """
    prm = Params.unpack(spec, x)
    if spec.nblocks == 0:
        # the GLM (a GLMM's start): the log-likelihood alone, without loglik_terms'
        # derivatives in eta (XLA drops them, but only after tracing and lowering them)
        eta = data.X @ prm.beta + data.offset
        zi_eta = data.Xzi @ prm.betazi if spec.pz else None
        return -jnp.sum(_weighted_loglik(spec, data, prm)(eta, zi_eta)), u0
    u_hat, _ = conditional_mode(spec, data, jax.lax.stop_gradient(prm), u0)
    u_hat = jax.lax.stop_gradient(u_hat)
    Ls = cholesky_factors(spec, prm.thetas)
    Zl = scaled_z(data, Ls)
    fixed = _fixed(spec, data, prm)
    u = u_hat
    if second_order:
        for _ in range(2):
            u = tuple(ub + sb for ub, sb in zip(u, _newton_direction(spec, data, fixed, Zl, u, prm)))
    else:
        _, d1, d2 = loglik_terms(spec, data, _eta(spec, data, fixed, Zl, u), prm, eta_only=True)
        sg = jax.lax.stop_gradient
        F = blk.factorize(spec.layout, sg(Zl), data.codes, sg(-d2))
        step = blk.solve(spec.layout, F, tuple(-gb for gb in _grad_u(spec, data, Zl, u, d1)))
        u = tuple(ub + sb for ub, sb in zip(u, step))
    eta = _eta(spec, data, fixed, Zl, u)
    ll, _, d2 = loglik_terms(spec, data, eta, prm, eta_only=True)
    nll = (-jnp.sum(ll) - loglik_rest(spec, data, prm) + 0.5 * sum(jnp.sum(ub * ub) for ub in u)
           + 0.5 * blk.logdet_H(spec.layout, Zl, data.codes, -d2))
    return nll, u_hat


def zero_modes(spec: ModelSpec, dtype):
    return tuple(jnp.zeros((m, k), dtype) for m, k in zip(spec.layout.nlevels, spec.layout.ks))


def start_modes(spec: ModelSpec, data: ModelData, x, eta_start):
    """Starting modes for a new response: the penalized least-squares fit of the working response.

    Newton's iteration for the modes from u = 0 is slow where the data sit far from the
    fixed part of the predictor: with an observation-level effect, each observation's mode
    tracks its own response (grouseticks' (1|INDEX): 8 iterations from 0, with step halving
    where exp(eta) overshoots). Around ``eta_start`` (the link of ``Family.initial_mu``, as
    in a GLM's first iteration) the log-likelihood is replaced by its quadratic expansion in
    eta, and the penalized least-squares problem is solved with the blocked factorization:

        (Lambda' Z' W Z Lambda + I) u = Lambda' Z' (d1 + W (eta_start - fixed)),

    with d1 and W = max(-d2, 0) at eta_start. The result is used when its f is finite and
    below f(0) (else u = 0), so it can only help the safeguarded Newton iteration that
    follows. Models with random effects in the zero-inflation part (two predictors) or a
    zero-inflation model start at 0.
    """
    prm = Params.unpack(spec, x)
    zero = zero_modes(spec, data.y.dtype)
    if spec.nblocks == 0 or spec.layout.npred != 1 or spec.pz:
        return zero
    Zl = scaled_z(data, cholesky_factors(spec, prm.thetas))
    fixed = _fixed(spec, data, prm)
    eta_start = jnp.where(jnp.isfinite(eta_start), eta_start, fixed)
    _, d1, d2 = loglik_terms(spec, data, eta_start, prm, eta_only=True)
    w = jnp.maximum(jnp.where(jnp.isfinite(d2), -d2, 0.0), 0.0)
    r = jnp.where(jnp.isfinite(d1), d1, 0.0) + w * (eta_start - fixed)
    F = blk.factorize(spec.layout, Zl, data.codes, w)
    u = blk.solve(spec.layout, F, tuple(-g for g in _grad_u(spec, data, Zl, zero, r)))

    def f(v):   # the Newton iteration's f (per group for one grouping factor), in total
        return jnp.sum(_state(spec, data, fixed, Zl, v, prm)[0])

    fu = f(u)
    better = jnp.isfinite(fu) & (fu < f(zero))
    return tuple(jnp.where(better, ub, zb) for ub, zb in zip(u, zero))
