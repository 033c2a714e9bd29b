"""Estimated marginal means (glmmjax.inference._emmeans) against R's emmeans 1.8.4-1.

R values: tests/fixtures/reference_inference/emmeans_<id>.json, made by make_refs_anova.R
there: for each model several emmeans() calls (specs, by, type, at) with their tables,
linear functions (emmGrid@linfct) and pairs() tables under several adjustments. emmeans was
run with asymptotic degrees of freedom (lmer.df = "asymptotic"; df = Inf for glmmTMB), except
one fungicide call that keeps glmmTMB 1.1.5's default df = df.residual (58).

Tiers, as in test_wald_anova.py:
* at R's estimates (``coef=``, ``vcov=``): the linear functions equal R's to 1e-12 and every
  table to 1e-9, Tukey p-values to 1e-10 absolute (R's ptukey and scipy's studentized_range
  both integrate numerically; they were seen to differ by <= 1.5e-11 absolute and to lose
  relative accuracy below 1e-9: 3.4e-14 in R is 0 in scipy), for every model and call;
* end to end on glmmjax's fits, with the tolerances of test_wald_anova.TOL (exact GLM / LMM
  1e-6, Laplace GLMMs against glmmTMB 5e-4; the issue asks for 0.5%).
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import glmmjax as gj
from glmmjax.inference._emmeans import emmeans, reference_grid
from test_wald_anova import REF_DIR, TOL, model_fit

IDS = sorted(p.stem[len("emmeans_"):] for p in REF_DIR.glob("emmeans_*.json"))
REFS = {i: json.loads((REF_DIR / f"emmeans_{i}.json").read_text()) for i in IDS}
CASES = [(i, k) for i in IDS for k in range(len(REFS[i]["cases"]))]
TIGHT = 1e-9
TUKEY_ATOL = 1e-10


def _ids(cases):
    return [f"{i}-{k}" for i, k in cases]


def _values(vals):
    """R's column as numbers (JSON null = R's Inf for df) or strings."""
    if vals and isinstance(vals[0], str):
        return vals
    return np.array([np.inf if v is None else v for v in vals], float)


def _call(fit, case, **kw):
    df = None if case["df"] == "asymptotic" else fit.df_resid
    return emmeans(fit, case["specs"], by=case["by"], type=case["type"], at=case["at"], df=df, **kw)


def _label_columns(case):
    return list(case["specs"]) + list(case["by"] or [])


def _compare(ours: pd.DataFrame, ref: dict, label_cols, rtol, p_rtol, tukey):
    """Columns and names exactly; labels exactly; numbers within rtol (of the column's scale)."""
    assert list(ours.columns) == list(ref)
    for col, vals in ref.items():
        want = _values(vals)
        got = ours[col]
        if col == "contrast" or col in label_cols:
            assert [str(v) if isinstance(want, list) else float(v) for v in got] == list(want), col
            continue
        got = got.to_numpy(dtype=float)
        if col == "df":
            np.testing.assert_array_equal(got, want)
        elif col == "p.value":
            if tukey:
                np.testing.assert_allclose(got, want, rtol=max(p_rtol, 1e-6), atol=TUKEY_ATOL)
            else:
                np.testing.assert_allclose(got, want, rtol=p_rtol, atol=1e-300)
        else:
            scale = np.max(np.abs(want[np.isfinite(want)])) if np.any(np.isfinite(want)) else 1.0
            np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * scale, err_msg=col)


