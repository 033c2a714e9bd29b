"""The tweedie family (compound Poisson-Gamma, 1 < power < 2, power estimated).

Family level: the log density against a float64 numpy series summed to convergence, against
the compound Poisson-Gamma mixture summed by brute force with scipy.stats, and against TMB's
own dtweedie (the density glmmTMB calls); the fixed 128-term window's truncation bound on a
grid; normalization, mean and variance by numerical integration; y = 0 exactly; autodiff
derivatives against finite differences; float32; sampler moments; response checks.
Model level: glmmTMB 1.1.5 fits made by
tests/fixtures/reference_extra/make_refs_tweedie.R (in families_tweedie/ there).

Reference tolerances as in test_reference_zi_disp_families.py: the objective at glmmTMB's estimates
equal to glmmTMB's to 1e-8 relative; logLik at least glmmTMB's minus 2e-3; coefficients
(conditional, dispersion and the power parameter psi) within 0.02 of glmmTMB's SE; SEs within
2%; random-effect SDs and dispersion parameters (phi, power) within 2%.
"""
from __future__ import annotations

import json
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
from glmmjax.families import Tweedie, get_family
from glmmjax.families._special import digamma_pos, lgamma_pos
from glmmjax.families._tweedie import (
    N_TERMS,
    SHORT_TERMS,
    _log_sum,
    _series_log_terms,
    _series_terms,
    log_w,
    series_window,
    short_window,
    short_window_holds,
    tweedie_logpdf,
)
from glmmjax.families._zero_inflation import zero_inflated_loglik

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_extra" / "families_tweedie"
EPS = np.finfo(float).eps


# ---------------------------------------------------------------------------------------
# independent float64 references
# ---------------------------------------------------------------------------------------
def _terms(j, y, phi, p):
    """log W_j of the Dunn & Smyth series (numpy, float64)."""
    alpha = (2 - p) / (p - 1)
    logz = alpha * np.log(y / (p - 1)) - (1 + alpha) * np.log(phi) - np.log(2 - p)
    return j * logz - sps.gammaln(j + 1.0) - sps.gammaln(alpha * j)


def full_terms(y, phi, p):
    """(j, log W_j) for j = 1, 2, ... far past the largest term (the series converged)."""
    jmax = y ** (2 - p) / (phi * (2 - p))
    sd = np.sqrt(jmax * (p - 1))
    j = np.arange(1.0, np.ceil(jmax + 40 * sd + 400))
    t = _terms(j, y, phi, p)
    assert t[-1] < t.max() - 80, "the reference series has not converged"
    return j, t


def full_log_w(y, phi, p):
    """log sum_{j>=1} W_j, summed term by term to convergence."""
    return sps.logsumexp(full_terms(y, phi, p)[1])


def series_logpdf(y, mu, phi, p):
    lam = mu ** (2 - p) / (phi * (2 - p))
    if y == 0:
        return -lam
    return -lam - y / (phi * (p - 1) * mu ** (p - 1)) - np.log(y) + full_log_w(y, phi, p)


def cpg_logpdf(y, mu, phi, p):
    """The compound Poisson-Gamma mixture: sum_n Poisson(n; lambda) Gamma(y; n alpha, gam)."""
    lam = mu ** (2 - p) / (phi * (2 - p))
    alpha = (2 - p) / (p - 1)
    gam = phi * (p - 1) * mu ** (p - 1)
    if y == 0:
        return st.poisson.logpmf(0, lam)
    top = max(lam, y ** (2 - p) / (phi * (2 - p)))
    n = np.arange(1.0, np.ceil(top + 40 * np.sqrt(top) + 200))
    return sps.logsumexp(st.poisson.logpmf(n, lam) + st.gamma.logpdf(y, n * alpha, scale=gam))


