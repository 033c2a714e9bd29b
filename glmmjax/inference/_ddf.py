"""Satterthwaite and Kenward-Roger denominator degrees of freedom for linear mixed models.

Both methods test a linear hypothesis L beta = 0 of the fixed effects of a Gaussian LMM
(``fit.is_lmm``) with a t or F statistic whose denominator degrees of freedom account for
the estimated variance parameters. They match lmerTest 3.1.3 (``summary(fm, ddf=)``,
``contest``, ``anova``) and pbkrtest 0.5.2 (``vcovAdj``, ``Lb_ddf``, ``KRmodcomp``).

Satterthwaite (lmerTest's ``as_lmerModLT`` / ``contest1D`` / ``contestMD``). With
varpar = (theta, sigma), theta the relative Cholesky entries, the deviance is NOT profiled
over sigma (beta is at its conditional optimum beta(theta)):

    ML:    d(varpar) = log det H + r^2(theta) / sigma^2 + n log(2 pi sigma^2)
    REML:  d(varpar) + log det(L_X L_X') - p log(2 pi sigma^2)

A = 2 H_d^{-1} (H_d the Hessian of d at the optimum, by Richardson-extrapolated central
differences of the exact autodiff gradient; eigenvalues <= 1e-8 dropped as lmerTest does) is
the asymptotic covariance of varpar, and J_k = d Phi / d varpar_k with Phi(varpar) =
sigma^2 (L_X L_X')^{-1} = Cov(beta-hat), by the same differences (lmerTest uses numDeriv's
Richardson extrapolation for both). For one contrast l:

    var = l' Phi l,   g_k = l' J_k l,   df = 2 var^2 / (g' A g).

For q > 1 rows (contestMD) L Phi L' = P diag(d) P' is diagonalized, each row of P'L gets
its own nu_m as above, F = sum_m (P'L beta)_m^2 / d_m / q, and the denominator df is
2 E / (E - q) with E = sum_m nu_m / (nu_m - 2) (2 if any nu_m <= 2). The df are invariant to
how the variance parameters are parameterized, so glmmjax's theta gives lmerTest's df.

Kenward-Roger (pbkrtest). V = sum_r gamma_r G_r + sigma^2 I with gamma the entries of each
random-effect covariance (lower triangle; G_r = Z_b (I_m (x) E_r) Z_b') and the residual
variance (G = I). With Phi = (X'V^{-1}X)^{-1},

    P_r = -X'V^{-1} G_r V^{-1} X,   Q_rs = X'V^{-1} G_r V^{-1} G_s V^{-1} X,
    IE2_rs = tr(V^{-1}G_r V^{-1}G_s) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s),   W = 2 IE2^{-1},
    Phi_A = Phi + 2 Phi U Phi,   U = sum_rs W_rs (Q_rs - P_r Phi P_s),

and ``_kr_df`` is pbkrtest's Lb_ddf / .KR_adjust (df and the F scaling). Nothing is
n x n (pbkrtest inverts V densely): V^{-1} acts through H = Lambda'Z'Z Lambda + I
(Woodbury), and the traces use M = Z'V^{-1}Z, whose block for the largest grouping factor
(m0 levels, k0 columns) is block diagonal plus a term of rank q2, the size of the other
factors' part (see ``_kr_structure``). Time and memory are O(n + m0 k0 q2^2 + q2^3) and
O(m0 k0 q2 + q2^2), the costs of glmmjax's own blocked factorization. KR needs a REML fit
(as lmerTest) and unit prior weights (pbkrtest's V ignores weights).
"""
from __future__ import annotations

import dataclasses
import weakref
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn
from ..laplace import deviance_at_sigma
from ..spec import Params, cholesky_factors
from ._ddf_terms import anova_contrasts

__all__ = ["ddf_coef_table", "contest", "ddf_anova", "vcov_varpar", "kr_vcov"]

