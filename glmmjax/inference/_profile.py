"""Likelihood profiles of a fitted mixed model, as lme4's ``profile()`` of a merMod.

The profile of a parameter psi is

    zeta(v) = sign(v - psi_hat) sqrt(dev_min(psi = v) - dev_min),

with dev = -2 log L the *ML* deviance and dev_min(psi = v) the deviance minimized over every
other parameter with psi held at v. A REML fit is refitted by ML first, as lme4's ``devfun2``
does with ``refitML``: lme4's profiles and profile intervals of a REML fit are those of its ML
refit (checked in R: confint(fm_reml) and confint(update(fm_reml, REML = FALSE)) of sleepstudy
agree to 3e-6 of the interval widths, tests/fixtures/reference_inference/profile_sleepstudy.json).
The parameters are lme4's: the random effects' standard deviations and correlations
(``.sig01, .sig02, ...``, per term in lme4's term order, each term's column-wise lower
triangle of SDs on the diagonal and correlations below it), the residual SD
``.sigma`` (LMMs), the fixed effects; for GLMMs with them, the dispersion parameter, the
zero-inflation coefficients and extra family parameters (glmmjax only).

Each profiled point is one constrained minimization, all by a single compiled function
(``_solve``) whose arguments are traced arrays, reused for every point of every parameter.
It minimizes over a vector z with w = a + B z, where w is the model's parameter vector in
*profile coordinates* and a holds the fixed value in its slot:

    w = [beta | theta | betad | betazi | extra]  (GLMMs),   w = [theta | log sigma]  (LMMs).

theta holds lower-triangular factors L_p of each block's covariance in a permuted order,
Sigma_b = P_b' L_p L_p' P_b (absolute scale: for LMMs Lambda = P_b' L_p / sigma). Profiling
the SD of column i moves i first, so sd_i = |L_p[0, 0]| is one slot; profiling the
correlation of columns i and j moves j, i to the first two places and writes the second row
as (c sgn(L_p[0,0]) |s|, sqrt(1 - c^2) s), so that c = cor_ij is one slot and s the free
SD. The factor P_b' L_p is passed to the likelihood as a full k x k matrix (no Cholesky
inside the optimization, so SDs of 0 and correlations of +-1 are ordinary points). For
LMMs beta is profiled out in closed form: with beta_j held at v the penalized residual
sum of squares is r^2(theta) + (v - beta_hat_j)^2 / (A^{-1})_jj, A = R_X' R_X (lme4 refits
with x_j v as an offset; the two agree), and

    dev(theta, sigma) = log det H + r^2 / sigma^2 + n log(2 pi sigma^2) - sum log w.

B = E C: E selects the free slots and C whitens them with the Hessian at the optimum (by
the chain rule from the fit's Hessian), so the optimizer (glmmjax's L-BFGS, fit/_lbfgs.py)
sees a well-conditioned problem. Each point starts from the linear extrapolation of its two
nearest solved points (from the optimum: the Hessian's tangent), with their random-effect
modes.

``profile`` traces as lme4 does: from the optimum outward in steps of about delta = cutoff/8
in zeta (the next value from the slope of the last two points, at most 10 times the last
step) until |zeta| > cutoff = sqrt(qchisq(0.99, npar)) or the parameter's bound. Profile
intervals (``confint``, in _confint.py) find the crossings by root finding instead.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn
from ..covariance import full_factor
from ..fit import OptimizerOptions, minimize
from ..laplace import deviance_at_sigma, hessian_theta_log_sigma, laplace_nll, zero_modes
from ..spec import ModelData, ModelSpec, to_internal
from ._parameters import Par, disp_natural, natural_values, parameters, select

__all__ = ["profile", "Profiler"]

SOLVE = OptimizerOptions(method="lbfgs", gtol=1e-7, ftol=1e-14, maxiter=300)
EIG_FLOOR = 1e-6        # preconditioner: eigenvalues below this times the largest are raised to it
LOWER_TOL = 1e-6        # warn when a profile goes this far (in deviance) below the fit's optimum


# -- profile coordinates ------------------------------------------------------------------------
@dataclass(frozen=True)
class PSpec:
    """Static structure of the profile problem: the model's spec and its full-factor version."""

    spec: ModelSpec
    full: ModelSpec

    @property
    def lmm(self) -> bool:
        return self.spec.profiled

    @property
    def n_w(self) -> int:
        return self.spec.n_theta + 1 if self.lmm else self.spec.n_params

    @property
    def theta0(self) -> int:
        """Where theta starts in w."""
        return 0 if self.lmm else self.spec.p