def rounding_scale(y, mu, phi, p):
    """Size of the terms that cancel in log f: lambda, y / gam and log W_j's parts near j_max.
    Rounding leaves an absolute error of a few eps times this, in any implementation."""
    y, mu, phi, p = np.broadcast_arrays(*(np.asarray(v, float) for v in (y, mu, phi, p)))
    alpha = (2 - p) / (p - 1)
    lam = mu ** (2 - p) / (phi * (2 - p))
    pos = y > 0
    ys = np.where(pos, y, 1.0)
    j = np.maximum(1.0, ys ** (2 - p) / (phi * (2 - p)))
    logz = alpha * np.log(ys / (p - 1)) - (1 + alpha) * np.log(phi) - np.log(2 - p)
    parts = np.abs(j * logz) + np.abs(sps.gammaln(j + 1)) + np.abs(sps.gammaln(alpha * j))
    return 1.0 + lam + np.where(pos, ys / (phi * (p - 1) * mu ** (p - 1)) + parts, 0.0)


def psi_of(p):
    return sps.logit(np.asarray(p, float) - 1.0)


# ---------------------------------------------------------------------------------------
# log densities
# ---------------------------------------------------------------------------------------
_logpdf = jax.jit(tweedie_logpdf)
# arrays are padded to one of these lengths, so that the compiled density is shared by tests
_LENGTHS = (512, 16384)


def logpdf(y, mu, phi, p):
    """glmmjax's log density at (y, mu, phi, p) (numpy in and out, broadcast)."""
    a = np.broadcast_arrays(*(np.asarray(v, float).ravel() for v in (y, mu, phi, p)))
    n = a[0].size
    L = next(m for m in _LENGTHS if m >= n)
    pad = lambda v: np.concatenate([v, np.full(L - n, v[0])])
    return np.asarray(_logpdf(pad(a[0]), np.log(pad(a[1])), np.log(pad(a[2])), psi_of(pad(a[3]))))[:n]


# Parameter grid: y (0 included) x mu x phi x p, 360 points
GRID = np.array(np.meshgrid([0.0, 1e-6, 0.01, 0.3, 1.0, 4.0, 20.0, 150.0], [0.2, 1.5, 12.0],
                            [0.1, 1.0, 5.0], [1.01, 1.1, 1.5, 1.9, 1.99], indexing="ij")).reshape(4, -1)
# far out: small phi / large y, where j_max is in the thousands and the window is strided
FAR = np.array([[500.0, 400.0, 0.01, 1.5], [2e4, 1.5e4, 0.02, 1.3], [3e3, 3e3, 0.002, 1.9],
                [50.0, 40.0, 1e-3, 1.97], [1e4, 1e4, 0.5, 1.1], [8.0, 5.0, 0.01, 1.6]]).T


def test_density_matches_the_series_summed_to_convergence():
    # within 1e-12 relative plus the rounding of the cancelling terms (seen: 1.4e-12 relative
    # at most, 3.4e-10 absolute at y = 150, mu = 1.5, phi = 0.1, p = 1.01 where y / gam ~ 1.5e5;
    # at most 0.08 of the tolerance)
    y, mu, phi, p = np.concatenate([GRID, FAR], axis=1)
    got = logpdf(y, mu, phi, p)
    want = np.array([series_logpdf(*v) for v in zip(y, mu, phi, p)])
    tol = 1e-12 * np.abs(want) + 8 * EPS * rounding_scale(y, mu, phi, p)
    np.testing.assert_array_less(np.abs(got - want), tol)


def test_density_matches_the_compound_poisson_gamma_mixture():
    # every grid point whose Poisson count stays moderate (lambda <= 300). At p = 1.01
    # scipy's Gamma log densities have shapes n alpha ~ 1e4 and round at ~1e-12 relative (this
    # reference and the series one differ by up to 1.8e-12 there; glmmjax is within 1.5e-12 of
    # this one and 1.4e-12 of the series)
    y, mu, phi, p = GRID
    keep = mu ** (2 - p) / (phi * (2 - p)) <= 300
    assert keep.sum() > 300
    got = logpdf(*(a[keep] for a in GRID))
    want = np.array([cpg_logpdf(*v) for v in zip(*(a[keep] for a in GRID))])
    np.testing.assert_allclose(got, want, rtol=3e-12, atol=1e-12)


