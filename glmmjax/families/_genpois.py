"""Generalized Poisson family (glmmTMB's ``genpois``, Consul's parameterization by the mean).

Consul's generalized Poisson with parameters theta > 0 and lambda < 1 has mass

    p(y) = theta (theta + lambda y)^(y - 1) exp(-theta - lambda y) / y!,   y = 0, 1, 2, ...,
    E(y) = theta / (1 - lambda),      Var(y) = theta / (1 - lambda)^3.

glmmTMB parameterizes it by the mean mu = g^{-1}(eta) and phi = exp(disp_eta) (its ``betad``
scale; R's ``sigma(m)`` is phi):

    theta = mu / sqrt(phi),     lambda = 1 - 1 / sqrt(phi),

so that E(y) = mu and Var(y) = mu phi (glmmTMB's ``genpois()$variance(mu, phi)``): phi > 1
is overdispersion (0 < lambda < 1), phi = 1 the Poisson, phi < 1 underdispersion
(lambda < 0). In log space, with log theta = log mu - disp_eta / 2,
lambda = -expm1(-disp_eta / 2) and z = lambda y / theta,

    log p(y) = y log theta + (y - 1) log1p(z) - theta - lambda y - lgamma(y + 1),

which is the formula above rewritten so that y = 0 gives exactly -theta.

Underdispersion (phi < 1): the mass is positive only while theta + lambda y > 0, i.e. for
y < theta / |lambda|; beyond that glmmjax returns log p = -inf (glmmTMB takes the log of a
negative number there and returns NaN). The one exception is y = 1, whose mass
theta exp(-theta - lambda) does not involve theta + lambda y: glmmTMB evaluates it as it
stands (its factor y - 1 = 0 multiplies the log of a negative number to 0), and so does
glmmjax. On that support the masses do not sum to exactly 1 (Consul and Famoye's
truncation error; e.g. 1.0026 at mu = 1, phi = e^-1) and Var(y) = mu phi holds only
approximately; the likelihood is nonetheless glmmTMB's, term for term.

Sampler: inversion, y = min{k : P(0) + ... + P(k) >= U}, walking k = 0, 1, ... for all
draws at once (``inversion_sample``), exact up to rounding. For phi < 1 it draws from the
mass above renormalized over its support (U uniform on (0, S), S the mass's total, summed
in a first pass). Links: log (default), identity, sqrt.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ._base import CountFamily, pearson_dispersion
from ._checks import natural
from ._stable import float_dtype, log_mu

__all__ = ["GeneralizedPoisson", "inversion_sample"]

MAX_INVERSION_STEPS = 1_000_000


def _walk(logpmf, shape, dtype, step, init, done, mean, support_end, max_steps):
    """Walk k = 0, 1, ... for the elements not ``done``, all at once: ``step(k, lp, carry,
    active)`` returns (carry, stop); an element also stops at the end of its support or,
    past ``mean``, once its term falls below the dtype's smallest normal."""
    tiny = jnp.log(jnp.asarray(jnp.finfo(dtype).tiny, dtype))
    mean = jnp.zeros(shape, dtype) if mean is None else jnp.broadcast_to(jnp.asarray(mean, dtype), shape)

    def cond(s):
        it, _, _, done = s
        return (it < max_steps) & ~jnp.all(done)

    def body(s):
        it, k, carry, done = s
        lp = logpmf(k)
        carry, stop = step(k, lp, carry, ~done)
        stop = stop | ((k > mean) & (lp < tiny))
        if support_end is not None:
            stop = stop | support_end(k)
        return it + 1, k + 1.0, carry, done | stop

    state = (jnp.asarray(0), jnp.zeros(shape, dtype), init, done)
    _, _, carry, _ = jax.lax.while_loop(cond, body, state)
    return carry


