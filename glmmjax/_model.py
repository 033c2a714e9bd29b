"""The model: formula + data + family -> a static spec and its arrays, ready to fit.

The pipeline, a stage per package:

    formula/   parse_formula: lme4 syntax -> response, fixed part, random terms, offsets
    design/    make_design: X, the random-effect terms, offsets and weights on the rows kept;
               make_blocks: terms merged per grouping factor; response_arrays: (y, trials, w)
    spec/      ModelSpec (static structure) and ModelData (arrays)
    laplace/   the objective: the Laplace approximation, the exact LMM deviance
    fit/       the optimizer, the post-fit pass (Hessian, modes), fit_batch
    results/   FitResult: estimates, summary, predict, simulate

``GLMM`` runs the stages up to the spec in named steps (``__init__``) and is immutable:
``fit()`` returns a new :class:`FitResult`; ``update()`` builds a changed model.
``objective()`` hands out the model's objective as a plain JAX function of the flat
parameter vector, the seam for users who optimize, vmap or differentiate it themselves.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ._trace_cache import cached_call
from ._warnings import DataWarning, warn
from .design import fixed_matrix, make_blocks, make_design, order_blocks, response_arrays, submodel_design
from .families import Family, get_family
from .fit import HESSIANS, OptimizerOptions, asymptotes, fit_and_post, fit_batch, restart_points
from .formula import deep_recursion, parse_formula
from .laplace import laplace_nll, lmm_objective, zero_modes
from .spec import BlockLayout, ModelData, ModelSpec, is_nested, is_rowwise, to_internal

__all__ = ["GLMM", "glmm"]


def _conditioning_transform(X) -> np.ndarray:
    """T with X T having orthogonal columns of norm sqrt(n) (from a thin QR of X)."""
    n = X.shape[0]
    _, R = np.linalg.qr(X)
    return np.linalg.inv(R) * np.sqrt(n)


def _is_trivial(formula) -> bool:
    return formula is None or formula.replace(" ", "") in ("~1", "1")


# -- the steps of GLMM.__init__ -------------------------------------------------------------
def _check_arguments(fam: Family, zi, disp, dtype):
    """The zero-inflation formula (None for none) after checking the arguments against the family."""
    zi = None if zi is None or zi.replace(" ", "") in ("~0", "0") else zi
    if zi is not None and not (fam.discrete or fam.allows_zi):
        raise ValueError(f"zero-inflation (zi={zi!r}) needs a count or binomial family (or ziGamma); "
                         f"the {fam.name} family is continuous")
    if disp is not None and not fam.has_dispersion:
        raise ValueError(f"The {fam.name} family has no dispersion parameter; remove disp={disp!r}")
    if dtype not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', not {dtype!r}")
    return zi


def _designs(formula, data, zi, disp, contrasts, weights, offset, functions):
    """The model's design and, for a zero-inflation formula with random effects, the zero-inflation
    model's design on the same rows (``make_design`` drops rows missing any variable of the
    zi and dispersion formulas too)."""
    extra = tuple(f for f in (disp, zi) if f is not None)
    design = make_design(formula, data, contrasts=contrasts, weights=weights, offset=offset, extra_formulas=extra,
                         functions=functions)
    zi_design = None
    if zi is not None and parse_formula(zi).random:
        zi_design = submodel_design(zi, data, design.positions, contrasts=contrasts, functions=functions)
    return design, zi_design


def _check_finite(design, blocks, what_X="the fixed-effects model matrix"):
    """R's "NA/NaN/Inf in 'x'": every column of X and of the random-effect matrices, the
    offsets and weights finite (missing values are dropped before; inf, e.g. log(0), is not)."""
    mats = [(design.fixed_names, design.X, what_X)]
    mats += [(b.columns, b.Z, f"the random-effect model matrix of ({' + '.join(b.columns)} | {b.group})")
             for b in blocks]
    for names, M, what in mats:
        bad = ~np.isfinite(np.asarray(M, float))
        if bad.any():
            cols = [str(names[j]) for j in np.flatnonzero(bad.any(axis=0))]
            raise ValueError(f"{what} has non-finite values (inf or NaN) in {', '.join(map(repr, cols))} "
                             f"({int(bad.any(axis=1).sum())} rows); remove or correct those rows")
    for vals, what in ((design.offset, "the offset"), (design.weights, "the weights")):
        if not np.all(np.isfinite(np.asarray(vals, float))):
            raise ValueError(f"{what} has non-finite values (inf or NaN) on "
                             f"{int((~np.isfinite(np.asarray(vals, float))).sum())} rows")


def _check_response(fam: Family, y, size, zi, p: int, blocks):
    fam.check_response(y, size if fam.trials else None)
    n = len(y)
    if not blocks and n <= p:
        raise ValueError(f"the model has {p} fixed effects and only {n} rows (after dropping missing values): "
                         "there is nothing left to estimate the error from")
    if fam.discrete and zi is None and n and np.all(y == 0):
        warn(f"the response is 0 on every row: the {fam.name} mean tends to 0 and the intercept to -infinity",
             DataWarning)
    elif fam.trials and n and np.all(y == size):
        warn("every trial is a success: the probability tends to 1 and the intercept to +infinity", DataWarning)
    if zi is None and fam.zeros_need_zi and np.any(y == 0):
        raise ValueError(
            f"The response has {int(np.sum(y == 0))} zero(s), which the {fam.name} family gives "
            "probability 0: model the zeros with a zero-inflation (hurdle) formula, e.g. zi='~1'")


def _exact_lmm(fam: Family, disp, zi, blocks, reml):
    """(profiled, reml): whether the model is an LMM fitted by the exact profiled deviance
    (gaussian, identity link, constant dispersion, no zero-inflation, random effects), and
    REML as asked (None: REML exactly for those, as lmer)."""
    profiled = fam.profiles_lmm and _is_trivial(disp) and zi is None and bool(blocks)
    if reml is None:
        reml = profiled
    if reml and not profiled:
        raise ValueError("REML is available for Gaussian (identity link) mixed models with a constant "
                         "dispersion; use reml=False for this model")
    return profiled, bool(reml)


def _check_identifiable(blocks, n: int, profiled: bool):
    """lme4's check.nobs.vs.nRE, per term as lme4 counts them: (x || g) is two terms."""
    for b in blocks if profiled else ():
        for off, k, kind in b.parts:
            for first, width in ([(off + j, 1) for j in range(k)] if kind == "diag" else [(off, k)]):
                if b.nlevels * width >= n:
                    raise ValueError(
                        f"number of observations (={n}) <= number of random effects (={b.nlevels * width}) "
                        f"for term ({' + '.join(b.columns[first:first + width])} | {b.group}); the "
                        "random-effects parameters and the residual variance (or scale parameter) are "
                        "probably unidentifiable")


