"""The family interface.

A family is a frozen (hashable) dataclass with a handful of methods, all pure JAX functions
of arrays. The engine evaluates the conditional log-likelihood

    sum_i  w_i * family.loglik(y_i, eta_i, disp_eta_i, extra, size_i)

where ``eta`` is the linear predictor of the conditional mean, ``disp_eta`` the linear
predictor of the dispersion model on the family's own log scale (glmmTMB's ``betad`` scale,
listed in ``disp_scale``), and ``extra`` a small vector of further unconstrained family
parameters (Student t: log df). A user-defined family subclasses :class:`Family` and fills
in the same methods.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._checks import check_counts
from ._links import Link, get_link

__all__ = ["Family", "CountFamily", "real_line_initial_mu", "pearson_dispersion"]


def real_line_initial_mu(y, link: str) -> np.ndarray:
    """Starting means for a family on the real line: y itself, moved into the link's domain
    (positive for the log link, away from 0 for the inverse link)."""
    y = np.asarray(y, dtype=float)
    if link == "log":
        floor = max(0.1 * np.mean(np.abs(y)), 1e-8) if y.size else 1.0
        return np.maximum(y, floor)
    if link == "inverse":
        tiny = max(1e-3 * np.mean(np.abs(y)), 1e-8) if y.size else 1.0
        return np.where(np.abs(y) < tiny, np.where(y < 0, -tiny, tiny), y)
    return y.copy()


def pearson_dispersion(y, mu) -> float:
    """mean((y - mu)^2 / mu) over the rows with mu > 0 (1.0 when none, or not finite): a
    moment estimate of Var(y) / mu for count families' starting values (host side)."""
    y = np.asarray(y, dtype=float)
    mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
    ok = mu > 0
    phi = np.mean((y[ok] - mu[ok]) ** 2 / mu[ok]) if np.any(ok) else 1.0
    return float(phi) if np.isfinite(phi) else 1.0


