"""Random-effect blocks: the terms of one grouping factor merged, as lme4 merges them.

A formula's random-effect terms (``RandomTerm``, one per ``(lhs | group)`` after expanding
``/``) that share a grouping factor become one ``Block``, whose covariance is the
block-diagonal combination of the terms' structures (``(1|g) + (0+x|g)``: two 1 x 1
structures in a 2 x 2 block). Blocks are ordered largest first: block 0 is the
block-diagonal part of the factorization (laplace/_blocked.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..covariance import combine, cov_structure

__all__ = ["Block", "make_blocks", "order_blocks"]


@dataclass(frozen=True, eq=False)
class Block:
    """The random-effect terms on one grouping factor, merged (lme4 merges them too).

    Attributes:
        group: grouping factor name ("Subject", "student:school").
        levels: level labels.
        codes: (n,) level of each row.
        Z: (n, k) model matrix (the terms' columns side by side).
        columns: the k column names.
        parts: per original term, (first column, number of columns, cov kind).
        cov: the merged CovStructure.
        component: "cond" (conditional model) or "zi" (zero-inflation model).
    """

    group: str
    levels: tuple
    codes: np.ndarray
    Z: np.ndarray
    columns: tuple
    parts: tuple
    cov: object
    component: str = "cond"

    @property
    def label(self) -> str:
        """The group, prefixed by "zi|" for a zero-inflation block (parameter names, messages)."""
        return self.group if self.component == "cond" else f"zi|{self.group}"

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def k(self) -> int:
        return self.Z.shape[1]


def make_blocks(terms, component: str = "cond") -> list:
    """One Block per grouping factor of ``terms`` (in order of first appearance)."""
    by_group: dict = {}
    for t in terms:
        by_group.setdefault(t.group, []).append(t)
    blocks = []
    for group, ts in by_group.items():
        parts, off = [], 0
        for t in ts:
            kind = t.cov if t.k > 1 else "us"
            parts.append((off, t.k, kind))
            off += t.k
        cov = combine([cov_structure(kind, k) for _, k, kind in parts])
        blocks.append(Block(group, tuple(ts[0].levels), np.asarray(ts[0].codes, np.int32),
                            np.hstack([np.asarray(t.Z, float) for t in ts]),
                            tuple(c for t in ts for c in t.columns), tuple(parts), cov, component))
    return blocks


def order_blocks(blocks) -> list:
    """The largest block first: it is the block-diagonal part of the factorization (stable)."""
    order = sorted(range(len(blocks)), key=lambda i: -blocks[i].nlevels * blocks[i].k)
    return [blocks[i] for i in order]
