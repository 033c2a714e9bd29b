"""The fit as one pure, compiled function of (arrays, start) -> estimates.

``fit_arrays`` is jitted with the model spec and optimizer options static, so a second
dataset of the same structure (a bootstrap replicate, a simulated response) reuses the
compiled code; ``fit_batch`` maps it over many responses in one compiled call.
GLMMs start from the GLM fit of the same data (random effects at 0, and no zero-inflation
model unless it is a hurdle: ``glm_start_spec``), computed inside the same compiled
function, except for families that opt out (``Family.glm_start``: tweedie and compois,
whose series make each GLM iteration nearly as dear as the mixed model's); LMMs start at
lme4's theta (identity Cholesky factors). Every fit names its variance parameters to the
optimizer (``boundary``), which checks them where they end at 0 (fit/_lbfgs.py).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from ..laplace import crossproducts, laplace_nll, lmm_objective, lmm_objective_crossproducts, start_modes, zero_modes
from ..spec import ModelData, ModelSpec
from ._lbfgs import Boundary
from ._optimize import OptimizerOptions, OptResult, minimize

__all__ = ["fit_arrays", "glm_start_spec", "glm_part", "with_glm_part", "boundary"]


def glm_start_spec(spec: ModelSpec) -> ModelSpec:
    """The GLM whose fit starts a GLMM: the model without random effects and, unless the
    family's zeros need it (a hurdle, whose zero model is fitted from the zeros alone), without
    its zero-inflation model.

    Without random effects the GLM explains zeros that cluster in groups by zero-inflation
    (or, for NB2, by a large dispersion, sending the zi intercept towards -infinity): from
    that start the mixed model stayed in the wrong basin, with logLik up to 19 units below
    glmmTMB's optimum on the correctness sweep (tests/sweep: zip_int, zinb2_int). The
    zero-inflation model starts at its own default instead (GLMM.start).
    """
    return spec.without_random(zi=spec.family.zeros_need_zi)


def glm_part(spec: ModelSpec, x):
    """The entries of x that the starting GLM (``glm_start_spec``) has."""
    s = spec.slices()
    zi = [x[s["betazi"]]] if spec.family.zeros_need_zi else []
    return jnp.concatenate([x[s["beta"]], x[s["betad"]], *zi, x[s["extra"]]])


def with_glm_part(spec: ModelSpec, x, g):
    """x with the starting GLM's estimates ``g`` in place (theta, and the zero-inflation
    model unless the GLM has it, from x)."""
    s = spec.slices()
    p, pd = spec.p, spec.pd
    zi = x[s["betazi"]] if not spec.family.zeros_need_zi else g[p + pd: p + pd + spec.pz]
    return jnp.concatenate([g[:p], x[s["theta"]], g[p: p + pd], zi, g[len(g) - spec.n_extra:]])


def boundary(spec: ModelSpec, x0) -> Boundary:
    """The variance parameters and their probe steps (fit/_lbfgs.py): 1e-3 max(1, |x0_i|) in
    float64, 3e-2 max(1, |x0_i|) in float32, where the objective's change over a step,
    ~ a step^2 / 2, must stand above its rounding."""
    idx = spec.variance_coordinates()
    scale = 1e-3 if x0.dtype == jnp.float64 else 3e-2
    return Boundary(idx, scale * jnp.maximum(1.0, jnp.abs(x0[jnp.asarray(idx, jnp.int32)])))


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
    ``hessian``: the fit also returns the central-difference Hessian at the optimum,
    computed in the optimizer's loop (method "lbfgs"; see _lbfgs.lbfgs).
    ``eta_start``: a GLMM's modes start at the penalized least-squares fit of this working
    response (``start_modes``) instead of 0.
    """
    bound = boundary(spec, x0)
    if spec.profiled:
        return minimize(_objective(spec, data), x0, (), opts, h0, hessian, boundary=bound)
    if glm_start and spec.nblocks and glm_start_spec(spec).n_params:
        glm = glm_start_spec(spec)
        rg = minimize(_objective(glm, data), glm_part(spec, x0), (), opts)
        x0 = with_glm_part(spec, x0, rg.x)
    u0 = zero_modes(spec, x0.dtype) if eta_start is None else start_modes(spec, data, x0, eta_start)
    return minimize(_objective(spec, data), x0, u0, opts, h0, hessian, boundary=bound)