def test_density_matches_tmb_dtweedie():
    # TMB's dtweedie (glmmTMB's likelihood) on make_refs_tweedie.R's grid of 321 points,
    # j_max up to ~1e5 included. Seen: 1.4e-10 absolute at most (y = 80, mu = 0.3, phi = 0.05,
    # p = 1.02, log f = -7175: float64 rounding of the cancelling terms, in both), at most 0.07
    # of the tolerance
    ref = json.loads((REF_DIR / "dtweedie_grid.json").read_text())
    y, mu, phi, p, want = (np.array(ref[k], float) for k in ("y", "mu", "phi", "p", "logf"))
    got = logpdf(y, mu, phi, p)
    np.testing.assert_array_less(np.abs(got - want), 1e-12 * np.abs(want) + 8 * EPS * rounding_scale(y, mu, phi, p))
    # y = 0: -lambda, computed slightly differently by TMB (seen 4.8e-15 relative)
    np.testing.assert_allclose(got[y == 0], want[y == 0], rtol=1e-14, atol=0)


def test_lgamma_pos():
    # the series' lgamma (Stirling for x >= 8, shifted below) against scipy: 3e-14 absolute
    # plus 4 eps relative (seen: 2.1e-14 absolute)
    x = np.concatenate([np.geomspace(1e-12, 1e12, 400), np.linspace(0.01, 30.0, 112)])
    got = np.asarray(jax.jit(lgamma_pos)(x))
    want = sps.gammaln(x)
    np.testing.assert_array_less(np.abs(got - want), 3e-14 + 4 * EPS * np.abs(want))


def test_digamma_pos():
    # the series' gradient's digamma (asymptotic for x >= 8, shifted below) against scipy,
    # including around its root at 1.4616: 2e-15 absolute plus 4 eps relative (seen: 1.3e-15)
    x = np.concatenate([np.geomspace(1e-12, 1e12, 400), np.linspace(0.01, 30.0, 112), np.linspace(1.40, 1.50, 101)])
    got = np.asarray(jax.jit(digamma_pos)(x))
    want = sps.digamma(x)
    np.testing.assert_array_less(np.abs(got - want), 2e-15 + 4 * EPS * np.abs(want))


def test_zero_is_exactly_minus_lambda():
    mu, phi, p = GRID[1:, GRID[0] == 0]
    lam = mu ** (2 - p) / (phi * (2 - p))
    np.testing.assert_allclose(logpdf(0.0, mu, phi, p), -lam, rtol=1e-14, atol=0)


# ---------------------------------------------------------------------------------------
# the series window
# ---------------------------------------------------------------------------------------
def test_series_window_truncation_bound():
    # p from 1.001 to 1.99999 and j_max = 1/(phi (2-p)) from 1e-3 to 1e5 (y = 1), with the
    # window glmmjax picks, against the full series summed here in numpy:
    #  - unstrided windows: the terms left out sum to < 1e-15 of W (seen: 1.5e-18 at most);
    #  - strided windows (137 of the 396 points): the strided sum equals the full one up to the
    #    rounding of the terms themselves, 8 eps times their size (seen: 0.015 of that);
    #  - wherever W_1 is not negligible (> e^-37 of the largest term) the window is unstrided,
    #    starts at j = 1 and holds the largest term.
    ps = np.array([1.001, 1.01, 1.05, 1.2, 1.4, 1.5, 1.6, 1.8, 1.9, 1.99, 1.999, 1.99999])
    jm = np.geomspace(1e-3, 1e5, 33)
    P, J = (a.ravel() for a in np.meshgrid(ps, jm, indexing="ij"))
    phi = 1.0 / (J * (2 - P))
    window = jax.jit(series_window)(jnp.zeros(P.size), jnp.log(phi), jnp.asarray(psi_of(P)))
    lo, stride = (np.asarray(a) for a in window)
    assert np.all(lo == np.round(lo)) and np.all(stride == np.round(stride)) and lo.min() >= 1
    assert stride.max() > 10 and np.mean(stride == 1) > 0.5     # the grid reaches both kinds
    for p_, ph, a, s in zip(P, phi, lo, stride):
        j, t = full_terms(1.0, ph, p_)
        full = sps.logsumexp(t)
        if s == 1:
            out = (j < a) | (j > a + N_TERMS - 1)
            if np.any(out):
                assert sps.logsumexp(t[out]) - full < np.log(1e-15), (p_, ph)
        else:
            window = np.log(s) + sps.logsumexp(_terms(a + s * np.arange(N_TERMS), 1.0, ph, p_))
            assert abs(window - full) < 8 * EPS * rounding_scale(1.0, 1.0, ph, p_), (p_, ph)
        if t[0] > t.max() - 37:
            assert s == 1 and a == 1 and np.argmax(t) < N_TERMS, (p_, ph)


