"""Simulated datasets over the model space glmmjax supports, for differential testing
against lme4 and glmmTMB (the correctness sweep).

Every dataset is a pure function of its id: ``dataset(id)`` regenerates it from a seed
derived from the id, so the datasets are never stored. ``make_manifest.py`` writes the
manifest (one row per dataset: class, design, model, and a checksum of the generated
columns) and ``fit_r.R`` fits each dataset with lme4 1.1-31 or glmmTMB 1.1.5. The
checksum guards against a change in NumPy's random streams: ``dataset`` raises when a
regenerated dataset no longer matches the one R fitted.

A *class* is a model (formula, family, zero-inflation and dispersion formulas, ML or REML)
with a simulator. Each class has designs (number of groups and group sizes, from groups of
one row to a few groups of forty) and, per design, replicates that share the design's
covariates and grouping (so that ``fit_batch`` can fit them together) and differ in the
parameters: random-effect SDs from 0 to large, dispersion from small to large.
"""
from __future__ import annotations

import hashlib
import zlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

# (groups, smallest group, largest group): from groups of one row to a few large groups
DESIGNS = {
    "tiny": (10, 1, 3),
    "small": (25, 2, 6),
    "mixed": (50, 1, 10),
    "few_large": (6, 20, 40),
    "many": (150, 2, 4),
}


@dataclass(frozen=True)
class ModelClass:
    """A model and its simulator. ``params``: one dict of parameters per replicate."""

    name: str
    formula: str
    family: str
    engine: str                     # the R function: lmer, glmer or glmmTMB
    link: str | None = None
    zi: str | None = None
    disp: str | None = None
    reml: bool = False
    structure: str = "one"          # one, crossed, nested
    params: tuple = ()
    designs: tuple = tuple(DESIGNS)
    trials: bool = False            # binomial with cbind(s, n - s)


def _sds(*values):
    return tuple(dict(sd=v) for v in values)


LMM_SD = (0.0, 0.1, 0.4, 1.0, 3.0)          # intercept SD relative to the residual SD
SLOPES = (dict(sd0=0.0, sd1=0.0, rho=0.0), dict(sd0=0.5, sd1=0.0, rho=0.0), dict(sd0=1.0, sd1=0.3, rho=0.5),
          dict(sd0=0.3, sd1=1.0, rho=-0.7), dict(sd0=2.0, sd1=0.5, rho=0.9))
TWO = (dict(sd=0.0, sd2=0.0), dict(sd=0.5, sd2=0.0), dict(sd=0.0, sd2=0.8), dict(sd=0.3, sd2=0.3),
       dict(sd=2.0, sd2=1.0))
GLMM_SD = (0.0, 0.05, 0.3, 0.8, 2.0)

