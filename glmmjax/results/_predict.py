"""Prediction, simulation and residuals of a fitted mixed model (lme4 conventions).

Linear predictor. For rows with fixed-effects matrix X, offset o and, per random-effect block
(grouping factor) g, model-matrix rows z_g and level code j_g(i),

    eta_i = x_i' beta + o_i + sum_{g in R} z_{g,i}' b_{g, j_g(i)},

where R is the set of blocks conditioned on: all of them for ``re_form=None`` (lme4's
default), none for ``re_form="~0"`` / ``"NA"`` (population level), or the groups named in a
formula such as ``"~(1|Subject)"``. With new data a level not seen in the fit contributes
b = 0 (lme4's ``allow.new.levels=TRUE``), i.e. its prediction is the population one for that
grouping factor. ``type="response"`` applies the inverse link: mu = g^{-1}(eta) (binomial:
the success probability).

Simulation (lme4's ``simulate.merMod``). For blocks not conditioned on, new random effects
are drawn per level, b_{g,j} = L_g z, z ~ N(0, I_k), with L_g L_g' = Sigma_g the fitted
covariance (a symmetric square root, so singular fits work); conditioned blocks keep the
conditional modes. Then y ~ family(mu = g^{-1}(eta), fitted dispersion). For a Gaussian model
y_i = eta_i + sigma eps_i / sqrt(w_i) (prior weights w). Binomial draws are successes out of
the model's numbers of trials. Prior weights of other families do not enter the draws (as R's
simulate for poisson). The default ``re_form="~0"`` is lme4's ``re.form=NA``.

Residuals, with y the response (binomial: the proportion successes / trials), mu the fitted
mean at the conditional modes and w the prior weights (binomial: the numbers of trials, as R):

    response:  y - mu
    pearson:   (y - mu) sqrt(w) / sqrt(V(mu))
    deviance:  sign(y - mu) sqrt(w d(y, mu))

V is the family's variance at the fitted dispersion: mu(1-mu) (per trial) for the binomial,
mu for the Poisson, mu + mu^2/theta (nbinom2), mu(1+phi) (nbinom1), mu^2/k (Gamma),
mu(1-mu)/(1+phi) (beta), sigma^2 df/(df-2) (t), sigma^2 (Gaussian with a dispersion model).
For a profiled LMM lme4 does not scale by sigma: pearson = deviance = (y - mu) sqrt(w).

The unit deviance d(y, mu) is 2 (l(y; mu_sat) - l(y; mu)) with the dispersion fixed at its
fitted value, l the family's log density and mu_sat the mean maximizing it:

    poisson    2 (y log(y/mu) - (y - mu))
    binomial   2 (y log(y/mu) + (1-y) log((1-y)/(1-mu)))  (y a proportion; times w = trials)
    nbinom2    2 (y log(y/mu) - (y + theta) log((y + theta)/(mu + theta)))    (MASS)
    t          (df + 1) log(1 + ((y - mu)/sigma)^2 / df)
    nbinom1, beta: from the log density, mu_sat found by Newton's method from mu = y

(y log y taken as 0 at y = 0). For the two exponential-dispersion families the deviance is
given without the dispersion, as R's ``family()$dev.resids``: Gaussian (y - mu)^2, Gamma
-2 (log(y/mu) - (y - mu)/mu). The sum of w d over the rows is lme4's ``deviance()`` of a
glmer fit (not -2 logLik).
"""
from __future__ import annotations

import re
from functools import partial

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from ..families import Family

__all__ = ["predict", "simulate", "residuals", "unit_deviance"]


# -- re_form -------------------------------------------------------------------------------

def _conditioned(fit, re_form) -> tuple:
    """Per block (model.blocks order): whether the block's random effects are conditioned on."""
    blocks = fit.model.blocks
    if re_form is None:
        return tuple(True for _ in blocks)
    if isinstance(re_form, float) and np.isnan(re_form):
        return tuple(False for _ in blocks)
    if not isinstance(re_form, str):
        raise ValueError(f"re_form must be None, '~0', 'NA' or a formula string, not {re_form!r}")
    s = re_form.replace(" ", "")
    if s in ("~0", "NA", "0", "~-1", "~1", "1", ""):
        return tuple(False for _ in blocks)
    groups = [g.strip() for g in re.findall(r"\|\|?([^()|]+)\)", s)]
    if not groups:
        raise ValueError(f"Cannot read re_form={re_form!r}: use None (all random effects), '~0' (none) "
                         "or a formula such as '~(1|group)'")
    known = [b.group for b in blocks]
    for g in groups:
        if g not in known:
            raise ValueError(f"re_form names the grouping factor {g!r}, which is not in the model "
                             f"(grouping factors: {known})")
    return tuple(b.group in groups for b in blocks)


