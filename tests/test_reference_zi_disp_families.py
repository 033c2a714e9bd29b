"""glmmjax against glmmTMB 1.1.5 fits with zero-inflation and dispersion formulas and the
nbinom1 / Gamma(log) / Student-t families (tests/fixtures/reference_extra, made by
make_refs_extra.R there).

Tolerances as in test_reference.py: logLik at least glmmTMB's minus 2e-3; conditional,
zero-inflation and dispersion coefficients within 0.02 of glmmTMB's SE; SEs within 2%;
random-effect SDs within 2% + 2e-3; glmmjax's objective at glmmTMB's optimum equal to
glmmTMB's to 1e-8 relative.

Dispersion coefficients are compared on glmmTMB's betad scale: gaussian log(sigma^2)
(glmmTMB 1.1.5), nbinom2 log theta, nbinom1 log phi, beta log phi, Gamma log shape,
t log sigma.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmjax as gj
from reference import random_sds

EXTRA_DIR = Path(__file__).resolve().parent / "fixtures" / "reference_extra"
IDS = [p.stem for p in sorted(EXTRA_DIR.glob("*.json"))]
REFS = {i: json.loads((EXTRA_DIR / f"{i}.json").read_text()) for i in IDS}

# glmmTMB stopped short of the optimum: from its default start the t fit runs to df -> inf
# (psi = 14.85, logLik -897.0393); glmmjax reaches df = 4.54 with logLik 5.75 higher, and
# glmmTMB started at psi = log(5) (t_fam_start) reaches the same point (logLik -891.2907).
# t_fam is compared on logLik (glmmjax higher) and on the objective at glmmTMB's estimates;
# its parameters are checked against t_fam_start.
R_SHORT = {"t_fam"}

# (test, reference id) -> reason, for comparisons glmmjax does not (yet) pass. Empty: the
# zinb2_cov fit used to stop on a plateau of the logistic zi model (the optimizer gave up
# after 3 iterations of tiny progress; it now allows 10, see fit/_lbfgs.py MAX_STALL).
XFAIL: dict = {}


def _ids(test, ids=None):
    ids = [i for i in IDS if i not in R_SHORT] if ids is None else ids
    out = []
    for i in ids:
        reason = XFAIL.get((test, i))
        marks = (pytest.mark.xfail(strict=True, reason=reason),) if reason else ()
        out.append(pytest.param(i, marks=marks, id=i))
    return out


def _formula(ref, key):
    f = ref["formula"].get(key)
    if f is None:
        return None
    f = f.replace(" ", "")
    return None if f in ("~0", "~1", "") else ref["formula"][key]


def _family(ref):
    fam = ref["family_canonical"]
    if fam == "Gamma":
        return gj.families.Gamma(link=ref["link"])
    return fam


_CACHE: dict = {}


@pytest.fixture(scope="module")
def extra_fit():
    def get(ref_id):
        if ref_id not in _CACHE:
            ref = REFS[ref_id]
            data = gj.datasets.load(ref["dataset"][:-4])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = gj.glmm(ref["formula"]["cond"], data, family=_family(ref),
                              zi=_formula(ref, "zi"), disp=_formula(ref, "disp"), reml=False)
            _CACHE[ref_id] = fit
        return REFS[ref_id], _CACHE[ref_id]
    return get


def _table(ref, key):
    tab = ref.get(key) or []
    return ([e["term"] for e in tab], np.array([e["estimate"] for e in tab], float),
            np.array([e["std_error"] for e in tab], float))


def tmb_parameters(ref, model) -> np.ndarray:
    """glmmTMB's optimum (tmb_par) as glmmjax's flat parameter vector
    beta | theta (per block, SD for scalar terms) | betad | betazi | extra (t: log df = psi)."""
    names = ref["tmb_par"]["names"]
    vals = np.array(ref["tmb_par"]["values"], dtype=float)
    pick = lambda nm: vals[[i for i, n in enumerate(names) if n == nm]]
    beta, betad, betazi, theta, psi = (pick(k) for k in ("beta", "betad", "betazi", "theta", "psi"))
    blocks = [b for b in ref["random_effects"] if b["component"] == "cond"]
    assert all(len(b["terms"]) == 1 for b in blocks), "scalar random-effect terms only"
    sd = dict(zip([b["grouping_factor"] for b in blocks], np.exp(theta)))
    our_theta = np.array([sd[b.group] for b in model.blocks])
    return np.concatenate([beta, our_theta, betad, betazi, psi])


def test_references_present():
    assert set(IDS) == {"zip_cov", "zinb2_cov", "nb2_disp", "gauss_disp", "beta_disp",
                        "nb1", "gamma_log", "t_fam", "t_fam_start"}
    for ref in REFS.values():
        assert ref["status"] == "ok" and ref["glmmTMB_version"] == "1.1.5"


@pytest.mark.parametrize("ref_id", _ids("layout", IDS))
def test_parameter_layout(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    names = fit.model.parameter_names()
    cond, _, _ = _table(ref, "fixed_effects")
    zi, _, _ = _table(ref, "zi_coefficients")
    disp, _, _ = _table(ref, "disp_coefficients")
    n_theta = sum(1 for n in ref["tmb_par"]["names"] if n == "theta")
    n_psi = sum(1 for n in ref["tmb_par"]["names"] if n == "psi")
    assert names[:len(cond)] == cond
    rest = names[len(cond):]
    assert all(n.startswith("theta[") for n in rest[:n_theta])
    rest = rest[n_theta:]
    assert rest[:len(disp)] == [f"disp:{d}" for d in disp]
    rest = rest[len(disp):]
    assert rest[:len(zi)] == [f"zi:{z}" for z in zi]
    rest = rest[len(zi):]
    assert len(rest) == n_psi and all(n.startswith("extra:") for n in rest)
    assert len(names) == len(ref["tmb_par"]["values"])


@pytest.mark.parametrize("ref_id", _ids("loglik", IDS))
def test_loglik_at_least_glmmtmb(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    assert fit.converged, fit.max_grad
    assert fit.loglik >= ref["fit_stats"]["logLik"] - 2e-3, fit.loglik - ref["fit_stats"]["logLik"]
    assert fit.nobs == ref["nobs"]


def _assert_coefficients(ours, our_se, ref, key):
    """Estimates within 0.02 of glmmTMB's SE, SEs within 2%, names in glmmTMB's order."""
    names, est, se = _table(ref, key)
    assert list(ours.index) == names
    np.testing.assert_array_less(np.abs(ours.values - est), 0.02 * se)
    np.testing.assert_array_less(np.abs(our_se.values / se - 1), 0.02)


@pytest.mark.parametrize("ref_id", _ids("fixed"))
def test_fixed_effects(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    _assert_coefficients(fit.fixef, fit.se, ref, "fixed_effects")


@pytest.mark.parametrize("ref_id", _ids("zi", [i for i in IDS if REFS[i].get("zi_coefficients")]))
def test_zero_inflation_coefficients(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    _assert_coefficients(fit.zi_fixef, fit.zi_se, ref, "zi_coefficients")


@pytest.mark.parametrize("ref_id", _ids("disp", [i for i in IDS
                                                 if REFS[i].get("disp_coefficients") and i not in R_SHORT]))
def test_dispersion_coefficients(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    _assert_coefficients(fit.disp_fixef, fit.disp_se, ref, "disp_coefficients")


@pytest.mark.parametrize("ref_id", _ids("sd"))
def test_random_effect_sds(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    vc = fit.varcorr
    ours = {(r.group, r.term1): r.sd for r in vc.itertuples() if pd.isna(r.term2) and r.group != "Residual"}
    theirs = random_sds(ref)
    assert set(ours) == set(theirs)
    for key, sd in theirs.items():
        assert abs(ours[key] - sd) <= 0.02 * sd + 2e-3, (key, ours[key], sd)


@pytest.mark.parametrize("ref_id", _ids("objective", IDS))
def test_objective_at_glmmtmb_estimates(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    x = tmb_parameters(ref, fit.model)
    assert len(x) == len(fit.model.parameter_names())
    value = float(fit.model.objective()(np.asarray(x)))
    assert value == pytest.approx(ref["estimation"]["objective"], rel=1e-8)


@pytest.mark.parametrize("ref_id", ["nb2_disp", "beta_disp"])
def test_dispersion_formula_with_zero_slopes_is_the_scalar_dispersion(extra_fit, ref_id):
    """A dispersion formula whose non-intercept coefficients are 0 is the model with a
    single dispersion parameter: the objectives agree at every other parameter value."""
    _, fit = extra_fit(ref_id)
    model = fit.model
    scalar = model.update(disp=None)
    s = model.spec.slices()["betad"]
    assert model.spec.pd == 2 and scalar.spec.pd == 1
    for c in (-0.5, 0.7):
        x = np.array(fit.x, float)
        x[s] = [c, 0.0]
        x_scalar = np.delete(x, s.start + 1)
        assert float(model.objective()(x)) == pytest.approx(float(scalar.objective()(x_scalar)), rel=1e-12)


@pytest.mark.parametrize("ref_id", _ids("predict"))
def test_predictions(extra_fit, ref_id):
    """Every predict() type against glmmTMB's: link, conditional, response, zprob and disp
    (the dispersion parameter per row as glmmTMB's sigma(): gaussian exp(betad / 2), others
    exp(betad), Gamma exp(-betad / 2))."""
    ref, fit = extra_fit(ref_id)
    assert {"link", "conditional", "response"} <= set(ref["predictions"])
    for kind, values in ref["predictions"].items():
        np.testing.assert_allclose(fit.predict(type=kind), values, rtol=2e-3, atol=1e-5, err_msg=kind)


@pytest.mark.parametrize("ref_id", sorted(R_SHORT))
def test_glmmtmb_stopped_short(extra_fit, ref_id):
    ref, fit = extra_fit(ref_id)
    assert fit.loglik > ref["fit_stats"]["logLik"] + 2e-3
    # ... and glmmjax's fit is glmmTMB's own optimum from a better start
    better, _ = extra_fit(ref_id + "_start")
    assert fit.loglik >= better["fit_stats"]["logLik"] - 2e-3


def test_identity_link_random_effects_start_at_the_residual_scale(extra_fit):
    # L = I would put sleepstudy's Subject SD at 1 ms against a residual SD near 50 ms, where
    # the objective is concave in L and L-BFGS crawled (231 iterations); starting at the
    # least-squares residual SD (lme4's relative theta = 1) it converges as glmmTMB does.
    _, fit = extra_fit("gauss_disp")
    model = fit.model
    X, y = np.asarray(model.design.X), np.asarray(model.design.y, float)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    theta0 = model.start()[model.spec.slices()["theta"]]
    np.testing.assert_allclose(theta0, [np.sqrt(np.mean((y - X @ beta) ** 2))], rtol=1e-12)
    assert fit.iterations <= 60
