"""Gamma family.

With mean mu and shape k:

    log p(y | mu, k) = k log(k) - lgamma(k) - k log(mu) + (k - 1) log(y) - k y / mu,
    E(y) = mu,   Var(y) = mu^2 / k,

i.e. scipy's ``gamma(a=k, scale=mu/k)``. Dispersion: ``disp_eta = log(k)`` (glmmTMB's
``betad`` for Gamma: the log shape). R's ``sigma(m)`` is the coefficient of variation
1/sqrt(k); ``dispersion_parameters`` reports both ``shape`` and ``sigma``.
Links: inverse (default and canonical, as in R), log, identity. The response must be > 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._checks import check_positive, natural
from ._special import lgamma
from ._stable import float_dtype

__all__ = ["Gamma"]


@dataclass(frozen=True, repr=False)
class Gamma(Family):
    name = "Gamma"
    default_link = "inverse"
    allowed_links = ("inverse", "log", "identity")
    canonical_link = "inverse"
    has_dispersion = True
    disp_scale = "log(shape)"
    disp_dimensionless = True

    def _log_mu_and_ratio(self, y, eta):
        """(log mu, y / mu) computed from eta without needless exp/log round trips."""
        name = self.link.name
        if name == "log":
            return eta, y * jnp.exp(-eta)
        if name == "inverse":
            return -jnp.log(eta), y * eta
        mu = self.link.linkinv(eta)
        return jnp.log(mu), y / mu

    def loglik(self, y, eta, disp_eta, extra, size):
        log_k = disp_eta
        k = jnp.exp(log_k)
        lmu, ratio = self._log_mu_and_ratio(y, eta)
        return k * (log_k - lmu - ratio) - lgamma(k) + (k - 1.0) * jnp.log(y)

    def variance(self, mu, disp_eta, extra, size=None):
        return mu * mu * jnp.exp(-disp_eta)

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        k = jnp.broadcast_to(jnp.exp(jnp.asarray(disp_eta, dt)), jnp.shape(mu))
        return jax.random.gamma(key, k, shape=jnp.shape(mu), dtype=dt) * (mu / k)

    def check_response(self, y, size=None):
        check_positive(y, self.name)

    def initial_mu(self, y, size=None):
        return np.asarray(y, dtype=float).copy()

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: E[((y - mu)/mu)^2] = 1/k
        y = np.asarray(y, dtype=float)
        mu = np.asarray(mu, dtype=float)
        cv2 = np.mean(((y - mu) / mu) ** 2) if y.size else np.nan
        if not np.isfinite(cv2) or cv2 <= 0:
            return 0.0
        return float(np.log(np.clip(1.0 / cv2, 1e-2, 1e4)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        d = jnp.asarray(disp_eta)
        return {"shape": natural(jnp.exp(d)), "sigma": natural(jnp.exp(-0.5 * d))}
