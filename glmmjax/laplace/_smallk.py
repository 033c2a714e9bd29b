"""Batched Cholesky factorization and triangular solves for many small k x k blocks.

A random-effect block with m levels and k coefficients per level has m independent k x k
blocks; k is small (1 for a random intercept, 2-4 for random slopes). For small k the
factorization and solves are unrolled over k at trace time into elementwise operations on
(m,)-vectors, which XLA fuses on every backend and differentiates cheaply; a batched
LAPACK call per (m, k, k) array costs far more in per-matrix overhead. Larger k falls back
to jax.lax.linalg.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["cholesky", "solve_lower", "solve_upper", "UNROLL_K"]

UNROLL_K = 6


def cholesky(A):
    """Lower Cholesky factor of each (k, k) block of A (m, k, k)."""
    k = A.shape[-1]
    if k == 0:                 # no fixed effects (y ~ 0 + (1|g)): an empty factor
        return A
    if k > UNROLL_K:
        return jnp.linalg.cholesky(A)
    L = [[None] * k for _ in range(k)]
    for j in range(k):
        s = A[:, j, j] - sum(L[j][p] * L[j][p] for p in range(j)) if j else A[:, j, j]
        L[j][j] = jnp.sqrt(s)
        for i in range(j + 1, k):
            s = A[:, i, j] - sum(L[i][p] * L[j][p] for p in range(j)) if j else A[:, i, j]
            L[i][j] = s / L[j][j]
    zero = jnp.zeros_like(A[:, 0, 0])
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(k)], axis=-1) for i in range(k)], axis=-2)


def _bcast(v, b):
    return v.reshape(v.shape + (1,) * (b.ndim - 2))


def solve_lower(L, b):
    """x with L x = b, for L (m, k, k) lower triangular and b (m, k, ...)."""
    k = L.shape[-1]
    if k == 0:
        return b
    if k > UNROLL_K:
        m = b.shape[0]
        x = jax.lax.linalg.triangular_solve(L, b.reshape(m, k, -1), left_side=True, lower=True)
        return x.reshape(b.shape)
    x = []
    for i in range(k):
        s = b[:, i]
        for p in range(i):
            s = s - _bcast(L[:, i, p], b) * x[p]
        x.append(s / _bcast(L[:, i, i], b))
    return jnp.stack(x, axis=1)


def solve_upper(L, b):
    """x with L' x = b, for L (m, k, k) lower triangular and b (m, k, ...)."""
    k = L.shape[-1]
    if k == 0:
        return b
    if k > UNROLL_K:
        m = b.shape[0]
        x = jax.lax.linalg.triangular_solve(L, b.reshape(m, k, -1), left_side=True, lower=True, transpose_a=True)
        return x.reshape(b.shape)
    x = [None] * k
    for i in reversed(range(k)):
        s = b[:, i]
        for p in range(i + 1, k):
            s = s - _bcast(L[:, p, i], b) * x[p]
        x[i] = s / _bcast(L[:, i, i], b)
    return jnp.stack(x, axis=1)
