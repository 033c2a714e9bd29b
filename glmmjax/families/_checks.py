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
        raise ValueError(f"The {family} family needs non-negative counts; "
                         f"the response has {int(np.sum(y < 0))} negative value(s)")
    if np.any(y != np.round(y)):
        raise ValueError(f"The {family} family needs integer counts; "
                         f"the response has {int(np.sum(y != np.round(y)))} non-integer value(s)")
    return y


def check_positive(y, family: str):
    """Strictly positive values (Gamma)."""
    y = check_finite(y, family)
    if np.any(y <= 0):
        raise ValueError(f"The {family} family needs a strictly positive response; "
                         f"the response has {int(np.sum(y <= 0))} value(s) <= 0")
    return y


def check_open_unit(y, family: str):
    """Values strictly between 0 and 1 (beta)."""
    y = check_finite(y, family)
    bad = (y <= 0) | (y >= 1)
    if np.any(bad):
        raise ValueError(
            f"The {family} family needs a response strictly between 0 and 1; the response has "
            f"{int(np.sum(bad))} value(s) outside (0, 1) (min {y.min():g}, max {y.max():g})"
        )
    return y


def natural(x):
    """Host-side natural-scale value: a float for a single value, a numpy array otherwise.

    Traced values (inside jit) are passed through unchanged.
    """
    try:
        a = np.asarray(x, dtype=float)
    except Exception:  # a JAX tracer
        return x
    return float(a.reshape(())) if a.size == 1 else a
