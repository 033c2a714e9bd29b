"""No fit reports a wrong answer as a normal result: text responses are refused, converged
means converged (lme4's criterion), degenerate data is flagged, a large response mean does
not change an LMM's fit, batched refits from a singular fit leave the boundary."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import glmmjax as gj
from glmmjax.fit import GRAD_TOL, OptimizerOptions
from sweep.compare import load as load_sweep


@pytest.fixture(scope="module")
def sleep():
    return gj.datasets.load("sleepstudy")


def _quiet(fn, *a, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **kw)


# -- text responses ----------------------------------------------------------------------------
@pytest.mark.parametrize("family", ["gaussian", "poisson"])
def test_a_text_response_is_refused_naming_the_column_and_values(sleep, family):
    d = sleep.assign(Reaction=sleep.Reaction.round().astype(int).astype(str))
    d.loc[[3, 7], "Reaction"] = [".", "n/a"]
    with pytest.raises(ValueError, match=r"the response 'Reaction' is text, not numbers \(values that are not "
                                         r"numbers: '\.', 'n/a'\); the " + family + " family needs a numeric"):
        gj.glmm("Reaction ~ Days + (1|Subject)", d, family=family)


def test_a_factor_response_is_binomial_as_in_r(sleep):
    # R: the first level is failure, every other level success
    d = sleep.assign(slow=np.where(sleep.Reaction > 300, "yes", "no"))
    fit = _quiet(gj.glmm, "slow ~ Days + (1|Subject)", d, family="binomial")
    ref = _quiet(gj.glmm, "y ~ Days + (1|Subject)", d.assign(y=(d.slow == "yes").astype(float)), family="binomial")
    assert fit.loglik == pytest.approx(ref.loglik, rel=1e-12)


# -- converged means converged -----------------------------------------------------------------
def test_a_start_in_a_flat_region_is_not_reported_converged(sleep):
    # from theta = (1e6, 0, 1e6) the REML criterion is flat (|grad| ~ 1e-6, below the optimizer's
    # tolerance), and the Hessian there has a negative direction: not converged, so the fit is
    # restarted from the default start and says so
    with pytest.warns(gj.ConvergenceWarning, match="the fit from the given start= did not converge"):
        fit = gj.glmm("Reaction ~ Days + (Days|Subject)", sleep, start=[1e6, 0, 1e6])
    assert fit.converged and fit.loglik == pytest.approx(-871.8141, abs=1e-4)    # lme4's REML optimum
    model = gj.GLMM("Reaction ~ Days + (Days|Subject)", sleep)
    stuck = model._fit_from(np.array([1e6, 0, 1e6]), OptimizerOptions(), "fd")
    assert not stuck.converged and stuck.loglik < -1300
    assert stuck.convergence.negative            # the saddle's direction is named
    assert "saddle point" in stuck.messages[0]


def test_convergence_is_lme4s_scaled_gradient(sleep):
    fit = _quiet(gj.glmm, "Reaction ~ Days + (Days|Subject)", sleep)
    g = 2 * fit.grad_opt                        # the deviance's gradient in theta
    L = np.linalg.cholesky(2 * fit.hessian_opt)
    s = np.linalg.solve(L, g)
    assert fit.convergence.max_grad == pytest.approx(np.max(np.minimum(np.abs(s), np.abs(g))), rel=1e-6)
    assert fit.convergence.max_grad < GRAD_TOL


# -- degenerate data ---------------------------------------------------------------------------
def _grouped(n=200, m=20, seed=1):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "g": np.repeat(np.arange(m), n // m).astype(str)})


def test_complete_separation_is_named():
    d = _grouped()
    d["y"] = (d.x > 0).astype(float)
    with pytest.warns(gj.DataWarning, match=r"fixed effect\(s\) 'x' have standard errors above 1000"):
        warnings.simplefilter("ignore", gj.SingularFitWarning)
        fit = gj.glmm("y ~ x + (1|g)", d, family="binomial")
    assert any("complete separation" in m for m in fit.messages)


def test_an_all_zero_count_response_is_flagged():
    d = _grouped().assign(y=0.0)
    with pytest.warns(gj.DataWarning, match="the response is 0 on every row"):
        _quiet_except_data(lambda: gj.GLMM("y ~ x + (1|g)", d, family="poisson"))


def _quiet_except_data(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.simplefilter("always", gj.DataWarning)
        return fn()


def test_more_fixed_effects_than_rows_without_random_effects_is_refused():
    d = _grouped(n=6, m=2).assign(y=np.arange(6.0), z=np.arange(6.0) ** 2, w=np.sin(np.arange(6.0)))
    with pytest.raises(ValueError, match="the model has 4 fixed effects and only 4 rows"):
        _quiet(gj.GLMM, "y ~ x + z + w", d.iloc[:4])


@pytest.mark.parametrize("reml, family, loglik", [(False, "gaussian", -992.8398454714987),
                                                   (True, "gaussian", -992.8398454714987),
                                                   (None, "poisson", -602.6331816684)])
def test_no_fixed_effects_is_fitted_as_lme4(sleep, reml, family, loglik):
    # lmer / glmer(Reaction ~ 0 + (1|Subject)) (R 4.2.2, lme4 1.1-31); REML = ML without fixed effects
    response = "Reaction" if family == "gaussian" else "round(Reaction/10)"
    fit = _quiet(gj.glmm, f"{response} ~ 0 + (1|Subject)", sleep, family=family, reml=reml)
    assert fit.loglik == pytest.approx(loglik, abs=1e-6)
    assert len(fit.fixef) == 0 and fit.predict(newdata=sleep.head(2)).shape == (2,)


# -- a large response mean ---------------------------------------------------------------------
STRUCTURES = [
    ("sleep", "Reaction ~ Days + (1|Subject)"),
    ("sleep", "Reaction ~ Days + (Days|Subject)"),
    ("sleep", "Reaction ~ Days + (Days||Subject)"),
    ("sleep", "Reaction ~ Days + (1|Subject) + (0 + Days|Subject)"),
    ("lmm_crossed_ml/small/3", "y ~ x + (1|g) + (1|h)"),
    ("lmm_nested_reml/small/3", "y ~ x + (1|g/h)"),
]


@pytest.mark.parametrize("data, formula", STRUCTURES)
def test_a_large_response_mean_changes_nothing(sleep, data, formula):
    # beta is profiled out: the cross-products are formed from y - X beta_OLS (laplace/_lmm.py)
    d = sleep if data == "sleep" else load_sweep(data).data
    y = formula.split(" ~ ")[0]
    base = _quiet(gj.glmm, formula, d)
    for shift in (1e7, 1e9):
        fit = _quiet(gj.glmm, formula, d.assign(**{y: d[y] + shift}))
        assert fit.converged
        assert fit.sigma == pytest.approx(base.sigma, rel=1e-6)
        np.testing.assert_allclose(fit.varcorr.variance.dropna(), base.varcorr.variance.dropna(), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(fit.fixef.iloc[1:], base.fixef.iloc[1:], rtol=1e-6, atol=1e-9)
        assert fit.fixef.iloc[0] - shift == pytest.approx(base.fixef.iloc[0], rel=1e-6)


# -- batched refits from a singular and a non-singular fit ------------------------------------------
@pytest.mark.parametrize("singular", [True, False])
def test_batched_refits_reach_each_rows_own_optimum(singular):
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(25), 4)
    x = rng.normal(size=g.size)
    e = rng.normal(size=g.size)
    if singular:
        e = e - np.bincount(g, e)[g] / 4          # no variation between groups: a singular fit
    else:
        e = e + rng.normal(0, 1.0, 25)[g]
    d = pd.DataFrame({"x": x, "g": g.astype(str), "y": 1 + 0.5 * x + e})
    model = gj.GLMM("y ~ x + (1|g)", d, reml=False)
    f0 = _quiet(model.fit)
    assert f0.is_singular == singular
    Y = np.stack([1 + 0.5 * x + rng.normal(0, s, 25)[g] + rng.normal(size=g.size) for s in (0.0, 0.3, 1.0, 2.5)])
    batch = _quiet(model.fit_batch, Y, start=f0, strategy="map")
    singles = np.array([_quiet(gj.glmm, "y ~ x + (1|g)", d.assign(y=y), reml=False).loglik for y in Y])
    assert np.all(batch.loglik >= singles - 1e-4)


def test_fit_batch_can_judge_convergence_with_the_hessian(sleep):
    # refits started in the flat region: the gradient alone cannot tell, the Hessian can
    model = gj.GLMM("Reaction ~ Days + (Days|Subject)", sleep)
    Y = _quiet(model.fit).simulate(nsim=2, seed=3)
    start = np.array([1e6, 0.0, 1e6])
    plain = _quiet(model.fit_batch, Y, start=start, strategy="map")
    checked = _quiet(model.fit_batch, Y, start=start, strategy="map", check_hessian=True)
    assert plain.converged.all()                 # |grad| ~ 1e-6: the gradient test passes
    assert not checked.converged.any()           # lme4's criterion: a saddle, not converged
    good = _quiet(model.fit_batch, Y, strategy="map", check_hessian=True)
    assert good.converged.all() and np.all(good.loglik > checked.loglik + 100)