# -- prediction -----------------------------------------------------------------------------

def _X(model) -> np.ndarray:
    """The fixed-effects matrix of the fitted rows on the scale of fixef (model.design.X; the
    model's data.X may be a reparameterized copy used by the optimizer)."""
    return np.asarray(model.design.X, float)


def _new_arrays(fit, newdata, offset, check):
    """X, offset, Xzi and per-block (codes, Z) of new rows (blocks merged as in model.blocks).

    ``check[g]`` True: a level of block g not seen in the fit raises ValueError.
    """
    import pandas as pd

    from ..design import new_data, row_labels

    model = fit.model
    newdata = newdata if isinstance(newdata, pd.DataFrame) else pd.DataFrame(newdata)
    nd = {"cond": new_data(model.design, newdata, offset=offset)}
    designs = {"cond": model.design}
    if model.zi_design is not None:
        nd["zi"] = new_data(model.zi_design, newdata)
        designs["zi"] = model.zi_design
    per_block = []
    for chk, b in zip(check, model.blocks):
        design, new = designs[b.component], nd[b.component]
        idx = [i for i, t in enumerate(design.terms) if t.group == b.group]
        codes = np.asarray(new.codes[idx[0]], np.int64)
        Z = np.hstack([np.asarray(new.Z[i], float).reshape(new.nobs, -1) for i in idx])
        if chk and np.any(codes < 0):
            row = int(np.flatnonzero(codes < 0)[0])
            comps = list(design.fixed_info.terms[idx[0]].components)
            lab = ":".join(str(row_labels(newdata[c].iloc[row: row + 1])[0]) for c in comps)
            raise ValueError(f"new level {lab!r} of grouping factor {b.group!r} (row {row} of newdata) is "
                             "not in the fitted data; use allow_new_levels=True to predict it at the "
                             "population level")
        per_block.append((codes, Z))
    if "zi" in nd:
        Xzi = np.asarray(nd["zi"].X, float)
    elif model.zi_info is not None:
        Xzi = np.asarray(model.zi_info.build(newdata), float)
    else:
        Xzi = None
    return np.asarray(nd["cond"].X, float), np.asarray(nd["cond"].offset, float), Xzi, per_block


def _predictors(fit, newdata, cond, allow_new_levels, offset):
    """(eta, zi_eta): the conditional and zero-inflation linear predictors (zi_eta None
    without a zi model), with the random effects of the blocks in ``cond``."""
    model = fit.model
    beta = np.asarray(fit.fixef.values, float)
    betazi = None if fit.zi_fixef is None else np.asarray(fit.zi_fixef.values, float)
    if newdata is None:
        d = model.data
        X, off = _X(model), np.asarray(d.offset, float)
        Xzi = np.asarray(d.Xzi, float)
        per_block = [(np.asarray(c), np.asarray(Z, float)) for c, Z in zip(d.codes, d.Z)]
    else:
        check = tuple(keep and not allow_new_levels for keep in cond)
        X, off, Xzi, per_block = _new_arrays(fit, newdata, offset, check)
    eta = {"cond": X @ beta + off, "zi": None if betazi is None else Xzi @ betazi}
    for keep, blk, b, (codes, Z) in zip(cond, model.blocks, fit.modes, per_block):
        if keep:
            seen = codes >= 0
            bb = b[np.where(seen, codes, 0)] * seen[:, None]
            eta[blk.component] = eta[blk.component] + np.sum(Z * bb, axis=1)
    return eta["cond"], eta["zi"]