def _pspec(spec: ModelSpec) -> PSpec:
    base = dataclasses.replace(spec, reml=False)
    return PSpec(base, dataclasses.replace(base, covs=tuple(full_factor(c.k) for c in spec.covs)))


class Modes(NamedTuple):
    """Traced choices of one profiled parameter (see the module docstring)."""

    perm: tuple        # per block (k, k) permutation matrix P_b
    cor_on: tuple      # per block: the correlation form of rows (r0, r0 + 1)
    cor_r0: tuple      # per block: r0
    beta_on: jax.Array  # LMMs: beta_j held at beta_v
    beta_e: jax.Array   # (p,) one-hot e_j
    beta_v: jax.Array


def _factors(ps: PSpec, w, modes: Modes) -> list:
    """Per block the factor F_b = P_b' L_p (absolute scale) from w."""
    th = w[ps.theta0: ps.theta0 + ps.spec.n_theta]
    out, off = [], 0
    for b, cov in enumerate(ps.spec.covs):
        L = cov.cholesky(th[off: off + cov.n_theta])
        off += cov.n_theta
        if cov.k > 1:
            on, r0 = modes.cor_on[b], modes.cor_r0[b]
            r1 = r0 + 1
            c = jnp.where(on, jnp.clip(L[r1, r0], -1.0, 1.0), 0.0)
            s = L[r1, r1]
            sg = jnp.where(L[r0, r0] >= 0, 1.0, -1.0)
            # sqrt(1 - c^2) kept differentiable at c = +-1 (c is a fixed slot there)
            Lc = L.at[r1, r0].set(c * sg * jnp.abs(s)).at[r1, r1].set(jnp.sqrt(jnp.maximum(1.0 - c * c, 1e-300)) * s)
            L = jnp.where(on, Lc, L)
        out.append(modes.perm[b].T @ L)
    return out


def _lmm_parts(ps: PSpec, data: ModelData, w, modes: Modes):
    """LMMs: the factors, the ML deviance at (theta, sigma) (beta_j held if beta_on) and beta."""
    F = _factors(ps, w, modes)
    theta = jnp.concatenate([f.reshape(-1) for f in F]) / jnp.exp(w[-1])
    dev, beta, _ = deviance_at_sigma(ps.full, theta, jnp.exp(2.0 * w[-1]), data, False, modes.beta_e, modes.beta_v,
                                     modes.beta_on)
    return F, dev, beta


def _objective(ps: PSpec, data: ModelData, Tinv, w, u, modes: Modes):
    """(half the ML deviance or the Laplace negative log-likelihood at w, the modes u)."""
    if ps.lmm:
        return 0.5 * _lmm_parts(ps, data, w, modes)[1], u
    sl = ps.spec.slices()
    F = _factors(ps, w, modes)
    x = jnp.concatenate([w[sl["beta"]]] + [f.reshape(-1) for f in F] + [w[sl["theta"].stop:]])
    x = to_internal(ps.full, Tinv, x)   # x is in the full-factor layout
    return laplace_nll(ps.full, x, data, u)


def _natural(ps: PSpec, data: ModelData, w, modes: Modes):
    """Block covariances, sigma, beta, betad, betazi, extra at w."""
    if ps.lmm:
        F, _, beta = _lmm_parts(ps, data, w, modes)
        z = jnp.zeros(0, w.dtype)
        return tuple(f @ f.T for f in F), jnp.exp(w[-1]), beta, z, z, z
    sl = ps.spec.slices()
    Sig = tuple(f @ f.T for f in _factors(ps, w, modes))
    return Sig, jnp.asarray(1.0, w.dtype), w[sl["beta"]], w[sl["betad"]], w[sl["betazi"]], w[sl["extra"]]


