"""Printed summaries of a FitResult, laid out like R's.

Linear mixed models print like lme4's ``summary(lmer(...))``; generalized linear mixed models
print like glmmTMB's ``summary(glmmTMB(...))``. Numbers follow R's formatting rules
(``format``, ``printCoefmat``, ``format.pval``) closely enough to read like R output.

``Summary(fit)``: ``str()`` gives the full summary, ``short()`` the compact ``repr(fit)``
(lme4's ``print(merMod)``), ``tables()`` a dict of DataFrames ("fixed", "random", "fit").
"""
from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

__all__ = ["Summary", "format_r", "abbreviate", "format_pval", "deparse_formula"]

SIGNIF_LEGEND = ("Signif. codes:  0 \u2018***\u2019 0.001 \u2018**\u2019 0.01 \u2018*\u2019 0.05 "
                 "\u2018.\u2019 0.1 \u2018 \u2019 1")
_DIGITS = 4          # lme4 / glmmTMB print with max(3, getOption("digits") - 3) = 4
_EPS = np.finfo(float).eps


# -- R's number formatting -----------------------------------------------------------------
def _sci(x: float, digits: int):
    """(negative, kpower, nsig) of x at `digits` significant digits (R's scientific())."""
    if x == 0:
        return False, 0, 1
    s = f"{abs(x):.{digits - 1}e}"
    mant, exp = s.split("e")
    mant = mant.replace(".", "").rstrip("0")
    return x < 0, int(exp), max(1, len(mant))


def format_r(values, digits: int = 7, nsmall: int = 0) -> list:
    """R's ``format(x, digits=)`` of a numeric vector: common fixed or scientific notation,
    enough digits for the element that needs most (up to `digits` significant), right-justified."""
    xs = [float(v) if v is not None else float("nan") for v in np.asarray(values, dtype=float).reshape(-1)]
    fin = [x for x in xs if math.isfinite(x)]
    if not fin:
        out = [_nonfinite(x) for x in xs]
    else:
        rgt, mxsl, mxns, mxe, mne, neg = -10 ** 9, -10 ** 9, -10 ** 9, -10 ** 9, 10 ** 9, 0
        mxl = -10 ** 9
        for x in fin:
            n, kp, nsig = _sci(x, digits)
            left = kp + 1
            sleft = int(n) + (1 if left <= 0 else left)
            rgt = max(rgt, nsig - left)
            mxl = max(mxl, left)
            mxsl = max(mxsl, sleft)
            mxns = max(mxns, nsig)
            mxe, mne = max(mxe, kp), min(mne, kp)
            neg = neg or n
        if mxl < 0:
            mxsl = 1 + int(neg)
        rgt = max(rgt, 0)
        wF = mxsl + rgt + (rgt != 0)
        e = 2 if (mxe >= 100 or mne <= -99) else 1
        d = mxns - 1
        wE = int(neg) + (d > 0) + d + 4 + e
        if wF <= wE:
            rgt = max(rgt, nsmall)
            out = [f"{x:.{rgt}f}" if math.isfinite(x) else _nonfinite(x) for x in xs]
        else:
            out = [f"{x:.{d}e}" if math.isfinite(x) else _nonfinite(x) for x in xs]
    w = max(len(s) for s in out) if out else 0
    return [s.rjust(w) for s in out]


def _nonfinite(x):
    if math.isnan(x):
        return "NA"
    return "Inf" if x > 0 else "-Inf"


def _r_round(x, digits):
    return np.round(np.asarray(x, dtype=float), digits)


def format_pval(pv, digits: int = 3, eps: float = _EPS) -> list:
    """R's ``format.pval``: small p-values in scientific notation, tiny ones as ``< 2e-16``."""
    pv = np.asarray(pv, dtype=float).reshape(-1)
    out = [""] * len(pv)
    is0 = pv < eps
    idx = np.where(~is0)[0]
    rr = []
    if len(idx):
        p = pv[idx]
        expo = np.floor(np.log10(np.where(p > 0, p, 1e-50)))
        fixp = (expo >= -4) | (p == 0)
        for mask in (fixp, ~fixp):
            if mask.any():
                fs = [s.strip() for s in format_r(p[mask], digits)]
                for i, s in zip(idx[mask], fs):
                    out[i] = s
                    rr.append(s)
    if is0.any():
        dg = max(1, digits - 2)
        if rr:
            nc = max(len(s) for s in rr)
            if dg > 1 and dg + 6 > nc:
                dg = max(1, nc - 7)
            sep = "" if (dg == 1 and nc <= 6) else " "
        else:
            sep = "" if dg == 1 else " "
        s = "<" + sep + format_r([eps], dg)[0].strip()
        for i in np.where(is0)[0]:
            out[i] = s
    return out


