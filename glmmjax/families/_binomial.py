"""Binomial family.

    log p(y | mu, n) = log C(n, y) + y log(mu) + (n - y) log(1 - mu),

with ``y`` the number of successes out of ``size = n`` trials (``size=None`` means n = 1,
a 0/1 response) and ``mu`` the success probability. ``mean`` and ``variance`` refer to the
proportion y / n: E = mu, Var = mu (1 - mu) / n. The binomial coefficient is included (as in
glmmTMB). No dispersion parameter.

log(mu) and log(1 - mu) are computed from eta directly: for logit as
y eta - n softplus(eta); for probit with log_ndtr(+-eta); for cloglog as
log(1 - exp(-exp(eta))) and -exp(eta); for log as eta and log(1 - exp(eta)).
Links: logit (canonical), probit, cloglog, log.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from .._warnings import DataWarning, warn
from ._base import Family
from ._checks import check_finite
from ._stable import float_dtype, log_mu_pair, softplus

__all__ = ["Binomial"]


@dataclass(frozen=True, repr=False)
class Binomial(Family):
    name = "binomial"
    trials = True
    default_link = "logit"
    allowed_links = ("logit", "probit", "cloglog", "log")
    canonical_link = "logit"
    discrete = True

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        # log choose(n, y) is free of eta (loglik_rest): the conditional-mode search skips
        # its three lgammas
        n = 1.0 if size is None else size
        if self.link.name == "logit":
            return y * eta - n * softplus(eta)
        log_mu, log_1m = log_mu_pair(self.link, eta)
        return y * log_mu + (n - y) * log_1m

    def loglik_rest(self, y, disp_eta, extra, size):
        n = 1.0 if size is None else size
        return jsp.gammaln(n + 1.0) - jsp.gammaln(y + 1.0) - jsp.gammaln(n - y + 1.0)

    def variance(self, mu, disp_eta, extra, size=None):
        n = 1.0 if size is None else size
        return mu * (1.0 - mu) / n

    def sample(self, key, eta, disp_eta, extra, size):
        mu = self.link.linkinv(eta)
        dt = float_dtype(mu)
        n = jnp.ones_like(mu) if size is None else jnp.broadcast_to(jnp.asarray(size, dt), jnp.shape(mu))
        return jax.random.binomial(key, n, mu, shape=jnp.shape(mu), dtype=dt)

    def check_response(self, y, size=None):
        y = check_finite(y, self.name)
        n = np.ones_like(y) if size is None else np.broadcast_to(np.asarray(size, dtype=float), y.shape)
        if not np.all(np.isfinite(n)) or np.any(n < 0):
            raise ValueError(f"The {self.name} family needs finite, non-negative numbers of trials (size)")
        if np.any(y < 0):
            raise ValueError(f"The {self.name} family needs non-negative numbers of successes; "
                             f"the response has {int(np.sum(y < 0))} negative value(s)")
        if np.any(y > n):
            what = "0/1 values (no size given)" if size is None else "successes <= trials (size)"
            raise ValueError(f"The {self.name} family needs {what}; "
                             f"{int(np.sum(y > n))} response value(s) exceed the number of trials")
        if np.any(np.abs(y - np.round(y)) > 1e-8) or np.any(np.abs(n - np.round(n)) > 1e-8):
            # R's binomial()$initialize warns and fits (the likelihood is then a quasi one)
            warn("non-integer #successes in a binomial glm!", DataWarning)

    def initial_mu(self, y, size=None):
        y = np.asarray(y, dtype=float)
        n = 1.0 if size is None else np.asarray(size, dtype=float)
        return (y + 0.5) / (n + 1.0)