@partial(jax.jit, static_argnames=("ps", "opts"))
def _solve(ps: PSpec, opts, data: ModelData, Tinv, a, B, z0, u0, modes: Modes):
    """min over z of the objective at w = a + B z. The one compiled function of a profile."""
    res = minimize(lambda z, u: _objective(ps, data, Tinv, a + B @ z, u, modes), z0, u0, opts)
    return res.x, res.value, res.grad, res.aux, _natural(ps, data, a + B @ res.x, modes)


def _canonical_x(ps: PSpec, w, modes: Modes):
    """w -> the coordinates of the fit's Hessian: lower-triangular theta by Cholesky (GLMMs:
    the flat parameter vector; LMMs: relative theta and log sigma)."""
    F = _factors(ps, w, modes)
    th = []
    for f, cov in zip(F, ps.spec.covs):
        S = f @ f.T
        L = jnp.linalg.cholesky(S + (1e-10 * (1.0 + jnp.max(jnp.diagonal(S)))) * jnp.eye(cov.k, dtype=S.dtype))
        th.append(cov.theta_from_factor(L))
    th = jnp.concatenate(th) if th else jnp.zeros(0, w.dtype)
    if ps.lmm:
        return jnp.concatenate([th / jnp.exp(w[-1]), w[-1:]])
    sl = ps.spec.slices()
    return jnp.concatenate([w[sl["beta"]], th, w[sl["theta"].stop:]])


@partial(jax.jit, static_argnames=("ps",))
def _jac_canonical(ps: PSpec, w, modes: Modes):
    return jax.jacfwd(lambda v: _canonical_x(ps, v, modes))(w)


def _safe_chol(S) -> np.ndarray:
    """Lower Cholesky factor of a positive semi-definite S (zero columns where a pivot is ~0)."""
    k = S.shape[0]
    L = np.zeros_like(S)
    scale = max(float(np.max(np.abs(np.diag(S)))), 1e-300)
    for j in range(k):
        d = S[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-14 * scale:
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1:, j] = (S[j + 1:, j] - L[j + 1:, :j] @ L[j, :j]) / L[j, j]
    return L


# -- the profiler: set-up per parameter, points, bounds and traces -------------------------------
@dataclass
class _Setup:
    """One parameter's profile problem: modes, fixed slot j (-1: an LMM fixed effect), the
    optimum in its coordinates, bounds, the whitened embedding B and the tangent of z."""

    par: Par
    modes: Modes
    j: int
    w_hat: np.ndarray
    v_hat: float
    lo: float
    hi: float
    B: jax.Array
    tangent: np.ndarray
    se: float


