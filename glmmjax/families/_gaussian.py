"""Gaussian family.

    log p(y | mu, sigma) = -log(2 pi)/2 - log(sigma^2)/2 - (y - mu)^2 / (2 sigma^2),
    Var(y) = sigma^2.

Dispersion: ``disp_eta = log(sigma^2)`` (glmmTMB 1.1.5's ``betad`` for gaussian, so
sigma = exp(disp_eta / 2)); R reports ``sigma``. Links: identity (canonical), log, inverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family, real_line_initial_mu
from ._checks import check_finite, natural
from ._stable import float_dtype

__all__ = ["Gaussian"]

_HALF_LOG_2PI = 0.9189385332046728


@dataclass(frozen=True, repr=False)
class Gaussian(Family):
    name = "gaussian"
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    canonical_link = "identity"
    has_dispersion = True
    disp_scale = "log(sigma^2)"

    @property
    def profiles_lmm(self) -> bool:
        return self.link.name == "identity"

    def loglik(self, y, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        r = y - mu
        return -_HALF_LOG_2PI - 0.5 * disp_eta - 0.5 * r * r * jnp.exp(-disp_eta)

    def variance(self, mu, disp_eta, extra, size=None):
        return jnp.exp(disp_eta) * jnp.ones_like(mu)

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        z = jax.random.normal(key, jnp.shape(mu), dtype=dt)
        return (mu + jnp.exp(0.5 * disp_eta) * z).astype(dt)

    def check_response(self, y, size=None):
        check_finite(y, self.name)

    def initial_mu(self, y, size=None):
        return real_line_initial_mu(y, self.link.name)

    def initial_disp(self, y, mu, size=None) -> float:
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        s2 = np.mean((y - mu) ** 2) if y.size else 1.0
        if not np.isfinite(s2) or s2 <= 0:
            s2 = np.var(y) if y.size > 1 and np.var(y) > 0 else 1.0
        return float(np.log(s2))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"sigma": natural(jnp.exp(0.5 * jnp.asarray(disp_eta)))}
