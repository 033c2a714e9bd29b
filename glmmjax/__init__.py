"""glmmjax: linear and generalized linear mixed models in JAX.

Importing glmmjax turns on JAX's 64-bit mode (``jax_enable_x64``): fits run in float64
unless a model is built with ``dtype="float32"``.

    import glmmjax as gj
    fit = gj.glmm("TICKS ~ YEAR + (1|LOCATION)", gj.datasets.load("grouseticks"), family="poisson")
    print(fit.summary())
"""
import jax as _jax

_jax.config.update("jax_enable_x64", True)

from . import datasets as datasets  # noqa: E402
from . import families as families  # noqa: E402
from ._model import GLMM as GLMM, glmm as glmm  # noqa: E402
from .results import FitResult as FitResult  # noqa: E402
from . import inference as inference  # noqa: E402
from .inference import Anova as Anova, anova as anova, emmeans as emmeans, r2_nakagawa as r2_nakagawa  # noqa: E402

__all__ = ["GLMM", "glmm", "FitResult", "datasets", "families", "inference", "anova", "Anova", "emmeans",
           "r2_nakagawa"]
__version__ = "0.1.0"
