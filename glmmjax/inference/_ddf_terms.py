"""Hypotheses of lmerTest's anova(): the contrast matrices per fixed-effect term.

Type III follows lmerTest's get_contrasts_type3 (SAS-style hypotheses that do not depend on
the model's contrasts: built on the treatment-coded matrix, made orthogonal to the terms
that contain a term, then mapped to the model's coding); type I its get_contrasts_type1
(rows of the Doolittle factor of X'X). Terms and their R labels come from the design's
MatrixInfo.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
from patsy import Term, build_design_matrices, design_matrix_builders

from ..formula import deparse, parse_expression, parse_formula, patsy_code

__all__ = ["anova_contrasts"]

_GINV_TOL = float(np.sqrt(np.finfo(float).eps))     # MASS::ginv's


def _zapsmall(x, digits=7):
    """R's zapsmall: round to ``digits`` significant digits of max|x|."""
    mx = np.max(np.abs(x)) if x.size else 0.0
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))) if mx > 0 else digits)


class _FixedTerm(NamedTuple):
    label: str            # R's term label, e.g. "sex:intake"
    cols: list            # its columns of X (R's order, aliased columns dropped)
    factors: tuple        # patsy EvalFactors (R's "variables" of the term)
    coded: frozenset      # the variables R's terms() marks 1 (coded by contrasts), not 2 (dummies)
    numeric: frozenset    # those of them that are numeric (R's dataClasses "numeric")


def _formula_leaves(model) -> list:
    """The leaf nodes (variables and calls) of the fixed part of the formula."""
    leaves = []

    def leaf(node):
        leaves.append(node)
        return deparse(node)

    patsy_code(parse_expression(parse_formula(model.formula).fixed_r), leaf)
    return leaves


def _fixed_terms(mi) -> list:
    """The non-intercept terms of the fixed-effects matrix ``mi`` (a MatrixInfo), in R's order."""
    labels = mi.labels
    di = mi.design_info
    kept = {int(c): j for j, c in enumerate(np.asarray(mi.order)[mi.keep])}
    r_pos = {int(c): j for j, c in enumerate(mi.order)}
    found = []
    for term, sl in di.term_slices.items():
        if term.factors:
            found.append((min(r_pos[c] for c in range(sl.start, sl.stop)), term, sl))
    terms, seen = [], []
    for _, term, sl in sorted(found, key=lambda t: t[0]):
        fs = set(term.factors)
        # R's TermCode: a variable is coded by contrasts (1) if the term without it is empty or
        # within an earlier term, else by dummies (2); lmerTest's containment uses the 1s only
        coded = frozenset(f for f in fs if not fs - {f} or any(fs - {f} <= u for u in seen))
        numeric = frozenset(f for f in coded if di.factor_infos[f].type == "numerical"
                            and di.factor_infos[f].num_columns == 1)
        terms.append(_FixedTerm(":".join(labels[f.code] for f in term.factors),
                                sorted(kept[c] for c in range(sl.start, sl.stop) if c in kept),
                                tuple(term.factors), coded, numeric))
        seen.append(fs)
    return terms


def _doolittle_upper(x, eps=1e-6):
    """t(L) of lmerTest's doolittle(x): x = L U with L unit lower triangular, |.| < eps zeroed."""
    n = x.shape[0]
    L, U = np.eye(n), np.zeros((n, n))
    for i in range(n):
        U[i] = x[i] - L[i, :i] @ U[:i]
        col = x[i + 1:, i] - L[i + 1:, :i] @ U[:i, i]
        L[i + 1:, i] = 0.0 if abs(U[i, i]) < eps else col / U[i, i]
    L[np.abs(L) < eps] = 0.0
    return L.T


def _type1(model) -> dict:
    """lmerTest's get_contrasts_type1: rows of t(doolittle(X'X)$L) per term."""
    X = np.asarray(model.design.X, float)
    p = X.shape[1]
    terms = _fixed_terms(model.design.fixed_info.fixed)
    if p == 0 or (p == 1 and not terms):
        return {}
    L = np.ones((1, 1)) if p == 1 else _doolittle_upper(X.T @ X)
    return {t.label: L[t.cols] for t in terms}


