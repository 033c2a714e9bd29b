"""The objective itself: autodiff gradients and Hessians, models without random effects,
float32, offsets and weights, zero-inflation identities, the optimizers and the LMM's
cross-product form. (The errors bad input gets: test_input_errors.py.)"""
from __future__ import annotations

import jax
import numpy as np
import pytest

import glmmjax as gj


def _fd_grad(f, x, h=1e-5):
    g = np.zeros_like(x)
    for i in range(len(x)):
        e = np.zeros_like(x)
        e[i] = h * max(1.0, abs(x[i]))
        g[i] = (f(x + e) - f(x - e)) / (2 * e[i])
    return g


@pytest.mark.parametrize("ref_id", ["grouseticks_glmer_pois_loc_index", "petrol_tmb_beta",
                                    "sleepstudy_lmer_reml_slope", "arabidopsis_tmb_nb2"])
def test_autodiff_gradient_matches_finite_differences(reference_fit, ref_id):
    _, fit, _ = reference_fit(ref_id)
    obj = fit.model.objective()
    grad = jax.jit(jax.grad(obj))
    # a point away from the optimum, where the gradient is not ~0
    x = fit.x * 1.05 + 0.01
    g = np.asarray(grad(x))
    fd = _fd_grad(lambda z: float(obj(z)), x)
    # central differences with h ~ 1e-5: truncation ~1e-10 relative, rounding ~1e-16 * f / h
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-6 * max(1.0, abs(float(obj(x)))) * 1e-2)


@pytest.mark.parametrize("ref_id", ["cbpp_tmb_binom"])
def test_difference_hessian_matches_the_exact_hessian(reference_fit, ref_id):
    """The fit's Hessian (default: central differences of the exact gradient, made in the
    optimizer's loop) against jax.hessian of the objective with two implicit Newton steps
    (exact second derivatives), at the fit; and the same central differences made by the
    post-fit pass (what the other optimizers use). The machinery is family-agnostic; cbpp's
    binomial model keeps the exact (fourth-order) autodiff Hessian quick to compile (the
    lgamma terms of nbinom2 take several times longer)."""
    from glmmjax.fit._post import glmm_post
    from glmmjax.laplace._glmm import zero_modes

    _, fit, _ = reference_fit(ref_id)
    model = fit.model
    x = jax.numpy.asarray(model.to_internal(fit.x), model.data.y.dtype)
    u = zero_modes(model.spec, x.dtype)     # a start: both re-solve the modes at x
    Jinv = np.linalg.inv(model.jacobian_external())
    external = lambda h: Jinv.T @ np.asarray(h) @ Jinv
    exact = external(glmm_post(model.spec, model.data, x, u, hessian="autodiff")["hess"])
    post_fd = external(glmm_post(model.spec, model.data, x, u, hessian="fd")["hess"])
    # h = 1e-4 (1 + |x|): truncation ~1e-8 relative, rounding ~1e-12 / h
    for fd in (fit.hessian, post_fd):
        np.testing.assert_allclose(fd, exact, rtol=1e-6, atol=1e-6 * np.max(np.abs(exact)))
        se_fd, se_exact = (np.sqrt(np.diag(np.linalg.inv(h))) for h in (fd, exact))
        np.testing.assert_allclose(se_fd, se_exact, rtol=1e-6)
        assert not np.allclose(fd, exact, rtol=1e-13, atol=0)   # two different computations
    np.testing.assert_allclose(fit.hessian, post_fd, rtol=1e-9, atol=1e-9 * np.max(np.abs(exact)))


def test_hessian_option_is_checked(reference_fit):
    _, fit, _ = reference_fit("cbpp_tmb_binom")
    with pytest.raises(ValueError, match="Unknown hessian 'exact'"):
        fit.model.fit(hessian="exact")


def test_gradient_at_optimum_is_zero(reference_fit):
    for ref_id in ["cbpp_tmb_binom", "grouseticks_glmer_pois_loc", "exam_lmer_reml_slope", "petrol_tmb_beta"]:
        _, fit, _ = reference_fit(ref_id)
        assert fit.max_grad < 1e-4, (ref_id, fit.max_grad)