def test_log_w_matches_full_series_at_strided_windows():
    # glmmjax's own (JAX) log W where the window is strided: 1e-13 relative to log W
    ys = np.array([1.0, 1.0, 1.0, 30.0, 1e3])
    phis = np.array([1e-3, 1e-5, 2e-2, 1e-3, 0.05])
    ps = np.array([1.5, 1.2, 1.95, 1.05, 1.7])
    args = (jnp.log(ys), jnp.log(phis), jnp.asarray(psi_of(ps)))
    stride, got = jax.jit(lambda *a: (series_window(*a)[1], log_w(*a)))(*args)
    assert np.all(np.asarray(stride) > 1)
    want = np.array([full_log_w(*v) for v in zip(ys, phis, ps)])
    np.testing.assert_allclose(got, want, rtol=1e-13)


def test_short_window_holds_the_series_or_the_full_window_is_used():
    # The log-density first sums SHORT_TERMS terms around j_max; short_window_holds accepts
    # them where the omitted tails are provably below 1e-17 of W. On the grid of the bound
    # test: where it holds, the short sum equals the full series up to the terms' rounding;
    # the grid reaches both outcomes.
    ps = np.array([1.001, 1.05, 1.2, 1.5, 1.8, 1.99, 1.99999])
    jm = np.geomspace(1e-3, 1e4, 29)
    P, J = (a.ravel() for a in np.meshgrid(ps, jm, indexing="ij"))
    phi = 1.0 / (J * (2 - P))
    args = (jnp.zeros(P.size), jnp.log(phi), jnp.asarray(psi_of(P)))

    def short(*a):
        lo = short_window(*a)
        t = _series_log_terms(*a, lo, jnp.ones_like(lo), SHORT_TERMS)
        return short_window_holds(t, lo), _log_sum(t)

    holds, got = (np.asarray(v) for v in jax.jit(short)(*args))
    assert 0.2 < holds.mean() < 0.9
    for h, g, p_, ph in zip(holds, got, P, phi):
        if h:
            full = sps.logsumexp(full_terms(1.0, ph, p_)[1])
            assert abs(g - full) < 8 * EPS * rounding_scale(1.0, 1.0, ph, p_), (p_, ph)
    # the series part of log p: one call where every observation's short window holds, one
    # where one of them does not (the whole call then takes the full window)
    y = np.array([0.0, 0.5, 2.0, 7.0])
    series = jax.jit(_series_terms)
    for ys, ph, all_hold in ((y, 1.3, True), (np.r_[y, 1.0], 1e-3, False)):
        lp, pp = np.log(np.full(ys.size, ph)), psi_of(1.5)
        pos = ys > 0
        ly = jnp.log(jnp.asarray(ys[pos]))
        lo = short_window(ly, lp[pos], pp)
        h = short_window_holds(_series_log_terms(ly, jnp.asarray(lp[pos]), jnp.asarray(pp), lo, jnp.ones_like(lo),
                                                 SHORT_TERMS), lo)
        assert bool(np.all(h)) == all_hold
        want = np.array([full_log_w(v, ph, 1.5) - np.log(v) if v > 0 else 0.0 for v in ys])
        np.testing.assert_allclose(series(jnp.asarray(ys), jnp.asarray(lp), jnp.asarray(pp)), want, rtol=1e-13,
                                   atol=1e-13)


# ---------------------------------------------------------------------------------------
# normalization, mean and variance
# ---------------------------------------------------------------------------------------
MOMENT_CASES = [(1.0, 1.0, 1.5), (3.0, 0.5, 1.2), (0.5, 2.0, 1.8), (10.0, 0.1, 1.6), (2.0, 0.3, 1.05),
                (0.05, 1.0, 1.9)]


