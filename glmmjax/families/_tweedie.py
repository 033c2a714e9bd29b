"""Tweedie family with 1 < power < 2 (glmmTMB's ``tweedie``): the compound Poisson-Gamma.

With mean mu > 0, dispersion phi > 0 and power 1 < p < 2,

    E(y) = mu,   Var(y) = phi mu^p,

y is the sum of N ~ Poisson(lambda) independent Gamma(shape alpha, scale gam) draws,

    lambda = mu^(2-p) / (phi (2-p)),   alpha = (2-p) / (p-1),   gam = phi (p-1) mu^(p-1),

so y = 0 with probability exp(-lambda) and y > 0 has the density (Dunn & Smyth 2005)

    log p(0)  = -lambda,
    log p(y)  = -lambda - y / gam - log(y) + log W(y, phi, p)                 (y > 0),
    W = sum_{j >= 1} W_j,   log W_j = j log z - lgamma(1 + j) - lgamma(alpha j),
    log z = alpha log(y / (p-1)) - (1 + alpha) log(phi) - log(2-p).

This is TMB's ``dtweedie`` (glmmTMB's likelihood), series included. Parameters as glmmTMB:
``disp_eta = log(phi)`` (``betad``) and one extra parameter ``extra[0] = psi`` with
p = 1 + logistic(psi) (glmmTMB's ``psi``, "thetaf" in its C++); then p - 1 = logistic(psi),
2 - p = logistic(-psi) and alpha = exp(-psi), each computed without cancellation.

The series (``log_w``). Stirling's formula puts the largest term at
j_max = y^(2-p) / (phi (2-p)); near it log W_j is close to a parabola in j with standard
deviation sd = sqrt(j_max (p-1)), with a slightly heavier upper tail. The sum is taken in
log space over a fixed number of N_TERMS = 128 terms, on the window

    j_lo = max(1, floor(j_max - 8.5 sd)),   j_hi = ceil(j_max + 8.5 sd + 20),

outside which the terms sum to less than 1e-16 of W at every 1 < p < 2 and j_max (measured
against the full series; tests/test_family_tweedie.py checks it on a grid). A window of up to 128
terms is summed term by term. A wider one (sd > 6.2, i.e. j_max (p-1) > 38: small phi or
large y) is covered with a whole stride s = ceil((j_hi - j_lo) / 127), W = s sum_k
W_(j_lo + s k): the terms are samples of a smooth (entire) function of j, and by the Poisson
summation formula the strided sum differs from the full one by a relative
~exp(-2 pi^2 (sd/s)^2) < 1e-80 (sd/s > 3). The series' lower end j = 1 needs no such
smoothness: wherever W_1 exceeds e^-37 of the largest term, j_max < 40 and the window has at
most 114 terms (any p), so it is summed term by term. Hence 1e-12 relative accuracy (1e-15
in practice, before rounding) for any parameters a fit visits. The window's start and stride
are integers computed from stop-gradient values; the sum is differentiable (to any order) in
mu, phi and p. j_max is capped at 1e15.

Most data need far fewer terms (counts of summands near j_max ~ 1: the terms fall off
faster than geometrically), so the log-density first sums SHORT_TERMS = 48 consecutive
terms around j_max and keeps them when, for every positive observation of the call, they
provably hold the series to rounding (``short_window_holds``: log W_j is concave in j, so
the omitted tails are bounded by geometric series; both edge terms must be below e^-40 of
the sum). Otherwise the whole call uses the window above (a lax.cond: one branch runs;
under vmap both do). The tweedie_sim data (tests/fixtures) need all 48 at the optimum.
The short window makes an objective-and-gradient evaluation cheaper than the 128-term
window alone (``benchmarks/bench_tmb.py --only tweedie --profile-all``, column "f+g warm
ms"; figures in benchmarks/README.md).

Rounding: the terms j log z and lgamma(alpha j) of log W, and log W against lambda and y/gam
in log p(y), cancel, so log p(y) carries an absolute rounding error of a few eps times their
size (~ lambda + y/gam + j_max |log z| + lgamma(alpha j_max)); TMB's sum has the same. In
float64 that is negligible (e.g. 2e-11 at j_max ~ 9e3); in float32 (eps = 1.2e-7) it is
~1e-4 absolute for moderate parameters, larger far out.

The series does not involve mu: ``loglik_eta`` (-lambda - y / gam) is all the search for
the conditional modes evaluates, and ``loglik_rest`` (log W - log y) enters the Laplace
objective once per evaluation, which makes a warm fit cheaper than summing the series at
every Newton step (benchmarks/README.md).

Zero-inflation (``zi=``) is allowed, as in glmmTMB: the Tweedie has a mass at 0 of its own.
Links: log (default), identity, sqrt, inverse (mu must stay positive). R reports ``phi``
(sigma(m)) and the power (family_params(m)).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._checks import check_finite, natural
from ._special import lgamma, lgamma_pos
from ._stable import float_dtype, log_concave_window_holds, log_mu

__all__ = ["Tweedie", "tweedie_logpdf", "log_w", "N_TERMS", "SHORT_TERMS"]

#: number of series terms summed per observation (static)
N_TERMS = 128
#: the window tried first (``_series_terms``)
SHORT_TERMS = 48
#: window half-width in standard deviations of the terms, and the upper tail's extra room
_WIDTH_SD = 8.5
_UPPER_EXTRA = 20.0
_LOG_JMAX_CAP = math.log(1e15)


def _power_parts(psi):
    """(p - 1, 2 - p, log(p - 1), log(2 - p), alpha) for p = 1 + logistic(psi)."""
    return (jax.nn.sigmoid(psi), jax.nn.sigmoid(-psi), jax.nn.log_sigmoid(psi),
            jax.nn.log_sigmoid(-psi), jnp.exp(-psi))


def series_window(log_y, log_phi, psi):
    """The series' window (module docstring), from stop-gradient values.

    Arguments:
        log_y, log_phi, psi: log response (y > 0), log dispersion, power parameter.
    Returns:
        (j_lo, s): the first index and the stride, whole numbers in float arrays; the terms
        summed are j_lo + s k, k = 0 .. N_TERMS - 1.
    """
    log_y, log_phi, psi = (jax.lax.stop_gradient(a) for a in (log_y, log_phi, psi))
    p1, p2, _, lp2, _ = _power_parts(psi)
    jmax = jnp.exp(jnp.minimum(p2 * log_y - log_phi - lp2, _LOG_JMAX_CAP))
    sd = jnp.sqrt(jmax * p1)
    lo = jnp.maximum(1.0, jnp.floor(jmax - _WIDTH_SD * sd))
    hi = jnp.ceil(jmax + _WIDTH_SD * sd + _UPPER_EXTRA)
    stride = jnp.maximum(1.0, jnp.ceil((hi - lo) / (N_TERMS - 1)))
    return lo, stride


def _series_log_terms(log_y, log_phi, psi, lo, stride, n_terms):
    """log W_j at j = lo + stride k, k = 0 .. n_terms - 1 (lo, stride: constants)."""
    _, _, lp1, lp2, alpha = _power_parts(psi)
    logz = alpha * (log_y - lp1) - (1.0 + alpha) * log_phi - lp2
    k = jnp.arange(n_terms, dtype=jnp.result_type(logz))
    j = lo[..., None] + stride[..., None] * k
    return j * logz[..., None] - lgamma_pos(j + 1.0) - lgamma(alpha[..., None] * j)


def _log_sum(terms):
    top = jax.lax.stop_gradient(jnp.max(terms, axis=-1, keepdims=True))
    return jnp.log(jnp.sum(jnp.exp(terms - top), axis=-1)) + top[..., 0]


def log_w(log_y, log_phi, psi):
    """log W(y, phi, p) = log sum_{j>=1} W_j of the Dunn & Smyth series (module docstring).

    Arguments:
        log_y: log response (y > 0).
        log_phi: log dispersion.
        psi: power parameter, p = 1 + logistic(psi).
    Returns:
        log W, elementwise over the broadcast arguments.
    """
    lo, stride = series_window(log_y, log_phi, psi)
    return _log_sum(_series_log_terms(log_y, log_phi, psi, lo, stride, N_TERMS)) + jnp.log(stride)


def short_window(log_y, log_phi, psi):
    """The first index of the SHORT_TERMS-term window around j_max (stop-gradient)."""
    log_y, log_phi, psi = (jax.lax.stop_gradient(a) for a in (log_y, log_phi, psi))
    _, p2, _, lp2, _ = _power_parts(psi)
    jmax = jnp.exp(jnp.minimum(p2 * log_y - log_phi - lp2, _LOG_JMAX_CAP))
    return jnp.maximum(1.0, jnp.floor(jmax) - (SHORT_TERMS // 2 - 1))


def short_window_holds(terms, lo):
    """True where SHORT_TERMS consecutive terms (log W_j from j = lo) hold the series to
    rounding: log W_j is concave in j (its second difference is minus those of the convex
    lgamma(j + 1) and lgamma(alpha j)), see ``log_concave_window_holds``."""
    return log_concave_window_holds(terms, lo == 1.0)


def _mean_terms(y, log_mu, log_phi, psi):
    """The terms of log p(y) that involve mu: -lambda - y / gam (-lambda at y = 0)."""
    p1, p2, lp1, lp2, _ = _power_parts(psi)
    minus_lambda = -jnp.exp(p2 * log_mu - log_phi - lp2)
    pos = y > 0
    log_y = jnp.log(jnp.where(pos, y, 1.0))
    # y / gam = y / (phi (p-1) mu^(p-1))
    y_over_gam = jnp.exp(log_y - log_phi - lp1 - p1 * log_mu)
    return minus_lambda - jnp.where(pos, y_over_gam, 0.0)


def _series_terms(y, log_phi, psi):
    """The terms of log p(y) free of mu: log W(y, phi, p) - log y for y > 0, 0 at y = 0.

    The series is summed over SHORT_TERMS terms around j_max when that window holds every
    positive observation's series to rounding (``short_window_holds``: the usual case of
    small counts of summands), else over the full window (``log_w``); one branch runs."""
    pos = y > 0
    log_y = jnp.log(jnp.where(pos, y, 1.0))
    lo = short_window(log_y, log_phi, psi)
    terms = _series_log_terms(log_y, log_phi, psi, lo, jnp.ones_like(lo), SHORT_TERMS)
    short = jnp.all(short_window_holds(terms, lo) | ~pos)
    lw = jax.lax.cond(short, lambda: _log_sum(terms), lambda: log_w(log_y, log_phi, psi))
    return jnp.where(pos, lw - log_y, 0.0)


def tweedie_logpdf(y, log_mu, log_phi, psi):
    """Tweedie log density (y > 0) or log probability (y = 0), elementwise.

    Arguments:
        y: responses (>= 0).
        log_mu: log of the mean.
        log_phi: log dispersion (glmmTMB's betad scale).
        psi: power parameter, p = 1 + logistic(psi).
    Returns:
        log p(y | mu, phi, p), the broadcast shape of the arguments.
    """
    y, log_mu, log_phi, psi = jnp.broadcast_arrays(*(jnp.asarray(a) for a in (y, log_mu, log_phi, psi)))
    return _mean_terms(y, log_mu, log_phi, psi) + _series_terms(y, log_phi, psi)


@dataclass(frozen=True, repr=False)
class Tweedie(Family):
    name = "tweedie"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt", "inverse")
    has_dispersion = True
    disp_scale = "log(phi)"
    n_extra = 1
    extra_names = ("logit(power - 1)",)
    # no GLM start: the series log-likelihood makes each GLM iteration nearly as dear as the
    # mixed model's; the link-scale least-squares start reaches the same optima in less time
    # (``benchmarks/bench_tmb.py --only tweedie``, column "jax fit s"; benchmarks/README.md)
    glm_start = False
    #: zi= is allowed although the family is continuous (as in glmmTMB)
    allows_zi: ClassVar[bool] = True

    @staticmethod
    def power(extra):
        """The power p = 1 + logistic(psi) from the extra parameters."""
        return 1.0 + jax.nn.sigmoid(jnp.asarray(extra)[0])

    def loglik(self, y, eta, disp_eta, extra, size):
        return tweedie_logpdf(y, log_mu(self.link, eta), disp_eta, extra[0])

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        # the series does not involve mu: the conditional-mode search skips it
        return _mean_terms(y, log_mu(self.link, eta), disp_eta, extra[0])

    def loglik_rest(self, y, disp_eta, extra, size):
        return _series_terms(y, jnp.broadcast_to(disp_eta, jnp.shape(y)), extra[0])

    def variance(self, mu, disp_eta, extra, size=None):
        return jnp.exp(disp_eta) * mu ** self.power(extra)

    def sample(self, key, eta, disp_eta, extra, size):
        # N ~ Poisson(lambda) summands, their sum Gamma(N alpha, scale gam); y = 0 when N = 0
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        shape = jnp.shape(mu)
        psi = jnp.asarray(extra, dt)[0]
        p1, p2, lp1, lp2, alpha = _power_parts(psi)
        log_phi = jnp.broadcast_to(jnp.asarray(disp_eta, dt), shape)
        lmu = jnp.log(mu)
        lam = jnp.exp(p2 * lmu - log_phi - lp2)
        gam = jnp.exp(log_phi + lp1 + p1 * lmu)
        k1, k2 = jax.random.split(key)
        n = jax.random.poisson(k1, lam, shape=shape).astype(dt)
        g = jax.random.gamma(k2, jnp.where(n > 0, n * alpha, 1.0), shape=shape, dtype=dt)
        return jnp.where(n > 0, g * gam, 0.0)

    def check_response(self, y, size=None):
        y = check_finite(y, self.name)
        if np.any(y < 0):
            raise ValueError(f"The tweedie family needs a non-negative response; the response has "
                             f"{int(np.sum(y < 0))} negative value(s)")

    def initial_mu(self, y, size=None):
        # halfway to the mean, which keeps zeros inside the log link's domain
        y = np.asarray(y, dtype=float)
        m = float(np.mean(y)) if y.size else 1.0
        return 0.5 * (y + m) if m > 0 else np.ones_like(y)

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate at the starting power 1.5: E[(y - mu)^2 / mu^1.5] = phi
        y = np.asarray(y, dtype=float)
        mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
        ok = mu > 0
        if not np.any(ok):
            return 0.0
        phi = np.mean((y[ok] - mu[ok]) ** 2 / mu[ok] ** 1.5)
        if not np.isfinite(phi) or phi <= 0:
            return 0.0
        return float(np.clip(np.log(phi), -10.0, 10.0))

    def initial_extra(self, y, mu, size=None) -> np.ndarray:
        return np.zeros(1)     # power 1.5, glmmTMB's start

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta))), "power": natural(self.power(extra))}
