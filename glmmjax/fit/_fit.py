"""The fit as one pure, compiled function of (arrays, start) -> estimates.

``fit_arrays`` is jitted with the model spec and optimizer options static, so a second
dataset of the same structure (a bootstrap replicate, a simulated response) reuses the
compiled code; ``fit_batch`` maps it over many responses in one compiled call.
GLMMs start from the GLM fit of the same data (random effects at 0), computed inside the
same compiled function, except for families that opt out (``Family.glm_start``: tweedie
and compois, whose series make each GLM iteration nearly as dear as the mixed model's);
LMMs start at lme4's theta (identity Cholesky factors).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..laplace._glmm import laplace_nll, start_modes, zero_modes
from ..laplace._lmm import crossproducts, lmm_objective, lmm_objective_crossproducts
from ..laplace._spec import ModelData, ModelSpec
from ._optimize import OptimizerOptions, OptResult, minimize

__all__ = ["fit_arrays", "glm_part", "with_glm_part"]


def glm_part(spec: ModelSpec, x):
    """The entries of x that the GLM without random effects has (all but theta)."""
    s = spec.slices()
    return jnp.concatenate([x[s["beta"]], x[s["betad"]], x[s["betazi"]], x[s["extra"]]])


def with_glm_part(spec: ModelSpec, x, g):
    s = spec.slices()
    return jnp.concatenate([g[: spec.p], x[s["theta"]], g[spec.p:]])


def _objective(spec: ModelSpec, data: ModelData):
    if spec.profiled and spec.nblocks == 1 and data.y.dtype == jnp.float64:
        cp = crossproducts(spec, data)     # once per fit, outside the optimizer's loop
        return lambda x, aux: (lmm_objective_crossproducts(spec, x, cp), aux)
    if spec.profiled:
        return lambda x, aux: (lmm_objective(spec, x, data), aux)
    return lambda x, u: laplace_nll(spec, x, data, u)


@partial(jax.jit, static_argnames=("spec", "opts", "glm_start", "hessian"))
def fit_arrays(spec: ModelSpec, opts: OptimizerOptions, data: ModelData, x0, glm_start: bool = True,
               h0=None, hessian: bool = False, eta_start=None) -> OptResult:
    """Fit one dataset. Returns the optimizer result (x, value, grad, modes, iterations, hess).

    ``h0``: optional initial inverse Hessian of the objective at x0 (optimizer coordinates).
    ``hessian``: a GLMM fit also returns the central-difference Hessian at the optimum,
    computed in the optimizer's loop (method "lbfgs"; see _lbfgs.lbfgs).
    ``eta_start``: a GLMM's modes start at the penalized least-squares fit of this working
    response (``start_modes``) instead of 0.
    """
    if spec.profiled:
        return minimize(_objective(spec, data), x0, (), opts, h0)
    if glm_start and spec.nblocks:
        glm = spec.without_random()
        rg = minimize(_objective(glm, data), glm_part(spec, x0), (), opts)
        x0 = with_glm_part(spec, x0, rg.x)
    u0 = zero_modes(spec, x0.dtype) if eta_start is None else start_modes(spec, data, x0, eta_start)
    return minimize(_objective(spec, data), x0, u0, opts, h0, hessian)