def _stars(p):
    if not np.isfinite(p):
        return ""
    for cut, sym in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p <= cut:
            return sym
    return " "


def abbreviate(name: str, minlength: int = 4) -> str:
    """R's ``abbreviate(name, minlength)`` (method "left.kept", without the uniqueness pass)."""
    s = list(name.strip())
    if len(s) <= minlength:
        return "".join(s)
    vowel = set("aeiou")

    def first(i):
        return s[i - 1].isspace()

    def last(i):
        return (not s[i - 1].isspace()) and (i + 1 >= len(s) or s[i + 1].isspace())

    def nchar():
        return len(s) - sum(c.isspace() for c in s)

    tests = (lambda c, i: c in vowel and last(i),
             lambda c, i: c in vowel and not first(i),
             lambda c, i: c.islower() and last(i),
             lambda c, i: c.islower() and not first(i),
             lambda c, i: not first(i) and not c.isspace())
    for test in tests:
        i = len(s) - 1
        while i > 0:
            if i < len(s) and test(s[i], i):
                del s[i]
            if nchar() <= minlength:
                return "".join(s).replace(" ", "")
            i -= 1
    return "".join(s).replace(" ", "")


# -- formulas --------------------------------------------------------------------------------
_TOKEN = re.compile(r"\s*(%[^%]*%|\|\||==|!=|<=|>=|[~+\-*/|,():^=<>]|`[^`]*`|\"[^\"]*\"|'[^']*'|"
                    r"[^\s~+\-*/|,():^=<>%]+)")


def deparse_formula(formula: str) -> str:
    """Space a formula string as R's ``deparse`` does: ``y ~ x + (x | g)``, ``cbind(a, b - a)``."""
    toks, pos = [], 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if not m or m.end() == pos:
            return " ".join(formula.split())
        if m.group(1):
            toks.append(m.group(1))
        pos = m.end()
        if formula[pos:].strip() == "":
            break
    binary = {"~", "+", "-", "*", "|", "||", "==", "!=", "<=", ">=", "<", ">", "="}
    out, prev = "", None
    for t in toks:
        unary = prev is None or prev in binary or prev in ("(", ",", "^", "/", ":")
        if t in binary and not unary:
            out += f" {t} "
        elif t.startswith("%") and t.endswith("%") and len(t) > 1:
            out += f" {t} "
        elif t == ",":
            out += ", "
        else:
            out += t
        prev = t
    return out


# -- text tables --------------------------------------------------------------------------------
def _print_matrix(cells, colnames, rownames=None, right=False) -> list:
    """R's print of a character matrix with quote=FALSE."""
    ncol = len(colnames)
    rownames = rownames if rownames is not None else [""] * len(cells)
    rw = max([len(r) for r in rownames] + [0])
    widths = [max([len(colnames[j])] + [len(row[j]) for row in cells]) for j in range(ncol)]
    just = (lambda s, w: s.rjust(w)) if right else (lambda s, w: s.ljust(w))
    lines = [" " * rw + "".join(" " + just(colnames[j], widths[j]) for j in range(ncol))]
    for r, row in zip(rownames, cells):
        lines.append(r.ljust(rw) + "".join(" " + just(row[j], widths[j]) for j in range(ncol)))
    return lines


def _named_vector(names, values) -> list:
    """R's print of a named vector whose entries are already formatted strings."""
    w = max([len(n) for n in names] + [len(v) for v in values])
    return ["".join(n.rjust(w) + " " for n in names), "".join(v.rjust(w) + " " for v in values)]


def _cat_num(x, digits=7) -> str:
    """How R's cat() shows a double (up to 7 significant digits)."""
    if not np.isfinite(x):
        return _nonfinite(x)
    s = f"{x:.{digits}g}"
    if "e" in s:
        m, e = s.split("e")
        m = m.rstrip("0").rstrip(".") if "." in m else m
        return f"{m}e{int(e):+03d}"
    return s


