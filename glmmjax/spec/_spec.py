"""A model as the compiler sees it: a static spec (structure) and a pytree of arrays (data).

Everything the compiler must know — the family, block sizes, covariance structures, the
numbers of parameters — lives in the hashable :class:`ModelSpec`; y, X, codes, Z, weights
and offsets live in :class:`ModelData`, passed as arguments (never closed over), so a new
dataset of the same shape reuses the compiled code.

The outer parameters are one flat vector, in this order:

    beta (p) | theta (sum of the blocks' n_theta) | betad (pd) | betazi (pz) | extra (n_extra)

For a profiled LMM (gaussian, identity link, no dispersion formula) beta and sigma are
profiled out and the vector is theta alone, relative to sigma as lme4's.

ModelData and Params are frozen dataclasses registered as pytrees with
``jax.tree_util.register_dataclass``: jax's own mechanism, which spares every process the
import of equinox, a noticeable part of a fresh process's start (benchmarks/README.md).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial

import jax

from ..families import Family
from ._layout import BlockLayout

__all__ = ["ModelSpec", "ModelData", "Params", "to_internal", "cholesky_factors", "scaled_z"]


@dataclass(frozen=True)
class ModelSpec:
    """Static structure of a model.

    Attributes:
        family: the Family (hashable).
        layout: random-effect block sizes, largest block first.
        covs: one CovStructure per block, in layout order.
        p: number of fixed effects.
        pd: number of dispersion-model coefficients (0 for families without dispersion
            and for profiled LMMs).
        profiled: True for the exact LMM path (theta only; beta, sigma profiled out).
        reml: REML (profiled LMMs only).
        pz: number of zero-inflation coefficients (0: no zero-inflation).
    """

    family: Family
    layout: BlockLayout
    covs: tuple
    p: int
    pd: int
    profiled: bool = False
    reml: bool = False
    pz: int = 0

    @property
    def nblocks(self) -> int:
        return len(self.covs)

    @property
    def n_theta(self) -> int:
        return int(sum(c.n_theta for c in self.covs))

    @property
    def n_extra(self) -> int:
        return 0 if self.profiled else self.family.n_extra

    @property
    def n_params(self) -> int:
        if self.profiled:
            return self.n_theta
        return self.p + self.n_theta + self.pd + self.pz + self.n_extra

    def slices(self) -> dict:
        """Where each parameter group sits in the flat vector."""
        if self.profiled:
            empty = slice(0, 0)
            return {"beta": empty, "theta": slice(0, self.n_theta), "betad": empty, "betazi": empty, "extra": empty}
        a = self.p
        b = a + self.n_theta
        c = b + self.pd
        d = c + self.pz
        return {"beta": slice(0, a), "theta": slice(a, b), "betad": slice(b, c), "betazi": slice(c, d),
                "extra": slice(d, d + self.n_extra)}

    def variance_coordinates(self) -> tuple:
        """Positions in the flat vector of the Cholesky factors' diagonal entries.

        The objective is even in each of them (flipping the sign of a column of L leaves
        L L' unchanged), so at 0 its gradient is exactly 0: the optimizer must check these
        points rather than read the zero gradient as convergence (fit/_lbfgs.py)."""
        off = self.slices()["theta"].start
        idx = []
        for c in self.covs:
            idx += [off + i for i in c.diagonal_index()]
            off += c.n_theta
        return tuple(idx)

    def without_random(self, zi: bool = True) -> "ModelSpec":
        """The same model with no random effects (the GLM used for starting values), and
        without its zero-inflation model when ``zi`` is False."""
        return ModelSpec(self.family, BlockLayout((), ()), (), self.p, self.pd, False, False, self.pz if zi else 0)


@partial(jax.tree_util.register_dataclass, data_fields=["beta", "thetas", "betad", "betazi", "extra"], meta_fields=[])
@dataclass(frozen=True, eq=False)
class Params:
    """The flat parameter vector split into its groups."""

    beta: jax.Array
    thetas: tuple
    betad: jax.Array
    betazi: jax.Array
    extra: jax.Array

    @staticmethod
    def unpack(spec: ModelSpec, x) -> "Params":
        s = spec.slices()
        th = x[s["theta"]]
        thetas, off = [], 0
        for c in spec.covs:
            thetas.append(th[off: off + c.n_theta])
            off += c.n_theta
        return Params(x[s["beta"]], tuple(thetas), x[s["betad"]], x[s["betazi"]], x[s["extra"]])


@partial(jax.tree_util.register_dataclass,
         data_fields=["y", "size", "X", "offset", "weights", "Xd", "Xzi", "codes", "Z"], meta_fields=[])
@dataclass(frozen=True, eq=False)
class ModelData:
    """The arrays of a model (all traced).

    Attributes:
        y: (n,) response (binomial: successes).
        size: (n,) binomial trials (ones for other families).
        X: (n, p) fixed-effects matrix.
        offset: (n,) offset.
        weights: (n,) prior weights.
        Xd: (n, pd) dispersion-model matrix.
        Xzi: (n, pz) zero-inflation-model matrix.
        codes: tuple of (n,) int32 level codes, one per block (layout order).
        Z: tuple of (n, k_b) random-effect model matrices, one per block.
    """

    y: jax.Array
    size: jax.Array
    X: jax.Array
    offset: jax.Array
    weights: jax.Array
    Xd: jax.Array
    Xzi: jax.Array
    codes: tuple
    Z: tuple

    def with_response(self, y) -> "ModelData":
        return replace(self, y=y)


def cholesky_factors(spec: ModelSpec, thetas) -> tuple:
    return tuple(c.cholesky(t) for c, t in zip(spec.covs, thetas))


def scaled_z(data: ModelData, Ls) -> tuple:
    """Rows of Z_b L_b for each block: (n, k_b)."""
    return tuple(Z @ L for Z, L in zip(data.Z, Ls))


def to_internal(spec: ModelSpec, Tinvs, x):
    """x with beta and betad mapped to the optimizer's coordinates, beta~ = T^{-1} beta and
    betad~ = Td^{-1} betad (``GLMM.to_internal`` inside a traced function); ``Tinvs`` is
    ``GLMM.inverse_transforms()``."""
    s = spec.slices()
    Tb, Td = Tinvs
    x = x.at[s["beta"]].set(Tb @ x[s["beta"]])
    return x.at[s["betad"]].set(Td @ x[s["betad"]])
