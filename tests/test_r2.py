"""Nakagawa R² against performance::r2_nakagawa 0.10.2 (insight 0.19.0's get_variance).

R values: tests/fixtures/reference_inference/r2_*.json, made by make_refs_lrt_r2.R there.
Reference models come from the session's ``reference_fit`` cache; the models no other test
fits are fitted once per module, and each R² (with its null-model refit) is computed once.
"""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import glmmjax as gj
from glmmjax.inference._r2 import null_formula, r2_nakagawa

REF = Path(__file__).resolve().parent / "fixtures" / "reference_inference"

# Acceptance: R² within 1e-3 of R's. Against the R engine glmmjax's Laplace matches
# (glmmTMB; lme4 for LMMs) the differences seen are at most 5.3e-6 (grouseticks) ...
R2_TOL = 1e-3
# ... and the variance components agree to 2.7e-5 relative (grouseticks var_random; the
# optimum's tolerance, and R's null-model intercept off by 4e-6): 1e-4 relative.
COMPONENT_RTOL = 1e-4
# The null model's intercept (glmmTMB's null fit): seen 3.8e-6.
NULL_INTERCEPT_TOL = 1e-4

CBPP = "cbind(incidence, size - incidence) ~ period + (1|herd)"
COMPONENTS = {"var_fixed": "var.fixed", "var_random": "var.random", "var_residual": "var.residual",
              "var_distribution": "var.distribution", "var_dispersion": "var.dispersion"}


def load(ref_id: str) -> dict:
    with open(REF / f"r2_{ref_id}.json") as fh:
        return json.load(fh)


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


# R reference -> (how glmmjax gets the fit, whether it is the R engine glmmjax's estimates match)
CASES = {
    "sleepstudy_slope": ("ref:sleepstudy_lmer_reml_slope", True),
    "sleepstudy_int": ("sleep_int", True),
    "cbpp_tmb": ("ref:cbpp_glmer_binom", True),
    "cbpp_glmer": ("ref:cbpp_glmer_binom", False),      # glmer's Laplace optimum differs slightly
    "cbpp_tmb_probit": ("cbpp_probit", True),
    "grouseticks_tmb": ("ref:grouseticks_glmer_pois_loc_index", True),
    "grouseticks_glmer": ("ref:grouseticks_glmer_pois_loc_index", False),  # R's null glmer did not converge
    "arabidopsis_nb2": ("ref:arabidopsis_tmb_nb2", True),
    "arabidopsis_lmer_singular": ("ref:arabidopsis_lmer_reml", True),
}


@pytest.fixture(scope="module")
def get_r2(reference_fit):
    """source -> (fit, R² Series, warning messages), computed once per source."""
    cache: dict = {}

    def fit_of(source):
        if source.startswith("ref:"):
            return reference_fit(source[4:])[1]
        if source == "sleep_int":
            return quiet(gj.glmm, "Reaction ~ Days + (1|Subject)", gj.datasets.load("sleepstudy"))
        if source == "cbpp_probit":
            return quiet(gj.glmm, CBPP, gj.datasets.load("cbpp"), family=gj.families.Binomial(link="probit"))
        raise KeyError(source)

    def get(source):
        if source not in cache:
            fit = fit_of(source)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = r2_nakagawa(fit)
            cache[source] = (fit, out, [str(w.message) for w in caught])
        return cache[source]

    return get


@pytest.mark.parametrize("ref_id", list(CASES))
def test_r2_matches_performance(ref_id, get_r2):
    ref = load(ref_id)
    source, same_engine = CASES[ref_id]
    _, out, _ = get_r2(source)
    for key in ("R2_conditional", "R2_marginal"):
        if ref["r2"][key] is None:      # R: NA
            assert math.isnan(out[key])
        else:
            assert out[key] == pytest.approx(ref["r2"][key], abs=R2_TOL)
    if not same_engine:
        return
    for ours, theirs in COMPONENTS.items():
        val = ref["variance"][theirs]
        if val is None:                 # insight leaves var.random out of singular fits
            assert math.isnan(out[ours])
        else:
            assert out[ours] == pytest.approx(val, rel=COMPONENT_RTOL, abs=1e-12)
    for key in ("R2_conditional", "R2_marginal"):
        if ref["r2"][key] is not None:
            assert out[key] == pytest.approx(ref["r2"][key], rel=COMPONENT_RTOL)
    assert out.attrs["singular"] == ref["singular"]