CLASSES = {c.name: c for c in [
    ModelClass("lmm_int_ml", "y ~ x + (1|g)", "gaussian", "lmer", params=_sds(*LMM_SD)),
    ModelClass("lmm_int_reml", "y ~ x + (1|g)", "gaussian", "lmer", reml=True, params=_sds(*LMM_SD)),
    ModelClass("lmm_slope_ml", "y ~ x + (x|g)", "gaussian", "lmer", params=SLOPES),
    ModelClass("lmm_slope_reml", "y ~ x + (x|g)", "gaussian", "lmer", reml=True, params=SLOPES),
    ModelClass("lmm_indep_reml", "y ~ x + (x||g)", "gaussian", "lmer", reml=True, params=SLOPES),
    ModelClass("lmm_crossed_ml", "y ~ x + (1|g) + (1|h)", "gaussian", "lmer", structure="crossed", params=TWO),
    ModelClass("lmm_crossed_reml", "y ~ x + (1|g) + (1|h)", "gaussian", "lmer", reml=True, structure="crossed",
               params=TWO),
    ModelClass("lmm_nested_reml", "y ~ x + (1|g/h)", "gaussian", "lmer", reml=True, structure="nested", params=TWO),
    ModelClass("pois_int", "y ~ x + (1|g)", "poisson", "glmer", params=_sds(*GLMM_SD)),
    ModelClass("pois_slope", "y ~ x + (x|g)", "poisson", "glmer", params=SLOPES),
    ModelClass("pois_crossed", "y ~ x + (1|g) + (1|h)", "poisson", "glmer", structure="crossed", params=TWO),
    ModelClass("binom01_int", "y ~ x + (1|g)", "binomial", "glmer", params=_sds(0.0, 0.1, 0.5, 1.2, 3.0)),
    ModelClass("binom_cbind_int", "cbind(y, n - y) ~ x + (1|g)", "binomial", "glmer", trials=True,
               params=_sds(0.0, 0.1, 0.5, 1.2, 3.0)),
    ModelClass("nb2_int", "y ~ x + (1|g)", "nbinom2", "glmmTMB",
               params=tuple(dict(sd=s, theta=t) for s, t in zip(GLMM_SD, (0.5, 1.0, 2.0, 5.0, 50.0)))),
    ModelClass("gamma_int", "y ~ x + (1|g)", "Gamma", "glmmTMB", link="log",
               params=tuple(dict(sd=s, shape=k) for s, k in zip(GLMM_SD, (0.5, 2.0, 5.0, 1.0, 20.0)))),
    ModelClass("beta_int", "y ~ x + (1|g)", "beta", "glmmTMB",
               params=tuple(dict(sd=s, phi=f) for s, f in zip(GLMM_SD, (2.0, 10.0, 50.0, 5.0, 20.0)))),
    ModelClass("zip_int", "y ~ x + (1|g)", "poisson", "glmmTMB", zi="~1",
               params=tuple(dict(sd=s, zi=z) for s, z in zip(GLMM_SD, (0.2, 0.05, 0.3, 0.0, 0.5)))),
    ModelClass("zinb2_int", "y ~ x + (1|g)", "nbinom2", "glmmTMB", zi="~1",
               params=tuple(dict(sd=s, zi=z, theta=t) for s, z, t in
                            zip((0.3, 0.5, 0.8, 0.0, 1.2), (0.2, 0.2, 0.2, 0.1, 0.3), (1.0, 2.0, 3.0, 1.5, 5.0))),
               designs=("zinb_20", "zinb_30", "zinb_40", "small", "few_large")),
    ModelClass("gauss_disp", "y ~ x + (1|g)", "gaussian", "glmmTMB", disp="~x",
               params=tuple(dict(sd=s, dslope=d)
                            for s, d in zip((0.0, 0.2, 0.6, 1.0, 3.0), (0.5, -0.3, 0.8, 0.0, 0.4)))),
    ModelClass("nb2_disp", "y ~ x + (1|g)", "nbinom2", "glmmTMB", disp="~x",
               params=tuple(dict(sd=s, theta=t, dslope=d) for s, t, d in
                            zip(GLMM_SD, (1.0, 2.0, 5.0, 1.0, 3.0), (0.5, -0.5, 0.3, 0.0, 0.8)))),
]}

# the zero-inflated NB2 family that once ran its zi intercept to an asymptote: 20-40
# groups, 20% structural zeros
DESIGNS.update({"zinb_20": (20, 3, 8), "zinb_30": (30, 3, 8), "zinb_40": (40, 3, 8)})

# The random-intercept family: 60 datasets, 20-100 groups of 2-6 rows, x ~ N(0, 1),
# intercept SD 0.2-1.2, residual SD 1-4, each with its own design; fitted by ML and REML.
RI60 = 60


def _seed(*parts) -> int:
    return zlib.crc32("/".join(str(p) for p in parts).encode())


def dataset_ids() -> list:
    """Every dataset of the sweep: ``class/design/replicate`` and ``ri60_{ml,reml}/i``."""
    ids = [f"{c.name}/{d}/{r}" for c in CLASSES.values() for d in c.designs for r in range(len(c.params))]
    return ids + [f"ri60_{m}/{i}" for m in ("ml", "reml") for i in range(RI60)]


@dataclass
class Dataset:
    id: str
    cls: ModelClass
    design: str
    data: pd.DataFrame
    truth: dict = field(default_factory=dict)

    @property
    def batch_key(self) -> str:
        """Datasets with the same key share X and the grouping (fit_batch fits them together)."""
        return f"{self.cls.name}/{self.design}"


def _groups(rng, m, lo, hi):
    sizes = rng.integers(lo, hi + 1, m)
    return np.repeat(np.arange(m), sizes)


def _labels(prefix, codes, width=3):
    return np.array([f"{prefix}{c:0{width}d}" for c in codes])