def predict(fit, newdata=None, re_form=None, type="response", allow_new_levels=True, offset=None) -> np.ndarray:
    """Predictions of a fitted model on the link or response scale (lme4's predict.merMod).

    Arguments:
        fit: a FitResult.
        newdata: a data frame with the formula's columns (the response may be absent);
            None predicts the fitted rows.
        re_form: None conditions on all random effects (of the zero-inflation model too);
            "~0" or "NA" gives population-level predictions; "~(1|g)" conditions on grouping
            factor g only.
        type: "link" (eta), "response" (the mean of y: (1 - p) mu with zero-inflation
            probability p; binomial: the probability), "conditional" (mu, the mean of the
            conditional (count) model), "zprob" (p, the zero-inflation probability) or
            "disp" (the dispersion parameter per row, as glmmTMB's sigma(): gaussian and t
            sigma, nbinom2 theta, nbinom1 and beta phi, Gamma 1/sqrt(shape); 1 for families
            without one).
        allow_new_levels: if False, a level of a conditioned-on grouping factor that is
            absent from the fit raises ValueError; if True it contributes zero.
        offset: offsets of the new rows when the model's offset was given as an array.
    """
    if type not in ("link", "response", "conditional", "zprob", "disp"):
        raise ValueError(f"type must be 'link', 'response', 'conditional', 'zprob' or 'disp', not {type!r}")
    cond = _conditioned(fit, re_form)
    model = fit.model
    if type == "disp":
        return _sigma_rows(fit, newdata)
    eta, zi_eta = _predictors(fit, newdata, cond, allow_new_levels, offset)
    if type == "link":
        return eta
    # the family's mean: g^{-1}(eta), except for families that override Family.mean (the
    # zero-truncated counts: mu / (1 - f(0)), which depends on the dispersion too)
    fam = model.family
    if fam.__class__.mean is Family.mean:    # (``type`` is an argument here)
        mu = fam.link.host_linkinv(eta)
    else:
        extra = jnp.asarray(fit.extra) if np.size(fit.extra) else jnp.zeros(fam.n_extra)
        mu = np.asarray(fam.mean(jnp.asarray(eta), jnp.asarray(_disp_rows(fit, newdata)), extra), float)
    if type == "conditional":
        return mu
    pz = np.zeros_like(eta) if zi_eta is None else 1.0 / (1.0 + np.exp(-zi_eta))
    if type == "zprob":
        return pz
    return (1.0 - pz) * mu


def _sigma_rows(fit, newdata=None) -> np.ndarray:
    """glmmTMB's predict(type="disp"): the family's sigma() per row."""
    model = fit.model
    n = model.design.nobs if newdata is None else len(newdata)
    if model.spec.profiled:
        return np.full(n, float(fit.sigma_))
    if not model.spec.pd:
        return np.ones(n)
    fam = model.family
    extra = jnp.asarray(fit.extra) if np.size(fit.extra) else jnp.zeros(fam.n_extra)
    d = fam.dispersion_parameters(jnp.asarray(_disp_rows(fit, newdata)), extra)
    return np.broadcast_to(np.asarray(d["sigma"] if "sigma" in d else next(iter(d.values())), float), (n,)).copy()


def _disp_rows(fit, newdata=None) -> np.ndarray:
    """Dispersion linear predictor per row (zeros without a dispersion model)."""
    model = fit.model
    n = model.design.nobs if newdata is None else len(newdata)
    if not model.spec.pd:
        return np.zeros(n)
    Xd = model.Xd if newdata is None else np.asarray(model.disp_info.build(newdata), float)
    return Xd @ np.asarray(fit.disp_fixef.values, float)


# -- simulation -----------------------------------------------------------------------------

def _sqrt_cov(S) -> np.ndarray:
    """A square root L of a PSD matrix (L L' = S), robust to singular S."""
    S = np.asarray(S, float)
    S = 0.5 * (S + S.T)
    vals, vecs = np.linalg.eigh(S)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


@partial(jax.jit, static_argnames=("family", "cond", "targets", "nsim"))
def _simulate_jit(family, cond, targets, nsim, key, fixed, zfixed, codes, Zs, modes, Ls, disp_eta, extra, size):
    keys = jax.random.split(key, nsim)

    def one(k):
        kb, ky, kz = jax.random.split(k, 3)
        bkeys = jax.random.split(kb, max(len(cond), 1))
        eta = [fixed, zfixed]
        for i, (keep, t, c, Z, b, L) in enumerate(zip(cond, targets, codes, Zs, modes, Ls)):
            if not keep:
                z = jax.random.normal(bkeys[i], b.shape, dtype=fixed.dtype)
                b = z @ L.T
            eta[t] = eta[t] + jnp.sum(Z * b[c], axis=1)
        y = family.sample(ky, eta[0], disp_eta, extra, size)
        return jnp.where(jax.random.uniform(kz, y.shape, dtype=fixed.dtype) < jax.nn.sigmoid(eta[1]), 0.0, y)

    return jax.vmap(one)(keys)


