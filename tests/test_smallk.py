"""laplace/_smallk.py: the batched k x k Cholesky factorization and triangular solves,
unrolled for k <= UNROLL_K and by LAPACK above, against LAPACK (scipy.linalg) for k = 1..8,
in float64 and float32, with right-hand sides of one and several columns."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

from glmmjax.laplace import _smallk


def _spd(rng, m, k):
    """m random symmetric positive definite k x k matrices, condition numbers up to ~1e3."""
    Q = np.linalg.qr(rng.normal(size=(m, k, k)))[0]
    ev = np.exp(rng.uniform(-3.5, 3.5, size=(m, k)))
    return np.einsum("mij,mj,mkj->mik", Q, ev, Q)


@pytest.mark.parametrize("k", range(1, 9))
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-3)])
def test_cholesky_and_solves_match_lapack(k, dtype, rtol):
    rng = np.random.default_rng(k)
    A = _spd(rng, 5, k)
    b1 = rng.normal(size=(5, k))
    b3 = rng.normal(size=(5, k, 3))
    L = np.asarray(_smallk.cholesky(jnp.asarray(A, dtype)), float)
    Lref = np.stack([sla.cholesky(a, lower=True) for a in A])
    np.testing.assert_allclose(L, Lref, rtol=rtol, atol=rtol * np.abs(Lref).max())
    assert np.all(np.triu(L, 1) == 0)
    for b in (b1, b3):
        lo = np.asarray(_smallk.solve_lower(jnp.asarray(Lref, dtype), jnp.asarray(b, dtype)), float)
        up = np.asarray(_smallk.solve_upper(jnp.asarray(Lref, dtype), jnp.asarray(b, dtype)), float)
        lo_ref = np.stack([sla.solve_triangular(Li, bi, lower=True) for Li, bi in zip(Lref, b)])
        up_ref = np.stack([sla.solve_triangular(Li, bi, lower=True, trans="T") for Li, bi in zip(Lref, b)])
        np.testing.assert_allclose(lo, lo_ref, rtol=rtol * 10, atol=rtol * 10 * np.abs(lo_ref).max())
        np.testing.assert_allclose(up, up_ref, rtol=rtol * 10, atol=rtol * 10 * np.abs(up_ref).max())


def test_both_sides_of_the_unrolling_threshold_are_exercised():
    assert 1 <= _smallk.UNROLL_K < 8


@pytest.mark.parametrize("k", [2, 3, _smallk.UNROLL_K + 1])
def test_derivative_of_the_factor_matches_finite_differences(k):
    # the unrolled factor is differentiated by JAX (the LMM objective's gradient goes through it)
    rng = np.random.default_rng(10 + k)
    A = jnp.asarray(_spd(rng, 2, k))
    E = rng.normal(size=(2, k, k))
    E = jnp.asarray(E + np.swapaxes(E, 1, 2))
    f = lambda t: jnp.sum(jnp.log(jnp.diagonal(_smallk.cholesky(A + t * E), axis1=1, axis2=2)))
    h = 1e-6
    fd = (f(h) - f(-h)) / (2 * h)
    assert float(jax.grad(f)(0.0)) == pytest.approx(float(fd), rel=1e-6)