def _term_dummies(frame, mi, factors) -> np.ndarray:
    """R's model.matrix(~ 0 + term): every factor coded by indicators of all its levels."""
    from ..design import eval_env

    prepared = mi.bind(frame)
    out = np.ones((len(frame), 1))
    for f in factors:
        (info,) = design_matrix_builders([[Term([f])]], lambda: iter([prepared]), eval_env(), NA_action="raise")
        (cols,) = build_design_matrices([info], prepared, NA_action="raise")
        out = (out[:, :, None] * np.asarray(cols, float)[:, None, :]).reshape(len(frame), -1)
    return out


def _type3(model) -> dict:
    """lmerTest's get_contrasts_type3 / extract_contrasts_type3 (SAS-style type III)."""
    from ..design import fixed_matrix

    X = np.asarray(model.design.X, float)
    terms = _fixed_terms(model.design.fixed_info.fixed)
    if X.shape[1] <= 1 or len(terms) <= 1:
        return _type1(model)
    leaves = _formula_leaves(model)
    treat = {deparse(n): "treatment" for n in leaves}
    frame = model.frame.iloc[model.design.positions]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        Xt, _, mit = fixed_matrix("~" + parse_formula(model.formula).fixed_r, model.frame, model.design.positions,
                                  contrasts=treat, functions=model.functions)
    tterms = _fixed_terms(mit)
    intercept = any(not t.factors for t in mit.design_info.terms)
    rd = [np.ones((len(frame), int(intercept)))] + [_term_dummies(frame, mit, t.factors) for t in tterms]
    rd_term = np.repeat(np.arange(len(rd)), [r.shape[1] for r in rd])         # 0: intercept
    rdX = np.hstack(rd)
    L = _zapsmall((np.linalg.pinv(Xt, rcond=_GINV_TOL) @ rdX).T)
    # lmerTest's containment: b contains a if a's (contrast-coded) variables are a proper subset
    # of b's, with the same numeric ones; a term's columns are made orthogonal to its containers'
    contains = lambda a, b: a.coded < b.coded and a.numeric == b.numeric
    for t in sorted(tterms, key=lambda t: len(t.factors), reverse=True):
        outer = [c for u in tterms if contains(t, u) for c in u.cols]
        if outer:
            x, y = L[:, outer], L[:, t.cols]
            L[:, t.cols] = _zapsmall(y - x @ np.linalg.lstsq(x, y, rcond=1e-7)[0])
    # the rows of L that belong to X's own (treatment-coded) columns
    col_term = np.zeros(Xt.shape[1], int)
    for i, t in enumerate(tterms):
        col_term[t.cols] = i + 1
    sel = []
    for j in range(Xt.shape[1]):
        cand = np.flatnonzero(rd_term == col_term[j])
        err = np.max(np.abs(rdX[:, cand] - Xt[:, [j]]), axis=0)
        if err.min() > 1e-10 * max(1.0, np.max(np.abs(Xt[:, j]))):
            raise ValueError(f"type III contrasts: column {j} of the treatment-coded model matrix is not a "
                             "column of the term's indicator coding")
        sel.append(cand[np.argmin(err)])
    L = L[sel]
    # non-treatment contrasts: lmerTest maps the hypotheses with zapsmall(ginv(X_treatment) X)
    mapping = None if np.array_equal(Xt, X) else _zapsmall(np.linalg.pinv(Xt, rcond=_GINV_TOL) @ X)
    out = {}
    for t in tterms:
        Lt = L[:, t.cols].T
        Lt = Lt[np.sum(np.abs(Lt), axis=1) > 1e-8]
        out[t.label] = Lt if mapping is None else Lt @ mapping
    return out


def anova_contrasts(model, type) -> dict:
    key = str(type).upper()
    if key in ("3", "III"):
        return _type3(model)
    if key in ("1", "I"):
        return _type1(model)
    raise ValueError(f"type must be 3 ('III', lmerTest's default) or 1 ('I'), not {type!r}")
