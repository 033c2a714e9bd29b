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

Observation-level form. When block 0's levels hold few observations each (an
observation-level random effect, say), the dense (m0, k0, q2) array M is mostly zeros and
M' M (m0 k0 q2^2 multiply-adds) dominates. B = sum_i w_i z0_i zc_i' (z0_i the k0 entries of
observation i in block 0, zc_i its nb = sum_{b>0} k_b entries in the dense part) is then
kept implicit and applied observation by observation:

    B' v = sum_i w_i zc_i (z0_i' v_{c0(i)}),     (B x)_j = sum_{i in level j} w_i z0_i (zc_i' x),

O(n nb) each, and the Schur complement is assembled row by row,

    S = C - B' A^{-1} B = C - sum_i zc_i r_i',   r_i = B_{c0(i)}' A_{c0(i)}^{-1} w_i z0_i  (q2,),

which needs B only as rows gathered by level: O(n (k0 + nb) q2) instead of O(m0 k0 q2^2).
Solves then use H^{-1} r = (A^{-1}(r0 - B x2), x2) with x2 = S^{-1}(r2 - B' A^{-1} r0).
The choice is static (shapes only), see ``_sparse_schur``.

Nested form. With two blocks where every level of block 0 lies within one level p(j) of
block 1 (an observation-level effect within its group, (1|school/class), genotypes within
populations), B_j has a single non-zero k0 x k1 block, in the columns of p(j). Then
S = C - sum_j M_j' M_j is block diagonal too, S_l = C_l - sum_{p(j)=l} M_j' M_j, so H's
factor is two batched small Cholesky factorizations and nothing is dense: O(n k0 k1 +
m0 k0 k1^2 + m1 k1^3). ``BlockLayout.nested`` (set when the model is built, from the codes)
selects it; p is recovered inside the computation as the segment maximum of block 1's codes
over block 0's levels.

Two linear predictors. With random effects in the zero-inflation model too, each block
enters one predictor (``BlockLayout.targets``: 0 the conditional mean, 1 the zero-inflation
logit) and each observation's weight is the 2 x 2 Hessian W_i of -log p over the two
predictors, so H = I + sum_i G_i' W_i G_i with G_i the (2, q) rows of Z Lambda. Every
product above keeps its form with the weight of the pair of blocks, W_i[t_a, t_b], in place
of w_i; in the observation-level form the weight moves to the right factor of B,
B = sum_i z0_i (W_i[t_0, t_c] zc_i)'. A block's coefficients load on one predictor only, so
the structure (block diagonal, nested, Schur complement) is the same as for one predictor.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..spec import BlockLayout
from . import _smallk

__all__ = ["Factor", "factorize", "logdet_H", "solve_lower", "solve_upper", "solve", "logdet", "sum_levels", "at_rows",
           "inverse_diag_blocks"]


class Factor(NamedTuple):
    LA: jax.Array          # (m0, k0, k0) lower Cholesky factors of the diagonal blocks
    M: jax.Array | None    # (m0, k0, q2) L_A^{-1} B; None in the observation-level form
    LS: jax.Array          # (q2, q2) lower Cholesky factor of the Schur complement
    obs: tuple | None = None  # observation-level form: (z0l (n, k0), zcr (n, nb), rows (n, nb), codes0),
    #                           B = sum z0l zcr'

    parent: jax.Array | None = None  # nested form: (m0,) level of block 1 holding each level of block 0;
    #                                  M is then (m0, k0, k1) and LS (m1, k1, k1)


def sum_levels(layout: BlockLayout, b: int, vals, codes):
    """Sum of per-observation values (n, ...) over block b's levels -> (m_b, ...).

    For a rowwise block 0 the sums are the rows themselves: no scatter-add (nor, in the
    derivative, gather) per Newton iteration.
    """
    if b == 0 and layout.rowwise:
        return vals
    return jax.ops.segment_sum(vals, codes, num_segments=layout.nlevels[b])


def at_rows(layout: BlockLayout, b: int, v, codes):
    """Per-level values of block b (m_b, ...) at each observation's level -> (n, ...)."""
    if b == 0 and layout.rowwise:
        return v
    return v[codes]


def _wpair(layout: BlockLayout, w, a: int, b: int):
    """Weights between blocks a and b: w itself for one predictor, else W[:, t_a, t_b] of (n, T, T)."""
    return w if w.ndim == 1 else w[:, layout.target(a), layout.target(b)]


def _parent(layout: BlockLayout, codes):
    if layout.rowwise:
        return codes[1]
    p = jax.ops.segment_max(codes[1], codes[0], num_segments=layout.nlevels[0])
    return jnp.clip(p, 0, layout.nlevels[1] - 1)   # levels without observations: any parent (their M is 0)


def _assemble_nested(layout: BlockLayout, Zl, codes, w):
    """L_A, the block-diagonal Schur complement S (m1, k1, k1), M (m0, k0, k1) and the parents."""
    (_, m1), (k0, k1) = layout.nlevels, layout.ks
    z0, z1 = Zl
    dtype = z0.dtype
    w00, w01, w11 = (_wpair(layout, w, a, b)[:, None, None] for a, b in ((0, 0), (0, 1), (1, 1)))
    A = sum_levels(layout, 0, w00 * z0[:, :, None] * z0[:, None, :], codes[0])
    LA = _smallk.cholesky(A + jnp.eye(k0, dtype=dtype))
    B = sum_levels(layout, 0, w01 * z0[:, :, None] * z1[:, None, :], codes[0])
    M = _smallk.solve_lower(LA, B)
    parent = _parent(layout, codes)
    C = jax.ops.segment_sum(w11 * z1[:, :, None] * z1[:, None, :], codes[1], num_segments=m1)
    S = C + jnp.eye(k1, dtype=dtype) - jax.ops.segment_sum(jnp.einsum("mkq,mkr->mqr", M, M), parent, num_segments=m1)
    return LA, S, M, parent


def _dense_cols(layout: BlockLayout, b: int, codes):
    """(n, k_b) positions in the dense part of each observation's coefficients of block b."""
    k = layout.ks[b]
    return layout.offsets[b] + codes[:, None] * k + jnp.arange(k, dtype=codes.dtype)[None, :]


def _assemble(layout: BlockLayout, Zl, codes, w):
    """L_A, the Schur complement S, and M (dense form) or the observation data (implicit B)."""
    m0, k0 = layout.nlevels[0], layout.ks[0]
    z0 = Zl[0]
    dtype = z0.dtype
    A = sum_levels(layout, 0, _wpair(layout, w, 0, 0)[:, None, None] * z0[:, :, None] * z0[:, None, :], codes[0])
    LA = _smallk.cholesky(A + jnp.eye(k0, dtype=dtype))
    q2 = layout.q2
    if q2 == 0:
        return LA, jnp.zeros((0, 0), dtype), jnp.zeros((m0, k0, 0), dtype), None
    kidx = jnp.arange(k0)
    cols = [None] + [_dense_cols(layout, b, codes[b]) for b in range(1, layout.nblocks)]
    if _sparse_schur(layout, w.shape[0]):
        rows = jnp.concatenate(cols[1:], axis=1)                                   # (n, nb)
        zc = jnp.concatenate(Zl[1:], axis=1)                                       # (n, nb)
        # B = sum_i z0l_i zcr_i': the weight goes on the left for one predictor, on the right
        # (per column, by the column's predictor) for two
        if w.ndim == 1:
            z0l, zcr, wc = w[:, None] * z0, zc, w[:, None, None]
        else:
            tcol = np.concatenate([np.full(k, layout.target(b)) for b, k in enumerate(layout.ks) if b > 0])
            z0l, zcr = z0, w[:, layout.target(0), tcol] * zc
            wc = w[:, tcol[:, None], tcol[None, :]]
        B = jnp.zeros((m0, k0, q2), dtype).at[codes[0][:, None, None], kidx[None, :, None], rows[:, None, :]].add(
            z0l[:, :, None] * zcr[:, None, :])
        LAi = at_rows(layout, 0, LA, codes[0])
        p = _smallk.solve_upper(LAi, _smallk.solve_lower(LAi, z0l))               # A_j^{-1} z0l_i
        r = jnp.einsum("nk,nkq->nq", p, at_rows(layout, 0, B, codes[0]))                               # r_i = B_j' p_i
        C = jnp.eye(q2, dtype=dtype).at[rows[:, :, None], rows[:, None, :]].add(
            wc * zc[:, :, None] * zc[:, None, :])
        S = C - jax.ops.segment_sum((zcr[:, :, None] * r[:, None, :]).reshape(-1, q2), rows.reshape(-1),
                                    num_segments=q2)
        return LA, S, None, (z0l, zcr, rows, codes[0])
    B = jnp.zeros((m0, k0, q2), dtype)
    C = jnp.eye(q2, dtype=dtype)
    for b in range(1, layout.nblocks):
        vals = _wpair(layout, w, 0, b)[:, None, None] * z0[:, :, None] * Zl[b][:, None, :]
        B = B.at[codes[0][:, None, None], kidx[None, :, None], cols[b][:, None, :]].add(vals)
        for c in range(1, layout.nblocks):
            vals = _wpair(layout, w, b, c)[:, None, None] * Zl[b][:, :, None] * Zl[c][:, None, :]
            C = C.at[cols[b][:, :, None], cols[c][:, None, :]].add(vals)
    M = _smallk.solve_lower(LA, B)
    return LA, C - jnp.einsum("mkq,mkr->qr", M, M), M, None


def factorize(layout: BlockLayout, Zl, codes, w) -> Factor:
    """Factor H = sum_i w_i (Lambda'z_i)(Lambda'z_i)' + I.

    Arguments:
        layout: static block sizes.
        Zl: tuple of (n, k_b) arrays, the rows of Z_b L_b.
        codes: tuple of (n,) int arrays, level of each observation in each block.
        w: (n,) weights (the diagonal of W); with random effects in two linear predictors
            (``layout.targets``), (n, 2, 2): each observation's Hessian of -log p over its
            two predictors, and H = Lambda' Z' W Z Lambda + I couples the blocks through it.
    """
    if layout.nested:
        LA, S, M, parent = _assemble_nested(layout, Zl, codes, w)
        return Factor(LA, M, _smallk.cholesky(S), None, parent)
    LA, S, M, obs = _assemble(layout, Zl, codes, w)
    return Factor(LA, M, jnp.linalg.cholesky(S) if S.shape[0] else S, obs)


def logdet_H(layout: BlockLayout, Zl, codes, w):
    """log det H, as logdet(factorize(...)) but with a cheaper derivative.

    log det H = log det A + log det S. The first is elementwise in the (small) factors L_A;
    the second goes through ``_logdet_spd``, whose derivative tr(S^{-1} dS) replaces
    differentiating the dense Cholesky factorization.
    """
    if layout.nested:
        F = factorize(layout, Zl, codes, w)
        return logdet(F)
    LA, S, _, _ = _assemble(layout, Zl, codes, w)
    d = 2.0 * jnp.sum(jnp.log(jnp.diagonal(LA, axis1=-2, axis2=-1)))
    return d + _logdet_spd(S) if S.shape[0] else d


@jax.custom_jvp
def _logdet_spd(S):
    """log det S for symmetric positive definite S."""
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(jnp.linalg.cholesky(S))))


