"""Zero-truncated count families (glmmTMB's ``truncated_poisson``, ``truncated_nbinom1``,
``truncated_nbinom2``) and, with a zero-inflation formula, the hurdle models.

With f the untruncated density (Poisson, nbinom1 or nbinom2 with mean mu = g^{-1}(eta), as
in :mod:`._poisson`, :mod:`._nbinom1`, :mod:`._nbinom2`) the zero-truncated density is

    p(y) = f(y) / (1 - f(0)),      y = 1, 2, ...;    p(0) = 0,

    log p(y) = log f(y) - log(1 - f(0)),   log(1 - f(0)) = log1mexp(log f(0))

(glmmTMB's ``logspace_sub(0, log f(0))``), with log f(0) computed from log mu and the log
dispersion only:

    Poisson:  log f(0) = -mu
    nbinom2:  log f(0) = -theta log(1 + mu/theta) = -theta softplus(log mu - log theta)
    nbinom1:  log f(0) = -(mu/phi) log(1 + phi)   = -(mu/phi) softplus(log phi)

``loglik`` returns -inf at y = 0 (with gradients that stay finite). With ``zi=`` the model is
the hurdle model, P(0) = p and P(y) = (1 - p) f(y) / (1 - f(0)) for y > 0: the zero-inflation
wrapper's log P(0) = logaddexp(log p, log(1 - p) + log p(0)) is exactly log p. Without
``zi=`` the response must be positive; glmmjax raises a ValueError when the model is built
(``zeros_need_zi``).

As in glmmTMB, mu (and the dispersion theta or phi) are those of the *untruncated*
distribution: eta = g(mu). The truncated distribution has, with v the untruncated variance
(mu, mu (1 + phi), mu + mu^2 / theta) and q = 1 - f(0),

    E(y) = mu / q,      Var(y) = (v + mu^2) / q - mu^2 / q^2.

``mean(eta, disp_eta)`` is E(y) (glmmTMB's ``predict(type = "conditional")``; the hurdle
model's response mean is (1 - p) mu / q), and ``variance(mu, disp_eta)`` takes the
untruncated mu, as glmmTMB's family ``variance`` functions do.

Sampler (exact, no rejection loop). Count y as the arrivals in [0, 1] of a Poisson process
of rate lambda; y > 0 exactly when the first arrival T < 1, and then y = 1 + Poisson(lambda
(1 - T)) by the memoryless property. For the Poisson family T given T < 1 is drawn by
inversion, T = -log(1 - U (1 - e^{-lambda})) / lambda. The negative binomials are
Gamma-Poisson mixtures, lambda ~ Gamma(shape a, scale s) (nbinom2: a = theta, s = mu/theta;
nbinom1: a = mu/phi, s = phi; f(0) = (1 + s)^{-a}). Given y > 0 the pair (lambda, T) has
density proportional to g(lambda) lambda e^{-lambda T} on T in [0, 1], so T has density
a r^a (r + T)^{-(a+1)} (r = 1/s), inverted as T = r [(1 - U (1 - f(0)))^{-1/a} - 1], and
lambda | T ~ Gamma(a + 1, rate r + T).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._nbinom1 import NegativeBinomial1
from ._nbinom2 import NegativeBinomial2
from ._poisson import Poisson
from ._stable import float_dtype, log1mexp, log_mu, softplus

__all__ = ["TruncatedPoisson", "TruncatedNBinom1", "TruncatedNBinom2"]


def _zt_poisson_draw(key, lam, dtype):
    """y ~ Poisson(lam) given y > 0 (elementwise; lam > 0)."""
    k1, k2 = jax.random.split(key)
    u = jax.random.uniform(k1, jnp.shape(lam), dtype=dtype)
    # lam (1 - T) = lam + log(1 - U (1 - e^{-lam}))
    rest = jnp.maximum(lam + jnp.log1p(u * jnp.expm1(-lam)), 0.0)
    return 1.0 + jax.random.poisson(k2, rest, shape=jnp.shape(lam)).astype(dtype)


def _zt_gamma_poisson_draw(key, a, s, dtype):
    """y ~ Poisson(lambda), lambda ~ Gamma(shape a, scale s), given y > 0 (elementwise)."""
    k1, k2, k3 = jax.random.split(key, 3)
    u = jax.random.uniform(k1, jnp.shape(a), dtype=dtype)
    log_f0 = -a * jnp.log1p(s)
    q = -jnp.expm1(log_f0)                                    # 1 - f(0)
    # s T = (1 - U q)^{-1/a} - 1, computed as expm1; T in [0, 1]
    t = jnp.clip(jnp.expm1(-jnp.log1p(-u * q) / a) / s, 0.0, 1.0)
    lam = jax.random.gamma(k2, a + 1.0, shape=jnp.shape(a), dtype=dtype) * s / (1.0 + s * t)
    rest = lam * (1.0 - t)
    return 1.0 + jax.random.poisson(k3, rest, shape=jnp.shape(a)).astype(dtype)


def _truncated_moments(mu, v, log_f0):
    """(E, Var) of the zero-truncated distribution from the untruncated mean, variance, log f(0)."""
    q = -jnp.expm1(log_f0)
    m = mu / q
    return m, (v + mu * mu) / q - m * m


class _Truncated:
    """Shared pieces of the zero-truncated families (mixed into a count family)."""

    zeros_need_zi: ClassVar[bool] = True

    def log_f0(self, eta, disp_eta):
        """log f(0) of the untruncated distribution at linear predictor eta."""
        raise NotImplementedError

    # the sum of loglik_eta and loglik_rest below (ahead of the untruncated family's own loglik)
    loglik = Family.loglik

    def _base_splits(self) -> bool:
        """Whether the untruncated family keeps terms free of eta apart (loglik_rest)."""
        return super().loglik_rest.__func__ is not Family.loglik_rest

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        pos = y > 0
        y1 = jnp.where(pos, y, 1.0)          # a value in the support for the masked rows
        # the untruncated family's terms in eta: its whole density when it does not split
        # (Family.loglik_eta would call this class's loglik)
        base = super()
        ll = (base.loglik_eta if self._base_splits() else base.loglik)(y1, eta, disp_eta, extra, size)
        return jnp.where(pos, ll - log1mexp(self.log_f0(eta, disp_eta)), -jnp.inf)

    def loglik_rest(self, y, disp_eta, extra, size):
        # the untruncated family's terms free of eta; 0 at y = 0, as loglik_rest must be
        if not self._base_splits():
            return None
        pos = y > 0
        return jnp.where(pos, super().loglik_rest(jnp.where(pos, y, 1.0), disp_eta, extra, size), 0.0)

    def mean(self, eta, disp_eta=None, extra=None, size=None):
        """E(y) = mu / (1 - f(0)), the mean of the truncated distribution."""
        d = jnp.zeros_like(eta) if disp_eta is None else disp_eta
        return jnp.exp(log_mu(self.link, eta) - log1mexp(self.log_f0(eta, d)))

    def initial_mu(self, y, size=None):
        # zeros (the hurdle part) say nothing about the count mean: start them at the mean
        # of the positive counts
        y = np.asarray(y, dtype=float)
        pos = y > 0
        fill = float(np.mean(y[pos])) if np.any(pos) else 1.0
        return np.where(pos, y, fill) + 0.1

    def initial_disp(self, y, mu, size=None) -> float:
        # the untruncated family's moment estimate on the positive counts
        y = np.asarray(y, dtype=float)
        mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
        pos = y > 0
        if not np.any(pos):
            return super().initial_disp(y, mu, size)
        return super().initial_disp(y[pos], mu[pos], None)


@dataclass(frozen=True, repr=False)
class TruncatedPoisson(_Truncated, Poisson):
    """Zero-truncated Poisson (glmmTMB's ``truncated_poisson``); see the module docstring."""

    name = "truncated_poisson"
    canonical_link = None

    def log_f0(self, eta, disp_eta):
        return -self.link.linkinv(eta)

    def variance(self, mu, disp_eta, extra, size=None):
        return _truncated_moments(mu, mu, -mu)[1]

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        return _zt_poisson_draw(key, mu, float_dtype(mu))


@dataclass(frozen=True, repr=False)
class TruncatedNBinom2(_Truncated, NegativeBinomial2):
    """Zero-truncated nbinom2 (glmmTMB's ``truncated_nbinom2``); disp_eta = log(theta)."""

    name = "truncated_nbinom2"

    def log_f0(self, eta, disp_eta):
        return -jnp.exp(disp_eta) * softplus(log_mu(self.link, eta) - disp_eta)

    def variance(self, mu, disp_eta, extra, size=None):
        theta = jnp.exp(disp_eta)
        return _truncated_moments(mu, mu + mu * mu / theta, -theta * jnp.log1p(mu / theta))[1]

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        theta = jnp.broadcast_to(jnp.exp(jnp.asarray(disp_eta, dt)), jnp.shape(mu))
        return _zt_gamma_poisson_draw(key, theta, mu / theta, dt)


@dataclass(frozen=True, repr=False)
class TruncatedNBinom1(_Truncated, NegativeBinomial1):
    """Zero-truncated nbinom1 (glmmTMB's ``truncated_nbinom1``); disp_eta = log(phi)."""

    name = "truncated_nbinom1"

    def log_f0(self, eta, disp_eta):
        return -jnp.exp(log_mu(self.link, eta) - disp_eta) * softplus(disp_eta)

    def variance(self, mu, disp_eta, extra, size=None):
        phi = jnp.exp(disp_eta)
        return _truncated_moments(mu, mu * (1.0 + phi), -(mu / phi) * jnp.log1p(phi))[1]

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        phi = jnp.broadcast_to(jnp.exp(jnp.asarray(disp_eta, dt)), jnp.shape(mu))
        return _zt_gamma_poisson_draw(key, mu / phi, phi, dt)
