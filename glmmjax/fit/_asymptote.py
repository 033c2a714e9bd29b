"""Parameters that run to an asymptote, and the restarts that look for a better optimum.

Some submodels have a limit at infinity where the likelihood levels off: a zero-inflation
probability tending to 0 (the zi intercept towards -infinity: the model without
zero-inflation) or to 1 on some rows, and a dimensionless dispersion parameter tending to its
limit (NB2's theta to infinity: the Poisson). There the gradient vanishes and the optimizer
stops, although an interior optimum may be better: on the correctness sweep (tests/sweep) a
zero-inflated NB2 started from its GLM (which explains clustered zeros by overdispersion)
ran the zi intercept to -25, 0.2-19 log-likelihood units below glmmTMB's optimum at -2.

A fit is *at an asymptote* when a zero-inflation predictor is below -LIMIT on every row or
above LIMIT on some row, or a dimensionless dispersion predictor (``Family.disp_dimensionless``)
is beyond +-LIMIT on some row (fixed parts only). Such a fit is restarted from the interior
start (``GLMM.start``: zero-inflation probability 0.27, the dispersion's moment estimate)
and from its own optimum with the asymptotic submodel reset to that start; the best
optimum is kept, and a warning says so when it is still at the asymptote (the supremum is
then approached at infinity: the data carry no evidence for that submodel, or separate it).
"""
from __future__ import annotations

import numpy as np

__all__ = ["LIMIT", "asymptotes", "restart_points"]

LIMIT = 12.0     # |linear predictor| beyond which a logit or log-dispersion is at its limit (p < 6e-6)


def _predictors(model, X):
    """(zi, disp) fixed linear predictors of the external parameter rows X (B, d): (B, n) or None."""
    s = model.spec.slices()
    zi = disp = None
    if model.spec.pz:
        zi = X[:, s["betazi"]] @ np.asarray(model.data.Xzi, float).T
    if model.spec.pd and model.family.disp_dimensionless:
        disp = X[:, s["betad"]] @ np.asarray(model.Xd, float).T
    return zi, disp


def asymptotes(model, X) -> list:
    """Per row of X (B, d) of external parameters, the list of submodels at an asymptote
    (module docstring), each as a message; a 1-d x gives one list."""
    X = np.asarray(X, float)
    single = X.ndim == 1
    X = np.atleast_2d(X)
    zi, disp = _predictors(model, X)
    out = [[] for _ in range(len(X))]
    n = model.design.nobs
    for b in range(len(X)):
        if zi is not None and np.all(zi[b] < -LIMIT):
            out[b].append(f"the zero-inflation probability tends to 0 (its linear predictor is below -{LIMIT:g} on "
                          "every row): the data show no zero-inflation beyond the conditional model's zeros; the "
                          "model without zi= fits as well")
        if zi is not None and np.any(zi[b] > LIMIT):
            k = int(np.sum(zi[b] > LIMIT))
            out[b].append(f"the zero-inflation probability tends to 1 on {k} of {n} rows (linear predictor above "
                          f"{LIMIT:g}): the zero-inflation model separates those rows' zeros")
        if disp is not None and np.any(np.abs(disp[b]) > LIMIT):
            k = int(np.sum(np.abs(disp[b]) > LIMIT))
            out[b].append(f"the dispersion model's {model.family.disp_scale} is beyond +-{LIMIT:g} on {k} of {n} "
                          f"rows: the {model.family.name} family is at the limit of its dispersion there, where the "
                          "likelihood levels off")
    return out[0] if single else out


def restart_points(model, x) -> list:
    """Start vectors (external) for a fit at an asymptote: the interior start, and ``x``
    with its asymptotic submodels reset to the interior start's values."""
    start = np.asarray(model.start(), float)
    s = model.spec.slices()
    reset = np.array(x, float)
    for part in ("betazi", "betad"):
        reset[s[part]] = start[s[part]]
    return [start, reset]
