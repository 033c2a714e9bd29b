"""Satterthwaite and Kenward-Roger degrees of freedom against lmerTest 3.1.3 and pbkrtest 0.5.2.

Reference values: tests/fixtures/reference_inference/ddf.json, written by make_refs_ddf.R there
(every LMM of tests/fixtures/reference plus five models with factor terms). Two tiers:

* at lme4's estimates (theta, sigma, beta and vcov of the R fit put into the glmmjax fit with
  dataclasses.replace): the methods themselves, compared tightly;
* at glmmjax's own optimum, what a user sees: the tolerances absorb the small differences
  between glmmjax's and lme4's optima (theta differs by up to ~1e-5 relative).
"""
from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmjax as gj
from glmmjax.inference._ddf import contest, ddf_anova, ddf_coef_table, kr_vcov, vcov_varpar

REF = json.loads((Path(__file__).parent / "fixtures" / "reference_inference" / "ddf.json").read_text())["models"]
SHARED = {  # fitted once per session by conftest's reference_fit
    "sleepstudy_lmer_reml_slope", "sleepstudy_lmer_reml_uncorr", "sleepstudy_lmer_ml_slope",
    "arabidopsis_lmer_reml", "exam_lmer_reml_int", "exam_lmer_ml_int", "exam_lmer_reml_slope",
    "exam_lmer_reml_nested",
}
FACTOR_MODELS = [m for m in REF if m not in SHARED]
METHODS = {"satterthwaite": "satterthwaite", "kenward_roger": "kenward-roger"}
COEF_COLUMNS = ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]
# (model, method key) for every method R computed (Kenward-Roger: REML fits only)
MODEL_METHODS = [(m, k) for m in REF for k in METHODS if f"coef_{k}" in REF[m]]


def r_table(rows, columns) -> pd.DataFrame:
    return pd.DataFrame([[r[c] for c in columns] for r in rows], index=[r["term"] for r in rows],
                        columns=columns, dtype=float)


def close(actual, desired, rtol, atol=0.0):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(desired, float), rtol=rtol, atol=atol)


@pytest.fixture(scope="module")
def fitted(reference_fit):
    """fitted(model id) -> glmmjax's fit of the model."""
    cache: dict = {}

    def get(mid):
        if mid not in cache:
            m = REF[mid]
            if mid in SHARED:
                cache[mid] = reference_fit(mid)[1]
            else:
                contrasts = {k: v.removeprefix("contr.") for k, v in (m["contrasts"] or {}).items()} or None
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")   # singular fits (Arabidopsis gen variance at 0)
                    cache[mid] = gj.glmm(m["formula"], gj.datasets.load(m["dataset"][:-4]), reml=m["REML"],
                                         contrasts=contrasts)
            assert list(cache[mid].fixef.index) == m["fixef_names"]
        return cache[mid]

    return get


@pytest.fixture(scope="module")
def at_r(fitted):
    """at_r(model id) -> (the fit with lme4's theta, sigma, beta and vcov, glmmjax theta -> R's index)."""
    cache: dict = {}

    def get(mid):
        if mid not in cache:
            fit, m = fitted(mid), REF[mid]
            groups = np.array(m["theta_groups"])
            order = np.concatenate([np.flatnonzero(groups == b.group) for b in fit.model.blocks])
            names = fit.fixef.index
            cache[mid] = (dataclasses.replace(
                fit, theta=np.array(m["theta"])[order], sigma_=m["sigma"],
                fixef=pd.Series(m["fixef"], index=names, name="Estimate"),
                vcov=pd.DataFrame(np.array(m["vcov_beta"]), index=names, columns=names)), order)
        return cache[mid]

    return get


