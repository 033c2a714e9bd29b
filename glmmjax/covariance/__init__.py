"""Cholesky-parameterized random-effect covariance structures (see _structures.py for the
interface the rest of glmmjax uses)."""
from ._structures import CovStructure, combine, cov_structure, full_factor

__all__ = ["CovStructure", "cov_structure", "combine", "full_factor"]