def inversion_sample(key, logpmf, shape, dtype, *, support_end=None, mean=None, max_steps=MAX_INVERSION_STEPS):
    """Count draws by inversion of the cumulative mass, all elements at once.

    y = min{k : P(0) + ... + P(k) >= U}: each element walks k = 0, 1, 2, ... in one
    ``lax.while_loop`` that runs until every element has stopped.

    Arguments:
        key: a ``jax.random`` key.
        logpmf: function of an array k (of ``shape``) returning the elementwise log P(k).
        shape, dtype: of the draws.
        support_end: optional function of k, True where k is the last point of a finite
            support. For those elements (the ones for which it is True somewhere) the mass
            is renormalized over the support: U is uniform on (0, S) with
            S = P(0) + ... + P(end), summed in a first pass. ``support_end(None)`` must
            say which elements have a finite support.
        mean: optional array; past it, an element whose term P(k) has dropped below the
            dtype's smallest normal stops at k (the remaining mass is rounding).
        max_steps: a safety cap on the number of loop iterations.

    Returns:
        draws of ``shape`` and ``dtype``.
    """
    zero = jnp.zeros(shape, dtype)
    none = jnp.zeros(shape, bool)
    u = jax.random.uniform(key, shape, dtype)
    if support_end is not None:
        def add(k, lp, acc, active):
            return jnp.where(active, acc + jnp.exp(lp), acc), none

        finite = support_end(None)
        total = _walk(logpmf, shape, dtype, add, zero, ~finite, mean, support_end, max_steps)
        u = jnp.where(finite, u * total, u)

    def find(k, lp, carry, active):
        cdf, y = carry
        cdf = jnp.where(active, cdf + jnp.exp(lp), cdf)
        y = jnp.where(active, k, y)
        return (cdf, y), cdf >= u

    return _walk(logpmf, shape, dtype, find, (zero, zero), none, mean, support_end, max_steps)[1]


def _theta_lambda(link, eta, disp_eta):
    """(log theta, lambda) of Consul's parameterization from eta and disp_eta = log(phi)."""
    half = 0.5 * disp_eta
    return log_mu(link, eta) - half, -jnp.expm1(-half)


@dataclass(frozen=True, repr=False)
class GeneralizedPoisson(CountFamily):
    """Generalized Poisson (glmmTMB's ``genpois``); see the module docstring."""

    name = "genpois"
    default_link = "log"
    allowed_links = ("log", "identity", "sqrt")
    has_dispersion = True
    disp_scale = "log(phi)"
    disp_dimensionless = True

    def loglik(self, y, eta, disp_eta, extra, size):
        log_theta, lam = _theta_lambda(self.link, eta, disp_eta)
        theta = jnp.exp(log_theta)
        z = lam * y * jnp.exp(-log_theta)                 # lambda y / theta
        one = y == 1.0
        inside = (z > -1.0) | one                           # theta + lambda y > 0 (see above for y = 1)
        z_safe = jnp.where((z > -1.0) & ~one, z, 0.0)
        ll = y * log_theta + (y - 1.0) * jnp.log1p(z_safe) - theta - lam * y - jsp.gammaln(y + 1.0)
        return jnp.where(inside, ll, -jnp.inf)

    def variance(self, mu, disp_eta, extra, size=None):
        return mu * jnp.exp(disp_eta)

    def sample(self, key, eta, disp_eta, extra, size):
        dt = float_dtype(eta)
        eta = jnp.asarray(eta, dt)
        shape = jnp.shape(eta)
        d = jnp.broadcast_to(jnp.asarray(disp_eta, dt), shape)
        log_theta, lam = _theta_lambda(self.link, eta, d)
        theta = jnp.exp(log_theta)

        def logpmf(k):
            return self.loglik(k, eta, d, extra, None)

        def support_end(k):
            # phi < 1 (lambda < 0): the support ends at the last k with theta + lambda k > 0
            # (but includes y = 1); None: which elements have a finite support
            if k is None:
                return lam < 0
            return (k >= 1.0) & (theta + lam * (k + 1.0) <= 0.0)

        return inversion_sample(key, logpmf, shape, dt, support_end=support_end,
                                mean=self.link.linkinv(eta))

    def initial_disp(self, y, mu, size=None) -> float:
        # moment estimate: E[(y - mu)^2 / mu] = phi, but not below 1 (the Poisson): with
        # phi < 1 counts far above their mean have no mass, and a start there could be -inf
        return float(np.log(np.clip(pearson_dispersion(y, mu), 1.0, 1e3)))

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        return {"phi": natural(jnp.exp(jnp.asarray(disp_eta)))}
