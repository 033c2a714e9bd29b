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

# glmmjax.inference (and scipy.stats with it) is imported on first use: a fresh process that
# only fits a model does not pay for it.
_LAZY = {"inference": None, "anova": "anova", "Anova": "Anova", "emmeans": "emmeans", "r2_nakagawa": "r2_nakagawa"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        mod = importlib.import_module(".inference", __name__)
        return mod if _LAZY[name] is None else getattr(mod, _LAZY[name])
    raise AttributeError(f"module 'glmmjax' has no attribute {name!r}")


__all__ = ["GLMM", "glmm", "FitResult", "datasets", "families", "inference", "anova", "Anova", "emmeans",
           "r2_nakagawa"]
__version__ = "0.1.0"
