"""Random effects in the zero-inflation formula (glmmTMB's ``ziformula = ~ ... + (1|g)``).

The Laplace approximation then integrates over random effects in two linear predictors,
H = Lambda' Z' W Z Lambda + I with W each observation's 2 x 2 Hessian over (eta, zi_eta).
Checked here: the structured factorization of that H against dense algebra (all three forms:
nested, dense Schur complement, observation-level), glmmTMB 1.1.5 fits made by
tests/fixtures/reference_extra/make_refs_zi_random.R (objective at glmmTMB's optimum to 1e-8
relative; the fits within test_reference_zi_disp_families.py's tolerances; predictions of every type,
Pearson residuals and the summary's random-effects sections), an identity (a zi random
effect with variance 0 is the zi model without it), simulation, and bad input.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

import glmmjax as gj
from glmmjax.laplace import _blocked as blk
from glmmjax.spec import BlockLayout
from reference import random_sds, tmb_parameters

ZI_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_extra" / "zi_random"
IDS = ["zip_re", "zinb2_re", "zinb2_re_crossed", "zip_re_zionly"]
REFS = {i: json.loads((ZI_DIR / f"{i}.json").read_text()) for i in IDS}
DATA = pd.read_csv(ZI_DIR / "zi_sim.csv")
# fitted in the tests: one model per factorization form (nested, dense, a single zi block)
FITTED = ["zip_re", "zinb2_re_crossed", "zip_re_zionly"]


def _model(ref_id):
    ref = REFS[ref_id]
    return gj.GLMM(ref["formula"]["cond"], DATA, ref["family"], zi=ref["formula"]["zi"])


@pytest.fixture(scope="module")
def fits():
    cache = {}

    def get(ref_id):
        if ref_id not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cache[ref_id] = _model(ref_id).fit()
        return REFS[ref_id], cache[ref_id]
    return get


# -- the factorization with two linear predictors -------------------------------------------

def _dense_H(layout, Zl, codes, W):
    """I + sum_i G_i' W_i G_i with G_i (2, q) the rows of Z Lambda in each predictor."""
    n = W.shape[0]
    q = layout.q
    G = np.zeros((n, 2, q))
    off = 0
    for b, (m, k) in enumerate(zip(layout.nlevels, layout.ks)):
        for i in range(n):
            G[i, layout.target(b), off + codes[b][i] * k: off + (codes[b][i] + 1) * k] = Zl[b][i]
        off += m * k
    return np.eye(q) + np.einsum("nai,nab,nbj->ij", G, W, G)


def _blocks_as_dense(layout, r):
    return np.concatenate([np.asarray(x).reshape(-1) for x in r])


@pytest.mark.parametrize("form", ["nested", "dense", "observation-level"])
def test_two_predictor_factorization_matches_dense_algebra(form):
    rng = np.random.default_rng(3)
    n = 60
    if form == "nested":        # zi and conditional intercepts on the same factor
        g = rng.integers(0, 8, n)
        codes = (g, g)
        layout = BlockLayout((8, 8), (2, 1), True, (0, 1))
    elif form == "dense":       # crossed factors
        codes = (rng.integers(0, 9, n), rng.integers(0, 4, n))
        layout = BlockLayout((9, 4), (1, 2), False, (1, 0))
    else:                       # an observation-level block 0: B kept implicit
        codes = (np.arange(n), rng.integers(0, 20, n), rng.integers(0, 10, n))
        layout = BlockLayout((n, 20, 10), (1, 1, 1), False, (0, 1, 0))
        assert blk._sparse_schur(layout, n)
    Zl = tuple(rng.normal(size=(n, k)) for k in layout.ks)
    A = rng.normal(size=(n, 2, 2))
    W = A @ np.swapaxes(A, 1, 2) + 0.1 * np.eye(2)        # positive definite 2 x 2 per row
    W[::7] = np.array([[0.5, 0.3], [0.3, -0.05]])          # and some indefinite rows, as at a mode
    F = blk.factorize(layout, tuple(map(jnp.asarray, Zl)), tuple(map(jnp.asarray, codes)), jnp.asarray(W))
    H = _dense_H(layout, Zl, codes, W)
    assert np.linalg.slogdet(H)[0] == 1 and np.all(np.linalg.eigvalsh(H) > 0)
    np.testing.assert_allclose(float(blk.logdet(F)), np.linalg.slogdet(H)[1], rtol=1e-10)
    np.testing.assert_allclose(
        float(blk.logdet_H(layout, tuple(map(jnp.asarray, Zl)), tuple(map(jnp.asarray, codes)), jnp.asarray(W))),
        np.linalg.slogdet(H)[1], rtol=1e-10)
    r = tuple(jnp.asarray(rng.normal(size=(m, k))) for m, k in zip(layout.nlevels, layout.ks))
    x = _blocks_as_dense(layout, blk.solve(layout, F, r))
    np.testing.assert_allclose(x, np.linalg.solve(H, _blocks_as_dense(layout, r)), rtol=1e-8, atol=1e-10)
    Hinv = np.linalg.inv(H)
    off = 0
    for b, D in enumerate(blk.inverse_diag_blocks(layout, F)):
        m, k = layout.nlevels[b], layout.ks[b]
        for j in (0, m - 1):
            s = slice(off + j * k, off + (j + 1) * k)
            np.testing.assert_allclose(np.asarray(D[j]), Hinv[s, s], rtol=1e-8, atol=1e-12)
        off += m * k