# --------------------------------------------------------------------------- at lme4's estimates
# Satterthwaite: lmerTest differentiates numerically (numDeriv's Richardson extrapolation), glmmjax
# by Richardson differences of its exact gradient (within 3e-11 of autodiff); the df agree to
# < 5e-9 relative, the p-values to 1.04e-7 (Exam's random-slope model): lmerTest's error.
# Kenward-Roger has no numerical derivative: seen <= 6e-13 (df) and 1.3e-12 (p).
DF_RTOL = {"satterthwaite": 1e-7, "kenward_roger": 1e-10}
P_RTOL = {"satterthwaite": 1e-6, "kenward_roger": 1e-10}
EXACT = 1e-10     # SE, t, F, sums of squares: seen <= 3e-13


@pytest.mark.parametrize("mid,method", MODEL_METHODS)
def test_coef_table_at_r_estimates(at_r, mid, method):
    fit, _ = at_r(mid)
    got = ddf_coef_table(fit, METHODS[method])
    ref = r_table(REF[mid][f"coef_{method}"], COEF_COLUMNS)
    assert list(got.columns) == COEF_COLUMNS and list(got.index) == list(ref.index)
    close(got["Std. Error"], ref["Std. Error"], EXACT)
    close(got["t value"], ref["t value"], EXACT)
    close(got["df"], ref["df"], DF_RTOL[method])
    close(got["Pr(>|t|)"], ref["Pr(>|t|)"], P_RTOL[method], atol=1e-300)   # R's p underflows to 0


@pytest.mark.parametrize("mid,method", MODEL_METHODS)
@pytest.mark.parametrize("atype", [3, 1])
def test_anova_at_r_estimates(at_r, mid, method, atype):
    fit, _ = at_r(mid)
    got = ddf_anova(fit, METHODS[method], type=atype)
    ref = r_table(REF[mid][f"anova_type{atype}_{method}"], F_COLUMNS)
    assert list(got.columns) == F_COLUMNS and list(got.index) == list(ref.index)
    assert list(got["NumDF"]) == list(ref["NumDF"])
    close(got[["Sum Sq", "Mean Sq", "F value"]], ref[["Sum Sq", "Mean Sq", "F value"]], EXACT)
    close(got["DenDF"], ref["DenDF"], DF_RTOL[method])
    close(got["Pr(>F)"], ref["Pr(>F)"], P_RTOL[method], atol=1e-300)


@pytest.mark.parametrize("mid,method", MODEL_METHODS)
def test_contest_at_r_estimates(at_r, mid, method):
    fit, _ = at_r(mid)
    for case in REF[mid]["contest"]:              # L = a row of ones; L = the identity (p > 1)
        got = contest(fit, np.array(case["L"]), METHODS[method])
        ref = r_table(case[method], F_COLUMNS).iloc[0]
        assert got["NumDF"] == ref["NumDF"]
        close(got[["Sum Sq", "Mean Sq", "F value"]], ref[["Sum Sq", "Mean Sq", "F value"]], EXACT)
        close(got["DenDF"], ref["DenDF"], DF_RTOL[method])
        # the identity-L F tests have p ~ 1e-170 and below, where a 1e-9 change in DenDF moves p by 3e-7
        close(got["Pr(>F)"], ref["Pr(>F)"], 1e-5 if method == "satterthwaite" else 1e-10, atol=1e-300)


@pytest.mark.parametrize("mid", [m for m in REF if REF[m]["REML"]])
def test_kenward_roger_adjusted_vcov_and_f_scaling(at_r, mid):
    fit, _ = at_r(mid)
    m = REF[mid]
    close(kr_vcov(fit).values, np.array(m["vcov_adj"]), EXACT)          # pbkrtest::vcovAdj, seen 8e-13
    kr = m["krmodcomp"]
    p = len(m["fixef"])
    L = np.eye(p) if kr["L_name"] == "identity" else np.ones((1, p))
    got = contest(fit, L, "kenward-roger")
    test = {row["term"]: row for row in kr["test"]}
    close(got["F value"], test["Ftest"]["stat"], EXACT)                 # the scaled F of KRmodcomp
    close(got["Mean Sq"] / m["sigma"] ** 2, test["FtestU"]["stat"], EXACT)   # lmerTest: unscaled F sigma^2
    close(got["DenDF"], test["Ftest"]["ddf"], DF_RTOL["kenward_roger"])
    assert got["NumDF"] == test["Ftest"]["ndf"]


