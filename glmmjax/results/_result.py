"""FitResult: the estimates of a fitted model and everything computed from them.

A FitResult is immutable: it holds the model it came from, the optimum and the quantities
computed there (numpy / pandas on the host). Methods that need new data or random draws
(predict, simulate) run compiled JAX code against the stored model.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import pandas as pd

from .._warnings import ConvergenceWarning, DataWarning, SingularFitWarning, warn
from ..families import Family
from ..fit import Convergence, check_convergence, nonconvergence_message
from ..spec import Params

__all__ = ["FitResult"]

SINGULAR_TOL = 1e-4     # lme4's isSingular tolerance on the (relative) Cholesky diagonal
RUNAWAY_SE = 1e3        # a fixed effect's SE times its column's root mean square above this runs away


def _runaway_coefficients(fit) -> list:
    """Fixed effects whose standard error, on the scale of their column (SE x rms(X_j): the
    optimizer's orthonormalized coordinates up to rotation), exceeds RUNAWAY_SE."""
    X = np.asarray(fit.model.design.X, float)
    if X.shape[1] == 0 or fit.is_lmm:
        return []
    rms = np.sqrt(np.mean(X * X, axis=0))
    with np.errstate(invalid="ignore"):
        scaled = np.sqrt(np.abs(np.diag(fit.vcov.values))) * rms
    return [nm for nm, s in zip(fit.fixef.index, scaled) if not np.isfinite(s) or s > RUNAWAY_SE]


def _np(a):
    return np.asarray(a, dtype=float)


@dataclass(frozen=True, eq=False)
class FitResult:
    """A fitted mixed model (see the module docstring of glmmjax for the public attributes)."""

    model: object
    x: np.ndarray
    objective: float
    grad: np.ndarray
    iterations: int
    method: str
    fixef: pd.Series
    vcov: pd.DataFrame
    theta: np.ndarray
    covariances: tuple            # per block: k x k covariance of the random effects
    sigma_: float | None
    disp_fixef: pd.Series | None
    extra: np.ndarray
    eta: np.ndarray               # linear predictor at the conditional modes
    modes: tuple                  # per block: (m, k) conditional modes b
    condvar: tuple                # per block: (m, k, k) conditional covariances
    hessian: np.ndarray | None
    vcov_full: pd.DataFrame | None
    grad_opt: np.ndarray | None = None  # the gradient in the optimizer's coordinates
    deviance_ml: float | None = None
    messages: tuple = ()
    boundary_checked: bool = True   # every variance parameter at 0 checked by the optimizer (fit/_convergence.py)
    convergence: Convergence | None = None  # lme4's criterion at the optimum (fit/_convergence.py)
    warning_classes: tuple = ()    # the category of each message (glmmjax/_warnings.py)
    hessian_opt: np.ndarray | None = None  # the objective's Hessian in the optimizer's coordinates

    # -- construction ------------------------------------------------------------------
    @classmethod
    def from_optimum(cls, model, res, post, opts, notes=(), emit=True) -> "FitResult":
        """The result from ``fit_and_post``'s optimizer result ``res`` and post-fit pass ``post``;
        ``notes``: further warnings about the optimum (fit/_asymptote.py), recorded in
        ``messages``; ``emit``: give the warnings now (else ``warn()`` gives them)."""
        spec = model.spec
        x = res.x
        msgs = []
        if not np.all(np.isfinite(np.asarray(x))) or not np.isfinite(float(res.value)):  # on the host: no eager JAX ops
            raise FloatingPointError(
                "The objective became non-finite during the fit (NaN or inf); check the data scale, "
                "the family and link, or give starting values with start=")
        names = list(model.fixed_names)
        if spec.profiled:
            beta = _np(post["beta"])
            vcov = _np(post["vcov"])
            sigma = float(post["sigma"])
            covs = tuple(sigma ** 2 * (_np(L) @ _np(L).T) for L in post["Ls"])
            hess = None
            vcov_full = None
            disp = None
            extra = np.zeros(0)
        else:
            x = model.to_external(_np(x))
            prm = Params.unpack(spec, x)
            beta = _np(prm.beta)
            Jinv = np.linalg.inv(model.jacobian_external())
            hess = Jinv.T @ _np(post["hess"]) @ Jinv
            post = dict(post, grad=Jinv.T @ _np(post["grad"]), grad_opt=_np(post["grad"]), objective=res.value)
            pnames = model.parameter_names()
            vcov_all, ok = _invert_hessian(hess)
            if not ok:
                msgs.append(("non-positive-definite Hessian matrix: standard errors of the fixed effects are "
                             "conditional on the variance parameters", ConvergenceWarning))
                sl = spec.slices()["beta"]
                vcov = np.linalg.pinv(hess[sl, sl])
            else:
                vcov = vcov_all[: spec.p, : spec.p]
            vcov_full = pd.DataFrame(vcov_all, index=pnames, columns=pnames)
            covs = tuple(_np(L) @ _np(L).T for L in post["Ls"])
            disp = pd.Series(_np(prm.betad), index=list(model.disp_names), name="disp") if spec.pd else None
            extra = _np(prm.extra)
            sigma = None
            if model.family.name == "gaussian" and spec.pd:
                sigma = float(np.exp(0.5 * _np(prm.betad)[0])) if len(model.disp_names) == 1 else None
        grad = _np(post["grad"])
        grad_opt = _np(post.get("grad_opt", post["grad"]))
        checked = bool(res.boundary_checked) if res.boundary_checked is not None else True
        x_opt = _np(res.x)
        scale = 1.0 if spec.profiled or sigma is None else sigma
        at_zero = [i for i in spec.variance_coordinates() if abs(x_opt[i]) < SINGULAR_TOL * scale]
        conv = check_convergence(float(post["objective"]), grad_opt, _np(post["hess"]), at_zero, checked,
                                 model.parameter_names())
        fit = cls(
            model=model, x=_np(x), objective=float(post["objective"]), grad=grad, grad_opt=grad_opt,
            iterations=int(res.iterations), method=opts.method,
            fixef=pd.Series(beta, index=names, name="Estimate"),
            vcov=pd.DataFrame(vcov, index=names, columns=names),
            theta=_np(x[spec.slices()["theta"]]), covariances=covs, sigma_=sigma, disp_fixef=disp,
            extra=extra, eta=_np(post["eta"]), modes=tuple(_np(b) for b in post["b"]),
            condvar=tuple(_np(c) for c in post["condvar"]), hessian=hess, vcov_full=vcov_full,
            deviance_ml=float(post["deviance_ml"]) if spec.profiled else None,
            boundary_checked=checked, convergence=conv, hessian_opt=_np(post["hess"]),
        )
        if not fit.converged:
            msgs.append((nonconvergence_message(fit.objective, conv, checked), ConvergenceWarning))
        if fit.is_singular:
            msgs.append(("boundary (singular) fit: see help('isSingular')", SingularFitWarning))
        runaway = _runaway_coefficients(fit)
        if runaway:
            msgs.append((f"fixed effect(s) {', '.join(map(repr, runaway))} have standard errors above {RUNAWAY_SE:g} "
                         "on the scale of their column: the estimate runs to infinity (complete separation in a "
                         "binomial model, or a level or group whose responses are all 0)", DataWarning))
        msgs += [(note, ConvergenceWarning) for note in notes]
        fit = dataclasses.replace(fit, messages=tuple(m for m, _ in msgs), warning_classes=tuple(c for _, c in msgs))
        if emit:
            fit.warn()
        return fit

    def warn(self):
        """Give the fit's messages as warnings (ConvergenceWarning, SingularFitWarning),
        attributed to the caller's line."""
        for m, c in zip(self.messages, self.warning_classes):
            warn(m, c)

    def with_message(self, message: str, category=ConvergenceWarning) -> "FitResult":
        """The same fit with one more message (recorded; given by ``warn()``)."""
        return dataclasses.replace(self, messages=self.messages + (message,),
                                   warning_classes=self.warning_classes + (category,))

    # -- convergence -------------------------------------------------------------------
    @property
    def max_grad(self) -> float:
        """max|gradient| in the optimizer's coordinates, where convergence is judged.

        Fixed effects are optimized as beta~ = T^{-1} beta with X T orthonormal up to a
        factor sqrt(n), a scale-free choice: a covariate in the hundreds (temperatures)
        otherwise makes its coefficient's gradient hundreds of times larger than the
        same relative precision warrants. ``grad`` holds the gradient in the reported
        parameterization.
        """
        g = self.grad if self.grad_opt is None else self.grad_opt
        return float(np.max(np.abs(g))) if g.size else 0.0

    @property
    def converged(self) -> bool:
        """lme4's criterion (fit/_convergence.py): a finite objective, the deviance's scaled
        gradient below 0.002 (boundary parameters left out of the Hessian), no negative
        curvature away from the boundary, every variance parameter at 0 checked."""
        return bool(self.convergence.converged)

    @property
    def is_singular(self) -> bool:
        """A variance at (numerically) zero: lme4's isSingular on the Cholesky diagonals."""
        spec = self.model.spec
        sc = 1.0 if spec.profiled or self.sigma_ is None else self.sigma_
        off, out = 0, False
        for c in spec.covs:
            out = out or c.is_singular(self.theta[off: off + c.n_theta], sc, SINGULAR_TOL)
            off += c.n_theta
        return out

    # -- fixed effects -----------------------------------------------------------------
    @property
    def se(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.vcov.values)), index=self.fixef.index, name="Std. Error")

    @property
    def coef_table(self) -> pd.DataFrame:
        """The fixed-effects table: Estimate, Std. Error, z value and Pr(>|z|) for GLMMs (Wald,
        as glmmTMB); for LMMs df, t value and Pr(>|t|) with Satterthwaite's degrees of freedom,
        as lmerTest's summary (see ``coef_table_ddf`` for Kenward-Roger or lme4's t only)."""
        return self.coef_table_ddf("satterthwaite")

    def coef_table_ddf(self, ddf="satterthwaite") -> pd.DataFrame:
        """The fixed-effects table with a choice of denominator df for LMMs.

        ddf: "satterthwaite" (lmerTest's default), "kenward-roger" (pbkrtest's adjusted
        covariance and df, REML fits) or "lme4" / None (Estimate, Std. Error, t value, as lme4
        prints them, without p-values). GLMMs always get Wald z tests.
        """
        from scipy import stats

        est, se = self.fixef.values, self.se.values
        stat = est / se
        if self.is_lmm:
            if ddf is None or str(ddf).lower() == "lme4":
                return pd.DataFrame({"Estimate": est, "Std. Error": se, "t value": stat}, index=self.fixef.index)
            from ..inference import ddf_coef_table

            return ddf_coef_table(self, ddf)
        p = 2 * stats.norm.sf(np.abs(stat))
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": stat, "Pr(>|z|)": p}, index=self.fixef.index)

    @property
    def is_lmm(self) -> bool:
        return bool(self.model.spec.profiled)

    @property
    def reml(self) -> bool:
        return bool(self.model.spec.reml)

    @property
    def zi_fixef(self):
        """Zero-inflation coefficients (logit scale), or None without a zi formula."""
        return self._component("betazi", self.model.zi_names, "zi")

    @property
    def zi_se(self):
        return self._component_se("betazi", self.model.zi_names, "zi")

    @property
    def disp_se(self):
        return self._component_se("betad", self.model.disp_names, "disp")

    def _component(self, key, names, label):
        sl = self.model.spec.slices()[key]
        if sl.stop == sl.start:
            return None
        return pd.Series(self.x[sl], index=list(names), name=label)

    def _component_se(self, key, names, label):
        sl = self.model.spec.slices()[key]
        if sl.stop == sl.start or self.vcov_full is None:
            return None
        return pd.Series(np.sqrt(np.diag(self.vcov_full.values)[sl]), index=list(names), name=label)

    def component_table(self, component: str) -> pd.DataFrame:
        """Estimate, Std. Error, z value, Pr(>|z|) of the "zi" or "disp" model."""
        from scipy import stats

        est = self.zi_fixef if component == "zi" else self.disp_fixef
        se = self.zi_se if component == "zi" else self.disp_se
        if est is None:
            raise ValueError(f"This model has no {component} component")
        z = est.values / se.values
        return pd.DataFrame({"Estimate": est.values, "Std. Error": se.values, "z value": z,
                             "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))}, index=est.index)

    # -- dispersion ----------------------------------------------------------------------
    @property
    def sigma(self) -> float:
        """Residual SD for Gaussian models; R's sigma() of other families otherwise."""
        if self.sigma_ is not None:
            return self.sigma_
        d = self.dispersion_parameters
        for key in ("sigma",):
            if key in d:
                return float(np.atleast_1d(d[key])[0])
        return 1.0

    @property
    def dispersion_parameters(self) -> dict:
        fam = self.model.family
        if self.model.spec.profiled:
            return {"sigma": self.sigma_}
        if not self.model.spec.pd:
            return {}
        if len(self.model.disp_names) != 1:
            return {}
        return {k: float(np.asarray(v).reshape(-1)[0])
                for k, v in fam.dispersion_parameters(jnp.asarray(self.disp_fixef.values[:1]),
                                                      jnp.asarray(self.extra)).items()}

    @property
    def dispersion(self):
        """The family's dispersion parameter (sigma, theta, phi, shape, ...), or None."""
        d = self.dispersion_parameters
        return next(iter(d.values())) if d else None

    # -- likelihood ----------------------------------------------------------------------
    @property
    def loglik(self) -> float:
        """Log-likelihood (REML fits: the REML log-likelihood, -reml_criterion / 2, as lme4)."""
        return -self.objective

    @property
    def reml_criterion(self):
        return 2.0 * self.objective if self.reml else None

    @property
    def df(self) -> int:
        """Number of estimated parameters (logLik's df)."""
        spec = self.model.spec
        return spec.n_params + (1 + spec.p if spec.profiled else 0)

    @property
    def nobs(self) -> int:
        return self.model.design.nobs

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + np.log(self.nobs) * self.df

    @property
    def deviance(self):
        """-2 logLik for ML fits; for REML fits the ML deviance at the REML estimates."""
        if self.reml:
            return self.deviance_ml
        return -2.0 * self.loglik

    @property
    def df_resid(self) -> int:
        return self.nobs - self.df

    @property
    def ngroups(self) -> dict:
        return {b.group: b.nlevels for b in self.model.blocks}

    # -- random effects ------------------------------------------------------------------
    @property
    def varcorr(self) -> pd.DataFrame:
        """Tidy variance components: component ("cond" or "zi", glmmTMB's conditional and
        zero-inflation models), group, term1, term2, variance/covariance, sd, corr."""
        rows = []
        for b, S in zip(self.model.blocks, self.covariances):
            sd = np.sqrt(np.diag(S))
            for first, k, kind in b.parts:
                cols = range(first, first + k)
                for i in cols:
                    rows.append(dict(component=b.component, group=b.group, term1=b.columns[i], term2=None,
                                     variance=S[i, i], sd=sd[i], corr=np.nan))
                if kind == "us":
                    for i in cols:
                        for j in cols:
                            if j > i:
                                c = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                                rows.append(dict(component=b.component, group=b.group, term1=b.columns[i],
                                                 term2=b.columns[j], variance=S[i, j], sd=np.nan, corr=c))
        if self.model.family.name == "gaussian" and self.sigma_ is not None:
            rows.append(dict(component="cond", group="Residual", term1=None, term2=None, variance=self.sigma_ ** 2,
                             sd=self.sigma_, corr=np.nan))
        return pd.DataFrame(rows, columns=["component", "group", "term1", "term2", "variance", "sd", "corr"])

    def _per_block(self, values, component, sd=False) -> dict:
        out = {}
        for b, v in zip(self.model.blocks, values):
            if b.component == component:
                v = np.sqrt(np.diagonal(v, axis1=1, axis2=2)) if sd else v
                out[b.group] = pd.DataFrame(v, index=pd.Index(b.levels, name=b.group), columns=list(b.columns))
        return out

    @property
    def ranef(self) -> dict:
        """Grouping factor -> DataFrame of conditional modes (levels x terms), as lme4's ranef()
        (the conditional model's; ``zi_ranef`` has the zero-inflation model's)."""
        return self._per_block(self.modes, "cond")

    @property
    def ranef_sd(self) -> dict:
        """Grouping factor -> DataFrame of conditional SDs of the random effects."""
        return self._per_block(self.condvar, "cond", sd=True)

    @property
    def zi_ranef(self) -> dict:
        """The zero-inflation model's random effects (logit scale), as glmmTMB's ranef(m)$zi."""
        return self._per_block(self.modes, "zi")

    @property
    def zi_ranef_sd(self) -> dict:
        """Conditional SDs of the zero-inflation model's random effects."""
        return self._per_block(self.condvar, "zi", sd=True)

    def coef(self) -> dict:
        """Fixed plus random effects per level of each grouping factor (lme4's coef())."""
        out = {}
        for g, re in self.ranef.items():
            df = pd.DataFrame({name: np.full(len(re), val) for name, val in self.fixef.items()}, index=re.index)
            for c in re.columns:
                df[c] = df[c] + re[c] if c in df else re[c]
            out[g] = df
        return out

    # -- fitted values, residuals, prediction, simulation: see _predict.py --------------
    def fitted(self) -> np.ndarray:
        """Fitted means of y at the conditional modes (binomial: proportions; with zero-inflation
        (1 - p) mu), as glmmTMB's fitted() = predict(type="response")."""
        if self.model.spec.pz == 0 and type(self.model.family).mean is Family.mean:
            return self.model.family.link.host_linkinv(self.eta)
        return self.predict(type="response")

    def predict(self, newdata=None, re_form=None, type="response", allow_new_levels=True):
        """Predictions on the link or response scale (see glmmjax.results._predict.predict)."""
        from ._predict import predict

        return predict(self, newdata=newdata, re_form=re_form, type=type, allow_new_levels=allow_new_levels)

    def simulate(self, nsim=1, seed=0, re_form="~0"):
        """Simulated responses, (nsim, nobs) (see glmmjax.results._predict.simulate)."""
        from ._predict import simulate

        return simulate(self, nsim=nsim, seed=seed, re_form=re_form)

    def residuals(self, type="response"):
        """Residuals: "response", "pearson" or "deviance" (see glmmjax.results._predict.residuals)."""
        from ._predict import residuals

        return residuals(self, type=type)

    # -- inference: see glmmjax.inference ------------------------------------------------
    def confint(self, method="profile", level=0.95, parm=None, *, oldnames=True) -> pd.DataFrame:
        """Confidence intervals as lme4's confint(): "profile" (likelihood profile; REML fits
        are profiled on the ML deviance, as lme4) or "wald" (see glmmjax.inference.confint)."""
        from ..inference import confint

        return confint(self, method=method, level=level, parm=parm, oldnames=oldnames)

    def profile(self, parm=None, **kwargs) -> pd.DataFrame:
        """The likelihood profiles (parameter, value, zeta, ...), as lme4's profile()."""
        from ..inference import profile

        return profile(self, parm=parm, **kwargs)

    def summary(self, ddf="satterthwaite"):
        """The summary, laid out as lme4/lmerTest (LMMs) or glmmTMB (GLMMs) print it.

        ddf (LMMs): "satterthwaite" (default, as lmerTest), "kenward-roger", or "lme4" for
        lme4's table of t values without df and p-values.
        """
        from ._summary import Summary

        return Summary(self, ddf)

    def __repr__(self):
        return self.summary().short()


def _invert_hessian(H):
    """(inverse, ok): ok is False when H is not positive definite."""
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        return np.full_like(H, np.nan), False
    Linv = np.linalg.solve(L, np.eye(H.shape[0]))
    return Linv.T @ Linv, True