EIGEN_TOL = 1e-8          # lmerTest's tolerance on the eigenvalues of the deviance Hessian
_GINV_TOL = float(np.sqrt(np.finfo(float).eps))     # MASS::ginv's
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_F_COLUMNS = ["Sum Sq", "Mean Sq", "NumDF", "DenDF", "F value", "Pr(>F)"]


# --------------------------------------------------------------------------- checks
def _method(ddf: str) -> str:
    key = str(ddf).lower().replace("_", "-").replace(" ", "-")
    if key in ("satterthwaite", "sat"):
        return "satterthwaite"
    if key in ("kenward-roger", "kenwardroger", "kr"):
        return "kenward-roger"
    raise ValueError(f"ddf must be 'satterthwaite' or 'kenward-roger', not {ddf!r}")


def _check_lmm(fit):
    if not getattr(fit, "is_lmm", False):
        raise ValueError("Satterthwaite and Kenward-Roger degrees of freedom are for linear mixed models "
                         "(Gaussian family, identity link, fitted with the profiled LMM code); this model "
                         f"has family {fit.model.family.name!r}")


def _cached(fit, key, make):
    store = _CACHE.setdefault(fit, {})
    if key not in store:
        store[key] = make(fit)
    return store[key]


# --------------------------------------------------------------------------- Satterthwaite
def _deviance(spec, data, varpar, reml):
    """lmerTest's devfun_vp, the deviance at varpar = (theta, sigma) (laplace/_lmm.py), and
    C = X'V^{-1}X sigma^2.

    ``reml`` (0 or 1) is traced, so ML and REML fits of one design share the compiled code.
    """
    d = deviance_at_sigma(spec, varpar[:-1], varpar[-1] ** 2, data, reml)
    return d.deviance, d.XtVinvX


@partial(jax.jit, static_argnames=("spec",))
def _satterthwaite_pieces(spec, data, varpar, reml):
    """Hessian of the deviance, Phi = Cov(beta-hat) and its Jacobian J (n_varpar, p, p).

    The Hessian and dC/dvarpar (C = X'V^{-1}X sigma^2, lme4's RX'RX) are Richardson-
    extrapolated central differences of the exact autodiff gradient and of C,
    (4 D(h) - D(2 h)) / 3 with D(h) = (f(x + h e_k) - f(x - h e_k)) / (2 h) and
    h = 3e-4 max(1, |x_k|) (float32: 1e-2): error O(h^4) plus rounding; against
    forward-over-reverse autodiff within 1e-9 of the largest entry (tested on sleepstudy's
    random-slope model, seen ~3e-11), below lmerTest's own numDeriv error in the df. The
    4 k + 1 evaluations are one lax.map, so the gradient is compiled once
    (forward-over-reverse, jax.jacfwd of the gradient, gives the same numbers from a larger
    program; tests/test_ddf.py compares the two).
    Then J_k = -Phi (dC/dtheta_k) Phi / sigma^2 for theta and 2 Phi / sigma for sigma: the
    derivatives of Phi = sigma^2 C^{-1} (lmerTest's get_covbeta).
    """
    def grad_and_C(v):
        return jax.grad(lambda w: _deviance(spec, data, w, reml), has_aux=True)(v)

    k = varpar.shape[0]
    dt = varpar.dtype
    h = (3e-4 if dt == jnp.float64 else 1e-2) * jnp.maximum(1.0, jnp.abs(varpar))
    E = jnp.eye(k, dtype=dt) * h[:, None]
    points = varpar + jnp.concatenate([E, -E, 2.0 * E, -2.0 * E, jnp.zeros((1, k), dt)])
    G, Cs = jax.lax.map(grad_and_C, points)

    def richardson(F):
        d1 = (F[:k] - F[k:2 * k]) / 2.0
        d2 = (F[2 * k:3 * k] - F[3 * k:4 * k]) / 4.0
        return (4.0 * d1 - d2) / 3.0

    hess = richardson(G) / h[:, None]                              # row k: d grad / d varpar_k
    dC = jnp.moveaxis(richardson(Cs) / h[:, None, None], 0, -1)    # (p, p, k)
    C = Cs[4 * k]
    sigma = varpar[-1]
    Phi = sigma ** 2 * jnp.linalg.inv(C)
    jac = -jnp.einsum("ij,jkv,kl->vil", Phi, dC, Phi) / sigma ** 2     # C does not depend on sigma
    return hess, jac.at[-1].set(2.0 * Phi / sigma), Phi


