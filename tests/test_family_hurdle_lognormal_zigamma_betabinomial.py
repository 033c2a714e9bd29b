"""The zero-truncated (hurdle), lognormal, ziGamma and betabinomial families.

Family level: log-densities against scipy.stats, normalization, the hurdle / zero-inflation
identities, autodiff derivatives against finite differences, sampler moments and
frequencies, response checks. Model level: glmmTMB 1.1.5 fits (and, for lognormal, which
glmmTMB 1.1.5 lacks, a TMB fit of the later glmmTMB's lognormal likelihood) made by
tests/fixtures/reference_extra/make_refs_families_a.R, in families_a/ there.

Reference tolerances as in test_reference_zi_disp_families.py: the objective at glmmTMB's estimates
equal to glmmTMB's to 1e-8 relative; logLik at least glmmTMB's minus 2e-3; conditional,
zero-inflation and dispersion coefficients within 0.02 of glmmTMB's SE; SEs within 2%;
random-effect SDs and dispersion parameters within 2% (+ 2e-3 absolute for SDs).
"""
from __future__ import annotations

import json
import warnings
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.special as sps
import scipy.stats as st

import glmmjax as gj
from glmmjax.families import (
    BetaBinomial,
    Gamma,
    Lognormal,
    NegativeBinomial1,
    NegativeBinomial2,
    Poisson,
    TruncatedNBinom1,
    TruncatedNBinom2,
    TruncatedPoisson,
    ZiGamma,
    get_family,
)
from glmmjax.families._zero_inflation import zero_inflated_loglik
from reference import random_sds

LINKINV = {
    "log": np.exp,
    "identity": lambda e: e,
    "sqrt": lambda e: e * e,
    "inverse": lambda e: 1.0 / e,
    "logit": sps.expit,
    "probit": st.norm.cdf,
    "cloglog": lambda e: -np.expm1(-np.exp(e)),
}

# Densities and derivatives are evaluated by one compiled function per family, on arrays
# padded to one of these lengths (so that the compiled code is reused across calls).
_LENGTHS = (256, 1024)


def _pad(a, length):
    a = np.asarray(a, float).ravel()
    return np.concatenate([a, np.full(length - a.size, a[0])])


@partial(jax.jit, static_argnames=("fam", "order"))
def _evaluate(fam, order, y, eta, d, size, zi_eta):
    """loglik (zero-inflated when zi_eta is given) and, for order 2, its elementwise
    derivatives: first "e", "d" (, "z") in eta, disp_eta (, zi_eta), second "ee", "dd", "ed"
    (, "zz", "ez", "dz"). A derivative is the gradient of the sum: elementwise, as loglik is.
    Compiled once per family (and kept in the persistent compilation cache)."""
    names = "ed" if zi_eta is None else "edz"
    args = (eta, d) if zi_eta is None else (eta, d, zi_eta)

    def ll(*a):
        v = fam.loglik(y, a[0], a[1], jnp.zeros(0, y.dtype), size)
        return v if zi_eta is None else zero_inflated_loglik(v, y, a[2])

    def grad_of(f, k):
        return lambda *a: jax.grad(lambda v: jnp.sum(f(*a[:k], v, *a[k + 1:])))(a[k])

    out = {"ll": ll(*args)}
    if order:
        for k, c in enumerate(names):
            out[c] = grad_of(ll, k)(*args)
        for c1, c2 in ("ee", "dd", "zz", "ez", "dz", "ed"):
            if c1 in names and c2 in names:
                out[c1 + c2] = grad_of(grad_of(ll, names.index(c1)), names.index(c2))(*args)
    return out


def _derivs(fam, y, eta, d, size=None, zi_eta=None, order=2):
    """_evaluate at arrays (or scalars) y, eta, d, size, zi_eta of one length, padded to a
    _LENGTHS length so that compiled code is shared; numpy arrays of the original length."""
    n = np.asarray(y).size
    L = next(m for m in _LENGTHS if m >= n)
    col = lambda a: None if a is None else jnp.asarray(_pad(np.broadcast_to(np.asarray(a, float), (n,)), L))
    out = _evaluate(fam, order, col(y), col(eta), col(d), col(size), col(zi_eta))
    return {k: np.asarray(v)[:n] for k, v in out.items()}


def _ll(fam, y, eta, d, size=None, zi_eta=None):
    """loglik (optionally zero-inflated) of y at scalar eta, disp_eta d (and zi_eta)."""
    return _derivs(fam, y, eta, d, size, zi_eta, order=0)["ll"]


# ---------------------------------------------------------------------------------------
# log-densities against scipy
# ---------------------------------------------------------------------------------------
def _ref_tpois(y, mu, d, n):
    return st.poisson.logpmf(y, mu) - st.poisson.logsf(0, mu)