def _submodel_matrices(fam: Family, disp, zi, data, design, zi_design, profiled: bool, functions):
    """(Xd, names, info) of the dispersion model and (Xzi, names, info) of the zero-inflation
    model's fixed part, on the design's rows (empty when the model has none)."""
    n = design.nobs
    none = (np.zeros((n, 0)), (), None)
    dispm = none
    if fam.has_dispersion and not profiled:
        dispm = fixed_matrix(disp or "~1", data, design.positions, functions=functions)
    if zi_design is not None:
        zim = (zi_design.X, zi_design.fixed_names, zi_design.fixed_info.fixed)
    elif zi is not None:
        zim = fixed_matrix(zi, data, design.positions, functions=functions)
    else:
        zim = none
    return dispm, zim


def _layout(blocks, n: int, zi_random: bool) -> BlockLayout:
    nested = len(blocks) == 2 and is_nested(blocks[0].codes, blocks[1].codes)
    targets = tuple(int(b.component == "zi") for b in blocks) if zi_random else ()
    rowwise = bool(blocks) and blocks[0].nlevels == n and is_rowwise(blocks[0].codes, n)
    return BlockLayout(tuple(b.nlevels for b in blocks), tuple(b.k for b in blocks), nested, targets, rowwise)


class GLMM:
    """A (generalized) linear mixed model, not yet fitted; immutable once built.

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
        data_name: the data's name for summaries ("Data: ..." as R prints the data argument).
        functions: functions of your own that the formulas may call, by name
            (``{"logit": my_logit}``), each called with numeric arrays. Besides them a formula
            may call only glmmjax's own table (README, "Security"); nothing is taken from
            the caller's frame or from Python's builtins.
    """

    def __init__(self, formula: str, data, family="gaussian", *, disp=None, zi=None, reml=None,
                 weights=None, offset=None, contrasts=None, dtype="float64", data_name=None, functions=None):
        args = dict(formula=formula, data=data, family=family, disp=disp, zi=zi, reml=reml, weights=weights,
                    offset=offset, contrasts=contrasts, dtype=dtype, data_name=data_name, functions=functions)
        functions = dict(functions or {})
        fam = get_family(family)
        zi = _check_arguments(fam, zi, disp, dtype)
        with deep_recursion():           # formulas of thousands of terms
            design, zi_design = _designs(formula, data, zi, disp, contrasts, weights, offset, functions)
        y, size, w = response_arrays(design, fam)
        blocks = order_blocks(make_blocks(design.terms) + (make_blocks(zi_design.terms, "zi") if zi_design else []))
        _check_finite(design, blocks)
        _check_response(fam, y, size, zi, design.X.shape[1], blocks)
        profiled, reml = _exact_lmm(fam, disp, zi, blocks, reml)
        _check_identifiable(blocks, design.nobs, profiled)
        (Xd, disp_names, disp_info), (Xzi, zi_names, zi_info) = _submodel_matrices(
            fam, disp, zi, data, design, zi_design, profiled, functions)
        spec = ModelSpec(fam, _layout(blocks, design.nobs, zi_design is not None), tuple(b.cov for b in blocks),
                         design.X.shape[1], Xd.shape[1], profiled=profiled, reml=reml, pz=Xzi.shape[1])
        X, Xd = np.asarray(design.X, float), np.asarray(Xd, float)
        # The optimizer works on beta~ = T^{-1} beta with X T = X~ having orthogonal columns of
        # norm sqrt(n): covariates on large scales (temperatures in the hundreds) otherwise
        # leave L-BFGS badly conditioned. LMMs profile beta out and need no transform. The
        # same for the dispersion formula: a covariate in the hundreds (petrol's EP) made the
        # first L-BFGS step move log(phi) by hundreds; the intercept-only "~1" gives Td = 1.
        T = np.eye(X.shape[1]) if profiled or X.shape[1] == 0 else _conditioning_transform(X)
        Td = np.eye(Xd.shape[1]) if Xd.shape[1] == 0 else _conditioning_transform(Xd)
        npdt = np.float64 if dtype == "float64" else np.float32
        arr = lambda a: np.asarray(a, npdt)
        # one transfer of all the arrays to the device
        arrays = jax.device_put(ModelData(arr(y), arr(size), arr(X @ T), arr(design.offset), arr(w), arr(Xd @ Td),
                                          arr(Xzi), tuple(np.asarray(b.codes, np.int32) for b in blocks),
                                          tuple(arr(b.Z) for b in blocks)))
        self._set(
            formula=formula, frame=data, data_name=data_name, family=fam, design=design, blocks=tuple(blocks),
            disp_formula=disp or ("~1" if fam.has_dispersion else None), disp_names=tuple(disp_names),
            disp_info=disp_info, zi_formula=zi, zi_names=tuple(zi_names), zi_info=zi_info, zi_design=zi_design,
            spec=spec, dtype=dtype, T=T, Td=Td, Xd=Xd, data=arrays, response=y, trials=size, prior_weights=w,
            functions=functions, _args=args)

    def _set(self, **attributes):
        for k, v in attributes.items():
            object.__setattr__(self, k, v)

    def __setattr__(self, name, value):
        raise AttributeError(f"a GLMM is immutable (cannot set {name!r}); model.update(...) builds a changed model")

    def __delattr__(self, name):
        raise AttributeError(f"a GLMM is immutable (cannot delete {name!r})")

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
        mu0 = np.asarray(fam.initial_mu(self.response, self.trials), float)
        eta0 = fam.link.host_linkfun(mu0)
        beta, *_ = np.linalg.lstsq(np.asarray(d.X), eta0 - np.asarray(d.offset), rcond=None)
        beta = np.clip(beta, -1e6, 1e6)
        betad = np.zeros(self.spec.pd)
        if self.spec.pd:
            mu = fam.link.host_linkinv(np.asarray(d.X) @ beta + np.asarray(d.offset))
            betad[0] = fam.initial_disp(self.response, mu, self.trials)
        if fam.link.name == "identity" and fam.has_dispersion and theta.size:
            # The predictor is on the response's scale, so L = I (SD 1) can be far off the
            # residual SD (sleepstudy's reaction times: ~30 ms), and there the objective is
            # concave in L: L-BFGS skips those curvature pairs and crawls (sleepstudy with
            # disp=~Days took several times as many iterations from L = I; see
            # benchmarks/README.md). Start as lme4's relative theta = 1 does: L = s I with s
            # the residual SD of the least-squares fit.
            r = np.asarray(self.response, float) - np.asarray(d.X) @ beta - np.asarray(d.offset)
            s = float(np.sqrt(np.mean(r * r))) if r.size else 1.0
            theta = theta * (s if np.isfinite(s) and s > 0 else 1.0)
        extra = np.asarray(fam.initial_extra(self.response, mu0, self.trials), float).reshape(-1)
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
                (see glmmjax/fit/_post.py). LMMs use lme4's closed form either way.
        """
        if hessian not in HESSIANS:
            raise ValueError(f"Unknown hessian {hessian!r}; choose one of {list(HESSIANS)}")
        opts = OptimizerOptions(method=method, gtol=gtol, maxiter=maxiter)
        fit = self._fit_from(start, opts, hessian)
        if start is not None and not fit.converged:
            # a start in a flat region or at a saddle point stops there: the default start
            # is tried too and the better optimum kept
            other = self._fit_from(None, opts, hessian)
            if other.converged and other.objective < fit.objective:
                fit = other.with_message(
                    "the fit from the given start= did not converge (it stopped where the objective is flat or at "
                    f"a saddle point, logLik {-fit.objective:.6g}); refitted from the default start")
        fit.warn()
        return fit

    def _fit_from(self, start, opts, hessian):
        """The fit from ``start`` (None: the default start), its warnings not yet given."""
        from .results import FitResult

        x0 = self.start_vector(start)
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
        return FitResult.from_optimum(self, res, post, opts, notes=tuple(notes), emit=False)

    def start_vector(self, start=None):
        """The optimizer's start (its coordinates, the data's dtype) from ``start``: None
        (``start()``), a flat vector as ``parameter_names()`` or a dict of parts."""
        x0 = self.start()
        if start is None:
            return jnp.asarray(self.to_internal(x0), self.data.y.dtype)
        if isinstance(start, dict):
            s = self.spec.slices()
            for key, val in start.items():
                if key not in s:
                    raise ValueError(f"Unknown start component {key!r}; "
                                     "use 'beta', 'theta', 'betad', 'betazi' or 'extra'")
                val = np.asarray(val, float).reshape(-1)
                if val.size != s[key].stop - s[key].start:
                    raise ValueError(f"start[{key!r}] needs {s[key].stop - s[key].start} values, got {val.size}")
                x0[s[key]] = val
        else:
            start = np.asarray(start, float).reshape(-1)
            if start.size != x0.size:
                raise ValueError(f"start needs {x0.size} values ({', '.join(self.parameter_names())}), "
                                 f"got {start.size}")
            x0 = start
        return jnp.asarray(self.to_internal(x0), self.data.y.dtype)

    def fit_batch(self, Y, *, start=None, method="lbfgs", gtol=1e-6, maxiter=500, strategy="auto", threads=None,
                  chunk=None, check_hessian=False):
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
            check_hessian: judge each fit's convergence by lme4's criterion with the Hessian
                (as ``fit()``; it costs 2 p gradient evaluations per dataset); by default
                the gradient alone (fit/_convergence.py).
            chunk: datasets per vectorized chunk for "chunked" and "threads" (1: lax.map;
                default 2, the fastest on a 2-core CPU, see fit/_batch.py).

        Returns:
            A BatchFit with per-dataset estimates, log-likelihoods and convergence flags.
        """
        return fit_batch(self, Y, start=start, method=method, gtol=gtol, maxiter=maxiter, strategy=strategy,
                         chunk=chunk, threads=threads, check_hessian=check_hessian)

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
         contrasts=None, start=None, method="lbfgs", dtype="float64", data_name=None, functions=None, **fit_kwargs):
    """Build and fit a mixed model in one call (see GLMM and GLMM.fit)."""
    model = GLMM(formula, data, family, disp=disp, zi=zi, reml=reml, weights=weights, offset=offset,
                 contrasts=contrasts, dtype=dtype, data_name=data_name, functions=functions)
    return model.fit(start=start, method=method, **fit_kwargs)
