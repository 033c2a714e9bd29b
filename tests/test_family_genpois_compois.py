"""The generalized Poisson (genpois) and Conway-Maxwell-Poisson (compois) families.

Family level: log-masses against independent float64 numpy evaluations (scipy has neither
distribution): Consul's formula written out for genpois; for compois the mass normalized by
brute-force summation over 0..5999 with lambda found by root-finding on that sum's mean.
Also: glmmTMB's own log-mass values and compois variances (pointwise.json), normalization
with the stated means and variances, zero-inflation identities, autodiff derivatives
against finite differences, sampler moments and frequencies, float32, response checks.
Model level: glmmTMB 1.1.5 fits of simulated data made by
tests/fixtures/reference_extra/make_refs_families_b.R (in families_b/ there).

Reference tolerances as in test_reference_zi_disp_families.py: the objective at glmmTMB's estimates
equal to glmmTMB's to 1e-8 relative; logLik at least glmmTMB's minus 2e-3; coefficients
within 0.02 of glmmTMB's SE; SEs within 2%; random-effect SDs and dispersion within 2%
(+ 2e-3 absolute for SDs).
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
from scipy.optimize import brentq
from scipy.special import expit, gammaln, logsumexp

import glmmjax as gj
from glmmjax.families import ConwayMaxwellPoisson, GeneralizedPoisson, Poisson, get_family
from glmmjax.families._compois import compois_log_z, compois_loglambda, compois_moments
from glmmjax.families._zero_inflation import zero_inflated_loglik
from reference import random_sds, tmb_parameters

GP, CMP = GeneralizedPoisson(), ConwayMaxwellPoisson()
REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_extra" / "families_b"
POINTWISE = json.loads((REF_DIR / "pointwise.json").read_text())

# One compiled evaluator per (family, order), on arrays padded to one length.
_LEN = {0: 4096, 2: 256}


@partial(jax.jit, static_argnames=("fam", "order", "zi"))
def _evaluate(fam, order, zi, y, eta, d, zi_eta):
    """loglik (zero-inflated with zi) and for order 2 its elementwise derivatives in eta and
    disp_eta: "e", "d", "ee", "dd", "ed" (gradients of sums: loglik is elementwise)."""
    def ll(e, dd):
        v = fam.loglik(y, e, dd, jnp.zeros(0, y.dtype), None)
        return zero_inflated_loglik(v, y, zi_eta) if zi else v

    out = {"ll": ll(eta, d)}
    if order:
        g = lambda k: jax.grad(lambda e, dd: jnp.sum(ll(e, dd)), argnums=k)
        out["e"], out["d"] = g(0)(eta, d), g(1)(eta, d)
        out["ee"] = jax.grad(lambda e, dd: jnp.sum(g(0)(e, dd)), argnums=0)(eta, d)
        out["ed"] = jax.grad(lambda e, dd: jnp.sum(g(0)(e, dd)), argnums=1)(eta, d)
        out["dd"] = jax.grad(lambda e, dd: jnp.sum(g(1)(e, dd)), argnums=1)(eta, d)
    return out


def _eval(fam, y, eta, d, zi_eta=None, order=0):
    """_evaluate at arrays (or scalars) broadcast to one length n <= _LEN[order]."""
    n = max(np.size(y), np.size(eta), np.size(d))
    L = _LEN[order]
    assert n <= L

    def col(a):
        a = np.broadcast_to(np.asarray(a, float), (n,)).ravel()
        return jnp.asarray(np.concatenate([a, np.full(L - n, a[0])]))

    out = _evaluate(fam, order, zi_eta is not None, col(y), col(eta), col(d), col(0.0 if zi_eta is None else zi_eta))
    return {k: np.asarray(v)[:n] for k, v in out.items()}


def _ll(fam, y, eta, d, zi_eta=None):
    return _eval(fam, y, eta, d, zi_eta)["ll"]


@partial(jax.jit, static_argnames=("fam",))
def _variance_jit(fam, mu, d):
    return fam.variance(mu, d, None)


def _variance(fam, mu, d):
    """fam.variance(mu, d) at arrays broadcast to one length <= 512 (one compiled function)."""
    n = max(np.size(mu), np.size(d))
    pad = lambda a: jnp.asarray(np.concatenate([np.broadcast_to(np.asarray(a, float), (n,)).ravel(), np.ones(512 - n)]))
    return np.asarray(_variance_jit(fam, pad(mu), pad(d)))[:n]


# ---------------------------------------------------------------------------------------
# independent float64 references
# ---------------------------------------------------------------------------------------
def ref_genpois(y, mu, phi):
    """Consul's log-mass written out: theta (theta + lam y)^(y-1) e^(-theta - lam y) / y!,
    zero where theta + lam y <= 0 except at y = 1 (as glmmTMB evaluates it)."""
    y = np.asarray(y, float)
    theta, lam = mu / np.sqrt(phi), 1.0 - 1.0 / np.sqrt(phi)
    inside = (theta + lam * y > 0) | (y == 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = np.where(y == 1, 0.0, (y - 1) * np.log(theta + lam * y))
        lp = np.log(theta) + power - theta - lam * y - gammaln(y + 1)
    return np.where(inside, lp, -np.inf)


_J = np.arange(6000.0)
_LGJ = gammaln(_J + 1)


def ref_compois(y, mu, nu):
    """log p(y) with Z summed over j = 0..5999 and lambda solving that sum's mean = mu."""
    def log_z(x):
        return logsumexp(_J * x - nu * _LGJ)

    def log_mean(x):
        t = _J * x - nu * _LGJ
        return logsumexp(t, b=_J) - logsumexp(t)

    x = brentq(lambda v: log_mean(v) - np.log(mu), -60.0, 60.0, xtol=1e-15, rtol=1e-15, maxiter=500)
    return np.asarray(y, float) * x - nu * gammaln(np.asarray(y, float) + 1) - log_z(x)


