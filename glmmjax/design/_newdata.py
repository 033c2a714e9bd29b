"""Rebuild a design's matrices on new data (for prediction).

The fixed-effects matrix is rebuilt with the fitted model's codings, contrasts and
``scale()`` centres; grouping factors are coded against the fitted levels, with -1 for a
level the model has not seen. The response is not needed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from glmmjax.formula import deep_recursion, parse_expression

from ._data import check_columns, group_codes_for
from ._evaluate import Evaluator
from ._types import Design

__all__ = ["NewData", "new_data"]


@dataclass(frozen=True, eq=False)
class NewData:
    """A design's arrays for new rows.

    Attributes:
        X: (m, p) fixed-effects matrix, the columns of ``Design.fixed_names``.
        offset: (m,) the offsets (formula offsets plus the ``offset`` argument).
        codes: per random-effect term of the design, (m,) int32 level codes, -1 for
            levels not in the fitted data.
        Z: per random-effect term, the (m, k) model matrix.
    """

    X: np.ndarray
    offset: np.ndarray
    codes: tuple
    Z: tuple

    @property
    def nobs(self) -> int:
        return int(self.X.shape[0])


def new_data(design: Design, newdata, *, offset=None) -> NewData:
    """The arrays of ``design`` evaluated on the rows of ``newdata``.

    Args:
        design: a design from :func:`make_design`.
        newdata: a data frame with the columns the formula uses (the response may be
            absent).
        offset: offset values for the new rows when the design's ``offset=`` argument was
            an array (a column-name offset is looked up in ``newdata``).

    Raises:
        ValueError: for missing columns, missing values or factor levels of fixed
            effects not present in the fitted data.
    """
    newdata = newdata if isinstance(newdata, pd.DataFrame) else pd.DataFrame(newdata)
    info = design.fixed_info
    with deep_recursion():
        X = info.fixed.build(newdata)
    codes, Zs = [], []
    for term, term_info in zip(design.terms, info.terms):
        check_columns(term_info.components, newdata, "new data")
        codes.append(group_codes_for(newdata, list(term_info.components), term.levels))
        Zs.append(term_info.matrix.build(newdata))
    return NewData(X, _offset(info, newdata, offset), tuple(codes), tuple(Zs))


def _offset(info, newdata: pd.DataFrame, offset) -> np.ndarray:
    total = np.zeros(len(newdata))
    ev = Evaluator(newdata, functions=info.functions, state=info.state, frozen=True)
    for expression in info.offsets:
        total += ev.numeric(parse_expression(expression), "the offset")
    if offset is not None:
        total += np.asarray(offset, dtype=float).reshape(-1)
    elif info.offset_column is not None:
        check_columns([info.offset_column], newdata, "new data")
        total += newdata[info.offset_column].to_numpy(dtype=float)
    return total
