"""Lognormal family (glmmTMB's ``lognormal``, added after glmmTMB 1.1.5; same definition).

The mean mu = g^{-1}(eta) and the standard deviation phi are both on the data scale. With
the log-scale variance and mean

    s2 = log(1 + (phi / mu)^2),     m = log(mu) - s2 / 2,

log(y) ~ N(m, s2), so

    log p(y | mu, phi) = -log(2 pi)/2 - log(s2)/2 - (log(y) - m)^2 / (2 s2) - log(y),
    E(y) = mu,   Var(y) = phi^2,

i.e. scipy's ``lognorm(s=sqrt(s2), scale=exp(m))``. Dispersion: ``disp_eta = log(phi)``
(glmmTMB's ``betad``); R reports ``sigma`` = phi. s2 is computed as
softplus(2 (log phi - log mu)) (glmmTMB's ``logspace_add(2 (log phi - log mu), 0)``) with
log mu taken from eta directly for the log link. Links: log (default), identity, inverse.
The response must be > 0; zero-inflation is not available for this family.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._checks import check_positive, natural
from ._stable import float_dtype, log_mu, softplus

__all__ = ["Lognormal"]

_HALF_LOG_2PI = 0.9189385332046728


@dataclass(frozen=True, repr=False)
class Lognormal(Family):
    name = "lognormal"
    default_link = "log"
    allowed_links = ("log", "identity", "inverse")
    has_dispersion = True
    disp_scale = "log(sigma)"

    def _log_scale(self, eta, disp_eta):
        """(m, s2): mean and variance of log(y)."""
        lmu = log_mu(self.link, eta)
        s2 = softplus(2.0 * (disp_eta - lmu))
        return lmu - 0.5 * s2, s2

    def loglik(self, y, eta, disp_eta, extra, size):
        m, s2 = self._log_scale(eta, disp_eta)
        ly = jnp.log(y)
        r = ly - m
        return -_HALF_LOG_2PI - 0.5 * jnp.log(s2) - 0.5 * r * r / s2 - ly

    def variance(self, mu, disp_eta, extra, size=None):
        return jnp.exp(2.0 * disp_eta) * jnp.ones_like(mu)

    def sample(self, key, eta, disp_eta, extra, size):
        dt = float_dtype(eta)
        m, s2 = self._log_scale(eta, jnp.asarray(disp_eta, dt))
        z = jax.random.normal(key, jnp.shape(m), dtype=dt)
        return jnp.exp(m + jnp.sqrt(s2) * z)

    def check_response(self, y, size=None):
        check_positive(y, self.name)

    def initial_mu(self, y, size=None):
        return np.asarray(y, dtype=float).copy()

    def initial_disp(self, y, mu, size=None) -> float:
        # phi = SD of y on the data scale: the residual SD
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        v = np.mean((y - mu) ** 2) if y.size else np.nan
        if not np.isfinite(v) or v <= 0:
            v = np.var(y) if y.size > 1 and np.var(y) > 0 else 1.0
        return float(0.5 * np.log(v))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"sigma": natural(jnp.exp(jnp.asarray(disp_eta)))}