def test_integrates_to_one_with_mean_mu_and_variance_phi_mu_p():
    # P(0) + int_0^inf f(y) dy = 1, int y f = mu, int (y - mu)^2 f + P(0) mu^2 = phi mu^p, by
    # the trapezoidal rule in u = log y on 2001 points per case: f(e^u) e^u is smooth, decays
    # like e^(alpha u) as u -> -inf (the range starts where e^(alpha u) < 1e-16) and faster
    # than exponentially beyond mu + 40 SD. All cases in one call. Seen: all three within
    # 1.4e-13 (relative for the mean and variance).
    n = 2001
    us = []
    for m, ph, pw in MOMENT_CASES:
        alpha = (2 - pw) / (pw - 1)
        gam = ph * (pw - 1) * m ** (pw - 1)
        us.append(np.linspace(-37.0 / alpha - 5.0, np.log(m + 40 * np.sqrt(ph * m ** pw) + 60 * gam), n))
    u = np.concatenate(us)
    cases = np.array(MOMENT_CASES)
    mu, phi, p = (np.repeat(cases[:, k], n) for k in range(3))
    f = (np.exp(logpdf(np.exp(u), mu, phi, p)) * np.exp(u)).reshape(len(cases), n)
    for k, (m, ph, pw) in enumerate(MOMENT_CASES):
        uk = us[k]
        du = uk[1] - uk[0]
        trap = lambda g: (np.sum(g) - 0.5 * (g[0] + g[-1])) * du
        p0 = np.exp(-m ** (2 - pw) / (ph * (2 - pw)))
        yk = np.exp(uk)
        assert p0 + trap(f[k]) == pytest.approx(1.0, abs=1e-11), k
        assert trap(f[k] * yk) == pytest.approx(m, rel=1e-11), k
        assert trap(f[k] * (yk - m) ** 2) + p0 * m * m == pytest.approx(ph * m ** pw, rel=1e-11), k


# ---------------------------------------------------------------------------------------
# derivatives
# ---------------------------------------------------------------------------------------
def _summed(eta, d, psi, y):
    return jnp.sum(tweedie_logpdf(y, eta, d, psi))


@jax.jit
def _derivatives(y, eta, d, psi):
    """Elementwise first and second derivatives of log f in (log mu, log phi, psi)."""
    args = (eta, d, psi)
    g = [jax.grad(_summed, k) for k in range(3)]
    out = {"ll": tweedie_logpdf(y, eta, d, psi)}
    for a, name in enumerate("edp"):
        out[name] = g[a](*args, y)
        for b, name2 in enumerate("edp"):
            if b >= a:
                out[name + name2] = jax.grad(lambda *v, a=a: jnp.sum(g[a](*v, y)), b)(*args)
    return out


def test_derivatives_match_finite_differences():
    # rows: points of the grid (y = 0 included) and the far points at (eta, d, psi), and at each
    # of them shifted by +-h (one compiled call). Central differences with h = 1e-5:
    # truncation ~1e-10 relative, rounding ~eps * rounding_scale / h (the cancelling terms of
    # log f: 2e-6 at y = mu = 1e4, phi = 0.5, p = 1.1, where the derivative in eta is ~0)
    y, mu, phi, p = np.concatenate([GRID[:, ::3], FAR], axis=1)
    base = np.stack([np.log(mu), np.log(phi), psi_of(p)])
    h = 1e-5
    blocks = [base]
    for k in range(3):
        for sgn in (1, -1):
            b = base.copy()
            b[k] = b[k] + sgn * h
            blocks.append(b)
    X = np.concatenate(blocks, axis=1)
    out = _derivatives(jnp.asarray(np.tile(y, 7)), *map(jnp.asarray, X))
    r = {k: np.asarray(v).reshape(7, -1) for k, v in out.items()}
    noise = 8 * EPS * rounding_scale(y, mu, phi, p) * (1 + np.abs(np.log(np.maximum(y, 1e-300)))) / h
    names = "edp"
    for k, c in enumerate(names):
        fd = (r["ll"][1 + 2 * k] - r["ll"][2 + 2 * k]) / (2 * h)
        assert np.all(np.isfinite(r[c][0]))
        np.testing.assert_array_less(np.abs(r[c][0] - fd), 1e-6 * (1 + np.abs(fd)) + noise, err_msg=c)
        for c2 in names[k:]:
            fd2 = (r[c2][1 + 2 * k] - r[c2][2 + 2 * k]) / (2 * h)
            assert np.all(np.isfinite(r[c + c2][0]))
            np.testing.assert_array_less(np.abs(r[c + c2][0] - fd2), 1e-6 * (1 + np.abs(fd2)) + noise, err_msg=c + c2)
    # y = 0: log f = -lambda, so d/d log mu = -(2-p) lambda and d/d log phi = lambda
    zero = y == 0
    lam = mu ** (2 - p) / (phi * (2 - p))
    assert zero.sum() >= 10
    np.testing.assert_allclose(r["e"][0][zero], -(2 - p[zero]) * lam[zero], rtol=1e-13)
    np.testing.assert_allclose(r["d"][0][zero], lam[zero], rtol=1e-13)