class Profiler:
    """Profiles of one fitted model (the ML refit of a REML fit), point by point.

    Holds the ML estimates (block covariances on the absolute scale, sigma, beta and the
    rest of the flat vector), the objective there (fhat: half the ML deviance, or the
    negative log-likelihood) and the Hessian H in the fit's coordinates, from which each
    parameter's problem (``setup``) is whitened.
    """

    def __init__(self, fit):
        model = fit.model
        spec = model.spec
        self.model, self.ps = model, _pspec(spec)
        self.pars = parameters(model)
        self.data = model.data
        self.dt = self.data.y.dtype
        self.Tinv = model.inverse_transforms()
        self.fhat = float(fit.objective)
        slt = spec.slices()
        if spec.profiled:
            sigma = float(fit.sigma)
            self.Sigmas = [sigma ** 2 * (L @ L.T) for L in self._Ls(np.asarray(fit.theta, float))]
            self.sigma, self.beta, self.rest = sigma, np.asarray(fit.fixef.values, float), np.zeros(0)
            self.parts = (np.zeros(0),) * 3
            self.se_beta = np.asarray(fit.se.values, float)
            self.H = self._lmm_hessian(bool(fit.reml))
            if fit.reml:
                self._refit_ml()
        else:
            x = np.asarray(fit.x, float)
            flips = np.concatenate([np.ones(spec.p), self._flips(x[slt["theta"]]),
                                    np.ones(spec.n_params - slt["theta"].stop)])
            self.H = flips[:, None] * np.asarray(fit.hessian, float) * flips[None, :]
            self.Sigmas = [np.asarray(S, float) for S in fit.covariances]
            self.sigma, self.beta, self.rest = 1.0, x[slt["beta"]], x[slt["theta"].stop:]
            self.parts = tuple(x[slt[k]] for k in ("betad", "betazi", "extra"))
        self.values = natural_values(model, self.pars, self.Sigmas, self.sigma, self.beta, *self.parts)

    # - the ML optimum -
    def _lmm_hessian(self, reml: bool) -> np.ndarray:
        """Hessian of half the deviance in (relative lower-triangular theta, log sigma) at the
        current estimates (theta with a positive diagonal)."""
        nt = self.ps.spec.n_theta
        th = self._w_hat(*self._default())[:nt] / self.sigma
        return np.asarray(hessian_theta_log_sigma(self.ps.spec, self.data, jnp.asarray(th, self.dt),
                                      jnp.asarray(np.log(self.sigma), self.dt), reml))

    def _refit_ml(self):
        """lme4's refitML: minimize the ML deviance over (theta, log sigma) from the REML
        estimates, by the profile solver with nothing held fixed (whitened by the REML
        Hessian); then the ML Hessian."""
        perms, cor_on, cor_r0 = self._default()
        modes = self._modes(perms, cor_on, cor_r0, None)
        w0 = self._w_hat(perms, cor_on, cor_r0)
        B, _, _ = self._embedding(w0, modes, -1)
        z, f, g, _, nat = _solve(self.ps, SOLVE, self.data, self.Tinv, jnp.asarray(w0, self.dt), B,
                                 jnp.zeros(B.shape[1], self.dt), (), modes)
        Sig, sigma, beta, *_ = jax.device_get(nat)
        self.Sigmas = [np.asarray(S, float) for S in Sig]
        self.sigma, self.beta, self.fhat = float(sigma), np.asarray(beta, float), float(f)
        if not np.isfinite(self.fhat) or np.max(np.abs(np.asarray(g)), initial=0.0) > 1e-3:
            warn("the ML refit of the REML fit did not converge", GlmmjaxWarning)
        self.H = self._lmm_hessian(False)

    # - helpers -
    def _Ls(self, theta):
        out, off = [], 0
        for cov in self.model.spec.covs:
            out.append(np.asarray(cov.cholesky(jnp.asarray(theta[off: off + cov.n_theta])), float))
            off += cov.n_theta
        return out

    def _flips(self, theta) -> np.ndarray:
        """Per theta entry the sign of its column's diagonal: the flips giving a positive diagonal
        (the likelihood is unchanged by flipping the sign of a column of L)."""
        out, off = [], 0
        for cov in self.model.spec.covs:
            out.append(cov.column_signs(theta[off: off + cov.n_theta]))
            off += cov.n_theta
        return np.concatenate(out) if out else np.zeros(0)

    def natural(self, nat) -> np.ndarray:
        """All parameters' values from ``_solve``'s natural output."""
        Sig, sigma, beta, betad, betazi, extra = jax.device_get(nat)
        return natural_values(self.model, self.pars, [np.asarray(S) for S in Sig], float(sigma), np.asarray(beta),
                              np.asarray(betad), np.asarray(betazi), np.asarray(extra))

    def _default(self):
        covs = self.model.spec.covs
        return [np.eye(c.k) for c in covs], [False] * len(covs), [0] * len(covs)

    def _modes(self, perms, cor_on, cor_r0, beta_index) -> Modes:
        p, dt = self.model.spec.p, self.dt
        e = np.zeros(p)
        if beta_index is not None:
            e[beta_index] = 1.0
        elif p:
            e[0] = 1.0
        return Modes(tuple(jnp.asarray(P, dt) for P in perms), tuple(jnp.asarray(c) for c in cor_on),
                     tuple(jnp.asarray(r, jnp.int32) for r in cor_r0), jnp.asarray(beta_index is not None),
                     jnp.asarray(e, dt), jnp.asarray(0.0 if beta_index is None else self.beta[beta_index], dt))

    def _embedding(self, w_hat, modes: Modes, j: int):
        """B = E C (free slots, whitened by the Hessian in profile coordinates), the tangent
        dz/dv of the optimum at v_hat, and the Hessian in profile coordinates."""
        n = self.ps.n_w
        J = np.asarray(_jac_canonical(self.ps, jnp.asarray(w_hat, self.dt), modes))
        Hw = J.T @ self.H @ J
        free = np.array([q for q in range(n) if q != j])
        Hf = Hw[np.ix_(free, free)]
        lam, V = np.linalg.eigh(0.5 * (Hf + Hf.T))
        lam = np.maximum(lam, max(EIG_FLOOR * float(np.max(lam, initial=0.0)), 1e-10))
        nz = n if self.ps.lmm else n - 1
        B = np.zeros((n, nz))
        B[free, : len(free)] = V / np.sqrt(lam)
        tangent = np.zeros(nz)
        if j >= 0:
            tangent[: len(free)] = -(V.T @ Hw[free, j]) / np.sqrt(lam)
        return jnp.asarray(B, self.dt), tangent, Hw

    # - set-up -
    def setup(self, par: Par) -> _Setup:
        """The profile problem of one parameter (module docstring): modes, slot and bounds."""
        ps, spec = self.ps, self.model.spec
        perms, cor_on, cor_r0 = self._default()
        j, lo, hi = -1, -np.inf, np.inf
        sl = spec.slices()
        if par.kind in ("sd", "cor"):
            cov = spec.covs[par.block]
            off = ps.theta0 + sum(c.n_theta for c in spec.covs[: par.block])
            f, k, kind = par.part
            if kind == "us" and k > 1:
                lead = [par.i] if par.kind == "sd" else [par.j, par.i]
                order = lead + [c for c in range(f, f + k) if c not in lead]
                perms[par.block][f: f + k] = np.eye(cov.k)[order]
                if par.kind == "cor":
                    cor_on[par.block], cor_r0[par.block] = True, f
                    j, lo, hi = off + cov.theta_position(f + 1, f), -1.0, 1.0
                else:
                    j, lo = off + cov.theta_position(f, f), 0.0
            else:
                j, lo = off + cov.theta_position(par.i, par.i), 0.0
        elif par.kind == "sigma":
            j = ps.n_w - 1
        elif par.kind == "beta" and not ps.lmm:
            j = par.index
        elif par.kind in ("disp", "zi", "extra"):
            j = sl[{"disp": "betad", "zi": "betazi", "extra": "extra"}[par.kind]].start + par.index
        beta_index = par.index if par.kind == "beta" and ps.lmm else None
        modes = self._modes(perms, cor_on, cor_r0, beta_index)
        w_hat = self._w_hat(perms, cor_on, cor_r0)
        B, tangent, Hw = self._embedding(w_hat, modes, j)
        if j >= 0:
            se, v_hat = _wald_se(Hw, j), float(w_hat[j])
        else:
            se, v_hat = float(self.se_beta[par.index]), float(self.beta[par.index])
        return _Setup(par, modes, j, w_hat, v_hat, lo, hi, B, tangent, se)

    def _w_hat(self, perms, cor_on, cor_r0) -> np.ndarray:
        """The optimum in the profile coordinates of the given modes."""
        ps, spec = self.ps, self.model.spec
        w = np.zeros(ps.n_w)
        off = ps.theta0
        for b, cov in enumerate(spec.covs):
            L = _safe_chol(perms[b] @ self.Sigmas[b] @ perms[b].T)
            if cor_on[b]:
                r0, r1 = cor_r0[b], cor_r0[b] + 1
                nrm = np.hypot(L[r1, r0], L[r1, r1])
                sg = 1.0 if L[r0, r0] >= 0 else -1.0
                L[r1, r0], L[r1, r1] = (sg * L[r1, r0] / nrm if nrm > 0 else 0.0), nrm
            w[off: off + cov.n_theta] = cov.theta_from_factor(L)
            off += cov.n_theta
        if ps.lmm:
            w[-1] = np.log(self.sigma)
        else:
            w[: spec.p] = self.beta
            w[off:] = self.rest
        return w

    # - points -
    def point(self, st: _Setup, v: float, z0, u0):
        """(zeta, z, u, natural output, objective) with the parameter held at v (its slot's scale)."""
        a = st.w_hat.copy()
        modes = st.modes
        if st.j >= 0:
            a[st.j] = v
        else:
            modes = modes._replace(beta_v=jnp.asarray(v, self.dt))
        z, f, _, u, nat = _solve(self.ps, SOLVE, self.data, self.Tinv, jnp.asarray(a, self.dt), st.B,
                                 jnp.asarray(z0, self.dt), u0, modes)
        f = float(f)
        d = 2.0 * (f - self.fhat)
        if d < -LOWER_TOL:
            warn(f"profiling {st.par.name} found a deviance {-d:.3g} below the fit's: the fit had not "
                          "converged to the optimum", GlmmjaxWarning)
        zeta = np.sign(v - st.v_hat) * np.sqrt(max(d, 0.0)) if np.isfinite(f) else np.nan
        return zeta, np.asarray(z), u, nat, f

    def zeta(self, name: str, values) -> np.ndarray:
        """zeta of parameter ``name`` at the given values (on its reported scale; a dispersion
        parameter of ``disp ~ 1`` on its link scale), each point warm-started from its
        neighbour nearer the optimum."""
        par = select(self.pars, name)[0]
        st = self.setup(par)
        walk = Walk(self, st)
        v = np.asarray(values, float)
        slot = np.log(v) if par.kind == "sigma" else v
        out = np.empty(v.shape)
        for k in np.argsort(np.abs(slot - st.v_hat)):
            out[k] = walk.eval(float(slot[k]))
        return out

    def start_modes(self):
        if self.ps.lmm:
            return ()
        return zero_modes(self.ps.full, self.data.y.dtype)