def _ref_tnb2(y, mu, d, n):
    th = np.exp(d)
    return st.nbinom.logpmf(y, th, th / (th + mu)) - st.nbinom.logsf(0, th, th / (th + mu))


def _ref_tnb1(y, mu, d, n):
    phi = np.exp(d)
    return st.nbinom.logpmf(y, mu / phi, 1 / (1 + phi)) - st.nbinom.logsf(0, mu / phi, 1 / (1 + phi))


def _ref_lognormal(y, mu, d, n):
    s2 = np.log1p((np.exp(d) / mu) ** 2)
    return st.lognorm.logpdf(y, s=np.sqrt(s2), scale=np.exp(np.log(mu) - s2 / 2))


def _ref_gamma(y, mu, d, n):
    k = np.exp(d)
    return st.gamma.logpdf(y, a=k, scale=mu / k)


def _ref_betabinom(y, mu, d, n):
    phi = np.exp(d)
    return st.betabinom.logpmf(y, n, mu * phi, (1 - mu) * phi)


Y_POSCOUNT = np.array([1, 2, 3, 7, 15, 40], dtype=float)
Y_POS = np.array([0.01, 0.3, 1.0, 2.5, 9.0, 60.0])
SIZE = np.array([1, 5, 12, 40, 40, 60, 100], dtype=float)
Y_BIN = np.array([0, 3, 12, 1, 20, 59, 100], dtype=float)

# (family, y, [(eta, disp_eta), ...], size, scipy reference)
CASES = [
    (TruncatedPoisson(), Y_POSCOUNT, [(0.0, 0.0), (-3.0, 0.0), (3.1, 0.0), (-12.0, 0.0)], None, _ref_tpois),
    (TruncatedPoisson("sqrt"), Y_POSCOUNT, [(0.7, 0.0), (3.0, 0.0)], None, _ref_tpois),
    (TruncatedNBinom2(), Y_POSCOUNT, [(0.0, 0.0), (2.2, -0.62), (-3.0, 1.5), (3.0, 4.0), (1.0, -3.0)], None, _ref_tnb2),
    (TruncatedNBinom2("identity"), Y_POSCOUNT, [(4.0, 0.3)], None, _ref_tnb2),
    (TruncatedNBinom1(), Y_POSCOUNT, [(0.0, 0.0), (2.2, -1.0), (-3.0, 1.5), (3.0, 2.0)], None, _ref_tnb1),
    (Lognormal(), Y_POS, [(0.0, 0.0), (1.2, -1.5), (-1.0, 1.0), (3.0, 2.5)], None, _ref_lognormal),
    (Lognormal("identity"), Y_POS, [(2.0, 0.3)], None, _ref_lognormal),
    (ZiGamma("log"), Y_POS, [(0.0, 0.0), (1.2, 2.5), (-1.0, -1.2)], None, _ref_gamma),
    (ZiGamma(), Y_POS, [(0.5, 0.0), (2.0, 1.5)], None, _ref_gamma),
    (BetaBinomial(), Y_BIN, [(0.0, 0.0), (-3.0, 2.0), (2.5, -1.0), (0.4, 8.0)], SIZE, _ref_betabinom),
    (BetaBinomial("probit"), Y_BIN, [(-0.5, 1.0)], SIZE, _ref_betabinom),
    (BetaBinomial("cloglog"), Y_BIN, [(0.3, 0.5)], SIZE, _ref_betabinom),
]


def _case_id(case):
    return f"{case[0].name}-{type(case[0]).__name__}-{case[0].link.name}"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_loglik_matches_scipy(case):
    fam, y, params, size, ref = case
    for eta, d in params:
        mu = LINKINV[fam.link.name](eta)
        got = _ll(fam, y, eta, d, size)
        # scipy's own log-densities carry ~1e-13 relative rounding at these values
        np.testing.assert_allclose(got, ref(y, mu, d, size), rtol=1e-10, atol=1e-10,
                                   err_msg=f"{fam!r} eta={eta} disp={d}")


@pytest.mark.parametrize("fam", [TruncatedPoisson(), TruncatedNBinom2(), TruncatedNBinom1(), ZiGamma("log")], ids=repr)
def test_zero_has_probability_zero(fam):
    ll = _ll(fam, [0.0, 1.0], 0.5, 0.3)
    assert ll[0] == -np.inf and np.isfinite(ll[1])


# ---------------------------------------------------------------------------------------
# normalization, means and variances
# ---------------------------------------------------------------------------------------
TRUNC = [
    (TruncatedPoisson(), [(0.0, 0.0), (-4.0, 0.0), (3.0, 0.0)]),
    (TruncatedNBinom2(), [(0.0, 0.0), (-4.0, np.log(0.5)), (1.0, np.log(0.5)), (2.0, 3.0)]),
    (TruncatedNBinom1(), [(0.0, 0.0), (-4.0, np.log(3.0)), (1.0, -2.0), (3.0, 1.0)]),
]


