"""R² for mixed models (Nakagawa & Schielzeth 2013; Johnson 2014; Nakagawa et al. 2017), as
performance::r2_nakagawa 0.10.2 computes it from insight::get_variance (insight 0.19.0).

    R2_marginal    = var_fixed / (var_fixed + var_random + var_residual)
    R2_conditional = (var_fixed + var_random) / (var_fixed + var_random + var_residual)

with the variance components (insight's ``.compute_variances`` and its helpers):

var_fixed
    The sample variance (denominator n - 1) of the fixed-effect linear predictor X beta over
    the observations (no offset, no random effects).
var_random
    Summed over the random-effect blocks whose grouping factor has fewer levels than there
    are observations: mean_i z_i' Sigma z_i, Johnson's (2014) extension to random slopes,
    where z_i holds row i of the *fixed-effect* model matrix X in the block's columns
    (an intercept column is added when X has none; a random-effect column that is not a
    column of X is left out, with its rows and columns of Sigma). For a random-intercept
    block this is its variance.
var_distribution
    gaussian: sigma² (the REML sigma for REML fits). binomial: pi²/3 (logit), 1 (probit),
    pi²/6 (cloglog). Count families with a log link, the lognormal approximation:
    log(1 + V(mu) / mu²) with mu = exp(beta0) the intercept of the *null model* (the
    response regressed on the random-effect terms alone, ``y ~ (re terms)``, offsets kept,
    refitted) and V the family's variance at mu: mu (poisson), mu (1 + mu / theta)
    (nbinom2, theta of the full model). Count families with a sqrt link: 0.25.
var_dispersion
    Non-Gaussian families: the blocks whose grouping factor has one level per observation
    (observation-level random effects), computed as var_random; 0 for gaussian.
var_residual
    var_distribution + var_dispersion.

A singular fit leaves var_random undefined (insight: "Can't compute random effect
variances"): R2_conditional is then NaN and R2_marginal = var_fixed / (var_fixed +
var_residual). Singular means, as insight's ``.is_singular``: for the models lme4 fits
(gaussian identity, binomial, poisson) a diagonal entry of lme4's theta (the Cholesky
factor, relative to sigma for LMMs) below ``tolerance`` in absolute value; for the
others (glmmTMB's families, here nbinom2) a random-effect variance below ``tolerance``.

One difference from insight: an lme4 ``(x || g)`` term makes VarCorr list the terms as
separate blocks, of which insight counts only the first (the one named as the grouping
factor); glmmjax keeps them as one block with a diagonal covariance and counts all, as
insight does for glmmTMB's ``diag(x | g)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .._warnings import GlmmjaxWarning, warn
from ..formula import parse_formula

__all__ = ["r2_nakagawa", "null_formula"]

_BINOMIAL_VARIANCE = {"logit": np.pi ** 2 / 3.0, "probit": 1.0, "cloglog": np.pi ** 2 / 6.0}
_LME4_FAMILIES = ("gaussian", "binomial", "poisson")
_COUNT_FAMILIES = ("poisson", "nbinom2")


def r2_nakagawa(fit, *, tolerance: float = 1e-5, null_fit=None) -> pd.Series:
    """Marginal and conditional R² of a mixed model (performance::r2_nakagawa).

    Arguments:
        fit: a FitResult with random effects: gaussian, binomial (logit, probit, cloglog),
            poisson or nbinom2 (log or sqrt link); no zero-inflation, constant dispersion.
        tolerance: singularity tolerance (performance's default 1e-5), see the module
            docstring.
        null_fit: for log-link count models, the fitted null model ``y ~ (re terms)``;
            by default it is refitted here (``fit.model.update(formula=...).fit()``).

    Returns:
        A Series with R2_conditional, R2_marginal, var_fixed, var_random, var_residual,
        var_distribution and var_dispersion. ``attrs`` holds ``singular`` and, for
        log-link count models, ``null_formula`` and ``null_intercept``.

    Raises:
        ValueError: a model without random effects, with zero-inflation or a dispersion
            formula, or a family/link whose distribution-specific variance is not defined.
    """
    model = fit.model
    fam, link = model.family.name, model.family.link.name
    if not model.blocks:
        raise ValueError("r2_nakagawa needs a mixed model; this model has no random effects")
    if model.zi_formula is not None:
        raise ValueError(f"r2_nakagawa does not handle zero-inflated models (zi={model.zi_formula!r})")
    if model.disp_formula is not None and model.disp_formula.replace(" ", "") not in ("~1", "1"):
        raise ValueError(f"r2_nakagawa needs a constant dispersion; this model has disp={model.disp_formula!r}")
    _check_family(fam, link)

    X = np.asarray(model.design.X, float)
    xnames = list(model.fixed_names)
    var_fixed = float(np.var(X @ np.asarray(fit.fixef.values, float), ddof=1))

    n = fit.nobs
    obs_level = [b.nlevels == n for b in model.blocks]
    parts = [_block_variance(X, xnames, b, S) for b, S in zip(model.blocks, fit.covariances)]
    _warn_slopes(model.blocks, xnames)
    singular = _is_singular(fit, tolerance)
    var_random = np.nan if singular else float(sum(v for v, o in zip(parts, obs_level) if not o))
    if singular:
        warn("Can't compute random effect variances. Some variance components equal zero. "
                      "Your model may suffer from singularity; R2_conditional is NaN", GlmmjaxWarning)

    attrs = {"singular": singular}
    if fam == "gaussian":
        var_distribution = float(fit.sigma) ** 2
    elif fam == "binomial":
        var_distribution = _BINOMIAL_VARIANCE[link]
    elif link == "sqrt":
        var_distribution = 0.25
    else:
        var_distribution, null_form, mu = _lognormal_variance(fit, null_fit)
        attrs.update(null_formula=null_form, null_intercept=float(np.log(mu)))
    var_dispersion = 0.0 if fam == "gaussian" else float(sum(v for v, o in zip(parts, obs_level) if o))
    var_residual = var_distribution + var_dispersion

    if singular:
        r2_marginal = var_fixed / (var_fixed + var_residual)
        r2_conditional = np.nan
    else:
        total = var_fixed + var_random + var_residual
        r2_marginal = var_fixed / total
        r2_conditional = (var_fixed + var_random) / total
    out = pd.Series({
        "R2_conditional": r2_conditional, "R2_marginal": r2_marginal, "var_fixed": var_fixed,
        "var_random": var_random, "var_residual": var_residual, "var_distribution": var_distribution,
        "var_dispersion": var_dispersion,
    }, name="r2_nakagawa", dtype=float)
    out.attrs.update(attrs)
    return out


def null_formula(formula: str) -> str:
    """The null model's formula: the response on the random-effect terms (and offsets) alone.

    As insight's ``null_model`` for mixed models: ``reformulate(re.terms, response = resp)``
    plus the formula's ``offset()`` terms; the fixed part reduces to the intercept.
    """
    pf = parse_formula(formula)
    if pf.response is None:
        raise ValueError(f"formula {formula!r} has no response")
    terms = [f"({r.lhs} {'||' if r.independent else '|'} {r.group})" for r in pf.random]
    terms += [f"offset({o})" for o in pf.offsets]
    return f"{pf.response} ~ {' + '.join(terms) if terms else '1'}"


def _check_family(fam: str, link: str):
    if fam == "gaussian":
        return
    if fam == "binomial" and link in _BINOMIAL_VARIANCE:
        return
    if fam in _COUNT_FAMILIES and link in ("log", "sqrt"):
        return
    raise ValueError(f"r2_nakagawa supports gaussian, binomial (logit, probit, cloglog link) and poisson "
                     f"or nbinom2 (log, sqrt link) models, not {fam} with a {link} link")


def _block_variance(X, xnames, block, Sigma) -> float:
    """mean_i z_i' Sigma z_i with z_i from the fixed-effect matrix (insight's .sigma_sum)."""
    if not any(nm.startswith("(Intercept)") for nm in xnames):
        X = np.column_stack([np.ones(X.shape[0]), X])
        xnames = ["(Intercept)"] + list(xnames)
    keep = [j for j, c in enumerate(block.columns) if c in xnames]
    if not keep:
        return 0.0
    Z = X[:, [xnames.index(block.columns[j]) for j in keep]]
    S = np.asarray(Sigma, float)[np.ix_(keep, keep)]
    return float(np.mean(np.einsum("ij,jk,ik->i", Z, S, Z)))


def _warn_slopes(blocks, xnames):
    missing = sorted({c for b in blocks for c in b.columns if c != "(Intercept)" and c not in xnames})
    if missing:
        warn(f"Random slopes not present as fixed effects ({', '.join(missing)}): their variances are "
                      "left out of var_random, as insight's get_variance does", GlmmjaxWarning)


def _is_singular(fit, tolerance: float) -> bool:
    """insight's .is_singular: lme4's theta diagonal for lme4's families, variances otherwise."""
    model, spec = fit.model, fit.model.spec
    fam = model.family.name
    lme4_like = fam in _LME4_FAMILIES and (spec.profiled or fam != "gaussian")
    if not lme4_like:
        return bool(any(np.min(np.diag(np.asarray(S, float))) < tolerance for S in fit.covariances))
    off, out = 0, False
    for c in spec.covs:
        out = out or c.is_singular(fit.theta[off: off + c.n_theta], 1.0, tolerance)
        off += c.n_theta
    return out


def _lognormal_variance(fit, null_fit):
    """log1p(V(mu) / mu²) at mu = exp(intercept of the null model) (insight's
    .variance_distributional): returns (variance, null formula, mu)."""
    model = fit.model
    form = null_formula(model.formula)
    if null_fit is None:
        null_fit = model.update(formula=form).fit()
    elif list(null_fit.fixef.index) != ["(Intercept)"] or null_fit.nobs != fit.nobs:
        raise ValueError("null_fit must be the fitted null model y ~ (random-effect terms) of the same data, "
                         f"with the intercept as its only fixed effect: {form!r}")
    mu = float(np.exp(null_fit.fixef.values[0]))
    if mu < 6:
        warn(f"mu of {mu:.1f} is too close to zero, estimate of random effect variances may be "
                      "unreliable.", GlmmjaxWarning)
    if model.family.name == "poisson":
        v = mu
    else:  # nbinom2: Var = mu (1 + mu / theta), theta of the full model
        theta = float(fit.dispersion_parameters["theta"])
        v = mu * (1.0 + mu / theta)
    return float(np.log1p(v / mu ** 2)), form, mu
