"""Wald chi-square tables per term (glmmjax.inference._wald_anova) against car::Anova.

R values: tests/fixtures/reference_inference/anova_<id>.json, made by make_refs_anova.R there
(car 3.1-1, lme4 1.1-31, glmmTMB 1.1.5). Two tiers:

* at R's estimates: the table computed from R's fixed effects and vcov with glmmjax's term
  layout equals car's to 1e-9 (R writes 15 significant digits). This checks the terms,
  their columns and order, the Type II conjugate complements and the Type III hypotheses,
  for every model, glmer fits included.
* end to end: ``Anova(fit)`` on glmmjax's own fit. glmmjax's Laplace fits match glmmTMB's,
  not glmer's (glmer's vcov comes from a finite-difference Hessian: its SEs differ from the
  exact ones by up to 1.3% on cbpp), so the GLMMs are compared with glmmTMB fits of the same
  models (the glmer JSONs are checked at R's estimates only). Tolerances in TOL.

The fits of the models that are not reference fits (``NEW_MODELS``) are cached here and
shared with tests/test_emmeans.py through ``model_fit``.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import glmmjax as gj
from glmmjax.inference._wald_anova import Anova, term_layout, wald_anova

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_inference"

# Models fitted here: id -> (dataset, formula, family, contrasts).
NEW_MODELS = {
    "seeds_glm": ("seeds", "cbind(germ, n - germ) ~ extract * gen", "binomial", None),
    "seeds_glm_sum": ("seeds", "cbind(germ, n - germ) ~ extract * gen", "binomial",
                      {"extract": "sum", "gen": "sum"}),
    "fungicide_beta": ("fungicide", "severity ~ fungicide + (1 | block)", "beta", None),
    "exam_lmer_reml_inter": ("Exam", "normexam ~ standLRT * sex + (1 | school)", "gaussian", None),
}
# R model id -> the reference fit (tests/fixtures/reference) that is the same glmmjax model.
SAME_AS_REFERENCE = {
    "cbpp_glmer_binom": "cbpp_tmb_binom", "cbpp_tmb_binom": "cbpp_tmb_binom",
    "grouseticks_glmer_pois_loc": "grouseticks_glmer_pois_loc",
    "grouseticks_tmb_pois_loc": "grouseticks_glmer_pois_loc",
    "arabidopsis_tmb_zip": "arabidopsis_tmb_zip",
    "arabidopsis_glmer_pois": "arabidopsis_glmer_pois",
    "arabidopsis_tmb_pois": "arabidopsis_glmer_pois",
    "exam_lmer_reml_int": "exam_lmer_reml_int",
}
# End-to-end relative tolerances (on Chisq here, on means / SEs / estimates in test_emmeans).
# Exact fits (a GLM, profiled REML LMMs): agreement seen <= 1.3e-8 (GLM) and 7e-9 (LMM) -> 1e-6.
# Laplace GLMMs against glmmTMB: seen <= 4.2e-5 (largest: arabidopsis_tmb_zip pairwise
# estimates; Chisq <= 2.8e-5) -> 5e-4, ten times inside the 0.5%.
EXACT_TOL = 1e-6
LAPLACE_TOL = 5e-4
TOL = {
    "seeds_glm": EXACT_TOL, "seeds_glm_sum": EXACT_TOL,
    "exam_lmer_reml_int": EXACT_TOL, "exam_lmer_reml_inter": EXACT_TOL,
    "fungicide_beta": LAPLACE_TOL, "cbpp_tmb_binom": LAPLACE_TOL,
    "grouseticks_tmb_pois_loc": LAPLACE_TOL, "arabidopsis_tmb_zip": LAPLACE_TOL,
    "arabidopsis_tmb_pois": LAPLACE_TOL,
}
ALL_IDS = sorted(p.stem[len("anova_"):] for p in REF_DIR.glob("anova_*.json"))
TIGHT = 1e-9   # R's values carry 15 significant digits

_FITS: dict = {}


def load(kind: str, ref_id: str) -> dict:
    with open(REF_DIR / f"{kind}_{ref_id}.json") as fh:
        return json.load(fh)


def model_fit(ref_id: str, reference_fit):
    """glmmjax's fit of the model behind R's ``ref_id`` (fitted once per session)."""
    if ref_id in SAME_AS_REFERENCE:
        return reference_fit(SAME_AS_REFERENCE[ref_id])[1]
    if ref_id not in _FITS:
        dataset, formula, family, contrasts = NEW_MODELS[ref_id]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _FITS[ref_id] = gj.glmm(formula, gj.datasets.load(dataset), family=family,
                                    contrasts=contrasts)
    return _FITS[ref_id]


def r_estimates(ref: dict):
    return np.array(ref["fixef"]["values"], float), np.array(ref["vcov"], float)


def test_all_reference_models_are_mapped():
    assert set(ALL_IDS) == set(NEW_MODELS) | set(SAME_AS_REFERENCE)
    assert set(TOL) <= set(ALL_IDS)


@pytest.mark.parametrize("ref_id", ALL_IDS)
def test_anova_at_r_estimates(ref_id, reference_fit):
    """glmmjax's terms and hypotheses on R's estimates reproduce car's table to 1e-9."""
    ref = load("anova", ref_id)
    fit = model_fit(ref_id, reference_fit)
    assert list(fit.fixef.index) == ref["fixef"]["names"]
    beta, V = r_estimates(ref)
    layout = term_layout(fit.model)
    for type_ in ("II", "III"):
        r = ref[f"type_{type_}"]
        table = wald_anova(beta, V, layout, type_)
        assert list(table.index) == r["terms"]
        assert list(table.columns) == ["Chisq", "Df", "Pr(>Chisq)"]
        np.testing.assert_array_equal(table["Df"].to_numpy(), np.array(r["Df"]))
        np.testing.assert_allclose(table["Chisq"], r["Chisq"], rtol=TIGHT)
        np.testing.assert_allclose(table["Pr(>Chisq)"], r["p"], rtol=1e-7, atol=1e-300)


