"""Random-effect covariance structures, parameterized by Cholesky factors.

A random-effect term with k columns has covariance Sigma = L L' (relative to the residual
variance for LMMs, as lme4's Lambda). theta holds the free entries of L:

    "us"      unstructured: the lower triangle of L, column by column (lme4's theta order)
    "diag"    diagonal (lme4's ``||``): L = diag(theta)
    "scalar"  one SD shared by all k columns: L = theta * I

The diagonal of L is left unconstrained: the likelihood is symmetric in the sign of each
column of L, so an SD of exactly 0 (a singular fit) is an interior point the optimizer
reaches cleanly instead of crawling towards log(0). SDs are reported as |L_ii|-based
quantities through Sigma = L L'.

Terms that share a grouping factor (``(1|g) + (0+x|g)``) are merged into one *block* whose
L is block diagonal; a block is described by the positions of its theta entries in L.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

__all__ = ["CovStructure", "cov_structure"]

_KINDS = ("us", "diag", "scalar")


@dataclass(frozen=True)
class CovStructure:
    """Where theta's entries go in a k x k lower-triangular Cholesky factor L.

    Attributes:
        k: number of columns of the block.
        rows, cols: positions of each theta entry in L (a theta entry may fill several
            positions, as the shared SD of "scalar").
        index: which theta entry fills each (rows[i], cols[i]).
        n_theta: number of free parameters.
        diag_theta: indices of theta entries that sit on the diagonal (start at 1).
    """

    k: int
    rows: tuple
    cols: tuple
    index: tuple
    n_theta: int
    diag_theta: tuple

    def cholesky(self, theta):
        """L (k x k) from theta (n_theta,)."""
        L = jnp.zeros((self.k, self.k), dtype=theta.dtype)
        return L.at[np.asarray(self.rows, dtype=np.int32), np.asarray(self.cols, dtype=np.int32)].set(
            theta[np.asarray(self.index, dtype=np.int32)]
        )

    def initial(self) -> np.ndarray:
        """lme4's start: 1 on the diagonal, 0 off it."""
        th = np.zeros(self.n_theta)
        th[list(self.diag_theta)] = 1.0
        return th

    def theta_names(self, columns) -> list:
        """Names like "L[Days,(Intercept)]" for each theta entry (first position it fills)."""
        seen, names = set(), [None] * self.n_theta
        for r, c, i in zip(self.rows, self.cols, self.index):
            if i not in seen:
                seen.add(i)
                names[i] = f"L[{columns[r]},{columns[c]}]"
        return names


def cov_structure(kind: str, k: int) -> CovStructure:
    """The structure of one term with k columns."""
    if kind not in _KINDS:
        raise ValueError(f"Unknown covariance structure {kind!r}; choose one of {_KINDS}")
    if kind == "us":
        c, r = np.triu_indices(k)  # column-wise lower triangle: (0,0),(1,0),...,(1,1),...
        index = tuple(range(len(r)))
        diag = tuple(i for i, (a, b) in enumerate(zip(r, c)) if a == b)
        return CovStructure(k, tuple(int(x) for x in r), tuple(int(x) for x in c), index, len(r), diag)
    if kind == "diag":
        return CovStructure(k, tuple(range(k)), tuple(range(k)), tuple(range(k)), k, tuple(range(k)))
    return CovStructure(k, tuple(range(k)), tuple(range(k)), (0,) * k, 1, (0,))


def combine(structures) -> CovStructure:
    """Block-diagonal combination of several structures (terms on one grouping factor)."""
    rows, cols, index, diag = [], [], [], []
    off_k = off_t = 0
    for s in structures:
        rows += [r + off_k for r in s.rows]
        cols += [c + off_k for c in s.cols]
        index += [i + off_t for i in s.index]
        diag += [d + off_t for d in s.diag_theta]
        off_k += s.k
        off_t += s.n_theta
    return CovStructure(off_k, tuple(rows), tuple(cols), tuple(index), off_t, tuple(diag))
