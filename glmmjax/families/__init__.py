"""Response families for glmmjax (names and parameterizations follow glmmTMB 1.1.5).

Each family is a frozen dataclass (hashable, usable as a static jit argument) holding its
link; see :mod:`glmmjax.families._base` for the interface. ``get_family`` turns a name
("poisson", "nbinom2", "Gamma", ...) or an instance into a Family.
"""
from __future__ import annotations

import dataclasses

from ._base import Family
from ._beta import Beta
from ._betabinomial import BetaBinomial
from ._binomial import Binomial
from ._compois import ConwayMaxwellPoisson
from ._gamma import Gamma
from ._gaussian import Gaussian
from ._genpois import GeneralizedPoisson
from ._links import Link, get_link
from ._lognormal import Lognormal
from ._nbinom1 import NegativeBinomial1
from ._nbinom2 import NBinom2, NegativeBinomial2
from ._poisson import Poisson
from ._student_t import StudentT
from ._truncated import TruncatedNBinom1, TruncatedNBinom2, TruncatedPoisson
from ._tweedie import Tweedie
from ._zero_inflation import zero_inflated_loglik as zero_inflated_loglik
from ._zigamma import ZiGamma

__all__ = [
    "Family",
    "Gaussian",
    "Binomial",
    "Poisson",
    "NegativeBinomial2",
    "NBinom2",
    "NegativeBinomial1",
    "Gamma",
    "Beta",
    "StudentT",
    "TruncatedPoisson",
    "TruncatedNBinom1",
    "TruncatedNBinom2",
    "Lognormal",
    "ZiGamma",
    "BetaBinomial",
    "GeneralizedPoisson",
    "ConwayMaxwellPoisson",
    "Tweedie",
    "Link",
    "get_link",
    "get_family",
    "FAMILIES",
]

# internal seams: used by other glmmjax packages, not part of the public API
__internal__ = ["zero_inflated_loglik"]

#: glmmTMB family names (and a few aliases) -> family class
FAMILIES = {
    "gaussian": Gaussian,
    "binomial": Binomial,
    "poisson": Poisson,
    "nbinom2": NegativeBinomial2,
    "nbinom1": NegativeBinomial1,
    "Gamma": Gamma,
    "gamma": Gamma,
    "beta": Beta,
    "beta_family": Beta,
    "t": StudentT,
    "truncated_poisson": TruncatedPoisson,
    "truncated_nbinom1": TruncatedNBinom1,
    "truncated_nbinom2": TruncatedNBinom2,
    "lognormal": Lognormal,
    "ziGamma": ZiGamma,
    "zigamma": ZiGamma,
    "betabinomial": BetaBinomial,
    "genpois": GeneralizedPoisson,
    "compois": ConwayMaxwellPoisson,
    "tweedie": Tweedie,
}


def get_family(family, link=None) -> Family:
    """Return a Family instance.

    ``family`` is a glmmTMB family name (a key of ``FAMILIES``: "gaussian", "binomial",
    "poisson", "nbinom2", "Gamma"/"gamma", "tweedie", ...) or a Family instance. ``link``
    (a name or Link instance) overrides the default link, or the instance's link.
    """
    if isinstance(family, Family):
        if link is None:
            return family
        return dataclasses.replace(family, link=get_link(link))
    if isinstance(family, type) and issubclass(family, Family):
        raise TypeError(
            f"Expected a Family instance ({family.__name__}()), got the class {family.__name__}"
        )
    if isinstance(family, str):
        cls = FAMILIES.get(family)
        if cls is None:
            cls = FAMILIES.get(family.strip().lower())
        if cls is None:
            raise ValueError(
                f"Unknown family {family!r}; known families are {sorted(set(FAMILIES), key=str.lower)}"
            )
        return cls(link=link)
    raise TypeError(
        f"family must be a family name such as 'poisson' or a Family instance such as Poisson(); "
        f"got {type(family).__name__} {family!r}"
    )
