"""Confidence intervals of a fitted mixed model, as lme4's ``confint(fit, method = "Wald" | "profile")``.

Rows are lme4's parameters, in lme4's order (``parameters``): ``.sig01, .sig02, ...`` for the
random effects' standard deviations and correlations (per random-effect term in lme4's term
order, each term's SDs and correlations as the column-wise lower triangle of its SD/correlation
matrix: for ``(Days | Subject)`` .sig01 = SD(Intercept), .sig02 = cor, .sig03 = SD(Days)),
``.sigma`` for LMMs, then the fixed effects; GLMMs with them add their dispersion parameter
(named as the family reports it, e.g. "theta", for ``disp ~ 1``; "disp:<coef>" otherwise),
"zi:<coef>" and "extra:<name>" rows (glmmjax only; lme4 has no such models).

Wald intervals (method="wald"):
    fixed effects     beta_j +- z se_j with se from ``fit.vcov`` (as lme4);
    SDs, .sigma       exp(log s +- z se(log s)),
    correlations      tanh(atanh r +- z se(atanh r)),
with the standard errors on those scales by the delta method from the inverse Hessian of the
objective: for GLMMs ``fit.vcov_full`` (all flat parameters); for LMMs the Hessian of the
deviance with sigma explicit, in (theta, log sigma) -- the REML criterion for a REML fit,
the ML deviance for an ML fit (laplace/_lmm.py, ``deviance_at_sigma``). lme4 gives NA for the variance parameters
with method = "Wald"; glmmjax gives these intervals (glmmTMB's Wald intervals for SDs are the
same; its correlation intervals use another scale). A dispersion parameter's interval is
taken on its link (log) scale and transformed. SDs estimated at 0 and correlations at +-1
get NaN (an SD below lme4's singularity tolerance, 1e-4 times sigma).

Profile intervals (method="profile"): each parameter's zeta (glmmjax.inference._profile: the
signed root of the ML deviance increase with all other parameters re-optimized) is followed
from the ML optimum by secant steps aimed just past zeta = +-z, and the crossing is then found
by root finding (Illinois regula falsi, to |zeta -+ z| < 1e-5). lme4 instead interpolates a
spline through a traced profile; ``profile_confint`` does that with a traced ``profile()``. An
interval that reaches an SD of 0 or a correlation of +-1 stops there, as lme4's. A REML fit
gets the intervals of its ML refit, as in lme4.
"""
from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn
from ..laplace import hessian_theta_log_sigma
from ..spec import ModelSpec
from ._parameters import disp_natural, parameters, select
from ._profile import Profiler, Walk, first_step, to_natural

__all__ = ["confint", "profile_confint"]


# -- Wald -----------------------------------------------------------------------------------------
def _link_scale(pars, Sigmas, sigma, betad, betazi, extra):
    """Each parameter on its Wald scale: log SD, atanh correlation, log sigma, the coefficient."""
    out = []
    for q in pars:
        if q.kind == "sd":
            out.append(0.5 * jnp.log(Sigmas[q.block][q.i, q.i]))
        elif q.kind == "cor":
            S = Sigmas[q.block]
            out.append(jnp.arctanh(S[q.i, q.j] / jnp.sqrt(S[q.i, q.i] * S[q.j, q.j])))
        elif q.kind == "sigma":
            out.append(jnp.log(sigma))
        elif q.kind == "disp":
            out.append(betad[q.index])
        elif q.kind == "zi":
            out.append(betazi[q.index])
        else:
            out.append(extra[q.index])
    return jnp.stack(out)