@pytest.mark.parametrize("ref_id, k", CASES, ids=_ids(CASES))
def test_emmeans_at_r_estimates(ref_id, k, reference_fit):
    """Reference grid, averaging, back-transformation, contrasts and adjustments on R's
    estimates reproduce emmeans' tables."""
    ref = REFS[ref_id]
    case = ref["cases"][k]
    fit = model_fit(ref_id, reference_fit)
    beta, V = np.array(ref["fixef"]["values"]), np.array(ref["vcov"])
    emm = _call(fit, case, coef=beta, vcov=V)
    np.testing.assert_allclose(emm.L, np.array(case["linfct"]), rtol=0, atol=1e-12)
    _compare(emm.table, case["table"], _label_columns(case), TIGHT, TIGHT, False)
    for pr in case["pairs"]:
        ours = emm.pairs(adjust=pr["adjust"], type=pr["type"])
        _compare(ours, pr["table"], _label_columns(case), TIGHT, 1e-7, pr["adjust"] == "tukey")


END_TO_END = [(i, k) for i, k in CASES if i in TOL]


@pytest.mark.parametrize("ref_id, k", END_TO_END, ids=_ids(END_TO_END))
def test_emmeans_matches_r(ref_id, k, reference_fit):
    """emmeans on glmmjax's own fit against emmeans on R's fit of the same model."""
    case = REFS[ref_id]["cases"][k]
    fit = model_fit(ref_id, reference_fit)
    emm = _call(fit, case)
    tol = TOL[ref_id]
    _compare(emm.table, case["table"], _label_columns(case), tol, tol, False)
    for pr in case["pairs"]:
        ours = emm.pairs(adjust=pr["adjust"], type=pr["type"])
        stat = _values(pr["table"].get("z.ratio") or pr["table"].get("t.ratio"))
        # d log p / d z ~ -z in the tail: p inherits a relative error ~ z^2 times z's
        p_rtol = tol * max(1.0, float(np.max(stat ** 2)))
        _compare(ours, pr["table"], _label_columns(case), tol, p_rtol, pr["adjust"] == "tukey")


def test_acceptance_seeds_and_beta(reference_fit):
    """The issue's two models, as emmeans prints them (3-4 significant digits)."""
    seeds = emmeans(model_fit("seeds_glm", reference_fit), "~ extract * gen", type="response")
    np.testing.assert_allclose(seeds.table["prob"], [0.364, 0.681, 0.398, 0.532], atol=5e-4)
    pairs = seeds.pairs()
    assert list(pairs.columns) == ["contrast", "odds.ratio", "SE", "df", "null", "z.ratio", "p.value"]
    assert pairs["contrast"].iloc[0] == "bean O75 / cucumber O75"
    np.testing.assert_allclose(pairs["p.value"].iloc[1:3], [0.9142, 0.0062], atol=5e-5)
    beta = emmeans(model_fit("fungicide_beta", reference_fit), "fungicide", type="response")
    assert list(beta.table.columns) == ["fungicide", "response", "SE", "df", "asymp.LCL", "asymp.UCL"]
    np.testing.assert_allclose(beta.table["response"], [0.3231, 0.1729, 0.1089, 0.1811], atol=5e-5)


def test_tukey_with_infinite_df_is_the_normal_range():
    """scipy's studentized range at df = inf is the range of k normals (emmeans' asymptotic
    Tukey): for k = 2 it is the two-sided normal p-value of z = q / sqrt(2)."""
    z = np.array([0.5, 1.96, 3.0])
    np.testing.assert_allclose(stats.studentized_range.sf(np.sqrt(2) * z, 2, np.inf),
                               2 * stats.norm.sf(z), rtol=1e-8)


def test_reference_grid_keeps_two_valued_covariates(reference_fit):
    """emmeans' cov.keep = "2": nutrient (1 or 8) and rack (1 or 2) stay as two values each;
    with at= a covariate takes the values given."""
    fit = model_fit("arabidopsis_tmb_zip", reference_fit)
    grid, X = reference_grid(fit)
    assert len(grid) == 2 * 2 * 3 * 2 * 3 and X.shape == (72, fit.fixef.size)
    assert sorted(set(grid["nutrient"])) == [1.0, 8.0] and sorted(set(grid["rack"])) == [1.0, 2.0]
    grid8, _ = reference_grid(fit, at={"nutrient": 8, "status": ["Normal", "Transplant"]})
    assert set(grid8["nutrient"]) == {8.0} and list(dict.fromkeys(grid8["status"])) == ["Normal", "Transplant"]
    exam = model_fit("exam_lmer_reml_int", reference_fit)
    g, _ = reference_grid(exam)
    frame = exam.model.frame
    assert g["standLRT"].tolist() == pytest.approx([frame["standLRT"].mean()] * 2, rel=1e-12)


