"""Model matrices from the right-hand side of an R formula, in R's order and with R's names.

patsy does the work (formula algebra, contrasts, stateful transforms), but it orders terms
differently from R and names columns its own way. Here

* factors are wrapped as ``C(f, RTreatment)`` etc. so their columns get R's names;
* terms are put in R's order: intercept, then by degree (main effects, two-way
  interactions, ...), in formula order within a degree;
* columns are named as R names them ("YEAR96", "I(age^2)", "a:b");
* aliased columns (linear combinations of earlier ones) can be dropped, as lm/lme4 do;
* a design whose factors are all plain columns (numeric, or factors under any contrast, and
  their interactions) is built directly from patsy's cached DesignInfo (``_direct_matrix``)
  once its first build has given exactly patsy's matrix, which makes building a warm
  model's design cheaper (``benchmarks/bench_tmb.py --only arabidopsis_tmb_zip
  --profile-all``, column "build s"; figures in benchmarks/README.md).

The resulting :class:`MatrixInfo` rebuilds the same columns on new data.
"""
from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
from patsy import (
    DesignInfo,
    EvalFactor,
    ModelDesc,
    NAAction,
    PatsyError,
    Term,
    build_design_matrices,
    design_matrix_builders,
)

from glmmjax.formula import Call, Name, Node, deparse, patsy_code, python_code, variables

from ._contrasts import contrast_for
from ._data import _codes_in, as_factor, check_columns, factor_levels, is_factor, is_ordered
from ._env import CONTRAST_NAMES, eval_env


def _use_category_codes():
    """Let patsy read the codes of a pandas Categorical wrapped in C(f, contrast).

    patsy takes a Categorical's codes directly, but once the column is wrapped in C() (which
    glmmjax does to carry R's contrasts and names) it converts the values one by one in
    Python, which for thousands of rows costs as much as fitting an LMM. The wrapped
    Categorical is unwrapped here when its categories are the levels patsy expects, which
    gives the same codes (NA as -1) as the per-value path.
    """
    import patsy.build
    from patsy.categorical import _CategoricalBox

    original = patsy.build.categorical_to_int
    if getattr(original, "_glmmjax", False):
        return

    def categorical_to_int(data, levels, NA_action, origin=None):
        if (isinstance(data, _CategoricalBox) and isinstance(data.data, pd.Series | pd.Categorical)
                and isinstance(data.data.dtype, pd.CategoricalDtype)
                and tuple(data.data.dtype.categories) == tuple(levels)
                and (data.levels is None or tuple(data.levels) == tuple(levels))):
            return np.asarray(pd.Categorical(data.data).codes, dtype=int)
        return original(data, levels, NA_action, origin)

    categorical_to_int._glmmjax = True
    patsy.build.categorical_to_int = categorical_to_int


_use_category_codes()

__all__ = ["MatrixInfo", "build_matrix", "aliased_columns"]

INTERCEPT = "(Intercept)"


@dataclass(frozen=True, eq=False)
class MatrixInfo:
    """What is needed to rebuild a model matrix on new data.

    Attributes:
        design_info: patsy's DesignInfo (holds codings and stateful-transform state).
        order: column indices putting patsy's columns into R's order.
        keep: indices (into the R-ordered columns) of the columns kept.
        names: names of the kept columns.
        variables: the data columns the matrix uses.
        factor_levels: levels (strings) of every factor column, as in the fitted data.
        labels: patsy factor code -> the variable or call as written in the R formula
            ("C(sex, RTreatment)" -> "sex"), for R's term labels ("sex:intake").
    """

    design_info: DesignInfo
    order: np.ndarray
    keep: np.ndarray
    names: tuple
    variables: tuple
    factor_levels: dict
    labels: dict

    def build(self, data: pd.DataFrame) -> np.ndarray:
        """The model matrix of ``data`` with the same columns as the original."""
        check_columns(self.variables, data, "new data")
        if _intercept_only(self.design_info):
            return np.ones((len(data), 1))[:, self.order][:, self.keep]
        prepared = prepare_columns(data, self.variables, self.factor_levels)
        try:
            (matrix,) = build_design_matrices([self.design_info], prepared, NA_action="raise")
        except PatsyError as err:
            raise ValueError(f"could not build the model matrix on new data: {err}") from err
        return np.asarray(matrix, dtype=float)[:, self.order][:, self.keep]