@partial(jax.jit, static_argnames=("spec", "pars"))
def _link_jacobian(spec: ModelSpec, pars: tuple, x):
    """(value, Jacobian) of the parameters on their Wald scales with respect to x: GLMMs the flat
    parameter vector (fixed effects on the scale of X), LMMs (theta, log sigma)."""

    def g(x):
        sl = spec.slices()
        sigma = jnp.exp(x[-1]) if spec.profiled else jnp.asarray(1.0, x.dtype)
        th, off, Sig = x[sl["theta"]], 0, []
        for c in spec.covs:
            L = c.cholesky(th[off: off + c.n_theta])
            off += c.n_theta
            Sig.append(sigma ** 2 * (L @ L.T))
        return _link_scale(pars, Sig, sigma, x[sl["betad"]], x[sl["betazi"]], x[sl["extra"]])

    return g(x), jax.jacfwd(g)(x)


def _wald_other(fit, pars, z):
    """Wald intervals of the non-fixed-effect parameters (delta method, module docstring)."""
    model = fit.model
    spec = model.spec
    dt = model.data.y.dtype
    if spec.profiled:
        ls = np.log(fit.sigma)
        x = np.concatenate([fit.theta, [ls]])
        H = np.asarray(hessian_theta_log_sigma(dataclasses.replace(spec, reml=False), model.data,
                                               jnp.asarray(fit.theta, dt), jnp.asarray(ls, dt), bool(fit.reml)))
        V = _inverse(H)
    else:
        x = np.asarray(fit.x, float)
        V = None if fit.vcov_full is None else _inverse_checked(fit.vcov_full.values)
    jspec = dataclasses.replace(spec, reml=False)    # one compilation for REML and ML fits
    est, J = (np.asarray(a, float) for a in _link_jacobian(jspec, tuple(pars), jnp.asarray(x, dt)))
    if V is None:
        se = np.full(len(pars), np.nan)
    else:
        with np.errstate(invalid="ignore"):
            se = np.sqrt(np.einsum("ij,jk,ik->i", J, V, J))
    est = np.where(np.isfinite(est), est, np.nan)
    lo, hi = est - z * se, est + z * se
    scale = float(fit.sigma) if spec.profiled else 1.0
    out = []
    for q, a, b in zip(pars, lo, hi):
        if q.kind in ("sd", "cor") and _at_boundary(fit, q, scale):
            a = b = np.nan
        elif q.kind in ("sd", "sigma"):
            with np.errstate(over="ignore"):
                a, b = np.exp(a), np.exp(b)
        elif q.kind == "cor":
            a, b = np.tanh(a), np.tanh(b)
        elif q.kind == "disp" and np.isfinite(a) and np.isfinite(b):
            extra = np.asarray(fit.x[spec.slices()["extra"]], float)
            a, b = sorted((disp_natural(model, q, a, extra), disp_natural(model, q, b, extra)))
        out.append((a, b) if np.isfinite(a) and np.isfinite(b) else (np.nan, np.nan))
    return out


def _at_boundary(fit, q, scale) -> bool:
    """An SD at (numerically) 0, lme4's isSingular tolerance 1e-4 relative to sigma, or a
    correlation involving one or at +-1: no Wald interval on the log / atanh scale."""
    S = np.asarray(fit.covariances[q.block], float)
    cols = (q.i,) if q.kind == "sd" else (q.i, q.j)
    if min(np.sqrt(max(S[c, c], 0.0)) for c in cols) < 1e-4 * scale:
        return True
    return q.kind == "cor" and abs(S[q.i, q.j]) >= (1 - 1e-8) * np.sqrt(S[q.i, q.i] * S[q.j, q.j])


def _inverse(H):
    """H^{-1} if H is symmetric positive definite, else None."""
    try:
        L = np.linalg.cholesky(0.5 * (H + H.T))
    except np.linalg.LinAlgError:
        return None
    Li = np.linalg.inv(L)
    return Li.T @ Li


def _inverse_checked(V):
    """A covariance matrix if it is finite and positive semi-definite on its diagonal, else None."""
    V = np.asarray(V, float)
    return V if np.all(np.isfinite(V)) and np.all(np.diag(V) >= 0) else None