@pytest.mark.parametrize("ref_id", sorted(TOL))
@pytest.mark.parametrize("type_", ["II", "III"])
def test_anova_matches_car(ref_id, type_, reference_fit):
    """Anova(fit) end to end against car::Anova on R's fit of the same model."""
    ref = load("anova", ref_id)
    r = ref[f"type_{type_}"]
    fit = model_fit(ref_id, reference_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the Type III contrasts warning, tested below
        table = Anova(fit, type=type_)
    assert list(table.index) == r["terms"]
    np.testing.assert_array_equal(table["Df"].to_numpy(), np.array(r["Df"]))
    tol = TOL[ref_id]
    chisq = np.array(r["Chisq"])
    np.testing.assert_allclose(table["Chisq"], chisq, rtol=tol)
    # d log p / d Chisq -> -1/2 in the tail: p inherits a relative error ~ Chisq/2 times Chisq's
    np.testing.assert_allclose(table["Pr(>Chisq)"], r["p"], rtol=tol * max(1.0, chisq.max()), atol=1e-300)
    assert table.attrs["heading"] == f"Analysis of Deviance Table (Type {type_} Wald chisquare tests)"


def test_acceptance_seeds_and_beta_tables(reference_fit):
    """The issue's two models: the printed numbers (4 significant digits) are car's."""
    seeds = Anova(model_fit("seeds_glm", reference_fit))
    assert list(seeds.index) == ["extract", "gen", "extract:gen"]
    np.testing.assert_allclose(seeds["Chisq"], [53.3974, 3.0426, 6.4477], rtol=1e-4)
    beta = Anova(model_fit("fungicide_beta", reference_fit), type=3)
    assert list(beta.index) == ["(Intercept)", "fungicide"]
    assert list(beta["Df"]) == [1, 3]
    np.testing.assert_allclose(beta["Chisq"], [18.0812, 102.1846], rtol=1e-4)


def test_type3_warns_with_treatment_contrasts_in_interactions(reference_fit):
    fit = model_fit("seeds_glm", reference_fit)
    with pytest.warns(UserWarning, match=r"sum-to-zero contrasts.*extract, gen use treatment"):
        Anova(fit, type="III")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Anova(fit, type="II")                                          # Type II: no warning
        Anova(model_fit("seeds_glm_sum", reference_fit), type=3)       # sum contrasts
        Anova(model_fit("fungicide_beta", reference_fit), type=3)      # no interaction
        # a numeric covariate in the interaction with a factor: the factor is flagged
    with pytest.warns(UserWarning, match=r"; sex use treatment"):
        Anova(model_fit("exam_lmer_reml_inter", reference_fit), type=3)


def test_type2_does_not_depend_on_contrasts(reference_fit):
    """Type II tests are invariant to the coding of the factors; Type III's interaction too."""
    treat = model_fit("seeds_glm", reference_fit)
    summ = model_fit("seeds_glm_sum", reference_fit)
    pd.testing.assert_frame_equal(Anova(treat), Anova(summ), rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t3, s3 = Anova(treat, 3), Anova(summ, 3)
    np.testing.assert_allclose(t3.loc["extract:gen", "Chisq"], s3.loc["extract:gen", "Chisq"], rtol=1e-6)
    assert abs(t3.loc["gen", "Chisq"] - s3.loc["gen", "Chisq"]) > 1.0   # the main effects differ


def test_type2_uses_the_conjugate_complement(reference_fit):
    """With an interaction, Type II's main-effect hypothesis is V-orthogonal to the
    interaction columns, so it differs from Type III's; without one they coincide."""
    fit = model_fit("exam_lmer_reml_inter", reference_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t2, t3 = Anova(fit, "II"), Anova(fit, "III")
    assert abs(t2.loc["standLRT", "Chisq"] / t3.loc["standLRT", "Chisq"] - 1) > 0.5
    assert t2.loc["standLRT:sex", "Chisq"] == pytest.approx(t3.loc["standLRT:sex", "Chisq"], rel=1e-12)
    no_inter = model_fit("fungicide_beta", reference_fit)
    assert Anova(no_inter, 2).loc["fungicide", "Chisq"] == pytest.approx(
        Anova(no_inter, 3).loc["fungicide", "Chisq"], rel=1e-12)


def test_term_layout_follows_r_order(reference_fit):
    """patsy puts terms without numeric variables first; the layout is in R's order."""
    fit = model_fit("arabidopsis_tmb_zip", reference_fit)
    layout = term_layout(fit.model)
    assert layout.labels == ("(Intercept)", "nutrient", "rack", "status", "amd", "reg")
    np.testing.assert_array_equal(layout.assign, [0, 1, 2, 3, 3, 4, 5, 5])
    inter = term_layout(model_fit("exam_lmer_reml_inter", reference_fit).model)
    assert inter.labels == ("(Intercept)", "standLRT", "sex", "standLRT:sex")
    assert inter.relatives(1) == [3] and inter.relatives(2) == [3] and inter.relatives(3) == []


def test_anova_errors(reference_fit):
    fit = model_fit("seeds_glm", reference_fit)
    with pytest.raises(ValueError, match="type must be 'II', 'III', 2 or 3"):
        Anova(fit, type="I")
    layout = term_layout(fit.model)
    with pytest.raises(ValueError, match="must agree"):
        wald_anova(np.zeros(3), np.eye(3), layout)
    # Anova reads only model, fixef and vcov: an unfitted model with made-up estimates will do
    model = gj.GLMM("cbind(germ, n - germ) ~ 1", gj.datasets.load("seeds"), family="binomial")
    only_intercept = SimpleNamespace(model=model, fixef=pd.Series([0.2], index=["(Intercept)"]),
                                     vcov=pd.DataFrame([[0.01]], index=["(Intercept)"], columns=["(Intercept)"]))
    with pytest.raises(ValueError, match="no fixed-effect terms to test other than the intercept"):
        Anova(only_intercept)
    table = Anova(only_intercept, 3)
    assert list(table.index) == ["(Intercept)"]
    assert table["Chisq"].iloc[0] == pytest.approx(0.2 ** 2 / 0.01, rel=1e-12)