Y = np.array([0, 1, 2, 5, 13, 40, 100], dtype=float)
GP_PARAMS = [(0.3, 0.9), (-2.5, 0.0), (2.0, 2.5), (1.0, -0.5), (3.5, 1.2), (-6.0, 3.0)]
# (eta, d): mu = e^eta, phi = e^d, nu = 1/phi; series regime (the mode is below 100)
CMP_PARAMS = [(0.3, 0.9), (-2.5, 0.0), (1.5, -1.2), (2.5, 0.5), (-0.5, 1.8), (4.0, -0.3), (-6.0, -0.5),
              (1.0, 3.0)]


def test_genpois_loglik_matches_consuls_formula():
    for eta, d in GP_PARAMS:
        got = _ll(GP, Y, eta, d)
        want = ref_genpois(Y, np.exp(eta), np.exp(d))
        np.testing.assert_array_equal(np.isfinite(got), np.isfinite(want))
        ok = np.isfinite(want)
        # the two arrangements of the formula round differently: seen 2e-14
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-12, atol=1e-12, err_msg=f"eta={eta} d={d}")
    # underdispersion (phi < 1): no mass where theta + lambda y <= 0, i.e. y >= mu / (1 - sqrt(phi)),
    # except at y = 1, whose mass theta exp(-theta - lambda) glmmTMB uses as it stands
    assert np.all(np.isneginf(_ll(GP, [100.0, 1000.0], 1.0, -0.5)))
    mu, phi = 0.05, 0.6
    theta, lam = mu / np.sqrt(phi), 1 - 1 / np.sqrt(phi)
    assert theta + lam < 0
    np.testing.assert_allclose(_ll(GP, [1.0], np.log(mu), np.log(phi)), np.log(theta) - theta - lam, rtol=1e-14)
    assert np.isneginf(_ll(GP, [2.0], np.log(mu), np.log(phi))[0])


def test_genpois_phi_one_is_poisson():
    np.testing.assert_allclose(_ll(GP, Y, 1.3, 0.0), _ll(Poisson(), Y, 1.3, 0.0), rtol=1e-14)


def test_compois_loglik_matches_brute_force_series():
    for eta, d in CMP_PARAMS:
        got = _ll(CMP, Y, eta, d)
        want = ref_compois(Y, np.exp(eta), np.exp(-d))
        # lambda from brentq and from Newton agree to ~1e-15; log p values of up to ~1000
        # in magnitude (y = 100 at small means): seen 2e-12 relative
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-11, err_msg=f"eta={eta} d={d}")
    np.testing.assert_allclose(_ll(CMP, Y, 1.3, 0.0), _ll(Poisson(), Y, 1.3, 0.0), rtol=1e-12)