def test_float32():
    # float32 log densities and gradients: float32 results, finite, and within the rounding
    # of float32, 8 eps32 times the cancelling terms (seen: at most 0.52 of that; up to 0.09
    # absolute where those terms are ~1e5)
    y, mu, phi, p = GRID
    args32 = tuple(jnp.asarray(a, jnp.float32) for a in (y, np.log(mu), np.log(phi), psi_of(p)))
    value_and_grads = jax.value_and_grad(lambda e, d, s, y: jnp.sum(tweedie_logpdf(y, e, d, s)), (0, 1, 2))
    got, grads = jax.jit(lambda y, *a: (tweedie_logpdf(y, *a), value_and_grads(*a, y)[1]))(*args32)
    assert got.dtype == jnp.float32
    want = logpdf(y, mu, phi, p)
    tol = 8 * np.finfo(np.float32).eps * rounding_scale(y, mu, phi, p)
    np.testing.assert_array_less(np.abs(np.asarray(got, float) - want), tol)
    assert all(bool(jnp.all(jnp.isfinite(g))) and g.dtype == jnp.float32 for g in grads)


# ---------------------------------------------------------------------------------------
# the family object
# ---------------------------------------------------------------------------------------
def test_family_loglik_variance_and_parameters():
    fam = get_family("tweedie")
    assert isinstance(fam, Tweedie) and fam.link.name == "log" and fam.n_extra == 1
    y = np.array([0.0, 0.5, 3.0])
    eta, d, psi = 0.4, -0.3, 0.7
    p = 1 + sps.expit(psi)
    want = [series_logpdf(v, np.exp(eta), np.exp(d), p) for v in y]

    @jax.jit
    def both(y, eta, d, extra):
        # the log link, and the identity link at mu = exp(eta): the same density
        return fam.loglik(y, eta, d, extra, None), Tweedie("identity").loglik(y, jnp.exp(eta), d, extra, None)

    got, got_id = both(jnp.asarray(y), jnp.full(3, eta), jnp.full(3, d), jnp.array([psi]))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-13)
    np.testing.assert_allclose(np.asarray(got_id), want, rtol=1e-13)
    var = float(fam.variance(jnp.asarray(2.0), jnp.asarray(d), jnp.array([psi])))
    assert var == pytest.approx(np.exp(d) * 2.0 ** p, rel=1e-14)
    par = fam.dispersion_parameters(jnp.asarray([d]), jnp.array([psi]))
    assert list(par) == ["phi", "power"]
    assert par["phi"] == pytest.approx(np.exp(d), rel=1e-15)
    assert par["power"] == pytest.approx(p, rel=1e-15)


def test_loglik_splits_into_the_terms_with_eta_and_the_series():
    """loglik = loglik_eta + loglik_rest (the mode search uses the first only), the rest is
    free of eta and 0 at y = 0 (so zero-inflation sees the whole density at zeros)."""
    fam = get_family("tweedie")
    y = jnp.array([0.0, 0.5, 3.0, 40.0])
    d, extra = jnp.full(4, -0.3), jnp.array([0.7])
    rest = fam.loglik_rest(y, d, extra, None)
    assert float(rest[0]) == 0.0 and np.all(np.abs(np.asarray(rest[1:])) > 0.1)
    for eta in (-1.0, 0.4, 2.5):
        e = jnp.full(4, eta)
        np.testing.assert_allclose(np.asarray(fam.loglik_eta(y, e, d, extra, None) + rest),
                                   np.asarray(fam.loglik(y, e, d, extra, None)), rtol=1e-14)