def _wald_se(H, j) -> float:
    try:
        V = np.linalg.inv(H)
    except np.linalg.LinAlgError:
        return np.nan
    return float(np.sqrt(V[j, j])) if V[j, j] > 0 else np.nan


# -- walking a profile --------------------------------------------------------------------------
def first_step(st: _Setup, scale: float) -> float:
    if np.isfinite(st.se) and st.se > 0:
        return st.se
    return 0.1 * max(abs(st.v_hat), scale)


class Walk:
    """Points along one side of one profile, with warm starts for the next point."""

    def __init__(self, prof: Profiler, st: _Setup):
        self.prof, self.st = prof, st
        nz = st.B.shape[1]
        self.pts = [(st.v_hat, 0.0, np.zeros(nz), prof.start_modes(), None)]

    def at_bound(self, v) -> bool:
        return v <= self.st.lo or v >= self.st.hi

    def clip(self, v) -> float:
        return float(min(max(v, self.st.lo), self.st.hi))

    def _start(self, v):
        """z (and u) to start from: linear extrapolation from the two nearest points (the
        Hessian's tangent from the optimum)."""
        near = sorted(self.pts, key=lambda p: abs(p[0] - v))
        v1, _, z1, u1, _ = near[0]
        if len(near) > 1 and near[1][0] != v1:
            v0, _, z0, _, _ = near[1]
            return z1 + (z1 - z0) * (v - v1) / (v1 - v0), u1
        return z1 + self.st.tangent * (v - v1), u1

    def eval(self, v):
        z0, u0 = self._start(v)
        zeta, z, u, nat, _ = self.prof.point(self.st, v, z0, u0)
        self.pts.append((v, zeta, z, u, nat))
        return zeta


