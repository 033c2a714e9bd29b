"""Confidence intervals (Wald and profile likelihood) and likelihood profiles against lme4 1.1-31
and glmmTMB 1.1.5 (tests/fixtures/reference_inference/profile_*.json, made by
make_refs_profile.R there).

Models: sleepstudy ``Reaction ~ Days + (Days | Subject)`` (REML), cbpp binomial
``cbind(incidence, size - incidence) ~ period + (1 | herd)``, grouseticks poisson
``TICKS ~ YEAR + (1 | LOCATION)``; the fits come from the session's ``reference_fit``.
Each test's tolerance says where it comes from; "measured" figures are glmmjax's largest
differences when the tolerance was set.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import glmmjax as gj
from glmmjax.inference import _profile
from glmmjax.inference._confint import confint, format_perc, parameters, profile_confint
from glmmjax.inference._profile import Profiler, profile

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_inference"
REFS = {"sleepstudy": "sleepstudy_lmer_reml_slope", "cbpp": "cbpp_glmer_binom",
        "grouseticks": "grouseticks_glmer_pois_loc"}
MODELS = list(REFS)
NAMES = json.loads((REF_DIR / "profile_names.json").read_text())

# Profile bounds, as a fraction of lme4's interval width. lme4 reads the crossing off an
# interpolation spline through points ~cutoff/8 apart in zeta, at bobyqa / Nelder-Mead optima;
# glmmjax root-finds it to |zeta - z| < 1e-5. Measured: 2.8e-5 (sleepstudy), 3.5e-5 (cbpp),
# 2.2e-4 (grouseticks). glmer's deviance is accurate to ~1e-3 (fixtures/reference/README),
# hence 1e-3 for GLMMs; the project's acceptance criterion is 1e-2.
PROFILE_TOL = {"sleepstudy": 1e-4, "cbpp": 1e-3, "grouseticks": 1e-3}


def load(name: str) -> dict:
    return json.loads((REF_DIR / f"profile_{name}.json").read_text())


def ref_table(rec: dict) -> pd.DataFrame:
    lo = [np.nan if v is None else v for v in rec["lower"]]
    hi = [np.nan if v is None else v for v in rec["upper"]]
    return pd.DataFrame({"lower": lo, "upper": hi}, index=rec["names"])


@pytest.fixture(scope="module")
def computed(reference_fit):
    """computed(model, what) -> the fit ("fit"), its profile / Wald intervals or its profile."""
    cache: dict = {}

    def get(name: str, what: str):
        if (name, what) not in cache:
            fit = reference_fit(REFS[name])[1]
            with warnings.catch_warnings():
                warnings.simplefilter("error")   # no warning from a clean profile
                cache[(name, what)] = {"fit": lambda: fit, "profile": lambda: confint(fit),
                                       "wald": lambda: confint(fit, method="wald"),
                                       "trace": lambda: profile(fit)}[what]()
        return cache[(name, what)]

    return get


def _relative_to_width(ours: pd.DataFrame, ref: pd.DataFrame) -> np.ndarray:
    width = (ref["upper"] - ref["lower"]).to_numpy()[:, None]
    return np.abs(ours.to_numpy() - ref.to_numpy()) / width


# -- profile intervals ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_profile_intervals_match_lme4(computed, name):
    ref = load(name)
    ci = computed(name, "profile")
    assert list(ci.index) == ref["confint_profile"]["names"]
    assert list(ci.columns) == ref["confint_profile"]["columns"] == ["2.5 %", "97.5 %"]
    rel = _relative_to_width(ci, ref_table(ref["confint_profile"]))
    assert np.max(rel) < PROFILE_TOL[name], rel


@pytest.mark.parametrize("name", MODELS)
def test_profile_intervals_at_level_90(computed, name):
    # lme4: confint(profile(m), level = 0.90); same tolerances as at 0.95 (measured 6.6e-5,
    # 6.5e-5, 2.2e-4)
    ref = load(name)
    ci = confint(computed(name, "fit"), level=0.90)
    assert list(ci.columns) == ref["confint_profile_90"]["columns"] == ["5 %", "95 %"]
    assert np.max(_relative_to_width(ci, ref_table(ref["confint_profile_90"]))) < PROFILE_TOL[name]


def test_reml_fit_is_profiled_by_ml(computed, reference_fit):
    # lme4 profiles the ML deviance of a REML fit: R's confint(fm_reml) and
    # confint(update(fm_reml, REML = FALSE)) agree (to 3e-6 of the width in the JSON).
    ref = load("sleepstudy")
    reml = computed("sleepstudy", "profile")
    assert np.max(_relative_to_width(reml, ref_table(ref["confint_profile_ml"]))) < PROFILE_TOL["sleepstudy"]
    # glmmjax's ML fit gives the same intervals as its REML fit (the same ML optimum, reached
    # from two fits converged to max|grad| 1e-6: measured 5.7e-10 of the width)
    ml_fit = reference_fit("sleepstudy_lmer_ml_slope")[1]
    ml = confint(ml_fit)
    assert np.max(np.abs(ml.values - reml.values) / (reml.values[:, 1] - reml.values[:, 0])[:, None]) < 1e-6


def test_interval_stops_at_an_sd_of_zero(computed):
    # lme4's cbpp profile reaches sd = 0 at |zeta| = 3.742 < qnorm(0.99995) = 3.891, so the
    # 99.99% interval of .sig01 starts at the bound 0 (lme4: NA from the spline -> lower bound)
    ref = load("cbpp")["profile"]
    at_zero = [z for p, v, z in zip(ref["parameter"], ref["value"], ref["zeta"]) if p == ".sig01" and v == 0]
    assert at_zero and abs(at_zero[0]) < stats.norm.ppf(0.99995)
    ci = confint(computed("cbpp", "fit"), level=0.9999, parm=".sig01")
    assert ci.iloc[0, 0] == 0.0 and ci.iloc[0, 1] > computed("cbpp", "profile").iloc[0, 1]
    assert list(ci.columns) == ["0.005 %", "99.995 %"]


# -- profiles -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_zeta_at_lme4_profile_points(computed, name):
    """zeta at every point of lme4's profile, by glmmjax's constrained optimization.

    LMMs: lme4's deviance is exact, so zeta^2 (the deviance increase) must be at least as low
    as lme4's everywhere (glmmjax may find a lower constrained minimum: measured up to 0.55
    lower at .sig01 = 1.0, zeta = -4.59, where bobyqa stopped early) and equal to 1e-5 for
    |zeta| <= 3 (measured 6.3e-6). GLMMs: glmer's Laplace deviance is accurate to ~1e-3 per
    evaluation (about 6e-3 in deviance at worst, fixtures README) and zeta^2 differences two
    of them: measured 1.1e-3 (cbpp), 1.1e-2 (grouseticks); tolerance 1.5e-2.
    """
    fit = computed(name, "fit")
    ref = pd.DataFrame(load(name)["profile"])
    prof = Profiler(fit)
    for par, g in ref.groupby("parameter", sort=False):
        ours = prof.zeta(par, g["value"].to_numpy())
        theirs = g["zeta"].to_numpy()
        d2 = ours ** 2 - theirs ** 2
        if name == "sleepstudy":
            assert np.max(d2) < 1e-6, par
            near = np.abs(theirs) <= 3
            assert np.max(np.abs(d2[near])) < 1e-5, par
        else:
            assert np.max(np.abs(d2)) < 1.5e-2, par
        # the sign follows the side of the estimate (zeta = 0 rows excepted)
        away = np.abs(theirs) > 0.05
        assert np.all(np.sign(ours[away]) == np.sign(theirs[away])), par


def test_traced_profile(computed):
    fit = computed("cbpp", "fit")
    tr = computed("cbpp", "trace")
    names = ["(Intercept)", "period2", "period3", "period4"]
    ref = load("cbpp")
    assert list(tr.columns) == ["parameter", "value", "zeta", ".sig01"] + names
    assert list(dict.fromkeys(tr["parameter"])) == [".sig01"] + names
    # lme4's cutoff sqrt(qchisq(0.99, 5))
    assert tr.attrs["cutoff"] == pytest.approx(ref["profile_cutoff"], rel=1e-12)
    assert tr.attrs["lower"][".sig01"] == 0.0 and tr.attrs["upper"][".sig01"] == np.inf
    est = dict(zip(names, fit.fixef.values), **{".sig01": float(np.sqrt(fit.covariances[0][0, 0]))})
    for par, g in tr.groupby("parameter", sort=False):
        assert np.all(np.diff(g["zeta"]) > 0), par          # sorted by value, zeta increasing
        assert np.allclose(g["value"], g[par]), par          # the profiled column is the value
        top = g.iloc[np.argmin(np.abs(g["zeta"].to_numpy()))]
        assert top["zeta"] == 0.0 and top["value"] == pytest.approx(est[par], rel=1e-10)
        lo, hi = g.iloc[0], g.iloc[-1]
        assert lo["zeta"] < -ref["profile_cutoff"] or lo["value"] == tr.attrs["lower"][par]
        assert hi["zeta"] > ref["profile_cutoff"]
    # .sig01 reaches its bound 0, where lme4's profile ends too; zeta^2 within 1.5e-2 of lme4's
    # (test_zeta_at_lme4_profile_points) is zeta within 2e-3 at |zeta| = 3.74
    prof = ref["profile"]
    r_zero = [z for p, v, z in zip(prof["parameter"], prof["value"], prof["zeta"]) if p == ".sig01" and v == 0]
    g = tr[tr["parameter"] == ".sig01"]
    assert g["value"].iloc[0] == 0.0 and g["zeta"].iloc[0] == pytest.approx(r_zero[0], abs=2e-3)


@pytest.mark.parametrize("name", ["sleepstudy", "cbpp"])
def test_intervals_from_the_traced_profile(computed, name):
    # profile_confint interpolates the trace (PCHIP) as lme4's confint(profile) interpolates
    # its spline: both read between points ~cutoff/8 apart in zeta; measured 4.5e-4 of the
    # width (sleepstudy), 1.1e-4 (cbpp); tolerance 1e-3
    ref = load(name)
    tr = computed(name, "trace")
    ci = profile_confint(tr)
    assert list(ci.index) == ref["confint_profile"]["names"]
    assert np.max(_relative_to_width(ci, ref_table(ref["confint_profile"]))) < 1e-3


def test_profile_compiles_once_per_model(computed):
    """One compiled constrained optimization serves every point of every parameter."""
    fit = computed("grouseticks", "fit")
    confint(fit, parm=".sig01")
    n = _profile._solve._cache_size()
    confint(fit, level=0.8)
    profile(fit, parm=["YEAR96", ".sig01"], maxpts=5)
    Profiler(fit).zeta("(Intercept)", [0.5, 0.9])
    assert _profile._solve._cache_size() == n


# -- Wald intervals -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODELS)
def test_wald_fixed_effects(computed, name):
    ref = load(name)
    ci = computed(name, "wald")
    theirs = ref_table(ref["confint_wald"])
    assert list(ci.index) == list(theirs.index)
    fixed = [n for n in theirs.index if not n.startswith(".sig")]
    rel = _relative_to_width(ci.loc[fixed], theirs.loc[fixed])
    # lmer's vcov is exact (measured 2.9e-6 of the width); glmer's comes from a
    # finite-difference Hessian: SEs within 3% (test_reference.py) -> 1.5% of the width
    # (measured 6.7e-3, 6.1e-3)
    assert np.max(rel) < (1e-5 if name == "sleepstudy" else 1.5e-2)
    # lme4 gives NA for the variance parameters; glmmjax gives delta-method intervals
    var = [n for n in theirs.index if n.startswith(".sig")]
    assert theirs.loc[var].isna().all().all() and np.isfinite(ci.loc[var].to_numpy()).all()


@pytest.mark.parametrize("name", ["cbpp", "grouseticks"])
def test_wald_fixed_effects_against_glmmtmb(computed, name):
    # glmmTMB's SEs come from the exact Hessian at the same optimum: measured 6.7e-7 (cbpp),
    # 2.8e-6 (grouseticks) of the width; tolerance 1e-5
    tmb = load(name)["tmb_wald"]["ml"]
    ci = computed(name, "wald")
    fixed = list(computed(name, "fit").fixef.index)
    lo = dict(zip(tmb["names"], tmb["lower"]))
    hi = dict(zip(tmb["names"], tmb["upper"]))
    theirs = pd.DataFrame({"lower": [lo[n] for n in fixed], "upper": [hi[n] for n in fixed]}, index=fixed)
    assert np.max(_relative_to_width(ci.loc[fixed], theirs)) < 1e-5


def _tmb_variance_rows(tmb: dict, fit) -> pd.DataFrame:
    """glmmTMB's Wald rows for SDs, sigma and (atanh-scale) correlation, renamed as lme4's."""
    rows = {}
    lo, hi = dict(zip(tmb["names"], tmb["lower"])), dict(zip(tmb["names"], tmb["upper"]))
    for q in parameters(fit.model):
        if q.kind == "sd":
            b = fit.model.blocks[q.block]
            key = next(k for k in tmb["names"] if k.endswith(f"Std.Dev.{b.columns[q.i]}|{b.group}"))
            rows[q.name] = (lo[key], hi[key])
        elif q.kind == "sigma":
            rows[q.name] = (lo["sigma"], hi["sigma"])
        elif q.kind == "cor":
            rows[q.name] = (tmb["cor_atanh"]["lower"], tmb["cor_atanh"]["upper"])
    return pd.DataFrame(rows, index=["lower", "upper"]).T


@pytest.mark.parametrize("name,fit_id,which", [
    ("sleepstudy", "sleepstudy_lmer_reml_slope", "reml"),
    ("sleepstudy", "sleepstudy_lmer_ml_slope", "ml"),
    ("cbpp", "cbpp_glmer_binom", "ml"),
    ("grouseticks", "grouseticks_glmer_pois_loc", "ml"),
])
def test_wald_variance_components_against_glmmtmb(reference_fit, name, fit_id, which):
    """SDs and sigma: exp(log s +- z se) with glmmTMB's (exact) Hessian, REML fits from the
    REML criterion (glmmTMB with REML = TRUE); the correlation on the atanh scale from
    glmmTMB's covariance by the delta method (in make_refs_profile.R). The same quantity at
    two optima that agree to ~1e-6: measured 4.1e-6 (LMMs), 6.8e-7 (GLMMs) of the width;
    tolerances 1e-4 and 1e-5."""
    fit = reference_fit(fit_id)[1]
    ci = confint(fit, method="wald", parm="theta_")
    theirs = _tmb_variance_rows(load(name)["tmb_wald"][which], fit)
    assert list(ci.index) == list(theirs.index)
    assert np.max(_relative_to_width(ci, theirs)) < (1e-4 if name == "sleepstudy" else 1e-5)


# -- names, columns, arguments ----------------------------------------------------------------------------
@pytest.mark.parametrize("entry", NAMES["models"], ids=lambda e: e["formula"])
def test_parameter_names_in_lme4_order(entry):
    # term order (lme4 sorts terms by decreasing number of levels, ties reversed), `||` and
    # terms sharing a grouping factor
    model = gj.GLMM(entry["formula"], gj.datasets.load(entry["dataset"]), family=entry["family"])
    pars = parameters(model)
    assert [q.name for q in pars] == entry["old"]
    assert [q.label for q in pars] == entry["new"]


@pytest.mark.parametrize("entry", NAMES["format_perc"], ids=lambda e: str(e["level"]))
def test_column_names_as_r(entry):
    a = (1 - entry["level"]) / 2
    assert format_perc([a, 1 - a]) == entry["columns"]


def test_parameter_selection(computed):
    fit = computed("sleepstudy", "fit")
    names = [".sig01", ".sig02", ".sig03", ".sigma", "(Intercept)", "Days"]
    wald = computed("sleepstudy", "wald")
    assert list(confint(fit, method="wald", parm="theta_").index) == names[:4]
    assert list(confint(fit, method="wald", parm="beta_").index) == names[4:]
    sel = confint(fit, method="wald", parm=["Days", 1, "sd_(Intercept)|Subject"])
    assert list(sel.index) == [".sig01", ".sig02", "Days"]          # the model's order
    np.testing.assert_array_equal(sel.values, wald.loc[list(sel.index)].values)
    new = confint(fit, method="Wald", oldnames=False)
    assert list(new.index) == NAMES["models"][0]["new"]
    np.testing.assert_array_equal(new.values, wald.values)


def test_bad_arguments(computed):
    fit = computed("cbpp", "fit")
    with pytest.raises(ValueError, match="method must be 'profile' or 'wald'"):
        confint(fit, method="boot")
    with pytest.raises(ValueError, match=r"level must be a number in \(0, 1\)"):
        confint(fit, level=95)
    with pytest.raises(ValueError, match=r"unknown parameter '\.sigma'.*\.sig01"):
        confint(fit, parm=".sigma")           # a GLMM has no residual SD
    with pytest.raises(ValueError, match="out of range"):
        confint(fit, method="wald", parm=7)
    with pytest.raises(ValueError, match="alphamax"):
        profile(fit, alphamax=1.5)