def test_compois_short_window_and_its_fallback():
    # The log-likelihood sums log Z over SHORT_TERMS terms where that window holds the whole
    # series for every observation of the call (_window_holds), else over n_terms.
    from glmmjax.families._compois import SHORT_TERMS, _newton, _window, _window_holds

    def holds(eta, d):
        lm, nu = jnp.full(1, eta), jnp.full(1, np.exp(-d))
        j, lg = _window(lm, SHORT_TERMS)
        return bool(_window_holds(_newton(lm, nu, j, lg)[0], j, lg, nu)[0])

    short_only = ConwayMaxwellPoisson(n_terms=SHORT_TERMS)
    y = np.array([2.0, 5.0, 13.0, 30.0])
    narrow, wide = (0.3, 0.9), (3.0, 1.5)      # (eta, d): mu 1.35, phi 2.5; mu 20, phi 4.5
    assert holds(*narrow) and not holds(*wide)
    want_narrow = ref_compois(y, np.exp(narrow[0]), np.exp(-narrow[1]))
    want_wide = ref_compois(y, np.exp(wide[0]), np.exp(-wide[1]))
    # narrow: the short window is the series (the same computation as a 64-term family)
    np.testing.assert_array_equal(_ll(CMP, y, *narrow), _ll(short_only, y, *narrow))
    np.testing.assert_allclose(_ll(CMP, y, *narrow), want_narrow, rtol=1e-12, atol=1e-12)
    # wide: 64 terms miss mass (seen 6.5e-4), the default falls back to the full window,
    # for all observations of a call once one of them needs it
    assert np.max(np.abs(_ll(short_only, y, *wide) - want_wide)) > 1e-5
    eta = np.repeat([narrow[0], wide[0]], 4)
    d = np.repeat([narrow[1], wide[1]], 4)
    np.testing.assert_allclose(_ll(CMP, np.tile(y, 2), eta, d), np.r_[want_narrow, want_wide], rtol=1e-12, atol=1e-12)


def _pointwise(fam_name):
    rows = POINTWISE[fam_name]
    y = np.array([r["y"] for r in rows], float)
    mu = np.array([r["mu"] for r in rows], float)
    phi = np.array([r["phi"] for r in rows], float)
    want = np.array([np.nan if r["logpmf"] is None else r["logpmf"] for r in rows], float)
    return y, mu, phi, want


@pytest.mark.parametrize("fam", [GP, CMP], ids=lambda f: f.name)
def test_loglik_equals_glmmtmbs(fam):
    # glmmTMB's own values: the objective of one-row models y ~ 1 at beta = log(mu),
    # betad = log(phi). For compois they include TMB's Laplace approximation (mode > 100,
    # mode/phi > 200); TMB stops its lambda iteration at a relative step of 1e-9 (seen: its
    # compois values off the exact ones by up to 9e-13). Seen: 2.6e-13 (genpois), 4e-12.
    y, mu, phi, want = _pointwise(fam.name)
    got = _ll(fam, y, np.log(mu), np.log(phi))
    nan = np.isnan(want)                   # genpois, phi < 1, y beyond the support: NaN in glmmTMB
    assert fam.name == "compois" or nan.any()
    assert np.all(np.isneginf(got[nan]))
    np.testing.assert_allclose(got[~nan], want[~nan], rtol=1e-10, atol=1e-10)


def test_compois_laplace_regime():
    # mode > 100, mode nu > 200, nu < 2 mode: TMB's Laplace approximation of log Z, within
    # ~1e-6 of the series (the approximation's own error) and not equal to it
    for eta, d in [(5.0, -0.7), (6.0, 0.0), (5.5, -1.5)]:
        mu, nu = np.exp(eta), np.exp(-d)
        y = np.round(mu) + np.array([-20.0, 0.0, 15.0])
        got = _ll(CMP, y, eta, d)
        diff = np.abs(got - ref_compois(y, mu, nu))
        assert np.all(diff < 1e-5) and np.all(diff > 0), diff
    # exactly Poisson at nu = 1 (the correction term makes the Laplace error vanish there)
    y = np.array([300.0, 403.0, 500.0])
    np.testing.assert_allclose(_ll(CMP, y, 6.0, 0.0), _ll(Poisson(), y, 6.0, 0.0), rtol=1e-13)


# ---------------------------------------------------------------------------------------
# normalization, means and variances
# ---------------------------------------------------------------------------------------
SUPPORT = np.arange(4096.0)