def test_poisson_glm_without_random_effects_matches_irls():
    data = gj.datasets.load("grouseticks")
    fit = gj.glmm("TICKS ~ YEAR + cHEIGHT", data, family="poisson")
    X = fit.model.design.X
    y = data["TICKS"].to_numpy(float)
    beta = np.zeros(X.shape[1])
    beta[0] = np.log(y.mean())
    for _ in range(50):  # IRLS, the textbook GLM fit
        mu = np.exp(X @ beta)
        z = X @ beta + (y - mu) / mu
        beta = np.linalg.solve(X.T @ (mu[:, None] * X), X.T @ (mu * z))
    np.testing.assert_allclose(fit.fixef.values, beta, rtol=1e-6)
    mu = np.exp(X @ beta)
    cov = np.linalg.inv(X.T @ (mu[:, None] * X))
    np.testing.assert_allclose(fit.se.values, np.sqrt(np.diag(cov)), rtol=1e-5)
    assert fit.ngroups == {}


def test_linear_model_without_random_effects_is_least_squares():
    data = gj.datasets.load("sleepstudy")
    fit = gj.glmm("Reaction ~ Days", data)
    X = fit.model.design.X
    y = data["Reaction"].to_numpy(float)
    beta, rss, *_ = np.linalg.lstsq(X, y, rcond=None)
    n = len(y)
    np.testing.assert_allclose(fit.fixef.values, beta, rtol=1e-7)
    assert fit.sigma == pytest.approx(np.sqrt(rss[0] / n), rel=1e-6)  # ML estimate
    assert fit.loglik == pytest.approx(-n / 2 * (np.log(2 * np.pi * rss[0] / n) + 1), rel=1e-9)


def test_float32_fit_close_to_float64():
    data = gj.datasets.load("grouseticks")
    f64 = gj.glmm("TICKS ~ YEAR + (1|LOCATION)", data, family="poisson")
    f32 = gj.glmm("TICKS ~ YEAR + (1|LOCATION)", data, family="poisson", dtype="float32")
    assert f32.model.data.y.dtype == np.float32
    np.testing.assert_allclose(f32.fixef.values, f64.fixef.values, atol=2e-3)
    assert f32.loglik == pytest.approx(f64.loglik, abs=0.05)


# -- bad input ------------------------------------------------------------------------------

def test_offset_shifts_the_intercept():
    grouse = gj.datasets.load("grouseticks").assign(two=2.0)
    base = gj.glmm("TICKS ~ YEAR + (1|LOCATION)", grouse, family="poisson")
    off = gj.glmm("TICKS ~ YEAR + offset(log(two)) + (1|LOCATION)", grouse, family="poisson")
    np.testing.assert_allclose(off.fixef.values, base.fixef.values - np.r_[np.log(2.0), 0, 0], atol=1e-6)
    assert off.loglik == pytest.approx(base.loglik, abs=1e-8)


def test_binomial_proportions_with_weights_equal_cbind(reference_fit):
    _, counts, _ = reference_fit("cbpp_tmb_binom")
    cbpp = gj.datasets.load("cbpp").assign(prop=lambda d: d["incidence"] / d["size"])
    props = gj.glmm("prop ~ period + (1|herd)", cbpp, family="binomial", weights="size")
    np.testing.assert_allclose(props.fixef.values, counts.fixef.values, atol=1e-6)
    assert props.loglik == pytest.approx(counts.loglik, abs=1e-8)


def test_objective_at_the_fit_is_minus_loglik(reference_fit):
    for ref_id in ("petrol_tmb_beta", "grouseticks_glmer_pois_loc_index", "sleepstudy_lmer_reml_slope"):
        _, fit, _ = reference_fit(ref_id)
        assert float(fit.model.objective()(fit.x)) == pytest.approx(-fit.loglik, rel=1e-9)


# -- zero-inflation ------------------------------------------------------------------------

def test_zero_inflation_with_probability_zero_is_the_base_family(reference_fit):
    _, base, _ = reference_fit("arabidopsis_tmb_nb2")
    data = gj.datasets.load("Arabidopsis")
    zi = gj.GLMM("total.fruits ~ nutrient + amd + (1 | popu) + (1 | gen)", data, "nbinom2", zi="~1")
    assert zi.parameter_names() == base.model.parameter_names() + ["zi:(Intercept)"]
    x = np.append(base.x, -60.0)  # logit(p) = -60: p ~ 1e-26
    assert float(zi.objective()(x)) == pytest.approx(float(base.model.objective()(base.x)), rel=1e-13)


