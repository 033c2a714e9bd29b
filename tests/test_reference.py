"""Estimates against lme4 and glmmTMB (tests/fixtures/reference, made by make_refs.R),
zero-inflated glmmTMB models included.

Tolerances (from the project's acceptance criteria):
- logLik at least R's minus 2e-3 (REML: criterion at most R's plus 4e-3); where glmmjax's
  logLik is higher than R's by more than 2e-3, R stopped short and its parameters are not
  the target: those models are compared on logLik and fixed effects only (marked below).
- fixed effects within 0.02 of R's standard error;
- standard errors within 2% of glmmTMB's and lmer's, 3% of glmer's (finite-difference Hessian);
- random-effect SDs within 2% + 2e-3 x (residual SD for LMMs, 1 otherwise);
- dispersion parameters within 2%.
glmer.nb and glmmTMB's nbinom2 optimize different Laplace objectives (Fisher vs observed
weights, see the fixtures' README): glmmjax matches glmmTMB, so the glmer.nb reference is
checked on logLik only and its parameters are checked against the glmmTMB nbinom2 fit.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reference import fixed_table, load_reference, random_sds, reference_ids, tmb_parameters

IDS = reference_ids()

# R stopped short of the optimum (glmmjax's logLik is higher by more than 2e-3; measured
# 3.3e-3 for both): compare logLik and fixed effects only.
R_SHORT = {"grouseticks_glmer_pois_yearloc", "grouseticks_glmer_pois_loc_0yearloc"}
# Different objective (Fisher-weight Laplace): the parameters are checked against this glmmTMB fit.
TARGET = {"arabidopsis_glmernb": "arabidopsis_tmb_nb2"}


def test_all_references_are_covered():
    assert len(IDS) == 20


@pytest.mark.parametrize("ref_id", IDS)
def test_loglik_at_least_r(reference_fit, ref_id):
    ref, fit, _ = reference_fit(ref_id)
    stats = ref["fit_stats"]
    assert fit.converged, fit.max_grad
    if ref["REML"]:
        assert fit.reml_criterion <= stats["REMLcrit"] + 4e-3
    else:
        assert fit.loglik >= stats["logLik"] - 2e-3
    assert fit.nobs == stats["nobs"]


@pytest.mark.parametrize("ref_id", IDS)
def test_fixed_effects(reference_fit, ref_id):
    ref, fit, _ = reference_fit(TARGET.get(ref_id, ref_id)) if ref_id in TARGET else reference_fit(ref_id)
    names, est, se = fixed_table(ref)
    assert list(fit.fixef.index) == names
    np.testing.assert_array_less(np.abs(fit.fixef.values - est), 0.02 * se)


@pytest.mark.parametrize("ref_id", [i for i in IDS if i not in R_SHORT])
def test_standard_errors(reference_fit, ref_id):
    ref, fit, _ = reference_fit(TARGET.get(ref_id, ref_id))
    _, _, se = fixed_table(ref)
    tol = 0.03 if (ref["engine"] == "lme4" and ref["family_canonical"] != "gaussian") else 0.02
    np.testing.assert_array_less(np.abs(fit.se.values / se - 1), tol)


@pytest.mark.parametrize("ref_id", [i for i in IDS if i not in R_SHORT])
def test_random_effect_sds(reference_fit, ref_id):
    ref, fit, _ = reference_fit(TARGET.get(ref_id, ref_id))
    scale = fit.sigma if fit.is_lmm else 1.0
    vc = fit.varcorr
    ours = {(r.group, r.term1): r.sd for r in vc.itertuples() if pd.isna(r.term2) and r.group != "Residual"}
    theirs = random_sds(ref)
    assert set(ours) == set(theirs)
    for key, sd in theirs.items():
        assert abs(ours[key] - sd) <= 0.02 * sd + 2e-3 * scale, (key, ours[key], sd)


@pytest.mark.parametrize("ref_id", [i for i in IDS if i not in R_SHORT])
def test_dispersion(reference_fit, ref_id):
    ref, fit, _ = reference_fit(TARGET.get(ref_id, ref_id))
    params = ref["dispersion"]["parameters"]
    if not params:
        assert fit.dispersion_parameters == {}
        return
    ours = fit.dispersion_parameters
    for name, value in params.items():
        assert ours[name] == pytest.approx(value, rel=0.02), name


@pytest.mark.parametrize("ref_id", [i for i in IDS if "zi_coefficients" in load_reference(i)])
def test_zero_inflation_coefficients(reference_fit, ref_id):
    ref, fit, _ = reference_fit(ref_id)
    names, est, se = fixed_table(ref, "zi_coefficients")
    assert list(fit.zi_fixef.index) == names
    # the zinb2 zi intercept is weakly identified (-4.9, SE 6): within 0.02 SE still holds
    np.testing.assert_array_less(np.abs(fit.zi_fixef.values - est), 0.02 * se)
    np.testing.assert_array_less(np.abs(fit.zi_se.values / se - 1), 0.02)


def test_glmer_nb_is_matched_on_loglik_only(reference_fit):
    # glmmjax optimizes glmmTMB's objective; glmer.nb's optimum is 0.022 lower in logLik
    ref, fit, _ = reference_fit("arabidopsis_glmernb")
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3


@pytest.mark.parametrize("ref_id", sorted(i for i in IDS if i in R_SHORT))
def test_r_stopped_short(reference_fit, ref_id):
    ref, fit, _ = reference_fit(ref_id)
    assert fit.loglik > ref["fit_stats"]["logLik"] + 2e-3


@pytest.mark.parametrize("ref_id", [i for i in IDS if load_reference(i)["engine"] == "glmmTMB"])
def test_objective_at_glmmtmb_estimates(reference_fit, ref_id):
    """The likelihood itself: glmmjax's objective at glmmTMB's optimum equals glmmTMB's."""
    ref, fit, _ = reference_fit(ref_id)
    x = tmb_parameters(ref, fit.model)
    value = float(fit.model.objective()(np.asarray(x)))
    assert value == pytest.approx(ref["estimation"]["objective"], rel=1e-8)


def test_singular_fits_are_flagged(reference_fit):
    for ref_id in ("exam_lmer_reml_nested", "arabidopsis_lmer_reml"):
        ref, fit, caught = reference_fit(ref_id)
        assert ref["singular"]["isSingular"] is True
        assert fit.is_singular
        assert any("singular" in m for m in caught)