def trace(prof: Profiler, st: _Setup, cutoff: float, delta: float, maxpts: int = 100, maxmult: float = 10.0):
    """lme4's profile steps: from the optimum outward in steps of about delta in zeta (the
    next value from the slope of the last two points, capped at maxmult times the last step)
    until |zeta| > cutoff, the parameter's bound, or maxpts points on each side.
    Returns [(v, zeta, z, u, natural output)]."""
    rows = []
    for side in (-1, 1):
        walk = Walk(prof, st)
        if (side < 0 and st.v_hat <= st.lo) or (side > 0 and st.v_hat >= st.hi):
            continue
        v_prev, z_prev = st.v_hat, 0.0
        v = walk.clip(st.v_hat + side * delta * first_step(st, prof.sigma))
        for _ in range(maxpts):
            zeta = walk.eval(v)
            rows.append(walk.pts[-1])
            if not np.isfinite(zeta) or abs(zeta) > cutoff or walk.at_bound(v):
                break
            num, den = v - v_prev, zeta - z_prev
            step = delta * num / den if den != 0 else 1e-6
            if step < 0:
                step = 1e-6
            step = min(step, maxmult * abs(num))
            v_prev, z_prev = v, zeta
            v = walk.clip(v + side * step)
    return rows


def to_natural(prof: Profiler, par: Par, v: float) -> float:
    """A slot value on the parameter's reported scale."""
    if par.kind == "sigma":
        return float(np.exp(v))
    if par.kind == "disp":
        return disp_natural(prof.model, par, v, prof.parts[2])
    return float(v)


