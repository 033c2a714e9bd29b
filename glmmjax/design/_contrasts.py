"""R's contrasts as patsy contrast objects, with R's column names.

patsy names a treatment-coded column ``f[T.b]``; R names it ``fb``. Each class here codes
like the R function it is named after and labels columns with the suffix R appends to the
factor's name: the level for ``contr.treatment`` (``YEAR96``), ``1, 2, ...`` for
``contr.sum`` and ``contr.helmert`` (``f1``), ``.L, .Q, .C, ^4, ...`` for ``contr.poly``.
Without an intercept to absorb (``0 + f``), R codes a factor by indicator columns named by
level, whatever its contrasts; ``code_with_intercept`` does that for all of them.
"""
from __future__ import annotations

import numpy as np
from patsy.contrasts import ContrastMatrix, Helmert, Poly, Sum

__all__ = ["RTreatment", "RSum", "RHelmert", "RPoly", "contrast_for", "level_label"]


def level_label(level) -> str:
    """A level as R prints it: ``4`` not ``4.0``, ``TRUE`` not ``True``."""
    if isinstance(level, (bool, np.bool_)):
        return "TRUE" if level else "FALSE"
    if isinstance(level, (float, np.floating)):
        return str(int(level)) if float(level).is_integer() else f"{level:.15g}"
    return str(level)


class _RContrast:
    """Common part: indicator coding with an intercept, R suffixes without one."""

    def code_with_intercept(self, levels) -> ContrastMatrix:
        return ContrastMatrix(np.eye(len(levels)), [level_label(lv) for lv in levels])

    def code_without_intercept(self, levels) -> ContrastMatrix:
        matrix = self._matrix(levels)
        return ContrastMatrix(matrix, self._suffixes(levels, matrix.shape[1]))

    def _matrix(self, levels) -> np.ndarray:
        raise NotImplementedError

    def _suffixes(self, levels, ncol: int) -> list:
        return [str(j + 1) for j in range(ncol)]


class RTreatment(_RContrast):
    """``contr.treatment``: the first level is the reference."""

    def _matrix(self, levels) -> np.ndarray:
        return np.eye(len(levels))[:, 1:]

    def _suffixes(self, levels, ncol: int) -> list:
        return [level_label(lv) for lv in levels[1:]]


class RSum(_RContrast):
    """``contr.sum``: effects sum to zero, the last level is -1 in every column."""

    def _matrix(self, levels) -> np.ndarray:
        return Sum().code_without_intercept(list(levels)).matrix


class RHelmert(_RContrast):
    """``contr.helmert``: each level against the mean of the levels before it."""

    def _matrix(self, levels) -> np.ndarray:
        return Helmert().code_without_intercept(list(levels)).matrix


class RPoly(_RContrast):
    """``contr.poly``: orthonormal polynomials in the level order (ordered factors)."""

    def _matrix(self, levels) -> np.ndarray:
        return Poly().code_without_intercept(list(levels)).matrix

    def _suffixes(self, levels, ncol: int) -> list:
        named = [".L", ".Q", ".C"]
        return [named[j] if j < 3 else f"^{j + 1}" for j in range(ncol)]


_BY_NAME = {
    "treatment": RTreatment, "contr.treatment": RTreatment,
    "sum": RSum, "contr.sum": RSum,
    "helmert": RHelmert, "contr.helmert": RHelmert,
    "poly": RPoly, "contr.poly": RPoly,
}


def contrast_for(spec, ordered: bool, factor: str) -> _RContrast:
    """The contrast object for a factor from a user's spec (None for R's default)."""
    if spec is None:
        return RPoly() if ordered else RTreatment()
    if isinstance(spec, _RContrast):
        return spec
    try:
        return _BY_NAME[str(spec).lower()]()
    except KeyError:
        raise ValueError(f"unknown contrasts {spec!r} for factor {factor!r}; use one of "
                         f"'treatment', 'sum', 'helmert', 'poly'") from None