@pytest.mark.parametrize("eta,d", [(0.3, 0.9), (-2.5, 0.0), (2.0, 2.5), (3.5, 1.2), (1.0, 0.01)])
def test_genpois_sums_to_one_with_mean_mu_and_variance_mu_phi(eta, d):
    # support 0..4095: the tail beyond is < 1e-40 for these means and phi <= 12 (it decays like
    # exp(-(lam - 1 - log lam) y) with lam = 1 - 1/sqrt(phi) <= 0.72, rate >= 0.05)
    p = np.exp(_ll(GP, SUPPORT, eta, d))
    mu, phi = np.exp(eta), np.exp(d)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-12)
    m = np.sum(SUPPORT * p)
    np.testing.assert_allclose(m, mu, rtol=1e-10)
    np.testing.assert_allclose(np.sum((SUPPORT - m) ** 2 * p), mu * phi, rtol=1e-9)
    np.testing.assert_allclose(_variance(GP, mu, d), mu * phi, rtol=1e-14)
    np.testing.assert_allclose(float(GP.mean(jnp.asarray(eta), jnp.asarray(d))), mu, rtol=1e-14)


def test_genpois_underdispersed_mass_is_truncated():
    # phi < 1: positive mass only for y < theta / |lambda| (and y = 1); it does not sum to
    # exactly 1 (Consul and Famoye's truncation error), and glmmTMB's likelihood is not
    # renormalized
    for eta, d, total in [(1.0, -0.5, 1.0), (0.0, -1.0, 1.0026293578520), (0.3, -2.0, 0.885337256923)]:
        p = np.exp(_ll(GP, SUPPORT, eta, d))
        mu, phi = np.exp(eta), np.exp(d)
        end = mu / (1 - np.sqrt(phi))
        assert np.all(p[(SUPPORT >= end) & (SUPPORT != 1)] == 0) and np.all(p[SUPPORT < end] > 0)
        np.testing.assert_allclose(p.sum(), total, rtol=1e-12)
        np.testing.assert_allclose(p.sum(), np.exp(ref_genpois(SUPPORT, mu, phi)).sum(), rtol=1e-13)


CMP_NORM = [(0.3, 0.9), (1.5, -1.2), (-0.5, 1.8), (4.0, -0.3), (1.0, 3.0)]


def test_compois_sums_to_one_with_mean_mu_and_its_variance():
    # support 0..4095 covers the mass (to < 1e-30) for all these (mu, phi <= 20)
    for e, dd in CMP_NORM:
        p = np.exp(_ll(CMP, SUPPORT, e, dd))
        mu = np.exp(e)
        np.testing.assert_allclose(p.sum(), 1.0, rtol=0, atol=1e-12, err_msg=str((e, dd)))
        m = np.sum(SUPPORT * p)
        np.testing.assert_allclose(m, mu, rtol=1e-11)
        v = _variance(CMP, mu, dd)[0]
        np.testing.assert_allclose(np.sum((SUPPORT - m) ** 2 * p), v, rtol=1e-9, err_msg=str((e, dd)))


def test_compois_variance_equals_glmmtmbs():
    # glmmTMB's compois()$variance (C++ compois_calc_var: d^2 logZ / dloglambda^2 at TMB's
    # lambda), including the Laplace regime (mean 150 and above): seen 5e-11 relative
    # (TMB's lambda iteration stops at a relative step of 1e-9)
    rows = POINTWISE["compois_variance"]
    mu = np.array([r["mu"] for r in rows])
    phi = np.array([r["phi"] for r in rows])
    want = np.array([r["variance"] for r in rows])
    got = _variance(CMP, mu, np.log(phi))
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_compois_helpers():
    # log lambda solves E(y) = mu; E and Var are the first two x-derivatives of log Z (here
    # against central differences of log Z; 128-term windows suffice for these values)
    h = 1e-4

    @jax.jit
    def f(lm, nu):
        x = compois_loglambda(lm, nu, 128)
        moments = compois_moments(x, nu, 128)
        lz = [compois_log_z(x + t, nu, 128) for t in (0.0, h, -h)]
        return x, moments, lz

    x, (log_z, mean, var), lz = f(jnp.log(jnp.asarray([3.0, 7.0, 0.2, 150.0])), jnp.asarray([0.4, 1.0, 2.5, 3.0]))
    lz = np.asarray(lz)
    np.testing.assert_allclose(np.asarray(mean), [3.0, 7.0, 0.2, 150.0], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(x)[1], np.log(7.0), rtol=1e-14)            # Poisson
    # step 1e-4: truncation ~1e-9 and rounding ~1e-12 / h^2 relative
    np.testing.assert_allclose((lz[1] - lz[2]) / (2 * h), np.asarray(mean), rtol=1e-8)
    np.testing.assert_allclose((lz[1] - 2 * lz[0] + lz[2]) / h**2, np.asarray(var), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(log_z), lz[0], rtol=1e-15)


