"""The objective: the Laplace-approximated negative log-likelihood of a GLMM and the exact
profiled deviance of an LMM, both over the blocked factorization of H = Lambda'Z'WZ Lambda + I.

    _glmm.py     conditional modes (safeguarded Newton), Laplace value, implicit derivatives
    _lmm.py      penalized least squares, the (RE)ML deviance in every form (profiled, sigma
                 explicit, from cross-products), its Hessian in (theta, log sigma)
    _blocked.py  the blocked Cholesky factorization (largest factor block-diagonal, Schur
                 complement onto the rest; nested and observation-level forms)
    _smallk.py   k x k Cholesky and triangular solves unrolled for small k
"""
from ._blocked import Factor, factorize, inverse_diag_blocks, logdet, logdet_H, solve, solve_lower, solve_upper
from ._glmm import conditional_mode, laplace_nll, loglik_terms, predictors, start_modes, zero_modes
from ._lmm import (
    CrossProducts,
    LmmSolution,
    SigmaDeviance,
    crossproducts,
    deviance,
    deviance_at_sigma,
    hessian_theta_log_sigma,
    lmm_objective,
    lmm_objective_crossproducts,
    lmm_solution,
    solution_deviance,
)

__all__ = [
    "laplace_nll", "conditional_mode", "loglik_terms", "predictors", "start_modes", "zero_modes",
    "LmmSolution", "SigmaDeviance", "CrossProducts", "lmm_solution", "deviance", "solution_deviance",
    "lmm_objective", "deviance_at_sigma", "hessian_theta_log_sigma", "crossproducts", "lmm_objective_crossproducts",
    "Factor", "factorize", "logdet", "logdet_H", "solve", "solve_lower", "solve_upper", "inverse_diag_blocks",
]
