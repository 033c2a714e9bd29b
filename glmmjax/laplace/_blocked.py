"""Structure-aware Cholesky of H = Lambda' Z' W Z Lambda + I.

The random effects come in blocks, one per grouping factor; block b has m_b levels with
k_b coefficients each, so u_b has shape (m_b, k_b). Z is never formed: block b is its
integer codes (n,) and the rows of Z_b L_b, written ``Zl_b`` (n, k_b).

Block 0 (the largest; the caller orders blocks) is block diagonal in H: one k0 x k0 matrix
per level, an (m0, k0, k0) array factorized by one batched Cholesky. The other blocks are
gathered into a dense part of size q2 = sum_{b>0} m_b k_b. With

    H = [[A, B], [B', C]],   A = blockdiag(A_j),   L_A L_A' = A,   M = L_A^{-1} B,
    S = C - M' M = L_S L_S'  (the Schur complement),

the lower Cholesky factor of H is [[L_A, 0], [M', L_S]] and log det H = 2 sum log diag L_A
+ 2 sum log diag L_S. Everything is linear in n (scatter-adds over observations); the dense
part costs O(m0 k0 q2^2 + q2^3), so the design keeps the largest factor in block 0
(MixedModels.jl's blocked Cholesky with a UniformBlockDiagonal leading block).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from . import _smallk

__all__ = ["BlockLayout", "Factor", "factorize", "solve_lower", "solve_upper", "solve", "logdet"]


@dataclass(frozen=True)
class BlockLayout:
    """Static sizes: levels and columns per block, block 0 first."""

    nlevels: tuple
    ks: tuple

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


class Factor(NamedTuple):
    LA: jax.Array          # (m0, k0, k0) lower Cholesky factors of the diagonal blocks
    M: jax.Array           # (m0, k0, q2) L_A^{-1} B
    LS: jax.Array          # (q2, q2) lower Cholesky factor of the Schur complement


def _dense_cols(layout: BlockLayout, b: int, codes):
    """(n, k_b) positions in the dense part of each observation's coefficients of block b."""
    k = layout.ks[b]
    return layout.offsets[b] + codes[:, None] * k + jnp.arange(k, dtype=codes.dtype)[None, :]


def factorize(layout: BlockLayout, Zl, codes, w) -> Factor:
    """Factor H = sum_i w_i (Lambda'z_i)(Lambda'z_i)' + I.

    Arguments:
        layout: static block sizes.
        Zl: tuple of (n, k_b) arrays, the rows of Z_b L_b.
        codes: tuple of (n,) int arrays, level of each observation in each block.
        w: (n,) weights (the diagonal of W).
    """
    m0, k0 = layout.nlevels[0], layout.ks[0]
    z0 = Zl[0]
    dtype = z0.dtype
    A = jax.ops.segment_sum(w[:, None, None] * z0[:, :, None] * z0[:, None, :], codes[0], num_segments=m0)
    A = A + jnp.eye(k0, dtype=dtype)
    LA = _smallk.cholesky(A)
    q2 = layout.q2
    if q2 == 0:
        return Factor(LA, jnp.zeros((m0, k0, 0), dtype), jnp.zeros((0, 0), dtype))
    B = jnp.zeros((m0, k0, q2), dtype)
    C = jnp.eye(q2, dtype=dtype)
    kidx = jnp.arange(k0)
    cols = [None] + [_dense_cols(layout, b, codes[b]) for b in range(1, layout.nblocks)]
    for b in range(1, layout.nblocks):
        vals = w[:, None, None] * z0[:, :, None] * Zl[b][:, None, :]
        B = B.at[codes[0][:, None, None], kidx[None, :, None], cols[b][:, None, :]].add(vals)
        for c in range(1, layout.nblocks):
            vals = w[:, None, None] * Zl[b][:, :, None] * Zl[c][:, None, :]
            C = C.at[cols[b][:, :, None], cols[c][:, None, :]].add(vals)
    M = _smallk.solve_lower(LA, B)
    S = C - jnp.einsum("mkq,mkr->qr", M, M)
    LS = jnp.linalg.cholesky(S)
    return Factor(LA, M, LS)