@pytest.mark.parametrize("mid", list(REF))
def test_vcov_varpar_at_r_estimates(at_r, mid):
    fit, order = at_r(mid)
    got = vcov_varpar(fit)
    assert list(got.index) == list(fit.model.parameter_names()) + ["sigma"]
    idx = np.append(order, len(order))                     # R's rows in glmmjax's order
    ref = np.array(REF[mid]["vcov_varpar"])[np.ix_(idx, idx)]
    singular = np.append(np.abs(fit.theta) < 1e-4, False)  # variances at (or next to) 0
    regular = ~singular
    # numDeriv's Hessian vs autodiff: seen <= 3.6e-8 relative on the regular entries
    close(got.values[np.ix_(regular, regular)], ref[np.ix_(regular, regular)], 1e-6)
    # at a variance of 0 the deviance is even in theta and numDeriv's step (1e-4) sees its quartic
    # term: exam_lmer_reml_nested's student:school entry differs by 1.1% (Arabidopsis gen: 6e-5);
    # the cross terms are 0 by symmetry (R's are finite-difference noise, <= 3e-8)
    close(np.diag(got.values)[singular], np.diag(ref)[singular], 2e-2)
    close(got.values[np.ix_(singular, regular)], 0.0, 0.0, atol=1e-7)
    close(ref[np.ix_(singular, regular)], 0.0, 0.0, atol=1e-7)


# --------------------------------------------------------------------------- at glmmjax's optimum
# Differences here come from the optimum (glmmjax's theta vs lme4's, ~1e-5 relative). Seen at most:
# df 6.3e-5, SE 2.3e-5, p 2.4e-3 (sleepstudy ML: p ~ 1e-11, where d log p ~ t dt); anova DenDF 2.0e-5,
# F and sums of squares 1.6e-5, p 5.2e-4. The project's acceptance is df within 1%.
OPT = dict(df=5e-4, se=2e-4, p=2e-2)


@pytest.mark.parametrize("mid,method", MODEL_METHODS)
def test_coef_table_at_optimum(fitted, mid, method):
    got = ddf_coef_table(fitted(mid), METHODS[method])
    ref = r_table(REF[mid][f"coef_{method}"], COEF_COLUMNS)
    close(got["df"], ref["df"], OPT["df"])
    close(got["Std. Error"], ref["Std. Error"], OPT["se"])
    close(got["t value"], ref["t value"], OPT["se"])
    close(got["Pr(>|t|)"], ref["Pr(>|t|)"], OPT["p"], atol=1e-300)


@pytest.mark.parametrize("mid,method", [(m, k) for m, k in MODEL_METHODS if m in FACTOR_MODELS])
@pytest.mark.parametrize("atype", [3, 1])
def test_anova_at_optimum(fitted, mid, method, atype):
    got = ddf_anova(fitted(mid), METHODS[method], type=atype)
    ref = r_table(REF[mid][f"anova_type{atype}_{method}"], F_COLUMNS)
    assert list(got.index) == list(ref.index) and list(got["NumDF"]) == list(ref["NumDF"])
    close(got["DenDF"], ref["DenDF"], OPT["df"])
    close(got[["Sum Sq", "F value"]], ref[["Sum Sq", "F value"]], OPT["se"])
    close(got["Pr(>F)"], ref["Pr(>F)"], OPT["p"])


