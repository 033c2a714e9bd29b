"""Gamma family whose exact zeros come from a zero-inflation model (glmmTMB's ``ziGamma``).

The conditional density is the Gamma family's (:mod:`._gamma`: mean mu, shape k,
``disp_eta = log(k)``), which gives y = 0 probability 0: ``loglik`` returns -inf there, with
finite gradients. With ``zi=`` (logit-linear p), as in glmmTMB,

    P(y = 0) = p,      p(y) = (1 - p) Gamma(y | mu, k)   for y > 0,

a two-part (hurdle) model: the zero-inflation wrapper's log P(0) = logaddexp(log p, -inf) is
exactly log p, and the mean response is (1 - p) mu. Without ``zi=`` the model is the Gamma
family, and a zero in the response is a ValueError when the model is built
(``zeros_need_zi``). The response must be >= 0. As glmmTMB's ``ziGamma``, the family reports
itself as "Gamma" (summaries, dispersion); links: inverse (default), log, identity.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
import numpy as np

from ._checks import check_finite
from ._gamma import Gamma

__all__ = ["ZiGamma"]


@dataclass(frozen=True, repr=False)
class ZiGamma(Gamma):
    #: zi= is allowed although the family is continuous
    allows_zi: ClassVar[bool] = True
    #: zeros are only possible through zi=
    zeros_need_zi: ClassVar[bool] = True

    def loglik(self, y, eta, disp_eta, extra, size):
        pos = y > 0
        ll = super().loglik(jnp.where(pos, y, 1.0), eta, disp_eta, extra, size)
        return jnp.where(pos, ll, -jnp.inf)

    def check_response(self, y, size=None):
        y = check_finite(y, "ziGamma")
        if np.any(y < 0):
            raise ValueError(f"The ziGamma family needs a non-negative response; the response has "
                             f"{int(np.sum(y < 0))} negative value(s)")

    def initial_mu(self, y, size=None):
        # zeros belong to the zero-inflation part: start them at the mean of the positive values
        y = np.asarray(y, dtype=float)
        pos = y > 0
        fill = float(np.mean(y[pos])) if np.any(pos) else 1.0
        return np.where(pos, y, fill)

    def initial_disp(self, y, mu, size=None) -> float:
        y = np.asarray(y, dtype=float)
        mu = np.broadcast_to(np.asarray(mu, dtype=float), y.shape)
        pos = y > 0
        return super().initial_disp(y[pos], mu[pos]) if np.any(pos) else 0.0
