"""Formula expressions evaluated by glmmjax itself, from their parsed form: no text of the
user's ever reaches Python's ``eval`` (nor patsy's, which is Python's).

A formula's leaves (``log(x)``, ``I(x^2)``, ``scale(x)``, ``factor(g)``, the response,
``offset(...)``, ``cbind(...)``'s arguments) are syntax trees (formula/_syntax.py); an
``Evaluator`` walks them against the data's columns and a fixed table of functions
(``FUNCTIONS``), plus the functions the caller passes by name (``functions={"logit": f}``).
Anything else -- an unknown function (``eval``, ``open``, ``__import__``), a name that is
neither a column nor a constant -- is an error that names it. Column names are data: a
column called ``__import__`` is a column like any other.

Values are float arrays (n,) or (n, k) (``poly``), or a ``Factor`` (levels in R's order):
string, categorical and logical columns, ``factor()``, ``relevel()`` and comparisons, whose
logical results R codes as a factor too (``I(x > 2)TRUE``).

Stateful functions (``scale``, ``center``, ``poly``) learn their parameters from the data
the model is fitted to and keep them in ``state`` (keyed by the call as written), so that
``predict(newdata)`` applies the same transformation, as R's ``makepredictcall`` does.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from glmmjax.formula import BinOp, Call, Name, Node, Number, Paren, String, UnaryOp, deparse

from ._data import factor_levels, is_factor, is_ordered

__all__ = ["Factor", "Evaluator", "FormulaError", "FUNCTIONS", "CONSTANTS", "column_problem"]

CONSTANTS = {"pi": np.pi, "TRUE": True, "FALSE": False, "T": True, "F": False}


@dataclass(frozen=True, eq=False)
class Factor:
    """A categorical value: ``codes`` (n,) into ``levels`` (R labels), -1 where missing."""

    codes: np.ndarray
    levels: tuple
    ordered: bool = False

    def labels(self) -> np.ndarray:
        lab = np.array(list(self.levels) + [None], dtype=object)
        return lab[self.codes]


def _factor_of(values, levels=None, ordered=False) -> Factor:
    """R's factor(): levels sorted as R sorts them (or as given), labels as R prints them."""
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if isinstance(values, Factor):
        s = pd.Series(values.labels())
    lev = factor_levels(s) if levels is None else tuple(levels)
    from ._data import level_label

    lab = np.array([None if pd.isna(v) else level_label(v) for v in s.to_numpy(dtype=object)], dtype=object)
    index = {v: i for i, v in enumerate(lev)}
    codes = np.array([-1 if v is None else index.get(v, -1) for v in lab], dtype=np.int64)
    return Factor(codes, lev, ordered)


def column_problem(col: pd.Series) -> str | None:
    """Why a column cannot enter a formula as a number or a factor, or None."""
    dt = col.dtype
    if pd.api.types.is_datetime64_any_dtype(dt):
        return (f"holds dates and times ({dt}); a formula takes numbers or factors: convert it, e.g. to days "
                "since the first date, (d - d.min()).dt.days, or to a factor of labels")
    if pd.api.types.is_timedelta64_dtype(dt):
        return f"holds time differences ({dt}); convert it to numbers, e.g. with .dt.total_seconds()"
    if pd.api.types.is_complex_dtype(dt):
        return f"holds complex numbers ({dt}); a formula takes real numbers or factors"
    if pd.api.types.is_object_dtype(dt):
        vals = col.dropna()
        if len(vals) and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                             for v in vals.iloc[:1000]):
            return ("holds numbers stored as Python objects (dtype object), which would be read as the labels "
                    "of a factor; convert it with .astype(float) (or to a factor with .astype(str))")
    return None


class FormulaError(ValueError):
    """A formula that glmmjax cannot evaluate (unknown function, wrong arguments, ...)."""


# -- the functions a formula may call -----------------------------------------------------------
def _numeric(v, what):
    if isinstance(v, Factor):
        raise FormulaError(f"{what} needs a number, got a factor")
    return np.asarray(v, dtype=float)


def _unary(f):
    return lambda ev, call, x: f(_numeric(x, call.func + "()"))


def _log(ev, call, x, base=None):
    x = _numeric(x, "log()")
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(x) if base is None else np.log(x) / np.log(_numeric(base, "log()'s base"))


