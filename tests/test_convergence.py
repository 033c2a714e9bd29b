"""Variance parameters at 0 and the convergence criterion (fit/_lbfgs.py, fit/_convergence.py).

The objective is even in each Cholesky diagonal entry, so its gradient there is exactly 0
at 0 whether 0 is a minimum or a maximum: the optimizer must probe such points instead of
reading the zero gradient as convergence, and its first step must not land on 0.
"""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import glmmjax as gj
from glmmjax.fit._asymptote import asymptotes
from glmmjax.fit._convergence import converged
from glmmjax.fit._lbfgs import Boundary, lbfgs
from reference import load_reference

OPTS = dict(gtol=1e-9, ftol=1e-15, maxiter=200, memory=10)


def _even(a):
    """f(x) = a x0^2 / 2 + x0^4 / 4 + (x1 - 1)^2: even in x0; for a < 0 a maximum at
    x0 = 0 and minima at x0 = +-sqrt(-a)."""
    return lambda x, aux: (a * x[0] ** 2 / 2 + x[0] ** 4 / 4 + (x[1] - 1.0) ** 2, aux)


def test_a_zero_gradient_at_a_symmetric_maximum_is_not_convergence():
    x0 = jnp.array([0.0, 0.0])
    plain = lbfgs(_even(-0.25), x0, (), **OPTS)
    assert float(plain.x[0]) == 0.0          # without the probe: stuck where the gradient is 0
    r = lbfgs(_even(-0.25), x0, (), boundary=Boundary((0,), jnp.array([1e-3])), **OPTS)
    assert abs(float(r.x[0])) == pytest.approx(0.5, abs=1e-6)
    assert float(r.value) == pytest.approx(-0.25 ** 2 / 4, abs=1e-12)
    assert bool(r.boundary_checked)


def test_a_minimum_at_zero_is_kept_and_checked():
    r = lbfgs(_even(0.3), jnp.array([0.0, 3.0]), (), boundary=Boundary((0,), jnp.array([1e-3])), **OPTS)
    assert float(r.x[0]) == 0.0
    assert float(r.x[1]) == pytest.approx(1.0, abs=1e-8)
    assert bool(r.boundary_checked)


def test_first_step_stops_half_way_to_the_boundary():
    # from x0 = 1 with a minimum at 0.3: the gradient at 1 is the largest component, so a
    # unit first step along -g (FIRST_STEP in max-norm) would land exactly on 0
    f = _even(-0.09)
    one = lbfgs(f, jnp.array([1.0, 1.0]), (), boundary=Boundary((0,), jnp.array([1e-3])), **dict(OPTS, maxiter=1))
    assert float(one.x[0]) == pytest.approx(0.5, abs=1e-12)
    r = lbfgs(f, jnp.array([1.0, 1.0]), (), boundary=Boundary((0,), jnp.array([1e-3])), **OPTS)
    assert abs(float(r.x[0])) == pytest.approx(0.3, abs=1e-6)


def test_converged_requires_the_boundary_check():
    assert converged(-10.0, 1e-5, True)
    assert not converged(-10.0, 1e-5, False)
    assert not converged(np.nan, 1e-5, True)
    np.testing.assert_array_equal(converged(np.array([1.0, 1.0]), np.array([1e-5, 1e-2]), np.array([True, True])),
                                  [True, False])


def test_lmm_started_at_zero_reaches_lme4():
    # sleepstudy (Days|Subject), ML, from theta = 0: every variance at 0, gradient exactly 0
    ref = load_reference("sleepstudy_lmer_ml_slope")
    data = gj.datasets.load("sleepstudy")
    fit = gj.glmm("Reaction ~ Days + (Days|Subject)", data, reml=False, start=[0.0, 0.0, 0.0])
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 1e-6 * abs(ref["fit_stats"]["logLik"])
    assert fit.converged and not fit.is_singular


def test_glmm_started_at_zero_reaches_glmer():
    ref = load_reference("grouseticks_glmer_pois_loc")
    data = gj.datasets.load("grouseticks")
    model = gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", data, family="poisson")
    fit = model.fit(start={"theta": [0.0]})
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 1e-6 * abs(ref["fit_stats"]["logLik"])
    assert fit.converged and not fit.is_singular


def test_a_zero_inflation_at_its_asymptote_is_named():
    # a Poisson response with no zero-inflation at all: the zi intercept runs to -infinity,
    # where the likelihood levels off; the fit says so
    rng = np.random.default_rng(7)
    g = np.repeat(np.arange(20), 10)
    x = rng.normal(size=g.size)
    import pandas as pd

    data = pd.DataFrame({"x": x, "g": g.astype(str),
                         "y": rng.poisson(np.exp(1.5 + 0.3 * x + rng.normal(0, 0.3, 20)[g]))})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = gj.glmm("y ~ x + (1|g)", data, family="poisson", zi="~1")
    plain = gj.glmm("y ~ x + (1|g)", data, family="poisson")
    assert fit.loglik == pytest.approx(plain.loglik, abs=1e-4)
    msgs = [m for m in fit.messages if "zero-inflation probability tends to 0" in m]
    assert msgs and any("zero-inflation probability tends to 0" in str(w.message) for w in caught)
    assert asymptotes(fit.model, fit.x) == msgs
