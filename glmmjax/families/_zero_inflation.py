"""Zero-inflation of any count (or binomial) family, in log space.

With zero-inflation probability p = logistic(zi_eta) and the conditional family's density f,

    P(y) = p 1{y = 0} + (1 - p) f(y),

so log P(y) = log(1 - p) + log f(y) for y > 0 and, as log(1 - p) - log p = -zi_eta,

    log P(0) = logaddexp(log p, log(1 - p) + log f(0)) = log p + softplus(log f(0) - zi_eta),

with log p = -softplus(-zi_eta), log(1 - p) = -softplus(zi_eta); never log(p + exp(lp)).
At p = 0 (zi_eta -> -inf) this is the conditional family exactly; where f(0) = 0 (a
hurdle's truncated family, log f(0) = -inf) it is log p. (The softplus form, with
_stable.softplus's compact derivative, keeps the third- and fourth-order derivatives of the
Laplace gradient small: logaddexp's derivative rule nests into hundreds of operations.)
"""
from __future__ import annotations

import jax.numpy as jnp

from ._stable import softplus

__all__ = ["zero_inflated_loglik"]


def zero_inflated_loglik(loglik, y, zi_eta):
    """Per-observation log P(y) of the zero-inflated model, from the conditional ``loglik``."""
    zero = y == 0
    at_zero = -softplus(-zi_eta) + softplus(jnp.where(zero, loglik, 0.0) - zi_eta)
    return jnp.where(zero, at_zero, loglik - softplus(zi_eta))