def test_zero_inflation_to_zero_is_the_base_family():
    # zi_eta = -50: log(1 - p) = -2e-22, p f(0) terms vanish below double precision
    y = np.array([0.0, 0.2, 4.0])
    base = logpdf(y, 1.3, 1.1, 1.6)
    zi = zero_inflated_loglik(jnp.asarray(base), jnp.asarray(y), jnp.full(3, -50.0))
    np.testing.assert_allclose(np.asarray(zi), base, rtol=1e-14, atol=0)


N_DRAWS = 200_000


@partial(jax.jit, static_argnames="n")
def _draw(key, eta, d, psi, n):
    return Tweedie().sample(key, jnp.full(n, eta), jnp.full(n, d), jnp.reshape(psi, (1,)), None)


@pytest.mark.parametrize("mu,phi,p", [(1.0, 1.0, 1.5), (3.0, 0.5, 1.2), (0.4, 2.0, 1.85)])
def test_sample_moments(mu, phi, p):
    # a Poisson number of Gamma summands: mean, variance and P(0) within 5 standard errors
    y = np.asarray(_draw(jax.random.PRNGKey(7), np.log(mu), np.log(phi), psi_of(p), N_DRAWS))
    assert np.all(np.isfinite(y)) and np.all(y >= 0)
    var = phi * mu ** p
    assert abs(y.mean() - mu) < 5 * np.sqrt(var / y.size)
    sq = (y - y.mean()) ** 2
    assert abs(sq.mean() - var) < 5 * sq.std() / np.sqrt(y.size)
    p0 = np.exp(-mu ** (2 - p) / (phi * (2 - p)))
    assert abs(np.mean(y == 0) - p0) < 5 * np.sqrt(p0 * (1 - p0) / y.size)


@pytest.mark.parametrize("y,match", [([1.0, -0.5, 2.0], r"non-negative response.*1 negative"),
                                     ([1.0, np.nan], "non-finite"), ([np.inf, 1.0], "non-finite")])
def test_check_response_rejects(y, match):
    with pytest.raises(ValueError, match=match):
        Tweedie().check_response(np.asarray(y, float))


def test_model_errors():
    df = pd.DataFrame({"y": [0.0, 1.2, 3.0, -0.1, 2.0, 0.0], "x": np.arange(6.0), "g": list("aabbcc")})
    with pytest.raises(ValueError, match="non-negative response"):
        gj.GLMM("y ~ x + (1|g)", df, family="tweedie")
    with pytest.raises(ValueError, match="does not take the 'logit' link"):
        Tweedie("logit")
    Tweedie().check_response(np.array([0.0, 0.0, 1.5]))          # zeros are in the support


# ---------------------------------------------------------------------------------------
# glmmTMB references
# ---------------------------------------------------------------------------------------
REFS = {k: json.loads((REF_DIR / f"{k}.json").read_text()) for k in ("tweedie_sim", "tweedie_disp")}
PSI = "extra:logit(power - 1)"


def _model(ref_id):
    ref = REFS[ref_id]
    disp = ref["formula"]["disp"]
    disp = None if disp.replace(" ", "") == "~1" else disp
    return gj.GLMM(ref["formula"]["cond"], pd.read_csv(REF_DIR / ref["dataset"]), family="tweedie", disp=disp)


def tmb_parameters(ref) -> np.ndarray:
    """glmmTMB's optimum as glmmjax's flat vector beta | theta (SD) | betad | psi."""
    names = ref["tmb_par"]["names"]
    vals = np.array(ref["tmb_par"]["values"], dtype=float)
    pick = lambda nm: vals[[i for i, n in enumerate(names) if n == nm]]
    return np.concatenate([pick("beta"), np.exp(pick("theta")), pick("betad"), pick("psi")])


def test_references_present():
    for ref in REFS.values():
        assert ref["status"] == "ok" and ref["glmmTMB_version"] == "1.1.5" and ref["family"] == "tweedie"
        assert ref["tmb_par"]["names"][-1] == "psi"


def test_objective_at_glmmtmb_estimates():
    # Both references through one compiled objective, of the model with dispformula ~ x: at
    # tweedie_sim's estimates (dispformula ~ 1) its disp:x coefficient is 0, which is the
    # same likelihood. Seen: 0 and 5e-15 relative.
    model = _model("tweedie_disp")
    names = model.parameter_names()
    assert names[-1] == PSI and names[-3:-1] == ["disp:(Intercept)", "disp:x"]
    obj = jax.jit(model.objective())
    x_sim = tmb_parameters(REFS["tweedie_sim"])
    x_sim = np.concatenate([x_sim[:-1], [0.0], x_sim[-1:]])
    for ref_id, x in [("tweedie_sim", x_sim), ("tweedie_disp", tmb_parameters(REFS["tweedie_disp"]))]:
        assert len(x) == len(names)
        assert float(obj(x)) == pytest.approx(REFS[ref_id]["estimation"]["objective"], rel=1e-8), ref_id


