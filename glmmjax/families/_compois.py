"""Conway-Maxwell-Poisson family (glmmTMB's ``compois``, parameterized by the mean).

The Conway-Maxwell-Poisson distribution with rate lambda > 0 and shape nu > 0 has mass

    p(y) = lambda^y / (y!)^nu / Z(lambda, nu),      Z(lambda, nu) = sum_j lambda^j / (j!)^nu.

glmmTMB (through TMB's ``dcompois2``) parameterizes it by its mean mu = g^{-1}(eta) and
phi = exp(disp_eta) (glmmTMB's ``betad`` scale; R's ``sigma(m)`` is phi) with nu = 1 / phi:
phi > 1 is overdispersion, phi = 1 the Poisson, phi < 1 underdispersion. With x = log lambda,

    log p(y) = y x - nu lgamma(y + 1) - log Z(x, nu),

where x solves E(y) = d log Z / dx = mu. The variance is Var(y) = d^2 log Z / dx^2 at that
x (glmmTMB's ``compois()$variance``, its C++ ``compois_calc_var``).

log Z is computed as TMB's ``compois_utils::calc_logZ`` does, in one of two regimes chosen
by the mode m = exp(x / nu):

* m > 100, m nu > 200 and nu < 2 m: TMB's Laplace approximation. With s = log m,
      A(s) = log sqrt(2 pi) - log psi'(m + 1/2) / 2,   F(s) = (m - 1/2) s - lgamma(m + 1/2),
      log Z = A(s) - log(nu) / 2 + nu F(s) - (A(s) + F(s) - m) / nu
  (A + F - m is the Laplace error at nu = 1, which corrects the general one). lgamma and
  psi' at m + 1/2 > 100 are evaluated by their asymptotic series (exact to rounding there),
  which makes A and F closed forms in s and their derivatives cheap.
* otherwise the series, summed in log space (logsumexp) over a window of ``n_terms``
  consecutive j from max(0, floor(mu) - n_terms / 2). TMB sums the same series term by
  term from the mode outwards until a term falls below 1e-12 of the sum; the two agree
  (to ~1e-12) whenever the distribution's mass lies within the window, roughly 8 standard
  deviations sqrt(mu phi) on each side. With the default 512 terms that holds while
  mu phi <~ 1000 (log p within 1e-10 of a 8192-term sum on a grid of mu <= 400 and
  phi <= 20, except mu phi >= 2000); wider distributions need a larger ``n_terms``, e.g.
  ``ConwayMaxwellPoisson(n_terms=2048)``. log(j!) comes from a table below j = 4096.
  The log-likelihood first solves with a window of SHORT_TERMS = 64 terms and keeps it when,
  at the solution, it holds every observation's series to rounding (``_window_holds``:
  the terms are log-concave in j, so the omitted tails are bounded by geometric series),
  as for the usual small counts; otherwise the whole call uses the ``n_terms`` window.
  For small counts this makes a warm fit much faster than the 512-term window alone, and
  the first (compiling) fit slower, as the full window's branch is compiled too
  (``benchmarks/bench_tmb.py --only compois --no-r``; figures in benchmarks/README.md).

log lambda from mu and nu (TMB's ``calc_loglambda``): Newton's method on
f(x) = log E(y | x) - log mu, f'(x) = Var / E, halving back a step that increases |f| as
TMB does, until the step is below 1e-10 (float32: 1e-5) of max(1, |x|) (TMB: 1e-9; x is
then exact to rounding), at most 60 iterations, all observations at once in a
``lax.while_loop``. It starts from mu ~ lambda^(1/nu) - (nu - 1) / (2 nu) for a large mean
and mu ~ lambda for a small one (TMB starts at nu log mu): at most 7 iterations (3 on
average) on a grid of means 1e-4..2000 and nu 0.05..10.

Derivatives. The Newton solve is not differentiated. log Z is the cumulant generating
function of (j, -lgamma(j + 1)), so its partial derivatives K[a, b] = d^(a+b) log Z /
dx^a dnu^b are joint cumulants, all computed in one pass over the window (for the Laplace
regime, from closed forms). With x = x(log mu, nu) defined by K[1, 0] = mu,

    dx = (K[1, 0] dlog(mu) - K[1, 1] dnu) / K[2, 0],
    dK[a, b] = K[a + 1, b] dx + K[a, b + 1] dnu.

The log-likelihood, which the Laplace engine differentiates up to four times, is a
``custom_jvp`` (``_loglik_tower``) that returns all its partial derivatives in
(log mu, nu) up to a degree, from a truncated bivariate Taylor expansion at the solved point
(x found degree by degree from K[1, 0](x, nu) = mu, then log p = y x - nu log(y!) - log Z
composed with it); its jvp asks for the next degree. Derivatives of every order are exact,
and each level of differentiation costs one more expansion rather than a differentiated
loop or a chain rule repeated at every level. ``compois_loglambda`` and ``variance`` use the
same implicit derivative on the table itself (``_state``). The response y is data (log p
is not differentiated in y). Everything runs in the dtype of eta (float64 or float32), on
device.

Sampler: inversion, y = min{k : P(0) + ... + P(k) >= U}, walking k = 0, 1, ... for all draws
at once (``inversion_sample``), exact up to rounding; each draw solves for its own lambda
over the window (n_terms values per draw in memory). Links: log (default), identity, sqrt.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ._base import CountFamily, pearson_dispersion
from ._checks import natural
from ._genpois import inversion_sample
from ._stable import float_dtype, log_concave_window_holds, log_mu

__all__ = ["ConwayMaxwellPoisson", "compois_log_z", "compois_loglambda", "compois_moments"]

_LOG_SQRT_2PI = 0.9189385332046727
MAX_NEWTON = 60
DEFAULT_TERMS = 512
SHORT_TERMS = 64     # the window tried first by the log-likelihood (see _window_holds)


_LOG_FACTORIAL_TABLE = 4096
# log(j!), j < 4096, by libm's lgamma: importing glmmjax does not import scipy.special, a
# noticeable part of the import (benchmarks/README.md)
_LOG_FACTORIALS = np.array([math.lgamma(j + 1.0) for j in range(_LOG_FACTORIAL_TABLE)])


def _log_factorial(j):
    """log(j!) for integer-valued j >= 0: a table lookup below 4096, Stirling's series
    beyond (error below 1e-25 there); lgamma of the window is otherwise its costliest step."""
    idx = jnp.clip(j, 0, _LOG_FACTORIAL_TABLE - 1).astype(jnp.int32)
    small = jnp.asarray(_LOG_FACTORIALS, j.dtype)[idx]
    z = jnp.maximum(j, float(_LOG_FACTORIAL_TABLE)) + 1.0
    r = 1.0 / z
    r2 = r * r
    stirling = ((z - 0.5) * jnp.log(z) - z + _LOG_SQRT_2PI
                + r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 / 1260.0)))
    return jnp.where(j < _LOG_FACTORIAL_TABLE, small, stirling)


def _window(logmean, n_terms):
    """The series' terms j: n_terms consecutive integers from max(0, floor(mu) - n_terms / 2),
    placed by the target mean mu = exp(logmean) (held fixed through the Newton solve), and
    log(j!)."""
    dt = logmean.dtype
    big = 1e15 if dt == jnp.float64 else 1e7
    m0 = jnp.floor(jnp.clip(jnp.exp(jax.lax.stop_gradient(logmean)), 0.0, big))
    start = jnp.maximum(m0 - (n_terms // 2), 0.0)
    j = start[..., None] + jnp.arange(n_terms, dtype=dt)
    return j, _log_factorial(j)


def _window_holds(x, j, lg, nu):
    """True where the window holds the whole series at x = log lambda to rounding: the
    terms exp(j x - nu log(j!)) are log-concave in j (second difference
    -nu log((j + 1) / j) < 0), see ``log_concave_window_holds``. (Observations in TMB's
    Laplace regime do not use the window.)"""
    logt = j * x[..., None] - nu[..., None] * lg
    return log_concave_window_holds(logt, j[..., 0] == 0) | _use_laplace(x, nu)


def _series_cumulants(x, nu, j, lg, order):
    """K[..., a, b] = d^(a+b) log Z / dx^a dnu^b for a + b <= order (zeros elsewhere), with
    log Z = log sum_j exp(j x - nu lgamma(j + 1)) summed over the window.

    log Z is the cumulant generating function of (j, -lgamma(j + 1)) under the mass
    p_j = exp(j x - nu lgamma(j + 1) - log Z), so its derivatives are the joint cumulants of
    that pair: the means for a + b = 1, and for a + b >= 2 the cumulants computed from the
    central moments m_(a,b) = sum_j p_j (j - E j)^a (E L - L)^b by the multivariate
    recursion (n = (a, b), e the unit index of a non-zero component, n' = n - e)
        k_n = m_n - sum_{v <= n', v != n'} C(n', v) m_(n' - v) k_(v + e),
    in which the means of the centred pair (0) drop out.
    """
    logt = j * x[..., None] - nu[..., None] * lg
    log_z = jax.nn.logsumexp(logt, axis=-1)
    K = [[jnp.zeros_like(x) for _ in range(order + 1)] for _ in range(order + 1)]
    K[0][0] = log_z
    if order == 0:
        return jnp.stack([jnp.stack(r, -1) for r in K], -2)
    p = jnp.exp(logt - log_z[..., None])
    mean_j = jnp.sum(p * j, axis=-1)
    mean_s = -jnp.sum(p * lg, axis=-1)
    K[1][0], K[0][1] = mean_j, mean_s
    dj = j - mean_j[..., None]
    ds = -lg - mean_s[..., None]
    pow_j = [p]
    pow_s = [jnp.ones_like(ds)]
    for _ in range(order):
        pow_j.append(pow_j[-1] * dj)
        pow_s.append(pow_s[-1] * ds)
    # all central moments in one contraction: mom[a, b] = sum_j p_j dj^a ds^b
    mom = jnp.einsum("...aj,...bj->...ab", jnp.stack(pow_j, -2), jnp.stack(pow_s, -2))
    zero = jnp.zeros_like(x)
    m = {}
    for a in range(order + 1):
        for b in range(order + 1 - a):
            if a + b == 0:
                m[a, b] = jnp.ones_like(x)
            elif a + b == 1:
                m[a, b] = zero
            else:
                m[a, b] = mom[..., a, b]
    kap = {(1, 0): zero, (0, 1): zero}
    for tot in range(2, order + 1):
        for a in range(tot, -1, -1):
            b = tot - a
            e = (1, 0) if a > 0 else (0, 1)
            n1 = (a - e[0], b - e[1])
            k = m[a, b]
            for va in range(n1[0] + 1):
                for vb in range(n1[1] + 1):
                    if (va, vb) == n1 or va + vb == 0 or (n1[0] - va) + (n1[1] - vb) == 1:
                        continue
                    c = math.comb(n1[0], va) * math.comb(n1[1], vb)
                    k = k - c * m[n1[0] - va, n1[1] - vb] * kap[va + e[0], vb + e[1]]
            kap[a, b] = k
            K[a][b] = k
    return jnp.stack([jnp.stack(r, -1) for r in K], -2)


# Asymptotic series at m = mode >= 100 (terms beyond those kept are below 1e-20):
#   lgamma(m + 1/2) = m log m - m + log sqrt(2 pi) + sum_k g_k m^-(2k-1)
#   psi'(m + 1/2)   = (1/m) (1 + sum_k u_k m^-2k)
# with g_k = B_2k(1/2) / (2k (2k - 1)) and u_k = B_2k(1/2) (Bernoulli polynomials at 1/2).
_LGAMMA_HALF = (-1.0 / 24.0, 7.0 / 2880.0, -31.0 / 40320.0, 127.0 / 215040.0)
_TRIGAMMA_HALF = (-1.0 / 12.0, 7.0 / 240.0, -31.0 / 1344.0, 127.0 / 3840.0)


def _log1p_series(u):
    """Coefficients L_k of log(1 + sum_k u_k w^k) = sum_k L_k w^k (k = 1..len(u))."""
    n = len(u)
    c = [0.0] + list(u)
    out = [0.0] * (n + 1)
    for k in range(1, n + 1):        # from (1 + U) L' = U'
        out[k] = c[k] - sum(i * out[i] * c[k - i] for i in range(1, k)) / k
    return tuple(out[1:])


_LOG_TRIGAMMA_HALF = _log1p_series(_TRIGAMMA_HALF)


def _laplace_pieces() -> np.ndarray:
    """A(s), F(s) and -(A + F - e^s) of the Laplace approximation (s = log(mode)),
        A(s) = log sqrt(2 pi) - log(psi'(e^s + 1/2)) / 2,
        F(s) = (e^s - 1/2) s - lgamma(e^s + 1/2),
    as coefficients (3, 11) on the basis (1, s, e^s, e^-s, e^-2s, ..., e^-8s)."""
    n_basis = 3 + 8
    a, f = np.zeros(n_basis), np.zeros(n_basis)
    a[0], a[1] = _LOG_SQRT_2PI, 0.5
    for k, c in enumerate(_LOG_TRIGAMMA_HALF):           # e^(-2(k+1) s)
        a[3 + 2 * k + 1] = -0.5 * c
    f[0], f[1], f[2] = -_LOG_SQRT_2PI, -0.5, 1.0
    for k, g in enumerate(_LGAMMA_HALF):                 # e^(-(2k+1) s)
        f[3 + 2 * k] = -g
    b = -(a + f)
    b[2] += 1.0
    return np.stack([a, f, b])


_PIECES = _laplace_pieces()
_PIECE_POWERS = (0, 1, -1)          # the pieces enter log Z as nu^p G(x / nu)


def _piece_derivatives(order: int) -> np.ndarray:
    """(3, order + 1, 11): the basis coefficients of G^(n)(s), n = 0..order, for each piece
    (d/ds maps s -> 1, e^s -> e^s, e^-ks -> -k e^-ks)."""
    out = np.zeros((3, order + 1, _PIECES.shape[1]))
    out[:, 0] = _PIECES
    scale = np.array([0.0, 0.0, 1.0] + [-float(k) for k in range(1, 9)])
    for n in range(1, order + 1):
        prev = out[:, n - 1]
        out[:, n] = prev * scale
        out[:, n, 0] += prev[:, 1]                      # d(s)/ds = 1
    return out


@lru_cache(maxsize=None)
def _nu_coefficients(q: int, b: int) -> tuple:
    """d^b/dnu^b [nu^q g(x / nu)] = nu^(q - b) sum_i c_i s^i g^(i)(s), s = x / nu: the (i, c_i).

    From d/dnu [nu^q s^i g^(i)(s)] = nu^(q-1) [(q - i) s^i g^(i)(s) - s^(i+1) g^(i+1)(s)]."""
    cur = {0: 1}
    for _ in range(b):
        new: dict = {}
        for i, c in cur.items():
            new[i] = new.get(i, 0) + (q - i) * c
            new[i + 1] = new.get(i + 1, 0) - c
        cur = {i: c for i, c in new.items() if c != 0}
        q -= 1
    return tuple(sorted(cur.items()))


@lru_cache(maxsize=None)
def _laplace_tensors(order: int):
    """Static tensors of ``_laplace_table``: T[piece, a, b, i, q], the coefficient of
    s^i basis_q(s) in d^(a+b)/dx^a dnu^b [nu^p G(x / nu)] / nu^(p - a - b); E[piece, a, b, e]
    selecting the power nu^(p - a - b) (e indexes the exponents 1, 0, -1, ...); and L[a, b, e],
    the derivatives of -log(nu) / 2 on the same powers (the (0, 0) entry apart)."""
    D = _piece_derivatives(order)
    n = order + 1
    T = np.zeros((3, n, n, n, D.shape[2]))
    E = np.zeros((3, n, n, n + 2))
    L = np.zeros((n, n, n + 2))
    for k, p in enumerate(_PIECE_POWERS):
        for a in range(n):
            for b in range(n - a):
                E[k, a, b, 1 - (p - a - b)] = 1.0
                for i, c in _nu_coefficients(p - a, b):
                    T[k, a, b, i] += c * D[k, a + i]
    for b in range(1, n):
        L[0, b, 1 + b] = -0.5 * (-1.0) ** (b - 1) * math.factorial(b - 1)
    return T, E, L


def _basis(s):
    """(1, s, e^s, e^-s, ..., e^-8s), from one exponential of an (..., 11) array."""
    dt = s.dtype
    rates = np.array([0.0, 0.0, -1.0] + list(range(1, 9)), float)
    pick_s = np.zeros(rates.size)
    pick_s[1] = 1.0
    return (jnp.exp(-s[..., None] * jnp.asarray(rates, dt)) * jnp.asarray(1.0 - pick_s, dt)
            + s[..., None] * jnp.asarray(pick_s, dt))


def _laplace_mean_var(x, nu):
    """K[1, 0] and K[2, 0] of ``_laplace_table``: sum over the pieces of nu^(p - a) G^(a)(s)."""
    D = _piece_derivatives(2)
    basis = _basis(x / nu)
    inv = 1.0 / nu
    inv_pow = [jnp.ones_like(nu), inv, inv * inv, inv * inv * inv]     # nu^0, nu^-1, ...
    out = []
    for a in (1, 2):
        g = basis @ jnp.asarray(D[:, a].T, x.dtype)                    # (..., 3): G_p^(a)(s)
        out.append(sum(inv_pow[a - p] * g[..., k] for k, p in enumerate(_PIECE_POWERS)))
    return out[0], out[1]


def _laplace_table(x, nu, order):
    """K[..., a, b] = d^(a+b) log Z / dx^a dnu^b of the Laplace approximation, a + b <= order.

    log Z = sum over the pieces nu^p G(x / nu) (p = 0, 1, -1 for A, F, -(A + F - e^s)) -
    log(nu) / 2: d^a/dx^a [nu^p G(x / nu)] = nu^(p-a) G^(a)(s), then ``_nu_coefficients``;
    G and its derivatives are combinations of the basis (1, s, e^s, e^-ks), so the whole
    table is a few contractions with static coefficients (``_laplace_tensors``)."""
    T, E, L = _laplace_tensors(order)
    dt = x.dtype
    s = x / nu
    basis = _basis(s)
    spow = [jnp.ones_like(s)]
    for _ in range(order):
        spow.append(spow[-1] * s)
    V = jnp.stack(spow, -1)[..., :, None] * basis[..., None, :]             # s^i basis_q
    W = jnp.einsum("...iq,kabiq->...kab", V, jnp.asarray(T, dt))
    log_nu = jnp.log(nu)
    nu_pow = jnp.exp(log_nu[..., None] * jnp.asarray(1.0 - np.arange(order + 3), dt))   # nu^1, nu^0, ...
    K = jnp.einsum("...kab,kabe,...e->...ab", W, jnp.asarray(E, dt), nu_pow)
    K = K + jnp.einsum("abe,...e->...ab", jnp.asarray(L, dt), nu_pow)
    unit = np.zeros((order + 1, order + 1))
    unit[0, 0] = 1.0
    return K - 0.5 * log_nu[..., None, None] * jnp.asarray(unit, dt)


def _laplace_log_z(x, nu):
    """TMB's Laplace approximation of log Z (TMB evaluates lgamma and trigamma at
    mode + 1/2 directly; here by their asymptotic series, equal to rounding for mode > 100):
        log Z = A(s) - log(nu) / 2 + nu F(s) - (A(s) + F(s) - e^s) / nu,   s = x / nu."""
    return _laplace_table(x, nu, 0)[..., 0, 0]


def _use_laplace(x, nu):
    """TMB's switch to the Laplace approximation: mode > 100, mode nu > 200, nu < 2 mode."""
    mode = jnp.exp(x / nu)
    return (mode > 100.0) & (mode * nu > 200.0) & (nu < 2.0 * mode)


def _window_cumulants(x, nu, win, order, n_full=None):
    """``_series_cumulants`` over the window ``win``: (j, lg); or, with ``n_full``,
    (j, lg, short, logmean): the window (j, lg) when ``short`` (a scalar: it held for every
    observation, ``_window_holds``), else the ``n_full``-term window placed by logmean
    (built only then)."""
    if n_full is None:
        return _series_cumulants(x, nu, *win, order)
    j, lg, short, logmean = win
    return jax.lax.cond(short, lambda: _series_cumulants(x, nu, j, lg, order),
                        lambda: _series_cumulants(x, nu, *_window(logmean, n_full), order))


def _table(x, nu, win, order, n_full=None):
    """K[..., a, b] = d^(a+b) log Z / dx^a dnu^b, a + b <= order, as TMB's calc_logZ
    (series or Laplace approximation, elementwise). Not itself differentiated: the
    custom_jvp of ``_state`` asks for the next order instead."""
    lap = _use_laplace(x, nu)
    series = _window_cumulants(x, nu, win, order, n_full)
    # the Laplace table at safe arguments where it is not used
    safe_nu = jnp.where(lap, nu, 1.0)
    laplace = _laplace_table(jnp.where(lap, x, jnp.log(200.0)), safe_nu, order)
    return jnp.where(lap[..., None, None], laplace, series)


def compois_log_z(x, nu, n_terms: int = DEFAULT_TERMS):
    """log Z(lambda, nu) at x = log lambda, as TMB's ``calc_logZ`` (elementwise arrays), as a
    plain JAX expression (autodiff of it is exact but heavy: the likelihood uses the
    cumulant tables of ``_state`` instead)."""
    x, nu = jnp.broadcast_arrays(x, nu)
    lap = _use_laplace(x, nu)
    j, lg = _window(x / nu, n_terms)          # around the mode exp(x / nu)
    series = jax.nn.logsumexp(j * x[..., None] - nu[..., None] * lg, axis=-1)
    laplace = _laplace_log_z(jnp.where(lap, x, jnp.log(200.0)), jnp.where(lap, nu, 1.0))
    return jnp.where(lap, laplace, series)


def compois_moments(x, nu, n_terms: int = DEFAULT_TERMS):
    """(log Z, E(y), Var(y)) at x = log lambda: log Z and its first two x-derivatives (the
    series summed around the mode exp(x / nu))."""
    x, nu = jnp.broadcast_arrays(x, nu)
    j, lg = _window(x / nu, n_terms)
    K = _table(x, nu, (j, lg), 2)
    return K[..., 0, 0], K[..., 1, 0], K[..., 2, 0]


def _mean_var(x, nu, j, lg):
    """(E(y), Var(y)) at x = log lambda: K[1, 0] and K[2, 0] of ``_table``, with no more
    work than the Newton iteration needs."""
    logt = j * x[..., None] - nu[..., None] * lg
    p = jax.nn.softmax(logt, axis=-1)
    mean = jnp.sum(p * j, axis=-1)
    dj = j - mean[..., None]
    series_var = jnp.sum(p * dj * dj, axis=-1)
    lap = _use_laplace(x, nu)
    lap_mean, lap_var = _laplace_mean_var(jnp.where(lap, x, jnp.log(200.0)), jnp.where(lap, nu, 1.0))
    return jnp.where(lap, lap_mean, mean), jnp.where(lap, lap_var, series_var)


def _start(logmean, nu):
    """Starting log lambda: mu ~ lambda^(1/nu) - (nu - 1) / (2 nu) for a large mean,
    mu ~ lambda for a small one (TMB starts at nu log mu)."""
    mu = jnp.exp(logmean)
    shifted = mu + (nu - 1.0) / (2.0 * nu)
    large = (mu > 2.0) & (shifted > 0.5 * mu)
    return jnp.where(large, nu * jnp.log(jnp.where(large, shifted, 1.0)), jnp.where(mu < 0.5, logmean, nu * logmean))


def _newton(logmean, nu, j, lg):
    """TMB's calc_loglambda: Newton on log E(y | x) = log mu, halving back a step that
    increases |f|; stops when a step is below 1e-10 (float32: 1e-5) of max(1, |x|), which
    leaves x accurate to rounding (quadratic convergence)."""
    dt = logmean.dtype
    tol = 1e-10 if dt == jnp.float64 else 1e-5
    eps = float(jnp.finfo(dt).eps)
    mean_target = jnp.exp(logmean)

    def f_and_slope(x):
        m, v = _mean_var(x, nu, j, lg)
        pos = m > 0
        m1 = jnp.where(pos, m, 1.0)
        f = jnp.where(pos, jnp.log(m1) - logmean, m - mean_target)
        slope = jnp.where(pos, v / m1, v)
        return f, slope

    def cond(s):
        it, _, _, _, done = s
        return (it < MAX_NEWTON) & ~jnp.all(done)

    def body(s):
        it, x, step, f_prev, done = s
        f, slope = f_and_slope(x)
        back = ~jnp.isfinite(f) | (jnp.abs(f) > jnp.abs(f_prev))
        half = step / 2
        newton = jnp.where(slope != 0, -f / slope, 0.0)
        x_new = jnp.where(back, x - half, x + newton)
        scale = tol * jnp.maximum(1.0, jnp.abs(x_new))
        # converged: a small Newton step, f at rounding level (|f| would otherwise wander
        # up and down there and trigger halvings), or a halving that has become small
        conv = ((~back & (jnp.abs(newton) <= scale)) | (jnp.abs(f) <= 8 * eps)
                | (back & (jnp.abs(half) <= scale)))
        return (it + 1, jnp.where(done, x, x_new), jnp.where(done, step, jnp.where(back, half, newton)),
                jnp.where(done | back, f_prev, f), done | conv)

    x0 = _start(logmean, nu)
    state = (jnp.asarray(0), x0, jnp.zeros_like(x0), jnp.full_like(x0, jnp.inf), jnp.zeros(x0.shape, bool))
    out = jax.lax.while_loop(cond, body, state)
    return out[1], out[0]


@partial(jax.custom_jvp, nondiff_argnums=(5,))
def _state(x_hat, j, lg, logmean, nu, order):
    """(x, K): x = log lambda (the solved ``x_hat``) and the table K of log Z's derivatives
    up to ``order`` at (x, nu), as functions of (log mu, nu); j, lg: the series window."""
    return x_hat, _table(x_hat, nu, (j, lg), order)


@_state.defjvp
def _state_jvp(order, primals, tangents):
    # x solves dlogZ/dx (x, nu) = mu: with K10 = E(y), K20 = Var(y), K11 = dE(y)/dnu the
    # implicit derivative is dx = (K10 dlog(mu) - K11 dnu) / K20, and
    # dK[a, b] = K[a + 1, b] dx + K[a, b + 1] dnu. Both come from the table of the next
    # order, so derivatives of any order cost one table each. (x_hat and the window are
    # constants: the Newton solve is not differentiated.)
    x_hat, j, lg, logmean, nu = primals
    t_logmean, t_nu = tangents[3], tangents[4]
    x, k1 = _state(x_hat, j, lg, logmean, nu, max(order + 1, 2))
    dx = (k1[..., 1, 0] * t_logmean - k1[..., 1, 1] * t_nu) / k1[..., 2, 0]
    idx = np.arange(order + 1)
    mask = jnp.asarray((idx[:, None] + idx[None, :]) <= order, k1.dtype)
    n = order + 1
    out = k1[..., :n, :n] * mask
    tan = (k1[..., 1:n + 1, :n] * dx[..., None, None] + k1[..., :n, 1:n + 1] * t_nu[..., None, None]) * mask
    return (x, out), (dx, tan)


def _solve(logmean, nu, order, n_terms):
    """(x, K) with x = log lambda for the mean exp(logmean) and K the table of log Z's
    derivatives up to ``order``: Newton on the undifferentiated values, derivatives
    through ``_state``."""
    sg = jax.lax.stop_gradient
    j, lg = _window(sg(logmean), n_terms)
    x_hat = sg(_newton(sg(logmean), sg(nu), j, lg)[0])
    return _state(x_hat, j, lg, logmean, nu, order)


# -- the log-likelihood and its derivatives ----------------------------------------------
# log p(y) = y x - nu log(y!) - log Z(x, nu) with x = x(log mu, nu). The Laplace engine
# differentiates it up to four times; nested derivatives of the implicit x through
# ``_state`` would repeat the chain rule at every level. Instead, ``_loglik_tower`` returns
# all partial derivatives of log p in (u, v) = (log mu, nu) up to a degree, computed at the
# solved point as a truncated bivariate Taylor series (``_loglik_series``), and its jvp asks
# for the next degree: every level of differentiation costs one more series, linearly.


@lru_cache(maxsize=None)
def _series_setup(k: int):
    """Static pieces of bivariate Taylor series in (u, v) truncated at total degree k: the
    monomials u^i v^j (ordered by degree, so lower degrees are a prefix), the product tensor,
    the multiply-by-v^b shifts, i! j!, and for degree <= k - 1 the indices of u * (i, j)
    and v * (i, j)."""
    mons = [(i, d - i) for d in range(k + 1) for i in range(d, -1, -1)]
    idx = {m: s for s, m in enumerate(mons)}
    S = len(mons)
    prod = np.zeros((S, S, S))
    for p, (a, b) in enumerate(mons):
        for q, (c, d) in enumerate(mons):
            r = idx.get((a + c, b + d))
            if r is not None:
                prod[p, q, r] = 1.0
    shift = np.zeros((k + 1, S, S))
    for bb in range(k + 1):
        for p, (a, b) in enumerate(mons):
            r = idx.get((a, b + bb))
            if r is not None:
                shift[bb, p, r] = 1.0
    fact = np.array([math.factorial(a) * math.factorial(b) for a, b in mons], float)
    lower = [m for m in mons if sum(m) < k]
    up = np.array([idx[(a + 1, b)] for a, b in lower], int)
    right = np.array([idx[(a, b + 1)] for a, b in lower], int)
    return mons, idx, prod, shift, fact, up, right


def _loglik_series(x_hat, win, y, lgy, logmean, nu, n_full, k):
    """All partial derivatives of log p(y) in (log mu, nu) of total degree <= k, packed as
    ``_series_setup(k)``'s monomials.

    With u = dlog(mu), v = dnu, x = x_hat + xi(u, v) solves K10(x, nu) = mu e^u: using
    the table K of log Z's derivatives at (x_hat, nu), K10(x_hat + xi, nu + v) =
    sum_ab K[a + 1, b] xi^a v^b / (a! b!), and xi is found degree by degree (one
    iteration xi -= residual / K20 per degree). Then
    log p = y (x_hat + xi) - (nu + v) log(y!) - sum_ab K[a, b] xi^a v^b / (a! b!)."""
    if k == 0:
        K = _table(x_hat, nu, win, 0, n_full)
        return (y * x_hat - nu * lgy - K[..., 0, 0])[..., None]
    mons, idx, prod, shift, fact, _, _ = _series_setup(k)
    dt = x_hat.dtype
    prod, shift = jnp.asarray(prod, dt), jnp.asarray(shift, dt)
    K = _table(x_hat, nu, win, k + 1, n_full)
    inv_fact = np.array([[1.0 / (math.factorial(a) * math.factorial(b)) if a + b <= k else 0.0
                          for b in range(k + 1)] for a in range(k + 1)])
    inv_fact = jnp.asarray(inv_fact, dt)
    c_mean = K[..., 1:, :-1] * inv_fact               # Taylor coefficients of K10
    c_logz = K[..., :-1, :-1] * inv_fact              # and of log Z
    S = len(mons)
    one = jnp.zeros(x_hat.shape + (S,), dt).at[..., 0].set(1.0)

    def compose(c, xi):
        powers = [one]
        for _ in range(k):
            powers.append(jnp.einsum("...p,...q,pqr->...r", powers[-1], xi, prod))
        return jnp.einsum("...ab,...as,bsr->...r", c, jnp.stack(powers, -2), shift)

    exp_u = np.zeros(S)
    for i in range(k + 1):
        exp_u[idx[(i, 0)]] = 1.0 / math.factorial(i)
    target = jnp.exp(logmean)[..., None] * jnp.asarray(exp_u, dt)
    degree = np.array([a + b for a, b in mons])
    xi = jnp.zeros_like(one)
    for d in range(1, k + 1):
        resid = compose(c_mean, xi) - target
        xi = xi - jnp.where(jnp.asarray(degree == d), resid / K[..., 2, 0][..., None], 0.0)
    v = np.zeros(S)
    v[idx[(0, 1)]] = 1.0
    series = (y[..., None] * (x_hat[..., None] * one + xi)
              - lgy[..., None] * (nu[..., None] * one + jnp.asarray(v, dt))
              - compose(c_logz, xi))
    return series * jnp.asarray(fact, dt)


@partial(jax.custom_jvp, nondiff_argnums=(6, 7))
def _loglik_tower(x_hat, win, y, lgy, logmean, nu, n_full, degree):
    """Partial derivatives of log p(y) in (log mu, nu) up to ``degree`` (packed; entry 0 is
    log p itself). y, log(y!), the solved x_hat and the window ``win`` (see
    ``_window_cumulants``) are constants."""
    return _loglik_series(x_hat, win, y, lgy, logmean, nu, n_full, degree)


@_loglik_tower.defjvp
def _loglik_tower_jvp(n_full, degree, primals, tangents):
    x_hat, win, y, lgy, logmean, nu = primals
    t_logmean, t_nu = tangents[4], tangents[5]
    hi = _loglik_tower(x_hat, win, y, lgy, logmean, nu, n_full, degree + 1)
    _, _, _, _, _, up, right = _series_setup(degree + 1)
    out = hi[..., :len(up)]
    tan = hi[..., up] * t_logmean[..., None] + hi[..., right] * t_nu[..., None]
    return out, tan


def compois_loglambda(logmean, nu, n_terms: int = DEFAULT_TERMS):
    """x = log lambda with E(y | lambda, nu) = exp(logmean), as TMB's ``calc_loglambda``
    (elementwise; differentiable to any order through the implicit derivative)."""
    logmean, nu = jnp.broadcast_arrays(logmean, nu)
    return _solve(logmean, nu, 0, n_terms)[0]


@dataclass(frozen=True, repr=False)
class ConwayMaxwellPoisson(CountFamily):
    """Conway-Maxwell-Poisson (glmmTMB's ``compois``); see the module docstring.

    ``n_terms`` is the number of consecutive series terms summed for log Z (default 512).
    """

    n_terms: int = DEFAULT_TERMS
    name = "compois"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    has_dispersion = True
    disp_scale = "log(phi)"
    disp_dimensionless = True
    # no GLM start: the series log-likelihood makes each GLM iteration nearly as dear as the
    # mixed model's; the link-scale least-squares start reaches the same optimum in less time
    # (``benchmarks/bench_tmb.py --only compois``, column "jax fit s"; benchmarks/README.md)
    glm_start = False

    def __post_init__(self):
        super().__post_init__()
        if not isinstance(self.n_terms, (int, np.integer)) or self.n_terms < 16:
            raise ValueError(f"n_terms must be an integer >= 16; got {self.n_terms!r}")

    def _solve(self, log_mean, disp_eta, order):
        nu = jnp.exp(-jnp.asarray(disp_eta, log_mean.dtype))
        log_mean, nu = jnp.broadcast_arrays(log_mean, nu)
        x, K = _solve(log_mean, nu, order, self.n_terms)
        return x, nu, K

    def loglik(self, y, eta, disp_eta, extra, size):
        sg = jax.lax.stop_gradient
        lmu = log_mu(self.link, eta)
        nu = jnp.exp(-jnp.asarray(disp_eta, lmu.dtype))
        lmu, nu = jnp.broadcast_arrays(lmu, nu)
        y = jnp.broadcast_to(jnp.asarray(y, lmu.dtype), lmu.shape)
        lgy = jsp.gammaln(y + 1.0)

        def solved(n_terms):
            j, lg = _window(sg(lmu), n_terms)
            return sg(_newton(sg(lmu), sg(nu), j, lg)[0]), j, lg

        if self.n_terms <= SHORT_TERMS:
            x_hat, j, lg = solved(self.n_terms)
            win, n_full = (j, lg), None
        else:
            # The short window first; where it does not hold some observation's series, the
            # full one (one branch runs; under vmap both do). Only the forward computations
            # on the window are conditional: the derivative tower is traced once.
            x_hat, j, lg = solved(SHORT_TERMS)
            short = jnp.all(_window_holds(x_hat, j, lg, sg(nu)))
            x_hat = jax.lax.cond(short, lambda: x_hat, lambda: solved(self.n_terms)[0])
            win, n_full = (j, lg, short, sg(lmu)), self.n_terms
        return _loglik_tower(x_hat, win, y, lgy, lmu, nu, n_full, 0)[..., 0]

    def variance(self, mu, disp_eta, extra, size=None):
        mu = jnp.asarray(mu, float_dtype(mu))
        return self._solve(jnp.log(mu), disp_eta, 2)[2][..., 2, 0]

    def sample(self, key, eta, disp_eta, extra, size):
        dt = float_dtype(eta)
        eta = jax.lax.stop_gradient(jnp.asarray(eta, dt))
        shape = jnp.shape(eta)
        d = jax.lax.stop_gradient(jnp.broadcast_to(jnp.asarray(disp_eta, dt), shape))
        x, nu, K = self._solve(log_mu(self.link, eta), d, 0)
        log_z = K[..., 0, 0]

        def logpmf(k):
            return k * x - nu * _log_factorial(k) - log_z

        return inversion_sample(key, logpmf, shape, dt, mean=self.link.linkinv(eta))

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: Var(y) ~ mu phi (exact for phi = 1, close for large means)
        return float(np.log(np.clip(pearson_dispersion(y, mu), 0.05, 20.0)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta)))}

    def __repr__(self):
        extra = "" if self.n_terms == DEFAULT_TERMS else f", n_terms={self.n_terms}"
        return f"{type(self).__name__}(link={self.link.name!r}{extra})"
