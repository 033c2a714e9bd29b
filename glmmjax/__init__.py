"""glmmjax: linear and generalized linear mixed models in JAX.

Importing glmmjax turns on JAX's 64-bit mode (``jax_enable_x64``): fits run in float64
unless a model is built with ``dtype="float32"``.

At interpreter exit, glmmjax moves the objects still alive into the garbage collector's
permanent generation (``gc.freeze``), so that the final collection does not traverse the
million-odd objects of JAX, pandas and SciPy, a noticeable part of every short process
(measured with ``python -c "import jax, glmmjax, scipy.linalg"`` against
``GLMMJAX_FAST_EXIT=0``: benchmarks/README.md). Objects left in reference cycles at exit
are then not finalized by the collector, which Python does not promise anyway;
``GLMMJAX_FAST_EXIT=0`` keeps the usual shutdown.

    import glmmjax as gj
    fit = gj.glmm("TICKS ~ YEAR + (1|LOCATION)", gj.datasets.load("grouseticks"), family="poisson")
    print(fit.summary())
"""
import atexit as _atexit
import gc as _gc
import os as _os

import jax as _jax

_jax.config.update("jax_enable_x64", True)

if _os.environ.get("GLMMJAX_FAST_EXIT", "1") != "0":
    _atexit.register(_gc.freeze)

from . import datasets as datasets  # noqa: E402
from . import families as families  # noqa: E402
from ._model import GLMM as GLMM  # noqa: E402
from ._model import glmm as glmm  # noqa: E402
from ._warnings import ConvergenceWarning, DataWarning, GlmmjaxWarning, SingularFitWarning  # noqa: E402
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
           "r2_nakagawa", "GlmmjaxWarning", "ConvergenceWarning", "SingularFitWarning", "DataWarning"]
__version__ = "0.1.0"
