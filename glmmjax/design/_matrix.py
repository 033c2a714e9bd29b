"""Model matrices from the right-hand side of an R formula, in R's order and with R's names.

glmmjax evaluates every leaf of the formula itself (design/_evaluate.py) and binds each to a
generated name ("v0", "v1", ...); patsy does the formula algebra and the contrast coding
over those names only, so no text of the user's reaches patsy's (Python's) eval. patsy
orders terms differently from R and names columns its own way. Here

* factor leaves are wrapped as ``C(v0, RTreatment)`` etc. so their columns get R's names;
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
from collections import OrderedDict
from dataclasses import dataclass, field

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

from glmmjax.formula import Node, deparse, patsy_code, variables

from ._contrasts import contrast_for
from ._data import check_columns, factor_levels, is_factor
from ._env import CONTRAST_NAMES, eval_env
from ._evaluate import Evaluator, Factor


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

__all__ = ["Leaf", "MatrixInfo", "build_matrix", "aliased_columns"]

INTERCEPT = "(Intercept)"


@dataclass(frozen=True)
class Leaf:
    """One leaf of a formula (a variable or a call), evaluated by glmmjax and bound to a name
    that glmmjax generated: patsy sees ``name`` (or ``C(name, contrast)``), never the text."""

    name: str             # the generated name patsy sees ("v0")
    node: Node            # the leaf's syntax tree
    text: str             # as written in R ("log(x)", "sex")
    levels: tuple | None  # a factor's levels (R labels); None for a numeric leaf
    ncol: int = 1         # columns of a numeric leaf (poly(x, 2): 2)


@dataclass(frozen=True, eq=False)
class MatrixInfo:
    """What is needed to rebuild a model matrix on new data.

    Attributes:
        design_info: patsy's DesignInfo over the generated names (codings, column layout).
        order: column indices putting patsy's columns into R's order.
        keep: indices (into the R-ordered columns) of the columns kept.
        names: names of the kept columns.
        variables: the data columns the matrix uses.
        factor_levels: levels (strings) of every factor column used as a variable, as in the
            fitted data (emmeans' grids).
        labels: patsy factor code -> the variable or call as written in the R formula
            ("C(v0, RTreatment)" -> "sex"), for R's term labels ("sex:intake").
        leaves: the formula's leaves (``Leaf``), evaluated by glmmjax (design/_evaluate.py).
        state: the stateful functions' learnt parameters (scale, center, poly).
        functions: the user's functions (``functions=``) the formula calls.
        code: the generated patsy formula (rebuilds ``design_info`` after unpickling).
    """

    design_info: DesignInfo
    order: np.ndarray
    keep: np.ndarray
    names: tuple
    variables: tuple
    factor_levels: dict
    labels: dict
    leaves: tuple = ()
    state: dict = field(default_factory=dict)
    functions: dict = field(default_factory=dict)
    code: str = "1"

    def bind(self, data: pd.DataFrame) -> dict:
        """The leaves' values on ``data`` under their generated names (what patsy evaluates),
        with the fitted state of stateful functions and the fitted factor levels."""
        return _bind(self.leaves, Evaluator(data, functions=self.functions, state=self.state, frozen=True))

    def build(self, data: pd.DataFrame) -> np.ndarray:
        """The model matrix of ``data`` with the same columns as the original."""
        check_columns(self.variables, data, "new data")
        if not self.design_info.terms:                # y ~ 0 + ...: no fixed effects
            return np.zeros((len(data), 0))
        if _intercept_only(self.design_info):
            return np.ones((len(data), 1))[:, self.order][:, self.keep]
        try:
            (matrix,) = build_design_matrices([self.design_info], self.bind(data), NA_action="raise")
        except PatsyError as err:
            raise ValueError(f"could not build the model matrix on new data: {err}") from err
        return np.asarray(matrix, dtype=float)[:, self.order][:, self.keep]

    def __getstate__(self):
        # patsy's DesignInfo does not pickle: keep what rebuilds it (the generated code and
        # the leaves' kinds and levels)
        state = dict(self.__dict__)
        state["design_info"] = None
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if state.get("design_info") is None:
            object.__setattr__(self, "design_info", _rebuild_design_info(self))


def _bind(leaves, ev: Evaluator) -> dict:
    """{generated name: value} of each leaf on the evaluator's data; factors coded by the
    fitted levels (a level the fit has not seen is an error)."""
    out = {}
    for lf in leaves:
        v = ev.value(lf.node)
        if lf.levels is not None:
            if not isinstance(v, Factor):
                raise ValueError(f"{lf.text!r} is numeric in the new data but a factor in the fitted data")
            if v.levels != lf.levels:
                lab = v.labels()
                index = {x: i for i, x in enumerate(lf.levels)}
                unknown = sorted({x for x in lab if x is not None and x not in index})
                if unknown:
                    raise ValueError(f"factor {lf.text!r} has levels not in the fitted data: "
                                     f"{', '.join(map(repr, unknown[:5]))}")
                v = Factor(np.array([-1 if x is None else index[x] for x in lab], dtype=np.int64), lf.levels)
            out[lf.name] = pd.Categorical.from_codes(v.codes, categories=list(lf.levels))
        else:
            if isinstance(v, Factor):
                raise ValueError(f"{lf.text!r} is a factor in the new data but numeric in the fitted data")
            arr = np.asarray(v, dtype=float)
            out[lf.name] = np.full(len(ev.data), float(arr)) if arr.ndim == 0 else arr
    return out


def build_matrix(node: Node, data: pd.DataFrame, contrasts=None, *,
                 drop_aliased: bool = False, functions=None):
    """Model matrix of the formula right-hand side ``node`` on ``data``.

    Every leaf (variable or call) is evaluated by glmmjax (design/_evaluate.py) and bound to
    a generated name; patsy does the formula algebra and the coding over those names only.
    ``functions``: the user's own functions the formula may call, by name.

    Returns:
        (X, names, info, dropped): the matrix, its column names, a :class:`MatrixInfo`,
        and the names of aliased columns dropped (only with ``drop_aliased``).
    """
    contrasts = dict(contrasts or {})
    used = variables(node)
    check_columns(used, data, "the formula")
    levels = {name: factor_levels(data[name]) for name in used if is_factor(data[name])}
    ev = Evaluator(data, functions=functions)
    r_names: dict = {}
    leaves: dict = {}
    bound: dict = {}

    def leaf(n: Node) -> str:
        text = deparse(n)
        if text not in leaves:
            v = ev.value(n)
            name = f"v{len(leaves)}"
            if isinstance(v, Factor):
                contrast = contrast_for(contrasts.get(text), v.ordered, text)
                leaves[text] = (Leaf(name, n, text, v.levels), f"C({name}, {CONTRAST_NAMES[type(contrast)]})")
                bound[name] = pd.Categorical.from_codes(v.codes, categories=list(v.levels))
            else:
                if isinstance(v, (str, tuple)):
                    raise ValueError(f"{text!r} is a string, not a variable, in the formula")
                arr = np.asarray(v, dtype=float)
                arr = np.full(len(data), float(arr)) if arr.ndim == 0 else arr
                leaves[text] = (Leaf(name, n, text, None, 1 if arr.ndim == 1 else arr.shape[1]), name)
                bound[name] = arr
        code = leaves[text][1]
        r_names[EvalFactor(code).code] = text
        return code

    code = patsy_code(node, leaf)
    # "1" (a random intercept, zi = "~1", disp = "~1"): no columns to prepare or evaluate
    intercept_only = code.strip() == "1"
    # the caller has dropped the rows with missing values: patsy need not look for them again
    # (its per-variable NaN scan was a fifth of the time of building a model)
    no_na = NAAction(NA_types=[])
    leaf_list = tuple(lf for lf, _ in leaves.values())
    key = (code, tuple((lf.name, lf.levels, lf.ncol) for lf in leaf_list))
    try:
        if key in _DESIGNS:
            terms, design_info, direct = _DESIGNS[key]
            matrix = _direct_matrix(design_info, bound, direct) if direct is not None else None
            if matrix is None:
                matrix = (np.zeros((len(data), 0)) if not terms else np.ones((len(data), 1)) if intercept_only
                          else build_design_matrices([design_info], bound, NA_action=no_na)[0])
        else:
            terms = _r_ordered_terms(ModelDesc.from_formula(code).rhs_termlist)
            design_info = _design_info(terms, bound, no_na)
            if not terms:                            # y ~ 0 + (1|g): no fixed effects
                matrix = np.zeros((len(data), 0))
            elif intercept_only:
                matrix = np.ones((len(data), 1))
            else:
                (matrix,) = build_design_matrices([design_info], bound, NA_action=no_na)
            # the direct builder is used for this design from now on only if it gives
            # exactly patsy's matrix here
            direct = _direct_columns(design_info, leaf_list)
            if direct is not None:
                check = _direct_matrix(design_info, bound, direct)
                if check is None or not np.array_equal(check, np.asarray(matrix, dtype=float)):
                    direct = None
            if len(_DESIGNS) >= _DESIGN_CACHE_SIZE:
                _DESIGNS.pop(next(iter(_DESIGNS)))
            _DESIGNS[key] = (terms, design_info, direct)
    except PatsyError as err:
        raise ValueError(f"could not build the model matrix for {deparse(node)!r}: {err}") from err
    order, names = _r_columns(terms, design_info, r_names)
    X = np.asarray(matrix, dtype=float)[:, order]
    with np.errstate(invalid="ignore", over="ignore"):   # non-finite columns are refused later, by name
        aliased = aliased_columns(X) if drop_aliased else []
    keep = np.setdiff1d(np.arange(X.shape[1]), aliased)
    dropped = tuple(names[j] for j in aliased)
    kept_names = tuple(names[j] for j in keep)
    info = MatrixInfo(design_info, order, keep, kept_names, tuple(used), levels, dict(r_names), leaf_list,
                      ev.state, dict(functions or {}), code)
    return X[:, keep], kept_names, info, dropped


def _design_info(terms, bound: dict, no_na) -> DesignInfo:
    """patsy's DesignInfo for ``terms`` over the generated names in ``bound``. The
    environment holds only the contrast classes that the generated code names (and patsy
    adds its C); the code evaluated is glmmjax's, never the user's."""
    if not terms:
        return DesignInfo([], factor_infos={}, term_codings=OrderedDict())
    (design_info,) = design_matrix_builders([terms], lambda: iter([bound]), eval_env(), NA_action=no_na)
    return design_info


def _rebuild_design_info(info: "MatrixInfo") -> DesignInfo:
    """The DesignInfo of an unpickled MatrixInfo: the same terms over synthetic rows holding
    every level of each factor (patsy learns the codings from the levels)."""
    rows = max([len(lf.levels) for lf in info.leaves if lf.levels] + [1])
    bound = {}
    for lf in info.leaves:
        if lf.levels is not None:
            bound[lf.name] = pd.Categorical.from_codes(np.arange(rows) % len(lf.levels), categories=list(lf.levels))
        else:
            bound[lf.name] = np.zeros((rows, lf.ncol)) if lf.ncol > 1 else np.zeros(rows)
    terms = _r_ordered_terms(ModelDesc.from_formula(info.code).rhs_termlist)
    return _design_info(terms, bound, NAAction(NA_types=[]))


# patsy's design (terms, codings, column layout) per generated formula code and leaf kinds: a
# model refitted to new responses, a bootstrap or a simulation study builds the same design
# again, and patsy's design_matrix_builders is a large part of building a small model. patsy
# sees only numbers and categoricals (glmmjax evaluates stateful calls itself), so every
# design can be cached.
_DESIGNS: dict = {}
_DESIGN_CACHE_SIZE = 256
def _direct_columns(design_info: DesignInfo, leaves):
    """For a design whose factors are all plain leaves (one-column numeric ones, and factors
    coded by contrast matrices as C(name, ...)), each patsy factor's generated name and
    kind; else None.

    Building such a matrix needs no formula evaluation: a categorical factor contributes the
    rows of its contrast matrix at each observation's level, a numeric one its values, and a
    column of an interaction is their product. patsy does the same through pandas
    Categoricals and per-factor evaluation, which for a small model costs as much as the fit.
    """
    kinds = {lf.name: lf for lf in leaves}
    plain = {}
    for factor, fi in design_info.factor_infos.items():
        code = factor.code
        if fi.type == "categorical":
            m = re.fullmatch(r"C\((\w+), (\w+)\)", code)
            lf = kinds.get(m.group(1)) if m else None
            if lf is None or lf.levels is None or tuple(fi.categories) != tuple(lf.levels):
                return None
            plain[factor] = ("factor", lf.name)
        else:
            lf = kinds.get(code)
            if fi.num_columns != 1 or lf is None or lf.levels is not None:
                return None
            plain[factor] = ("column", lf.name)
    return plain


def _direct_matrix(design_info: DesignInfo, bound: dict, plain: dict):
    """patsy's matrix for a design of plain leaves (``_direct_columns``), built directly from
    the bound values; None where a value is missing (patsy then reports it)."""
    values = {}
    n = None
    for factor, (kind, name) in plain.items():
        v = bound[name]
        if kind == "factor":
            codes = np.asarray(v.codes)
            if (codes < 0).any():
                return None
            values[factor] = codes
        else:
            col = np.asarray(v, dtype=float)
            if np.isnan(col).any():
                return None
            values[factor] = col
        n = len(values[factor])
    if n is None:
        return None
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


def _intercept_only(design_info: DesignInfo) -> bool:
    """Whether the design is the intercept alone (its matrix a column of ones)."""
    return [t.factors for t in design_info.terms] == [()]


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
