"""predict / simulate / residuals against their definitions and R's reference values."""
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import glmmjax as gj
from glmmjax.datasets import load
from glmmjax.results._predict import unit_deviance

REF = Path(__file__).parent / "fixtures" / "reference"


def _ref(name):
    return json.loads((REF / f"{name}.json").read_text())


def _fit(formula, data, family="gaussian"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gj.glmm(formula, data, family)


def _scaled_resid_quantiles(ref):
    """Min, 1Q, Median, 3Q, Max of the 'Scaled residuals' block of R's summary."""
    lines = ref["summary_text"]
    i = lines.index("Scaled residuals: ")
    return np.array([float(v) for v in lines[i + 2].split()])


@pytest.fixture(scope="module")
def sleep():
    d = load("sleepstudy")
    return d, _fit("Reaction ~ Days + (Days | Subject)", d)


@pytest.fixture(scope="module")
def grouse():
    d = load("grouseticks")
    return d, _fit("TICKS ~ YEAR + (1 | LOCATION)", d, "poisson")


@pytest.fixture(scope="module")
def cbpp():
    d = load("cbpp")
    return d, _fit("cbind(incidence, size - incidence) ~ period + (1 | herd)", d, "binomial")


ALL = ["sleep", "grouse", "cbpp"]
REFS = {"sleep": "sleepstudy_lmer_reml_slope", "grouse": "grouseticks_glmer_pois_loc", "cbpp": "cbpp_glmer_binom"}


# -- predict ---------------------------------------------------------------------------------

@pytest.mark.parametrize("which", ALL)
def test_predict_fitted_data(which, request):
    data, fit = request.getfixturevalue(which)
    np.testing.assert_allclose(fit.predict(type="link"), fit.eta, rtol=0, atol=1e-10)
    np.testing.assert_allclose(fit.predict(), fit.fitted(), rtol=0, atol=1e-10)
    # rebuilt from newdata = the fitted data
    np.testing.assert_allclose(fit.predict(data, type="link"), fit.eta, rtol=0, atol=1e-8)
    # population level: X beta (+ offset)
    Xb = np.asarray(fit.model.design.X) @ fit.fixef.values
    np.testing.assert_allclose(fit.predict(re_form="~0", type="link"), Xb, atol=1e-10)
    np.testing.assert_allclose(fit.predict(re_form="NA", type="link"), Xb, atol=1e-10)
    np.testing.assert_allclose(fit.predict(data, re_form="~0", type="link"), Xb, atol=1e-8)


@pytest.mark.parametrize("which", ALL)
def test_predict_subset_and_reference(which, request):
    data, fit = request.getfixturevalue(which)
    full = fit.predict(type="link")
    rows = np.array([0, 3, 7, 11, len(data) - 1])
    sub = data.iloc[rows].reset_index(drop=True)
    np.testing.assert_allclose(fit.predict(sub, type="link"), full[rows], atol=1e-8)
    np.testing.assert_allclose(fit.predict(sub), fit.fitted()[rows], atol=1e-10)
    # R's fitted values on the first 10 rows. Our LMM estimates match lme4's to ~1e-7; lme4's
    # glmer (Nelder-Mead) stops short of the optimum (our logLik is higher by 1e-3 for
    # grouseticks, 3e-4 for cbpp; intercepts differ by ~1e-3), so the GLMMs agree to ~1e-3.
    head = _ref(REFS[which])["fitted_head"]
    rtol = 1e-6 if which == "sleep" else 3e-3
    np.testing.assert_allclose(fit.predict(data.iloc[:10], type="response"), head["response"], rtol=rtol)
    np.testing.assert_allclose(fit.predict(data.iloc[:10], type="link"), head["link"], rtol=rtol, atol=1e-3)


@pytest.mark.parametrize("which", ["sleep", "cbpp"])
def test_predict_with_r_estimates(which, request):
    """With R's fixed effects and conditional modes plugged in, predict reproduces R exactly.

    The first 10 rows of both datasets use only the first levels, whose modes the reference
    JSON lists."""
    data, fit = request.getfixturevalue(which)
    ref = _ref(REFS[which])
    beta = pd.Series([e["estimate"] for e in ref["fixed_effects"]], index=fit.fixef.index)
    cm = ref["conditional_modes"][0]
    modes = fit.modes[0].copy()
    R = np.column_stack([cm["modes"][t] for t in cm["terms"]])
    modes[: len(R)] = R
    fit_r = dataclasses.replace(fit, fixef=beta, modes=(modes,))
    head = ref["fitted_head"]
    np.testing.assert_allclose(fit_r.predict(data.iloc[:10], type="link"), head["link"], rtol=1e-10)
    np.testing.assert_allclose(fit_r.predict(data.iloc[:10]), head["response"], rtol=1e-10)


def test_predict_new_levels(sleep, grouse):
    data, fit = sleep
    new = data.iloc[:3].copy()
    new["Subject"] = new["Subject"].astype(str)
    new.loc[:, "Subject"] = "999"
    pop = fit.predict(new, re_form="~0")
    np.testing.assert_allclose(fit.predict(new), pop, atol=1e-10)
    np.testing.assert_allclose(pop, fit.fixef["(Intercept)"] + fit.fixef["Days"] * new["Days"].to_numpy(), atol=1e-10)
    # a re_form naming the (only) grouping factor is the same as conditioning on all
    np.testing.assert_allclose(fit.predict(re_form="~(Days | Subject)"), fit.predict(), atol=1e-10)
    with pytest.raises(ValueError, match="Herd"):
        fit.predict(re_form="~(1|Herd)")
    with pytest.raises(ValueError, match=r"'999'.*Subject"):
        fit.predict(new, allow_new_levels=False)
    # population-level predictions do not need known levels
    np.testing.assert_allclose(fit.predict(new, re_form="~0", allow_new_levels=False), pop)
    # a mix of a known and a new level: only the new row falls back to the population value
    data_g, fit_g = grouse
    mix = data_g.iloc[[0, 1]].copy()
    mix["LOCATION"] = mix["LOCATION"].astype(str)
    mix.iloc[1, mix.columns.get_loc("LOCATION")] = "new"
    p = fit_g.predict(mix, type="link")
    assert p[0] == pytest.approx(fit_g.eta[0], abs=1e-10)
    assert p[1] == pytest.approx(fit_g.predict(mix, re_form="~0", type="link")[1], abs=1e-12)
    with pytest.raises(ValueError, match="type"):
        fit_g.predict(type="prob")


# -- simulate --------------------------------------------------------------------------------

def test_simulate_lmm(sleep):
    data, fit = sleep
    s1 = fit.simulate(nsim=3, seed=42)
    assert s1.shape == (3, len(data))
    np.testing.assert_array_equal(s1, fit.simulate(nsim=3, seed=42))
    assert not np.allclose(s1, fit.simulate(nsim=3, seed=43))
    # new random effects: E y = X beta, Var y_i = z_i' Sigma z_i + sigma^2. The mean of N
    # draws has SD sqrt(Var / N); |z| < 5 on all 180 rows fails with probability < 1e-4.
    N = 2000
    s = fit.simulate(nsim=N, seed=1)
    Xb = np.asarray(fit.model.design.X) @ fit.fixef.values
    Z = np.asarray(fit.model.blocks[0].Z)
    v = np.einsum("ij,jk,ik->i", Z, fit.covariances[0], Z) + fit.sigma ** 2
    assert np.max(np.abs(s.mean(0) - Xb) / np.sqrt(v / N)) < 5
    # the spread across draws of one row estimates v (chi-square: relative SD sqrt(2/N) = 3%)
    np.testing.assert_allclose(s.var(0).mean() / v.mean(), 1.0, atol=0.1)
    # conditional on the modes: E y = eta, Var y = sigma^2
    sc = fit.simulate(nsim=N, seed=2, re_form=None)
    assert np.max(np.abs(sc.mean(0) - fit.eta) / np.sqrt(fit.sigma ** 2 / N)) < 5
    np.testing.assert_allclose(np.sqrt(sc.var(0).mean()), fit.sigma, rtol=0.05)


def test_simulate_poisson(grouse):
    data, fit = grouse
    N = 4000
    s = fit.simulate(nsim=N, seed=3)
    assert s.shape == (N, len(data))
    assert np.all(s >= 0) and np.all(s == np.round(s))
    # marginal (log-normal Poisson): E y = exp(x'b + s2/2), Var y = E y + (E y)^2 (exp(s2) - 1)
    s2 = fit.covariances[0][0, 0]
    m = np.exp(np.asarray(fit.model.design.X) @ fit.fixef.values + s2 / 2)
    v = m + m ** 2 * (np.exp(s2) - 1)
    assert np.max(np.abs(s.mean(0) - m) / np.sqrt(v / N)) < 5
    # conditional: Poisson(mu) around the fitted means
    sc = fit.simulate(nsim=N, seed=4, re_form=None)
    mu = fit.fitted()
    assert np.max(np.abs(sc.mean(0) - mu) / np.sqrt(mu / N)) < 5


def test_simulate_binomial(cbpp):
    data, fit = cbpp
    size = data["size"].to_numpy(float)
    s = fit.simulate(nsim=500, seed=5)
    assert s.shape == (500, len(data))
    assert np.all(s == np.round(s)) and np.all(s >= 0) and np.all(s <= size)
    sc = fit.simulate(nsim=2000, seed=6, re_form=None)
    mu = fit.fitted()
    sd = np.sqrt(size * mu * (1 - mu) / 2000)
    assert np.max(np.abs(sc.mean(0) - size * mu) / sd) < 5


# -- residuals -------------------------------------------------------------------------------

def test_residuals_lmm(sleep):
    data, fit = sleep
    r = fit.residuals()
    np.testing.assert_allclose(r, data["Reaction"].to_numpy() - fit.fitted(), atol=1e-10)
    # PLS normal equations: X' r = 0 (so the residuals sum to zero)
    X = np.asarray(fit.model.design.X)
    np.testing.assert_allclose(X.T @ r, 0.0, atol=1e-6)
    # lme4: pearson = deviance = response residuals (unit weights, not divided by sigma)
    np.testing.assert_allclose(fit.residuals("pearson"), r, atol=1e-12)
    np.testing.assert_allclose(fit.residuals("deviance"), r, atol=1e-12)
    # REML: sigma^2 (n - p) = ||r||^2 + ||u||^2 with b_j = Lambda u_j, Lambda Lambda' = Sigma / sigma^2
    Lam = np.linalg.cholesky(fit.covariances[0] / fit.sigma ** 2)
    u = np.linalg.solve(Lam, fit.modes[0].T)
    n, p = X.shape
    np.testing.assert_allclose(np.sum(r ** 2) + np.sum(u ** 2), fit.sigma ** 2 * (n - p), rtol=1e-8)
    # R's summary: quantiles of the scaled residuals (pearson / sigma), 4 decimals
    q = np.quantile(fit.residuals("pearson") / fit.sigma, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(q, _scaled_resid_quantiles(_ref(REFS["sleep"])), atol=1e-4)


def test_residuals_poisson(grouse):
    data, fit = grouse
    y = data["TICKS"].to_numpy(float)
    mu = fit.fitted()
    np.testing.assert_allclose(fit.residuals(), y - mu, atol=1e-12)
    np.testing.assert_allclose(fit.residuals("pearson"), (y - mu) / np.sqrt(mu), atol=1e-12)
    d = fit.residuals("deviance")
    assert np.all(np.sign(d) == np.sign(y - mu))
    # deviance = 2 (l_saturated - l(mu)), computed independently with scipy
    sat = np.where(y > 0, stats.poisson.logpmf(y, np.where(y > 0, y, 1.0)), 0.0)
    dev = 2 * np.sum(sat - stats.poisson.logpmf(y, mu))
    np.testing.assert_allclose(np.sum(d ** 2), dev, rtol=1e-10)
    ref = _ref(REFS["grouse"])
    # lme4's deviance(m) of a glmer fit: sum of squared deviance residuals at the modes
    np.testing.assert_allclose(np.sum(d ** 2), ref["fit_stats"]["deviance_R_fn"], rtol=1e-4)
    q = np.quantile(fit.residuals("pearson"), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(q, _scaled_resid_quantiles(ref), atol=2e-3)


def test_residuals_binomial(cbpp):
    data, fit = cbpp
    y, n = data["incidence"].to_numpy(float), data["size"].to_numpy(float)
    mu = fit.fitted()
    r = fit.residuals()
    np.testing.assert_allclose(r, y / n - mu, atol=1e-12)
    np.testing.assert_allclose(fit.residuals("pearson"), r / np.sqrt(mu * (1 - mu) / n), atol=1e-12)
    d = fit.residuals("deviance")
    sat = stats.binom.logpmf(y, n, y / n)
    dev = 2 * np.sum(sat - stats.binom.logpmf(y, n, mu))
    np.testing.assert_allclose(np.sum(d ** 2), dev, rtol=1e-10)
    ref = _ref(REFS["cbpp"])
    np.testing.assert_allclose(np.sum(d ** 2), ref["fit_stats"]["deviance_R_fn"], rtol=1e-4)
    q = np.quantile(fit.residuals("pearson"), [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(q, _scaled_resid_quantiles(ref), atol=2e-3)
    with pytest.raises(ValueError, match="type"):
        fit.residuals("working")


# -- unit deviance (no fits) -----------------------------------------------------------------

def test_unit_deviance_families():
    """2 (l(y; mu_sat) - l(y; mu)) against scipy, including y = 0, for every family."""
    fam = gj.families.get_family
    y = np.array([0.0, 1.0, 3.0, 10.0])
    mu = np.array([0.5, 2.0, 3.0, 6.0])
    # nbinom2 (theta = 2): saturated mean y
    th = 2.0
    ll = lambda m: stats.nbinom.logpmf(y, th, th / (th + m))
    want = 2 * (ll(np.where(y > 0, y, 1e-300)) - ll(mu))
    got = unit_deviance(fam("nbinom2"), y, mu, np.log(th), np.zeros(0))
    np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-10)
    # nbinom1 (phi = 0.7): saturated mean by maximizing over mu, >= the value at mu = y
    phi = 0.7
    ll1 = lambda yy, m: stats.nbinom.logpmf(yy, m / phi, 1 / (1 + phi))
    got = np.asarray(unit_deviance(fam("nbinom1"), y, mu, np.log(phi), np.zeros(0)))
    from scipy.optimize import minimize_scalar

    for i in range(len(y)):
        if y[i] == 0:
            sat = 0.0
        else:
            sat = -minimize_scalar(lambda lm: -ll1(y[i], np.exp(lm)), bracket=(np.log(y[i]) - 1, np.log(y[i]) + 1)).fun
        assert got[i] == pytest.approx(2 * (sat - ll1(y[i], mu[i])), rel=1e-6, abs=1e-9)
        assert got[i] >= 0
    assert got[2] == pytest.approx(0.0, abs=1e-8) or got[2] >= 0
    # Gamma and gaussian: R's dispersion-free dev.resids
    yg, mg = np.array([0.5, 1.0, 4.0]), np.array([1.0, 1.0, 2.0])
    np.testing.assert_allclose(unit_deviance(fam("Gamma"), yg, mg, 0.3, np.zeros(0)),
                               -2 * (np.log(yg / mg) - (yg - mg) / mg), rtol=1e-12)
    np.testing.assert_allclose(unit_deviance(fam("gaussian"), yg, mg, 0.3, np.zeros(0)), (yg - mg) ** 2)
    # beta (phi = 5): saturated mean maximizes the density over mu
    yb, mb = np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.5, 0.6])
    phib = 5.0
    llb = lambda yy, m: stats.beta.logpdf(yy, m * phib, (1 - m) * phib)
    got = np.asarray(unit_deviance(fam("beta"), yb, mb, np.log(phib), np.zeros(0)))
    for i in range(3):
        sat = -minimize_scalar(lambda m: -llb(yb[i], m), bounds=(1e-6, 1 - 1e-6), method="bounded",
                               options={"xatol": 1e-12}).fun
        assert got[i] == pytest.approx(2 * (sat - llb(yb[i], mb[i])), rel=1e-6, abs=1e-9)
    # t (sigma = 1.5, df = 4): saturated mean y
    yt, mt = np.array([-1.0, 0.0, 3.0]), np.array([0.0, 0.0, 1.0])
    llt = lambda m: stats.t.logpdf(yt, 4.0, loc=m, scale=1.5)
    np.testing.assert_allclose(unit_deviance(fam("t"), yt, mt, np.log(1.5), np.array([np.log(4.0)])),
                               2 * (llt(yt) - llt(mt)), rtol=1e-10, atol=1e-12)
