"""What patsy's evaluation environment holds, and R expressions evaluated on data.

patsy evaluates only code that glmmjax generates (``C(v0, RTreatment)``, ``v1``: see
design/_matrix.py): its environment holds the contrast classes under the names that code
uses, and nothing else. Expressions from the user (the response, offsets, cbind's
arguments, every leaf of a formula) are evaluated by glmmjax's own evaluator
(design/_evaluate.py), never by Python's eval.
"""
from __future__ import annotations

import numpy as np
from patsy import EvalEnvironment

from glmmjax.formula import Node

from ._contrasts import RHelmert, RPoly, RSum, RTreatment
from ._evaluate import Evaluator

__all__ = ["eval_env", "evaluate", "CONTRAST_NAMES"]

# Names under which generated formula code refers to contrast classes (see design._matrix).
CONTRAST_NAMES = {
    RTreatment: "RTreatment", RSum: "RSum", RHelmert: "RHelmert", RPoly: "RPoly",
}


def eval_env() -> EvalEnvironment:
    """The patsy evaluation environment for generated formula code: the contrast classes."""
    return EvalEnvironment([{name: cls for cls, name in CONTRAST_NAMES.items()}])


def evaluate(node: Node, data, what: str = "the expression", *, functions=None, state=None) -> np.ndarray:
    """Value of the R expression ``node`` on ``data`` (a DataFrame), as float64."""
    return Evaluator(data, functions=functions, state=state).numeric(node, what)
