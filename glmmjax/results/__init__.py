"""Fitted models: estimates, summaries, prediction and simulation."""
from ._result import FitResult as FitResult
