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

Boundaries. A variance parameter of a random-effect covariance is a diagonal entry of its
Cholesky factor, left unconstrained: the objective is even in it (in its column of L), so at
0 (a singular fit) its gradient is exactly 0 whether 0 is the minimum or a maximum along
that coordinate. A zero gradient there is not convergence. The caller names these
coordinates (``Boundary``) and:

* the first step, taken without curvature information, moves each of them at most half
  the way to 0 (from lme4's start theta = 1, a unit step along -g lands exactly on 0
  whenever theta's gradient is the largest, and the fit stopped there);
* when the optimizer would stop with one of them within half its probe step of 0, that
  coordinate is probed: one evaluation at |x_i| = step_i (the others unchanged), which is
  lme4's check just inside the boundary. If the objective is lower there (or level within
  rounding and still falling outward) the point was not a minimum: the iteration goes on
  from the probe; otherwise the next such coordinate is probed, and the fit stops when
  none is left. For an even objective f(x_i) ~ f(0) + a x_i^2 / 2 + b x_i^4 / 4 with an
  optimum at x*, the probe finds the descent when x* > step_i / sqrt(2); below that the
  loss of staying at 0, |a| x*^2 / 4, is below |a| step_i^2 / 8.

``LbfgsResult.boundary_checked`` says whether every boundary coordinate at 0 was probed at
the final point (False only when MAX_ESCAPES probes succeeded, or at maxiter).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["Boundary", "LbfgsResult", "lbfgs", "fd_steps", "fd_hessian"]

C1 = 1e-4          # Armijo constant
MAX_BACKTRACK = 40
MAX_STEP = 10.0    # largest first trial step, in max-norm
FIRST_STEP = 1.0   # the same while no curvature pair is stored (the direction is -g, unscaled)
# Iterations in a row with a relative decrease below ftol before giving up short of gtol.
# Three was too few: a zero-inflated NB with a zi covariate crosses a plateau of the logistic
# zi model (decreases ~1e-10 per iteration) and then descends 0.034 log-likelihood units
# further to glmmTMB's optimum (tests/test_reference_zi_disp_families.py, zinb2_cov).
MAX_STALL = 10
MAX_ESCAPES = 8    # successful probes off the boundary per fit (each one a real decrease)


class Boundary(NamedTuple):
    """Coordinates at which the objective is even (variance parameters, see the module
    docstring): ``index`` (static ints) and ``step``, the distance of each one's probe."""

    index: tuple
    step: jax.Array


class LbfgsResult(NamedTuple):
    x: jax.Array
    value: jax.Array
    grad: jax.Array
    aux: object
    iterations: jax.Array
    hess: jax.Array | None
    boundary_checked: jax.Array


class _State(NamedTuple):
    x: jax.Array
    f: jax.Array
    g: jax.Array
    aux: object
    S: jax.Array
    Y: jax.Array
    rho: jax.Array
    it: jax.Array
    stall: jax.Array
    stop: jax.Array
    j: jax.Array            # Hessian points done
    G: jax.Array            # their gradients
    probe: jax.Array        # the boundary coordinate (position in Boundary.index) to probe next, or -1
    next: jax.Array         # boundary coordinates from this position on are still to be probed
    escapes: jax.Array      # probes that found the objective falling


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