@_logdet_spd.defjvp
def _logdet_spd_jvp(primals, tangents):
    # d log det S = tr(S^{-1} dS), with S^{-1} from the Cholesky factor already computed.
    (S,), (dS,) = primals, tangents
    L = jnp.linalg.cholesky(S)
    Sinv = jax.scipy.linalg.cho_solve((L, True), jnp.eye(S.shape[0], dtype=S.dtype))
    return 2.0 * jnp.sum(jnp.log(jnp.diagonal(L))), jnp.sum(Sinv * dS)


def _sparse_schur(layout: BlockLayout, n: int) -> bool:
    """Whether to use the observation-level form (module docstring) for n observations.

    M' M costs m0 k0 q2^2 multiply-adds (a dense matmul); the observation-level form about
    n (k0 + nb) q2 gathers and scatter-adds, each several times dearer than a multiply-add.
    The latter wins when block 0's levels have few observations relative to q2.
    """
    nb = sum(layout.ks[1:])
    return 8 * n * (layout.ks[0] + nb) < layout.nlevels[0] * layout.ks[0] * layout.q2


def _Bt(layout: BlockLayout, F: Factor, v0):
    """B' v0 for v0 (m0, k0, ...) -> (q2, ...), observation by observation."""
    z0l, zcr, rows, c0 = F.obs
    s = jnp.einsum("nk,nk...->n...", z0l, at_rows(layout, 0, v0, c0))
    vals = zcr.reshape(zcr.shape + (1,) * (s.ndim - 1)) * s[:, None]
    return jax.ops.segment_sum(vals.reshape((-1,) + s.shape[1:]), rows.reshape(-1), num_segments=layout.q2)