def _sat_setup(fit):
    model = fit.model
    varpar = jnp.asarray(np.append(fit.theta, fit.sigma), model.data.y.dtype)
    spec = dataclasses.replace(model.spec, reml=False)          # REML enters as a traced flag
    pieces = _satterthwaite_pieces(spec, model.data, varpar, float(model.spec.reml))
    hess, jac, vcov = (np.asarray(a, float) for a in pieces)
    hess = 0.5 * (hess + hess.T)
    evals, evecs = np.linalg.eigh(hess)
    for bad, what in ((evals < -EIGEN_TOL, "negative"), (np.abs(evals) <= EIGEN_TOL, "close to zero")):
        if bad.any():
            vals = " ".join(f"{v:.1e}" for v in evals[bad])
            warn(f"The deviance Hessian has {int(bad.sum())} eigenvalue(s) {what} ({vals}): the "
                          "model may not have converged; those directions are dropped from vcov_varpar", GlmmjaxWarning)
    pos = evals > EIGEN_TOL
    A = 2.0 * (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    return dict(A=A, jac=jac, vcov=vcov)


def vcov_varpar(fit) -> pd.DataFrame:
    """Asymptotic covariance of the variance parameters (theta, sigma) of an LMM.

    lmerTest's ``vcov_varpar``: A = 2 H^{-1} with H the Hessian (by autodiff) of the ML or
    REML deviance, matching the fit, as a function of varpar = (theta, sigma), sigma not
    profiled. theta is glmmjax's (the relative Cholesky entries, named as
    ``fit.model.parameter_names()``; the diagonal's sign is free, so a column of L may be
    negative where lme4's is positive); eigen-directions of H with eigenvalue <= 1e-8 are
    dropped (a pseudo-inverse), as lmerTest does. sqrt(diag) gives Wald standard errors of
    theta and sigma.

    Returns:
        DataFrame indexed by the theta names and "sigma".
    """
    _check_lmm(fit)
    A = _cached(fit, "sat", _sat_setup)["A"]
    names = list(fit.model.parameter_names()) + ["sigma"]
    return pd.DataFrame(A, index=names, columns=names)


def _sat_1d(fit, l):
    """(estimate, se, df) of l'beta, lmerTest's contest1D."""
    s = _cached(fit, "sat", _sat_setup)
    var = l @ s["vcov"] @ l
    g = np.einsum("i,kij,j->k", l, s["jac"], l)
    return float(l @ fit.fixef.values), float(np.sqrt(var)), float(2.0 * var ** 2 / (g @ s["A"] @ g))


def _fstat_ddf(nu, tol=1e-8) -> float:
    """lmerTest's get_Fstat_ddf: the denominator df of a sum of q independent t^2 / q."""
    nu = np.asarray(nu, float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2.0))
    return float(2.0 * E / (E - nu.size))


