"""Link functions g(mu) = eta as pure JAX functions.

Each link is a frozen (hashable) dataclass so that it can be a static part of a compiled
model. ``linkfun`` maps the mean to the linear predictor, ``linkinv`` maps back.
Derivatives come from JAX autodiff; none are hand-written.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import jax.scipy.special as jsp

__all__ = ["Link", "Identity", "Log", "Logit", "Probit", "Cloglog", "Inverse", "Sqrt", "get_link"]


@dataclass(frozen=True)
class Link:
    """A link function. Subclasses define ``name``, ``linkfun`` and ``linkinv``."""

    name = "link"

    def linkfun(self, mu):
        raise NotImplementedError

    def linkinv(self, eta):
        raise NotImplementedError

    def __repr__(self):
        return f"{self.name}"


@dataclass(frozen=True)
class Identity(Link):
    name = "identity"

    def linkfun(self, mu):
        return mu

    def linkinv(self, eta):
        return eta


@dataclass(frozen=True)
class Log(Link):
    name = "log"

    def linkfun(self, mu):
        return jnp.log(mu)

    def linkinv(self, eta):
        return jnp.exp(eta)


@dataclass(frozen=True)
class Logit(Link):
    name = "logit"

    def linkfun(self, mu):
        return jnp.log(mu) - jnp.log1p(-mu)

    def linkinv(self, eta):
        return jsp.expit(eta)


@dataclass(frozen=True)
class Probit(Link):
    name = "probit"

    def linkfun(self, mu):
        return jsp.ndtri(mu)

    def linkinv(self, eta):
        return jsp.ndtr(eta)


@dataclass(frozen=True)
class Cloglog(Link):
    name = "cloglog"

    def linkfun(self, mu):
        return jnp.log(-jnp.log1p(-mu))

    def linkinv(self, eta):
        return -jnp.expm1(-jnp.exp(eta))


@dataclass(frozen=True)
class Inverse(Link):
    name = "inverse"

    def linkfun(self, mu):
        return 1.0 / mu

    def linkinv(self, eta):
        return 1.0 / eta


@dataclass(frozen=True)
class Sqrt(Link):
    name = "sqrt"

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
