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

The rest of glmmjax uses a structure only through its methods: ``n_theta``, ``k``,
``theta_names``, ``cholesky`` (theta -> L), ``initial``, ``theta_from_factor`` (L -> theta),
``theta_position``, ``diagonal_index`` and ``is_singular`` (the variance parameters, which
sit on L's diagonal), ``column_signs``, ``variance_patterns`` (the entries of Sigma its
parameters move, for Kenward-Roger) and ``str()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

__all__ = ["CovStructure", "cov_structure", "combine", "full_factor"]

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

    def theta_from_factor(self, L):
        """theta from a lower-triangular L of this structure (numpy or JAX; each theta entry
        read at the first position it fills)."""
        first = [self.index.index(t) for t in range(self.n_theta)]
        return L[np.asarray(self.rows)[first], np.asarray(self.cols)[first]]

    def theta_position(self, r: int, c: int) -> int:
        """The theta entry at L[r, c] (ValueError if that position is not a parameter)."""
        for rr, cc, t in zip(self.rows, self.cols, self.index):
            if rr == r and cc == c:
                return int(t)
        raise ValueError(f"no covariance parameter at ({r}, {c})")

    def diagonal_index(self) -> tuple:
        """Positions in theta of L's diagonal entries: the objective is even in each, and an
        entry at 0 is a variance at 0 (a singular fit)."""
        return tuple(self.diag_theta)

    def is_singular(self, theta, scale: float = 1.0, tol: float = 1e-4) -> bool:
        """lme4's isSingular: some diagonal entry of L, relative to ``scale``, below ``tol``."""
        th = np.asarray(theta, float)
        return bool(self.diag_theta) and min(abs(th[i]) / scale for i in self.diag_theta) < tol

    def column_signs(self, theta) -> np.ndarray:
        """Per theta entry the sign of its column's diagonal in L (the likelihood is unchanged
        by flipping a column's sign, so these flips give the factor with a positive diagonal)."""
        L = np.asarray(self.cholesky(np.asarray(theta, float)), float)
        first = [self.index.index(t) for t in range(self.n_theta)]
        return np.array([1.0 if L[self.cols[q], self.cols[q]] >= 0 else -1.0 for q in first])

    def variance_patterns(self) -> list:
        """The linear pattern of Sigma = L L' for Kenward-Roger: one symmetric 0/1 matrix E per
        free entry of Sigma (its lower triangle where L's structure lets it vary, pbkrtest's
        VarCorr entries). A structure whose parameters are shared between entries has no such
        linear pattern: ValueError."""
        if len(set(self.index)) != len(self.index):
            raise ValueError("a structure that shares a variance between columns has no linear pattern")
        mask = np.zeros((self.k, self.k))
        mask[list(self.rows), list(self.cols)] = 1.0
        pattern = (mask @ mask.T) > 0
        out = []
        for j in range(self.k):
            for i in range(j, self.k):
                if pattern[i, j]:
                    E = np.zeros((self.k, self.k))
                    E[i, j] = E[j, i] = 1.0
                    out.append(E)
        return out

    def __str__(self) -> str:
        cols = [str(i) for i in range(self.k)]
        names = ", ".join(self.theta_names(cols))
        return f"{self.k} x {self.k} Cholesky factor with {self.n_theta} parameters: {names}"

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


def full_factor(k: int) -> CovStructure:
    """All k x k entries of a (not necessarily triangular) factor F, row by row: Sigma = F F'.
    The profiler's coordinates, in which a permuted factor P'L keeps a variance or a
    correlation in one slot (inference/_profile.py)."""
    r, c = np.divmod(np.arange(k * k), k)
    return CovStructure(k, tuple(int(x) for x in r), tuple(int(x) for x in c), tuple(range(k * k)), k * k,
                        tuple(int(i * k + i) for i in range(k)))


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
