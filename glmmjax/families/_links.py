"""Link functions g(mu) = eta as pure JAX functions.

Each link is a frozen (hashable) dataclass so that it can be a static part of a compiled
model. ``linkfun`` maps the mean to the linear predictor, ``linkinv`` maps back.
Derivatives come from JAX autodiff; none are hand-written.

``host_linkfun`` / ``host_linkinv`` evaluate the same maps on NumPy arrays, for the
host-side work around a fit (starting values, fitted values): there an eager JAX operation
costs a compilation per primitive in every new process (nine of them in a fresh beta-model
fit; figures in benchmarks/README.md), NumPy none. Each built-in link gives its NumPy pair
as ``_host``; a link without one (a user's) evaluates its JAX functions.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

__all__ = ["Link", "Identity", "Log", "Logit", "Probit", "Cloglog", "Inverse", "Sqrt", "get_link"]


def _expit(x):
    z = np.exp(-np.abs(x))          # no overflow, full relative precision in both tails
    return np.where(x >= 0, 1.0 / (1.0 + z), z / (1.0 + z))


def _ndtri(p):
    from scipy.special import ndtri

    return ndtri(p)


def _ndtr(x):
    from scipy.special import ndtr

    return ndtr(x)


@dataclass(frozen=True)
class Link:
    """A link function. Subclasses define ``name``, ``linkfun`` and ``linkinv``."""

    name = "link"
    _host = None   # (linkfun, linkinv) on NumPy arrays

    def linkfun(self, mu):
        raise NotImplementedError

    def linkinv(self, eta):
        raise NotImplementedError

    def host_linkfun(self, mu) -> np.ndarray:
        """linkfun on the host: NumPy in, NumPy out."""
        return self._on_host(0, mu)

    def host_linkinv(self, eta) -> np.ndarray:
        """linkinv on the host: NumPy in, NumPy out."""
        return self._on_host(1, eta)

    def _on_host(self, which: int, x) -> np.ndarray:
        x = np.asarray(x, float)
        if self._host is None:
            return np.asarray((self.linkfun, self.linkinv)[which](jnp.asarray(x)))
        with np.errstate(all="ignore"):   # as JAX: inf/NaN where the map leaves its domain
            return np.asarray(self._host[which](x), float)

    def __repr__(self):
        return f"{self.name}"


@dataclass(frozen=True)
class Identity(Link):
    name = "identity"
    _host = (lambda m: m, lambda e: e)

    def linkfun(self, mu):
        return mu

    def linkinv(self, eta):
        return eta


@dataclass(frozen=True)
class Log(Link):
    name = "log"
    _host = (np.log, np.exp)

    def linkfun(self, mu):
        return jnp.log(mu)

    def linkinv(self, eta):
        return jnp.exp(eta)


@dataclass(frozen=True)
class Logit(Link):
    name = "logit"
    _host = (lambda m: np.log(m) - np.log1p(-m), _expit)

    def linkfun(self, mu):
        return jnp.log(mu) - jnp.log1p(-mu)

    def linkinv(self, eta):
        return jsp.expit(eta)


@dataclass(frozen=True)
class Probit(Link):
    name = "probit"
    _host = (_ndtri, _ndtr)

    def linkfun(self, mu):
        return jsp.ndtri(mu)

    def linkinv(self, eta):
        return jsp.ndtr(eta)


@dataclass(frozen=True)
class Cloglog(Link):
    name = "cloglog"
    _host = (lambda m: np.log(-np.log1p(-m)), lambda e: -np.expm1(-np.exp(e)))

    def linkfun(self, mu):
        return jnp.log(-jnp.log1p(-mu))

    def linkinv(self, eta):
        return -jnp.expm1(-jnp.exp(eta))


@dataclass(frozen=True)
class Inverse(Link):
    name = "inverse"
    _host = (lambda m: 1.0 / m, lambda e: 1.0 / e)

    def linkfun(self, mu):
        return 1.0 / mu

    def linkinv(self, eta):
        return 1.0 / eta


@dataclass(frozen=True)
class Sqrt(Link):
    name = "sqrt"
    _host = (np.sqrt, np.square)

    def linkfun(self, mu):
        return jnp.sqrt(mu)

    def linkinv(self, eta):
        return eta * eta


_LINKS = {c.name: c for c in (Identity, Log, Logit, Probit, Cloglog, Inverse, Sqrt)}


def get_link(link) -> Link:
    """Return a Link instance from a name ("log") or a Link instance."""
    if isinstance(link, Link):
        return link
    if isinstance(link, type) and issubclass(link, Link):
        raise TypeError(f"Expected a Link instance ({link.__name__}()), got the class {link.__name__}")
    if isinstance(link, str) and link in _LINKS:
        return _LINKS[link]()
    raise ValueError(f"Unknown link {link!r}; choose one of {sorted(_LINKS)}")