# ---------------------------------------------------------------------------------------
# zero-inflation
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fam", [GP, CMP], ids=lambda f: f.name)
def test_zero_inflation(fam):
    # P(0) = p + (1 - p) f(0), P(y) = (1 - p) f(y); total 1 over 0..4095; gate -> 0 is the family
    eta, d, z = 1.1, 0.4, -0.7
    lz = _ll(fam, SUPPORT, eta, d, zi_eta=z)
    lf = _ll(fam, SUPPORT, eta, d)
    p = expit(z)
    np.testing.assert_allclose(np.exp(lz[0]), p + (1 - p) * np.exp(lf[0]), rtol=1e-14)
    np.testing.assert_allclose(lz[1:50], lf[1:50] + np.log1p(-p), rtol=1e-14)
    np.testing.assert_allclose(np.exp(lz).sum(), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_ll(fam, Y, eta, d, zi_eta=-50.0), _ll(fam, Y, eta, d), rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("fam,params", [(GP, GP_PARAMS[:5]), (CMP, CMP_PARAMS[:6] + [(5.0, -0.7)])],
                         ids=["genpois", "compois"])
def test_derivatives_match_finite_differences(fam, params):
    # all parameter values in one call: rows at (eta, d), (eta +- h, d), (eta, d +- h);
    # y values outside the genpois support (phi < 1) are left out. compois includes the
    # Laplace regime (5.0, -0.7).
    y = np.array([0, 1, 3, 8, 17], float)
    n, p = y.size, len(params)
    eta = np.array([q[0] for q in params])
    d = np.array([q[1] for q in params])
    h = 1e-5
    blocks = [(eta, d), (eta + h, d), (eta - h, d), (eta, d + h), (eta, d - h)]
    E = np.concatenate([np.repeat(e, n) for e, _ in blocks])
    D = np.concatenate([np.repeat(dd, n) for _, dd in blocks])
    r = _eval(fam, np.tile(y, 5 * p), E, D, order=2)
    part = lambda key, b: r[key].reshape(5, p, n)[b]
    ok = np.isfinite(part("ll", 0))
    with np.errstate(invalid="ignore"):           # -inf - -inf outside the genpois support
        fd = {
            "e": (part("ll", 1) - part("ll", 2)) / (2 * h),
            "ee": (part("e", 1) - part("e", 2)) / (2 * h),
            "d": (part("ll", 3) - part("ll", 4)) / (2 * h),
            "ed": (part("e", 3) - part("e", 4)) / (2 * h),
            "dd": (part("d", 3) - part("d", 4)) / (2 * h),
        }
    # central differences with step 1e-5: truncation ~1e-10, rounding ~1e-11 relative
    for key, want in fd.items():
        got = part(key, 0)
        assert np.all(np.isfinite(got[ok])), key
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-6 * (1 + np.abs(got[ok]).max()),
                                   err_msg=f"{fam.name} {key}")


def test_compois_higher_derivatives():
    # the Laplace engine differentiates the log-likelihood up to 4 times (weights, gradient,
    # Hessian): third and fourth derivatives in eta and a mixed one against differences of
    # the next lower autodiff derivative, in both regimes of log Z
    def ll(e, d, y):
        return CMP.loglik(y, e, d, None, None)

    d3 = jax.grad(jax.grad(jax.grad(ll)))
    d4 = jax.grad(d3)
    d3d = jax.grad(d3, argnums=1)
    f = jax.jit(jax.vmap(lambda e, d, y: jnp.stack([d3(e, d, y), d4(e, d, y), d3d(e, d, y)])))
    pts = [(1.2, -0.4, 3.0), (0.3, 0.9, 0.0), (2.5, 0.5, 20.0), (5.0, -0.7, 160.0)]
    h = 1e-4
    rows = []
    for e, d, y in pts:
        rows += [(e, d, y), (e + h, d, y), (e - h, d, y), (e, d + h, y), (e, d - h, y)]
    E, D, Yv = (jnp.asarray([r[k] for r in rows]) for k in range(3))
    out = np.asarray(f(E, D, Yv)).reshape(len(pts), 5, 3)
    for k in range(len(pts)):
        fd4 = (out[k, 1, 0] - out[k, 2, 0]) / (2 * h)
        fd3d = (out[k, 3, 0] - out[k, 4, 0]) / (2 * h)
        # step 1e-4: truncation ~1e-8 relative
        np.testing.assert_allclose(out[k, 0, 1], fd4, rtol=1e-6, atol=1e-8, err_msg=str(pts[k]))
        np.testing.assert_allclose(out[k, 0, 2], fd3d, rtol=1e-6, atol=1e-8, err_msg=str(pts[k]))


