"""Cholesky-parameterized random-effect covariance structures."""
from ._structures import CovStructure as CovStructure, cov_structure as cov_structure, combine as combine
