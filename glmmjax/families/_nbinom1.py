"""Negative binomial family, linear parameterization (glmmTMB's ``nbinom1``).

    E(y) = mu,   Var(y) = mu (1 + phi),

a negative binomial with size n = mu / phi and probability p = 1 / (1 + phi):

    log p(y | mu, phi) = lgamma(y + n) - lgamma(n) - lgamma(y + 1)
                         - n log(1 + phi) - y log(1 + 1/phi),

i.e. scipy's ``nbinom(n=mu/phi, p=1/(1+phi))``. Dispersion: ``disp_eta = log(phi)``
(glmmTMB's ``betad``); R reports ``phi`` (= sigma(m)). log(1 + phi) and log(1 + 1/phi) are
softplus(+-disp_eta); n = exp(log mu - disp_eta); lgamma(y + n) - lgamma(n) uses a Stirling
form for n >= 50 (small phi) to avoid cancellation. Links: log (default), identity, sqrt.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ._base import CountFamily
from ._checks import natural
from ._stable import float_dtype, gamma_poisson, lgamma_diff, log_mu, softplus

__all__ = ["NegativeBinomial1"]


@dataclass(frozen=True, repr=False)
class NegativeBinomial1(CountFamily):
    name = "nbinom1"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    has_dispersion = True
    disp_scale = "log(phi)"
    disp_dimensionless = True

    def loglik(self, y, eta, disp_eta, extra, size):
        lmu = log_mu(self.link, eta)
        n = jnp.exp(lmu - disp_eta)
        return (
            lgamma_diff(y, n) - jsp.gammaln(y + 1.0)
            - n * softplus(disp_eta)
            - y * softplus(-disp_eta)
        )

    def variance(self, mu, disp_eta, extra, size=None):
        return mu * (1.0 + jnp.exp(disp_eta))

    def sample(self, key, eta, disp_eta, extra, size):
        # Gamma-Poisson mixture: lambda ~ Gamma(shape=mu/phi, scale=phi), y ~ Poisson(lambda)
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        phi = jnp.exp(jnp.asarray(disp_eta, dt))
        return gamma_poisson(key, jnp.broadcast_to(mu / phi, jnp.shape(mu)), phi, dt)


    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: E[(y-mu)^2 / mu] = 1 + phi
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        ok = mu > 0
        phi = np.mean((y[ok] - mu[ok]) ** 2 / mu[ok]) - 1.0 if np.any(ok) else 1.0
        if not np.isfinite(phi):
            phi = 1.0
        return float(np.log(np.clip(phi, 1e-2, 1e3)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta)))}
