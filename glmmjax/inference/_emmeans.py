"""Estimated marginal means and their pairwise comparisons, as R's ``emmeans``.

Reference grid (emmeans' ``ref_grid``): every combination of
  * the levels of each factor in the fixed-effects formula,
  * each numeric covariate at its mean over the rows used by the fit, except that a
    covariate with at most two distinct values keeps those values as levels (emmeans'
    default ``cov.keep = "2"``),
with ``at`` overriding the values of any of these variables. Its model matrix X_g is the
fixed-effects matrix rebuilt on the grid (the fit's contrasts and column order).

Marginal means (``weights = "equal"``). For every combination c of the values of the
``specs`` and ``by`` variables, the row l_c of L is the average of the rows of X_g in
that combination, so the average runs with equal weights over the variables not named:

    emmean_c = l_c' beta,     SE_c = sqrt(l_c' V l_c),

beta = ``fit.fixef`` (conditional model) and V = ``fit.vcov``. Confidence limits are
emmean +- q SE with q the normal quantile (df = Inf, emmeans' asymptotic columns
asymp.LCL / asymp.UCL: glmer, and lmer with ``lmer.df = "asymptotic"``) or the t quantile
for a finite ``df`` (lower.CL / upper.CL).

Response scale (``type = "response"``; emmeans' back-transformation of a link-scale
grid): the mean is mu_c = g^{-1}(emmean_c), its SE the delta method |dg^{-1}/deta| SE_c
(the derivative by JAX autodiff), the limits g^{-1} of the link-scale limits. The column
is named as emmeans names it: ``prob`` for binomial families, ``rate`` for Poisson,
``response`` otherwise, ``emmean`` for an identity link.

Pairwise comparisons (``pairs``), within each ``by`` group of k means: all differences
l_i - l_j, i < j, in grid order, with z (or t) = estimate / SE and two-sided p-values,
adjusted within the group by
  * tukey: P(Q_{k,df} > sqrt(2) |z|), Q the studentized range of k means
    (``scipy.stats.studentized_range``, which takes df = inf for the asymptotic case),
  * holm: Holm's step-down, p_(i) -> max_{j<=i} min(1, (m - j + 1) p_(j)),
  * bonferroni: min(1, m p);  none: unadjusted,
m = k(k - 1)/2 comparisons. On the response scale a log link gives ratios and a logit
link odds ratios, exp(estimate) with SE exp(estimate) SE (tests stay on the link scale;
emmeans' "ratio" / "odds.ratio" columns with null = 1); other links keep link-scale
differences, as emmeans does. Contrast labels follow emmeans: levels of several variables
joined by a space, numeric levels prefixed by the variable name ("period1 - period2"),
labels containing -, +, / or * in parentheses.

Not covered (a ValueError where it would matter): models with offsets (emmeans includes
them at the covariate means); not covered silently: transformations of the response in
the formula (emmeans back-transforms log(y) ~ ... too), nested designs, weights other than
equal, degrees of freedom other than asymptotic or one user-given df (Satterthwaite and
Kenward-Roger are elsewhere).
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn

__all__ = ["emmeans", "EMMeans", "reference_grid"]

ADJUSTMENTS = ("tukey", "holm", "bonferroni", "none")
_PARENS = re.compile(r"-|\+|/|\*")   # emmeans' option "parens"


# -- reference grid ---------------------------------------------------------------------

def _numeric_levels(values: np.ndarray):
    """Grid values of a numeric covariate: its <= 2 distinct values, else its mean."""
    values = values[~np.isnan(values)]
    uniq = np.unique(values)
    if uniq.size <= 2:
        return [float(v) for v in uniq]
    return [float(np.mean(values))]


def reference_grid(fit, at=None):
    """The reference grid of a fit: (grid, X_g).

    ``grid`` is a DataFrame with one row per grid point (the first variable varying fastest,
    as R's expand.grid) and one column per variable of the fixed-effects formula: factor
    levels as strings, numeric covariates as floats. ``X_g`` is its fixed-effects matrix.
    """
    from glmmjax.design import level_label

    design = fit.model.design
    info = design.fixed_info.fixed
    if design.fixed_info.offsets or np.any(np.asarray(design.offset) != 0):
        raise ValueError("emmeans does not support models with an offset yet (offset(...) in the "
                         "formula or the offset= argument)")
    frame = fit.model.frame.iloc[design.positions] if design.positions is not None else fit.model.frame
    at = dict(at or {})
    unknown = [v for v in at if v not in info.variables]
    if unknown:
        raise ValueError(f"at= names {unknown}, which are not variables of the fixed effects "
                         f"(those are {list(info.variables)})")
    values: dict = {}
    for var in info.variables:
        levels = info.factor_levels.get(var)
        if levels is not None:
            chosen = list(levels)
            if var in at:
                chosen = [level_label(v) for v in np.atleast_1d(np.asarray(at[var], dtype=object))]
                bad = [v for v in chosen if v not in levels]
                if bad:
                    raise ValueError(f"at[{var!r}] has levels {bad} that {var!r} does not have "
                                     f"(its levels are {list(levels)})")
            values[var] = chosen
        else:
            if var in at:
                values[var] = [float(v) for v in np.atleast_1d(np.asarray(at[var], dtype=float))]
            else:
                values[var] = _numeric_levels(frame[var].to_numpy(dtype=float, na_value=np.nan))
    names = list(values)
    # R's expand.grid: the first variable varies fastest
    combos = [tuple(reversed(c)) for c in itertools.product(*(values[v] for v in reversed(names)))]
    grid = pd.DataFrame(combos, columns=names)
    X = info.build(_grid_frame(grid, info))
    return grid, X


def _grid_frame(grid: pd.DataFrame, info) -> pd.DataFrame:
    out = {}
    for var in grid.columns:
        levels = info.factor_levels.get(var)
        out[var] = (pd.Categorical(grid[var], categories=list(levels)) if levels is not None
                    else grid[var].astype(float))
    return pd.DataFrame(out, index=grid.index)


# -- arguments --------------------------------------------------------------------------

def _parse_specs(specs, by):
    """specs (a name, a list of names or a formula '~ a * b | c') and by -> two lists."""
    if isinstance(specs, str):
        text = specs.strip()
        if text.startswith("~"):
            text = text[1:]
        left, _, right = text.partition("|")
        spec_list = [s.strip() for s in re.split(r"[*:+]", left) if s.strip()]
        by_list = [s.strip() for s in re.split(r"[*:+]", right) if s.strip()]
    else:
        spec_list, by_list = [str(s) for s in specs], []
    if by is not None:
        by_list += [by] if isinstance(by, str) else [str(b) for b in by]
    if not spec_list:
        raise ValueError(f"specs {specs!r} names no variable")
    both = set(spec_list) & set(by_list)
    if both:
        raise ValueError(f"{sorted(both)} appear in both specs and by")
    return spec_list, by_list


def _response_label(family) -> str:
    """emmeans' name for back-transformed means (.std.link.labels)."""
    if family.link.name == "identity":
        return "emmean"
    if "binomial" in family.name:
        return "prob"
    if "poisson" in family.name:
        return "rate"
    return "response"


def _check_type(type) -> str:
    if type not in ("link", "response"):
        raise ValueError(f"type must be 'link' or 'response', not {type!r}")
    return type


# -- the result -------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class EMMeans:
    """Estimated marginal means of a fit (see the module docstring for the definitions).

    Attributes:
        table: DataFrame: the specs and by variables, the mean (``emmean``, or ``prob`` /
            ``rate`` / ``response`` on the response scale), ``SE``, ``df`` and the
            confidence limits (``asymp.LCL``/``asymp.UCL`` for df = inf, else
            ``lower.CL``/``upper.CL``).
        L: (rows, p) linear functions of the fixed effects, one row per mean (emmeans'
            linfct).
        grid: the reference grid the means average over.
        specs, by: the variables of the means and of the groups.
        type: "link" or "response", the scale of ``table`` and the default of ``pairs``.
        level: confidence level; df: degrees of freedom (inf: asymptotic).
        beta, vcov: the fixed effects and their covariance the means are computed from.
    """

    fit: object = field(repr=False)
    table: pd.DataFrame
    L: np.ndarray = field(repr=False)
    beta: np.ndarray = field(repr=False)
    vcov: np.ndarray = field(repr=False)
    grid: pd.DataFrame = field(repr=False)
    specs: tuple
    by: tuple
    type: str
    level: float
    df: float

    def __repr__(self):
        return self.table.to_string(index=False)

    @property
    def _keys(self) -> pd.DataFrame:
        return self.table[list(self.specs) + list(self.by)]

    def _estimates(self):
        return self.L @ self.beta, self.vcov

    def pairs(self, adjust: str = "tukey", type: str | None = None) -> pd.DataFrame:
        """Pairwise differences of the means within each ``by`` group (emmeans' ``pairs``).

        Arguments:
            adjust: "tukey" (default), "holm", "bonferroni" or "none", applied within each
                by group.
            type: "link" or "response"; default: the type the means were computed on. On
                the response scale a log link gives ratios and a logit link odds ratios.

        Returns:
            DataFrame with columns contrast, the by variables, estimate (or ratio /
            odds.ratio), SE, df, [null], z.ratio (t.ratio for finite df), p.value.
        """
        adjust = str(adjust).lower()
        if adjust not in ADJUSTMENTS:
            raise ValueError(f"adjust must be one of {ADJUSTMENTS}, not {adjust!r}")
        type = _check_type(self.type if type is None else type)
        est, V = self._estimates()
        keys = self._keys
        labels = _level_labels(keys[list(self.specs)])
        link = self.fit.model.family.link.name
        ratio = type == "response" and link in ("log", "logit")
        if type == "response" and link not in ("log", "logit", "identity"):
            warn(f"contrasts are still on the {link} scale", GlmmjaxWarning)
        sep = " / " if ratio else " - "
        groups = _by_groups(keys, list(self.by))
        rows = []
        for idx in groups:
            k = len(idx)
            block = []
            for a in range(k):
                for b in range(a + 1, k):
                    i, j = idx[a], idx[b]
                    row = self.L[i] - self.L[j]
                    d = float(est[i] - est[j])
                    se = float(np.sqrt(row @ V @ row))
                    block.append([labels[i] + sep + labels[j], i, d, se])
            stat = np.array([r[2] / r[3] for r in block])
            raw = 2.0 * _sf(np.abs(stat), self.df)
            padj = _adjust(raw, stat, k, self.df, adjust)
            for r, z, p in zip(block, stat, padj):
                rows.append(r + [z, p])
        stat_name = "z.ratio" if np.isinf(self.df) else "t.ratio"
        est_name = ("odds.ratio" if link == "logit" else "ratio") if ratio else "estimate"
        out = {"contrast": [r[0] for r in rows]}
        for var in self.by:
            out[var] = [keys[var].iloc[r[1]] for r in rows]
        d = np.array([r[2] for r in rows])
        se = np.array([r[3] for r in rows])
        out[est_name] = np.exp(d) if ratio else d
        out["SE"] = np.exp(d) * se if ratio else se
        out["df"] = np.full(len(rows), self.df)
        if ratio:
            out["null"] = np.ones(len(rows))
        out[stat_name] = np.array([r[4] for r in rows])
        out["p.value"] = np.array([r[5] for r in rows])
        table = pd.DataFrame(out)
        table.attrs["adjust"] = adjust
        table.attrs["type"] = type
        return table


def _by_groups(keys: pd.DataFrame, by: list) -> list:
    """Row indices of each by group, groups in order of first appearance."""
    if not by:
        return [list(range(len(keys)))]
    groups: dict = {}
    for i, key in enumerate(keys[by].itertuples(index=False, name=None)):
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def _level_labels(spec_values: pd.DataFrame) -> list:
    """emmeans' contrast labels of the means: levels joined by spaces, numeric levels
    prefixed by the variable name, labels containing - + / * in parentheses."""
    from glmmjax.design import level_label

    pieces = []
    for var in spec_values.columns:
        col = [level_label(v) for v in spec_values[var]]
        if all(_is_number(c) for c in col):
            col = [f"{var}{c}" for c in col]
        pieces.append(col)
    labels = [" ".join(parts) for parts in zip(*pieces)]
    return [f"({s})" if _PARENS.search(s) else s for s in labels]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _sf(x, df):
    return stats.norm.sf(x) if np.isinf(df) else stats.t.sf(x, df)


def _adjust(p: np.ndarray, stat: np.ndarray, k: int, df: float, method: str) -> np.ndarray:
    m = p.size
    if m == 0 or method == "none":
        return p
    if method == "tukey":
        return np.asarray(stats.studentized_range.sf(np.sqrt(2.0) * np.abs(stat), k, df), float)
    if method == "bonferroni":
        return np.minimum(1.0, m * p)
    order = np.argsort(p, kind="stable")      # holm
    stepped = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = stepped
    return out


# -- the function -----------------------------------------------------------------------

def emmeans(fit, specs, by=None, type: str = "link", level: float = 0.95, at=None,
            df: float | None = None, *, coef=None, vcov=None) -> EMMeans:
    """Estimated marginal means of a fitted model, as R's ``emmeans(model, specs, by)``.

    Arguments:
        fit: a FitResult (GLMM, LMM or a model without random effects).
        specs: the variable(s) whose means are wanted: "period", ["extract", "gen"], or a
            formula such as "~ extract * gen" or "~ extract | gen" (after | : by variables).
        by: variable(s) whose levels group the means (comparisons are made within groups).
        type: "link" (default) or "response" (back-transformed by the inverse link, delta-
            method SE, back-transformed limits).
        level: confidence level of the limits.
        at: dict variable -> values to use in the reference grid instead of the defaults
            (a subset of a factor's levels, or values of a numeric covariate).
        df: degrees of freedom of the t intervals and tests; None (default) is asymptotic
            (normal), as emmeans for glmer fits and for lmer with lmer.df="asymptotic".
            glmmTMB 1.1.5's emmeans method uses ``df = fit.df_resid``.
        coef, vcov: fixed effects and covariance to use instead of ``fit.fixef`` and
            ``fit.vcov`` (same order; e.g. a bootstrap replicate, or another program's
            estimates to compare with).

    Returns:
        An :class:`EMMeans`: ``.table`` and ``.pairs(adjust=..., type=...)``.

    Raises:
        ValueError: unknown variables in specs, by or at, a bad type or level, a model with
            formula offsets.
    """
    type = _check_type(type)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level!r}")
    df = np.inf if df is None else float(df)
    if not df > 0:
        raise ValueError(f"df must be positive (or None for asymptotic), not {df!r}")
    spec_list, by_list = _parse_specs(specs, by)
    grid, Xg = reference_grid(fit, at)
    unknown = [v for v in spec_list + by_list if v not in grid.columns]
    if unknown:
        raise ValueError(f"{unknown} are not variables of the fixed effects "
                         f"(those are {list(grid.columns)})")
    keys_cols = spec_list + by_list
    # combinations in expand.grid order: the first of specs fastest, the by variables last
    uniq = {v: list(dict.fromkeys(grid[v])) for v in keys_cols}
    combos = [tuple(reversed(c)) for c in itertools.product(*(uniq[v] for v in reversed(keys_cols)))]
    index = {c: [] for c in combos}
    for i, key in enumerate(grid[keys_cols].itertuples(index=False, name=None)):
        index[key].append(i)
    L = np.stack([Xg[index[c]].mean(axis=0) for c in combos])
    beta = np.asarray(fit.fixef.values if coef is None else coef, float).reshape(-1)
    V = np.asarray(fit.vcov.values if vcov is None else vcov, float)
    p = L.shape[1]
    if beta.shape != (p,) or V.shape != (p, p):
        raise ValueError(f"coef and vcov must have {p} entries and shape ({p}, {p}) (the fixed "
                         f"effects {list(fit.fixef.index)}), got {beta.shape} and {V.shape}")
    est = L @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", L, V, L))
    q = stats.norm.ppf(0.5 + level / 2) if np.isinf(df) else stats.t.ppf(0.5 + level / 2, df)
    lo, hi = est - q * se, est + q * se
    family = fit.model.family
    name = "emmean"
    if type == "response" and family.link.name != "identity":
        linkinv = family.link.linkinv
        deriv = jax.vmap(jax.grad(lambda e: linkinv(e)))
        slope = np.abs(np.asarray(deriv(jnp.asarray(est)), float))
        lo_r, hi_r = np.asarray(linkinv(jnp.asarray(lo))), np.asarray(linkinv(jnp.asarray(hi)))
        est, se = np.asarray(linkinv(jnp.asarray(est)), float), slope * se
        lo, hi = np.minimum(lo_r, hi_r), np.maximum(lo_r, hi_r)
        name = _response_label(family)
    cols = {v: [c[j] for c in combos] for j, v in enumerate(keys_cols)}
    table = pd.DataFrame(cols)
    for v in keys_cols:
        levels = fit.model.design.fixed_info.fixed.factor_levels.get(v)
        if levels is not None:
            table[v] = pd.Categorical(table[v], categories=uniq[v])
    lower, upper = ("asymp.LCL", "asymp.UCL") if np.isinf(df) else ("lower.CL", "upper.CL")
    table[name] = est
    table["SE"] = se
    table["df"] = df
    table[lower] = lo
    table[upper] = hi
    return EMMeans(fit=fit, table=table, L=L, beta=beta, vcov=V, grid=grid, specs=tuple(spec_list), by=tuple(by_list),
                   type=type, level=float(level), df=df)
