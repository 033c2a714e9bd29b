"""Data columns as R sees them: checks, missing values, factors and grouping factors.

Factors follow R's ``factor()``: a pandas Categorical keeps its category order (the first
is the reference level), strings get sorted levels, booleans the levels FALSE, TRUE and
numbers (as grouping factors) numerically sorted levels printed like R prints them.
Levels that do not occur in the rows used are dropped, as lme4's model frame does.
"""
from __future__ import annotations

import difflib

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_numeric_dtype,
    is_object_dtype,
    is_string_dtype,
)

from ._contrasts import level_label

__all__ = [
    "check_columns", "is_factor", "is_ordered", "factor_levels", "as_factor",
    "missing_mask", "group_levels_and_codes", "group_codes_for",
]


def check_columns(names, data: pd.DataFrame, where: str) -> None:
    """Raise a ValueError naming every variable of ``names`` that ``data`` lacks."""
    for name in names:
        if name in data.columns:
            continue
        columns = [str(c) for c in data.columns]
        close = difflib.get_close_matches(name, columns, n=3)
        hint = f"did you mean {', '.join(map(repr, close))}? " if close else ""
        raise ValueError(f"unknown column {name!r} in {where}; {hint}"
                         f"available columns: {', '.join(columns)}")


def is_factor(series: pd.Series) -> bool:
    """Whether R would treat the column as a factor (categorical, string or logical)."""
    dtype = series.dtype
    return (isinstance(dtype, pd.CategoricalDtype) or is_bool_dtype(dtype)
            or is_object_dtype(dtype) or is_string_dtype(dtype))


def is_ordered(series: pd.Series) -> bool:
    return isinstance(series.dtype, pd.CategoricalDtype) and bool(series.dtype.ordered)


def row_labels(series: pd.Series) -> np.ndarray:
    """Each row's value as R prints it, None where missing (labels computed per distinct value)."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = np.array([level_label(v) for v in np.asarray(uniques, dtype=object)] + [None], dtype=object)
    return labels[codes]


def factor_levels(series: pd.Series) -> tuple:
    """The levels (as strings, in R's order) of the values that occur in ``series``."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        codes = np.unique(series.cat.codes.to_numpy())     # the categories in use, in their order
        ordered = list(series.cat.categories[codes[codes >= 0]])
    elif is_numeric_dtype(series.dtype) or is_bool_dtype(series.dtype):
        ordered = sorted(set(series.dropna().astype(object)))
    else:
        ordered = sorted(set(series.dropna().astype(str)))
    return tuple(level_label(v) for v in ordered)


def as_factor(series: pd.Series, levels: tuple) -> pd.Categorical:
    """``series`` as a Categorical of R-style labels with the given levels.

    Raises:
        ValueError: if a value is not one of ``levels``.
    """
    return pd.Categorical.from_codes(_codes_in(series, levels), categories=list(levels))


def _codes_in(series: pd.Series, levels: tuple) -> np.ndarray:
    """Each row's position in ``levels`` (-1 where missing); labels are computed per
    distinct value, not per row.

    Raises:
        ValueError: if a value is not one of ``levels``.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    labels = [level_label(v) for v in np.asarray(uniques, dtype=object)]
    index = {lab: i for i, lab in enumerate(levels)}
    unknown = sorted(set(labels) - set(index))
    if unknown:
        raise ValueError(f"factor {series.name!r} has levels not in the fitted data: "
                         f"{', '.join(map(repr, unknown[:5]))}")
    return np.array([index[lab] for lab in labels] + [-1], dtype=np.int64)[codes]


def missing_mask(data: pd.DataFrame, names) -> np.ndarray:
    """True for rows with a missing value in any of the columns ``names``."""
    mask = np.zeros(len(data), dtype=bool)
    for name in names:
        column = data[name]
        if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":
            mask |= np.isnan(column.to_numpy())
        elif isinstance(column.dtype, np.dtype) and column.dtype.kind in "iub":
            continue                        # integers and booleans have no missing values
        else:
            mask |= pd.isna(column).to_numpy()
    return mask


def _component_codes(series: pd.Series):
    levels = factor_levels(series)
    return levels, _codes_in(series, levels)


def group_levels_and_codes(data: pd.DataFrame, components: list):
    """Levels and row codes of the grouping factor ``a:b:...`` (only observed levels).

    Interaction levels are ordered with the first component varying slowest and are
    labelled "a:b", as R's ``a:b`` followed by dropping unused levels. ``data`` has no
    missing values in these columns (make_design drops those rows first).
    """
    parts = [_component_codes(data[name]) for name in components]
    # the components are combined one at a time: each row's combination so far and its next
    # code as one integer (< n levels x the next factor's levels), numbered by np.unique,
    # which keeps the first component slowest; labels are joined per level, not per row
    levels, codes = parts[0]
    labels = np.array(levels, dtype=object)
    for lv, c in parts[1:]:
        uniq, codes = np.unique(codes.astype(np.int64) * len(lv) + c, return_inverse=True)
        labels = labels[uniq // len(lv)] + ":" + np.array(lv, dtype=object)[uniq % len(lv)]
    return tuple(labels.tolist()), codes.reshape(-1).astype(np.int32)


def group_codes_for(data: pd.DataFrame, components: list, levels: tuple) -> np.ndarray:
    """Codes of new rows in the fitted ``levels``; -1 for levels not seen in the fit."""
    labels = [row_labels(data[name]) for name in components]
    missing = np.zeros(len(data), dtype=bool)
    for lab in labels:
        missing |= pd.isna(lab)
    joined = pd.Series(labels[0], dtype=object).fillna("")
    for lab in labels[1:]:
        joined = joined + ":" + pd.Series(lab, dtype=object).fillna("")
    codes = pd.Index(list(levels)).get_indexer(joined).astype(np.int32)
    codes[missing] = -1
    return codes
