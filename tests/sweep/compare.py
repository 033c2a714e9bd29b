"""glmmjax against R on the sweep's datasets (tests/sweep/README.md).

``run(ids)`` fits each dataset with glmmjax (single fits, and ``fit_batch`` over the
replicates that share a design) and puts the results beside R's (r_results.csv);
``summary`` counts, per model class, the fits at least as good as R's.

A fit is *at least as good* as R's when its log-likelihood (REML fits: the REML
log-likelihood) is at least R's minus 1e-6 relative. R's log-likelihood at its own
optimum is a lower bound of the maximum, so "at least as good" is the test (a higher
value is R stopping short, not a glmmjax error).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from .generate import Dataset, checksum, generate

HERE = Path(__file__).resolve().parent
REL_TOL = 1e-6          # "at least as good": logLik >= R's - REL_TOL |R's|
BATCH_TOL = 1e-6        # fit_batch against the single fit of the same dataset (relative logLik)


def manifest() -> pd.DataFrame:
    return pd.read_csv(HERE / "manifest.csv", keep_default_na=False).set_index("id")


def r_results() -> pd.DataFrame:
    res = pd.read_csv(HERE / "r_results.csv", keep_default_na=False).set_index("id")
    res["r_loglik"] = pd.to_numeric(res["r_loglik"], errors="coerce")
    return res


def load(id: str, man: pd.DataFrame | None = None) -> Dataset:
    """The dataset ``id``, checked against the manifest (the data R fitted)."""
    man = manifest() if man is None else man
    ds = generate(id)
    want = man.loc[id, "checksum"]
    if checksum(ds.data) != want:
        raise RuntimeError(
            f"dataset {id} no longer matches the one R fitted (checksum {checksum(ds.data)} != {want}): "
            "NumPy's random streams or the generator changed; rerun tests/sweep/make_references.py")
    return ds


def model_of(ds: Dataset):
    import glmmjax as gj

    c = ds.cls
    fam = gj.families.get_family(c.family, c.link) if c.link else c.family
    reml = c.reml if c.engine == "lmer" else False
    return gj.GLMM(c.formula, ds.data, family=fam, zi=c.zi, disp=c.disp, reml=reml)


def fit_one(ds: Dataset, model=None) -> dict:
    """glmmjax's fit of a dataset: log-likelihood, convergence, singularity and messages."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = model_of(ds) if model is None else model
            fit = model.fit()
    except Exception as e:   # a refusal (e.g. as many random effects as rows) is a result too
        return dict(j_loglik=np.nan, j_converged=False, j_singular=False, j_iterations=0,
                    j_error=f"{type(e).__name__}: {e}"[:200], j_messages="")
    return dict(j_loglik=fit.loglik, j_converged=fit.converged, j_singular=fit.is_singular,
                j_iterations=fit.iterations, j_error="", j_messages=" | ".join(fit.messages)[:200])


def fit_group(ids: list, batch: bool = True, strategy: str = "auto") -> pd.DataFrame:
    """Single fits of ``ids`` (replicates of one design) and, with ``batch``, one fit_batch
    of all of them on the first one's model (with ``strategy``)."""
    man = manifest()
    rows, sets = [], [load(i, man) for i in ids]
    model = None
    for ds in sets:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = model_of(ds)
            if model is None:
                model = m
        except Exception:
            m = None
        rows.append(dict(id=ds.id, cls=ds.cls.name, **fit_one(ds, m)))
    out = pd.DataFrame(rows).set_index("id")
    out["j_batch_loglik"] = np.nan
    if batch and model is not None and len(sets) > 1:
        Y = np.stack([np.asarray(_response(model, ds), float) for ds in sets])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bf = model.fit_batch(Y, strategy=strategy)
        out["j_batch_loglik"] = bf.loglik
        out["j_batch_converged"] = bf.converged
    return out


def _response(model, ds: Dataset):
    """The response of ``ds`` as ``model`` (built on a dataset of the same design) holds it."""
    col = model.design.response
    if col.startswith("cbind("):
        col = col[len("cbind("):].split(",")[0].strip()
    return ds.data[col].to_numpy()[np.asarray(model.design.positions)]


def groups(ids: list) -> list:
    """ids grouped by design (the replicates fit_batch fits together), in order."""
    out: dict = {}
    for i in ids:
        key = i.rsplit("/", 1)[0] if not i.startswith("ri60_") else i
        out.setdefault(key, []).append(i)
    return list(out.values())


def judge(table: pd.DataFrame) -> pd.DataFrame:
    """Adds R's results and the verdicts: ``status`` (as_good, worse, r_failed, both_failed,
    j_failed) and ``deficit`` (R's logLik minus glmmjax's, relative to |R's|)."""
    r = r_results().reindex(table.index)
    t = table.join(r)
    rel = (t.r_loglik - t.j_loglik) / t.r_loglik.abs()
    t["deficit"] = rel
    status = np.where(t.r_loglik.isna() & t.j_loglik.isna(), "both_failed",
                      np.where(t.r_loglik.isna(), "r_failed",
                               np.where(t.j_loglik.isna(), "j_failed",
                                        np.where(rel <= REL_TOL, "as_good", "worse"))))
    t["status"] = status
    if "j_batch_loglik" in t:
        t["batch_diff"] = (t.j_batch_loglik - t.j_loglik).abs() / t.j_loglik.abs()
    return t


def summary(t: pd.DataFrame) -> pd.DataFrame:
    """Per model class: datasets, R's failures and warnings, fits at least as good as R's,
    worse ones (and where R was clean), the largest deficit, non-converged glmmjax fits and
    fit_batch mismatches."""
    rows = []
    for cls, g in t.groupby("cls", sort=False):
        clean = (g.r_warned == 0) & g.r_loglik.notna()
        worse = g.status == "worse"
        bad_batch = (g.batch_diff > BATCH_TOL).sum() if "batch_diff" in g else 0
        rows.append(dict(
            cls=cls, datasets=len(g), r_failed=int(g.r_loglik.isna().sum()), r_warned=int((g.r_warned == 1).sum()),
            j_refused=int(g.j_loglik.isna().sum()),
            as_good=int((g.status == "as_good").sum()), worse=int(worse.sum()),
            worse_converged_r_clean=int((worse & clean & g.j_converged.astype(bool)).sum()),
            max_deficit=float(g.deficit[worse].max()) if worse.any() else 0.0,
            better_by_1e4=int((g.deficit < -1e-4).sum()),
            j_not_converged=int((~g.j_converged.astype(bool) & g.j_loglik.notna()).sum()),
            batch_mismatch=int(bad_batch)))
    return pd.DataFrame(rows).set_index("cls")