def _sat_md(fit, L):
    """(F, NumDF, DenDF) of L beta = 0, lmerTest's contestMD (Satterthwaite)."""
    if L.shape[0] == 1:
        est, se, df = _sat_1d(fit, L[0])
        return (est / se) ** 2, 1, df
    s = _cached(fit, "sat", _sat_setup)
    d, P = np.linalg.eigh(L @ s["vcov"] @ L.T)
    d, P = d[::-1], P[:, ::-1]                      # decreasing, as R's eigen
    pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        return np.nan, 0, np.nan
    PtL = (P.T @ L)[:q]
    if q == 1:
        est, se, df = _sat_1d(fit, PtL[0])
        return (est / se) ** 2, 1, df
    F = float(np.sum((PtL @ fit.fixef.values) ** 2 / d[:q]) / q)
    g = np.einsum("mi,kij,mj->mk", PtL, s["jac"], PtL)
    nu = 2.0 * d[:q] ** 2 / np.einsum("mk,kl,ml->m", g, s["A"], g)
    return F, q, _fstat_ddf(nu)


# --------------------------------------------------------------------------- Kenward-Roger
def _kr_patterns(model) -> list:
    """(block, E) per random-effect variance parameter gamma: the entries of the block's
    covariance that its structure lets vary (lower triangle, pbkrtest's VarCorr entries)."""
    out = []
    for b, block in enumerate(model.blocks):
        try:
            out += [(b, E) for E in block.cov.variance_patterns()]
        except ValueError:
            raise ValueError(f"Kenward-Roger needs unstructured or diagonal random-effect covariances; the "
                             f"block on {block.group!r} shares a variance between columns") from None
    return out


def _kr_structure(model, Ls):
    """The pieces of H^{-1} and sigma^2 M = sigma^2 Z'V^{-1}Z = K - C'H^{-1}C (K = Z'Z, C = Lambda'K).

    Block 0 (m0 levels of k0 columns) is block diagonal in H = [[A, B], [B', Cd]]; the other
    blocks form a dense part of size q2. With N = A^{-1}B and R = (Cd - B'N)^{-1},
    H^{-1} = [[A^{-1} + N R N', -N R], [-R N', R]], and

        sigma^2 M_00 = blockdiag(Bd_j) - U R U',  Bd_j = K00_j - C00_j' A_j^{-1} C00_j,
        U_j = K02_j Lambda2 - C00_j' N_j         (k0 x q2, one per level j),

    so M_00 is never formed; M_02 (m0 k0 x q2) and M_22 (q2 x q2) are.
    """
    data, lay = model.data, model.spec.layout
    Z = [np.asarray(z, float) for z in data.Z]
    codes = [np.asarray(c) for c in data.codes]
    (m0, k0), q2 = (lay.nlevels[0], lay.ks[0]), lay.q2
    rows = [None] + [lay.offsets[b] + codes[b][:, None] * lay.ks[b] + np.arange(lay.ks[b])
                     for b in range(1, lay.nblocks)]
    c0, z0, L0 = codes[0], Z[0], Ls[0]
    K00 = np.zeros((m0, k0, k0))
    np.add.at(K00, c0, z0[:, :, None] * z0[:, None, :])
    K02, K22 = np.zeros((m0, k0, q2)), np.zeros((q2, q2))
    for b in range(1, lay.nblocks):
        np.add.at(K02, (c0[:, None, None], np.arange(k0)[None, :, None], rows[b][:, None, :]),
                  z0[:, :, None] * Z[b][:, None, :])
        for c in range(1, lay.nblocks):
            np.add.at(K22, (rows[b][:, :, None], rows[c][:, None, :]), Z[b][:, :, None] * Z[c][:, None, :])
    Lam2 = np.zeros((q2, q2))
    for b in range(1, lay.nblocks):
        o, m, k = lay.offsets[b], lay.nlevels[b], lay.ks[b]
        Lam2[o:o + m * k, o:o + m * k] = np.kron(np.eye(m), Ls[b])
    C00 = np.einsum("ba,jbc->jac", L0, K00)                        # L0' K00_j
    C02 = np.einsum("ba,jbq->jaq", L0, K02)                        # L0' K02_j
    Ainv = np.linalg.inv(C00 @ L0 + np.eye(k0))
    N = Ainv @ (C02 @ Lam2)
    S = Lam2.T @ K22 @ Lam2 + np.eye(q2) - np.einsum("jkq,jkr->qr", C02 @ Lam2, N)
    R = np.linalg.inv(S) if q2 else S
    R = 0.5 * (R + R.T)
    U = K02 @ Lam2 - np.einsum("jba,jbq->jaq", C00, N)
    AC02 = Ainv @ C02
    U2 = K22 @ Lam2 - np.einsum("jkq,jkr->qr", C02, N)
    return dict(lay=lay, Z=Z, codes=codes, rows=rows, zl=[z @ L for z, L in zip(Z, Ls)], Ainv=Ainv, N=N, R=R,
                U=U, C00=C00, Bd=K00 - np.einsum("jba,jbc->jac", C00, Ainv @ C00),
                M02=K02 - np.einsum("jba,jbq->jaq", C00, AC02) - U @ (R @ U2.T),
                M22=K22 - np.einsum("jkq,jkr->qr", C02, AC02) - U2 @ R @ U2.T, AC02=AC02, U2=U2)


