"""A compact L-BFGS with a backtracking (Armijo) line search, written for compile time.

The objective and its gradient are traced exactly once: the first "iteration" evaluates
the start point through the same line-search code as every later trial point. That keeps
the compiled graph of a GLMM fit (whose objective contains the inner Newton solve) a
fraction of the size that optax's zoom line search produces, with the same iterates to
within line-search details. Curvature pairs with s'y <= 0 are skipped, which keeps the
inverse-Hessian approximation positive definite without a Wolfe line search.

Line search: the first trial step is capped at MAX_STEP in max-norm (FIRST_STEP while no
curvature pair is stored, when the direction is the unscaled -g); a rejected step t is
replaced by the minimizer of the quadratic through f, the slope and the trial value, kept
within [0.1 t, 0.5 t] (0.1 t after a non-finite value). The Armijo test allows a few ulps of
rounding in f, so that near the optimum, where f cannot decrease measurably, a step is
accepted (and counted as stalled) instead of backtracking MAX_BACKTRACK times. Each trial
is a full objective evaluation (for a GLMM, an inner Newton solve), so these matter.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["lbfgs"]

C1 = 1e-4          # Armijo constant
MAX_BACKTRACK = 40
MAX_STEP = 10.0    # largest first trial step, in max-norm
FIRST_STEP = 1.0   # the same while no curvature pair is stored (the direction is -g, unscaled)
# Iterations in a row with a relative decrease below ftol before giving up short of gtol.
# Three was too few: a zero-inflated NB with a zi covariate crosses a plateau of the logistic
# zi model (decreases ~1e-10 per iteration) and then descends 0.034 log-likelihood units
# further to glmmTMB's optimum (tests/test_reference_extra.py, zinb2_cov).
MAX_STALL = 10


def _two_loop(g, S, Y, rho, h0=None):
    """H g by the two-loop recursion; S, Y (m, d) with the newest pair last; rho 0 = empty.

    The initial inverse Hessian is h0 (d, d) when given, else the usual scaled identity.
    """
    def back(q, sy):
        s, y, r = sy
        a = r * jnp.dot(s, q)
        return q - a * y, a

    q, alphas = jax.lax.scan(back, g, (S, Y, rho), reverse=True)
    if h0 is None:
        sy, yy = jnp.dot(S[-1], Y[-1]), jnp.dot(Y[-1], Y[-1])
        gamma = jnp.where((rho[-1] > 0) & (yy > 0), sy / jnp.where(yy > 0, yy, 1.0), 1.0)
        r = gamma * q
    else:
        r = h0 @ q

    def fwd(r, sya):
        s, y, rr, a = sya
        b = rr * jnp.dot(y, r)
        return r + s * (a - b), None

    r, _ = jax.lax.scan(fwd, r, (S, Y, rho, alphas))
    return r


def fd_steps(x):
    """Step sizes of the central-difference Hessian at x: 1e-4 max(1, |x_i|) in float64,
    1e-2 max(1, |x_i|) in float32 (the gradient is exact, so the error is O(h^2))."""
    return (1e-4 if x.dtype == jnp.float64 else 1e-2) * jnp.maximum(1.0, jnp.abs(x))


def fd_hessian(G, h):
    """The symmetrized central-difference Hessian from the gradients G (2 d, d) at x + h_i e_i
    (rows 0..d-1) and x - h_i e_i (rows d..2d-1)."""
    d = h.shape[0]
    H = (G[:d] - G[d:2 * d]) / (2.0 * h[:, None])
    return 0.5 * (H + H.T)


def lbfgs(fun, x0, aux0, *, gtol, ftol, maxiter, memory, h0=None, hessian=False):
    """Minimize ``fun(x, aux) -> (value, aux')``; returns (x, f, g, aux, iterations, H).

    ``h0``: an initial inverse-Hessian (d, d), e.g. from a fit of similar data (refits of
    simulated or resampled responses start at the fit, where its Hessian is known); the
    first step is then a Newton step and the updates refine that metric instead of a
    scaled identity.

    ``hessian``: after the optimizer stops, the same loop goes on for 2d evaluations of the
    gradient at x +- h_i e_i (``fd_steps``; aux the final one, i.e. the converged modes) and
    H is their central-difference Hessian (symmetrized); else H is None. Evaluating them in
    the optimizer's own loop keeps the objective's gradient in one compiled program: a
    separate Hessian pass compiles the Laplace gradient a second time.
    """
    vg = jax.value_and_grad(fun, has_aux=True)
    d = x0.shape[0]
    dt = x0.dtype
    m = memory
    inf = jnp.asarray(jnp.inf, dt)

    nh = 2 * d if hessian else 0

    def line_search(x, f, g, aux, direction, t0, first, post):
        slope = jnp.dot(g, direction)
        # Armijo up to rounding: near the optimum f cannot decrease by C1 t slope in floating
        # point, and a strict test would backtrack to MAX_BACKTRACK before giving up.
        slack = 16.0 * jnp.finfo(dt).eps * (1.0 + jnp.abs(f))

        def cond(s):
            t, fn, gn, auxn, k, ok = s
            return ~ok & (k < jnp.where(post, 1, MAX_BACKTRACK))   # a Hessian point: one try

        def body(s):
            t, _, _, _, k, _ = s
            (fn, auxn), gn = vg(x + t * direction, aux)
            fin = jnp.isfinite(fn) & jnp.all(jnp.isfinite(gn))
            ok = fin & (first | (fn <= f + C1 * t * slope + slack))
            # minimizer of the quadratic through f, slope and fn, kept within [0.1 t, 0.5 t]
            curv = fn - f - slope * t
            tq = -slope * t * t / (2.0 * jnp.where(fin & (curv > 0), curv, 1.0))
            tn = jnp.where(fin & (curv > 0), jnp.clip(tq, 0.1 * t, 0.5 * t), jnp.where(fin, 0.5 * t, 0.1 * t))
            return jnp.where(ok, t, tn), fn, gn, auxn, k + 1, ok

        init = (t0, inf, g, aux, jnp.asarray(0), jnp.asarray(False))
        return jax.lax.while_loop(cond, body, init)

    def cond(c):
        x, f, g, aux, S, Y, rho, it, stall, stop, j, G = c
        return (~stop & (it <= maxiter)) | ((stop | (it > maxiter)) & (j < nh))

    def body(c):
        x, f, g, aux, S, Y, rho, it, stall, stop, j, G = c
        post = stop | (it > maxiter)          # the optimizer is done: a Hessian point
        first = it == 0
        direction = jnp.where(first, jnp.zeros_like(g), -_two_loop(g, S, Y, rho, h0))
        descent = jnp.dot(direction, g) < 0
        direction = jnp.where(descent | first, direction, -g)
        nrm = jnp.max(jnp.abs(direction))
        cap = jnp.where(rho[-1] > 0, MAX_STEP, FIRST_STEP) if h0 is None else MAX_STEP
        t0 = jnp.where(nrm > cap, cap / jnp.where(nrm > 0, nrm, 1.0), 1.0)
        if hessian:
            i = j % d
            sign = jnp.where(j < d, 1.0, -1.0).astype(dt)
            step = jnp.zeros_like(x).at[i].set(sign * fd_steps(x)[i])
            direction = jnp.where(post, step, direction)
            t0 = jnp.where(post, 1.0, t0).astype(dt)
        t, fn, gn, auxn, _, ok = line_search(x, f, g, aux, direction, t0, first | post, post)
        if hessian:
            G = jnp.where(post, G.at[jnp.minimum(j, nh - 1)].set(gn), G)
            j = j + post
            ok = ok & ~post                   # the iterate itself stays where it is
        xn = x + t * direction
        s, y = xn - x, gn - g
        sy = jnp.dot(s, y)
        good = ok & ~first & (sy > 1e-10 * jnp.sqrt(jnp.dot(s, s) * jnp.dot(y, y)))
        S = jnp.where(good, jnp.roll(S, -1, axis=0).at[-1].set(s), S)
        Y = jnp.where(good, jnp.roll(Y, -1, axis=0).at[-1].set(y), Y)
        rho = jnp.where(good, jnp.roll(rho, -1).at[-1].set(1.0 / jnp.where(sy != 0, sy, 1.0)), rho)
        small = ok & ~first & (f - fn <= ftol * (1.0 + jnp.abs(fn)))
        stall = jnp.where(small, stall + 1, 0)
        x, f, g, aux = jax.tree.map(lambda a, b: jnp.where(ok, a, b), (xn, fn, gn, auxn), (x, f, g, aux))
        stop = post | ~ok | (jnp.max(jnp.abs(g)) <= gtol) | (stall >= MAX_STALL)
        return x, f, g, aux, S, Y, rho, jnp.where(post, it, it + 1), stall, stop, j, G

    init = (x0, inf, jnp.zeros_like(x0), aux0, jnp.zeros((m, d), dt), jnp.zeros((m, d), dt),
            jnp.zeros((m,), dt), jnp.asarray(0), jnp.asarray(0), jnp.asarray(False), jnp.asarray(0),
            jnp.zeros((nh, d), dt))
    x, f, g, aux, _, _, _, it, _, _, _, G = jax.lax.while_loop(cond, body, init)
    H = fd_hessian(G, fd_steps(x)) if hessian else None
    return x, f, g, aux, jnp.maximum(it - 1, 0), H
