"""From an lme4 formula and a data frame to the arrays a mixed model needs.

``make_design(formula, data)`` returns a :class:`Design`: response, fixed-effects matrix
(R's column order and names), offsets, weights and, per random-effect term, grouping
codes and a small model matrix. ``new_data`` rebuilds them on new rows and
``fixed_matrix`` builds the matrix of an extra one-sided formula (zero-inflation,
dispersion), ``submodel_design`` the design of one with random effects. ``make_blocks``
merges the random-effect terms per grouping factor; ``response_arrays`` gives the response
as the likelihood sees it.
"""
from ._blocks import Block, make_blocks, order_blocks
from ._contrasts import RHelmert, RPoly, RSum, RTreatment, level_label
from ._data import row_labels
from ._env import CONTRAST_NAMES, eval_env
from ._evaluate import FUNCTIONS, Evaluator, Factor, FormulaError
from ._make import ModelInfo, TermInfo, fixed_matrix, make_design, submodel_design
from ._matrix import Leaf, MatrixInfo
from ._newdata import NewData, new_data
from ._response import response_arrays
from ._types import Design, RandomTerm

__all__ = [
    "Design", "RandomTerm", "make_design", "submodel_design", "fixed_matrix", "new_data", "NewData",
    "Block", "make_blocks", "order_blocks", "response_arrays",
    "MatrixInfo", "ModelInfo", "TermInfo", "RTreatment", "RSum", "RHelmert", "RPoly",
    "Evaluator", "Factor", "FormulaError", "FUNCTIONS", "Leaf",
    "CONTRAST_NAMES", "level_label", "row_labels", "eval_env",
]