def _kr_vinv(st, Y, s2):
    """V^{-1} Y for Y (n, m): (Y - W H^{-1} W'Y) / sigma^2 with W = Z Lambda (Woodbury)."""
    lay, zl, c0, rows = st["lay"], st["zl"], st["codes"][0], st["rows"]
    r0 = np.zeros((lay.nlevels[0], lay.ks[0], Y.shape[1]))
    np.add.at(r0, c0, zl[0][:, :, None] * Y[:, None, :])
    r2 = np.zeros((lay.q2, Y.shape[1]))
    for b in range(1, lay.nblocks):
        np.add.at(r2, rows[b], zl[b][:, :, None] * Y[:, None, :])
    x2 = st["R"] @ (r2 - np.einsum("jkq,jkm->qm", st["N"], r0))
    x0 = st["Ainv"] @ r0 - np.einsum("jkq,qm->jkm", st["N"], x2)
    WHr = np.einsum("ik,ikm->im", zl[0], x0[c0])
    for b in range(1, lay.nblocks):
        WHr = WHr + np.einsum("ik,ikm->im", zl[b], x2[rows[b]])
    return (Y - WHr) / s2


def _kr_ktrace(st, pats, n, s2):
    """tr(V^{-1} G_r V^{-1} G_s) for the random-effect parameters and the residual (last)."""
    lay, R, U, Bd, M02, M22 = st["lay"], st["R"], st["U"], st["Bd"], st["M02"], st["M22"]
    cols = [None] + [np.arange(lay.offsets[b], lay.offsets[b] + lay.nlevels[b] * lay.ks[b])
                     for b in range(1, lay.nblocks)]
    shape = lambda b: (lay.nlevels[b], lay.ks[b])
    UEU = [np.einsum("jaq,ab,jbr->qr", U, E, U) if b == 0 else None for b, E in pats]

    def pair(i, j):
        (b, Er), (c, Es) = pats[i], pats[j]
        if b == 0 and c == 0:            # tr(D_r M00 D_s M00), M00 = Bd - U R U'
            t1 = np.einsum("ab,jbc,cd,jda->", Er, Bd, Es, Bd)
            t2 = np.trace(R @ np.einsum("jaq,jab,jbr->qr", U, Er @ Bd @ Es, U))
            return t1 - 2.0 * t2 + np.trace(UEU[i] @ R @ UEU[j] @ R)
        if c == 0:
            (b, Er), (c, Es) = (c, Es), (b, Er)
        Mx = (M02[:, :, cols[c]] if b == 0 else M22[np.ix_(cols[b], cols[c])].reshape(shape(b) + (-1,)))
        Mx = Mx.reshape(shape(b) + shape(c))
        return np.einsum("ab,iblc,cd,iald->", Er, Mx, Es, Mx)

    # sigma^4 Z'V^{-2}Z = sigma^2 M - (H^{-1}C)'(H^{-1}C): its level-diagonal blocks, summed
    N, Ainv, AC02 = st["N"], st["Ainv"], st["AC02"]
    NtN = np.einsum("jkq,jkr->qr", N, N)
    P0, Y = Ainv @ st["C00"], np.einsum("qr,jar->jqa", R, U)
    PNY = np.einsum("jba,jbq,jqc->jac", P0, N, Y)
    gram0 = (np.einsum("jba,jbc->jac", P0, P0) - PNY - np.swapaxes(PNY, 1, 2)
             + np.einsum("jqa,qr,jrb->jab", Y, NtN + np.eye(lay.q2), Y))
    diag_sum = [np.sum(Bd - np.einsum("jaq,qr,jbr->jab", U, R, U) - gram0, axis=0)]
    Y2 = R @ st["U2"].T
    T = AC02 - N @ Y2
    Zv22 = M22 - np.einsum("jkq,jkr->qr", T, T) - Y2.T @ Y2
    for b in range(1, lay.nblocks):
        idx = cols[b].reshape(shape(b))
        diag_sum.append(Zv22[idx[:, :, None], idx[:, None, :]].sum(axis=0))
    hinv_f2 = (np.sum(Ainv ** 2) + 2.0 * np.einsum("jab,jbq,qr,jar->", Ainv, N, R, N)
               + np.trace(NtN @ R @ NtN @ R) + 2.0 * np.sum((N @ R) ** 2) + np.sum(R ** 2))
    nr = len(pats)
    K = np.zeros((nr + 1, nr + 1))
    for i in range(nr):
        for j in range(i, nr):
            K[i, j] = K[j, i] = pair(i, j)
        K[i, nr] = K[nr, i] = np.sum(pats[i][1] * diag_sum[pats[i][0]])
    K[nr, nr] = n - lay.q + hinv_f2
    return K / s2 ** 2