def profile(fit, parm=None, *, alphamax: float = 0.01, maxpts: int = 100, delta=None, delta_cutoff: float = 1 / 8,
            maxmult: float = 10.0, oldnames: bool = True) -> pd.DataFrame:
    """Likelihood profiles of a fitted model, as lme4's ``profile(fit)``.

    Each parameter is traced from the ML optimum outwards on both sides, re-optimizing all
    other parameters at each point (warm-started from the neighbouring points), in steps of
    about ``delta`` in zeta, until |zeta| exceeds sqrt(qchisq(1 - alphamax, npar)) (npar: the
    number of parameters, lme4's cutoff), the parameter's bound is reached (SD 0,
    correlation +-1) or ``maxpts`` points on each side. REML fits are profiled by ML (as
    lme4). SDs and correlations are profiled on their own scale, .sigma and the fixed
    effects likewise; a dispersion parameter of ``disp ~ 1`` on its log (link) scale,
    reported on the family's scale.

    Arguments:
        fit: a FitResult.
        parm: parameters to profile (see ``confint``); default all.
        alphamax, maxpts, delta, delta_cutoff, maxmult: lme4's stepping controls;
            delta defaults to cutoff * delta_cutoff.
        oldnames: lme4's names (".sig01") or its ``oldNames = FALSE`` names (see ``confint``).

    Returns:
        A DataFrame with one row per point, sorted by parameter and value: ``parameter``,
        ``value`` (its value), ``zeta`` (signed square root of the ML deviance increase), and
        one column per parameter with all parameters' values at that point (lme4's profile
        columns); the optimum is a row with zeta = 0. ``attrs`` holds "lower" and "upper"
        (each profiled parameter's range) and "cutoff". ``profile_confint`` (in _confint) turns it
        into intervals by interpolation, as lme4's ``confint(profile(fit))``.
    """
    prof = Profiler(fit)
    pars = select(prof.pars, parm)
    if not 0 < alphamax < 1:
        raise ValueError(f"alphamax must be in (0, 1), got {alphamax}")
    cutoff = float(np.sqrt(stats.chi2.ppf(1 - alphamax, len(prof.pars))))
    delta = cutoff * delta_cutoff if delta is None else float(delta)
    names = [q.name if oldnames else q.label for q in prof.pars]
    out, lower, upper = [], {}, {}
    for par in pars:
        st = prof.setup(par)
        k = prof.pars.index(par)
        sgn = np.sign(to_natural(prof, par, st.v_hat + 1e-3) - to_natural(prof, par, st.v_hat)) or 1.0
        rows = [(st.v_hat, 0.0, prof.values)] + [(v, z, prof.natural(nat)) for v, z, _, _, nat in
                                                  trace(prof, st, cutoff, delta, maxpts, maxmult)]
        for v, z, vals in rows:
            out.append([names[k], vals[k], sgn * z] + list(vals))
        lo, hi = sorted((to_natural(prof, par, st.lo) if np.isfinite(st.lo) else -np.inf,
                         to_natural(prof, par, st.hi) if np.isfinite(st.hi) else np.inf))
        lower[names[k]], upper[names[k]] = lo, hi
    df = pd.DataFrame(out, columns=["parameter", "value", "zeta"] + names)
    order = {names[prof.pars.index(q)]: i for i, q in enumerate(pars)}
    df = df.sort_values(["parameter", "value"], key=lambda s: s.map(order) if s.name == "parameter" else s,
                        kind="stable").reset_index(drop=True)
    df.attrs.update(lower=lower, upper=upper, cutoff=cutoff)
    return df

