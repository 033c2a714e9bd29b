"""The errors bad input gets when a model is built or fitted: malformed formulas, a
response outside the family's support, grouping factors with one level, more random effects
than observations, missing values, bad options, a non-finite objective."""
from __future__ import annotations

import numpy as np
import pytest

import glmmjax as gj


@pytest.fixture(scope="module")
def sleep():
    return gj.datasets.load("sleepstudy")


@pytest.mark.parametrize("formula, family, message", [
    ("Reaction ~ Dayz + (1|Subject)", "gaussian", "Dayz"),
    ("Reaction ~ Days + (1|Subjekt)", "gaussian", "Subjekt"),
    ("Reaction ~ Days + (1|Subject", "gaussian", "parenthes"),
    ("Reaction ~ Days + (|Subject)", "gaussian", "left-hand side of '\\|'"),
])
def test_formula_errors(sleep, formula, family, message):
    with pytest.raises(ValueError, match=message):
        gj.GLMM(formula, sleep, family)


def test_response_outside_support():
    grouse = gj.datasets.load("grouseticks")
    bad = grouse.assign(TICKS=grouse["TICKS"] - 1)
    with pytest.raises(ValueError, match="negative"):
        gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", bad, "poisson")
    with pytest.raises(ValueError, match="integer"):
        gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", grouse.assign(TICKS=grouse["TICKS"] + 0.5), "nbinom2")
    petrol = gj.datasets.load("petrol")
    with pytest.raises(ValueError, match=r"\(0, 1\)|\(0,1\)"):
        gj.GLMM("Y ~ EP + (1|No)", petrol, "beta")
    with pytest.raises(ValueError, match="positive|> 0|<= 0"):
        gj.GLMM("EP ~ Y + (1|No)", petrol.assign(EP=petrol["EP"] - 300), "Gamma")
    cbpp = gj.datasets.load("cbpp")
    with pytest.raises(ValueError, match="trials|size|exceed|greater"):
        gj.GLMM("cbind(incidence, size - incidence - 30) ~ period + (1|herd)", cbpp, "binomial")


def test_grouping_factor_with_one_level(sleep):
    one = sleep.assign(g="a")
    with pytest.raises(ValueError, match="1 level"):
        gj.GLMM("Reaction ~ Days + (1|g)", one)


def test_too_many_random_effects_for_an_lmm(sleep):
    d = sleep.assign(obs=np.arange(len(sleep)).astype(str))
    with pytest.raises(ValueError, match="number of observations"):
        gj.GLMM("Reaction ~ Days + (1|obs)", d)
    # as lme4, the check is per term, so Exam's (1|school/student) with 4055 levels for 4059 rows fits


def test_missing_values_dropped_with_warning(sleep):
    d = sleep.copy()
    d.loc[[0, 5], "Reaction"] = np.nan
    with pytest.warns(UserWarning, match="2"):
        model = gj.GLMM("Reaction ~ Days + (1|Subject)", d)
    assert model.design.nobs == len(d) - 2


def test_option_errors(sleep):
    grouse = gj.datasets.load("grouseticks")
    with pytest.raises(ValueError, match="REML"):
        gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", grouse, "poisson", reml=True)
    with pytest.raises(ValueError, match="dispersion"):
        gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", grouse, "poisson", disp="~YEAR")
    with pytest.raises(ValueError, match="family"):
        gj.GLMM("Reaction ~ Days + (1|Subject)", sleep, "poison")
    with pytest.raises(TypeError, match="instance"):
        gj.GLMM("Reaction ~ Days + (1|Subject)", sleep, gj.families.Poisson)
    with pytest.raises(ValueError, match="start"):
        gj.GLMM("Reaction ~ Days + (1|Subject)", sleep).fit(start=[1.0, 2.0, 3.0])


def test_non_finite_objective_is_an_error_not_nan():
    grouse = gj.datasets.load("grouseticks")
    model = gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", grouse, "poisson")
    with pytest.raises(FloatingPointError, match="non-finite"):
        model.fit(start=[1e3, 0.0, 0.0, 1.0])


def test_zero_inflation_needs_a_count_family():
    petrol = gj.datasets.load("petrol")
    with pytest.raises(ValueError, match="zero-inflation"):
        gj.GLMM("yield ~ EP + (1|No)", petrol, "beta", zi="~1")