def build_matrix(node: Node, data: pd.DataFrame, contrasts=None, *,
                 drop_aliased: bool = False):
    """Model matrix of the formula right-hand side ``node`` on ``data``.

    Returns:
        (X, names, info, dropped): the matrix, its column names, a :class:`MatrixInfo`,
        and the names of aliased columns dropped (only with ``drop_aliased``).
    """
    contrasts = dict(contrasts or {})
    used = variables(node)
    check_columns(used, data, "the formula")
    levels = {name: factor_levels(data[name]) for name in used if is_factor(data[name])}
    r_names: dict = {}

    def leaf(n: Node) -> str:
        code = _leaf_code(n, data, levels, contrasts)
        r_names[EvalFactor(code).code] = deparse(n)
        return code

    code = patsy_code(node, leaf)
    # "1" (a random intercept, zi = "~1", disp = "~1"): no columns to prepare or evaluate
    intercept_only = code.strip() == "1"
    # the caller has dropped the rows with missing values: patsy need not look for them again
    # (its per-variable NaN scan was a fifth of the time of building a model)
    no_na = NAAction(NA_types=[])
    key = _design_key(code, data, used, levels)
    try:
        if key is not None and key in _DESIGNS:
            terms, design_info, direct = _DESIGNS[key]
            matrix = _direct_matrix(design_info, data, levels, direct) if direct is not None else None
            if matrix is None:
                matrix = (np.ones((len(data), 1)) if intercept_only
                          else _patsy_matrix(design_info, data, used, levels, no_na))
        else:
            prepared = pd.DataFrame(index=data.index) if intercept_only else prepare_columns(data, used, levels)
            terms = _r_ordered_terms(ModelDesc.from_formula(code).rhs_termlist)
            (design_info,) = design_matrix_builders([terms], lambda: iter([prepared]), eval_env(),
                                                    NA_action=no_na)
            if intercept_only:
                matrix = np.ones((len(data), 1))
            else:
                (matrix,) = build_design_matrices([design_info], prepared, NA_action=no_na)
            # the direct builder is used for this design from now on only if it gives
            # exactly patsy's matrix here
            direct = _direct_columns(design_info, used, levels)
            if direct is not None:
                check = _direct_matrix(design_info, data, levels, direct)
                if check is None or not np.array_equal(check, np.asarray(matrix, dtype=float)):
                    direct = None
            if key is not None:
                if len(_DESIGNS) >= _DESIGN_CACHE_SIZE:
                    _DESIGNS.pop(next(iter(_DESIGNS)))
                _DESIGNS[key] = (terms, design_info, direct)
    except PatsyError as err:
        raise ValueError(f"could not build the model matrix for {deparse(node)!r}: {err}") from err
    order, names = _r_columns(terms, design_info, r_names)
    X = np.asarray(matrix, dtype=float)[:, order]
    aliased = aliased_columns(X) if drop_aliased else []
    keep = np.setdiff1d(np.arange(X.shape[1]), aliased)
    dropped = tuple(names[j] for j in aliased)
    kept_names = tuple(names[j] for j in keep)
    info = MatrixInfo(design_info, order, keep, kept_names, tuple(used), levels, dict(r_names))
    return X[:, keep], kept_names, info, dropped


# patsy's design (terms, codings, column layout) per formula code and column types: a model
# refitted to new responses, a bootstrap or a simulation study builds the same design again,
# and patsy's design_matrix_builders is a large part of building a small model. Only
# stateless code is cached: a stateful transform (scale,
# center, standardize) memorizes the data it was built on.
_DESIGNS: dict = {}
_DESIGN_CACHE_SIZE = 256
_STATEFUL = re.compile(r"\b(scale|center|standardize)\s*\(")


def _design_key(code: str, data: pd.DataFrame, used, levels: dict):
    """The cache key of a design, or None when the code has a stateful transform."""
    if _STATEFUL.search(code):
        return None
    kinds = tuple((name, ("factor", tuple(levels[name])) if name in levels
                   else ("column", data[name].to_numpy().dtype.str))
                  for name in used)
    return code, kinds


def _patsy_matrix(design_info: DesignInfo, data: pd.DataFrame, used, levels: dict, no_na) -> np.ndarray:
    (matrix,) = build_design_matrices([design_info], prepare_columns(data, used, levels), NA_action=no_na)
    return matrix


def _direct_columns(design_info: DesignInfo, used, levels: dict):
    """For a design whose factors are all plain columns (numeric ones, and factors coded by
    contrast matrices as C(name, ...)), each patsy factor's data column and kind; else None.

    Building such a matrix needs no formula evaluation: a categorical factor contributes the
    rows of its contrast matrix at each observation's level, a numeric one its values, and a
    column of an interaction is their product. patsy does the same through pandas
    Categoricals and per-factor evaluation, which for a small model costs as much as the fit.
    """
    by_code = {python_code(Name(0, name)): name for name in levels}
    columns = {python_code(Name(0, name)): name for name in used if name not in levels}
    plain = {}
    for factor, fi in design_info.factor_infos.items():
        code = factor.code
        if fi.type == "categorical":
            m = re.fullmatch(r"C\((.+), (\w+)\)", code)
            name = by_code.get(m.group(1)) if m else None
            if name is None or tuple(fi.categories) != tuple(levels[name]):
                return None
            plain[factor] = ("factor", name)
        else:
            if fi.num_columns != 1 or code not in columns:
                return None
            plain[factor] = ("column", columns[code])
    return plain