def wald(fit, pars, level: float) -> np.ndarray:
    """(len(pars), 2) Wald intervals (see the module docstring)."""
    z = stats.norm.ppf(0.5 + level / 2)
    out = np.full((len(pars), 2), np.nan)
    # all of the model's non-fixed-effect parameters (one compilation of the Jacobian per model)
    other = [q for q in parameters(fit.model) if q.kind != "beta"]
    res = dict(zip(other, _wald_other(fit, other, z))) if any(q.kind != "beta" for q in pars) else {}
    se = fit.se.values
    for r, q in enumerate(pars):
        if q.kind == "beta":
            b = float(fit.fixef.values[q.index])
            out[r] = (b - z * se[q.index], b + z * se[q.index])
        else:
            out[r] = res[q]
    return out


# -- profile intervals: root finding on the profile ---------------------------------------------
def interval_bound(prof, st, side: int, zcrit: float, *, ztol=1e-5, max_steps=40,
                   maxmult=10.0) -> float:
    """Where the profile of st.par crosses zeta = side * zcrit, on the slot's scale.

    Steps outward by secant predictions aimed just past the crossing (step growth capped at
    maxmult times the previous step), then finds the crossing inside the bracket by the
    Illinois variant of regula falsi to |zeta - side zcrit| < ztol. Returns the bound of the
    parameter's range (an SD of 0, a correlation of +-1) if the profile stays below zcrit up
    to it, and NaN (with a warning) if the profile cannot be followed.
    """

    if (side < 0 and st.v_hat <= st.lo) or (side > 0 and st.v_hat >= st.hi):
        return st.v_hat             # an estimate at its bound (a singular fit's SD of 0)
    walk = Walk(prof, st)
    target = side * zcrit
    v_prev, z_prev = st.v_hat, 0.0
    v = walk.clip(st.v_hat + side * zcrit * first_step(st, prof.sigma))
    for _ in range(max_steps):
        zeta = walk.eval(v)
        if not np.isfinite(zeta):
            break
        if side * zeta >= zcrit:
            return _illinois(walk, (v_prev, z_prev - target), (v, zeta - target), target, ztol)
        if walk.at_bound(v):
            return v
        slope = (zeta - z_prev) / (v - v_prev)
        dv_last = v - v_prev
        if slope > 0:
            dv = (target * 1.02 - zeta) / slope
            dv = np.sign(dv_last) * min(abs(dv), maxmult * abs(dv_last))
        else:
            dv = 2.0 * dv_last
        v_prev, z_prev = v, zeta
        v = walk.clip(v + dv)
    warn(f"could not follow the profile of {st.par.name} to zeta = {target:.3g}", GlmmjaxWarning)
    return np.nan


def _illinois(walk, a, b, target, ztol, maxit=40) -> float:
    (va, fa), (vb, fb) = a, b
    for _ in range(maxit):
        if abs(fb) < ztol or abs(vb - va) <= 1e-12 * (1.0 + abs(vb)):
            return vb
        vc = vb - fb * (vb - va) / (fb - fa)
        fc = walk.eval(vc) - target
        if not np.isfinite(fc):
            return np.nan
        if fc * fb < 0:
            va, fa = vb, fb
        else:
            fa = 0.5 * fa
        vb, fb = vc, fc
    return vb


def profile_intervals(fit, pars, level: float) -> np.ndarray:
    """(len(pars), 2) profile-likelihood intervals on the parameters' reported scales."""

    prof = Profiler(fit)
    zcrit = float(stats.norm.ppf(0.5 + level / 2))
    out = np.full((len(pars), 2), np.nan)
    for r, par in enumerate(pars):
        st = prof.setup(par)
        ends = [interval_bound(prof, st, side, zcrit) for side in (-1, 1)]
        vals = [to_natural(prof, par, v) if np.isfinite(v) else np.nan for v in ends]
        out[r] = sorted(vals) if all(np.isfinite(vals)) else vals
    return out