@pytest.mark.parametrize("ref_id", ["grouseticks_tmb", "arabidopsis_nb2"])
def test_null_model_for_lognormal_variance(ref_id, get_r2):
    """Log-link count families refit the null model y ~ (random-effect terms) for mu."""
    ref = load(ref_id)
    fit, out, messages = get_r2(CASES[ref_id][0])
    assert out.attrs["null_formula"].replace(" ", "") == ref["null_model"]["formula"].replace(" ", "")
    assert out.attrs["null_intercept"] == pytest.approx(ref["null_model"]["intercept"], abs=NULL_INTERCEPT_TOL)
    mu = math.exp(out.attrs["null_intercept"])
    theta = fit.dispersion_parameters.get("theta", math.inf)
    assert out["var_distribution"] == pytest.approx(math.log1p(1 / mu + 1 / theta), rel=1e-12)
    # insight warns when mu < 6 (grouseticks: mu = 1.5)
    assert any("too close to zero" in m for m in messages) == (mu < 6)


def test_observation_level_effect_goes_to_the_residual(get_r2):
    """grouseticks (1|INDEX) has one level per row: its variance is var_dispersion."""
    fit, out, _ = get_r2(CASES["grouseticks_tmb"][0])
    var_index = fit.covariances[[b.group for b in fit.model.blocks].index("INDEX")][0, 0]
    var_loc = fit.covariances[[b.group for b in fit.model.blocks].index("LOCATION")][0, 0]
    assert out["var_dispersion"] == pytest.approx(var_index, rel=1e-12)
    assert out["var_random"] == pytest.approx(var_loc, rel=1e-12)
    assert out["var_residual"] == pytest.approx(out["var_distribution"] + var_index, rel=1e-12)


def test_random_slope_variance_uses_the_design(get_r2):
    """(Days|Subject): var_random = mean over rows of z' Sigma z, z = (1, Days)."""
    fit, out, _ = get_r2(CASES["sleepstudy_slope"][0])
    S = fit.covariances[0]
    days = gj.datasets.load("sleepstudy")["Days"].to_numpy(float)
    expected = np.mean(S[0, 0] + 2 * days * S[0, 1] + days ** 2 * S[1, 1])
    assert out["var_random"] == pytest.approx(expected, rel=1e-12)


def test_singular_fit_has_no_conditional_r2(get_r2):
    _, out, messages = get_r2(CASES["arabidopsis_lmer_singular"][0])
    assert out.attrs["singular"]
    assert math.isnan(out["R2_conditional"]) and math.isnan(out["var_random"])
    assert out["R2_marginal"] == pytest.approx(out["var_fixed"] / (out["var_fixed"] + out["var_residual"]))
    assert any("Can't compute random effect variances" in m for m in messages)


def test_given_null_fit_is_used(get_r2):
    fit, out, _ = get_r2(CASES["grouseticks_tmb"][0])
    null = quiet(fit.model.update(formula=out.attrs["null_formula"]).fit)   # compiled already
    again = quiet(r2_nakagawa, fit, null_fit=null)
    np.testing.assert_allclose(again.values, out.values, rtol=1e-12)
    with pytest.raises(ValueError, match="null_fit must be the fitted null model"):
        r2_nakagawa(fit, null_fit=fit)


def test_null_formula():
    assert null_formula("y ~ x + offset(log(t)) + (1 + x | g) + (1|a/b) + (x||h)") == \
        "y ~ (1 + x | g) + (1 | b:a) + (1 | a) + (x || h) + offset(log(t))"
    assert null_formula("cbind(s, n - s) ~ x + (1|g)") == "cbind(s, n - s) ~ (1 | g)"


def test_unsupported_models_are_refused():
    """The checks come before any fitting: unfitted models stand in for the fits."""
    sleep, arab = gj.datasets.load("sleepstudy"), gj.datasets.load("Arabidopsis")
    as_fit = lambda model: SimpleNamespace(model=model)
    with pytest.raises(ValueError, match="no random effects"):
        r2_nakagawa(as_fit(gj.GLMM("Reaction ~ Days", sleep)))
    with pytest.raises(ValueError, match="not Gamma with a log link"):
        r2_nakagawa(as_fit(gj.GLMM("Reaction ~ Days + (1|Subject)", sleep, family=gj.families.Gamma(link="log"))))
    with pytest.raises(ValueError, match="zero-inflated"):
        r2_nakagawa(as_fit(gj.GLMM("total.fruits ~ amd + (1|popu)", arab, family="poisson", zi="~1")))
    with pytest.raises(ValueError, match="constant dispersion"):
        r2_nakagawa(as_fit(gj.GLMM("total.fruits ~ amd + (1|popu)", arab, family="nbinom2", disp="~amd")))
