"""fit_batch: one compiled computation over many responses, equal to the single fits."""
from __future__ import annotations

import numpy as np
import pytest

import glmmjax as gj
from glmmjax.fit import _batch

FORMULA = "TICKS ~ YEAR + (1|LOCATION)"


@pytest.fixture(scope="module")
def grouse():
    data = gj.datasets.load("grouseticks")
    model = gj.GLMM(FORMULA, data, family="poisson")
    fit = model.fit()
    Y = fit.simulate(nsim=50, seed=11)
    return data, model, Y


@pytest.fixture(scope="module")
def batch(grouse):
    _, model, Y = grouse
    return model.fit_batch(Y, strategy="map")


def test_batch_equals_single_fits(grouse, batch):
    data, model, Y = grouse
    singles = []
    for y in Y:
        d = data.copy()
        d["TICKS"] = y
        singles.append(gj.glmm(FORMULA, d, family="poisson"))
    x = np.array([f.x for f in singles])
    np.testing.assert_allclose(batch.params.values, x, atol=1e-5, rtol=0)
    np.testing.assert_allclose(batch.loglik, [f.loglik for f in singles], rtol=1e-9)
    assert batch.converged.all()
    assert list(batch.fixef.columns) == list(model.fixed_names)


def test_batch_is_one_compiled_computation(grouse, batch):
    _, model, Y = grouse
    before = _batch._map._cache_size()
    again = model.fit_batch(Y[::-1], strategy="map")  # same shapes: no new compilation
    assert _batch._map._cache_size() == before
    np.testing.assert_allclose(again.params.values[::-1], batch.params.values, atol=1e-8)


def test_strategies_agree(grouse, batch):
    _, model, Y = grouse
    # two parts of 50 rows, each a lax.map: the fixture's compiled computation, run from two threads
    threads = model.fit_batch(np.vstack([Y, Y]), strategy="threads", threads=2, chunk=1)
    vmapped = model.fit_batch(Y[:4], strategy="vmap")
    chunked = model.fit_batch(Y[:4], strategy="chunked", chunk=4)
    # two parts of 4 rows, each one vectorized chunk: the same computation as chunked(4) above
    threads_chunked = model.fit_batch(Y[:8], strategy="threads", threads=2, chunk=4)
    np.testing.assert_allclose(threads.params.values, np.vstack([batch.params.values] * 2), atol=1e-12)
    np.testing.assert_allclose(chunked.params.values, batch.params.values[:4], atol=1e-5)
    np.testing.assert_allclose(vmapped.params.values, batch.params.values[:4], atol=1e-5)
    np.testing.assert_allclose(threads_chunked.params.values[:4], chunked.params.values, atol=1e-12)
    np.testing.assert_array_equal(threads_chunked.iterations[:4], chunked.iterations)
    np.testing.assert_allclose(threads_chunked.params.values[4:], batch.params.values[4:8], atol=1e-5)


def test_lmm_batch_equals_single_fit():
    data = gj.datasets.load("sleepstudy")
    model = gj.GLMM("Reaction ~ Days + (Days|Subject)", data)
    Y = model.fit().simulate(nsim=3, seed=5)
    b = model.fit_batch(Y, strategy="map")
    for i, y in enumerate(Y):
        d = data.copy()
        d["Reaction"] = y
        f = gj.glmm("Reaction ~ Days + (Days|Subject)", d)
        np.testing.assert_allclose(b.fixef.values[i], f.fixef.values, rtol=1e-6)
        assert b.loglik[i] == pytest.approx(f.loglik, rel=1e-10)


def test_batch_input_errors(grouse):
    _, model, Y = grouse
    with pytest.raises(ValueError, match="shape"):
        model.fit_batch(Y[:, :10])
    with pytest.raises(ValueError, match="negative"):
        model.fit_batch(-Y[:2])
    with pytest.raises(ValueError, match="strategy"):
        model.fit_batch(Y[:2], strategy="pmap")


def test_batch_started_at_the_fit_reaches_the_same_optima(grouse, batch):
    _, model, Y = grouse
    fit = model.fit()
    warm = model.fit_batch(Y, strategy="map", start=fit)
    np.testing.assert_allclose(warm.params.values, batch.params.values, atol=1e-5)
    np.testing.assert_allclose(warm.loglik, batch.loglik, rtol=1e-10)


@pytest.fixture(scope="module")
def olre():
    """grouseticks' model with its observation-level effect (1|INDEX), rows in level order."""
    data = gj.datasets.load("grouseticks")
    f = "TICKS ~ YEAR + (1|LOCATION) + (1|INDEX)"
    model = gj.GLMM(f, data, family="poisson")
    return data, f, model, model.fit()


def test_observation_level_block_in_row_order_fits_as_any_order(olre):
    """(1|INDEX) has one level per row, in row order: sums over its levels are the rows
    themselves (BlockLayout.rowwise). Reversing the level order makes the codes a
    permutation, fitted by the general scatter-adds: the same fit."""
    data, f, model, fit = olre
    assert model.spec.layout.rowwise and model.spec.layout.nested
    d = data.copy()
    d["INDEX"] = d["INDEX"].cat.reorder_categories(list(d["INDEX"].cat.categories[::-1]))
    other = gj.GLMM(f, d, family="poisson")
    assert not other.spec.layout.rowwise and other.spec.layout.nested
    refit = other.fit()
    assert refit.loglik == pytest.approx(fit.loglik, abs=1e-9)
    np.testing.assert_allclose(refit.x, fit.x, atol=2e-6)
    r1, r2 = fit.ranef["INDEX"], refit.ranef["INDEX"]
    np.testing.assert_allclose(r2.loc[r1.index].values, r1.values, atol=1e-5)


def test_start_modes_lead_to_the_same_modes(olre):
    """The working-response start (laplace._glmm.start_modes) is below f(0) and the Newton
    iteration from it reaches the modes found from 0, in fewer iterations."""
    import jax.numpy as jnp

    from glmmjax.laplace import _glmm
    from glmmjax.spec import Params

    _, _, model, fit = olre
    y = fit.simulate(nsim=1, seed=3)[0]
    data = model.data.with_response(jnp.asarray(y))
    x = jnp.asarray(model.start_vector(fit.x))
    prm = Params.unpack(model.spec, x)
    u_start = _glmm.start_modes(model.spec, data, x, jnp.asarray(_batch._eta_start(model, y[None])[0]))
    u_zero = _glmm.zero_modes(model.spec, x.dtype)
    assert any(float(jnp.max(jnp.abs(ub))) > 0.1 for ub in u_start)
    a, it_a = _glmm.conditional_mode(model.spec, data, prm, u_start)
    b, it_b = _glmm.conditional_mode(model.spec, data, prm, u_zero)
    for ua, ub in zip(a, b):
        np.testing.assert_allclose(np.asarray(ua), np.asarray(ub), atol=1e-7)
    assert int(it_a) < int(it_b)


def test_olre_batch_started_at_the_fit_equals_single_fits(olre):
    data, f, model, fit = olre
    Y = fit.simulate(nsim=6, seed=21)
    b = model.fit_batch(Y, start=fit, strategy="chunked", chunk=2)
    for i, y in enumerate(Y):
        d = data.copy()
        d["TICKS"] = y
        single = gj.glmm(f, d, family="poisson")
        np.testing.assert_allclose(b.params.values[i], single.x, atol=1e-5)
        assert b.loglik[i] == pytest.approx(single.loglik, rel=1e-10)
    assert b.converged.all()
