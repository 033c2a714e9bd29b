"""lgamma and its derivatives with compact, cheap derivative code (x > 0).

The Laplace objective differentiates a family's log-density up to four times in the linear
predictor, so lgamma terms whose argument involves the mean (nbinom1's mu / phi, beta's
mu phi) reach digamma, trigamma and higher polygamma functions. XLA evaluates
``polygamma(n, x)`` through the Hurwitz zeta function: ~200 ns per element against ~35 ns
for digamma on a CPU, and a large compiled program. Here

    lgamma' = digamma,   digamma' = polygamma(1, .),   polygamma(n, .)' = polygamma(n + 1, .),

as ``jax.custom_jvp`` functions: lgamma and digamma keep XLA's own values (the primitives
``lgamma`` and ``digamma``), and polygamma(n, x), n >= 1, is computed by the recurrence

    psi^(n)(x) = psi^(n)(x + 8) + (-1)^(n+1) n! sum_{j=0}^{7} (x + j)^-(n+1)      (x < 8)

and the asymptotic series at x >= 8,

    psi^(n)(x) = (-1)^(n+1) [ (n-1)! / x^n + n! / (2 x^(n+1))
                              + sum_{k=1}^{8} B_2k (2k + n - 1)! / ((2k)! x^(2k+n)) ],

which (with the shift) is within 3e-12 relative of scipy's polygamma for n <= 4 and any
x > 0 (tests/test_families.py). Arguments must be positive (every use in the families is:
y + a, a, phi, shape, df > 0); where |psi^(n)(x)| overflows (x < ~1e-154 for n = 1) it is
the largest finite number.
"""
from __future__ import annotations

import math
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

__all__ = ["lgamma", "digamma", "polygamma"]

_SHIFT = 8
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
    """digamma(x) (XLA's), with derivative polygamma(1, x)."""
    return jsp.digamma(x)


@digamma.defjvp
def _digamma_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return digamma(x), polygamma(1, x) * dx


@jax.custom_jvp
def lgamma(x):
    """log Gamma(x) (XLA's), with derivative digamma(x)."""
    return jsp.gammaln(x)


@lgamma.defjvp
def _lgamma_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    return lgamma(x), digamma(x) * dx