def _identity(ev, call, x):
    return x


def _scale(ev, call, x, center=True, scale=True):
    """R's scale(): centre by the mean, divide by the sd (n - 1); without centring by the
    root mean square sqrt(sum x^2 / (n - 1))."""
    x = _numeric(x, "scale()")
    key = deparse(call)

    def learn():
        dof = max(x.shape[0] - 1, 1)
        mean = x.mean(axis=0)
        return dict(mean=mean, sd=np.sqrt(np.sum((x - mean) ** 2, axis=0) / dof),
                    rms=np.sqrt(np.sum(x ** 2, axis=0) / dof))

    st = ev.remember(key, learn)
    if center:
        x = x - st["mean"]
    if scale:
        x = x / (st["sd"] if center else st["rms"])
    return x


def _center(ev, call, x):
    x = _numeric(x, "center()")
    st = ev.remember(deparse(call), lambda: dict(mean=x.mean(axis=0)))
    return x - st["mean"]


def _poly(ev, call, x, degree=1.0, raw=False):
    """R's poly(): orthogonal polynomials by the three-term recurrence, with the
    coefficients (alpha, norm2) learnt on the fitted data (R's predict.poly); raw=TRUE
    gives x, x^2, ..."""
    x = _numeric(x, "poly()")
    d = int(_numeric(degree, "poly()'s degree"))
    if d < 1 or d != float(degree):
        raise FormulaError(f"poly()'s degree must be a whole number of at least 1, got {degree}")
    if raw:
        return np.stack([x ** k for k in range(1, d + 1)], axis=1)

    def learn():
        if len(np.unique(x)) <= d:
            raise FormulaError(f"'degree' must be less than number of unique points in {deparse(call)}")
        alpha, norm2 = [], [1.0]
        P_prev, P = np.zeros_like(x), np.ones_like(x)
        norm2.append(float(np.sum(P * P)))
        for k in range(d):
            a = float(np.sum(x * P * P) / np.sum(P * P))
            alpha.append(a)
            P_new = (x - a) * P - (norm2[-1] / norm2[-2]) * P_prev if k else (x - a) * P
            P_prev, P = P, P_new
            norm2.append(float(np.sum(P * P)))
        return dict(alpha=np.array(alpha), norm2=np.array(norm2))

    st = ev.remember(deparse(call), learn)
    alpha, norm2 = st["alpha"], st["norm2"]
    Z = [np.ones_like(x), x - alpha[0]]
    for i in range(1, d):
        Z.append((x - alpha[i]) * Z[i] - (norm2[i + 1] / norm2[i]) * Z[i - 1])
    Z = np.stack(Z[1:], axis=1)
    return Z / np.sqrt(norm2[2:])


def _factor(ev, call, x, levels=None):
    if levels is not None and not isinstance(levels, tuple):
        raise FormulaError("factor()'s levels must be given as c(\"a\", \"b\", ...)")
    if isinstance(x, Factor) and levels is None:
        return x
    return _factor_of(x if not isinstance(x, np.ndarray) else pd.Series(x), levels)


def _relevel(ev, call, x, ref=None):
    f = x if isinstance(x, Factor) else _factor_of(pd.Series(x))
    if not isinstance(ref, str):
        raise FormulaError("relevel() needs ref = \"a level\" (a string)")
    if ref not in f.levels:
        raise FormulaError(f"relevel(): 'ref' must be an existing level; {ref!r} is not one of {list(f.levels)}")
    order = [ref] + [lv for lv in f.levels if lv != ref]
    return _factor_of(pd.Series(f.labels()), order)


def _as_numeric(ev, call, x):
    if isinstance(x, Factor):      # R: a factor's codes, 1-based
        return np.where(x.codes >= 0, x.codes + 1.0, np.nan)
    return np.asarray(x, dtype=float)


