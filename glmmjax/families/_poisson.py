"""Poisson family.

    log p(y | mu) = y log(mu) - mu - log(y!),      E(y) = Var(y) = mu

No dispersion parameter. Links: log (canonical), identity, sqrt. With the log link the
density is evaluated on the eta scale (y * eta - exp(eta)), which is exact and never takes
log(0).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

from ._base import CountFamily
from ._stable import float_dtype

__all__ = ["Poisson"]


@dataclass(frozen=True, repr=False)
class Poisson(CountFamily):
    name = "poisson"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    canonical_link = "log"

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        # log(y!) is free of eta: the conditional-mode search (many evaluations per objective)
        # skips its lgamma, and the objective adds it once (loglik_rest)
        if self.link.name == "log":
            return y * eta - jnp.exp(eta)
        mu = self.link.linkinv(eta)
        return jsp.xlogy(y, mu) - mu

    def loglik_rest(self, y, disp_eta, extra, size):
        return -jsp.gammaln(y + 1.0)

    def variance(self, mu, disp_eta, extra, size=None):
        return mu

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        return jax.random.poisson(key, mu, shape=jnp.shape(mu)).astype(float_dtype(mu))