def _kr_adjusted_vcov(fit, Phi):
    """pbkrtest's vcovAdj_internal: (Phi_A, [P_r], W), parameters ordered random then residual."""
    model = fit.model
    if np.any(np.asarray(model.data.weights) != 1.0):
        raise ValueError("Kenward-Roger is not available with prior weights (pbkrtest's V ignores them)")
    pats = _kr_patterns(model)
    theta = jnp.asarray(fit.theta, model.data.y.dtype)
    Ls = [np.asarray(L, float) for L in cholesky_factors(model.spec, Params.unpack(model.spec, theta).thetas)]
    s2 = fit.sigma ** 2
    st = _kr_structure(model, Ls)
    X = np.asarray(model.data.X, float)
    VX = _kr_vinv(st, X, s2)
    Ys = []
    for b, E in pats:                                   # G_r V^{-1} X = Z_b (I (x) E) Z_b' V^{-1} X
        Tb = np.zeros((model.spec.layout.nlevels[b], E.shape[0], X.shape[1]))
        np.add.at(Tb, st["codes"][b], st["Z"][b][:, :, None] * VX[:, None, :])
        Ys.append(np.einsum("ia,ab,ibp->ip", st["Z"][b], E, Tb[st["codes"][b]]))
    Ys.append(VX)
    VYs = [_kr_vinv(st, Y, s2) for Y in Ys]
    P = [-(VX.T @ Y) for Y in Ys]
    Q = [[Yr.T @ VYs[s] for s in range(len(Ys))] for Yr in Ys]
    K = _kr_ktrace(st, pats, X.shape[0], s2)
    ng = len(Ys)
    IE2 = np.array([[K[r, s] - 2.0 * np.sum(Phi * Q[r][s]) + np.sum((Phi @ P[r]) * (P[s] @ Phi))
                     for s in range(ng)] for r in range(ng)])
    IE2 = 0.5 * (IE2 + IE2.T)
    if np.min(np.abs(np.linalg.eigvalsh(IE2))) > 1e-10:
        W = 2.0 * np.linalg.inv(IE2)
    else:
        W = 2.0 * np.linalg.pinv(IE2)
    Uadj = sum(W[r, s] * (Q[r][s] - P[r] @ Phi @ P[s]) for r in range(ng) for s in range(ng))
    return Phi + 2.0 * Phi @ Uadj @ Phi, P, W