#: name -> (function(evaluator, call, *args, **kwargs), its argument names); strings are
#: allowed only where an argument is a string (relevel's ref, factor's levels)
FUNCTIONS: dict = {
    "I": (_identity, ("x",)),
    "log": (_log, ("x", "base")),
    "log2": (_unary(np.log2), ("x",)), "log10": (_unary(np.log10), ("x",)), "log1p": (_unary(np.log1p), ("x",)),
    "exp": (_unary(np.exp), ("x",)), "expm1": (_unary(np.expm1), ("x",)), "sqrt": (_unary(np.sqrt), ("x",)),
    "abs": (_unary(np.abs), ("x",)), "sin": (_unary(np.sin), ("x",)), "cos": (_unary(np.cos), ("x",)),
    "tan": (_unary(np.tan), ("x",)),
    "round": (lambda ev, call, x, digits=0.0: np.round(_numeric(x, "round()"), int(digits)), ("x", "digits")),
    "floor": (_unary(np.floor), ("x",)), "ceiling": (_unary(np.ceil), ("x",)), "trunc": (_unary(np.trunc), ("x",)),
    "sign": (_unary(np.sign), ("x",)),
    "scale": (_scale, ("x", "center", "scale")),
    "center": (_center, ("x",)),
    "poly": (_poly, ("x", "degree", "raw")),
    "factor": (_factor, ("x", "levels")), "as.factor": (_factor, ("x",)),
    "relevel": (_relevel, ("x", "ref")),
    "as.numeric": (_as_numeric, ("x",)),
}
STATEFUL = ("scale", "center", "poly")


