"""What the design stage hands to the model: plain numpy arrays plus names.

Z is never a dense n x q matrix: each random-effect term is integer codes (which level of
its grouping factor each row belongs to) and a small n x k model matrix.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["RandomTerm", "Design"]


@dataclass(frozen=True, eq=False)
class RandomTerm:
    """One random-effect term ``(expr | group)`` after expansion.

    Attributes:
        group: the grouping factor as lme4 prints it: "Subject", "school", "student:school".
        levels: the factor's levels in order (strings); codes index into them.
        codes: (n,) int32, level index of every row.
        Z: (n, k) float64, the term's model matrix (a column of ones for ``1 | g``).
        columns: k column names in R's style: "(Intercept)", "Days", "YEAR96".
        cov: "us" (unstructured, the default for vector terms) or "diag" (from ``||``).
        expr: the left-hand side as written, e.g. "1 + Days".
    """

    group: str
    levels: tuple
    codes: np.ndarray
    Z: np.ndarray
    columns: tuple
    cov: str = "us"
    expr: str = ""

    @property
    def nlevels(self) -> int:
        return len(self.levels)

    @property
    def k(self) -> int:
        return self.Z.shape[1]


@dataclass(frozen=True, eq=False)
class Design:
    """The arrays of one model, rows with missing values already dropped.

    Attributes:
        formula: the formula string as given.
        response: the response's name as written ("TICKS", "cbind(incidence, size - incidence)");
            None for a one-sided submodel (``submodel_design``).
        y: (n,) float64 response. For ``cbind(s, f)`` the successes s. None without a response.
        size: (n,) float64 binomial trials (s + f) for a ``cbind`` response, else None.
        X: (n, p) float64 fixed-effects model matrix, columns in R's order, aliased columns dropped.
        fixed_names: p column names in R's style ("(Intercept)", "YEAR96", "I(age^2)", "a:b").
        offset: (n,) float64, the sum of ``offset(...)`` terms and the ``offset=`` argument (0 if none).
        weights: (n,) float64 prior weights (1 if none).
        terms: the random-effect terms in formula order (after expanding ``/`` and ``||``).
        rows: the index labels of the data rows used (after dropping missing values).
        positions: the same rows by position (a data frame's index may repeat labels).
        n_dropped: how many rows were dropped for missing values.
        dropped_columns: names of aliased fixed-effect columns that were dropped.
        fixed_info: opaque object used by ``glmmjax.design.new_data`` to rebuild X on new data.
        response_text: for a response column of text (a factor), up to five of its values that
            do not read as numbers (y is then R's binomial coding: 0 for the first level, 1
            for the others); None for a numeric response.
    """

    formula: str
    response: str | None
    y: np.ndarray | None
    size: Any
    X: np.ndarray
    fixed_names: tuple
    offset: np.ndarray
    weights: np.ndarray
    terms: tuple
    rows: Any = None
    positions: Any = None
    n_dropped: int = 0
    dropped_columns: tuple = ()
    fixed_info: Any = None
    response_text: tuple | None = None

    @property
    def nobs(self) -> int:
        return int(self.X.shape[0])