def _kr_setup(fit):
    if not fit.reml:
        raise ValueError("Kenward-Roger's method is only available for REML fits (as lmerTest); "
                         "refit with reml=True or use ddf='satterthwaite'")
    Phi = fit.vcov.values
    PhiA, P, W = _kr_adjusted_vcov(fit, Phi)
    return dict(Phi=Phi, PhiA=PhiA, P=P, W=W)


def kr_vcov(fit) -> pd.DataFrame:
    """The Kenward-Roger adjusted covariance of beta (pbkrtest's ``vcovAdj``), REML fits."""
    _check_lmm(fit)
    PhiA = _cached(fit, "kr", _kr_setup)["PhiA"]
    return pd.DataFrame(PhiA, index=fit.fixef.index, columns=fit.fixef.index)


def _kr_df(kr, L, q):
    """pbkrtest's Lb_ddf / .KR_adjust: (df2, F.scaling) for the q-row contrast L (full row rank)."""
    Phi, P, W = kr["Phi"], kr["P"], kr["W"]
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    u = [Theta @ Phi @ Pi @ Phi for Pi in P]
    tr = np.array([np.trace(ui) for ui in u])
    A1 = float(tr @ W @ tr)
    A2 = float(sum(W[i, j] * np.sum(u[i] * u[j].T) for i in range(len(u)) for j in range(len(u))))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1.0) * A1 - (q + 4.0) * A2) / ((q + 2.0) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2.0 - g) / den
    V0 = 1.0 + c1 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    V1, V2 = 1.0 - c2 * B, 1.0 - c3 * B
    num = 1.0 - A2 / q
    ratio = 1.0 if abs(num) < 1e-14 and abs(V1) < 1e-14 else num / V1
    rho = ratio ** 2 * V0 / V2 / q
    df2 = 4.0 + (q + 2.0) / (q * rho - 1.0)
    scaling = 1.0 if abs(df2 - 2.0) < 1e-2 else df2 * (1.0 - A2 / q) / (df2 - 2.0)
    return df2, scaling


def _kr_1d(fit, l):
    """(estimate, se, df) with the KR-adjusted SE, lmerTest's get_KR1D."""
    kr = _cached(fit, "kr", _kr_setup)
    df, _ = _kr_df(kr, l[None, :], 1)
    return float(l @ fit.fixef.values), float(np.sqrt(l @ kr["PhiA"] @ l)), df


def _full_row_rank(L):
    """pbkrtest's force_full_rank: an orthonormal basis of L's row space if L is rank deficient."""
    q = np.linalg.matrix_rank(L)
    if q < L.shape[0]:
        Q, _ = np.linalg.qr(L.T)
        return Q[:, :q].T
    return L


def _kr_md(fit, L):
    """(F scaled, F unscaled, NumDF, DenDF) of L beta = 0, pbkrtest's KRmodcomp."""
    kr = _cached(fit, "kr", _kr_setup)
    L = _full_row_rank(L)
    q = L.shape[0]
    df2, scaling = _kr_df(kr, L, q)
    Lb = L @ fit.fixef.values
    FU = float(Lb @ np.linalg.solve(L @ kr["PhiA"] @ L.T, Lb) / q)
    return scaling * FU, FU, q, df2