@pytest.mark.parametrize("fam,params", TRUNC, ids=lambda v: repr(v) if not isinstance(v, list) else "")
def test_truncated_pmf_sums_to_one_with_its_mean_and_variance(fam, params):
    # support 1..255: the tail beyond is < 1e-17 for these means and dispersions (it decays
    # at least as fast as (mu/(mu + theta))^y = 0.85^y for nbinom2, (phi/(1 + phi))^y = 0.75^y
    # for nbinom1)
    y = np.arange(1.0, 256.0)
    for eta, d in params:
        p = np.exp(_ll(fam, y, eta, d))
        np.testing.assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-12)
        m = float(np.sum(y * p))
        v = float(np.sum((y - m) ** 2 * p))
        mu = np.exp(eta)
        np.testing.assert_allclose(float(fam.mean(jnp.asarray(eta), jnp.asarray(d))), m, rtol=1e-10)
        # variance(mu, disp) takes the untruncated mean, as glmmTMB's family variance functions
        # (cancellation in (v + mu^2)/q - (mu/q)^2: seen 3e-14 relative at mu = e^-4)
        np.testing.assert_allclose(float(fam.variance(jnp.asarray(mu), jnp.asarray(d), None)), v, rtol=1e-11)


def test_truncated_poisson_variance_is_glmmtmbs():
    # glmmTMB::truncated_poisson()$variance(lambda), written out
    lam = np.array([0.05, 1.0, 7.5])
    want = (lam + lam**2) / (1 - np.exp(-lam)) - lam**2 / (1 - np.exp(-lam)) ** 2
    np.testing.assert_allclose(np.asarray(TruncatedPoisson().variance(jnp.asarray(lam), 0.0, None)), want, rtol=1e-12)


def test_betabinomial_pmf_sums_to_one_with_its_mean_and_variance():
    fam = BetaBinomial()
    n = 17.0
    y = np.arange(0.0, n + 1.0)
    for eta, d in [(0.3, 0.0), (-2.0, 3.0), (1.0, -2.0)]:
        p = np.exp(_ll(fam, y, eta, d, n))
        np.testing.assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-12)
        mu = sps.expit(eta)
        m = float(np.sum(y * p)) / n
        v = float(np.sum((y / n - m) ** 2 * p))
        np.testing.assert_allclose(m, float(fam.mean(jnp.asarray(eta))), rtol=1e-10)
        np.testing.assert_allclose(v, float(fam.variance(jnp.asarray(mu), jnp.asarray(d), None, n)), rtol=1e-10)


def test_betabinomial_large_phi_tends_to_binomial():
    # phi = e^30: the beta-binomial is the binomial to ~n^2/phi ~ 1e-9
    got = _ll(BetaBinomial(), Y_BIN, 0.4, 30.0, SIZE)
    np.testing.assert_allclose(got, st.binom.logpmf(Y_BIN, SIZE, sps.expit(0.4)), rtol=0, atol=1e-8)


def test_lognormal_integrates_to_one_with_mean_mu_and_sd_phi():
    # one call on the nodes of a double-exponential rule (step 1/64 in t) on (0, inf)
    from test_families_core import _de_nodes

    x, w = _de_nodes((0.0, np.inf), 1.0 / 64)
    fam = Lognormal()
    for eta, d in [(0.0, 0.0), (1.5, -1.0), (-1.0, 0.8)]:
        f = np.exp(_ll(fam, x, eta, d))
        mu, phi = np.exp(eta), np.exp(d)
        np.testing.assert_allclose(np.sum(w * f), 1.0, atol=1e-9)
        np.testing.assert_allclose(np.sum(w * x * f), mu, rtol=1e-9)
        np.testing.assert_allclose(np.sum(w * (x - mu) ** 2 * f), phi**2, rtol=1e-7)
        np.testing.assert_allclose(float(fam.variance(jnp.asarray(mu), jnp.asarray(d), None)), phi**2, rtol=1e-14)


# ---------------------------------------------------------------------------------------
# hurdle and zero-inflation identities
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fam", [TruncatedPoisson(), TruncatedNBinom2(), TruncatedNBinom1()], ids=repr)
def test_hurdle_probabilities(fam):
    # P(0) = p exactly, P(y) = (1 - p) f(y)/(1 - f(0)); the total is 1 (support 0..255: the
    # tail beyond is below 1e-30 at mu = e^0.8, theta or 1/phi = e^-0.3)
    y = np.arange(0.0, 256.0)
    eta, d, z = 0.8, -0.3, -0.4
    lh = _ll(fam, y, eta, d, zi_eta=z)
    assert lh[0] == float(jax.nn.log_sigmoid(z))
    np.testing.assert_allclose(lh[1:], _ll(fam, y[1:], eta, d) + float(jax.nn.log_sigmoid(-z)), rtol=1e-14)
    np.testing.assert_allclose(np.exp(lh).sum(), 1.0, rtol=0, atol=1e-12)