def _B(layout: BlockLayout, F: Factor, x2):
    """B x2 for x2 (q2, ...) -> (m0, k0, ...), observation by observation."""
    z0l, zcr, rows, c0 = F.obs
    t = jnp.einsum("na,na...->n...", zcr, x2[rows])
    vals = z0l.reshape(z0l.shape + (1,) * (t.ndim - 1)) * t[:, None]
    return sum_levels(layout, 0, vals, c0)


def _dense_M(layout: BlockLayout, F: Factor):
    """M = L_A^{-1} B as a dense (m0, k0, q2) array (the observation-level form keeps it implicit)."""
    if F.M is not None:
        return F.M
    return _smallk.solve_lower(F.LA, _B(layout, F, jnp.eye(layout.q2, dtype=F.LS.dtype)))


def logdet(F: Factor):
    """log det H."""
    d = 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.LA, axis1=-2, axis2=-1)))
    if F.LS.shape[0]:
        d = d + 2.0 * jnp.sum(jnp.log(jnp.diagonal(F.LS, axis1=-2, axis2=-1)))
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
    if F.parent is not None:
        y0 = _smallk.solve_lower(F.LA, r[0])
        t = r[1] - jax.ops.segment_sum(jnp.einsum("mkq,mk...->mq...", F.M, y0), F.parent,
                                       num_segments=layout.nlevels[1])
        return y0, _smallk.solve_lower(F.LS, t)
    r0, r2 = _split(layout, r)
    y0 = _tri(F.LA, r0, True)
    if r2 is None:
        return (y0,)
    if F.M is None:
        t = r2 - _Bt(layout, F, _tri(F.LA, y0, False))
    else:
        t = r2 - jnp.einsum("mkq,mk...->q...", F.M, y0)
    y2 = jax.scipy.linalg.solve_triangular(F.LS, t, lower=True)
    return _join(layout, y0, y2)


