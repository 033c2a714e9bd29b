"""Beta family (glmmTMB's ``beta_family``; Ferrari & Cribari-Neto parameterization).

With mean mu in (0, 1) and precision phi > 0, y ~ Beta(a = mu phi, b = (1 - mu) phi):

    log p(y | mu, phi) = lgamma(phi) - lgamma(a) - lgamma(b)
                         + (a - 1) log(y) + (b - 1) log(1 - y),
    E(y) = mu,   Var(y) = mu (1 - mu) / (1 + phi),

i.e. scipy's ``beta(a, b)``. Dispersion: ``disp_eta = log(phi)`` (glmmTMB's ``betad``);
R reports ``phi`` (= sigma(m)). a and b are formed as exp(log mu + log phi) and
exp(log(1 - mu) + log phi) with log mu, log(1 - mu) computed stably from eta.

lgamma(phi) - lgamma(a) - lgamma(b) cancels catastrophically for a large precision (each
term ~ phi log phi; at phi = e^100 the difference is rounding noise of ~1e45, and an
optimizer trial step there saw a log-likelihood of +1e182). It is computed from Stirling's
formula with a + b = phi and log a = log mu + log phi, log b = log(1 - mu) + log phi:

    1/2 log(phi) - (a - 1/2) log(mu) - (b - 1/2) log(1 - mu) - log(2 pi) / 2
        + d(phi) - d(a) - d(b),        d(x) = lgamma(x) - [(x - 1/2) log x - x + log(2 pi)/2],

which is exact for every a, b > 0 (d is ``stirling_remainder``: a series for x >= 50, lgamma
minus the approximation below) and has no cancellation (tests/test_families_core.py compares
with scipy's betaln for b >> a and checks phi = e^100). d(a) and d(b) are evaluated as one
stacked array: the Laplace gradient differentiates them three times in eta, and one copy of
that code instead of two halves the compiled program's share of it, which makes a fresh
process with an empty cache markedly faster than the former branch-per-regime form
(``python benchmarks/bench_reference.py --only petrol``; figures in benchmarks/README.md).

Links: logit (default), probit, cloglog. The response must lie strictly inside (0, 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ._base import Family
from ._checks import check_open_unit, natural
from ._special import _HALF_LOG_2PI
from ._stable import float_dtype, log_mu_pair, stirling_remainder

__all__ = ["Beta"]


@dataclass(frozen=True, repr=False)
class Beta(Family):
    name = "beta"
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog")
    has_dispersion = True
    disp_scale = "log(phi)"
    disp_dimensionless = True

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        log_mu, log_1m = log_mu_pair(self.link, eta)
        a = jnp.exp(log_mu + disp_eta)
        b = jnp.exp(log_1m + disp_eta)
        d_ab = stirling_remainder(jnp.stack([a, b]))
        return (
            -(a - 0.5) * log_mu - (b - 0.5) * log_1m - d_ab[0] - d_ab[1]
            + a * jnp.log(y) + b * jnp.log1p(-y)
        )

    def loglik_rest(self, y, disp_eta, extra, size):
        # the terms free of mu: d(phi), log(phi)/2 and the 1/(y (1 - y)) of the density (0 at
        # y = 0, as loglik_rest must be; the response check keeps y inside (0, 1) anyway)
        pos = y > 0
        ys = jnp.where(pos, y, 0.5)
        rest = 0.5 * disp_eta - _HALF_LOG_2PI + stirling_remainder(jnp.exp(disp_eta)) - jnp.log(ys) - jnp.log1p(-ys)
        return jnp.where(pos, rest, 0.0)

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
