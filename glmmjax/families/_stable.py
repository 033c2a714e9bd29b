"""Numerically stable pieces shared by families (pure JAX).

``log_mu_pair(link, eta)`` returns (log mu, log(1 - mu)) for a probability mu = linkinv(eta),
computed directly from eta so that neither term underflows to log(0) in the tails.
``log1mexp(a)`` is log(1 - exp(a)) for a < 0 (Maechler's two-branch form); both branches are
fed clipped inputs so the unselected branch never produces inf/NaN gradients.
``softplus(x)`` = log(1 + e^x) with derivative the logistic function (an XLA primitive whose
own derivative is s (1 - s)): jax.nn.softplus goes through logaddexp's derivative rule,
which at the third and fourth order that the Laplace gradient takes nests into hundreds
of operations per use.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

from ._special import _HALF_LOG_2PI, lgamma

_LOG2 = 0.6931471805599453


@jax.custom_jvp
def softplus(x):
    """log(1 + exp(x)), stable for any x; derivative logistic(x)."""
    return jnp.maximum(x, 0.0) + jnp.log1p(jnp.exp(-jnp.abs(x)))


@softplus.defjvp
def _softplus_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return softplus(x), jax.lax.logistic(x) * dx


def log1mexp(a):
    """log(1 - exp(a)) for a < 0, accurate for a near 0 and for very negative a."""
    near = a > -_LOG2
    a_near = jnp.where(near, a, -_LOG2)
    a_far = jnp.where(near, -_LOG2, a)
    return jnp.where(near, jnp.log(-jnp.expm1(a_near)), jnp.log1p(-jnp.exp(a_far)))


def log_mu_pair(link, eta):
    """(log mu, log(1-mu)) for a probability link, stable in both tails."""
    name = link.name
    if name == "logit":
        return -softplus(-eta), -softplus(eta)
    if name == "probit":
        return jsp.log_ndtr(eta), jsp.log_ndtr(-eta)
    if name == "cloglog":
        # mu = 1 - exp(-exp(eta)):  log(1-mu) = -exp(eta),  log mu = log1mexp(-exp(eta))
        x = jnp.exp(eta)
        return log1mexp(-x), -x
    if name == "log":
        return eta, log1mexp(eta)
    mu = link.linkinv(eta)
    return jnp.log(mu), jnp.log1p(-mu)


def log_mu(link, eta):
    """log of the (positive) mean, exact for the log link."""
    if link.name == "log":
        return eta
    return jnp.log(link.linkinv(eta))


def float_dtype(x):
    """The floating dtype of ``x`` (float64 for integer input when x64 is on)."""
    dt = jnp.result_type(x)
    return dt if jnp.issubdtype(dt, jnp.floating) else jnp.result_type(float)


_STIRLING_MIN = 50.0


# lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2] ~ sum_j A_j x^-(2j+1), j = 0..3
_STIRLING_COEFS = (1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0)


def _stirling_err(x):
    """lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2] for x >= 50 (asymptotic series)."""
    return _stirling_err_derivative(0, x)


def stirling_remainder(x):
    """lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2] for any x > 0: lgamma minus its
    Stirling approximation, the series ``_stirling_err`` for x >= 50 and lgamma minus the
    approximation below (|result| <= ~0.5 |log x| + 1 there, so no cancellation beyond a few
    eps of lgamma(50) ~ 144). Both branches get clipped inputs."""
    big = x >= _STIRLING_MIN
    xs = jnp.where(big, 1.0, x)
    xl = jnp.where(big, x, _STIRLING_MIN)
    return jnp.where(big, _stirling_err(xl), lgamma(xs) - ((xs - 0.5) * jnp.log(xs) - xs + _HALF_LOG_2PI))


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def _stirling_err_derivative(k: int, x):
    """d^k/dx^k of ``_stirling_err`` for x >= 50: sum_j A_j (-1)^k (m_j)_k x^-(m_j + k), m_j =
    2j + 1, by Horner in x^-2. Each derivative is its own short series (custom_jvp), so the
    third and fourth derivatives that the Laplace gradient takes stay a few operations
    instead of the nested product rule of the series."""
    coefs = []
    for j, a in enumerate(_STIRLING_COEFS):
        m = 2 * j + 1
        coefs.append(a * (-1) ** k * math.prod(range(m, m + k)))
    r = 1.0 / x
    r2 = r * r
    acc = coefs[-1]
    for c in reversed(coefs[:-1]):
        acc = c + r2 * acc
    return r ** (k + 1) * acc


@_stirling_err_derivative.defjvp
def _stirling_err_derivative_jvp(k, primals, tangents):
    (x,), (dx,) = primals, tangents
    return _stirling_err_derivative(k, x), _stirling_err_derivative(k + 1, x) * dx


def lgamma_diff(y, a):
    """lgamma(y + a) - lgamma(a) for y >= 0, a > 0, without cancellation for large a.

    The direct difference loses ~eps * a log(a) in absolute terms (4e-4 at a = e^25 in
    float64). For a >= 50 it is rewritten with Stirling's formula as
        a (log1p(u) - u) + (y - 1/2) log1p(u) + y log(a) + d(y + a) - d(a),   u = y / a,
    whose error is ~eps * (y log a). Both branches get clipped inputs, so the unused
    branch never feeds inf/NaN into gradients.
    """
    big = a >= _STIRLING_MIN
    a_small = jnp.where(big, 1.0, a)
    a_big = jnp.where(big, a, _STIRLING_MIN)
    direct = lgamma(y + a_small) - lgamma(a_small)
    u = y / a_big
    l1p = jnp.log1p(u)
    stirling = (
        a_big * (l1p - u) + (y - 0.5) * l1p + y * jnp.log(a_big)
        + _stirling_err(y + a_big) - _stirling_err(a_big)
    )
    return jnp.where(big, stirling, direct)


def gamma_poisson(key, shape, scale, dtype):
    """Negative binomial draws as a Poisson with a Gamma(shape, scale) mean (arrays)."""
    k1, k2 = jax.random.split(key)
    lam = jax.random.gamma(k1, shape, shape=jnp.shape(shape), dtype=dtype) * scale
    return jax.random.poisson(k2, lam, shape=jnp.shape(shape)).astype(dtype)


def log_concave_window_holds(log_terms, starts_at_first):
    """True where a window of consecutive terms of a log-concave series holds the whole
    series to rounding: ``log_terms`` (..., n) are log t_j at consecutive j, and
    ``starts_at_first`` says the window begins at the series' first term.

    Log-concavity makes the ratios t_(j+1) / t_j decrease, so beyond the last term R the
    tail is at most t_R r / (1 - r) with r = t_R / t_(R-1), and before the first term L
    (when the series has terms there) at most t_L r' / (1 - r') with r' = t_L / t_(L+1).
    With r, r' <= 1/2 and t_R, t_L below e^-40 of the window's sum, the omitted mass is
    below 1e-17 of the sum. Not differentiated (a decision on stop-gradient values).
    """
    t = jax.lax.stop_gradient(log_terms)
    total = jax.nn.logsumexp(t, axis=-1)
    half = -math.log(2.0)
    right = (t[..., -1] - t[..., -2] <= half) & (t[..., -1] - total <= -40.0)
    left = starts_at_first | ((t[..., 0] - t[..., 1] <= half) & (t[..., 0] - total <= -40.0))
    return right & left