def _disp_eta(fit) -> np.ndarray:
    """Per-row dispersion linear predictor at the fit (Gaussian: log variance incl. weights)."""
    model = fit.model
    d = model.data
    n = int(d.y.shape[0])
    w = np.asarray(d.weights, float)
    fam = model.family
    if model.spec.profiled:
        de = np.full(n, 2.0 * np.log(fit.sigma_))
    elif model.spec.pd:
        de = model.Xd @ np.asarray(fit.disp_fixef.values, float)
    else:
        de = np.zeros(n)
    if fam.name == "gaussian":
        de = de - np.log(w)
    return de


def simulate(fit, nsim=1, seed=0, re_form="~0") -> np.ndarray:
    """Simulated responses from the fitted model, shape (nsim, nobs) (lme4's simulate).

    Arguments:
        nsim: number of simulated data sets.
        seed: seed of the jax.random key.
        re_form: "~0" / "NA" (default, lme4's re.form=NA) draws new random effects from
            N(0, Sigma) (those of the zero-inflation model too); None conditions on the conditional
            modes; "~(1|g)" conditions on grouping factor g and draws the others.

    Binomial responses are numbers of successes out of the model's trials.
    """
    nsim = int(nsim)
    if nsim < 1:
        raise ValueError(f"nsim must be >= 1, not {nsim}")
    cond = _conditioned(fit, re_form)
    model = fit.model
    d = model.data
    dt = d.y.dtype
    fam = model.family
    fixed = jnp.asarray(_X(model) @ np.asarray(fit.fixef.values, float) + np.asarray(d.offset), dt)
    Ls = tuple(jnp.asarray(_sqrt_cov(S), dt) for S in fit.covariances)
    modes = tuple(jnp.asarray(b, dt) for b in fit.modes)
    extra = jnp.asarray(fit.extra, dt) if np.size(fit.extra) else jnp.zeros(max(fam.n_extra, 0), dt)
    # the zero-inflation predictor; -inf (probability 0) without a zi model
    zfixed = (np.asarray(d.Xzi, float) @ np.asarray(fit.zi_fixef.values, float) if fit.zi_fixef is not None
              else np.full(d.y.shape[0], -np.inf))
    targets = tuple(int(b.component == "zi") for b in model.blocks)
    out = _simulate_jit(fam, cond, targets, nsim, jax.random.PRNGKey(int(seed)), fixed, jnp.asarray(zfixed, dt),
                        tuple(d.codes), tuple(d.Z), modes, Ls, jnp.asarray(_disp_eta(fit), dt), extra, d.size)
    return np.asarray(out, float)


# -- residuals ------------------------------------------------------------------------------

def _xlogy_ratio(y, m):
    """y log(y / m), 0 at y = 0."""
    return jsp.xlogy(y, y) - jsp.xlogy(y, m)


def _saturated_newton(family, y, disp_eta, extra, size, lmu0, steps=30):
    """max over log mu of the log density at y (elementwise), by damped Newton from lmu0."""

    def ll(lm):
        return family.loglik(y, family.link.linkfun(jnp.exp(lm)), disp_eta, extra, size)

    g = jax.grad(lambda lm: jnp.sum(ll(lm)))
    h = lambda lm: jax.jvp(g, (lm,), (jnp.ones_like(lm),))[1]

    def body(lm, _):
        gr, hs = g(lm), h(lm)
        step = jnp.where(hs < 0, -gr / jnp.where(hs < 0, hs, -1.0), 0.1 * gr)
        step = jnp.clip(step, -1.0, 1.0)
        new = lm + step
        better = ll(new) >= ll(lm)
        return jnp.where(better, new, lm), None

    lm, _ = jax.lax.scan(body, lmu0, None, length=steps)
    return jnp.maximum(ll(lm), ll(lmu0))