class Evaluator:
    """Evaluates formula expressions on ``data`` (a DataFrame).

    ``functions``: the user's own functions by name (each called with numeric arrays).
    ``state``: the stateful functions' learnt parameters; pass a fitted model's (frozen)
    state to evaluate new data the same way.
    """

    def __init__(self, data: pd.DataFrame, *, functions: dict | None = None, state: dict | None = None,
                 frozen: bool = False):
        self.data = data
        self.functions = dict(functions or {})
        self.state = {} if state is None else state
        self.frozen = frozen
        bad = [k for k in self.functions if not callable(self.functions[k])]
        if bad:
            raise TypeError(f"functions= must map names to callables; {bad[0]!r} is not callable")

    def remember(self, key: str, learn: Callable[[], dict]) -> dict:
        if key not in self.state:
            if self.frozen:
                raise FormulaError(f"no fitted state for {key!r}")
            self.state[key] = learn()
        return self.state[key]

    # -- evaluation ------------------------------------------------------------------------
    def value(self, node: Node):
        """A float array, a Factor, a Python string or tuple (for string arguments)."""
        if isinstance(node, Name):
            return self._name(node.name)
        if isinstance(node, Number):
            return float(node.text)
        if isinstance(node, String):
            return node.value
        if isinstance(node, Paren):
            return self.value(node.inner)
        if isinstance(node, UnaryOp):
            v = self.value(node.operand)
            if node.op == "-":
                return -_numeric(v, "'-'")
            if node.op == "+":
                return _numeric(v, "'+'")
            if node.op == "!":
                return self._logical(~self._bool(v))
        if isinstance(node, BinOp):
            return self._binop(node)
        if isinstance(node, Call):
            return self._call(node)
        raise FormulaError(f"cannot evaluate {deparse(node)!r} in a formula")

    def numeric(self, node: Node, what: str) -> np.ndarray:
        """The value of ``node`` as a float array (n,) (the response, an offset)."""
        v = self.value(node)
        if isinstance(v, Factor):
            raise FormulaError(f"{what} {deparse(node)!r} is a factor; it must be numeric")
        if isinstance(v, (str, tuple)):
            raise FormulaError(f"{what} {deparse(node)!r} is a string; it must be numeric")
        arr = np.asarray(v, dtype=float)
        if arr.ndim == 0:
            arr = np.full(len(self.data), float(arr))
        return arr.reshape(len(self.data), -1)[:, 0] if arr.ndim == 2 and arr.shape[1] == 1 else arr

    def _name(self, name: str):
        if name in self.data.columns:
            col = self.data[name]
            problem = column_problem(col)
            if problem:
                raise FormulaError(f"column {name!r} {problem}")
            if is_factor(col):
                return _factor_of(col, factor_levels(col), is_ordered(col))
            return col.to_numpy(dtype=float, na_value=np.nan)
        if name in CONSTANTS:
            return CONSTANTS[name]
        raise FormulaError(f"unknown variable {name!r} in the formula: it is neither a column of the data "
                           f"nor a constant ({', '.join(CONSTANTS)})")

    def _bool(self, v) -> np.ndarray:
        if isinstance(v, Factor):
            if set(v.levels) <= {"FALSE", "TRUE"}:
                return np.array([lab == "TRUE" for lab in v.labels()])
            raise FormulaError("a logical operation needs logical values, got a factor")
        return np.asarray(v, dtype=bool) if np.ndim(v) else np.full(len(self.data), bool(v))

    def _logical(self, b) -> Factor:
        """A logical result, as R codes it in a model matrix: a factor FALSE, TRUE."""
        b = np.broadcast_to(np.asarray(b, dtype=bool), (len(self.data),))
        return Factor(b.astype(np.int64), ("FALSE", "TRUE"))

    def _binop(self, node: BinOp):
        a, b = self.value(node.left), self.value(node.right)
        op = node.op
        if op in ("&", "|", "&&", "||"):
            x, y = self._bool(a), self._bool(b)
            return self._logical(x & y if op in ("&", "&&") else x | y)
        if op in ("==", "!=") and (isinstance(a, (Factor, str)) or isinstance(b, (Factor, str))):
            la = a.labels() if isinstance(a, Factor) else a
            lb = b.labels() if isinstance(b, Factor) else b
            eq = np.asarray(la == lb if not isinstance(la, str) else lb == la, dtype=bool)
            return self._logical(eq if op == "==" else ~eq)
        x, y = _numeric(a, f"'{op}'"), _numeric(b, f"'{op}'")
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if op == "+":
                return x + y
            if op == "-":
                return x - y
            if op == "*":
                return x * y
            if op == "/":
                return x / y
            if op == "^":
                return np.power(x, y)
            if op == "%%":
                return np.mod(x, y)
            if op == "%/%":
                return np.floor_divide(x, y)
            cmp = {"==": np.equal, "!=": np.not_equal, "<": np.less, ">": np.greater, "<=": np.less_equal,
                   ">=": np.greater_equal}.get(op)
            if cmp is not None:
                return self._logical(cmp(x, y))
        raise FormulaError(f"the operator {op!r} cannot be used inside {deparse(node)!r}")

    def _call(self, call: Call):
        name = call.func
        if name == "c":
            vals = [a.value for a in call.args]
            if all(isinstance(v, String) for v in vals):
                return tuple(v.value for v in vals)
            raise FormulaError("c() in a formula may only list strings (factor levels)")
        if name in self.functions:
            args = [self.value(a.value) for a in call.args if a.name is None]
            kwargs = {a.name: self.value(a.value) for a in call.args if a.name is not None}
            try:
                out = self.functions[name](*args, **kwargs)
            except Exception as e:
                raise FormulaError(f"the function {name!r} passed in functions= failed on "
                                   f"{deparse(call)!r}: {type(e).__name__}: {e}") from None
            return np.asarray(out, dtype=float)
        if name not in FUNCTIONS:
            allowed = sorted(FUNCTIONS) + ["c", "offset", "cbind"]
            extra = f"; your own: {sorted(self.functions)}" if self.functions else ""
            raise FormulaError(f"unknown function {name!r} in the formula; allowed: {', '.join(allowed)}{extra} "
                               "(pass functions of your own with functions={'name': f})")
        fn, params = FUNCTIONS[name]
        pos = [a for a in call.args if a.name is None]
        kw = {a.name: a for a in call.args if a.name is not None}
        if len(pos) > len(params):
            raise FormulaError(f"{name}() takes at most {len(params)} arguments, got {deparse(call)!r}")
        bound = dict(zip(params, pos))
        for k, a in kw.items():
            if k not in params:
                raise FormulaError(f"{name}() has no argument {k!r} ({deparse(call)!r}); its arguments: "
                                   f"{', '.join(params)}")
            if k in bound:
                raise FormulaError(f"{name}() got the argument {k!r} twice in {deparse(call)!r}")
            bound[k] = a
        if "x" not in bound:
            raise FormulaError(f"{name}() needs an argument ({deparse(call)!r})")
        values = {k: self.value(a.value) for k, a in bound.items()}
        if isinstance(values["x"], (str, tuple)):
            raise FormulaError(f"{name}() cannot take a string ({deparse(call)!r})")
        return fn(self, call, **values)