@pytest.mark.parametrize("fam", [GP, CMP], ids=lambda f: f.name)
def test_tails_are_finite(fam):
    # extreme linear predictors and dispersions: finite log-likelihoods and derivatives
    y = np.array([0.0, 1.0, 5.0])
    etas, ds = [-20.0, 0.0, 6.0], [-1.5, 3.0]
    E = np.repeat(np.tile(etas, len(ds)), 3)
    D = np.repeat(np.repeat(ds, len(etas)), 3)
    r = _eval(fam, np.tile(y, len(etas) * len(ds)), E, D, order=2)
    inside = np.isfinite(ref_genpois(np.tile(y, 6), np.exp(E), np.exp(D))) if fam is GP else np.ones(E.size, bool)
    for key in ("ll", "e", "ee", "d", "ed", "dd"):
        assert np.all(np.isfinite(r[key][inside])), (key, r[key])


def test_float32():
    # float32 log-likelihoods and eta-gradients agree with float64 to float32 rounding
    y = np.array([0.0, 2.0, 7.0, 20.0])
    for fam in (GP, CMP):
        f = jax.jit(lambda yy, e, dd: (fam.loglik(yy, e, dd, None, None),
                                       jax.grad(lambda a: jnp.sum(fam.loglik(yy, a, dd, None, None)))(e)))
        for eta, d in [(1.0, 0.5), (2.5, -0.8)]:
            v32, g32 = f(jnp.asarray(y, jnp.float32), jnp.full(4, eta, jnp.float32), jnp.full(4, d, jnp.float32))
            r64 = _eval(fam, y, eta, d, order=2)
            assert v32.dtype == g32.dtype == jnp.float32
            ok = np.isfinite(r64["ll"])
            np.testing.assert_allclose(np.asarray(v32)[ok], r64["ll"][ok], rtol=2e-5, atol=2e-5)
            np.testing.assert_allclose(np.asarray(g32)[ok], r64["e"][ok], rtol=2e-5, atol=2e-5)


# ---------------------------------------------------------------------------------------
# samplers
# ---------------------------------------------------------------------------------------
_DRAWS: dict = {}


def _draw(fam, eta, d, n, seed=0):
    """n draws at (eta, d), memoized (test_initial_dispersion reuses the sampler tests' draws)."""
    key = (fam, eta, d, n, seed)
    if key not in _DRAWS:
        _DRAWS[key] = np.asarray(fam.sample(jax.random.PRNGKey(seed), jnp.full(n, eta), jnp.full(n, d),
                                            jnp.zeros(0), None))
    return _DRAWS[key]


def _check_moments(y, mean, var):
    # 5 standard errors of the sample mean and of the sample variance
    assert np.all(y == np.round(y)) and np.all(y >= 0)
    assert abs(y.mean() - mean) < 5 * np.sqrt(var / y.size), (y.mean(), mean)
    sq = (y - y.mean()) ** 2
    assert abs(sq.mean() - var) < 5 * sq.std() / np.sqrt(y.size), (sq.mean(), var)


def _check_frequencies(y, logp):
    k = np.arange(logp.size)
    p = np.exp(logp)
    freq = np.bincount(y.astype(int), minlength=k.size)[: k.size] / y.size
    np.testing.assert_array_less(np.abs(freq - p), 5 * np.sqrt(p * (1 - p) / y.size) + 1e-12)


@pytest.mark.parametrize("eta,d", [(1.2, np.log(2.5)), (-1.0, np.log(6.0)), (2.0, 0.0)])
def test_genpois_sampler(eta, d):
    y = _draw(GP, eta, d, 200_000)
    mu, phi = np.exp(eta), np.exp(d)
    _check_moments(y, mu, mu * phi)
    _check_frequencies(y, ref_genpois(np.arange(25.0), mu, phi))


@pytest.mark.parametrize("eta,d", [(1.5, np.log(0.6)), (0.3, -2.0)])
def test_genpois_sampler_underdispersed(eta, d):
    # phi < 1: draws from the mass renormalized over its support (whose total is not 1)
    y = _draw(GP, eta, d, 200_000, seed=1)
    lp = ref_genpois(SUPPORT[:200], np.exp(eta), np.exp(d))
    p = np.exp(lp) / np.exp(lp).sum()
    m = np.sum(SUPPORT[:200] * p)
    _check_moments(y, m, np.sum((SUPPORT[:200] - m) ** 2 * p))
    with np.errstate(divide="ignore"):                # zero mass beyond the support
        _check_frequencies(y, np.log(p[:30]))
    assert y.max() < np.exp(eta) / (1 - np.sqrt(np.exp(d)))