def _direct_matrix(design_info: DesignInfo, data: pd.DataFrame, levels: dict, plain: dict):
    """patsy's matrix for a design of plain columns (``_direct_columns``), built directly;
    None where a value is missing or not numeric (patsy then reports it)."""
    values = {}
    for factor, (kind, name) in plain.items():
        if kind == "factor":
            codes = _codes(data[name], levels[name])
            if codes is None:
                return None
            values[factor] = codes
        else:
            col = data[name].to_numpy()
            if col.dtype.kind not in "biuf":
                return None
            col = col.astype(float)
            if np.isnan(col).any():
                return None
            values[factor] = col
    n = len(data)
    out = np.empty((n, len(design_info.column_names)))
    for term, subterms in design_info.term_codings.items():
        i = design_info.term_slices[term].start
        for sub in subterms:
            parts = []
            for factor in sub.factors:
                if factor in sub.contrast_matrices:
                    parts.append(np.asarray(sub.contrast_matrices[factor].matrix, float)[values[factor]])
                else:
                    parts.append(values[factor][:, None])
            # R's (and patsy's) order: the left-most factor varies fastest
            for combo in itertools.product(*(range(p.shape[1]) for p in reversed(parts))):
                col = np.ones(n)
                for p, j in zip(parts, combo[::-1]):     # multiplied in patsy's order
                    col = col * p[:, j]
                out[:, i] = col
                i += 1
    return out


def _codes(series: pd.Series, levels: tuple):
    """Each row's position in ``levels``, or None if a value is missing."""
    codes = _codes_in(series, levels)
    return None if (codes < 0).any() else codes


def _intercept_only(design_info: DesignInfo) -> bool:
    """Whether the design is the intercept alone (its matrix a column of ones)."""
    return [t.factors for t in design_info.terms] == [()]


def _leaf_code(node: Node, data: pd.DataFrame, levels: dict, contrasts: dict) -> str:
    """patsy factor code for a variable or call, wrapping factors to carry R contrasts."""
    if isinstance(node, Name) and node.name in levels:
        ordered = is_ordered(data[node.name])
        contrast = contrast_for(contrasts.get(node.name), ordered, node.name)
        return f"C({python_code(node)}, {CONTRAST_NAMES[type(contrast)]})"
    if isinstance(node, Call) and node.func in ("factor", "as.factor") and len(node.args) == 1:
        label = deparse(node)
        contrast = contrast_for(contrasts.get(label), False, label)
        return f"C({python_code(node.args[0].value)}, {CONTRAST_NAMES[type(contrast)]})"
    return python_code(node)


def _r_ordered_terms(terms: list) -> list:
    """Terms in R's order: by degree, stable; factors inside a term in formula order."""
    first_seen: dict = {}
    for term in terms:
        for factor in term.factors:
            first_seen.setdefault(factor, len(first_seen))
    ordered = sorted(terms, key=lambda t: len(t.factors))
    return [Term(sorted(t.factors, key=first_seen.__getitem__)) for t in ordered]


def _r_columns(terms: list, design_info: DesignInfo, r_names: dict):
    """Column permutation from patsy's order to R's, and the R names in that order."""
    order, names = [], []
    for term in terms:
        span = design_info.term_slices[term]
        order.extend(range(span.start, span.stop))
        names.extend(_term_names(term, design_info, r_names))
    return np.array(order, dtype=np.int64), tuple(names)


def _term_names(term: Term, design_info: DesignInfo, r_names: dict) -> list:
    if not term.factors:
        return [INTERCEPT]
    names = []
    for subterm in design_info.term_codings[term]:
        pieces = []
        for factor in subterm.factors:
            label = r_names[factor.code]
            if factor in subterm.contrast_matrices:
                suffixes = subterm.contrast_matrices[factor].column_suffixes
                pieces.append([label + s for s in suffixes])
            else:
                ncol = design_info.factor_infos[factor].num_columns
                pieces.append([label] if ncol == 1 else [f"{label}{j + 1}" for j in range(ncol)])
        # R (and patsy) let the left-most factor vary fastest.
        for combo in itertools.product(*reversed(pieces)):
            names.append(":".join(reversed(combo)))
    return names


def prepare_columns(data: pd.DataFrame, used, levels: dict) -> pd.DataFrame:
    """The columns patsy evaluates: factors as Categoricals of R labels, the rest as is.

    A data frame (not a dict) so patsy knows the number of rows even for ``~ 1``.
    """
    columns = {name: as_factor(data[name], levels[name]) if name in levels
               else data[name].to_numpy() for name in used}
    return pd.DataFrame(columns, index=data.index)


def aliased_columns(X: np.ndarray, tol: float = 1e-7) -> list:
    """Indices of columns that are (numerically) linear combinations of earlier columns."""
    basis = np.empty((X.shape[0], 0))
    aliased = []
    for j in range(X.shape[1]):
        x = X[:, j]
        norm = np.linalg.norm(x)
        resid = x - basis @ (basis.T @ x)
        resid -= basis @ (basis.T @ resid)  # re-orthogonalise for stability
        rnorm = np.linalg.norm(resid)
        if norm == 0 or rnorm <= tol * norm:
            aliased.append(j)
        else:
            basis = np.column_stack([basis, resid / rnorm])
    return aliased