# -- glmmTMB references ---------------------------------------------------------------------

def test_references_present():
    for ref in REFS.values():
        assert ref["status"] == "ok" and ref["glmmTMB_version"] == "1.1.5"
        assert any(b["component"] == "zi" for b in ref["random_effects"])


def test_layout_and_parameter_names():
    m = _model("zinb2_re_crossed")
    assert [(b.component, b.group) for b in m.blocks] == [("cond", "site"), ("zi", "batch")]
    assert m.spec.layout.targets == (0, 1) and not m.spec.layout.nested
    assert m.parameter_names() == ["(Intercept)", "x", "theta[site]:L[(Intercept),(Intercept)]",
                                   "theta[zi|batch]:L[(Intercept),(Intercept)]", "disp:(Intercept)",
                                   "zi:(Intercept)", "zi:x"]
    assert _model("zip_re").spec.layout.nested          # the same factor in both models


@pytest.mark.parametrize("ref_id", IDS)
def test_objective_at_glmmtmb_estimates(ref_id):
    ref = REFS[ref_id]
    model = _model(ref_id)
    value = float(model.objective()(tmb_parameters(ref, model)))
    assert value == pytest.approx(ref["estimation"]["objective"], rel=1e-8)


@pytest.mark.parametrize("ref_id", FITTED)
def test_fit_matches_glmmtmb(fits, ref_id):
    ref, fit = fits(ref_id)
    assert fit.converged
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3
    for key, est, se in (("fixed_effects", fit.fixef, fit.se), ("zi_coefficients", fit.zi_fixef, fit.zi_se)):
        for e in ref[key]:
            assert abs(est[e["term"]] - e["estimate"]) <= 0.02 * e["std_error"], (key, e["term"])
            assert se[e["term"]] == pytest.approx(e["std_error"], rel=0.02), (key, e["term"])
    vc = fit.varcorr
    for comp in ("cond", "zi"):
        for (group, term), sd in random_sds(ref, comp).items():
            ours = vc[(vc.component == comp) & (vc.group == group) & (vc.term1 == term) & vc.term2.isna()].sd
            assert len(ours) == 1
            assert abs(float(ours.iloc[0]) - sd) <= 0.02 * sd + 2e-3, (comp, group)
    theta = ref["dispersion"]["parameters"] or {}
    for name, value in theta.items():
        assert fit.dispersion_parameters[name] == pytest.approx(value, rel=0.02)


@pytest.mark.parametrize("ref_id", FITTED)
def test_predictions_and_pearson_residuals(fits, ref_id):
    ref, fit = fits(ref_id)
    for kind in ("link", "conditional", "zprob", "response"):
        np.testing.assert_allclose(fit.predict(type=kind), ref["predictions"][kind], rtol=1e-3, atol=1e-4,
                                   err_msg=kind)
    np.testing.assert_allclose(fit.fitted(), ref["predictions"]["response"], rtol=1e-3)
    np.testing.assert_allclose(fit.residuals("pearson"), ref["pearson_residuals"], rtol=1e-3, atol=1e-4)
    # new data: the fitted rows again give the fitted predictions, the zi random effects included
    np.testing.assert_allclose(fit.predict(DATA.iloc[:40], type="zprob"), fit.predict(type="zprob")[:40], rtol=1e-12)
    pop = fit.predict(type="zprob", re_form="~0")
    assert np.ptp(pop[DATA.x == DATA.x.iloc[0]]) < 1e-12           # no random effect in the population level


def test_ranef_per_component(fits):
    _, fit = fits("zinb2_re_crossed")
    assert list(fit.ranef) == ["site"] and list(fit.zi_ranef) == ["batch"]
    assert fit.zi_ranef["batch"].shape == (6, 1) and fit.zi_ranef_sd["batch"].shape == (6, 1)
    assert np.all(fit.zi_ranef_sd["batch"].to_numpy() > 0)
    _, only = fits("zip_re_zionly")
    assert only.ranef == {} and list(only.zi_ranef) == ["site"]