@pytest.mark.parametrize("fam", [TruncatedNBinom2(), ZiGamma("log")], ids=repr)
def test_hurdle_zero_derivatives(fam):
    # at y = 0 the hurdle log-likelihood is log p: no dependence on eta or the dispersion,
    # d/dz log p = 1 - p and d2/dz2 = -p(1 - p); everything finite (no inf - inf or 0 * inf)
    r = _derivs(fam, [0.0], 0.7, 0.2, zi_eta=0.3)
    p = sps.expit(0.3)
    assert r["ll"][0] == float(jax.nn.log_sigmoid(0.3))
    for key in ("e", "d", "ee", "dd", "ed", "ez", "dz"):
        assert r[key][0] == 0.0, key
    np.testing.assert_allclose(r["z"][0], 1 - p, rtol=1e-14)
    np.testing.assert_allclose(r["zz"][0], -p * (1 - p), rtol=1e-14)


@pytest.mark.parametrize(
    "fam,base,y,size",
    [
        (TruncatedPoisson(), TruncatedPoisson(), Y_POSCOUNT, None),
        (TruncatedNBinom2(), TruncatedNBinom2(), Y_POSCOUNT, None),
        (ZiGamma("log"), Gamma("log"), Y_POS, None),
        (BetaBinomial(), BetaBinomial(), Y_BIN, SIZE),
    ],
    ids=lambda v: repr(v) if hasattr(v, "link") else "",
)
def test_zi_probability_to_zero_is_the_base_family(fam, base, y, size):
    # zi_eta = -50: log(1 - p) = -2e-22 and p f(0) terms vanish below double precision; the
    # positive part of ziGamma is the Gamma family exactly
    for eta, d in [(0.3, 0.5), (-1.0, 2.0)]:
        np.testing.assert_allclose(_ll(fam, y, eta, d, size, zi_eta=-50.0), _ll(base, y, eta, d, size), rtol=1e-14,
                                   atol=0)


# ---------------------------------------------------------------------------------------
# derivatives (autodiff against central differences) and tails
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", [c for c in CASES if c[0].link.name == "log" or isinstance(c[0], BetaBinomial)
                                  and c[0].link.name == "logit"], ids=_case_id)
def test_derivatives_match_finite_differences(case):
    # all parameter values of a case in one call: rows at (eta, d), (eta +- h, d), (eta, d +- 1e-5).
    # Log links (logit for betabinomial) only: each case compiles its second derivatives, and the
    # other links enter through the link code of the existing families (test_families_core.py)
    fam, y, params, size, _ = case
    n, p = y.size, len(params)
    eta = np.array([q[0] for q in params])
    d = np.array([q[1] for q in params])
    h = 1e-5 * np.maximum(1.0, np.abs(eta))
    blocks = [(eta, d), (eta + h, d), (eta - h, d), (eta, d + 1e-5), (eta, d - 1e-5)]
    E = np.concatenate([np.repeat(e, n) for e, _ in blocks])
    D = np.concatenate([np.repeat(dd, n) for _, dd in blocks])
    r = _derivs(fam, np.tile(y, 5 * p), E, D, None if size is None else np.tile(size, 5 * p))
    part = lambda key, b: r[key].reshape(5, p, n)[b]
    hh = h[:, None]
    fd_e = (part("ll", 1) - part("ll", 2)) / (2 * hh)
    fd_ee = (part("e", 1) - part("e", 2)) / (2 * hh)
    fd_d = (part("ll", 3) - part("ll", 4)) / 2e-5
    fd_ed = (part("e", 3) - part("e", 4)) / 2e-5
    # central differences with step 1e-5: truncation ~1e-10, rounding ~1e-11 relative
    for got, fd in [(part("e", 0), fd_e), (part("ee", 0), fd_ee), (part("d", 0), fd_d), (part("ed", 0), fd_ed)]:
        assert np.all(np.isfinite(got))
        np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-6 * (1 + np.abs(got).max()), err_msg=repr(fam))