def test_zero_inflated_predictions(reference_fit):
    _, fit, _ = reference_fit("arabidopsis_tmb_zip")
    p = 1 / (1 + np.exp(-fit.zi_fixef.iloc[0]))
    np.testing.assert_allclose(fit.predict(type="zprob"), p)
    np.testing.assert_allclose(fit.predict(type="response"), (1 - p) * fit.predict(type="conditional"))
    sims = fit.simulate(nsim=200, seed=3)
    zeros = np.mean(sims == 0)
    mu = fit.predict(type="conditional", re_form="~0")
    # marginal zero fraction, roughly: p + (1 - p) * mean P(count = 0); simulated counts are large here
    assert zeros == pytest.approx(p + (1 - p) * np.mean(np.exp(-mu)), abs=0.03)


def test_optimizers_reach_the_same_optimum(reference_fit):
    _, fit, _ = reference_fit("grouseticks_glmer_pois_loc")
    for method in ("optax-lbfgs", "bfgs"):
        other = fit.model.fit(method=method)
        assert other.converged
        assert other.loglik == pytest.approx(fit.loglik, abs=1e-7)
        np.testing.assert_allclose(other.fixef.values, fit.fixef.values, atol=1e-4)
    with pytest.raises(ValueError, match="optimizer"):
        fit.model.fit(method="nelder-mead")


def test_lmm_prior_weights_scale_the_residual_variance():
    """lme4's convention: Var(e_i) = sigma^2 / w_i, so constant weights 2 leave beta, the
    random-effect SDs and logLik unchanged and multiply sigma by sqrt(2)."""
    d = gj.datasets.load("sleepstudy")
    a = gj.glmm("Reaction ~ Days + (Days|Subject)", d)
    b = gj.glmm("Reaction ~ Days + (Days|Subject)", d, weights=np.full(len(d), 2.0))
    np.testing.assert_allclose(b.fixef.values, a.fixef.values, rtol=1e-9)
    assert b.sigma == pytest.approx(np.sqrt(2) * a.sigma, rel=1e-7)
    np.testing.assert_allclose(b.varcorr.sd.values[:2], a.varcorr.sd.values[:2], rtol=1e-6)
    assert b.loglik == pytest.approx(a.loglik, abs=1e-8)


@pytest.mark.parametrize("ref_id", ["exam_lmer_reml_int", "sleepstudy_lmer_reml_slope", "sleepstudy_lmer_ml_slope"])
def test_lmm_crossproduct_objective_equals_the_explicit_one(reference_fit, ref_id):
    """The optimizer's one-factor LMM objective (cross-products of Z, X, y computed once, r^2 by
    cancelling y'Wy) equals the objective from explicit residuals, at and away from the fit."""
    from glmmjax.laplace._lmm import crossproducts, lmm_objective, lmm_objective_crossproducts

    _, fit, _ = reference_fit(ref_id)
    spec, data = fit.model.spec, fit.model.data
    cp = jax.jit(crossproducts, static_argnums=0)(spec, data)
    by_cp = jax.jit(jax.value_and_grad(lmm_objective_crossproducts, argnums=1), static_argnums=0)
    by_resid = jax.jit(jax.value_and_grad(lmm_objective, argnums=1), static_argnums=0)
    rng = np.random.default_rng(3)
    for theta in [fit.x] + [fit.x * rng.uniform(0.3, 2.0, fit.x.size) + rng.normal(0, 0.1, fit.x.size)
                            for _ in range(3)]:
        theta = jax.numpy.asarray(theta)
        (v1, g1), (explicit, g2) = by_cp(spec, theta, cp), by_resid(spec, theta, data)
        explicit = float(explicit)
        assert float(v1) == pytest.approx(explicit, rel=1e-12)
        np.testing.assert_allclose(np.asarray(g1), np.asarray(g2), rtol=1e-8, atol=1e-9 * max(1.0, abs(explicit)))
