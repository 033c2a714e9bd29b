"""Beta-binomial family (glmmTMB's ``betabinomial``).

y successes out of ``size = n`` trials, y | p ~ Binomial(n, p), p ~ Beta(a, b) with
a = mu phi, b = (1 - mu) phi (mean mu = g^{-1}(eta), precision phi > 0):

    log p(y | mu, phi, n) = log C(n, y) + lgamma(y + a) - lgamma(a) + lgamma(n - y + b) - lgamma(b)
                            - [lgamma(n + phi) - lgamma(phi)],
    E(y / n) = mu,   Var(y / n) = mu (1 - mu) / n * (phi + n) / (phi + 1),

i.e. scipy's ``betabinom(n, a, b)``. Dispersion: ``disp_eta = log(phi)`` (glmmTMB's
``betad``); R reports ``phi`` (= sigma(m)). As phi -> infinity it tends to the binomial.
The three lgamma differences are ``lgamma_diff`` (a Stirling form for large arguments), so
the density stays accurate for large phi. Their derivatives are given directly
(d/da [lgamma(y + a) - lgamma(a)] = digamma(y + a) - digamma(a), a custom JVP) rather than
traced through both branches of ``lgamma_diff``: the Laplace engine's Hessian needs fourth
derivatives in eta, and the traced form made that program too large to compile in reasonable
time and memory (the custom JVP compiles in about the time of plain lgamma differences).
a and b are exp(log mu + log phi) and
exp(log(1 - mu) + log phi) with log mu, log(1 - mu) computed from eta. ``mean`` and
``variance`` refer to the proportion y / n, as for the binomial. The response is given as
for the binomial: ``cbind(successes, failures)``, 0/1 values (n = 1), or proportions with
weights. Links: logit (default), probit, cloglog.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ._base import Family
from ._binomial import Binomial
from ._checks import natural
from ._special import digamma
from ._stable import float_dtype, lgamma_diff, log_mu_pair

__all__ = ["BetaBinomial"]


@jax.custom_jvp
def _lgamma_ratio(y, a):
    """lgamma(y + a) - lgamma(a) (``lgamma_diff``) with its derivatives written out."""
    return lgamma_diff(y, a)


@_lgamma_ratio.defjvp
def _lgamma_ratio_jvp(primals, tangents):
    y, a = primals
    ty, ta = tangents
    dya = digamma(y + a)
    return _lgamma_ratio(y, a), (dya - digamma(a)) * ta + dya * ty


@dataclass(frozen=True, repr=False)
class BetaBinomial(Family):
    name = "betabinomial"
    trials = True
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    has_dispersion = True
    disp_scale = "log(phi)"
    disp_dimensionless = True
    discrete = True

    def loglik(self, y, eta, disp_eta, extra, size):
        n = 1.0 if size is None else size
        log_mu, log_1m = log_mu_pair(self.link, eta)
        a = jnp.exp(log_mu + disp_eta)
        b = jnp.exp(log_1m + disp_eta)
        phi = jnp.exp(disp_eta)
        lchoose = jsp.gammaln(n + 1.0) - jsp.gammaln(y + 1.0) - jsp.gammaln(n - y + 1.0)
        return lchoose + _lgamma_ratio(y, a) + _lgamma_ratio(n - y, b) - _lgamma_ratio(n, phi)

    def variance(self, mu, disp_eta, extra, size=None):
        n = 1.0 if size is None else size
        phi = jnp.exp(disp_eta)
        return mu * (1.0 - mu) / n * (phi + n) / (phi + 1.0)

    def sample(self, key, eta, disp_eta, extra, size):
        log_mu, log_1m = log_mu_pair(self.link, eta)
        dt = float_dtype(log_mu)
        d = jnp.asarray(disp_eta, dt)
        shape = jnp.shape(log_mu)
        k1, k2 = jax.random.split(key)
        p = jax.random.beta(k1, jnp.exp(log_mu + d), jnp.exp(log_1m + d), shape=shape, dtype=dt)
        n = jnp.ones(shape, dt) if size is None else jnp.broadcast_to(jnp.asarray(size, dt), shape)
        return jax.random.binomial(k2, n, p, shape=shape, dtype=dt)

    # the response is given and checked as for the binomial
    check_response = Binomial.check_response
    initial_mu = Binomial.initial_mu

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: Var(y) = n mu (1 - mu) (1 + (n - 1) rho) with rho = 1 / (1 + phi)
        y = np.asarray(y, dtype=float)
        mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
        n = np.ones_like(y) if size is None else np.broadcast_to(np.asarray(size, dtype=float), y.shape)
        v = n * mu * (1.0 - mu)
        excess = np.sum((y - n * mu) ** 2 - v)
        denom = np.sum((n - 1.0) * v)
        rho = excess / denom if denom > 0 else np.nan
        phi = 1.0 / rho - 1.0 if np.isfinite(rho) and rho > 0 else 1e3
        return float(np.log(np.clip(phi, 0.1, 1e4)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta)))}
