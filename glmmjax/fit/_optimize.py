"""Outer optimizers, all jit- and map-able, selected by ``method=``:

    "lbfgs"        glmmjax's compact L-BFGS (_lbfgs.py), the default;
    "optax-lbfgs"  optax's L-BFGS with its zoom (strong Wolfe) line search;
    "bfgs"         optimistix's BFGS.

The default was chosen by measurement (grouseticks Poisson GLMMs, 2-core CPU): all three
reach the same optimum (logLik equal to 1e-9), but optax's zoom line search traces the
objective — with its inner Newton solve — several times, so it compiles much slower than the
compact L-BFGS, and optimistix's BFGS takes about three times as many iterations (the
figures: benchmarks/README.md). (jax.scipy.optimize's BFGS is not offered: it has been seen
to stop early and report success.)

Both minimize a function ``fun(x, aux) -> (value, aux')`` where ``aux`` is a warm-start
state carried between accepted iterates (the random-effect modes of the Laplace objective).
Convergence is judged on the gradient: the loop stops when max|grad| <= gtol, when the
objective stops decreasing (``ftol`` relative, several iterations running), or at ``maxiter``.
The caller reports ``max|grad|`` and never trusts a "success" flag without it.

Variance parameters at 0 are checked by one method for all: the compact L-BFGS probes them
(``_lbfgs.Boundary``, see _lbfgs.py), and the other two methods hand their result to it, so
a fit from any method ends with the same boundary check (fit/_convergence.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import jax
import jax.numpy as jnp

from ._lbfgs import Boundary, lbfgs

__all__ = ["OptimizerOptions", "OptResult", "minimize"]


@dataclass(frozen=True)
class OptimizerOptions:
    """Settings of the outer optimizer (hashable: part of the compiled function's key).

    Attributes:
        method: "lbfgs" (default), "optax-lbfgs" or "bfgs" (see the module docstring).
        gtol: stop when max|gradient| falls below this.
        ftol: relative decrease below which an iteration counts as stalled.
        maxiter: iteration limit.
        memory: L-BFGS history length.
    """

    method: str = "lbfgs"
    gtol: float = 1e-6
    ftol: float = 1e-13
    maxiter: int = 500
    memory: int = 20

    def __post_init__(self):
        if self.method not in _METHODS:
            raise ValueError(f"Unknown optimizer {self.method!r}; choose one of {sorted(_METHODS)}")


class OptResult(NamedTuple):
    x: jax.Array
    value: jax.Array
    grad: jax.Array
    aux: object
    iterations: jax.Array
    hess: jax.Array | None = None   # central-difference Hessian at x (minimize(hessian=True), "lbfgs")
    boundary_checked: jax.Array | None = None  # every variance parameter at 0 probed (_lbfgs.py)


# A fit's result crosses glmmjax's trace cache (glmmjax/_trace_cache.py) as a jax.export output
# (a JAX without this registration does not cache the fit; it traces it as usual).
if hasattr(jax.export, "register_namedtuple_serialization"):
    jax.export.register_namedtuple_serialization(OptResult, serialized_name="glmmjax.fit.OptResult")


def _lbfgs(fun, x0, aux0, opts: OptimizerOptions, h0=None, hessian=False, boundary=None) -> OptResult:
    import optax  # imported on use: the default optimizer does not need it

    opt = optax.lbfgs(memory_size=opts.memory, linesearch=optax.scale_by_zoom_linesearch(max_linesearch_steps=40))
    vg = jax.value_and_grad(fun, has_aux=True)
    (v0, aux0), g0 = vg(x0, aux0)

    def cond(c):
        x, st, aux, v, g, it, stall, ok = c
        return (it < opts.maxiter) & (jnp.max(jnp.abs(g)) > opts.gtol) & (stall < 3) & ok

    def body(c):
        x, st, aux, v, g, it, stall, _ = c
        upd, st_new = opt.update(g, st, x, value=v, grad=g, value_fn=lambda p: fun(p, aux)[0])
        x_new = optax.apply_updates(x, upd)
        (v_new, aux_new), g_new = vg(x_new, aux)
        ok = jnp.isfinite(v_new) & jnp.all(jnp.isfinite(g_new))
        stall = jnp.where(v - v_new <= opts.ftol * (1.0 + jnp.abs(v)), stall + 1, 0)
        keep = lambda a, b: jax.tree.map(lambda p, q: jnp.where(ok, p, q), a, b)
        return (keep(x_new, x), keep(st_new, st), keep(aux_new, aux), jnp.where(ok, v_new, v),
                keep(g_new, g), it + 1, stall, ok)

    init = (x0, opt.init(x0), aux0, v0, g0, jnp.asarray(0), jnp.asarray(0), jnp.isfinite(v0))
    x, _, aux, v, g, it, _, _ = jax.lax.while_loop(cond, body, init)
    return OptResult(x, v, g, aux, it)


def _bfgs(fun, x0, aux0, opts: OptimizerOptions, h0=None, hessian=False, boundary=None) -> OptResult:
    import optimistix as optx  # imported on use: the default optimizer does not need it

    solver = optx.BFGS(rtol=opts.ftol, atol=opts.gtol)
    sol = optx.minimise(lambda x, a: fun(x, a)[0], solver, x0, args=aux0, max_steps=opts.maxiter, throw=False)
    (v, aux), g = jax.value_and_grad(fun, has_aux=True)(sol.value, aux0)
    return OptResult(sol.value, v, g, aux, sol.stats["num_steps"])


def _own_lbfgs(fun, x0, aux0, opts: OptimizerOptions, h0=None, hessian=False, boundary=None) -> OptResult:
    r = lbfgs(fun, x0, aux0, gtol=opts.gtol, ftol=opts.ftol, maxiter=opts.maxiter, memory=opts.memory, h0=h0,
              hessian=hessian, boundary=boundary)
    return OptResult(r.x, r.value, r.grad, r.aux, r.iterations, r.hess, r.boundary_checked)


_METHODS = {"lbfgs": _own_lbfgs, "optax-lbfgs": _lbfgs, "bfgs": _bfgs}


def minimize(fun, x0, aux0, opts: OptimizerOptions, h0=None, hessian=False, boundary: Boundary | None = None
             ) -> OptResult:
    """Minimize ``fun(x, aux) -> (value, aux)`` from ``x0``.

    ``h0`` (d, d): an initial inverse Hessian, used by "lbfgs" (the others ignore it).
    ``hessian``: "lbfgs" also returns the central-difference Hessian at the optimum
    (``OptResult.hess``, see _lbfgs.lbfgs); the others return None.
    ``boundary``: the variance parameters, probed where they end at 0 (_lbfgs.py); the
    other methods' results are handed to "lbfgs" for that check, which also goes on from
    them if a probe finds the objective falling.
    """
    res = _METHODS[opts.method](fun, x0, aux0, opts, h0, hessian, boundary)
    if opts.method != "lbfgs" and boundary is not None and len(boundary.index):
        polished = _own_lbfgs(fun, res.x, res.aux, opts, boundary=boundary)
        res = polished._replace(iterations=res.iterations + polished.iterations)
    return res