@pytest.mark.parametrize(
    "fam,y,size,etas,d",
    [
        (TruncatedPoisson(), [1.0, 5.0], None, [-30.0, 20.0], 0.0),
        (TruncatedNBinom2(), [1.0, 5.0], None, [-30.0, 20.0], -8.0),
        (TruncatedNBinom2(), [1.0, 5.0], None, [-30.0, 20.0], 12.0),
        (TruncatedNBinom1(), [1.0, 5.0], None, [-20.0, 15.0], -6.0),
        (Lognormal(), [1e-5, 1e4], None, [-10.0, 10.0], 3.0),
        (BetaBinomial(), [0.0, 3.0, 10.0], 10.0, [-30.0, 30.0], 6.0),
    ],
)
def test_tails_are_finite(fam, y, size, etas, d):
    # extreme linear predictors: finite log-likelihoods and first and second derivatives
    m = len(y)
    r = _derivs(fam, np.tile(y, len(etas)), np.repeat(etas, m), np.full(m * len(etas), d),
                None if size is None else size)
    for key in ("ll", "e", "ee", "d", "ed"):
        assert np.all(np.isfinite(r[key])), (fam, key, r[key])


# ---------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------
N_DRAWS = 200_000   # the length test_families_core.py draws, so compiled samplers are shared

SAMPLE_CASES = [
    (TruncatedPoisson(), 1.2, 0.0, None),
    (TruncatedPoisson(), -3.0, 0.0, None),
    (TruncatedNBinom2(), 1.5, np.log(0.7), None),
    (TruncatedNBinom2(), -3.0, np.log(2.0), None),
    (TruncatedNBinom1(), 1.5, np.log(2.5), None),
    (TruncatedNBinom1(), -2.0, np.log(0.3), None),
    (Lognormal(), 1.0, 0.5, None),
    (BetaBinomial(), 0.6, np.log(3.0), 12.0),
    (ZiGamma("log"), 1.0, np.log(0.8), None),
]


_DRAWS: dict = {}


def _draws(fam, eta, d, size, seed=0):
    key = (fam, eta, d, size, seed)
    if key not in _DRAWS:
        _DRAWS[key] = _draw(fam, eta, d, size, seed)
    return _DRAWS[key]


def _draw(fam, eta, d, size, seed):
    n = N_DRAWS
    sj = None if size is None else jnp.full(n, size)
    return np.asarray(fam.sample(jax.random.PRNGKey(seed), jnp.full(n, eta), jnp.full(n, d), jnp.zeros(0), sj))


@pytest.mark.parametrize("fam,eta,d,size", SAMPLE_CASES, ids=lambda v: repr(v) if hasattr(v, "link") else "")
def test_sample_moments(fam, eta, d, size):
    # tolerance: 5 standard errors of the sample mean and of the sample variance
    y = _draws(fam, eta, d, size)
    n = 1.0 if size is None else size
    mu = float(fam.link.linkinv(jnp.asarray(eta)))
    mean = float(fam.mean(jnp.asarray(eta), jnp.asarray(d))) * n
    var = float(fam.variance(jnp.asarray(mu), jnp.asarray(d), None, None if size is None else size)) * n * n
    assert np.all(np.isfinite(y))
    if fam.discrete:
        assert np.all(y == np.round(y))
    if isinstance(fam, (TruncatedPoisson, TruncatedNBinom1, TruncatedNBinom2, Lognormal, ZiGamma)):
        assert np.all(y > 0)
    if size is not None:
        assert np.all((y >= 0) & (y <= size))
    se_mean = np.sqrt(var / y.size)
    assert abs(y.mean() - mean) < 5 * se_mean, (y.mean(), mean, se_mean)
    sq = (y - y.mean()) ** 2
    se_var = sq.std() / np.sqrt(y.size)
    assert abs(sq.mean() - var) < 5 * se_var, (sq.mean(), var, se_var)


@pytest.mark.parametrize("fam,eta,d", [(TruncatedPoisson(), -3.0, 0.0), (TruncatedNBinom2(), 1.0, np.log(0.7)),
                                       (TruncatedNBinom1(), 0.5, np.log(2.5))],
                         ids=lambda v: repr(v) if hasattr(v, "link") else "")
def test_truncated_sample_frequencies(fam, eta, d):
    # frequencies of y = 1..30 within 5 binomial standard errors of the truncated pmf
    y = _draws(fam, eta, d, None, seed=1)
    k = np.arange(1.0, 31.0)
    p = np.exp(_ll(fam, k, eta, d))
    freq = np.array([np.mean(y == v) for v in k])
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / y.size) + 1e-12)


