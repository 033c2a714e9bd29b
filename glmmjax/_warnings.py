"""glmmjax's warning classes, and warnings raised at the user's call site.

    GlmmjaxWarning        every warning glmmjax gives (a UserWarning)
    ConvergenceWarning    a fit that did not converge, or converged where it should be
                          checked (a parameter at an asymptote, a Hessian not positive definite)
    SingularFitWarning    a variance estimated at 0 or a correlation at +-1 (lme4's isSingular)
    DataWarning           the data: rows dropped, aliased columns, non-integer counts,
                          separation and other degenerate responses

``warnings.simplefilter("error", gj.ConvergenceWarning)`` turns non-convergence into an
error; ``warnings.simplefilter("ignore", gj.SingularFitWarning)`` silences singular fits.
"""
from __future__ import annotations

import os
import sys
import warnings

__all__ = ["GlmmjaxWarning", "ConvergenceWarning", "SingularFitWarning", "DataWarning", "warn"]


class GlmmjaxWarning(UserWarning):
    """Every warning glmmjax gives."""


class ConvergenceWarning(GlmmjaxWarning):
    """A fit that did not converge, or whose optimum needs a second look."""


class SingularFitWarning(GlmmjaxWarning):
    """A boundary (singular) fit: a variance at 0 or a correlation at +-1."""


class DataWarning(GlmmjaxWarning):
    """Something about the data that changes what is fitted."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__))


def warn(message: str, category=GlmmjaxWarning):
    """Warn with ``category``, attributed to the first caller outside glmmjax (the user's
    line), however deep inside glmmjax the warning arises."""
    frame, level = sys._getframe(1), 2      # stacklevel 2: warn's caller
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
