"""When a fit counts as converged: one criterion for ``fit()``, ``fit_batch`` and the
diagnostics.

lme4's criterion (``checkConv``, check.conv.grad = 0.002), in the optimizer's coordinates
(fixed effects as beta~ = T^{-1} beta with X T orthonormal up to sqrt(n), so that a covariate
in the hundreds does not make its coefficient's gradient hundreds of times larger than the
same relative precision warrants; LMMs: theta) and on the deviance scale (-2 logLik, or the
REML criterion; glmmjax's objective is half of it):

* g and H the deviance's gradient and Hessian at the optimum, the parameters on the
  boundary (a variance parameter at 0, a singular fit) left out of H;
* the scaled gradient s = chol(H)^{-1} g (a Newton step's size in H's metric: free of the
  parameters' scales);
* converged when max_i min(|s_i|, |g_i|) < 0.002, the objective is finite, and every
  variance parameter that ended at 0 was checked there (fit/_lbfgs.py: the objective is
  even in a Cholesky diagonal entry, so its gradient at 0 is exactly 0 whether 0 is a
  minimum or a maximum).

A Hessian that is not positive definite away from the boundary is a stationary point that
is not a minimum when an eigenvalue is clearly negative (below -1e-6 of the largest): not
converged, and the warning names the parameters of that direction. Without a Hessian
(``fit_batch``, where it costs 2 p gradients per dataset) the test is on |g| alone.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["GRAD_TOL", "Convergence", "check_convergence", "converged", "nonconvergence_message"]

GRAD_TOL = 0.002      # lme4's check.conv.grad tolerance, on the deviance's scaled gradient
NEG_EIG = 1e-6        # an eigenvalue below -NEG_EIG x the largest |eigenvalue| is negative


class Convergence(NamedTuple):
    """The criterion's verdict: ``converged``; ``max_grad`` max_i min(|s_i|, |g_i|) on the
    deviance scale; ``negative``: names of the parameters of the Hessian's negative
    directions (empty when it is positive semidefinite away from the boundary)."""

    converged: bool
    max_grad: float
    negative: tuple = ()


def check_convergence(objective, grad, hess=None, boundary=(), boundary_checked=True, names=None) -> Convergence:
    """lme4's criterion (module docstring). ``grad``, ``hess``: of glmmjax's objective (half
    the deviance) in the optimizer's coordinates; ``boundary``: their positions on the
    boundary; ``names``: the parameters' names (for the message)."""
    g = 2.0 * np.asarray(grad, float)
    if not np.isfinite(objective) or not np.all(np.isfinite(g)):
        return Convergence(False, float("inf"))
    if g.size == 0:
        return Convergence(bool(boundary_checked), 0.0)
    free = np.setdiff1d(np.arange(g.size), np.asarray(boundary, int))
    mingrad = np.abs(g)
    negative = ()
    if hess is not None and free.size:
        H = 2.0 * np.asarray(hess, float)[np.ix_(free, free)]
        H = 0.5 * (H + H.T)
        try:
            L = np.linalg.cholesky(H)
            s = np.linalg.solve(L, g[free])
            mingrad = mingrad.copy()
            mingrad[free] = np.minimum(np.abs(s), np.abs(g[free]))
        except np.linalg.LinAlgError:
            lam, V = np.linalg.eigh(H) if np.all(np.isfinite(H)) else (np.array([np.nan]), None)
            top = np.max(np.abs(lam)) if np.all(np.isfinite(lam)) else np.nan
            if V is not None and np.isfinite(top) and lam[0] < -NEG_EIG * top:
                v = np.abs(V[:, 0])        # the most negative direction: its leading parameters
                lead = free[(v > 0.3) | (v == v.max())]
                negative = tuple(str(names[i]) if names is not None else str(i) for i in lead)
    mg = float(np.max(mingrad))
    return Convergence(bool(mg < GRAD_TOL and boundary_checked and not negative), mg, negative)


def converged(objective, max_grad, boundary_checked=True):
    """The gradient-only form of the criterion, elementwise over a batch's arrays:
    ``max_grad`` max|g| of the objective in the optimizer's coordinates (fit_batch)."""
    ok = (np.isfinite(objective) & (2.0 * np.asarray(max_grad) < GRAD_TOL)
          & np.asarray(boundary_checked, bool))
    return bool(ok) if np.ndim(ok) == 0 else ok


def nonconvergence_message(objective, conv: Convergence, boundary_checked=True) -> str:
    """Why a fit is not converged (for a fit that the criterion rejects)."""
    if not np.isfinite(objective):
        return "Model failed to converge: the objective is not finite"
    if conv.negative:
        return ("Model failed to converge: the Hessian has a negative eigenvalue (a saddle point, not a minimum) "
                f"along {', '.join(conv.negative)}; refit with other start values")
    if conv.max_grad >= GRAD_TOL:
        return f"Model failed to converge with max|grad| = {conv.max_grad:.3g} (tol = {GRAD_TOL}, component 1)"
    return ("Model failed to converge: a variance parameter ended at 0 without the check that the "
            "objective rises as it leaves 0 (iteration limit); refit with more iterations or other start values")