@dataclass(frozen=True)
class Family:
    """Base class of all families.

    Class attributes a subclass sets:
        name: glmmTMB's family name ("poisson", "nbinom2", ...).
        default_link: link name used when none is given.
        allowed_links: names of the links the family accepts.
        has_dispersion: whether the family has a dispersion parameter (modelled by ``disp=``).
        disp_scale: what ``disp_eta`` is, e.g. "log(theta)"; used in summaries.
        disp_dimensionless: the dispersion parameter has no units (NB's theta, beta's phi,
            Gamma's shape; not a standard deviation), so a dispersion predictor beyond
            +-12 is the family's limit (NB2 with theta -> infinity is the Poisson), not a
            matter of the response's scale (fit/_asymptote.py).
        n_extra: number of extra unconstrained parameters (0 for most families).
        extra_names: their names, e.g. ("log(df)",).
        discrete: whether the response is a count (True) or continuous.
        canonical_link: name of the family's canonical link (None when the family has no
            canonical link among its links, as for nbinom2, nbinom1, beta and t); see
            ``canonical``.
        glm_start: whether a fit starts from the GLM without random effects (fitted inside
            the same compiled call) or directly from ``initial_mu``'s least-squares start.
            The GLM start saves iterations of the mixed model where the GLM is cheap; a
            family whose log-likelihood is a series (tweedie, compois) pays nearly a mixed
            model's price for each GLM iteration, and there it cost more than it saved.
        trials: the response is successes out of trials (binomial, betabinomial): given as
            cbind(s, f), 0/1, or proportions with weights (design/_response.py).
        allows_zi: a continuous family that takes a zero-inflation formula (ziGamma,
            tweedie); count families always do.
        zeros_need_zi: the family gives y = 0 probability 0 (zero-truncated families,
            ziGamma): zeros need a zero-inflation (hurdle) formula, and that formula is then
            fitted from the zeros alone, apart from the conditional model.
    """

    link: Link = None
    name: ClassVar[str] = "family"
    default_link: ClassVar[str] = "identity"
    allowed_links: ClassVar[tuple] = ()
    has_dispersion: ClassVar[bool] = False
    disp_scale: ClassVar[str] = ""
    disp_dimensionless: ClassVar[bool] = False
    n_extra: ClassVar[int] = 0
    extra_names: ClassVar[tuple] = ()
    discrete: ClassVar[bool] = False
    canonical_link: ClassVar = None
    glm_start: ClassVar[bool] = True
    trials: ClassVar[bool] = False
    allows_zi: ClassVar[bool] = False
    zeros_need_zi: ClassVar[bool] = False

    def __post_init__(self):
        link = get_link(self.default_link if self.link is None else self.link)
        if self.allowed_links and link.name not in self.allowed_links:
            raise ValueError(
                f"The {self.name} family does not take the {link.name!r} link; "
                f"use one of {list(self.allowed_links)}"
            )
        object.__setattr__(self, "link", link)

    @property
    def profiles_lmm(self) -> bool:
        """Whether a mixed model of this family is an LMM fitted by the exact profiled
        deviance with beta and sigma profiled out (lme4's lmer; REML available): the
        Gaussian family with the identity link."""
        return False

    @property
    def canonical(self) -> bool:
        """Whether the link is the family's canonical link. The Laplace engine relies on it:
        with a canonical link (and no zero-inflation) -d^2 log p / d eta^2 >= 0, so the
        conditional-mode search forms only the exact Hessian. A user-defined family should
        set ``canonical_link`` only if that holds (an exponential family with its natural
        parameter as the link)."""
        return self.canonical_link is not None and self.link.name == self.canonical_link

    # -- the model ---------------------------------------------------------------------
    def loglik(self, y, eta, disp_eta, extra, size):
        """Per-observation log density (or mass) of ``y`` given ``eta`` (shape (n,)).

        A family defines either ``loglik`` or the pair ``loglik_eta`` and ``loglik_rest``;
        the default here is their sum.
        """
        if type(self).loglik_eta is Family.loglik_eta:
            raise NotImplementedError(f"{type(self).__name__} defines neither loglik nor loglik_eta")
        ll = self.loglik_eta(y, eta, disp_eta, extra, size)
        rest = self.loglik_rest(y, disp_eta, extra, size)
        return ll if rest is None else ll + rest

    def loglik_eta(self, y, eta, disp_eta, extra, size):
        """The terms of ``loglik`` that depend on ``eta`` (default: all of it).

        With ``loglik_rest``, loglik = loglik_eta + loglik_rest. The search for the
        conditional modes (many evaluations per objective) uses loglik_eta alone, and the
        Laplace objective adds loglik_rest once: a family whose log-density has terms free
        of eta (log y!, log choose(n, y), tweedie's series) defines these two instead of
        ``loglik``.
        """
        return self.loglik(y, eta, disp_eta, extra, size)

    def loglik_rest(self, y, disp_eta, extra, size):
        """loglik - loglik_eta (free of eta), or None when loglik_eta is all of loglik.

        It must be 0 where y = 0, so that zero-inflation (which mixes the density at 0
        with the structural zero) sees the whole density there.
        """
        return None

    def mean(self, eta, disp_eta=None, extra=None, size=None):
        """Conditional mean of y (for binomial: of the proportion y/size)."""
        return self.link.linkinv(eta)

    def variance(self, mu, disp_eta, extra, size=None):
        """Conditional variance of y given mean ``mu`` (binomial: of y/size)."""
        raise NotImplementedError

    def sample(self, key, eta, disp_eta, extra, size):
        """Draw y given ``eta`` (an array of the same shape), using ``jax.random`` key ``key``."""
        raise NotImplementedError

    # -- set-up (host side, numpy) -----------------------------------------------------
    def check_response(self, y, size=None):
        """Raise ValueError naming the problem if ``y`` is outside the family's support."""
        y = np.asarray(y, dtype=float)
        if not np.all(np.isfinite(y)):
            raise ValueError(f"The response has non-finite values (NaN or inf); "
                             f"the {self.name} family needs finite values")

    def initial_mu(self, y, size=None):
        """A starting mean for the GLM fit (host side)."""
        y = np.asarray(y, dtype=float)
        return np.full_like(y, np.mean(y))

    def initial_disp(self, y, mu, size=None) -> float:
        """A starting value of ``disp_eta`` (host side), given data and fitted means."""
        return 0.0

    def initial_extra(self, y, mu, size=None) -> np.ndarray:
        return np.zeros(self.n_extra)

    def dispersion_parameters(self, disp_eta, extra) -> dict:
        """Named dispersion parameters on their natural scale, as R reports them.

        For example {"theta": 0.54} for nbinom2 or {"sigma": 0.3, "df": 5.1} for t.
        """
        return {}

    def __repr__(self):
        return f"{type(self).__name__}(link={self.link.name!r})"


@dataclass(frozen=True, repr=False)
class CountFamily(Family):
    """Shared set-up of the count families (poisson, nbinom1, nbinom2): non-negative
    integer responses, starting means y + 0.1."""

    discrete: ClassVar[bool] = True

    def check_response(self, y, size=None):
        check_counts(y, self.name)

    def initial_mu(self, y, size=None):
        return np.asarray(y, dtype=float) + 0.1
