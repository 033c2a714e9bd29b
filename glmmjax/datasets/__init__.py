"""Bundled example datasets, with R's column types and factor level order.

``load(name)`` returns a pandas DataFrame. Factor columns are pandas Categoricals whose
categories are in R's level order (the first is the reference level); R's ordered factors
are ordered Categoricals; R integers are int64 and numerics float64.

Datasets (see ``describe(name)`` for each one's source):
    grouseticks   lme4::grouseticks   tick counts on red grouse chicks
    Arabidopsis   lme4::Arabidopsis   fruit counts of Arabidopsis thaliana (gen, rack,
                                      nutrient stay integers, as lme4 ships them)
    Exam          mlmRev::Exam        exam scores of 4059 students in 65 schools
    sleepstudy    lme4::sleepstudy    reaction times under sleep deprivation
    cbpp          lme4::cbpp          contagious bovine pleuropneumonia incidence by herd
    petrol        MASS::petrol        Prater's gasoline yield data (yield = Y / 100)
    seeds         Crowder (1978)      Orobanche seed germination on bean and cucumber
                                      extract, 21 plates (germ of n), a 2 x 2 factorial
    fungicide     simulated           beta-distributed disease severity in a fungicide
                                      trial, 4 treatments in 8 blocks (seed 20240611)
"""
from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import numpy as np
import pandas as pd

__all__ = ["load", "names", "describe"]

_DATA = resources.files(__name__) / "data"


def names() -> list:
    """The names of the bundled datasets."""
    return sorted(p.name[:-5] for p in _DATA.iterdir() if p.name.endswith(".json"))


def _canonical(name: str) -> str:
    lookup = {n.lower(): n for n in names()}
    try:
        return lookup[name.lower()]
    except KeyError:
        raise ValueError(f"Unknown dataset {name!r}; the bundled datasets are {names()}") from None


def describe(name: str) -> dict:
    """Source, preparation and column types of a bundled dataset."""
    with (_DATA / f"{_canonical(name)}.json").open() as fh:
        return json.load(fh)


@lru_cache(maxsize=None)
def _load(name: str) -> pd.DataFrame:
    meta = describe(name)
    with (_DATA / meta["file"]).open() as fh:
        df = pd.read_csv(fh, dtype=str, keep_default_na=False, na_values=["NA"])
    for col in meta["columns"]:
        c, kind = col["name"], col["type"]
        if kind in ("factor", "ordered"):
            df[c] = pd.Categorical(df[c], categories=col["levels"], ordered=(kind == "ordered"))
        elif kind == "integer":
            df[c] = df[c].astype(np.int64)
        elif kind == "numeric":
            df[c] = df[c].astype(np.float64)
        elif kind == "logical":
            df[c] = df[c].map({"TRUE": True, "FALSE": False})
    return df


def load(name: str) -> pd.DataFrame:
    """Load a bundled dataset as a DataFrame (a fresh copy each call).

    Arguments:
        name: one of ``names()``, case-insensitive ("grouseticks", "sleepstudy", ...).
    """
    return _load(_canonical(name)).copy()
