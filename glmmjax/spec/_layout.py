"""The static layout of a model's random effects: how many levels and columns each block
has, and which structural shortcuts the factorization may take (laplace/_blocked.py).

``is_nested`` and ``is_rowwise`` decide the flags from the grouping codes when the model is
built (host checks).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["BlockLayout", "is_nested", "is_rowwise"]


@dataclass(frozen=True)
class BlockLayout:
    """Static sizes: levels and columns per block, block 0 first."""

    nlevels: tuple
    ks: tuple
    nested: bool = False   # two blocks, block 0's levels nested in block 1's (laplace/_blocked.py)
    targets: tuple = ()    # the linear predictor each block enters (0 conditional, 1 zero-inflation); () all 0
    rowwise: bool = False  # block 0 has one level per observation in row order (codes[0] == 0..n-1)

    def target(self, b: int) -> int:
        return self.targets[b] if self.targets else 0

    @property
    def npred(self) -> int:
        """Number of linear predictors carrying random effects (1, or 2 with zero-inflation terms)."""
        return 2 if any(self.targets) else 1

    @property
    def nblocks(self) -> int:
        return len(self.nlevels)

    @property
    def offsets(self) -> tuple:
        """Start of each block b > 0 in the dense part (block 0 gets -1)."""
        out, off = [-1], 0
        for m, k in zip(self.nlevels[1:], self.ks[1:]):
            out.append(off)
            off += m * k
        return tuple(out)

    @property
    def q2(self) -> int:
        return int(sum(m * k for m, k in zip(self.nlevels[1:], self.ks[1:])))

    @property
    def q(self) -> int:
        return int(sum(m * k for m, k in zip(self.nlevels, self.ks)))


def is_rowwise(codes0, n: int) -> bool:
    """Whether a block's codes are 0, 1, ..., n-1: one level per observation, in row order
    (an observation-level random effect such as grouseticks' (1|INDEX)), so that its sums
    over levels are the rows themselves (host check; ``BlockLayout.rowwise``)."""
    codes0 = np.asarray(codes0)
    return codes0.shape == (n,) and bool(np.array_equal(codes0, np.arange(n)))


def is_nested(codes0, codes1) -> bool:
    """Whether every level of the first factor occurs with a single level of the second (host check)."""
    codes0, codes1 = np.asarray(codes0), np.asarray(codes1)
    if codes0.size == 0:
        return False
    first = np.full(int(codes0.max()) + 1, -1)
    first[codes0[::-1]] = codes1[::-1]      # the level of block 1 at each level's first observation
    return bool(np.all(first[codes0] == codes1))
