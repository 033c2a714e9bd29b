"""The parameters of a fitted mixed model in lme4's order and on their reported scales
(confidence intervals and profiles, _confint.py and _profile.py).

Rows are lme4's parameters (``parameters``): ``.sig01, .sig02, ...`` for the random effects'
standard deviations and correlations (per random-effect term in lme4's term order, each term's
SDs and correlations as the column-wise lower triangle of its SD/correlation matrix: for
``(Days | Subject)`` .sig01 = SD(Intercept), .sig02 = cor, .sig03 = SD(Days)), ``.sigma`` for
LMMs, then the fixed effects; GLMMs with them add their dispersion parameter (named as the
family reports it, e.g. "theta", for ``disp ~ 1``; "disp:<coef>" otherwise), "zi:<coef>" and
"extra:<name>" rows (glmmjax only; lme4 has no such models).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

__all__ = ["Par", "parameters", "natural_values", "disp_natural", "select"]


@dataclass(frozen=True)
class Par:
    """One profiled parameter.

    name: lme4's name (".sig01", ".sigma", "(Intercept)"); label: lme4's ``oldNames = FALSE``
    name ("sd_(Intercept)|Subject", "cor_Days.(Intercept)|Subject", "sigma"). kind: "sd",
    "cor", "sigma", "beta", "disp", "zi" or "extra"; block and i (j) locate an SD
    (correlation) in a block's covariance, part is that block part's (first, k, kind); index
    is the position within beta / betad / betazi / extra.
    """

    name: str
    kind: str
    block: int = -1
    i: int = -1
    j: int = -1
    part: tuple = ()
    index: int = -1
    label: str = ""


def _lme4_terms(model) -> list:
    """lme4's random-effect terms: (block, columns, part) in lme4's order.

    Terms follow the formula (``||`` split into one term per column, as lme4 expands it);
    if the numbers of levels are not already non-increasing lme4 reorders them by
    rev(order(nlevels)), which this repeats (ties end up in reverse formula order). The terms
    of a zero-inflation formula follow, ordered the same way, labelled with the group
    "zi|g" (``Block.label``).
    """
    block_of = {(b.component, b.group): i for i, b in enumerate(model.blocks)}
    out = []
    for component, design in (("cond", model.design), ("zi", getattr(model, "zi_design", None))):
        if design is None:
            continue
        used: dict = {}
        terms = []
        for t in design.terms:
            bi = block_of[(component, t.group)]
            blk_ = model.blocks[bi]
            pi = used.get(t.group, 0)
            used[t.group] = pi + 1
            first, k, kind = blk_.parts[pi]
            if kind == "diag":
                terms += [(bi, (first + c,), blk_.parts[pi], blk_.nlevels) for c in range(k)]
            elif kind == "scalar":
                terms.append((bi, (first,), blk_.parts[pi], blk_.nlevels))
            else:
                terms.append((bi, tuple(range(first, first + k)), blk_.parts[pi], blk_.nlevels))
        nl = np.array([t[3] for t in terms])
        if np.any(np.diff(nl) > 0):
            terms = [terms[i] for i in np.argsort(nl, kind="stable")[::-1]]
        out += terms          # the zero-inflation model's terms after the conditional model's
    return out


def parameters(model) -> list:
    """The model's profiled parameters, in lme4's order (see the module docstring)."""
    out, n = [], 0
    for bi, cols, part, _ in _lme4_terms(model):
        for jj in range(len(cols)):
            for ii in range(jj, len(cols)):
                n += 1
                b = model.blocks[bi]
                name, ci, cj = f".sig{n:02d}", b.columns[cols[ii]], b.columns[cols[jj]]
                if ii == jj:
                    out.append(Par(name, "sd", bi, cols[ii], -1, part, label=f"sd_{ci}|{b.label}"))
                else:
                    out.append(Par(name, "cor", bi, cols[ii], cols[jj], part, label=f"cor_{ci}.{cj}|{b.label}"))
    spec = model.spec
    if spec.profiled:
        out.append(Par(".sigma", "sigma", label="sigma"))
    out += [Par(nm, "beta", index=i) for i, nm in enumerate(model.fixed_names)]
    if spec.pd:
        keys = list(model.family.dispersion_parameters(jnp.zeros(1), jnp.zeros(spec.n_extra)))
        if spec.pd == 1 and tuple(model.disp_names) == ("(Intercept)",) and keys:
            out.append(Par(keys[0], "disp", index=0))
        else:
            out += [Par(f"disp:{nm}", "disp", index=i) for i, nm in enumerate(model.disp_names)]
    out += [Par(f"zi:{nm}", "zi", index=i) for i, nm in enumerate(model.zi_names)]
    out += [Par(f"extra:{nm}", "extra", index=i) for i, nm in enumerate(model.family.extra_names)]
    return [q if q.label else dataclasses.replace(q, label=q.name) for q in out]


def natural_values(model, pars, Sigmas, sigma, beta, betad, betazi, extra) -> np.ndarray:
    """The parameters' values from block covariances (absolute), sigma and the coefficients."""
    out = []
    for q in pars:
        if q.kind == "sd":
            out.append(np.sqrt(max(Sigmas[q.block][q.i, q.i], 0.0)))
        elif q.kind == "cor":
            S = Sigmas[q.block]
            d = np.sqrt(S[q.i, q.i] * S[q.j, q.j])
            out.append(S[q.i, q.j] / d if d > 0 else np.nan)
        elif q.kind == "sigma":
            out.append(sigma)
        elif q.kind == "beta":
            out.append(beta[q.index])
        elif q.kind == "disp":
            out.append(disp_natural(model, q, betad[q.index], extra))
        elif q.kind == "zi":
            out.append(betazi[q.index])
        else:
            out.append(extra[q.index])
    return np.asarray(out, float)


def disp_natural(model, q: Par, value, extra):
    """A dispersion coefficient on the reported scale: the family's parameter for ``disp ~ 1``."""
    if q.name.startswith("disp:"):
        return float(value)
    d = model.family.dispersion_parameters(jnp.asarray([value], float), jnp.asarray(extra, float))
    return float(np.asarray(d[q.name]).reshape(-1)[0])


def select(pars, parm) -> list:
    """The parameters named by parm, in the model's order: None (all), a name (lme4's or its
    ``oldNames = FALSE`` label), a list of names or 0-based positions, "theta_" (the variance
    parameters, .sigma included) or "beta_" (the fixed effects), as lme4's ``parm``."""
    if parm is None:
        return list(pars)
    names = [q.name for q in pars]
    labels = [q.label for q in pars]
    items = [parm] if isinstance(parm, (str, int, np.integer)) else list(parm)
    out = []
    for it in items:
        if isinstance(it, (int, np.integer)):
            if not 0 <= it < len(pars):
                raise ValueError(f"parameter position {it} out of range: the model has {len(pars)} parameters")
            picked = [pars[it]]
        elif it == "theta_":
            picked = [q for q in pars if q.kind in ("sd", "cor", "sigma")]
        elif it == "beta_":
            picked = [q for q in pars if q.kind == "beta"]
        elif it in names:
            picked = [pars[names.index(it)]]
        elif it in labels:
            picked = [pars[labels.index(it)]]
        else:
            raise ValueError(f"unknown parameter {it!r}; the model's parameters are {names}")
        out += [q for q in picked if q not in out]
    return [q for q in pars if q in out]
