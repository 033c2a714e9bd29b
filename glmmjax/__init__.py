"""glmmjax: linear and generalized linear mixed models in JAX.

Importing glmmjax turns on JAX's 64-bit mode (``jax_enable_x64``): fits run in float64
unless a model is built with ``dtype="float32"``.
"""
import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import datasets  # noqa: E402

__version__ = "0.1.0"
from . import families  # noqa: E402
from ._model import GLMM, glmm  # noqa: E402
from .results import FitResult  # noqa: E402