def coefmat_lines(table: pd.DataFrame, digits: int = _DIGITS, zap_ind=(), has_p=None, legend=True) -> list:
    """R's ``printCoefmat``: Estimate and Std. Error share decimals, test statistics with
    ``dig.tst`` digits, p-values by ``format.pval`` with significance stars."""
    x = table.to_numpy(dtype=float).copy()
    nr, nc = x.shape
    cols = list(table.columns)
    has_p = (nc >= 4 and cols[-1].startswith("Pr(")) if has_p is None else has_p
    dig_tst = max(1, min(5, digits - 1))
    k = nc - int(has_p) - 1                      # printCoefmat: cs.ind = 1:k, tst.ind = k + 1
    cs = list(range(max(k, 1)))
    tst = [k] if 1 <= k < nc - int(has_p) else []
    cf = [[""] * nc for _ in range(nr)]
    for j in zap_ind:
        col = x[:, j]
        fin = col[np.isfinite(col)]
        if fin.size and np.max(np.abs(fin)) > 0:
            mx = np.max(np.abs(fin))
            x[:, j] = np.round(col, max(0, digits - int(np.ceil(np.log10(mx)))))
    acs = np.abs(x[:, cs])
    ok = np.isfinite(acs) & (acs != 0)
    digmin = 1 + (math.floor(math.log10(acs[ok].min())) if ok.any() else 0)
    dec = max(1, digits - digmin)
    vals = np.round(x[:, cs], dec)
    fs = format_r(vals.reshape(-1), digits)
    for k, (i, jj) in enumerate(np.ndindex(nr, len(cs))):
        cf[i][cs[jj]] = fs[k]
    for j in tst:
        for i, s in enumerate(format_r(np.round(x[:, j], dig_tst), digits)):
            cf[i][j] = s
    # values that round to zero but are not zero
    for i in range(nr):
        for j in cs:
            v = x[i, j]
            if np.isfinite(v) and v != 0 and float(cf[i][j]) == 0:
                cf[i][j] = format_r([v], max(1, digits - 1))[0]
        for j in range(nc):
            if not np.isfinite(x[i, j]) and not (has_p and j == nc - 1):
                cf[i][j] = "NA"
    stars = False
    if has_p:
        pv = x[:, nc - 1]
        okp = np.isfinite(pv)
        if okp.any():
            fp = format_pval(pv[okp], dig_tst)
            for i, s in zip(np.where(okp)[0], fp):
                cf[i][nc - 1] = s
            stars = bool(np.any(pv[okp] < 0.1))
        for i in np.where(~okp)[0]:
            cf[i][nc - 1] = "NA"
    names = list(cols)
    if stars:
        sym = [_stars(p) for p in x[:, nc - 1]]
        w = max(len(s) for s in sym)
        for i in range(nr):
            cf[i].append(sym[i].ljust(w))
        names.append("")
    lines = _print_matrix(cf, names, [str(r) for r in table.index], right=True)
    if stars and legend:
        lines += ["---", SIGNIF_LEGEND]
    return lines


