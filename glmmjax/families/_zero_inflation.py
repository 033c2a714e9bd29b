"""Zero-inflation of any count (or binomial) family, in log space.

With zero-inflation probability p = logistic(zi_eta) and the conditional family's density f,

    P(y) = p 1{y = 0} + (1 - p) f(y),

so log P(0) = logaddexp(log p, log(1 - p) + log f(0)) and log P(y) = log(1 - p) + log f(y)
for y > 0, with log p = -softplus(-zi_eta) and log(1 - p) = -softplus(zi_eta); never
log(p + exp(lp)). At p = 0 (zi_eta -> -inf) this is the conditional family exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["zero_inflated_loglik"]


def zero_inflated_loglik(loglik, y, zi_eta):
    """Per-observation log P(y) of the zero-inflated model, from the conditional ``loglik``."""
    log_p = -jax.nn.softplus(-zi_eta)
    log_1mp = -jax.nn.softplus(zi_eta)
    return jnp.where(y == 0, jnp.logaddexp(log_p, log_1mp + loglik), log_1mp + loglik)
