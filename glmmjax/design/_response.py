"""The response as the likelihood sees it: (y, trials, prior weights).

For a family whose response is successes out of trials (``Family.trials``: binomial,
betabinomial) the response may be given three ways, as R's glm takes them: ``cbind(s, f)``
(successes s of s + f trials), a 0/1 (or two-level factor) response with one trial per row,
or proportions with ``weights`` = the number of trials. Other families take y as it is,
with one "trial" per row.
"""
from __future__ import annotations

import numpy as np

__all__ = ["response_arrays"]


def response_arrays(design, family):
    """(y, size, weights) as float arrays: y the successes (trials families) or the response."""
    w = np.asarray(design.weights, float)
    y = np.asarray(design.y, float)
    if design.response_text is not None and not family.trials:
        shown = ", ".join(repr(v) for v in design.response_text) or "(its levels)"
        raise ValueError(
            f"the response {design.response!r} is text, not numbers (values that are not numbers: {shown}); the "
            f"{family.name} family needs a numeric response (only a binomial response may be a factor, its first "
            "level the failures). If those values mark missing data, read the file with na_values=[...]")
    if not family.trials:
        if design.size is not None:
            raise ValueError(f"A cbind() response needs the binomial family, not {family.name}")
        return y, np.ones(design.nobs), w
    if design.size is not None:
        return y, np.asarray(design.size, float), w
    if np.any(w != 1.0):
        # proportions with weights = number of trials (R's glm convention)
        if np.any((y < 0) | (y > 1)):
            raise ValueError("A binomial response given with weights must be proportions in [0, 1]")
        # non-integer successes get R's warning from the family's response check
        return y * w, w.copy(), np.ones_like(w)
    return y, np.ones_like(y), w