@pytest.fixture(scope="module")
def fit():
    return _model("tweedie_sim").fit()


def _check(est, se, ref_est, ref_se):
    np.testing.assert_array_less(np.abs(np.asarray(est) - ref_est), 0.02 * np.asarray(ref_se))
    np.testing.assert_array_less(np.abs(np.asarray(se) / ref_se - 1), 0.02)


def test_fit_matches_glmmtmb(fit):
    # seen: logLik 3.4e-8 above glmmTMB's; estimates within 2.1e-4 SE (psi; 1.1e-4 for the
    # fixed effects) and SEs within 5.4e-6 relative; phi, power and the SD within 1.1e-5
    # relative
    ref = REFS["tweedie_sim"]
    assert fit.converged, fit.max_grad
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3, fit.loglik - ref["fit_stats"]["logLik"]
    assert fit.df == ref["fit_stats"]["logLik_df"] and fit.nobs == ref["nobs"]
    for key, ours, our_se in [("fixed_effects", fit.fixef, fit.se), ("disp_coefficients", fit.disp_fixef, fit.disp_se)]:
        assert list(ours.index) == [e["term"] for e in ref[key]]
        _check(ours.values, our_se.values, np.array([e["estimate"] for e in ref[key]]),
               np.array([e["std_error"] for e in ref[key]]))
    psi_se = np.sqrt(fit.vcov_full.loc[PSI, PSI])
    _check([fit.extra[0]], [psi_se], ref["psi"]["estimate"], ref["psi"]["std_error"])
    sd = ref["random_effects"][0]["std_dev"][0]
    assert fit.varcorr.query("group == 'g'").sd.iloc[0] == pytest.approx(sd, rel=0.02)
    for name, val in ref["dispersion"]["parameters"].items():
        assert fit.dispersion_parameters[name] == pytest.approx(val, rel=0.02), name
    assert fit.dispersion == fit.dispersion_parameters["phi"]


def test_predictions_and_residuals(fit):
    # glmmTMB's predict() and residuals() on the fitted rows; Pearson residuals divide by the
    # variance phi mu^power at the fit. The two fits' estimates differ by <= 2.1e-4 SE; the
    # residuals are held to the means' 1e-4 relative. Seen: linear predictors within 9.8e-6,
    # means within 9.8e-6 relative, Pearson residuals within 5.2e-5 absolute.
    ref = REFS["tweedie_sim"]
    mu = np.array(ref["predictions"]["response"])
    np.testing.assert_allclose(fit.predict(type="link"), ref["predictions"]["link"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(fit.predict(type="response"), mu, rtol=1e-4)
    np.testing.assert_array_less(np.abs(fit.residuals(type="response") - ref["residuals"]["response"]), 1e-4 * mu)
    np.testing.assert_allclose(fit.residuals(type="pearson"), ref["residuals"]["pearson"], rtol=1e-4, atol=1e-4)


def test_summary_prints_the_dispersion_as_glmmtmb(fit):
    # glmmTMB 1.1.5's summary() prints phi ("Dispersion parameter for tweedie family (): 1.26")
    # and not the power (its print() does, from family_params()); glmmjax has the power in
    # dispersion_parameters and in the summary's fit table
    r = [ln.rstrip() for ln in REFS["tweedie_sim"]["summary_text"]]
    lines = [ln.rstrip() for ln in fit.summary().lines()]
    disp = [ln for ln in r if ln.startswith("Dispersion parameter for tweedie family ():")]
    assert len(disp) == 1 and disp[0] in lines
    assert r[0] in lines                                   # " Family: tweedie  ( log )"
    assert fit.summary().tables()["fit"]["power"].iloc[0] == pytest.approx(
        REFS["tweedie_sim"]["dispersion"]["parameters"]["power"], rel=0.02)
