"""The model: formula + data + family -> a static spec and its arrays, ready to fit.

``GLMM`` is immutable: building it parses the formula, builds the design, checks the data
and lays out the parameters; ``fit()`` returns a new :class:`FitResult` and leaves the model
as it was. ``objective()`` hands out the model's objective as a plain JAX function of the
flat parameter vector, the seam for users who optimize, vmap or differentiate it themselves.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._trace_cache import cached_call
from .covariance import combine, cov_structure
from .design import fixed_matrix, make_design
from .formula import parse_formula
from .families import Family, get_family
from .fit._asymptote import asymptotes, restart_points
from .fit._optimize import OptimizerOptions
from .laplace._blocked import BlockLayout, is_nested, is_rowwise
from .laplace._glmm import laplace_nll, zero_modes
from .laplace._lmm import lmm_objective
from .laplace._spec import ModelData, ModelSpec, to_internal
from .results._post import fit_and_post

__all__ = ["GLMM", "glmm", "Block"]

#: families whose response is successes out of trials (cbind, 0/1, or proportions with weights)
_TRIALS_FAMILIES = ("binomial", "betabinomial")


@dataclass(frozen=True, eq=False)
class Block:
    """The random-effect terms on one grouping factor, merged (lme4 merges them too).

    Attributes:
        group: grouping factor name ("Subject", "student:school").
        levels: level labels.
        codes: (n,) level of each row.
        Z: (n, k) model matrix (the terms' columns side by side).
        columns: the k column names.
        parts: per original term, (first column, number of columns, cov kind).
        cov: the merged CovStructure.
        component: "cond" (conditional model) or "zi" (zero-inflation model).
    """

    group: str
    levels: tuple
    codes: np.ndarray
    Z: np.ndarray
    columns: tuple
    parts: tuple
    cov: object
    component: str = "cond"

    @property
    def label(self) -> str:
        """The group, prefixed by "zi|" for a zero-inflation block (parameter names, messages)."""
        return self.group if self.component == "cond" else f"zi|{self.group}"

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def k(self) -> int:
        return self.Z.shape[1]


def _blocks(terms, component="cond") -> list:
    """One Block per grouping factor of ``terms`` (in order of first appearance)."""
    by_group: dict = {}
    for t in terms:
        by_group.setdefault(t.group, []).append(t)
    blocks = []
    for group, ts in by_group.items():
        parts, off = [], 0
        for t in ts:
            kind = t.cov if t.k > 1 else "us"
            parts.append((off, t.k, kind))
            off += t.k
        cov = combine([cov_structure(kind, k) for _, k, kind in parts])
        blocks.append(Block(group, tuple(ts[0].levels), np.asarray(ts[0].codes, np.int32),
                            np.hstack([np.asarray(t.Z, float) for t in ts]),
                            tuple(c for t in ts for c in t.columns), tuple(parts), cov, component))
    return blocks


def _order_blocks(blocks) -> list:
    """The largest block first: it is the block-diagonal part of the factorization (stable)."""
    order = sorted(range(len(blocks)), key=lambda i: -blocks[i].nlevels * blocks[i].k)
    return [blocks[i] for i in order]


def _conditioning_transform(X) -> np.ndarray:
    """T with X T having orthogonal columns of norm sqrt(n) (from a thin QR of X)."""
    n = X.shape[0]
    _, R = np.linalg.qr(X)
    return np.linalg.inv(R) * np.sqrt(n)


def _binomial_response(design, weights):
    """(successes, trials, weights) for a binomial response given as cbind, 0/1 or proportions."""
    y = np.asarray(design.y, float)
    if design.size is not None:
        return y, np.asarray(design.size, float), weights
    if np.any(weights != 1.0):
        # proportions with weights = number of trials (R's glm convention)
        if np.any((y < 0) | (y > 1)):
            raise ValueError("A binomial response given with weights must be proportions in [0, 1]")
        succ = y * weights
        if np.any(np.abs(succ - np.round(succ)) > 1e-8):
            warnings.warn("non-integer #successes in a binomial glm!", stacklevel=3)
        return succ, weights.copy(), np.ones_like(weights)
    return y, np.ones_like(y), weights


class GLMM:
    """A (generalized) linear mixed model, not yet fitted.

    Arguments:
        formula: lme4 formula, e.g. ``"TICKS ~ YEAR + (1 | LOCATION)"``.
        data: a pandas DataFrame.
        family: a glmmTMB family name ("gaussian", "binomial", "poisson", "nbinom2",
            "nbinom1", "Gamma", "beta", "t", "truncated_poisson", "truncated_nbinom1",
            "truncated_nbinom2", "lognormal", "ziGamma", "betabinomial", "tweedie", "genpois",
            "compois") or a Family instance.
        disp: dispersion formula (one-sided, log link), e.g. ``"~ x"``; default ``"~1"``.
        zi: zero-inflation formula (one-sided, logit link), e.g. ``"~1"``, ``"~ x"`` or, with
            random effects, ``"~ x + (1 | site)"``, for count families and binomial: y = 0
            with probability p + (1 - p) f(0), as glmmTMB.
            With a zero-truncated family (f(0) = 0) this is the hurdle model; with ziGamma
            the zeros of a Gamma response.
        reml: REML for a Gaussian LMM; None means REML for gaussian-identity models with a
            constant dispersion (as lmer) and ML otherwise (as glmer/glmmTMB).
        weights, offset: prior weights and an offset (arrays or column names).
        contrasts: factor name -> "treatment", "sum", "helmert" or "poly".
        dtype: "float64" (default) or "float32".
    """

    def __init__(self, formula: str, data, family="gaussian", *, disp=None, zi=None, reml=None,
                 weights=None, offset=None, contrasts=None, dtype="float64"):
        fam = get_family(family)
        zi = None if zi is None or zi.replace(" ", "") in ("~0", "0") else zi
        if zi is not None and not (fam.discrete or getattr(fam, "allows_zi", False)):
            raise ValueError(f"zero-inflation (zi={zi!r}) needs a count or binomial family (or ziGamma); "
                             f"the {fam.name} family is continuous")
        if disp is not None and not fam.has_dispersion:
            raise ValueError(f"The {fam.name} family has no dispersion parameter; remove disp={disp!r}")
        if dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
        extra = tuple(f for f in (disp, zi) if f is not None)
        design = make_design(formula, data, contrasts=contrasts, weights=weights, offset=offset,
                             extra_formulas=extra)
        w = np.asarray(design.weights, float)
        if fam.name in _TRIALS_FAMILIES:
            y, size, w = _binomial_response(design, w)
        else:
            if design.size is not None:
                raise ValueError(f"A cbind() response needs the binomial family, not {fam.name}")
            y, size = np.asarray(design.y, float), np.ones(design.nobs)
        fam.check_response(y, size if fam.name in _TRIALS_FAMILIES else None)
        if zi is None and getattr(fam, "zeros_need_zi", False) and np.any(y == 0):
            raise ValueError(
                f"The response has {int(np.sum(y == 0))} zero(s), which the {fam.name} family gives "
                "probability 0: model the zeros with a zero-inflation (hurdle) formula, e.g. zi='~1'")
        zi_design = None
        if zi is not None and parse_formula(zi).random:
            # a zi formula with random effects: its own design on the rows kept for the model
            # (make_design above already dropped rows missing any variable of the zi formula)
            zi_design = make_design(f"{design.response} ~ {parse_formula(zi).fixed_r} + "
                                    + " + ".join(f"({r.lhs} {'||' if r.independent else '|'} {r.group})"
                                                 for r in parse_formula(zi).random),
                                    data.loc[design.rows], contrasts=contrasts)
        blocks = _order_blocks(_blocks(design.terms) + (_blocks(zi_design.terms, "zi") if zi_design else []))
        n = design.nobs
        trivial_disp = disp is None or disp.replace(" ", "") in ("~1", "1")
        profiled = (fam.name == "gaussian" and fam.link.name == "identity" and trivial_disp and zi is None
                    and bool(blocks))
        if reml is None:
            reml = profiled
        if reml and not profiled:
            raise ValueError("REML is available for Gaussian (identity link) mixed models with a constant "
                             "dispersion; use reml=False for this model")
        # lme4's check.nobs.vs.nRE, per term as lme4 counts them: (x || g) is two terms
        for b in blocks if profiled else ():
            for off, k, kind in b.parts:
                for first, width in ([(off + j, 1) for j in range(k)] if kind == "diag" else [(off, k)]):
                    if b.nlevels * width >= n:
                        raise ValueError(
                            f"number of observations (={n}) <= number of random effects (={b.nlevels * width}) "
                            f"for term ({' + '.join(b.columns[first:first + width])} | {b.group}); the "
                            "random-effects parameters and the residual variance (or scale parameter) are "
                            "probably unidentifiable")
        if fam.has_dispersion and not profiled:
            Xd, disp_names, disp_info = fixed_matrix(disp or "~1", data, design.rows)
        else:
            Xd, disp_names, disp_info = np.zeros((n, 0)), (), None
        if zi_design is not None:
            Xzi, zi_names, zi_info = zi_design.X, zi_design.fixed_names, zi_design.fixed_info.fixed
        elif zi is not None:
            Xzi, zi_names, zi_info = fixed_matrix(zi, data, design.rows)
        else:
            Xzi, zi_names, zi_info = np.zeros((n, 0)), (), None
        nested = len(blocks) == 2 and is_nested(blocks[0].codes, blocks[1].codes)
        targets = tuple(int(b.component == "zi") for b in blocks) if zi_design is not None else ()
        rowwise = bool(blocks) and blocks[0].nlevels == n and is_rowwise(blocks[0].codes, n)
        layout = BlockLayout(tuple(b.nlevels for b in blocks), tuple(b.k for b in blocks), nested, targets, rowwise)
        spec = ModelSpec(fam, layout, tuple(b.cov for b in blocks), design.X.shape[1], Xd.shape[1],
                         profiled=profiled, reml=bool(reml), pz=Xzi.shape[1])
        npdt = np.float64 if dtype == "float64" else np.float32
        arr = lambda a: np.asarray(a, npdt)
        X = np.asarray(design.X, float)
        # The optimizer works on beta~ = T^{-1} beta with X T = X~ having orthogonal columns of
        # norm sqrt(n): covariates on large scales (temperatures in the hundreds) otherwise
        # leave L-BFGS badly conditioned. LMMs profile beta out and need no transform.
        T = np.eye(X.shape[1]) if profiled or X.shape[1] == 0 else _conditioning_transform(X)
        # the same for the dispersion formula: a covariate in the hundreds (petrol's EP) made
        # the first L-BFGS step move log(phi) by hundreds, where the beta log-density is
        # rounding noise; the intercept-only "~1" gives Td = 1
        Td = np.eye(Xd.shape[1]) if Xd.shape[1] == 0 else _conditioning_transform(np.asarray(Xd, float))
        self.formula = formula
        self.frame = data
        self._args = dict(formula=formula, data=data, family=family, disp=disp, zi=zi, reml=reml, weights=weights,
                          offset=offset, contrasts=contrasts, dtype=dtype)
        self.family: Family = fam
        self.design = design
        self.blocks = tuple(blocks)
        self.disp_formula = disp or ("~1" if fam.has_dispersion else None)
        self.disp_names = tuple(disp_names)
        self.disp_info = disp_info
        self.zi_formula = zi
        self.zi_names = tuple(zi_names)
        self.zi_info = zi_info
        self.zi_design = zi_design
        self.spec = spec
        self.dtype = dtype
        self.T = T
        self.Td = Td
        self.Xd = np.asarray(Xd, float)      # on the scale of disp_fixef (data.Xd is Xd Td)
        # one transfer of all the arrays to the device
        self.data = jax.device_put(ModelData(arr(y), arr(size), arr(X @ T), arr(design.offset), arr(w), arr(self.Xd @ Td),
                                             arr(Xzi), tuple(np.asarray(b.codes, np.int32) for b in blocks),
                                             tuple(arr(b.Z) for b in blocks)))
        self._y, self._size, self._w = y, size, w

    def update(self, **changes) -> "GLMM":
        """A new model with some constructor arguments changed (lme4's ``update``).

        ``model.update(reml=False)`` is the ML version of a REML model;
        ``model.update(formula="y ~ 1 + (1|g)")`` keeps data, family and the rest. The model
        itself is unchanged.
        """
        unknown = set(changes) - set(self._args)
        if unknown:
            raise TypeError(f"update() got unknown argument(s) {sorted(unknown)}; "
                            f"the model's arguments are {sorted(self._args)}")
        args = dict(self._args, **changes)
        return GLMM(args.pop("formula"), args.pop("data"), **args)

    # -- parameters ----------------------------------------------------------------------
    @property
    def fixed_names(self) -> tuple:
        return tuple(self.design.fixed_names)

    def parameter_names(self) -> list:
        """Names of the entries of the flat parameter vector."""
        theta = [f"theta[{b.label}]:{nm}" for b in self.blocks for nm in b.cov.theta_names(b.columns)]
        if self.spec.profiled:
            return theta
        return (list(self.fixed_names) + theta + [f"disp:{d}" for d in self.disp_names]
                + [f"zi:{z}" for z in self.zi_names] + [f"extra:{e}" for e in self.family.extra_names])

    def start(self) -> np.ndarray:
        """Default starting values: a least-squares fit on the link scale for beta, a moment
        estimate for the dispersion, identity Cholesky factors for the random effects."""
        theta = np.concatenate([b.cov.initial() for b in self.blocks]) if self.blocks else np.zeros(0)
        if self.spec.profiled:
            return theta
        fam, d = self.family, self.design
        mu0 = np.asarray(fam.initial_mu(self._y, self._size), float)
        eta0 = fam.link.host_linkfun(mu0)
        beta, *_ = np.linalg.lstsq(np.asarray(d.X), eta0 - np.asarray(d.offset), rcond=None)
        beta = np.clip(beta, -1e6, 1e6)
        betad = np.zeros(self.spec.pd)
        if self.spec.pd:
            mu = fam.link.host_linkinv(np.asarray(d.X) @ beta + np.asarray(d.offset))
            betad[0] = fam.initial_disp(self._y, mu, self._size)
        if fam.link.name == "identity" and fam.has_dispersion and theta.size:
            # The predictor is on the response's scale, so L = I (SD 1) can be far off the
            # residual SD (sleepstudy: ~30 ms), and there the objective is concave in L:
            # L-BFGS skips those curvature pairs and crawls (sleepstudy with disp=~Days: 231
            # iterations from L = I). Start as lme4's relative theta = 1 does: L = s I with s
            # the residual SD of the least-squares fit.
            r = np.asarray(self._y, float) - np.asarray(d.X) @ beta - np.asarray(d.offset)
            s = float(np.sqrt(np.mean(r * r))) if r.size else 1.0
            theta = theta * (s if np.isfinite(s) and s > 0 else 1.0)
        extra = np.asarray(fam.initial_extra(self._y, mu0, self._size), float).reshape(-1)
        betazi = np.zeros(self.spec.pz)
        if self.spec.pz and "(Intercept)" in self.zi_names:
            betazi[self.zi_names.index("(Intercept)")] = -1.0   # start at p = 0.27
        return np.concatenate([beta, theta, betad, betazi, extra])

    def to_internal(self, x):
        """Flat parameters (beta on the scale of X) -> the optimizer's (beta~ = T^{-1} beta)."""
        x = np.array(x, dtype=float)
        if not self.spec.profiled:
            for s, T in self._transforms():
                x[s] = np.linalg.solve(T, x[s])
        return x

    def _transforms(self):
        """(slice, T) of the blocks the optimizer sees reparameterized: beta and betad."""
        s = self.spec.slices()
        return [(s["beta"], self.T), (s["betad"], self.Td)]

    def to_external(self, x):
        """The optimizer's parameters -> flat parameters with beta on the scale of X."""
        x = np.array(x, dtype=float)
        if not self.spec.profiled:
            for s, T in self._transforms():
                x[s] = T @ x[s]
        return x

    def jacobian_external(self) -> np.ndarray:
        """d(external)/d(internal): identity except the beta block, which is T."""
        J = np.eye(self.spec.n_params)
        if not self.spec.profiled:
            for s, T in self._transforms():
                J[s, s] = T
        return J

    def objective(self):
        """The objective as a plain JAX function of the flat parameter vector.

        For GLMMs the Laplace negative log-likelihood (parameters as ``parameter_names()``,
        fixed effects on the scale of X); for a profiled LMM half the ML deviance or REML
        criterion as a function of theta. The model's arrays are passed to a compiled
        function as arguments (not closed over), so the function can be jitted, vmapped and
        differentiated; its jax.grad is exact (implicit differentiation of the mode solve).
        """
        return partial(_objective, self.spec, self.data, self.inverse_transforms())

    def inverse_transforms(self):
        """(T^{-1}, Td^{-1}) in the data's dtype, for ``laplace._spec.to_internal``."""
        dt = self.data.y.dtype
        return jnp.asarray(np.linalg.inv(self.T), dt), jnp.asarray(np.linalg.inv(self.Td), dt)

    # -- fitting -------------------------------------------------------------------------
    def fit(self, start=None, *, method="lbfgs", gtol=1e-6, maxiter=500, hessian="fd"):
        """Fit by maximum likelihood (REML for LMMs by default) and return a FitResult.

        Arguments:
            start: starting values for the flat parameter vector (see ``parameter_names``),
                or a dict with any of "beta", "theta", "betad".
            method: "lbfgs" (default), "optax-lbfgs" or "bfgs".
            gtol: convergence tolerance on max|gradient|.
            maxiter: iteration limit of the outer optimizer.
            hessian: how the Hessian behind the standard errors of a GLMM is computed:
                "fd" (default), central differences of the exact autodiff gradient (as
                glmmTMB's sdreport does), or "autodiff", exact second derivatives, which
                take several times longer to compile for families with lgamma terms
                (see glmmjax/results/_post.py). LMMs use lme4's closed form either way.
        """
        from .results import FitResult
        from .results._post import HESSIANS

        if hessian not in HESSIANS:
            raise ValueError(f"Unknown hessian {hessian!r}; choose one of {list(HESSIANS)}")

        opts = OptimizerOptions(method=method, gtol=gtol, maxiter=maxiter)
        x0 = self._start_vector(start)
        static = dict(spec=self.spec, opts=opts, glm_start=start is None and self.family.glm_start, hessian=hessian)
        res, post = cached_call(fit_and_post, static, data=self.data, x0=x0)
        notes = asymptotes(self, self.to_external(np.asarray(res.x))) if not self.spec.profiled else []
        if notes:
            # at an asymptote: restart from the interior start and from the optimum with the
            # asymptotic submodels reset, and keep the best (fit/_asymptote.py)
            static = dict(static, glm_start=False)
            for x in restart_points(self, self.to_external(np.asarray(res.x))):
                r2, p2 = cached_call(fit_and_post, static, data=self.data,
                                     x0=jnp.asarray(self.to_internal(x), self.data.y.dtype))
                if np.isfinite(float(r2.value)) and float(r2.value) < float(res.value) - 1e-9 * abs(float(res.value)):
                    res, post = r2, p2
            notes = asymptotes(self, self.to_external(np.asarray(res.x)))
        return FitResult.from_optimum(self, res, post, opts, notes=tuple(notes))

    def _start_vector(self, start):
        x0 = self.start()
        if start is None:
            return jnp.asarray(self.to_internal(x0), self.data.y.dtype)
        if isinstance(start, dict):
            s = self.spec.slices()
            for key, val in start.items():
                if key not in s:
                    raise ValueError(f"Unknown start component {key!r}; use 'beta', 'theta', 'betad', 'betazi' or 'extra'")
                val = np.asarray(val, float).reshape(-1)
                if val.size != s[key].stop - s[key].start:
                    raise ValueError(f"start[{key!r}] needs {s[key].stop - s[key].start} values, got {val.size}")
                x0[s[key]] = val
        else:
            start = np.asarray(start, float).reshape(-1)
            if start.size != x0.size:
                raise ValueError(f"start needs {x0.size} values ({', '.join(self.parameter_names())}), got {start.size}")
            x0 = start
        return jnp.asarray(self.to_internal(x0), self.data.y.dtype)

    def fit_batch(self, Y, *, start=None, method="lbfgs", gtol=1e-6, maxiter=500, strategy="auto", threads=None,
                  chunk=None):
        """Fit many responses of the same design in one compiled computation.

        Arguments:
            Y: (n_datasets, n_obs) responses (binomial: successes, with the model's trials).
            start: None (each fit starts from its own GLM fit, as ``fit()``), a FitResult
                (every fit starts at its estimates: the natural start for a parametric
                bootstrap or a simulation from the fit, as lme4's refit), or a parameter vector.
            strategy: "chunked" (lax.map over vectorized chunks of ``chunk`` datasets), "map"
                (lax.map), "vmap", "threads" (the rows split over host threads, each part
                run as "chunked"), or "auto": vmap on GPU/TPU; on CPU threads when the
                process may use several CPUs, else chunked (see fit/_batch.py).
            threads: number of threads for "threads" (default: the CPUs the process may use).
            chunk: datasets per vectorized chunk for "chunked" and "threads" (1: lax.map;
                default 2, the fastest on a 2-core CPU, see fit/_batch.py).

        Returns:
            A BatchFit with per-dataset estimates, log-likelihoods and convergence flags.
        """
        from .fit._batch import fit_batch

        return fit_batch(self, Y, start=start, method=method, gtol=gtol, maxiter=maxiter, strategy=strategy, chunk=chunk,
                         threads=threads)

    def __repr__(self):
        return f"GLMM({self.formula!r}, family={self.family!r}, nobs={self.design.nobs})"


@partial(jax.jit, static_argnums=(0,))
def _objective(spec, data, Tinvs, x):
    x = jnp.asarray(x, data.y.dtype)
    if spec.profiled:
        return lmm_objective(spec, x, data)
    x = to_internal(spec, Tinvs, x)
    return laplace_nll(spec, x, data, zero_modes(spec, x.dtype))[0]


def glmm(formula: str, data, family="gaussian", *, disp=None, zi=None, reml=None, weights=None, offset=None,
         contrasts=None, start=None, method="lbfgs", dtype="float64", **fit_kwargs):
    """Build and fit a mixed model in one call (see GLMM and GLMM.fit)."""
    model = GLMM(formula, data, family, disp=disp, zi=zi, reml=reml, weights=weights, offset=offset,
                 contrasts=contrasts, dtype=dtype)
    return model.fit(start=start, method=method, **fit_kwargs)