CMP64 = ConwayMaxwellPoisson(n_terms=64)


@pytest.mark.parametrize("eta,d", [(1.0, np.log(0.4)), (0.5, np.log(3.0))])
def test_compois_sampler(eta, d):
    # 100,000 draws; each solves for its own lambda, here over 64-term windows (the mass lies
    # within 0..63 to 1e-20 at these means and dispersions), which is quicker to run
    y = _draw(CMP64, eta, d, 100_000, seed=2)
    mu = np.exp(eta)
    _check_moments(y, mu, _variance(CMP, mu, d)[0])
    _check_frequencies(y, np.array([ref_compois(k, mu, np.exp(-d)) for k in range(20)]))


def test_sampler_float32():
    # float32 draws (the inversion walk is shared with compois)
    y = GP.sample(jax.random.PRNGKey(4), jnp.full(500, 1.0, jnp.float32), jnp.full(500, 0.3, jnp.float32),
                  jnp.zeros(0, jnp.float32), None)
    assert y.dtype == jnp.float32 and np.all(np.asarray(y) >= 0)
    assert abs(float(jnp.mean(y)) - np.e) < 5 * np.sqrt(np.e * np.exp(0.3) / 500)


# ---------------------------------------------------------------------------------------
# names, response checks, dispersion
# ---------------------------------------------------------------------------------------
def test_names_and_parameters():
    assert type(get_family("genpois")) is GeneralizedPoisson and get_family("genpois").link.name == "log"
    assert type(get_family("compois")) is ConwayMaxwellPoisson and get_family("compois", "sqrt").link.name == "sqrt"
    assert GP == GeneralizedPoisson() and hash(CMP) == hash(ConwayMaxwellPoisson())
    assert ConwayMaxwellPoisson(n_terms=1024) != CMP
    assert repr(CMP) == "ConwayMaxwellPoisson(link='log')"
    assert repr(ConwayMaxwellPoisson(n_terms=1024)) == "ConwayMaxwellPoisson(link='log', n_terms=1024)"
    with pytest.raises(ValueError, match="n_terms must be an integer >= 16"):
        ConwayMaxwellPoisson(n_terms=4)
    with pytest.raises(ValueError, match="does not take the 'logit' link"):
        GeneralizedPoisson(link="logit")
    # R's sigma(m) = exp(betad) = phi for both families
    for fam in (GP, CMP):
        assert fam.dispersion_parameters(jnp.asarray(np.log(2.5)), None) == {"phi": pytest.approx(2.5, rel=1e-15)}
        assert fam.has_dispersion and fam.discrete


@pytest.mark.parametrize("fam", [GP, CMP], ids=lambda f: f.name)
def test_check_response(fam):
    with pytest.raises(ValueError, match=f"The {fam.name} family needs non-negative counts"):
        fam.check_response(np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match=f"The {fam.name} family needs integer counts"):
        fam.check_response(np.array([1.5, 3.0]))
    with pytest.raises(ValueError, match="non-finite"):
        fam.check_response(np.array([1.0, np.nan]))
    fam.check_response(np.array([0.0, 3.0, 12.0]))


def test_initial_dispersion():
    # moment estimates at the true means: within 0.25 of log(phi) for genpois; for compois
    # Var ~ mu phi holds only roughly (phi < 1: seen 0.07 off)
    n = 20_000
    y = _draw(GP, 1.2, np.log(2.5), 200_000)[:n]
    assert abs(GP.initial_disp(y, np.full(n, np.exp(1.2))) - np.log(2.5)) < 0.25
    y = _draw(CMP64, 1.0, np.log(0.4), 100_000, seed=2)[:n]
    assert abs(CMP.initial_disp(y, np.full(n, np.e)) - np.log(0.4)) < 0.25


def test_model_building():
    df = pd.read_csv(REF_DIR / "genpois_sim.csv")
    for fam in ("genpois", "compois"):
        m = gj.GLMM("y ~ x + (1|g)", df, family=fam, zi="~1")
        assert m.parameter_names()[-2:] == ["disp:(Intercept)", "zi:(Intercept)"]
        with pytest.raises(ValueError, match="non-negative counts"):
            gj.GLMM("y ~ x + (1|g)", df.assign(y=df.y - 5), family=fam)


