"""Beta family (glmmTMB's ``beta_family``; Ferrari & Cribari-Neto parameterization).

With mean mu in (0, 1) and precision phi > 0, y ~ Beta(a = mu phi, b = (1 - mu) phi):

    log p(y | mu, phi) = lgamma(phi) - lgamma(a) - lgamma(b)
                         + (a - 1) log(y) + (b - 1) log(1 - y),
    E(y) = mu,   Var(y) = mu (1 - mu) / (1 + phi),

i.e. scipy's ``beta(a, b)``. Dispersion: ``disp_eta = log(phi)`` (glmmTMB's ``betad``);
R reports ``phi`` (= sigma(m)). a and b are formed as exp(log mu + log phi) and
exp(log(1 - mu) + log phi) with log mu, log(1 - mu) computed stably from eta.
Links: logit (default), probit, cloglog. The response must lie strictly inside (0, 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._checks import check_open_unit, natural
from ._stable import float_dtype, log_mu_pair
from ._special import lgamma

__all__ = ["Beta"]


@dataclass(frozen=True, repr=False)
class Beta(Family):
    name = "beta"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    has_dispersion = True
    disp_scale = "log(phi)"

    def loglik(self, y, eta, disp_eta, extra, size):
        log_mu, log_1m = log_mu_pair(self.link, eta)
        phi = jnp.exp(disp_eta)
        a = jnp.exp(log_mu + disp_eta)
        b = jnp.exp(log_1m + disp_eta)
        return (
            lgamma(phi) - lgamma(a) - lgamma(b)
            + (a - 1.0) * jnp.log(y) + (b - 1.0) * jnp.log1p(-y)
        )

    def variance(self, mu, disp_eta, extra, size=None):
        return mu * (1.0 - mu) / (1.0 + jnp.exp(disp_eta))

    def sample(self, key, eta, disp_eta, extra, size):
        log_mu, log_1m = log_mu_pair(self.link, eta)
        dt = float_dtype(log_mu)
        d = jnp.asarray(disp_eta, dt)
        a = jnp.exp(log_mu + d)
        b = jnp.exp(log_1m + d)
        return jax.random.beta(key, a, b, shape=jnp.shape(log_mu), dtype=dt)

    def check_response(self, y, size=None):
        check_open_unit(y, self.name)

    def initial_mu(self, y, size=None):
        return np.asarray(y, dtype=float).copy()

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: phi = mu (1 - mu) / Var - 1
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        v = np.mean((y - mu) ** 2) if y.size else np.nan
        if not np.isfinite(v) or v <= 0:
            return float(np.log(10.0))
        phi = np.mean(mu * (1.0 - mu)) / v - 1.0
        if not np.isfinite(phi):
            phi = 10.0
        return float(np.log(np.clip(phi, 0.1, 1e4)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta)))}