def _design(cls: ModelClass, design: str) -> dict:
    """The covariates and grouping of a design (shared by its replicates)."""
    rng = np.random.default_rng(_seed("design", cls.name, design))
    m, lo, hi = DESIGNS[design]
    if cls.structure == "nested":
        # each g has 2-4 subgroups h, each with lo..hi rows (lo at least 1)
        sub = rng.integers(2, 5, m)
        h_of = np.repeat(np.arange(sub.sum()), rng.integers(max(lo, 1), max(hi // 2, 2) + 1, sub.sum()))
        g_of_h = np.repeat(np.arange(m), sub)
        g, h = g_of_h[h_of], h_of - np.repeat(np.cumsum(sub) - sub, sub)[h_of]   # h numbered within g
        gh = h_of
    else:
        g = _groups(rng, m, lo, hi)
        h = rng.integers(0, max(3, min(12, m // 3 + 2)), g.size) if cls.structure == "crossed" else None
        gh = h
    n = g.size
    out = dict(g=g, x=rng.normal(size=n), n=n)
    if h is not None:
        out["h"], out["gh"] = h, gh
    if cls.trials:
        out["trials"] = rng.integers(1, 21, n)
    return out


def _simulate(cls: ModelClass, des: dict, par: dict, rng) -> pd.DataFrame:
    g, x, n = des["g"], des["x"], des["n"]
    m = g.max() + 1
    b = rng.normal(0.0, 1.0, m) * par.get("sd", 0.0)
    if "sd0" in par:      # correlated intercept and slope
        z = rng.normal(size=(m, 2))
        b0 = par["sd0"] * z[:, 0]
        b1 = par["sd1"] * (par["rho"] * z[:, 0] + np.sqrt(1 - par["rho"] ** 2) * z[:, 1])
        re = b0[g] + b1[g] * x
    else:
        re = b[g]
    if "h" in des:
        mh = des["gh"].max() + 1
        re = re + rng.normal(0.0, 1.0, mh)[des["gh"]] * par.get("sd2", 0.0)
    data = dict(x=x, g=_labels("g", g))
    if "h" in des:
        data["h"] = _labels("h", des["h"] if cls.structure == "crossed" else des["h"], width=2)
    fam = cls.family
    if fam == "gaussian":
        sigma = np.exp(0.3 + par.get("dslope", 0.0) * x) if cls.disp else 1.0
        y = 1.0 + 0.5 * x + re * (1.0 if cls.disp else 1.0) + rng.normal(0.0, 1.0, n) * sigma
    elif fam == "poisson":
        y = rng.poisson(np.exp(0.5 + 0.3 * x + re)).astype(float)
    elif fam == "nbinom2":
        mu = np.exp(0.7 + 0.3 * x + re)
        theta = par["theta"] * (np.exp(par.get("dslope", 0.0) * x) if cls.disp else 1.0)
        y = rng.negative_binomial(theta, theta / (theta + mu)).astype(float)
    elif fam == "binomial":
        p = 1.0 / (1.0 + np.exp(-(-0.3 + 0.8 * x + re)))
        if cls.trials:
            data["n"] = des["trials"]
            y = rng.binomial(des["trials"], p).astype(float)
        else:
            y = rng.binomial(1, p).astype(float)
    elif fam == "Gamma":
        mu = np.exp(1.0 + 0.3 * x + re)
        y = rng.gamma(par["shape"], mu / par["shape"])
    elif fam == "beta":
        mu = 1.0 / (1.0 + np.exp(-(0.2 + 0.5 * x + re)))
        y = np.clip(rng.beta(mu * par["phi"], (1 - mu) * par["phi"]), 1e-6, 1 - 1e-6)
    else:
        raise ValueError(fam)
    if cls.zi:
        y = np.where(rng.uniform(size=n) < par["zi"], 0.0, y)
    data["y"] = y
    return pd.DataFrame(data)


def _ri60(method: str, i: int) -> Dataset:
    rng = np.random.default_rng(_seed("ri60", i))      # ML and REML fit the same 60 datasets
    m = int(rng.integers(20, 101))
    g = _groups(rng, m, 2, 6)
    n = g.size
    x = rng.normal(size=n)
    sb, se = rng.uniform(0.2, 1.2), rng.uniform(1.0, 4.0)
    y = 1.0 + 0.5 * x + rng.normal(0.0, sb, m)[g] + rng.normal(0.0, se, n)
    cls = ModelClass(f"ri60_{method}", "y ~ x + (1|g)", "gaussian", "lmer", reml=method == "reml")
    return Dataset(f"ri60_{method}/{i}", cls, f"ri60_{i}", pd.DataFrame(dict(x=x, g=_labels("g", g), y=y)),
                   dict(sd=sb, sigma=se))


def generate(id: str) -> Dataset:
    """The dataset ``id`` (see dataset_ids), without checking it against the manifest."""
    parts = id.split("/")
    if parts[0].startswith("ri60_"):
        return _ri60(parts[0][5:], int(parts[1]))
    cls, design, rep = CLASSES[parts[0]], parts[1], int(parts[2])
    des = _design(cls, design)
    par = cls.params[rep]
    data = _simulate(cls, des, par, np.random.default_rng(_seed("response", id)))
    return Dataset(id, cls, design, data, dict(par))


def checksum(df: pd.DataFrame) -> str:
    """A digest of the columns as R reads them (17 significant digits)."""
    text = df.to_csv(index=False, float_format="%.17g")
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def model_row(ds: Dataset) -> dict:
    c = ds.cls
    return dict(id=ds.id, cls=c.name, design=ds.design, engine=c.engine, formula=c.formula, family=c.family,
                link=c.link or "", zi=c.zi or "", disp=c.disp or "", reml=int(c.reml), nobs=len(ds.data),
                checksum=checksum(ds.data))