# ---------------------------------------------------------------------------------------
# glmmTMB references
# ---------------------------------------------------------------------------------------
REFS = {p.stem: json.loads(p.read_text()) for p in sorted(REF_DIR.glob("*_sim.json"))}
FITTED = ["genpois_sim", "compois_sim"]


def _model(ref_id):
    ref = REFS[ref_id]
    zi = ref["formula"]["zi"]
    zi = None if zi.replace(" ", "") in ("~0", "") else zi
    return gj.GLMM(ref["formula"]["cond"], pd.read_csv(REF_DIR / ref["dataset"]), family=ref["family"], zi=zi)


_FITS: dict = {}


@pytest.fixture(scope="module")
def ref_fit():
    def get(ref_id):
        if ref_id not in _FITS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _FITS[ref_id] = _model(ref_id).fit()
        return REFS[ref_id], _FITS[ref_id]
    return get


def test_references_present():
    assert set(REFS) == {"genpois_sim", "zigenpois_sim", "compois_sim"}
    for ref in REFS.values():
        assert ref["status"] == "ok" and ref["glmmTMB_version"] == "1.1.5"
    assert POINTWISE["glmmTMB_version"] == "1.1.5"


@pytest.mark.parametrize("ref_id", sorted(REFS))
def test_objective_at_glmmtmb_estimates(ref_id):
    # seen: 2e-15 (genpois), 2e-16 (zero-inflated genpois), 8e-13 relative (compois: TMB's
    # lambda iteration stops at a relative step of 1e-9)
    model = _model(ref_id)
    x = tmb_parameters(REFS[ref_id], model)
    assert len(x) == len(model.parameter_names())
    assert float(model.objective()(x)) == pytest.approx(REFS[ref_id]["estimation"]["objective"], rel=1e-8)


def _assert_coefficients(ours, our_se, ref, key):
    tab = ref.get(key) or []
    assert list(ours.index) == [e["term"] for e in tab]
    est = np.array([e["estimate"] for e in tab])
    se = np.array([e["std_error"] for e in tab])
    np.testing.assert_array_less(np.abs(ours.values - est), 0.02 * se)
    np.testing.assert_array_less(np.abs(our_se.values / se - 1), 0.02)


@pytest.mark.parametrize("ref_id", FITTED)
def test_fit_matches_glmmtmb(ref_fit, ref_id):
    # seen: estimates within 2e-5 SE, SEs within 1e-6 relative, logLik 8e-10 higher (compois,
    # where glmmTMB stopped with max|gradient| 5e-4)
    ref, fit = ref_fit(ref_id)
    assert fit.converged, fit.max_grad
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3
    assert fit.nobs == ref["nobs"] and fit.df == ref["fit_stats"]["logLik_df"]
    _assert_coefficients(fit.fixef, fit.se, ref, "fixed_effects")
    _assert_coefficients(fit.disp_fixef, fit.disp_se, ref, "disp_coefficients")
    ours = {(r.group, r.term1): r.sd for r in fit.varcorr.itertuples() if pd.isna(r.term2) and r.group != "Residual"}
    theirs = random_sds(ref)
    assert set(ours) == set(theirs)
    for key, sd in theirs.items():
        assert abs(ours[key] - sd) <= 0.02 * sd + 2e-3, (key, ours[key], sd)
    assert fit.dispersion_parameters["phi"] == pytest.approx(ref["dispersion"]["parameters"]["phi"], rel=0.02)


@pytest.mark.parametrize("ref_id", FITTED)
def test_predictions_variance_and_summary(ref_fit, ref_id):
    # predict(type = "response") and the family's variance at the fitted means and phi
    # (glmmTMB: family(m)$variance(predict(m, type = "conditional"), sigma(m))); the fits
    # agree to ~1e-5 SE, so 1e-4 relative
    ref, fit = ref_fit(ref_id)
    mu = fit.predict(type="response")
    np.testing.assert_allclose(mu, ref["predictions"]["response"], rtol=1e-4)
    var = _variance(fit.model.family, mu, np.log(fit.dispersion))
    np.testing.assert_allclose(var, ref["dispersion"]["variance_at_fitted"], rtol=1e-4)
    line = next(s for s in ref["summary_text"] if s.startswith("Dispersion parameter"))
    assert line.rstrip() in [s.rstrip() for s in str(fit.summary()).splitlines()]
