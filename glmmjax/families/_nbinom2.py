"""Negative binomial family, quadratic parameterization (glmmTMB's ``nbinom2``).

    log p(y | mu, theta) = lgamma(y + theta) - lgamma(theta) - lgamma(y + 1)
                           + theta log(theta / (theta + mu)) + y log(mu / (theta + mu)),
    E(y) = mu,   Var(y) = mu + mu^2 / theta,

i.e. scipy's ``nbinom(n=theta, p=theta / (theta + mu))``. Dispersion:
``disp_eta = log(theta)`` (glmmTMB's ``betad``); R reports ``theta`` (= sigma(m)).

As in glmmTMB's ``dnbinom_robust`` the density is computed from log(mu) (= eta for the log
link) and log(theta) only: log(theta/(theta+mu)) = -softplus(log mu - log theta) and
log(mu/(theta+mu)) = -softplus(log theta - log mu), so neither mu nor theta is ever formed
by exponentiating and subtracting; lgamma(y + theta) - lgamma(theta) switches to a Stirling
form for theta >= 50, so the density tends to the Poisson one as theta -> infinity without
cancellation. Links: log (default), identity, sqrt.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ._base import CountFamily
from ._checks import natural
from ._stable import float_dtype, gamma_poisson, lgamma_diff, log_mu, softplus

__all__ = ["NegativeBinomial2", "NBinom2"]


@dataclass(frozen=True, repr=False)
class NegativeBinomial2(CountFamily):
    name = "nbinom2"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    has_dispersion = True
    disp_scale = "log(theta)"
    disp_dimensionless = True

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        # log Gamma(y + theta) / (Gamma(theta) y!) is free of eta (loglik_rest): the
        # conditional-mode search skips its lgammas
        lmu = log_mu(self.link, eta)
        log_theta = disp_eta
        theta = jnp.exp(log_theta)
        return -theta * softplus(lmu - log_theta) - y * softplus(log_theta - lmu)

    def loglik_rest(self, y, disp_eta, extra, size):
        return lgamma_diff(y, jnp.exp(disp_eta)) - jsp.gammaln(y + 1.0)

    def variance(self, mu, disp_eta, extra, size=None):
        return mu + mu * mu * jnp.exp(-disp_eta)

    def sample(self, key, eta, disp_eta, extra, size):
        # Gamma-Poisson mixture: lambda ~ Gamma(shape=theta, mean=mu), y ~ Poisson(lambda)
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        theta = jnp.broadcast_to(jnp.exp(jnp.asarray(disp_eta, dt)), jnp.shape(mu))
        return gamma_poisson(key, theta, mu / theta, dt)


    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: E[(y-mu)^2 - mu] = mu^2 / theta
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        num = np.sum(mu * mu)
        excess = np.sum((y - mu) ** 2 - mu)
        theta = num / excess if excess > 0 and num > 0 else 1e3
        return float(np.log(np.clip(theta, 1e-2, 1e3)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"theta": natural(jnp.exp(jnp.asarray(disp_eta)))}


NBinom2 = NegativeBinomial2