def logdet(F: Factor):
    """log det H."""
    d = 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.LA, axis1=-2, axis2=-1)))
    if F.LS.shape[0]:
        d = d + 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.LS)))
    return d


def _split(layout: BlockLayout, r):
    """Tuple of per-block arrays (m_b, k_b, ...) -> (r0, r2) with r2 (q2, ...) dense."""
    r0 = r[0]
    if layout.nblocks == 1:
        return r0, None
    tail = r0.shape[2:]
    r2 = jnp.concatenate([rb.reshape((-1,) + tail) for rb in r[1:]], axis=0)
    return r0, r2


def _join(layout: BlockLayout, r0, r2):
    if layout.nblocks == 1:
        return (r0,)
    tail = r0.shape[2:]
    out, off = [r0], 0
    for m, k in zip(layout.nlevels[1:], layout.ks[1:]):
        out.append(r2[off: off + m * k].reshape((m, k) + tail))
        off += m * k
    return tuple(out)


def _tri(L, b, lower_solve: bool):
    """Solve L x = b (lower_solve) or L' x = b, batched over a leading axis, b (m, k, ...)."""
    return _smallk.solve_lower(L, b) if lower_solve else _smallk.solve_upper(L, b)


def solve_lower(layout: BlockLayout, F: Factor, r):
    """L^{-1} r for per-block right-hand sides r (tuple of (m_b, k_b, ...))."""
    r0, r2 = _split(layout, r)
    y0 = _tri(F.LA, r0, True)
    if r2 is None:
        return (y0,)
    t = r2 - jnp.einsum("mkq,mk...->q...", F.M, y0)
    y2 = jax.scipy.linalg.solve_triangular(F.LS, t, lower=True)
    return _join(layout, y0, y2)


def solve_upper(layout: BlockLayout, F: Factor, y):
    """L^{-T} y, the inverse of solve_lower's transpose."""
    y0, y2 = _split(layout, y)
    if y2 is None:
        return (_tri(F.LA, y0, False),)
    x2 = jax.scipy.linalg.solve_triangular(F.LS, y2, lower=True, trans="T")
    x0 = _tri(F.LA, y0 - jnp.einsum("mkq,q...->mk...", F.M, x2), False)
    return _join(layout, x0, x2)


def solve(layout: BlockLayout, F: Factor, r):
    """H^{-1} r."""
    return solve_upper(layout, F, solve_lower(layout, F, r))


def inverse_diag_blocks(layout: BlockLayout, F: Factor):
    """The k_b x k_b diagonal blocks of H^{-1}, per block: tuple of (m_b, k_b, k_b).

    Used for conditional variances of the random effects. Block 0's come from
    A_j^{-1} + N_j S^{-1} N_j' with N_j = L_A_j^{-T} M_j; the dense part's from S^{-1}.
    """
    m0, k0 = layout.nlevels[0], layout.ks[0]
    eye = jnp.broadcast_to(jnp.eye(k0, dtype=F.LA.dtype), (m0, k0, k0))
    LAinv = _smallk.solve_lower(F.LA, eye)
    Ainv = jnp.einsum("mik,mil->mkl", LAinv, LAinv)
    if layout.nblocks == 1:
        return (Ainv,)
    N = _smallk.solve_upper(F.LA, F.M)
    P = jax.scipy.linalg.solve_triangular(F.LS, jnp.swapaxes(N, 1, 2), lower=True)  # (m0, q2, k0)
    out = [Ainv + jnp.einsum("mqk,mql->mkl", P, P)]
    LSinv = jax.scipy.linalg.solve_triangular(F.LS, jnp.eye(F.LS.shape[0], dtype=F.LS.dtype), lower=True)
    Sinv = LSinv.T @ LSinv
    off = 0
    for m, k in zip(layout.nlevels[1:], layout.ks[1:]):
        idx = off + np.arange(m * k).reshape(m, k)
        out.append(Sinv[idx[:, :, None], idx[:, None, :]])
        off += m * k
    return tuple(out)