def lbfgs(fun, x0, aux0, *, gtol, ftol, maxiter, memory, h0=None, hessian=False, boundary=None):
    """Minimize ``fun(x, aux) -> (value, aux')``; returns an ``LbfgsResult``.

    ``h0``: an initial inverse-Hessian (d, d), e.g. from a fit of similar data (refits of
    simulated or resampled responses start at the fit, where its Hessian is known); the
    first step is then a Newton step and the updates refine that metric instead of a
    scaled identity.

    ``hessian``: after the optimizer stops, the same loop goes on for 2d evaluations of the
    gradient at x +- h_i e_i (``fd_steps``; aux the final one, i.e. the converged modes) and
    H is their central-difference Hessian (symmetrized); else H is None. Evaluating them in
    the optimizer's own loop keeps the objective's gradient in one compiled program: a
    separate Hessian pass compiles the Laplace gradient a second time.

    ``boundary``: a ``Boundary`` (coordinates where the objective is even, and their probe
    steps); see the module docstring. None: no coordinate is treated as a boundary.
    """
    vg = jax.value_and_grad(fun, has_aux=True)
    d = x0.shape[0]
    dt = x0.dtype
    m = memory
    inf = jnp.asarray(jnp.inf, dt)
    nh = 2 * d if hessian else 0
    if boundary is None or len(boundary.index) == 0:
        bidx, bstep = np.zeros(0, np.int32), jnp.zeros(0, dt)
    else:
        bidx, bstep = np.asarray(boundary.index, np.int32), jnp.asarray(boundary.step, dt)
    nb = bidx.shape[0]

    def at_boundary(x):
        """(nb,) which boundary coordinates are within half a probe step of 0."""
        return jnp.abs(x[bidx]) < 0.5 * bstep

    def line_search(x, f, g, aux, direction, t0, first, single, probe):
        slope = jnp.dot(g, direction)
        # Armijo up to rounding: near the optimum f cannot decrease by C1 t slope in floating
        # point, and a strict test would backtrack to MAX_BACKTRACK before giving up.
        slack = 16.0 * jnp.finfo(dt).eps * (1.0 + jnp.abs(f))

        def cond(s):
            t, fn, gn, auxn, k, ok = s
            return ~ok & (k < jnp.where(single, 1, MAX_BACKTRACK))   # a probe or Hessian point: one try

        def body(s):
            t, _, _, _, k, _ = s
            (fn, auxn), gn = vg(x + t * direction, aux)
            fin = jnp.isfinite(fn) & jnp.all(jnp.isfinite(gn))
            armijo = fn <= f + C1 * t * slope + slack
            # a probe off the boundary: the objective lower there, or level within rounding
            # and still falling in the probe's direction
            falls = (fn < f) | ((fn <= f + slack) & (jnp.dot(gn, direction) < 0))
            ok = fin & (first | jnp.where(probe, falls, armijo))
            # minimizer of the quadratic through f, slope and fn, kept within [0.1 t, 0.5 t]
            curv = fn - f - slope * t
            tq = -slope * t * t / (2.0 * jnp.where(fin & (curv > 0), curv, 1.0))
            tn = jnp.where(fin & (curv > 0), jnp.clip(tq, 0.1 * t, 0.5 * t), jnp.where(fin, 0.5 * t, 0.1 * t))
            return jnp.where(ok, t, tn), fn, gn, auxn, k + 1, ok

        init = (t0, inf, g, aux, jnp.asarray(0), jnp.asarray(False))
        return jax.lax.while_loop(cond, body, init)

    def first_step(x, direction, nrm):
        """The first trial step without curvature information: at most FIRST_STEP in
        max-norm, and at most half the way to 0 for a boundary coordinate moving towards it
        (a full step would land some coordinates exactly on 0, a stationary point)."""
        t = jnp.where(nrm > FIRST_STEP, FIRST_STEP / jnp.where(nrm > 0, nrm, 1.0), 1.0)
        if nb:
            xb, db = x[bidx], direction[bidx]
            towards = (xb * db < 0) & ~at_boundary(x)
            reach = jnp.where(towards, 0.5 * jnp.abs(xb) / jnp.where(towards, jnp.abs(db), 1.0), jnp.inf)
            t = jnp.minimum(t, jnp.min(reach))
        return t

    def cond(c):
        return (~c.stop & (c.it <= maxiter)) | ((c.stop | (c.it > maxiter)) & (c.j < nh))

    def body(c):
        x, f, g, aux, S, Y, rho, it, stall = c.x, c.f, c.g, c.aux, c.S, c.Y, c.rho, c.it, c.stall
        post = c.stop | (it > maxiter)        # the optimizer is done: a Hessian point
        probe = ~post & (c.probe >= 0)        # a step off the boundary (module docstring)
        first = it == 0
        direction = jnp.where(first, jnp.zeros_like(g), -_two_loop(g, S, Y, rho, h0))
        descent = jnp.dot(direction, g) < 0
        direction = jnp.where(descent | first, direction, -g)
        nrm = jnp.max(jnp.abs(direction))
        capped = jnp.where(nrm > MAX_STEP, MAX_STEP / jnp.where(nrm > 0, nrm, 1.0), 1.0)
        t0 = capped if h0 is not None else jnp.where(rho[-1] > 0, capped, first_step(x, direction, nrm))
        if nb:
            k = jnp.maximum(c.probe, 0)
            b = jnp.asarray(bidx)[k]
            to = jnp.where(x[b] < 0, -bstep[k], bstep[k])
            direction = jnp.where(probe, jnp.zeros_like(x).at[b].set(to - x[b]), direction)
            t0 = jnp.where(probe, 1.0, t0).astype(dt)
        G, j = c.G, c.j
        if hessian:
            i = j % d
            sign = jnp.where(j < d, 1.0, -1.0).astype(dt)
            step = jnp.zeros_like(x).at[i].set(sign * fd_steps(x)[i])
            direction = jnp.where(post, step, direction)
            t0 = jnp.where(post, 1.0, t0).astype(dt)
        t, fn, gn, auxn, _, ok = line_search(x, f, g, aux, direction, t0, first | post, post | probe, probe)
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
        small = ok & ~first & ~probe & (f - fn <= ftol * (1.0 + jnp.abs(fn)))
        stall = jnp.where(small, stall + 1, 0)
        x, f, g, aux = jax.tree.map(lambda a, b: jnp.where(ok, a, b), (xn, fn, gn, auxn), (x, f, g, aux))
        done = ~ok | (jnp.max(jnp.abs(g)) <= gtol) | (stall >= MAX_STALL)
        done = jnp.where(probe & ~ok, True, done)     # a rejected probe: this point stands
        # the next boundary coordinate to probe: after a rejected probe the ones after it,
        # after any step taken all of them again
        start = jnp.where(probe & ~ok, c.probe + 1, jnp.where(ok, 0, c.next))
        escapes = c.escapes + (probe & ok)
        if nb:
            cand = at_boundary(x) & (jnp.arange(nb) >= start)
            more = done & ~post & jnp.isfinite(f) & jnp.any(cand) & (escapes < MAX_ESCAPES)
            nxt = jnp.where(more, jnp.argmax(cand), -1)
        else:
            more, nxt = jnp.asarray(False), jnp.asarray(-1)
        stop = post | (done & ~more)
        return _State(x, f, g, aux, S, Y, rho, jnp.where(post, it, it + 1), stall, stop, j, G, nxt, start, escapes)

    zi = jnp.asarray(0)
    init = _State(x0, inf, jnp.zeros_like(x0), aux0, jnp.zeros((m, d), dt), jnp.zeros((m, d), dt),
                  jnp.zeros((m,), dt), zi, zi, jnp.asarray(False), zi, jnp.zeros((nh, d), dt),
                  jnp.asarray(-1), zi, zi)
    c = jax.lax.while_loop(cond, body, init)
    H = fd_hessian(c.G, fd_steps(c.x)) if hessian else None
    # every boundary coordinate at 0 was probed at the final point (none is left unchecked)
    checked = ~jnp.any(at_boundary(c.x) & (jnp.arange(nb) >= c.next)) if nb else jnp.asarray(True)
    return LbfgsResult(c.x, c.f, c.g, c.aux, jnp.maximum(c.it - 1, 0), H, checked)