def solve_upper(layout: BlockLayout, F: Factor, y):
    """L^{-T} y, the inverse of solve_lower's transpose."""
    if F.parent is not None:
        x1 = _smallk.solve_upper(F.LS, y[1])
        x0 = _smallk.solve_upper(F.LA, y[0] - jnp.einsum("mkq,mq...->mk...", F.M, x1[F.parent]))
        return x0, x1
    y0, y2 = _split(layout, y)
    if y2 is None:
        return (_tri(F.LA, y0, False),)
    x2 = jax.scipy.linalg.solve_triangular(F.LS, y2, lower=True, trans="T")
    Mx2 = _tri(F.LA, _B(layout, F, x2), True) if F.M is None else jnp.einsum("mkq,q...->mk...", F.M, x2)
    x0 = _tri(F.LA, y0 - Mx2, False)
    return _join(layout, x0, x2)


def solve(layout: BlockLayout, F: Factor, r):
    """H^{-1} r."""
    if F.M is not None or layout.nblocks == 1:   # dense or nested form
        return solve_upper(layout, F, solve_lower(layout, F, r))
    r0, r2 = _split(layout, r)
    Ainv = lambda v: _tri(F.LA, _tri(F.LA, v, True), False)
    x2 = jax.scipy.linalg.cho_solve((F.LS, True), r2 - _Bt(layout, F, Ainv(r0)))
    return _join(layout, Ainv(r0 - _B(layout, F, x2)), x2)


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
    if F.parent is not None:
        k1 = layout.ks[1]
        eye1 = jnp.broadcast_to(jnp.eye(k1, dtype=F.LS.dtype), F.LS.shape)
        LSinv = _smallk.solve_lower(F.LS, eye1)
        Sinv = jnp.einsum("mik,mil->mkl", LSinv, LSinv)
        N = _smallk.solve_upper(F.LA, F.M)                                       # A^{-1} B, (m0, k0, k1)
        return Ainv + jnp.einsum("mkq,mqr,mlr->mkl", N, Sinv[F.parent], N), Sinv
    N = _smallk.solve_upper(F.LA, _dense_M(layout, F))
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
