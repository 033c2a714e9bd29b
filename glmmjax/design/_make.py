"""Build a :class:`Design` from an lme4 formula and a data frame.

The steps follow lme4's model frame: parse the formula, check every variable exists,
drop rows with missing values in any variable used (with a warning), check the grouping
factors, then build the response, the fixed-effects matrix (aliased columns dropped) and,
per random-effect term, the grouping codes and the term's model matrix.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype

from glmmjax.formula import (
    Call,
    Name,
    Node,
    ParsedFormula,
    group_components,
    parse_expression,
    parse_formula,
    variables,
)

from .._warnings import DataWarning, warn
from ._data import (
    as_factor,
    check_columns,
    factor_levels,
    group_levels_and_codes,
    is_factor,
    missing_mask,
)
from ._evaluate import Evaluator
from ._matrix import MatrixInfo, build_matrix
from ._types import Design, RandomTerm

__all__ = ["make_design", "submodel_design", "fixed_matrix", "ModelInfo", "TermInfo"]


@dataclass(frozen=True, eq=False)
class TermInfo:
    """How to rebuild one random-effect term on new data."""

    components: tuple
    matrix: MatrixInfo


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """``Design.fixed_info``: everything :func:`new_data` needs besides the new rows.

    Attributes:
        fixed: rebuilds the fixed-effects matrix.
        offsets: the formula's ``offset(...)`` expressions (R syntax).
        offset_column: the column named by the ``offset=`` argument, if one was.
        terms: one :class:`TermInfo` per random-effect term.
        state: what stateful functions in the response and offsets learnt (design/_evaluate.py).
        functions: the user's functions the formula calls (``functions=``).
    """

    fixed: MatrixInfo
    offsets: tuple = ()
    offset_column: str | None = None
    terms: tuple = ()
    state: dict = field(default_factory=dict)
    functions: dict = field(default_factory=dict)


@dataclass(frozen=True)
class _Parts:
    """The parsed formula and the syntax trees of its parts."""

    parsed: ParsedFormula
    response: Node | None     # None: a one-sided formula (submodel_design)
    fixed: Node
    random: tuple  # (RandomSpec, lhs node, grouping components)
    offsets: tuple

    @classmethod
    def of(cls, formula: str) -> "_Parts":
        parsed = parse_formula(formula)
        if parsed.response is None:
            raise ValueError(f"formula {formula!r} has no response; write it as 'y ~ terms'")
        random = tuple((spec, parse_expression(spec.lhs),
                        tuple(group_components(parse_expression(spec.group))))
                       for spec in parsed.random)
        return cls(parsed, parse_expression(parsed.response), parse_expression(parsed.fixed_r),
                   random, tuple(parse_expression(o) for o in parsed.offsets))

    def variables(self) -> list:
        nodes = [n for n in (self.response, self.fixed) if n is not None]
        nodes += [*(lhs for _, lhs, _ in self.random), *self.offsets]
        names = [v for node in nodes for v in variables(node)]
        names += [c for _, _, comps in self.random for c in comps]
        return list(dict.fromkeys(names))


def make_design(formula: str, data, *, contrasts=None, weights=None, offset=None,
                extra_formulas=(), functions=None) -> Design:
    """The :class:`Design` (response, X, random-effect terms, ...) of an lme4 formula.

    Args:
        formula: e.g. ``"TICKS ~ YEAR + (1 | LOCATION)"``.
        data: a pandas DataFrame (or anything ``pd.DataFrame`` accepts).
        contrasts: factor name -> "treatment" (default), "sum", "helmert" or "poly"
            (default for ordered factors).
        weights: prior weights, an array of length ``len(data)`` or a column name.
        offset: an offset added to any ``offset(...)`` terms; array or column name.
        extra_formulas: one-sided formulas (e.g. a zero-inflation formula) whose
            variables also count for dropping rows with missing values.
        functions: the user's own functions the formula may call, by name
            (``{"logit": f}``); besides them a formula calls only glmmjax's table
            (design/_evaluate.py).

    Raises:
        ValueError: for a malformed formula, unknown columns, no rows left after dropping
            missing values, a grouping factor with fewer than 2 levels, negative weights.
    """
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    parts = _Parts.of(formula)
    weights_values, weights_column = _argument(weights, data, "weights")
    offset_values, offset_column = _argument(offset, data, "offset")
    used = parts.variables()
    extra_used = [v for f in extra_formulas for v in variables(parse_expression(f))]
    check_columns(used, data, f"formula {formula!r}")
    check_columns(extra_used, data, "extra formulas")
    argument_columns = [c for c in (weights_column, offset_column) if c is not None]
    mask = missing_mask(data, dict.fromkeys(used + extra_used + argument_columns))
    mask |= np.isnan(weights_values) | np.isnan(offset_values)
    rows = _keep_rows(mask, formula)
    frame = data.iloc[rows]
    weights_values, offset_values = weights_values[rows], offset_values[rows]
    if np.any(weights_values < 0):
        raise ValueError("weights must be non-negative; found negative weights")
    groups = [_grouping(frame, comps, spec.group) for spec, _, comps in parts.random]

    ev = Evaluator(frame, functions=functions)
    y, size, *text = _response(parts.response, frame, ev)
    X, names, fixed, dropped = build_matrix(parts.fixed, frame, contrasts, drop_aliased=True, functions=functions)
    _warn_aliased(dropped)
    terms, term_infos = _random_terms(parts, groups, frame, contrasts, functions)
    for expression in parts.offsets:
        offset_values = offset_values + ev.numeric(expression, "the offset")
    return Design(
        formula=formula, response=parts.parsed.response, y=y, size=size, X=X,
        response_text=text[0] if text else None,
        fixed_names=names, offset=offset_values, weights=weights_values, terms=terms,
        rows=data.index[rows], positions=rows, n_dropped=int(mask.sum()), dropped_columns=dropped,
        fixed_info=ModelInfo(fixed, parts.parsed.offsets, offset_column, term_infos, ev.state, dict(functions or {})),
    )


def submodel_design(formula: str, data, positions, *, contrasts=None, functions=None) -> Design:
    """The design of a one-sided formula with random effects (``zi = ~ x + (1 | site)``) on the
    rows of the main model (``Design.positions``): X, its names and the random-effect terms;
    no response (``y`` None), offsets 0, weights 1."""
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    parsed = parse_formula(formula)
    _no_offsets(parsed)
    random = tuple((spec, parse_expression(spec.lhs), tuple(group_components(parse_expression(spec.group))))
                   for spec in parsed.random)
    parts = _Parts(parsed, None, parse_expression(parsed.fixed_r), random, ())
    check_columns(parts.variables(), data, f"formula {formula!r}")
    frame = data.iloc[np.asarray(positions)]
    groups = [_grouping(frame, comps, spec.group) for spec, _, comps in random]
    X, names, fixed, dropped = build_matrix(parts.fixed, frame, contrasts, drop_aliased=True, functions=functions)
    _warn_aliased(dropped)
    terms, term_infos = _random_terms(parts, groups, frame, contrasts, functions)
    n = len(frame)
    return Design(formula=formula, response=None, y=None, size=None, X=X, fixed_names=names,
                  offset=np.zeros(n), weights=np.ones(n), terms=terms, rows=frame.index,
                  positions=np.asarray(positions), dropped_columns=dropped,
                  fixed_info=ModelInfo(fixed, (), None, term_infos, {}, dict(functions or {})))


def _random_terms(parts: _Parts, groups: list, frame: pd.DataFrame, contrasts, functions=None):
    """The RandomTerms of the formula and, for new data, how to rebuild them."""
    terms, infos = [], []
    for (spec, lhs, components), (levels, codes) in zip(parts.random, groups):
        Z, columns, info, _ = build_matrix(lhs, frame, contrasts, functions=functions)
        cov = "diag" if spec.independent else "us"
        terms.append(RandomTerm(spec.group, levels, codes, Z, columns, cov, spec.lhs))
        infos.append(TermInfo(components, info))
    return tuple(terms), tuple(infos)


def fixed_matrix(formula: str, data, positions=None, *, contrasts=None, functions=None):
    """Fixed-effects matrix of a one-sided formula (``"~1"``, ``"~ mined"``) on ``rows``.

    Args:
        formula: a formula without random-effect terms; a response is ignored.
        data: the data frame.
        positions: the rows to use, by position (``Design.positions``); all rows if None.

    Returns:
        (X, names, info): the matrix, R-style column names, and a ``MatrixInfo`` whose
        ``build(newdata)`` rebuilds the same columns on new data.
    """
    data = data if isinstance(data, pd.DataFrame) else pd.DataFrame(data)
    parsed = parse_formula(formula)
    if parsed.random:
        raise ValueError(f"formula {formula!r} may not contain random-effect terms here")
    _no_offsets(parsed)
    node = parse_expression(parsed.fixed_r)
    used = variables(node)
    check_columns(used, data, "the formula")
    # only the columns the formula uses: selecting rows of a wide frame copies every column
    frame = data[used] if positions is None else data[used].iloc[np.asarray(positions)]
    X, names, info, dropped = build_matrix(node, frame, contrasts, drop_aliased=True, functions=functions)
    _warn_aliased(dropped)
    return X, names, info


def _no_offsets(parsed: ParsedFormula):
    if parsed.offsets:
        raise ValueError(f"offset() in {parsed.text!r}: glmmjax takes offsets in the conditional model's "
                         "formula (or offset=) only, not in a zero-inflation or dispersion formula")


def _argument(value, data: pd.DataFrame, what: str):
    """An array-or-column-name argument as (float values, column name or None)."""
    if value is None:
        return np.full(len(data), 1.0 if what == "weights" else 0.0), None
    if isinstance(value, str):
        check_columns([value], data, f"the {what} argument")
        return data[value].to_numpy(dtype=float, na_value=np.nan), value
    values = np.asarray(value, dtype=float).reshape(-1)
    if values.shape[0] != len(data):
        raise ValueError(f"{what} has length {values.shape[0]} but data has {len(data)} rows")
    return values, None


def _keep_rows(mask: np.ndarray, formula: str) -> np.ndarray:
    n_dropped = int(mask.sum())
    if n_dropped == len(mask):
        raise ValueError(f"no rows left for formula {formula!r} after dropping rows with "
                         f"missing values ({n_dropped} of {len(mask)} rows dropped)")
    if n_dropped:
        warn(f"dropped {n_dropped} of {len(mask)} rows with missing values", DataWarning)
    return np.flatnonzero(~mask)


def _grouping(frame: pd.DataFrame, components: tuple, group: str):
    levels, codes = group_levels_and_codes(frame, list(components))
    if len(levels) < 2:
        raise ValueError(f"grouping factor {group!r} has only {len(levels)} level; "
                         f"a random effect needs at least 2")
    return levels, codes


def _response(node: Node, frame: pd.DataFrame, ev: Evaluator):
    """(y, size): successes and trials for ``cbind(s, f)``, else the response and None."""
    if isinstance(node, Call) and node.func == "cbind":
        if len(node.args) != 2 or any(a.name is not None for a in node.args):
            raise ValueError("cbind() response takes two arguments: successes and failures")
        successes = ev.numeric(node.args[0].value, "cbind()'s successes")
        failures = ev.numeric(node.args[1].value, "cbind()'s failures")
        return successes, successes + failures
    if isinstance(node, Name) and is_factor(frame[node.name]) and not is_bool_dtype(frame[node.name].dtype):
        # As R's binomial family: the first level is failure, all others success; any other
        # family refuses a text response (design/_response.py)
        col = frame[node.name]
        codes = as_factor(col, factor_levels(col)).codes
        return (codes > 0).astype(float), None, _text_examples(col)
    if isinstance(node, Name) and is_bool_dtype(frame[node.name].dtype):
        return frame[node.name].to_numpy(dtype=float), None
    return ev.numeric(node, "the response"), None


def _text_examples(col: pd.Series) -> tuple:
    """Up to five distinct values of a text column that do not read as numbers."""
    out = []
    for v in pd.unique(col.astype(object)):
        try:
            float(v)
        except (TypeError, ValueError):
            out.append(str(v))
            if len(out) == 5:
                break
    return tuple(out)


def _warn_aliased(dropped: tuple):
    if dropped:
        n = len(dropped)
        warn(f"fixed-effect model matrix is rank deficient so dropping {n} "
                      f"column{'s' if n > 1 else ''} / coefficient{'s' if n > 1 else ''}: "
                      f"{', '.join(dropped)}", DataWarning)