def unit_deviance(family, y, mu, disp_eta, extra, size=None):
    """Unit deviance d(y, mu) per row (see the module docstring); binomial y = successes.

    For the binomial the value is for all ``size`` trials (R's dev.resids times the weight).
    """
    y = jnp.asarray(y)
    mu = jnp.asarray(mu)
    name = family.name
    if name == "gaussian":
        return (y - mu) ** 2
    if name == "poisson":
        return 2.0 * (_xlogy_ratio(y, mu) - (y - mu))
    if name == "binomial":
        n = jnp.ones_like(y) if size is None else jnp.asarray(size)
        return 2.0 * (_xlogy_ratio(y, n * mu) + _xlogy_ratio(n - y, n * (1.0 - mu)))
    if name == "nbinom2":
        th = jnp.exp(disp_eta)
        return 2.0 * (_xlogy_ratio(y, mu) - (y + th) * (jnp.log(y + th) - jnp.log(mu + th)))
    if name == "Gamma":
        return -2.0 * (jnp.log(y / mu) - (y - mu) / mu)
    if name == "t":
        df = jnp.exp(jnp.asarray(extra)[0])
        z = (y - mu) * jnp.exp(-disp_eta)
        return (df + 1.0) * jnp.log1p(z * z / df)
    # generic: 2 (max_mu l(y; mu) - l(y; mu)) with the dispersion fixed (nbinom1, beta, others)
    eta = family.link.linkfun(mu)
    ll_mu = family.loglik(y, eta, disp_eta, extra, size)
    if name == "nbinom1":
        pos = y > 0
        y0 = jnp.where(pos, y, 1.0)
        sat = _saturated_newton(family, y0, disp_eta, extra, size, jnp.log(y0))
        sat = jnp.where(pos, sat, 0.0)      # y = 0: the density tends to 1 as mu -> 0
    else:
        sat = _saturated_newton(family, y, disp_eta, extra, size, jnp.log(y))
    return jnp.maximum(2.0 * (sat - ll_mu), 0.0)


def residuals(fit, type="response") -> np.ndarray:
    """Residuals at the conditional modes: "response", "pearson" or "deviance" (R's conventions).

    Binomial residuals are on the proportion scale (successes / trials) with the trials as
    weights; a profiled LMM's pearson and deviance residuals are sqrt(w) (y - mu), not
    divided by sigma (lme4).
    """
    if type not in ("response", "pearson", "deviance"):
        raise ValueError(f"type must be 'response', 'pearson' or 'deviance', not {type!r}")
    model = fit.model
    fam = model.family
    if type == "deviance" and (fam.name == "betabinomial" or getattr(fam, "zeros_need_zi", False)):
        raise ValueError(f"deviance residuals are not defined for the {fam.name} family ({fam!r}; glmmTMB "
                         "has none either); use type='response' or 'pearson'")
    if type == "deviance" and model.spec.pz:
        raise ValueError("deviance residuals are not defined for a zero-inflated model (glmmTMB has none "
                         "either); use type='response' or 'pearson'")
    d = model.data
    y = np.asarray(d.y, float)
    size = np.asarray(d.size, float)
    w = np.asarray(d.weights, float)
    mu = fit.fitted()
    binom = fam.trials
    yr = y / size if binom else y
    r = yr - mu
    if type == "response":
        return r
    wr = w * size if binom else w          # R's prior weights (binomial: trials)
    if model.spec.profiled:
        return r * np.sqrt(wr)
    n = y.shape[0]
    de = (model.Xd @ np.asarray(fit.disp_fixef.values, float)) if model.spec.pd else np.zeros(n)
    extra = jnp.asarray(fit.extra) if np.size(fit.extra) else jnp.zeros(fam.n_extra)
    if type == "pearson":
        if model.spec.pz:
            # y = 0 with probability p, else from the conditional model (mean mu_c, variance V):
            # Var(y) = (1 - p) V + p (1 - p) mu_c^2, as glmmTMB's residuals()
            mu_c, p = predict(fit, type="conditional"), predict(fit, type="zprob")
            V = np.asarray(fam.variance(jnp.asarray(mu_c), jnp.asarray(de), extra, None), float)
            V = (1.0 - p) * V + p * (1.0 - p) * mu_c ** 2
        else:
            V = np.asarray(fam.variance(jnp.asarray(mu), jnp.asarray(de), extra, None), float)
        V = np.broadcast_to(V, r.shape)
        return r * np.sqrt(wr) / np.sqrt(V)
    dev = w * np.asarray(unit_deviance(fam, jnp.asarray(y), jnp.asarray(mu), jnp.asarray(de), extra,
                                       jnp.asarray(size)), float)
    return np.sign(r) * np.sqrt(np.clip(dev, 0.0, None))