# --------------------------------------------------------------------------- identities
@pytest.mark.parametrize("method", list(METHODS.values()))
def test_one_row_contest_is_the_t_test(fitted, method):
    """A one-row L gives F = t^2 with the coefficient's df (both methods)."""
    fit = fitted("exam_lmer_reml_factor")
    table = ddf_coef_table(fit, method)
    for j, name in enumerate(table.index):
        got = contest(fit, np.eye(len(table))[j], method)
        close(got["F value"], table.loc[name, "t value"] ** 2, 1e-12)
        close(got["DenDF"], table.loc[name, "df"], 1e-12)
        close(got["Pr(>F)"], table.loc[name, "Pr(>|t|)"], 1e-9)


def test_type3_hypotheses_do_not_depend_on_the_contrasts(fitted):
    """Treatment and sum-to-zero coding of the same model: the same type III F tests."""
    a = ddf_anova(fitted("exam_lmer_reml_factor"), "kenward-roger")
    b = ddf_anova(fitted("exam_lmer_reml_factor_sum"), "kenward-roger")
    # two separate fits of one likelihood: their optima agree to ~1e-8 relative (seen 2e-8 in F)
    close(a[["F value", "DenDF"]], b[["F value", "DenDF"]], 1e-6)


# --------------------------------------------------------------------------- errors
def test_errors(fitted):
    lmm = fitted("sleepstudy_lmer_reml_slope")
    glmm_model = gj.GLMM("cbind(incidence, size - incidence) ~ period + (1 | herd)", gj.datasets.load("cbpp"),
                         family="binomial")
    not_lmm = dataclasses.replace(lmm, model=glmm_model)
    for call in (ddf_coef_table, vcov_varpar, ddf_anova, lambda f: contest(f, [0, 1])):
        with pytest.raises(ValueError, match="for linear mixed models"):
            call(not_lmm)
    with pytest.raises(ValueError, match="only available for REML fits"):
        ddf_coef_table(fitted("sleepstudy_lmer_ml_slope"), "kenward-roger")
    with pytest.raises(ValueError, match="ddf must be 'satterthwaite' or 'kenward-roger'"):
        ddf_coef_table(lmm, "containment")
    with pytest.raises(ValueError, match="L needs 2 columns"):
        contest(lmm, [1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="type must be 3"):
        ddf_anova(lmm, type=2)
    weighted = gj.GLMM("Reaction ~ Days + (Days | Subject)", gj.datasets.load("sleepstudy"),
                       weights=np.linspace(1.0, 2.0, 180))
    with pytest.raises(ValueError, match="prior weights"):
        ddf_coef_table(dataclasses.replace(lmm, model=weighted), "kenward-roger")


def test_satterthwaite_differences_match_autodiff(fitted):
    """The Richardson differences of the exact gradient (_satterthwaite_pieces) against
    forward-over-reverse autodiff of the same deviance: within 1e-9 of the largest entry
    (seen 1.7e-11 for the Hessian, 2.9e-11 for dPhi on this model)."""
    import jax
    import jax.numpy as jnp

    from glmmjax.inference._ddf import _deviance, _satterthwaite_pieces

    fit = fitted("sleepstudy_lmer_reml_slope")
    model = fit.model
    varpar = jnp.asarray(np.append(fit.theta, fit.sigma), model.data.y.dtype)
    spec = dataclasses.replace(model.spec, reml=False)
    hess, jac, Phi = _satterthwaite_pieces(spec, model.data, varpar, 1.0)

    def grad_and_C(v):
        g, C = jax.grad(lambda w: _deviance(spec, model.data, w, 1.0), has_aux=True)(v)
        return (g, C), C

    (hess_ad, dC), C = jax.jit(jax.jacfwd(grad_and_C, has_aux=True))(varpar)
    sigma = varpar[-1]
    Phi_ad = sigma ** 2 * jnp.linalg.inv(C)
    jac_ad = (-jnp.einsum("ij,jkv,kl->vil", Phi_ad, dC, Phi_ad) / sigma ** 2).at[-1].set(2.0 * Phi_ad / sigma)
    for a, b in ((hess, hess_ad), (jac, jac_ad), (Phi, Phi_ad)):
        a, b = np.asarray(a), np.asarray(b)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9 * np.max(np.abs(b)))
