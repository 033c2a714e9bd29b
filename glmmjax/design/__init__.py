"""From an lme4 formula and a data frame to the arrays a mixed model needs.

``make_design(formula, data)`` returns a :class:`Design`: response, fixed-effects matrix
(R's column order and names), offsets, weights and, per random-effect term, grouping
codes and a small model matrix. ``new_data`` rebuilds them on new rows and
``fixed_matrix`` builds the matrix of an extra one-sided formula (zero-inflation,
dispersion).
"""
from ._contrasts import RHelmert, RPoly, RSum, RTreatment
from ._env import scale
from ._make import ModelInfo, TermInfo, fixed_matrix, make_design
from ._matrix import MatrixInfo
from ._newdata import NewData, new_data
from ._types import Design, RandomTerm

__all__ = [
    "Design", "RandomTerm", "make_design", "fixed_matrix", "new_data", "NewData",
    "MatrixInfo", "ModelInfo", "TermInfo", "RTreatment", "RSum", "RHelmert", "RPoly", "scale",
]
