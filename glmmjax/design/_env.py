"""The functions formulas may call, and evaluation of R expressions on data.

``scale`` is R's: centre by the mean and divide by the standard deviation with the n - 1
denominator. It is a patsy stateful transform, so a model matrix rebuilt on new data
reuses the mean and sd of the data the model was fitted to.
"""
from __future__ import annotations

import numpy as np
import patsy.builtins
from patsy import EvalEnvironment, PatsyError, stateful_transform

from glmmjax.formula import Node, python_code

from ._contrasts import RHelmert, RPoly, RSum, RTreatment

__all__ = ["RScale", "scale", "eval_env", "evaluate", "CONTRAST_NAMES"]


class RScale:
    """Stateful ``scale(x, center=True, scale=True)`` as in R.

    With centring, x is divided by its standard deviation (n - 1 denominator); without,
    by its root mean square sqrt(sum(x^2) / (n - 1)), as R does.
    """

    def __init__(self):
        self._chunks = []
        self._mean = self._sd = self._rms = None

    def memorize_chunk(self, x, center=True, scale=True):
        self._chunks.append(np.asarray(x, dtype=float))

    def memorize_finish(self):
        x = np.concatenate(self._chunks, axis=0)
        self._chunks = []
        dof = max(x.shape[0] - 1, 1)
        self._mean = x.mean(axis=0)
        self._sd = np.sqrt(np.sum((x - self._mean) ** 2, axis=0) / dof)
        self._rms = np.sqrt(np.sum(x ** 2, axis=0) / dof)

    def transform(self, x, center=True, scale=True):
        x = np.asarray(x, dtype=float)
        if center:
            x = x - self._mean
        if scale:
            x = x / (self._sd if center else self._rms)
        return x


scale = stateful_transform(RScale)

# Names under which formula code refers to contrast classes (see design._matrix).
CONTRAST_NAMES = {
    RTreatment: "RTreatment", RSum: "RSum", RHelmert: "RHelmert", RPoly: "RPoly",
}

_NAMESPACE = {
    "scale": scale,
    "log": np.log, "exp": np.exp, "sqrt": np.sqrt, "log1p": np.log1p, "expm1": np.expm1,
    "log2": np.log2, "log10": np.log10, "abs": np.abs, "pi": np.pi,
    "sin": np.sin, "cos": np.cos, "tan": np.tan,
    **{name: cls for cls, name in CONTRAST_NAMES.items()},
}


_PATSY_BUILTINS = {name: getattr(patsy.builtins, name) for name in patsy.builtins.__all__}


def eval_env() -> EvalEnvironment:
    """The patsy evaluation environment for formula code."""
    return EvalEnvironment([dict(_NAMESPACE)])


def evaluate(node: Node, data) -> np.ndarray:
    """Value of the R expression ``node`` on ``data`` (a mapping of columns), as float64."""
    code = python_code(node)
    env = eval_env().with_outer_namespace(_PATSY_BUILTINS)
    try:
        value = env.eval(code, inner_namespace=data)
    except (NameError, PatsyError, TypeError, ValueError) as err:
        raise ValueError(f"could not evaluate {code!r}: {err}") from err
    return np.asarray(value, dtype=float)
