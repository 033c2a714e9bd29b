"""Host-side response checks shared by families (numpy; run before any JAX work)."""
from __future__ import annotations

import numpy as np


def check_finite(y, family: str):
    y = np.asarray(y, dtype=float)
    if not np.all(np.isfinite(y)):
        raise ValueError(f"The response has non-finite values (NaN or inf); the {family} family needs finite values")
    return y


def check_counts(y, family: str):
    """Non-negative integers, as poisson and the negative binomials need."""
    y = check_finite(y, family)
    if np.any(y < 0):
        raise ValueError(f"The {family} family needs non-negative counts; the response has {int(np.sum(y < 0))} negative value(s)")
    if np.any(y != np.round(y)):
        raise ValueError(f"The {family} family needs integer counts; the response has {int(np.sum(y != np.round(y)))} non-integer value(s)")
    return y
