"""Likelihood-ratio tests of nested models against lme4's anova(m0, m1, ...).

R values: tests/fixtures/reference_inference/lrt_*.json, made by make_refs_lrt_r2.R there.
Reference models come from the session's ``reference_fit`` cache; the few models no other
test fits are fitted once per module.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import glmmjax as gj
from glmmjax.inference._lrt import anova

REF = Path(__file__).resolve().parent / "fixtures" / "reference_inference"

# Acceptance: the LRT statistic within 0.01 or 0.1% of R's, whichever is larger. R's own
# optimum can be off by ~3e-3 in logLik (lme4 issues #28, #166); seen here: grouseticks
# (1|LOCATION) 1.2e-3 below glmmjax's, Chisq 2.4e-3 off.
CHISQ_ABS, CHISQ_REL = 0.01, 1e-3
# logLik: glmmjax's optimum is at least as good as R's (down to 1e-6, float noise of the
# optimum) and at most 5e-3 better (R's optimizer tolerance, seen 1.2e-3).
LOGLIK_BELOW, LOGLIK_ABOVE = 1e-6, 5e-3

SLEEP = "Reaction ~ Days + (1|Subject)"
CBPP0 = "cbind(incidence, size - incidence) ~ 1 + (1|herd)"
CBPP_GLM = "cbind(incidence, size - incidence) ~ period"


def load(ref_id: str) -> dict:
    with open(REF / f"lrt_{ref_id}.json") as fh:
        return json.load(fh)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def fits(reference_fit):
    """name -> FitResult of every model the LRTs use."""
    sleep, cbpp = gj.datasets.load("sleepstudy"), gj.datasets.load("cbpp")
    return {
        "sleep_m0": quiet(gj.glmm, SLEEP, sleep),
        "sleep_m1": reference_fit("sleepstudy_lmer_reml_slope")[1],
        "grouse_m0": reference_fit("grouseticks_glmer_pois_loc")[1],
        "grouse_m1": reference_fit("grouseticks_glmer_pois_loc_index")[1],
        "cbpp_m1": reference_fit("cbpp_glmer_binom")[1],
        "cbpp_m0": quiet(gj.glmm, CBPP0, cbpp, family="binomial"),
        "cbpp_glm": quiet(gj.glmm, CBPP_GLM, cbpp, family="binomial"),
    }


# reference id -> the fits in the order R's anova() call gives them (lrt_*.json "anova_call")
CASES = {
    "sleepstudy": ("sleep_m0", "sleep_m1"),
    "grouseticks": ("grouse_m0", "grouse_m1"),
    "cbpp_period": ("cbpp_m0", "cbpp_m1"),
    "cbpp_glm": ("cbpp_m1", "cbpp_glm"),   # anova(glmer, glm): sorted by npar, glm first
}
_tables: dict = {}


def table(ref_id, fits):
    """anova() of a reference case, computed once per module (the REML case refits)."""
    if ref_id not in _tables:
        ref = load(ref_id)
        names = [m["name"] for m in ref["models"]]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tab = anova(*[fits[k] for k in CASES[ref_id]], names=names)
        _tables[ref_id] = (tab, [str(w.message) for w in caught])
    return _tables[ref_id]


@pytest.mark.parametrize("ref_id", list(CASES))
def test_anova_matches_lme4(ref_id, fits):
    ref = load(ref_id)
    R = ref["table"]
    tab, _ = table(ref_id, fits)
    assert list(tab.index) == R["rows"]
    assert list(tab.columns) == ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]
    np.testing.assert_array_equal(tab["npar"].values, R["npar"])
    assert np.isnan(tab["Df"].iloc[0]) and np.isnan(tab["Chisq"].iloc[0]) and np.isnan(tab["Pr(>Chisq)"].iloc[0])
    np.testing.assert_array_equal(tab["Df"].values[1:], R["Df"][1:])

    ll, ll_r = tab["logLik"].values, np.array(R["logLik"])
    assert np.all(ll >= ll_r - LOGLIK_BELOW), ll - ll_r
    assert np.all(ll <= ll_r + LOGLIK_ABOVE), ll - ll_r
    # AIC, BIC and deviance are logLik shifted by R's own constants
    for col, scale in (("AIC", 2.0), ("BIC", 2.0), ("deviance", 2.0)):
        np.testing.assert_allclose(tab[col].values, R[col], rtol=0, atol=scale * LOGLIK_ABOVE)
    np.testing.assert_allclose(tab["deviance"].values, -2 * ll, rtol=1e-14)

    chisq, chisq_r = tab["Chisq"].values[1:], np.array(R["Chisq"][1:], float)
    tol = np.maximum(CHISQ_ABS, CHISQ_REL * chisq_r)
    assert np.all(np.abs(chisq - chisq_r) <= tol), chisq - chisq_r
    # the p-value is R's up to what the Chisq tolerance allows
    df = np.array(R["Df"][1:], float)
    p, p_r = tab["Pr(>Chisq)"].values[1:], np.array(R["p_value"][1:], float)
    np.testing.assert_allclose(p, stats.chi2.sf(chisq, df), rtol=1e-12)
    assert np.all(p_r <= stats.chi2.sf(chisq - tol, df) * (1 + 1e-12))
    assert np.all(p_r >= stats.chi2.sf(chisq + tol, df) * (1 - 1e-12))


def test_reml_fits_are_refitted_by_ml(fits):
    ref = load("sleepstudy")
    tab, messages = table("sleepstudy", fits)
    assert ref["messages"] == ["refitting model(s) with ML (instead of REML)"]
    assert messages == ref["messages"]
    assert tab.attrs["refitted"] == ["m0", "m1"]
    assert tab.attrs["heading"] == ["Models:", f"m0: {SLEEP}", f"m1: {fits['sleep_m1'].model.formula}"]
    # the REML log-likelihoods (as fitted) are not what the table reports
    reml_ll = [m["logLik_as_fitted"] for m in ref["models"]]
    assert abs(fits["sleep_m0"].loglik - reml_ll[0]) < 1e-3    # lme4 REML optimum, seen 1e-6
    assert np.all(np.abs(tab["logLik"].values - reml_ll) > 1.0)
    # the inputs are untouched
    assert fits["sleep_m0"].reml and fits["sleep_m1"].reml


def test_refit_false_uses_reml_loglik(fits):
    ref = load("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tab = anova(fits["sleep_m0"], fits["sleep_m1"], names=["m0", "m1"], refit=False)
    assert tab.attrs["refitted"] == []
    reml_ll = [m["logLik_as_fitted"] for m in ref["models"]]
    # lme4's REML optimum (seen 1e-6; lme4's REML convergence tolerance is ~1e-6 relative)
    np.testing.assert_allclose(tab["logLik"].values, reml_ll, rtol=0, atol=1e-4)


def test_glm_against_glmm_uses_each_loglik(fits):
    """A model without random effects enters with its own GLM log-likelihood (lme4: logLik(glm))."""
    ref = load("cbpp_glm")
    glm_ref = next(m for m in ref["models"] if m["engine"] == "stats")
    assert fits["cbpp_glm"].df == glm_ref["df"] == 4
    # a GLM's ML fit is unique and tightly converged in both: IRLS in R (seen 1e-12)
    assert fits["cbpp_glm"].loglik == pytest.approx(glm_ref["logLik_as_fitted"], abs=1e-6)


def test_default_names_are_formulas(fits):
    tab = anova(fits["cbpp_m1"], fits["cbpp_m0"])
    assert list(tab.index) == [CBPP0, fits["cbpp_m1"].model.formula]
    assert tab.attrs["heading"][1] == CBPP0


def test_duplicate_names_and_zero_df(fits):
    with pytest.warns(UserWarning, match="failed to find model names, assigning generic names"):
        tab = anova(fits["cbpp_m0"], fits["cbpp_m0"])
    assert list(tab.index) == ["MODEL1", "MODEL2"]
    assert tab["Df"].iloc[1] == 0 and tab["Chisq"].iloc[1] == 0.0
    assert np.isnan(tab["Pr(>Chisq)"].iloc[1])   # R: NA when Df == 0


def test_different_dataset_size_is_refused(fits):
    with pytest.raises(ValueError, match="not all fitted to the same size of dataset"):
        anova(fits["sleep_m0"], fits["cbpp_m1"])


def test_different_response_is_refused(fits):
    sleep = gj.datasets.load("sleepstudy")
    other = sleep.assign(Reaction=sleep["Reaction"] * 1.5)
    fit = quiet(gj.glmm, SLEEP, other)      # same structure as sleep_m0: compiled code reused
    with pytest.raises(ValueError, match="not all fitted to the same response"):
        anova(fits["sleep_m0"], fit)


def test_bad_arguments(fits):
    with pytest.raises(ValueError, match="two or more"):
        anova(fits["cbpp_m0"])
    with pytest.raises(TypeError, match="argument 2 is a str, not a fitted model"):
        anova(fits["cbpp_m0"], "cbpp_m1")
    with pytest.raises(ValueError, match="names has 1 entries for 2 models"):
        anova(fits["cbpp_m0"], fits["cbpp_m1"], names=["a"])
