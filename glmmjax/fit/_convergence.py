"""When a fit counts as converged: one criterion for ``fit()``, ``fit_batch`` and the
diagnostics.

A fit is converged when

* its objective is finite;
* max|gradient| <= GRAD_TOL in the optimizer's coordinates (fixed effects as
  beta~ = T^{-1} beta with X T orthonormal up to sqrt(n): a scale-free choice, so that a
  covariate in the hundreds does not make its coefficient's gradient hundreds of times
  larger than the same relative precision warrants); and
* every variance parameter that ended at 0 was checked there (fit/_lbfgs.py): the
  objective is even in a Cholesky diagonal entry, so its gradient at 0 is exactly 0 whether
  0 is a minimum or a maximum, and a zero gradient there is not evidence of convergence.
  The optimizer probes each such coordinate just inside the boundary and goes on when the
  objective falls there; ``boundary_checked`` is False when that check did not finish.
"""
from __future__ import annotations

import numpy as np

__all__ = ["GRAD_TOL", "converged", "nonconvergence_message"]

GRAD_TOL = 1e-3   # max|gradient| of the objective (a negative log-likelihood) at a converged fit


def converged(objective, max_grad, boundary_checked=True):
    """The criterion (module docstring), elementwise over a batch's arrays."""
    ok = np.isfinite(objective) & (np.asarray(max_grad) <= GRAD_TOL) & np.asarray(boundary_checked, bool)
    return bool(ok) if np.ndim(ok) == 0 else ok


def nonconvergence_message(objective, max_grad, boundary_checked=True) -> str:
    """Why a fit is not converged (for a fit that ``converged`` rejects)."""
    if not np.isfinite(objective):
        return "Model failed to converge: the objective is not finite"
    if max_grad > GRAD_TOL:
        return f"Model failed to converge with max|grad| = {max_grad:.3g} (tol = {GRAD_TOL})"
    return ("Model failed to converge: a variance parameter ended at 0 without the check that the "
            "objective rises as it leaves 0 (iteration limit); refit with more iterations or other start values")
