"""The errors bad input gets when a model is built or fitted: malformed formulas, a
response outside the family's support, grouping factors with one level, more random effects
than observations, missing values, bad options, a non-finite objective."""
from __future__ import annotations

import contextlib
import io
import os
import warnings

import numpy as np
import pandas as pd
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


# -- inputs that once failed inside JAX, pandas or patsy: each gets a message naming the problem --
def test_a_formula_of_a_thousand_terms():
    rng = np.random.default_rng(0)
    d = pd.DataFrame(rng.normal(size=(40, 1000)), columns=[f"x{i}" for i in range(1000)]).assign(y=rng.normal(size=40))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gj.DataWarning)      # 961 aliased columns dropped
        with pytest.raises(ValueError, match="the model has 40 fixed effects and only 40 rows"):
            gj.GLMM("y ~ " + " + ".join(f"x{i}" for i in range(1000)), d)


@pytest.mark.parametrize("convert, message", [
    (lambda s: pd.to_datetime("2020-01-01") + pd.to_timedelta(s, "D"), r"holds dates and times \(datetime64"),
    (lambda s: (pd.to_datetime("2020-01-01") + pd.to_timedelta(s, "D")).dt.tz_localize("UTC"),
     r"holds dates and times \(datetime64\[.*UTC\]\)"),
    (lambda s: pd.to_timedelta(s, "D"), r"holds time differences \(timedelta64"),
    (lambda s: s.astype(object), r"holds numbers stored as Python objects \(dtype object\)"),
])
def test_columns_a_formula_cannot_take(sleep, convert, message):
    with pytest.raises(ValueError, match="column 'Days' " + message):
        gj.glmm("Reaction ~ Days + (1|Subject)", sleep.assign(Days=convert(sleep.Days)))


def test_an_infinite_predictor_in_a_glmm():
    g = gj.datasets.load("grouseticks")
    with pytest.raises(ValueError, match=r"the fixed-effects model matrix has non-finite values \(inf or NaN\) in "
                                         r"'log\(HEIGHT - 403\)' \(\d+ rows\)"):
        gj.glmm("TICKS ~ log(HEIGHT - 403) + (1|LOCATION)", g, family="poisson")


@pytest.mark.parametrize("kw", [{"disp": "~ Days", "reml": False}, {"zi": "~ Days", "family": "poisson"}])
def test_a_repeated_index_fits_as_a_unique_one(sleep, kw):
    d = sleep.assign(Reaction=np.round(sleep.Reaction / 25) * (sleep.Days > 1)) if "zi" in kw else sleep
    repeated = d.set_axis(np.repeat(np.arange(len(d) // 2), 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = gj.glmm("Reaction ~ Days + (1|Subject)", d, **kw)
        b = gj.glmm("Reaction ~ Days + (1|Subject)", repeated, **kw)
    assert b.loglik == pytest.approx(a.loglik, rel=1e-12)


@pytest.mark.parametrize("kind", ["directory", "fifo", "device"])
def test_data_that_is_not_a_regular_file(tmp_path, kind):
    from glmmjax import cli

    path = {"directory": str(tmp_path), "device": "/dev/zero"}.get(kind)
    if kind == "fifo":
        path = str(tmp_path / "pipe")
        os.mkfifo(path)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        code = cli.main(["fit", "--data", path, "y ~ x + (1|g)"])
    assert code != 0
    assert f"--data {path}: not a regular file" in err.getvalue()


def test_non_integer_binomial_responses_warn_as_r():
    d = gj.datasets.load("cbpp")
    with pytest.warns(gj.DataWarning, match="non-integer #successes in a binomial glm!"):
        gj.GLMM("y ~ period + (1|herd)", d.assign(y=(d.incidence > 0) * 0.5), family="binomial")
    with pytest.warns(gj.DataWarning, match="non-integer #successes in a binomial glm!"):
        gj.GLMM("cbind(incidence + 0.5, size - incidence) ~ period + (1|herd)", d, family="binomial")