# -- the public function ------------------------------------------------------------------------------
def format_perc(probs, digits: int = 3) -> list:
    """Column names as R's format.perc: 100 p to ``digits`` significant digits, common decimals."""
    xs = [100.0 * p for p in probs]
    decimals = 0
    for x in xs:
        s = float(f"{x:.{digits - 1}e}")
        d = next((d for d in range(16) if float(f"{x:.{d}f}") == s), 15)
        decimals = max(decimals, d)
    return [f"{x:.{decimals}f} %" for x in xs]


def confint(fit, method: str = "profile", level: float = 0.95, parm=None, *, oldnames: bool = True) -> pd.DataFrame:
    """Confidence intervals for the parameters of a fitted model, as lme4's ``confint``.

    Arguments:
        fit: a FitResult.
        method: "profile" (likelihood-profile intervals, lme4's default) or "wald"
            ("Wald" is accepted too).
        level: the confidence level, in (0, 1).
        parm: which parameters: None (all), a name or list of names (".sig01", ".sigma",
            "(Intercept)", ...), 0-based positions, "theta_" (the variance parameters,
            .sigma included) or "beta_" (the fixed effects), as lme4's ``parm``.
        oldnames: row names ".sig01", ".sigma" (True, lme4's default) or lme4's
            ``oldNames = FALSE`` names "sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject",
            "sigma" (False).

    Returns:
        A DataFrame indexed by lme4's parameter names (module docstring) with the lower and
        upper limits in columns named as R names them ("2.5 %", "97.5 %" for level 0.95).

    Raises:
        ValueError: an unknown method or parameter, or a level outside (0, 1).
    """
    m = method.lower() if isinstance(method, str) else method
    if m not in ("profile", "wald"):
        raise ValueError(f"method must be 'profile' or 'wald', not {method!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"level must be a number in (0, 1), got {level!r}")
    pars = select(parameters(fit.model), parm)
    if m == "wald":
        ci = wald(fit, pars, level)
    else:
        ci = profile_intervals(fit, pars, level)
    cols = format_perc([(1 - level) / 2, (1 + level) / 2])
    return pd.DataFrame(ci, index=pd.Index([q.name if oldnames else q.label for q in pars]), columns=cols)


def profile_confint(prof: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Intervals from a traced profile, as lme4's ``confint(profile(fit))``: the values where
    zeta = +-z, by monotone (PCHIP) interpolation of value against zeta through the traced
    points (lme4 interpolates with an inverted interpolation spline). An end beyond the
    traced range is the parameter's bound if the trace reached it (an SD of 0), else NaN.
    ``confint(fit, method="profile")`` finds the crossings by root finding instead.
    """
    from scipy.interpolate import PchipInterpolator

    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    z = float(stats.norm.ppf(0.5 + level / 2))
    names = list(dict.fromkeys(prof["parameter"]))
    out = np.full((len(names), 2), np.nan)
    for r, name in enumerate(names):
        g = prof[prof["parameter"] == name].sort_values("zeta")
        zeta, val = g["zeta"].to_numpy(float), g["value"].to_numpy(float)
        keep = np.concatenate([[True], np.diff(zeta) > 0])
        if not np.all(np.diff(zeta) >= 0) or keep.sum() < 2:
            continue
        f = PchipInterpolator(zeta[keep], val[keep], extrapolate=False)
        bounds = (prof.attrs.get("lower", {}).get(name, np.nan), prof.attrs.get("upper", {}).get(name, np.nan))
        for c, (t, b) in enumerate(((-z, bounds[0]), (z, bounds[1]))):
            v = float(f(t))
            reached = np.isfinite(b) and np.any(np.isclose(val, b))
            out[r, c] = v if np.isfinite(v) else (b if reached else np.nan)
    return pd.DataFrame(out, index=pd.Index(names), columns=format_perc([(1 - level) / 2, (1 + level) / 2]))
