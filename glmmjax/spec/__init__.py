"""A model as every stage sees it: the static ``ModelSpec`` (structure: family, covariance
structures, block layout, parameter counts) and the traced ``ModelData`` (arrays), made by
``GLMM`` from the design and used by the objective (laplace/), the optimizer (fit/) and the
results."""
from ._layout import BlockLayout, is_nested, is_rowwise
from ._spec import ModelData, ModelSpec, Params, cholesky_factors, scaled_z, to_internal

__all__ = ["ModelSpec", "ModelData", "Params", "BlockLayout", "is_nested", "is_rowwise", "cholesky_factors",
           "scaled_z", "to_internal"]