def test_initial_dispersion_estimates():
    # moment estimates at the true means recover the dispersion within 0.25 on the log scale
    # (from the sampler's draws, the first 20,000)
    n = 20_000
    y = _draws(BetaBinomial(), 0.6, np.log(3.0), 12.0)[:n]
    assert abs(BetaBinomial().initial_disp(y, np.full(n, sps.expit(0.6)), np.full(n, 12.0)) - np.log(3.0)) < 0.25
    y = _draws(Lognormal(), 1.0, 0.5, None)[:n]
    assert abs(Lognormal().initial_disp(y, np.full(n, np.e)) - 0.5) < 0.25
    # truncated nbinom2: the nbinom2 moment estimate on the positive counts (seen 0.12 off)
    y = _draws(TruncatedNBinom2(), 1.5, np.log(0.7), None)[:n]
    fam = TruncatedNBinom2()
    assert abs(fam.initial_disp(y, np.full(n, np.exp(1.5))) - np.log(0.7)) < 0.25
    # zeros (the hurdle part) start at the mean of the positive values
    np.testing.assert_allclose(fam.initial_mu(np.array([0.0, 2.0, 4.0])), [3.1, 2.1, 4.1], rtol=1e-15)
    np.testing.assert_allclose(ZiGamma().initial_mu(np.array([0.0, 2.0, 4.0])), [3.0, 2.0, 4.0], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# names, response checks and model building errors
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,cls,link",
    [("truncated_poisson", TruncatedPoisson, "log"), ("truncated_nbinom1", TruncatedNBinom1, "log"),
     ("truncated_nbinom2", TruncatedNBinom2, "log"), ("lognormal", Lognormal, "log"),
     ("ziGamma", ZiGamma, "inverse"), ("betabinomial", BetaBinomial, "logit")],
)
def test_get_family_names(name, cls, link):
    f = get_family(name)
    assert type(f) is cls and f.link.name == link
    assert f != Poisson() and hash(f) == hash(cls())
    # the truncated families are not their untruncated parents
    assert TruncatedNBinom2() != NegativeBinomial2() and TruncatedNBinom1() != NegativeBinomial1()


@pytest.mark.parametrize(
    "fam,y,size,match",
    [
        (TruncatedPoisson(), [1, -1], None, "non-negative counts"),
        (TruncatedNBinom2(), [1.5, 3], None, "integer counts"),
        (Lognormal(), [1.0, 0.0], None, "strictly positive"),
        (ZiGamma(), [0.0, -0.5], None, "non-negative response"),
        (BetaBinomial(), [3, 6], [5, 5], "successes <= trials"),
        (BetaBinomial(), [0, 2], None, "0/1 values"),
    ],
)
def test_check_response_rejects(fam, y, size, match):
    with pytest.raises(ValueError, match=match):
        fam.check_response(np.asarray(y, float), size)


