"""Wald chi-square tests per fixed-effect term: car's ``Anova(model)`` (Type II and III).

The fixed effects beta-hat (p of them, conditional model) with covariance V (``fit.vcov``)
give, for a hypothesis L beta = 0 with L a q x p matrix of full row rank,

    Chisq = (L b)' (L V L')^{-1} (L b),     Df = q,     Pr(>Chisq) = P(chi^2_q > Chisq),

car's ``linearHypothesis`` with ``test = "Chisq"``. A term's columns are those of the model
matrix it generates (patsy's terms in R's order, aliased columns dropped).

Type III (car's ``Anova.III.mer``, glmmTMB's ``Anova.III.glmmTMB``): for every term, the
intercept included, L selects the term's columns: the hypothesis "all of the term's
coefficients are 0" under the model's own contrasts. For a main effect of a factor that
also appears in an interaction, that hypothesis depends on the contrasts and is meaningful
only with contrasts that sum to zero (``contrasts={"f": "sum"}``); ``Anova`` warns when a
factor in an interaction has treatment contrasts (car's documentation, not car itself).

Type II (car's ``Anova.II.mer``): each term is tested after all terms that do not contain
it (marginality). With H1 the rows of the identity for the columns of the term's
*relatives* (the other terms whose variables include all of this term's variables) and
H2 those rows plus the term's own, the hypothesis is the conjugate complement of H1 in H2
with respect to V (car's ``ConjComp``):

    L = Q_perp' H2,   Q_perp an orthonormal basis of the complement of range(H2 V H1')

so that L V H1' = 0. A term without relatives is tested as in Type III. Wald statistics
are invariant to the choice of basis of the hypothesis, so any orthonormal Q_perp gives
car's value. The intercept is not tested in Type II.

For linear mixed models car also reports Wald chi-square tests (``test.statistic =
"Chisq"``, its default for lmer fits); ``fit.vcov`` is lme4's vcov (REML fits: at the REML
estimates).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from .._warnings import GlmmjaxWarning, warn

__all__ = ["Anova", "TermLayout", "term_layout", "wald_anova", "wald_test"]

COLUMNS = ["Chisq", "Df", "Pr(>Chisq)"]
RANK_TOL = 1e-7   # R's qr() tolerance, used by car's ConjComp to find the rank


@dataclass(frozen=True)
class TermLayout:
    """Which fixed-effect columns each model term generates.

    Attributes:
        labels: term labels as R prints them ("(Intercept)", "extract", "extract:gen").
        variables: per term, the frozenset of its variables (patsy factors), for marginality.
        assign: per fixed-effect column, the index of its term (R's ``assign`` attribute).
        has_intercept: whether the first term is the intercept.
        treatment_in_interaction: factors with treatment contrasts that appear in an
            interaction term (for the Type III warning).
    """

    labels: tuple
    variables: tuple
    assign: np.ndarray
    has_intercept: bool
    treatment_in_interaction: tuple = ()

    def columns(self, term: int) -> np.ndarray:
        return np.flatnonzero(self.assign == term)

    def relatives(self, term: int) -> list:
        """Non-intercept terms other than ``term`` that contain all of its variables."""
        mine = self.variables[term]
        start = 1 if self.has_intercept else 0
        return [j for j in range(start, len(self.labels))
                if j != term and mine <= self.variables[j]]


def term_layout(model) -> TermLayout:
    """The :class:`TermLayout` of a model's fixed effects (``fit.model``)."""
    from glmmjax.design import CONTRAST_NAMES, RTreatment

    info = model.design.fixed_info.fixed
    di = info.design_info
    names = info.labels
    n_cols = sum(s.stop - s.start for s in di.term_slices.values())
    term_of = np.empty(n_cols, dtype=np.int64)
    for i, term in enumerate(di.terms):
        term_of[di.term_slices[term]] = i
    # patsy keeps its own term order (terms without numeric factors first); the columns,
    # permuted by ``order``, are in R's order, so the terms are in the order they appear there
    r_cols = term_of[np.asarray(info.order)]
    r_index = list(dict.fromkeys(r_cols.tolist()))
    r_terms = [di.terms[i] for i in r_index]
    position = {i: j for j, i in enumerate(r_index)}
    assign = np.array([position[i] for i in r_cols[np.asarray(info.keep)]], dtype=np.int64)
    labels = [":".join(names.get(f.code, f.name()) for f in t.factors) or "(Intercept)" for t in r_terms]
    variables = [frozenset(f.code for f in t.factors) for t in r_terms]
    treatment = f", {CONTRAST_NAMES[RTreatment]})"
    flagged = []
    for term in r_terms:
        if len(term.factors) < 2:
            continue
        for f in term.factors:
            if di.factor_infos[f].type == "categorical" and f.code.endswith(treatment):
                label = names.get(f.code, f.name())
                if label not in flagged:
                    flagged.append(label)
    has_intercept = bool(r_terms) and len(r_terms[0].factors) == 0
    return TermLayout(tuple(labels), tuple(variables), assign, has_intercept, tuple(flagged))


def wald_test(beta, vcov, L) -> tuple:
    """(Chisq, Df) of the Wald test of L beta = 0 (car's linearHypothesis, test="Chisq")."""
    L = np.atleast_2d(np.asarray(L, float))
    d = L @ np.asarray(beta, float)
    S = L @ np.asarray(vcov, float) @ L.T
    S = 0.5 * (S + S.T)
    chisq = float(d @ np.linalg.solve(S, d))
    return chisq, L.shape[0]


def _conjugate_complement(H1: np.ndarray, H2: np.ndarray, V: np.ndarray) -> np.ndarray:
    """Rows spanning {l in rowspace(H2): l V H1' = 0} (car's t(ConjComp(t(H1), t(H2), V)))."""
    M = H2 @ V @ H1.T
    U, s, _ = np.linalg.svd(M, full_matrices=True)
    rank = int(np.sum(s > RANK_TOL * s[0])) if s.size and s[0] > 0 else 0
    return U[:, rank:].T @ H2


def _hypothesis(layout: TermLayout, term: int, V: np.ndarray, type_: str) -> np.ndarray:
    p = V.shape[0]
    eye = np.eye(p)
    own = layout.columns(term)
    if type_ == "III":
        return eye[own]
    rel = np.concatenate([layout.columns(j) for j in layout.relatives(term)] or [np.zeros(0, int)])
    if rel.size == 0:
        return eye[own]
    return _conjugate_complement(eye[rel], eye[np.concatenate([rel, own])], V)


def _normalize_type(type) -> str:
    key = str(type).strip().upper()
    mapping = {"II": "II", "2": "II", "III": "III", "3": "III"}
    if key not in mapping:
        raise ValueError(f"type must be 'II', 'III', 2 or 3, not {type!r}")
    return mapping[key]


def wald_anova(beta, vcov, layout: TermLayout, type="II") -> pd.DataFrame:
    """The Wald chi-square table of ``beta`` with covariance ``vcov`` over ``layout``'s terms.

    The computational core of :func:`Anova`, for any estimate and covariance (for example
    R's, to check the arithmetic at fixed values).
    """
    type_ = _normalize_type(type)
    beta = np.asarray(beta, float)
    V = np.asarray(vcov, float)
    if V.shape != (beta.size, beta.size) or layout.assign.size != beta.size:
        raise ValueError(f"beta has {beta.size} entries, vcov has shape {V.shape} and the term "
                         f"layout {layout.assign.size} columns; they must agree")
    first = 1 if (type_ == "II" and layout.has_intercept) else 0
    rows = []
    for term in range(first, len(layout.labels)):
        L = _hypothesis(layout, term, V, type_)
        if L.shape[0] == 0:
            rows.append((np.nan, 0, np.nan))   # all of the term's columns aliased
            continue
        chisq, df = wald_test(beta, V, L)
        rows.append((chisq, df, float(stats.chi2.sf(chisq, df))))
    table = pd.DataFrame(rows, columns=COLUMNS, index=list(layout.labels[first:]))
    table["Df"] = table["Df"].astype(np.int64)
    return table


def Anova(fit, type="II") -> pd.DataFrame:
    """Wald chi-square tests of the fixed-effect terms, as car's ``Anova(model, type)``.

    Arguments:
        fit: a FitResult (GLMM, LMM or a model without random effects). The tests use the
            conditional model's fixed effects and ``fit.vcov``.
        type: "II" (default; each term after the terms that do not contain it) or "III"
            (each term's coefficients = 0, intercept included); 2 and 3 work too.

    Returns:
        A DataFrame with one row per term, in R's term order, and columns ``Chisq``, ``Df``,
        ``Pr(>Chisq)``. ``attrs["heading"]`` holds car's heading and ``attrs["response"]``
        the response.

    Raises:
        ValueError: an unknown ``type``, or a model without fixed effects to test.

    Warns:
        UserWarning: Type III with a factor in an interaction coded by treatment contrasts
        (then the main-effect tests depend on the reference levels).
    """
    type_ = _normalize_type(type)
    model = fit.model
    layout = term_layout(model)
    n_terms = len(layout.labels) - (1 if type_ == "II" and layout.has_intercept else 0)
    if fit.fixef.size == 0 or n_terms == 0:
        raise ValueError("the model has no fixed-effect terms to test"
                         + (" other than the intercept (Type II does not test it)" if fit.fixef.size else ""))
    if type_ == "III" and layout.treatment_in_interaction:
        names = ", ".join(layout.treatment_in_interaction)
        warn(
            f"Type III tests of main effects are meaningful only with sum-to-zero contrasts for the "
            f"factors in interactions; {names} use treatment contrasts, so the tests of the terms "
            f"marginal to the interaction depend on the reference levels (refit with contrasts="
            f"{{{', '.join(repr(n) + ': ' + repr('sum') for n in layout.treatment_in_interaction)}}})", GlmmjaxWarning)
    table = wald_anova(fit.fixef.values, fit.vcov.values, layout, type_)
    table.attrs["heading"] = f"Analysis of Deviance Table (Type {type_} Wald chisquare tests)"
    table.attrs["response"] = model.design.response
    return table