def test_means_do_not_depend_on_contrasts(reference_fit):
    """Marginal means and their comparisons are the same under any coding of the factors."""
    a = emmeans(model_fit("seeds_glm", reference_fit), "extract", by="gen")
    b = emmeans(model_fit("seeds_glm_sum", reference_fit), "extract", by="gen")
    pd.testing.assert_frame_equal(a.table, b.table, rtol=1e-6)
    pd.testing.assert_frame_equal(a.pairs(), b.pairs(), rtol=1e-6)


def test_specs_forms_agree(reference_fit):
    fit = model_fit("seeds_glm", reference_fit)
    by = emmeans(fit, "extract", by="gen").table
    pd.testing.assert_frame_equal(emmeans(fit, "~ extract | gen").table, by)
    both = emmeans(fit, ["extract", "gen"]).table
    pd.testing.assert_frame_equal(emmeans(fit, "~ extract * gen").table, both)
    np.testing.assert_allclose(both["emmean"], by["emmean"], rtol=1e-12)


def test_holm_and_bonferroni_adjustments(reference_fit):
    emm = emmeans(model_fit("fungicide_beta", reference_fit), "fungicide")
    raw = emm.pairs(adjust="none")["p.value"].to_numpy()
    m = raw.size
    np.testing.assert_allclose(emm.pairs(adjust="bonferroni")["p.value"], np.minimum(1, m * raw))
    holm = emm.pairs(adjust="holm")["p.value"].to_numpy()
    order = np.argsort(raw)
    assert np.all(np.diff(holm[order]) >= 0) and np.all(holm >= raw)
    assert holm[order[0]] == pytest.approx(m * raw[order[0]], rel=1e-12)


def test_emmeans_errors(reference_fit):
    fit = model_fit("seeds_glm", reference_fit)
    with pytest.raises(ValueError, match=r"\['plate'\] are not variables of the fixed effects"):
        emmeans(fit, "plate")
    with pytest.raises(ValueError, match="type must be 'link' or 'response'"):
        emmeans(fit, "extract", type="prob")
    with pytest.raises(ValueError, match="appear in both specs and by"):
        emmeans(fit, "extract", by="extract")
    with pytest.raises(ValueError, match=r"at\['gen'\] has levels \['O99'\]"):
        emmeans(fit, "extract", at={"gen": ["O99"]})
    with pytest.raises(ValueError, match="at= names"):
        emmeans(fit, "extract", at={"germ": 3})
    with pytest.raises(ValueError, match="coef and vcov must have 4 entries"):
        emmeans(fit, "extract", coef=np.zeros(3))
    with pytest.raises(ValueError, match="adjust must be one of"):
        emmeans(fit, "extract").pairs(adjust="scheffe")
    with pytest.raises(ValueError, match="level must be in"):
        emmeans(fit, "extract", level=95)
    # emmeans reads only model, fixef and vcov: an unfitted model with made-up estimates will do
    model = gj.GLMM("TICKS ~ YEAR + offset(log(HEIGHT)) + (1 | LOCATION)",
                    gj.datasets.load("grouseticks"), family="poisson")
    names = list(model.fixed_names)
    stand_in = SimpleNamespace(model=model, fixef=pd.Series(np.zeros(3), index=names),
                               vcov=pd.DataFrame(np.eye(3), index=names, columns=names))
    with pytest.raises(ValueError, match="does not support models with an offset"):
        emmeans(stand_in, "YEAR")