# --------------------------------------------------------------------------- public
def ddf_coef_table(fit, ddf: str = "satterthwaite") -> pd.DataFrame:
    """lmerTest's ``summary(fm, ddf = ...)`` coefficient table.

    Arguments:
        fit: a fitted LMM (``fit.is_lmm``).
        ddf: "satterthwaite" or "kenward-roger" (REML fits; the SEs are then the square roots
            of the diagonal of the KR-adjusted covariance, as lmerTest reports them).

    Returns:
        DataFrame indexed by the fixed-effect names with columns Estimate, Std. Error, df,
        t value, Pr(>|t|) (two-sided, t distribution with df degrees of freedom).
    """
    _check_lmm(fit)
    one_d = _sat_1d if _method(ddf) == "satterthwaite" else _kr_1d
    rows = [one_d(fit, e) for e in np.eye(len(fit.fixef))]
    est, se, df = (np.array(c) for c in zip(*rows)) if rows else (np.zeros(0),) * 3
    t = est / se
    return pd.DataFrame({"Estimate": est, "Std. Error": se, "df": df, "t value": t,
                         "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(t), df)}, index=fit.fixef.index)


def _f_row(fit, L, method) -> list:
    sigma2 = fit.sigma ** 2
    if method == "satterthwaite":
        F, q, df = _sat_md(fit, L)
        mean_sq = F * sigma2
    else:
        F, FU, q, df = _kr_md(fit, L)
        mean_sq = FU * sigma2
    p = stats.f.sf(F, q, df) if q > 0 else np.nan
    return [mean_sq * q, mean_sq, q, df, F, p]


def contest(fit, L, ddf: str = "satterthwaite") -> pd.Series:
    """F test of L beta = 0 (lmerTest's ``contest(fm, L, joint = TRUE)``).

    Satterthwaite: lmerTest's contestMD (one row: F = t^2 with contest1D's df).
    Kenward-Roger (REML fits): pbkrtest's KRmodcomp(fm, L): the Wald F with the adjusted
    covariance, scaled by pbkrtest's F.scaling, and its df.

    Arguments:
        fit: a fitted LMM.
        L: contrast matrix (q x p) or vector (p,), columns in ``fit.fixef`` order.
        ddf: "satterthwaite" or "kenward-roger".

    Returns:
        Series with Sum Sq, Mean Sq (lmerTest's: the unscaled F times sigma^2), NumDF, DenDF,
        F value and Pr(>F).
    """
    _check_lmm(fit)
    method = _method(ddf)
    L = np.atleast_2d(np.asarray(L, float))
    p = len(fit.fixef)
    if L.shape[1] != p:
        raise ValueError(f"L needs {p} columns (one per fixed effect: {', '.join(fit.fixef.index)}), "
                         f"got {L.shape[1]}")
    if not np.all(np.isfinite(L)):
        raise ValueError("L has non-finite entries")
    return pd.Series(_f_row(fit, L, method), index=_F_COLUMNS, name="contest")


def ddf_anova(fit, ddf: str = "satterthwaite", type=3) -> pd.DataFrame:
    """lmerTest's ``anova(fm, type = ..., ddf = ...)``: one F test per fixed-effect term.

    Type 3 (the default) tests lmerTest's type III hypotheses (SAS-style: each term's
    contrasts made orthogonal to the terms containing it, with treatment coding, then
    mapped to the model's own contrasts); type 1 the sequential hypotheses (rows of the
    Doolittle factor of X'X). See glmmjax.inference._ddf_terms.

    Arguments:
        fit: a fitted LMM.
        ddf: "satterthwaite" or "kenward-roger" (REML fits).
        type: 3 (or "III") or 1 (or "I").

    Returns:
        DataFrame indexed by term labels (R's, e.g. "sex:intake") with columns Sum Sq,
        Mean Sq, NumDF, DenDF, F value, Pr(>F).
    """
    _check_lmm(fit)
    method = _method(ddf)
    hypotheses = anova_contrasts(fit.model, type)
    rows = [_f_row(fit, L, method) if L.shape[0] else [np.nan] * 6 for L in hypotheses.values()]
    return pd.DataFrame(rows, index=pd.Index(list(hypotheses), name="term"), columns=_F_COLUMNS)