def _same_text(ours, theirs):
    """Lines equal word by word, numbers to within 2 units of the last digit R printed (a
    variance estimated to 4e-5 of glmmTMB's may round the other way)."""
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        wa, wb = a.split(), b.split()
        assert len(wa) == len(wb) and len(a) == len(b), (a, b)
        for x, y in zip(wa, wb):
            try:
                fx, fy = float(x), float(y)
            except ValueError:
                assert x == y, (a, b)
                continue
            ulp = 10.0 ** -(len(y.split(".")[1]) if "." in y else 0)
            assert abs(fx - fy) <= 2 * ulp, (a, b)


@pytest.mark.parametrize("ref_id", FITTED)
def test_summary_random_effects_sections_match_glmmtmb(fits, ref_id):
    ref, fit = fits(ref_id)
    ours = [ln.rstrip() for ln in fit.summary().lines()]
    theirs = [ln.rstrip() for ln in ref["summary_text"]]
    start = theirs.index("Random effects:")
    stop = max(i for i, ln in enumerate(theirs) if ln.startswith("Number of obs")) + 1
    block = theirs[start:stop]
    assert "Zero-inflation model:" in block
    i = ours.index("Random effects:")
    _same_text(ours[i:i + len(block)], block)
    assert ours[1:3] == theirs[1:3]                      # formula and zero-inflation formula lines


def test_zero_variance_zi_effect_is_the_model_without_it():
    with_re, without = _model("zip_re"), gj.GLMM("y ~ x + (1|site)", DATA, "poisson", zi="~1")
    rng = np.random.default_rng(0)
    for _ in range(2):
        beta, sd, bzi = rng.normal(1.0, 0.2, 2), rng.uniform(0.2, 0.6), rng.normal(-0.3, 0.3)
        names = with_re.parameter_names()
        x = np.array([{"(Intercept)": beta[0], "x": beta[1], "zi:(Intercept)": bzi}.get(nm, sd)
                      if "zi|" not in nm else 0.0 for nm in names])
        assert float(with_re.objective()(x)) == pytest.approx(
            float(without.objective()(np.array([beta[0], beta[1], sd, bzi]))), rel=1e-12)


def test_simulated_zeros_match_the_model(fits):
    _, fit = fits("zinb2_re_crossed")
    Y = fit.simulate(1000, seed=5, re_form=None)             # conditioned on the modes
    p, mu = fit.predict(type="zprob"), fit.predict(type="conditional")
    theta = fit.dispersion_parameters["theta"]
    p0 = p + (1 - p) * (theta / (theta + mu)) ** theta      # P(y = 0) per row
    freq = (Y == 0).mean(axis=0)
    z = (freq - p0) / np.sqrt(p0 * (1 - p0) / Y.shape[0])
    assert np.abs(z).max() < 5 and abs(z.mean()) < 0.2
    # drawing new zi random effects (re_form="~0") spreads the per-batch zero rates
    Y0 = fit.simulate(400, seed=6)
    batch = DATA.batch.to_numpy()
    rates = np.array([[np.mean(y[batch == b] == 0) for b in np.unique(batch)] for y in Y0])
    assert np.std(rates, axis=0).mean() > 2 * np.std([np.mean(y[batch == "b1"] == 0) for y in Y[:400]])


def test_bad_zi_random_terms():
    with pytest.raises(ValueError, match="nosuch"):
        gj.GLMM("y ~ x + (1|site)", DATA, "poisson", zi="~1 + (1|nosuch)")
    one = DATA.assign(g1="a")
    with pytest.raises(ValueError, match="only 1 level"):
        gj.GLMM("y ~ x + (1|site)", one, "poisson", zi="~1 + (1|g1)")
    with pytest.raises(ValueError, match="zero-inflation"):
        gj.GLMM("x ~ 1 + (1|site)", DATA, "gaussian", zi="~1 + (1|site)")


def test_wald_intervals_name_the_zero_inflation_terms(fits):
    _, fit = fits("zinb2_re_crossed")
    ci = fit.confint(method="wald", oldnames=False)
    sds = {"sd_(Intercept)|site": fit.varcorr.sd.iloc[0], "sd_(Intercept)|zi|batch": fit.varcorr.sd.iloc[1]}
    for name, sd in sds.items():
        lo, hi = ci.loc[name].to_numpy(dtype=float)
        assert lo < sd < hi
    for nm, est in fit.zi_fixef.items():
        lo, hi = ci.loc[f"zi:{nm}"].to_numpy(dtype=float)
        assert lo == pytest.approx(est - 1.959964 * fit.zi_se[nm], rel=1e-5)
