"""Fitting: the outer optimizer, the compiled fit and its post-fit pass, convergence, batches.

    _lbfgs.py        glmmjax's L-BFGS (boundary probes for variance parameters at 0)
    _optimize.py     the optimizers behind ``method=`` (OptimizerOptions, minimize)
    _fit.py          fit_arrays: one dataset, one compiled call (GLM start, boundaries)
    _post.py         the post-fit pass (Hessian, modes, conditional variances) and fit_and_post
    _convergence.py  when a fit counts as converged
    _asymptote.py    parameters that run to an asymptote, and the restarts
    _batch.py        fit_batch: many responses of one design in one compiled computation
"""
from ._asymptote import asymptotes, restart_points
from ._batch import BatchFit, fit_batch, usable_cpus
from ._convergence import (
    GRAD_TOL,
    Convergence,
    check_convergence,
    converged,
    nonconvergence_message,
)
from ._fit import fit_arrays
from ._lbfgs import Boundary, fd_hessian, fd_steps
from ._optimize import OptimizerOptions, OptResult, minimize
from ._post import HESSIANS, fit_and_post, glmm_post, lmm_post

__all__ = [
    "OptimizerOptions", "OptResult", "minimize", "Boundary", "fd_hessian", "fd_steps", "fit_arrays",
    "HESSIANS", "fit_and_post", "glmm_post", "lmm_post",
    "GRAD_TOL", "Convergence", "check_convergence", "converged", "nonconvergence_message",
    "asymptotes", "restart_points", "BatchFit", "fit_batch", "usable_cpus",
]
