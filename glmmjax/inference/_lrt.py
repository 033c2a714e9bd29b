"""Likelihood-ratio tests of nested models: lme4's ``anova(m0, m1, ...)``.

For models sorted by their number of parameters npar_1 <= npar_2 <= ..., row j of the table
compares model j with model j - 1 (as lme4's anova.merMod):

    Chisq_j = 2 * max(0, logLik_j - logLik_{j-1}),   Df_j = npar_j - npar_{j-1},
    Pr(>Chisq)_j = P(chi^2_{Df_j} > Chisq_j)         (none when Df_j = 0),

with AIC = -2 logLik + 2 npar, BIC = -2 logLik + log(n) npar and deviance = -2 logLik.
npar is ``fit.df`` (logLik's df: fixed effects, variance parameters, dispersion). The test
assumes the models are nested; nothing checks that, as in R. A model without random
effects (a GLM) can take part: its log-likelihood is on the same scale as the mixed
models' (full densities, normalizing constants included).

REML log-likelihoods of models with different fixed effects are not comparable, so REML
fits are refitted by maximum likelihood first, started from their REML estimates, as
lme4's ``refitML``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn

__all__ = ["anova"]

REFIT_MESSAGE = "refitting model(s) with ML (instead of REML)"
COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


def anova(*fits, names=None, refit: bool = True) -> pd.DataFrame:
    """Likelihood-ratio tests of nested fitted models, as lme4's ``anova(m0, m1, ...)``.

    Arguments:
        *fits: two or more FitResults of models fitted to the same data (same rows, same
            response). Order does not matter: the table is sorted by npar (stable for ties).
        names: row names, one per fit in the order given; default: the models' formulas
            (lme4 uses the objects' names). Duplicated names are replaced by MODEL1, MODEL2,
            ... with a warning, as lme4 does.
        refit: refit REML fits by ML first (lme4's default). With ``refit=False`` the REML
            log-likelihoods are used as they are, with a warning when REML and ML fits are
            mixed.

    Returns:
        A DataFrame with one row per model (sorted by npar) and columns npar, AIC, BIC,
        logLik, deviance, Chisq, Df, Pr(>Chisq); the first row's Chisq, Df and p are NaN.
        ``attrs["heading"]`` lists "name: formula" per model (the formula alone when it is
        the name) and ``attrs["refitted"]`` the names of the models that were refitted by
        ML (a warning says so, as lme4's message).

    Raises:
        ValueError: fewer than two fits, names of the wrong length, or models fitted to
            different data (different numbers of observations or different responses).
        TypeError: an argument that is not a fitted model.
    """
    fits = list(fits)
    if len(fits) < 2:
        raise ValueError(f"anova() compares two or more fitted models, got {len(fits)}")
    for i, f in enumerate(fits):
        if not (hasattr(f, "model") and hasattr(f, "loglik") and hasattr(f, "df")):
            raise TypeError(f"anova() argument {i + 1} is a {type(f).__name__}, not a fitted model (FitResult)")
    _check_same_data(fits, [str(f.model.formula) for f in fits])
    labels = _names(fits, names)

    refitted = []
    reml = [bool(f.reml) for f in fits]
    if refit and any(reml):
        warn(REFIT_MESSAGE, GlmmjaxWarning)
        for i, f in enumerate(fits):
            if reml[i]:
                fits[i] = refit_ml(f)
                refitted.append(labels[i])
    elif any(reml) and not all(reml):
        warn("some models fit with REML = TRUE, some not", GlmmjaxWarning)

    npar = np.array([f.df for f in fits], dtype=float)
    order = np.argsort(npar, kind="stable")
    fits = [fits[i] for i in order]
    labels = [labels[i] for i in order]
    npar = npar[order]
    llk = np.array([f.loglik for f in fits], dtype=float)
    nobs = fits[0].nobs

    chisq = np.concatenate([[np.nan], 2.0 * np.maximum(0.0, np.diff(llk))])
    df = np.concatenate([[np.nan], np.diff(npar)])
    with np.errstate(invalid="ignore"):
        p = np.where(df == 0, np.nan, stats.chi2.sf(chisq, np.where(df > 0, df, 1.0)))
    table = pd.DataFrame({
        "npar": npar.astype(int),
        "AIC": -2.0 * llk + 2.0 * npar,
        "BIC": -2.0 * llk + np.log(nobs) * npar,
        "logLik": llk,
        "deviance": -2.0 * llk,
        "Chisq": chisq,
        "Df": df,
        "Pr(>Chisq)": p,
    }, index=pd.Index(labels), columns=COLUMNS)
    table.attrs["heading"] = ["Models:"] + [nm if nm == f.model.formula else f"{nm}: {f.model.formula}"
                                            for nm, f in zip(labels, fits)]
    table.attrs["refitted"] = refitted
    return table


def refit_ml(fit):
    """The ML fit of a REML-fitted model, started at its REML estimates (lme4's refitML)."""
    if not fit.reml:
        return fit
    model = fit.model.update(reml=False)
    return model.fit(start=np.asarray(fit.x, float))


def _names(fits, names) -> list:
    if names is not None:
        names = [str(n) for n in names]
        if len(names) != len(fits):
            raise ValueError(f"names has {len(names)} entries for {len(fits)} models")
        if len(set(names)) != len(names):
            raise ValueError(f"names must be unique, got {names}")
        return names
    labels = [str(f.model.formula) for f in fits]
    if len(set(labels)) != len(labels):
        warn("failed to find model names, assigning generic names", GlmmjaxWarning)
        labels = [f"MODEL{i + 1}" for i in range(len(fits))]
    return labels


def _check_same_data(fits, labels):
    """Refuse models fitted to different data: lme4 checks nobs and the data object."""
    nobs = [f.nobs for f in fits]
    if len(set(nobs)) > 1:
        detail = ", ".join(f"{nm}: {n}" for nm, n in zip(labels, nobs))
        raise ValueError(f"models were not all fitted to the same size of dataset (nobs {detail}); "
                         "likelihood-ratio tests need the same observations in every model")
    ref = fits[0].model.design
    for nm, f in zip(labels[1:], fits[1:]):
        d = f.model.design
        same = _same_array(ref.y, d.y) and _same_array(ref.size, d.size)
        if not same:
            raise ValueError(f"models were not all fitted to the same response: {nm!r} has response "
                             f"{d.response!r} with values different from {labels[0]!r}'s {ref.response!r}")


def _same_array(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-12, atol=0.0))
