"""Fitted models: estimates, summaries, prediction and simulation."""
from ._result import FitResult

__all__ = ["FitResult"]
