"""lgamma and its derivatives with compact, cheap derivative code (x > 0).

The Laplace objective differentiates a family's log-density up to four times in the linear
predictor, so lgamma terms whose argument involves the mean (nbinom1's mu / phi, beta's
mu phi) reach digamma, trigamma and higher polygamma functions. XLA evaluates
``polygamma(n, x)`` through the Hurwitz zeta function: several times slower per element
than digamma, and a large compiled program (benchmarks/README.md). Here

    lgamma' = digamma,   digamma' = polygamma(1, .),   polygamma(n, .)' = polygamma(n + 1, .),

as ``jax.custom_jvp`` functions. lgamma and digamma are computed here too (``lgamma_pos``,
``digamma_pos``: Stirling's and the asymptotic series for x >= 8, shifted by 8 below), for
x > 0 only and without the reflection branch of XLA's ``lgamma``/``digamma``, which makes
them cheaper (the tweedie series evaluates them for every term; the gain in its
objective-and-gradient evaluation is measured by ``benchmarks/bench_tmb.py --only tweedie
--profile-all``, column "f+g warm ms": benchmarks/README.md). polygamma(n, x), n >= 1, is
computed by the recurrence

    psi^(n)(x) = psi^(n)(x + 8) + (-1)^(n+1) n! sum_{j=0}^{7} (x + j)^-(n+1)      (x < 8)

and the asymptotic series at x >= 8,

    psi^(n)(x) = (-1)^(n+1) [ (n-1)! / x^n + n! / (2 x^(n+1))
                              + sum_{k=1}^{8} B_2k (2k + n - 1)! / ((2k)! x^(2k+n)) ],

which (with the shift) is within 3e-12 relative of scipy's polygamma for n <= 4 and any
x > 0 (tests/test_families_core.py). Arguments must be positive (every use in the families is:
y + a, a, phi, shape, df > 0); where |psi^(n)(x)| overflows (x < ~1e-154 for n = 1) it is
the largest finite number.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp

__all__ = ["lgamma", "digamma", "polygamma", "lgamma_pos", "digamma_pos"]

_SHIFT = 8
_HALF_LOG_2PI = 0.9189385332046727
# Bernoulli numbers B_2, B_4, ..., B_16
_BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510)


def _asymptotic(n: int, x):
    """psi^(n)(x) for x >= 8 (n >= 1) without its sign (-1)^(n+1)."""
    r = 1.0 / x
    r2 = r * r
    # sum_k B_2k (2k+n-1)! / (2k)! r^(2k+n), Horner in r^2
    coefs = [b * math.factorial(2 * k + n - 1) / math.factorial(2 * k) for k, b in enumerate(_BERNOULLI, start=1)]
    s = coefs[-1]
    for c in reversed(coefs[:-1]):
        s = c + r2 * s
    rn = r ** n
    return rn * (math.factorial(n - 1) + r * (0.5 * math.factorial(n) + r * s))


def _polygamma(n: int, x):
    small = x < _SHIFT
    xs = jnp.where(small, x + _SHIFT, x)
    shift = sum((x + j) ** -(n + 1) for j in range(_SHIFT))
    total = _asymptotic(n, xs) + jnp.where(small, math.factorial(n) * shift, 0.0)
    # below x ~ 1e-154 (n = 1) x^-(n+1) overflows: the largest finite value instead, so
    # that a Newton trial step into such a corner stays finite and is halved back
    total = jnp.minimum(total, jnp.finfo(total.dtype).max)
    return total if n % 2 == 1 else -total


def lgamma_pos(x):
    """lgamma(x) for x > 0: Stirling's series through x^-11 for x >= 8, shifted by 8 with
    lgamma(x) = lgamma(x + 8) - log(x (x+1) ... (x+7)) below; error < 3e-14 absolute plus
    a few eps relative. Cheaper than jax.scipy.special.gammaln (no reflection branch)."""
    small = x < 8.0
    xs = jnp.where(small, x + 8.0, x)
    prod = x * (x + 1.0) * (x + 2.0) * (x + 3.0) * (x + 4.0) * (x + 5.0) * (x + 6.0) * (x + 7.0)
    r = 1.0 / xs
    r2 = r * r
    series = r * (1.0 / 12.0 - r2 * (1.0 / 360.0 - r2 * (1.0 / 1260.0 - r2 * (
        1.0 / 1680.0 - r2 * (1.0 / 1188.0 - r2 * (691.0 / 360360.0))))))
    stirling = (xs - 0.5) * jnp.log(xs) - xs + _HALF_LOG_2PI + series
    return stirling - jnp.where(small, jnp.log(jnp.where(small, prod, 1.0)), 0.0)


def digamma_pos(x):
    """digamma(x) for x > 0: the asymptotic series through x^-14 for x >= 8, shifted by 8
    with digamma(x) = digamma(x + 8) - sum_{j<8} 1 / (x + j) below (the sum as P'/P, P = the
    product of the x + j: one division); error < 2e-15 absolute plus 4 eps relative.
    Used for every term of the tweedie series' gradient."""
    small = x < 8.0
    xs = jnp.where(small, x + 8.0, x)
    r = 1.0 / xs
    r2 = r * r
    series = r2 * (1.0 / 12.0 - r2 * (1.0 / 120.0 - r2 * (1.0 / 252.0 - r2 * (1.0 / 240.0 - r2 * (
        1.0 / 132.0 - r2 * (691.0 / 32760.0 - r2 / 12.0))))))
    prod, dprod = jnp.ones_like(x), jnp.zeros_like(x)
    for j in range(8):
        prod, dprod = prod * (x + j), dprod * (x + j) + prod
    shift = jnp.where(small, dprod / jnp.where(small, prod, 1.0), 0.0)
    return jnp.log(xs) - 0.5 * r - series - shift


@partial(jax.custom_jvp, nondiff_argnums=(0,))
def polygamma(n: int, x):
    """psi^(n)(x) for x > 0 and a static integer n >= 1 (module docstring)."""
    return _polygamma(n, x)


@polygamma.defjvp
def _polygamma_jvp(n, primals, tangents):
    (x,), (dx,) = primals, tangents
    return polygamma(n, x), polygamma(n + 1, x) * dx


@jax.custom_jvp
def digamma(x):
    """digamma(x) for x > 0 (digamma_pos), with derivative polygamma(1, x)."""
    return digamma_pos(x)


@digamma.defjvp
def _digamma_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return digamma(x), polygamma(1, x) * dx


@jax.custom_jvp
def lgamma(x):
    """log Gamma(x) for x > 0 (lgamma_pos), with derivative digamma(x)."""
    return lgamma_pos(x)


@lgamma.defjvp
def _lgamma_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return lgamma(x), digamma(x) * dx