# -- the summary ----------------------------------------------------------------------------------
class Summary:
    """The summary of a fitted model; ``str()`` prints it like R."""

    def __init__(self, fit, ddf="satterthwaite"):
        self.fit = fit
        self.ddf = ddf

    # - pieces -
    @property
    def _model(self):
        return self.fit.model

    @property
    def _data_name(self):
        return self._model.data_name

    @property
    def _formula(self) -> str:
        return deparse_formula(str(self._model.formula))

    def _family_line(self) -> str:
        fam = self._model.family
        return f" Family: {fam.name}  ( {fam.link.name} )"

    def _components(self, formula_order: bool, component: str = "cond"):
        """(label, group, columns, S) per displayed random-effect term of one model component."""
        fit = self.fit
        blocks = [(b, S) for b, S in zip(self._model.blocks, fit.covariances) if b.component == component]
        if formula_order:
            order = []
            design = self._model.design if component == "cond" else self._model.zi_design
            for t in getattr(design, "terms", ()):
                if t.group not in order:
                    order.append(t.group)
            rank = {g: i for i, g in enumerate(order)}
            blocks.sort(key=lambda bs: rank.get(bs[0].group, len(rank)))
        comps = []
        for b, S in blocks:
            S = np.asarray(S, dtype=float)
            pieces = []
            for first, k, kind in b.parts:
                if kind == "us" or k == 1:
                    pieces.append(list(range(first, first + k)))
                else:       # diag: one uncorrelated term per column, as lme4 shows `||`
                    pieces += [[c] for c in range(first, first + k)]
            for n, cols in enumerate(pieces):
                label = b.group if n == 0 else f"{b.group}.{n}"
                comps.append((label, b.group, [b.columns[c] for c in cols], S[np.ix_(cols, cols)]))
        return comps

    def _residual_sd(self):
        fit = self.fit
        if fit.model.family.name == "gaussian" and fit.sigma_ is not None:
            return float(fit.sigma_)
        return None

    def _varcorr_lines(self, comps, digits=_DIGITS, variance=True, residual=True) -> list:
        sds = [np.sqrt(np.clip(np.diag(S), 0, None)) for *_, S in comps]
        labels, names = [], []
        for (label, _, cols, _), sd in zip(comps, sds):
            labels += [label] + [""] * (len(cols) - 1)
            names += list(cols)
        allsd = list(np.concatenate(sds)) if sds else []
        rsd = self._residual_sd() if residual else None
        if rsd is not None:
            labels.append("Residual")
            names.append("")
            allsd.append(rsd)
        header = ["Groups", "Name"]
        columns = [labels, names]
        if variance:
            header.append("Variance")
            columns.append(format_r(np.square(allsd), digits))
        header.append("Std.Dev.")
        columns.append(format_r(allsd, digits))
        nrow = len(labels)
        maxlen = max([len(c[2]) for c in comps] + [1])
        if maxlen > 1:
            dig = max(2, digits - 2)
            corr_rows = []
            for (_, _, cols, S), sd in zip(comps, sds):
                k = len(cols)
                with np.errstate(divide="ignore", invalid="ignore"):
                    R = S / np.outer(sd, sd)
                R[np.diag_indices(k)] = 1.0
                fm = format_r(np.round(R, dig).reshape(-1), 7, nsmall=dig)
                cc = [[fm[i * k + j] if j < i else "" for j in range(k)] + [""] * (maxlen - k) for i in range(k)]
                corr_rows += cc
            corr_rows += [[""] * maxlen for _ in range(nrow - len(corr_rows))]
            for j in range(maxlen - 1):
                header.append("Corr" if j == 0 else "")
                columns.append([r[j] for r in corr_rows])
        cells = [[col[i] for col in columns] for i in range(nrow)]
        return _print_matrix(cells, header)

    def _ngroups_line(self, comps) -> str:
        seen = {}
        for b in self._model.blocks:
            seen[b.group] = b.nlevels
        order = []
        for _, g, _, _ in comps:
            if g not in order:
                order.append(g)
        grp = "; ".join(f"{g}, {seen[g]}" for g in order)
        return f"Number of obs: {self.fit.nobs}, groups:  {grp}"

    def _aictab_lines(self) -> list:
        fit = self.fit
        dev = -2.0 * fit.loglik
        vals = format_r(_r_round([fit.aic, fit.bic, fit.loglik, dev], 1), 7)
        return _named_vector(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                             [v.strip() for v in vals] + [str(int(fit.df_resid))])

    def _scaled_residuals(self):
        fit = self.fit
        try:
            r = np.asarray(fit.residuals("response"), dtype=float)
        except Exception:
            r = np.asarray(fit.model.design.y, dtype=float) - np.asarray(fit.fitted(), dtype=float)
        w = getattr(fit.model, "_w", None)
        if w is not None and np.shape(w) == r.shape:
            r = r * np.sqrt(np.asarray(w, dtype=float))
        return r / fit.sigma

    def _residual_lines(self, digits=_DIGITS) -> list:
        r = self._scaled_residuals()
        q = np.quantile(r[np.isfinite(r)], [0, 0.25, 0.5, 0.75, 1])
        mx = np.max(np.abs(q))
        if mx > 0:   # zapsmall(q, digits + 1)
            q = np.round(q, max(0, digits + 1 - int(math.ceil(math.log10(mx)))))
        return ["Scaled residuals: "] + _named_vector(["Min", "1Q", "Median", "3Q", "Max"], format_r(q, digits))

    def _fixcorr_lines(self) -> list:
        fit = self.fit
        V = fit.vcov.to_numpy(dtype=float)
        p = V.shape[0]
        if p < 2:
            return []
        if p > 12:
            return ["", f"Correlation matrix not shown by default, as p = {p} > 12.",
                    "Use print(summary(fit).fixed_correlation()) or fit.vcov if you need it"]
        C = self.fixed_correlation().to_numpy()
        names = list(fit.fixef.index)
        fm = format_r(np.round(C, 3).reshape(-1), 7, nsmall=3)
        cells = [[fm[i * p + j] if j < i else "" for j in range(p - 1)] for i in range(1, p)]
        return ["", "Correlation of Fixed Effects:"] + _print_matrix(
            cells, [abbreviate(n, 6) for n in names[:-1]], [abbreviate(n, 11) for n in names[1:]])

    def fixed_correlation(self) -> pd.DataFrame:
        """Correlation matrix of the fixed-effect estimates."""
        V = self.fit.vcov.to_numpy(dtype=float)
        sd = np.sqrt(np.diag(V))
        with np.errstate(divide="ignore", invalid="ignore"):
            C = V / np.outer(sd, sd)
        names = list(self.fit.fixef.index)
        return pd.DataFrame(C, index=names, columns=names)

    def _dispersion_lines(self) -> list:
        fit = self.fit
        fam = self._model.family
        if fit.is_lmm or not getattr(fam, "has_dispersion", False):
            return []
        disp = fit.disp_fixef
        if disp is not None and len(disp) > 1:
            return ["", "Dispersion model:"] + coefmat_lines(self._disp_table())
        d = fit.dispersion_parameters
        name = fam.name
        if name in ("gaussian", "Gamma"):
            s = d.get("sigma")
            if s is None:
                return []
            val = float(s) ** 2
            label = f"Dispersion estimate for {name} family (sigma^2)"
        else:
            key = {"nbinom2": "theta", "nbinom1": "phi", "beta": "phi", "t": "sigma"}.get(name)
            val = d.get(key) if key else (next(iter(d.values())) if d else None)
            if val is None:
                return []
            val = float(val)
            label = f"Dispersion parameter for {name} family ()"
        s = f"{val:.3g}"
        if "e" not in s:
            s = s.rjust(4)
        return ["", f"{label}: {s} "]

    def _disp_table(self) -> pd.DataFrame:
        from scipy import stats

        fit = self.fit
        est = fit.disp_fixef.to_numpy(dtype=float)
        se = np.full(len(est), np.nan)
        if fit.vcov_full is not None:
            names = [f"disp:{d}" for d in fit.disp_fixef.index]
            try:
                se = np.sqrt(np.diag(fit.vcov_full.loc[names, names].to_numpy(dtype=float)))
            except KeyError:
                pass
        z = est / se
        return pd.DataFrame({"Estimate": est, "Std. Error": se, "z value": z, "Pr(>|z|)": 2 * stats.norm.sf(np.abs(z))},
                            index=list(fit.disp_fixef.index))

    def _message_lines(self) -> list:
        return list(self.fit.messages)

    # - full summaries -
    def _lmm_text(self) -> list:
        fit = self.fit
        lines = []
        table = fit.coef_table_ddf(self.ddf)
        if self.ddf is None or str(self.ddf).lower() == "lme4":
            if fit.reml:
                lines.append("Linear mixed model fit by REML ['lmerMod']")
            else:
                lines.append("Linear mixed model fit by maximum likelihood  ['lmerMod']")
        else:
            # lmerTest's heading, wrapped as R's strwrap prints it
            method = "Satterthwaite's" if str(self.ddf).lower().startswith("s") else "Kenward-Roger's"
            if fit.reml:
                lines += [f"Linear mixed model fit by REML. t-tests use {method} method [", "lmerModLmerTest]"]
            else:
                lines += [f"Linear mixed model fit by maximum likelihood . t-tests use {method}",
                          "  method [lmerModLmerTest]"]
        lines.append(f"Formula: {self._formula}")
        if self._data_name:
            lines.append(f"   Data: {self._data_name}")
        lines.append("")
        if fit.reml:
            lines.append(f"REML criterion at convergence: {_cat_num(round(float(fit.reml_criterion), 1))}")
        else:
            lines += self._aictab_lines()
        lines.append("")
        lines += self._residual_lines()
        lines.append("")
        comps = self._components(formula_order=False)
        lines.append("Random effects:")
        lines += self._varcorr_lines(comps)
        lines.append(self._ngroups_line(comps))
        lines.append("")
        lines.append("Fixed effects:")
        lines += coefmat_lines(table)
        lines += self._fixcorr_lines()
        lines += self._message_lines()
        return lines

    def _glmm_text(self) -> list:
        fit = self.fit
        lines = [self._family_line(), f"Formula:          {self._formula}"]
        # glmmTMB indents the zi and dispersion formulas by the response's width + 2
        pad = " " * (len(deparse_formula(str(self._model.design.response))) + 2)
        zf = getattr(self._model, "zi_formula", None)
        if zf is not None:
            lines.append(f"Zero inflation:  {pad}{deparse_formula(zf)}")
        df = getattr(self._model, "disp_formula", None)
        if df is not None and df.replace(" ", "") not in ("~1", "1"):
            lines.append(f"Dispersion:      {pad}{deparse_formula(df)}")
        if self._data_name:
            lines.append(f"Data: {self._data_name}")
        lines.append("")
        lines += self._aictab_lines()
        lines.append("")
        comps = self._components(formula_order=True)
        zi_comps = self._components(formula_order=True, component="zi")
        if comps or zi_comps:
            lines.append("Random effects:")
            for title, cs, resid in (("Conditional model:", comps, True), ("Zero-inflation model:", zi_comps, False)):
                if cs:
                    lines += ["", title]
                    lines += self._varcorr_lines(cs, residual=resid)
                    lines.append(self._ngroups_line(cs))
        else:
            lines.append(f"Number of obs: {fit.nobs}")
        lines += self._dispersion_lines()
        lines += ["", "Conditional model:"]
        lines += coefmat_lines(fit.coef_table)
        if fit.zi_fixef is not None:
            lines += ["", "Zero-inflation model:"]
            lines += coefmat_lines(fit.component_table("zi"))
        lines += self._message_lines()
        return lines

    def lines(self) -> list:
        """The summary as a list of lines."""
        return self._lmm_text() if self.fit.is_lmm else self._glmm_text()

    def __str__(self):
        return "\n".join(self.lines())

    def __repr__(self):
        return str(self)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))

    # - short print (repr(fit)) -
    def short(self) -> str:
        """Compact description, as lme4's print(merMod)."""
        fit = self.fit
        lines = []
        if fit.is_lmm:
            lines.append("Linear mixed model fit by "
                         + ("REML ['lmerMod']" if fit.reml else "maximum likelihood  ['lmerMod']"))
        else:
            lines.append("Generalized linear mixed model fit by maximum likelihood (Laplace Approximation)")
            lines.append(self._family_line())
        lines.append(f"Formula: {self._formula}")
        if self._data_name:
            lines.append(f"   Data: {self._data_name}")
        if fit.is_lmm and fit.reml:
            lines.append(f"REML criterion at convergence: {_cat_num(round(float(fit.reml_criterion), 4))}")
        else:
            vals = format_r(np.round([fit.aic, fit.bic, fit.loglik, -2.0 * fit.loglik], 4), 7)
            lines += _named_vector(["AIC", "BIC", "logLik", "deviance", "df.resid"],
                                   [v.strip() for v in vals] + [str(int(fit.df_resid))])
        comps = self._components(formula_order=not fit.is_lmm)
        if comps:
            lines.append("Random effects:")
            lines += self._varcorr_lines(comps, variance=False)
        lines.append(self._ngroups_line(comps) if comps else f"Number of obs: {fit.nobs}")
        disp = self._dispersion_lines()
        if len(disp) == 2:
            lines.append(disp[-1].strip())
        lines.append("Fixed Effects:")
        names = [str(n) for n in fit.fixef.index]
        vals = [v.strip() for v in format_r(fit.fixef.to_numpy(dtype=float), _DIGITS)]
        w = [max(len(n), len(v)) for n, v in zip(names, vals)]
        lines.append("  ".join(n.rjust(k) for n, k in zip(names, w)))
        lines.append("  ".join(v.rjust(k) for v, k in zip(vals, w)))
        lines += self._message_lines()
        return "\n".join(lines)

    # - tables -
    def tables(self) -> dict:
        """{"fixed": coefficient table, "random": variance components, "fit": fit statistics}."""
        fit = self.fit
        stats = {
            "nobs": fit.nobs, "df": fit.df, "logLik": fit.loglik, "AIC": fit.aic, "BIC": fit.bic,
            "deviance": fit.deviance if fit.deviance is not None else np.nan, "df.resid": fit.df_resid,
            "REML criterion": fit.reml_criterion if fit.reml else np.nan,
            "converged": fit.converged, "max_grad": fit.max_grad, "singular": fit.is_singular,
        }
        for k, v in fit.dispersion_parameters.items():
            if v is not None:
                stats[k] = v
        out = {"fixed": fit.coef_table.copy(), "random": fit.varcorr.copy(),
               "fit": pd.DataFrame([stats], index=["value"])}
        if fit.disp_fixef is not None and len(fit.disp_fixef) > 1:
            out["dispersion"] = self._disp_table()
        return out
