"""Student t family (glmmTMB's ``t``).

Location mu, scale sigma > 0, degrees of freedom df > 0; with z = (y - mu) / sigma:

    log p(y | mu, sigma, df) = lgamma((df + 1)/2) - lgamma(df/2) - log(df pi)/2 - log(sigma)
                               - (df + 1)/2 log(1 + z^2 / df),
    E(y) = mu (df > 1),   Var(y) = sigma^2 df / (df - 2) (df > 2; infinite otherwise),

i.e. scipy's ``t(df, loc=mu, scale=sigma)``. Dispersion: ``disp_eta = log(sigma)``
(glmmTMB's ``betad``); one extra parameter ``extra[0] = log(df)`` (glmmTMB's ``psi``).
R reports ``sigma`` and ``df``. Links: identity (default), log, inverse.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family, real_line_initial_mu
from ._checks import check_finite, natural
from ._special import lgamma
from ._stable import float_dtype

__all__ = ["StudentT"]

_HALF_LOG_PI = 0.5723649429247001


def _moment_df(y, mu) -> float:
    """df from the residual excess kurtosis (6 / (df - 4)), clipped to [3, 100]."""
    r = np.asarray(y, dtype=float) - np.asarray(mu, dtype=float)
    m2 = np.mean(r**2) if r.size else np.nan
    if not np.isfinite(m2) or m2 <= 0:
        return 10.0
    kurt = np.mean(r**4) / m2**2 - 3.0
    if not np.isfinite(kurt) or kurt <= 6.0 / 96.0:
        return 100.0
    return float(np.clip(4.0 + 6.0 / kurt, 3.0, 100.0))


@dataclass(frozen=True, repr=False)
class StudentT(Family):
    name = "t"
    default_link = "identity"
    allowed_links = ("identity", "log", "inverse")
    has_dispersion = True
    disp_scale = "log(sigma)"
    n_extra = 1
    extra_names = ("log(df)",)

    def loglik(self, y, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        log_df = extra[0]
        df = jnp.exp(log_df)
        z = (y - mu) * jnp.exp(-disp_eta)
        return (
            lgamma(0.5 * (df + 1.0)) - lgamma(0.5 * df) - 0.5 * log_df - _HALF_LOG_PI
            - disp_eta - 0.5 * (df + 1.0) * jnp.log1p(z * z / df)
        )

    def variance(self, mu, disp_eta, extra, size=None):
        df = jnp.exp(extra[0])
        safe = jnp.where(df > 2.0, df, 3.0)
        v = jnp.exp(2.0 * disp_eta) * safe / (safe - 2.0)
        return jnp.where(df > 2.0, v, jnp.inf) * jnp.ones_like(mu)

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        df = jnp.exp(jnp.asarray(extra, dt)[0])
        z = jax.random.t(key, df, shape=jnp.shape(mu), dtype=dt)
        return mu + jnp.exp(jnp.asarray(disp_eta, dt)) * z

    def check_response(self, y, size=None):
        check_finite(y, self.name)

    def initial_mu(self, y, size=None):
        return real_line_initial_mu(y, self.link.name)

    def initial_disp(self, y, mu, size=None) -> float:
        # sigma^2 = Var * (df - 2) / df, with df from initial_extra's moment estimate
        r = np.asarray(y, dtype=float) - np.asarray(mu, dtype=float)
        m2 = np.mean(r**2) if r.size else np.nan
        if not np.isfinite(m2) or m2 <= 0:
            return 0.0
        df = _moment_df(y, mu)
        return float(0.5 * np.log(m2 * (df - 2.0) / df))

    def initial_extra(self, y, mu, size=None) -> np.ndarray:
        return np.array([np.log(_moment_df(y, mu))])

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {
            "sigma": natural(jnp.exp(jnp.asarray(disp_eta))),
            "df": natural(jnp.exp(jnp.asarray(extra)[0])),
        }