@pytest.fixture(scope="module")
def small_data():
    rng = np.random.default_rng(5)
    n = 40
    return pd.DataFrame({"y": rng.poisson(2.0, n).astype(float), "x": rng.normal(size=n),
                         "g": np.repeat(list("abcdefgh"), n // 8), "k": np.full(n, 6.0)})


def test_model_errors(small_data):
    df = small_data
    assert np.any(df.y == 0)
    for fam in ("truncated_poisson", "truncated_nbinom2", "truncated_nbinom1"):
        with pytest.raises(ValueError, match=r"zero\(s\).*zero-inflation \(hurdle\) formula, e.g. zi='~1'"):
            gj.GLMM("y ~ x + (1|g)", df, family=fam)
        gj.GLMM("y ~ x + (1|g)", df, family=fam, zi="~1")            # the hurdle model is fine
        gj.GLMM("y ~ x + (1|g)", df[df.y > 0], family=fam)            # and so are positive counts
    with pytest.raises(ValueError,
                       match="zero-inflation .* needs a count or binomial family .*lognormal family is continuous"):
        gj.GLMM("y ~ x + (1|g)", df.assign(y=df.y + 1.0), family="lognormal", zi="~1")
    with pytest.raises(ValueError, match="strictly positive"):
        gj.GLMM("y ~ x + (1|g)", df, family="lognormal")
    with pytest.raises(ValueError, match="zero-inflation .* needs a count or binomial family"):
        gj.GLMM("y ~ x + (1|g)", df.assign(y=df.y + 1.0), family="Gamma", zi="~1")
    with pytest.raises(ValueError, match="ziGamma family needs a non-negative response"):
        gj.GLMM("y ~ x + (1|g)", df.assign(y=df.y - 1.0), family="ziGamma", zi="~1")
    with pytest.raises(ValueError, match=r"zero\(s\).*zi='~1'"):
        gj.GLMM("y ~ x + (1|g)", df, family="ziGamma")
    m = gj.GLMM("y ~ x + (1|g)", df, family=ZiGamma("log"), zi="~x")
    assert m.parameter_names()[-3:] == ["disp:(Intercept)", "zi:(Intercept)", "zi:x"]
    # betabinomial takes cbind() responses as the binomial does
    m = gj.GLMM("cbind(y, k - y) ~ x + (1|g)", df, family="betabinomial")
    np.testing.assert_array_equal(np.asarray(m.data.size), df.k + 0.0)
    np.testing.assert_array_equal(np.asarray(m.data.y), df.y)
    with pytest.raises(ValueError, match="successes <= trials"):
        gj.GLMM("cbind(y, k - y - 5) ~ x + (1|g)", df, family="betabinomial")


# ---------------------------------------------------------------------------------------
# glmmTMB / TMB references
# ---------------------------------------------------------------------------------------
REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_extra" / "families_a"
REFS = {p.stem: json.loads(p.read_text()) for p in sorted(REF_DIR.glob("*.json"))}
FAMILY = {"hurdle_nb2": "truncated_nbinom2", "hurdle_pois": "truncated_poisson", "hurdle_nb1": "truncated_nbinom1",
          "betabinom_cbpp": "betabinomial", "zigamma_sim": ZiGamma("log"), "lognormal_sim": "lognormal"}
# fitted and compared in full; hurdle_nb1 is checked at glmmTMB's estimates only (its fit
# agrees as closely, but one more nbinom fit costs ~20 s of compilation)
FITTED = ["hurdle_nb2", "hurdle_pois", "betabinom_cbpp", "zigamma_sim", "lognormal_sim"]


def _data(ref):
    if ref["dataset_location"] == "families_a":
        return pd.read_csv(REF_DIR / ref["dataset"])
    return gj.datasets.load(ref["dataset"][:-4])


def _model(ref_id):
    ref = REFS[ref_id]
    zi = ref["formula"]["zi"]
    zi = None if zi.replace(" ", "") in ("~0", "") else zi
    return gj.GLMM(ref["formula"]["cond"], _data(ref), family=FAMILY[ref_id], zi=zi)


_FITS: dict = {}


@pytest.fixture(scope="module")
def ref_fit():
    def get(ref_id):
        if ref_id not in _FITS:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                fit = _model(ref_id).fit()
            _FITS[ref_id] = (fit, [str(w.message) for w in caught])
        return REFS[ref_id], _FITS[ref_id][0]
    return get


def _table(ref, key):
    tab = ref.get(key) or []
    return ([e["term"] for e in tab], np.array([e["estimate"] for e in tab], float),
            np.array([e["std_error"] for e in tab], float))


def tmb_parameters(ref, model) -> np.ndarray:
    """glmmTMB's optimum as glmmjax's flat vector beta | theta (SD per block) | betad | betazi."""
    names = ref["tmb_par"]["names"]
    vals = np.array(ref["tmb_par"]["values"], dtype=float)
    pick = lambda nm: vals[[i for i, n in enumerate(names) if n == nm]]
    blocks = [b for b in ref["random_effects"] if b["component"] == "cond"]
    assert all(len(b["terms"]) == 1 for b in blocks), "scalar random-effect terms only"
    sd = dict(zip([b["grouping_factor"] for b in blocks], np.exp(pick("theta"))))
    return np.concatenate([pick("beta"), [sd[b.group] for b in model.blocks], pick("betad"), pick("betazi")])


def test_references_present():
    assert set(REFS) == set(FITTED) | {"hurdle_nb1"}
    for ref in REFS.values():
        assert ref["status"] == "ok" and ref["glmmTMB_version"] == "1.1.5"


@pytest.mark.parametrize("ref_id", sorted(REFS))
def test_objective_at_glmmtmb_estimates(ref_id):
    # seen: at most 5e-12 relative (ziGamma), 3e-14 for the others
    model = _model(ref_id)
    x = tmb_parameters(REFS[ref_id], model)
    assert len(x) == len(model.parameter_names())
    value = float(model.objective()(x))
    assert value == pytest.approx(REFS[ref_id]["estimation"]["objective"], rel=1e-8)


@pytest.mark.parametrize("ref_id", FITTED)
def test_loglik_at_least_glmmtmb(ref_fit, ref_id):
    ref, fit = ref_fit(ref_id)
    assert fit.converged, fit.max_grad
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3, fit.loglik - ref["fit_stats"]["logLik"]
    assert fit.nobs == ref["nobs"]
    assert fit.df == ref["fit_stats"]["logLik_df"]


def _assert_coefficients(ours, our_se, ref, key):
    names, est, se = _table(ref, key)
    assert list(ours.index) == names
    np.testing.assert_array_less(np.abs(ours.values - est), 0.02 * se)
    np.testing.assert_array_less(np.abs(our_se.values / se - 1), 0.02)


@pytest.mark.parametrize("ref_id", FITTED)
def test_coefficients(ref_fit, ref_id):
    # seen: estimates within 1.0e-4 SE and SEs within 3.7e-6 relative of glmmTMB's
    ref, fit = ref_fit(ref_id)
    _assert_coefficients(fit.fixef, fit.se, ref, "fixed_effects")
    if ref.get("zi_coefficients"):
        _assert_coefficients(fit.zi_fixef, fit.zi_se, ref, "zi_coefficients")
    else:
        assert fit.zi_fixef is None
    if ref.get("disp_coefficients"):
        _assert_coefficients(fit.disp_fixef, fit.disp_se, ref, "disp_coefficients")
    else:
        assert fit.disp_fixef is None


@pytest.mark.parametrize("ref_id", FITTED)
def test_random_effect_sds_and_dispersion(ref_fit, ref_id):
    # betabinom_cbpp's herd SD is at the boundary (glmmTMB 1.4e-4, glmmjax ~1e-8): the
    # absolute 2e-3 covers it, as in test_reference_zi_disp_families.py
    ref, fit = ref_fit(ref_id)
    vc = fit.varcorr
    ours = {(r.group, r.term1): r.sd for r in vc.itertuples() if pd.isna(r.term2) and r.group != "Residual"}
    theirs = random_sds(ref)
    assert set(ours) == set(theirs)
    for key, sd in theirs.items():
        assert abs(ours[key] - sd) <= 0.02 * sd + 2e-3, (key, ours[key], sd)
    params = ref["dispersion"]["parameters"] or {}
    assert set(params) <= set(fit.dispersion_parameters)
    for name, val in params.items():
        assert fit.dispersion_parameters[name] == pytest.approx(val, rel=0.02), name


@pytest.mark.parametrize("ref_id", FITTED)
def test_predictions(ref_fit, ref_id):
    # glmmTMB's predict() on the fitted rows: "response" is the mean of y ((1 - p) mu / (1 - f(0))
    # for the hurdle models), "conditional" the mean of the count part (mu / (1 - f(0))), "zprob"
    # p. The two fits' estimates differ by <= 1e-4 SE; seen: at most 1.4e-5 relative (ziGamma's
    # zprob), 5.4e-6 for the means, and linear predictors within 5.4e-6.
    ref, fit = ref_fit(ref_id)
    for kind, want in ref["predictions"].items():
        got = fit.predict(type=kind)
        if kind == "link":
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-4)
        else:
            np.testing.assert_allclose(got, want, rtol=1e-4, err_msg=kind)


@pytest.mark.parametrize("ref_id", ["hurdle_nb2", "hurdle_pois"])
def test_hurdle_response_mean_formula(ref_fit, ref_id):
    # predict(type="response") is (1 - p) mu / (1 - f(0)), computed here with scipy from the
    # fit's own linear predictors and parameters
    ref, fit = ref_fit(ref_id)
    mu = np.exp(fit.predict(type="link"))
    p = sps.expit(np.asarray(fit.model.data.Xzi) @ fit.zi_fixef.values)
    if ref_id == "hurdle_nb2":
        th = fit.dispersion_parameters["theta"]
        f0 = st.nbinom.pmf(0, th, th / (th + mu))
    else:
        f0 = st.poisson.pmf(0, mu)
    np.testing.assert_allclose(fit.predict(type="response"), (1 - p) * mu / (1 - f0), rtol=1e-12)
    np.testing.assert_allclose(fit.predict(type="zprob"), p, rtol=1e-12)
    # on new data too (the data's first rows)
    new = fit.model.frame.iloc[:5]
    np.testing.assert_allclose(fit.predict(newdata=new, type="response"), ((1 - p) * mu / (1 - f0))[:5], rtol=1e-12)


def test_hurdle_simulation(ref_fit):
    # conditional on the modes (re_form=None) the simulated mean of each row is the predicted
    # response; zeros come only from the hurdle. Tolerances: 5 standard errors over the
    # 400 x 403 draws (rows' draws independent given the modes).
    ref, fit = ref_fit("hurdle_pois")
    y = fit.simulate(nsim=400, seed=3, re_form=None)
    assert y.shape == (400, fit.nobs)
    assert np.all((y == np.round(y)) & (y >= 0))
    pred = fit.predict(type="response")
    p = fit.predict(type="zprob")
    mu = np.exp(fit.predict(type="link"))
    tp = TruncatedPoisson()
    var = (1 - p) * (np.asarray(tp.variance(jnp.asarray(mu), 0.0, None)) + (pred / (1 - p)) ** 2) - pred**2
    se = np.sqrt(np.sum(var) / 400) / fit.nobs
    assert abs(y.mean() - pred.mean()) < 5 * se
    pz = float(np.mean(y == 0))
    assert abs(pz - p.mean()) < 5 * np.sqrt(np.mean(p * (1 - p)) / y.size)


@pytest.mark.parametrize("ref_id", ["betabinom_cbpp", "zigamma_sim", "hurdle_nb2"])
def test_deviance_residuals_are_refused(ref_fit, ref_id):
    # no saturated model is defined for these families (nor does glmmTMB give deviance residuals)
    _, fit = ref_fit(ref_id)
    with pytest.raises(ValueError, match="deviance residuals are not defined"):
        fit.residuals(type="deviance")
    assert np.all(np.isfinite(fit.residuals(type="pearson")))
