"""Reading the R reference fits in tests/fixtures/reference (made by make_refs.R there)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

import glmmjax as gj

REF_DIR = Path(__file__).resolve().parent / "fixtures" / "reference"


@lru_cache(maxsize=None)
def load_reference(ref_id: str) -> dict:
    with open(REF_DIR / f"{ref_id}.json") as fh:
        return json.load(fh)


def zi_formula(ref: dict):
    """The zero-inflation formula of a reference model, or None."""
    zi = ref["formula"].get("zi")
    return None if zi is None or zi.replace(" ", "") in ("~0", "") else zi


def reference_ids() -> list:
    return [p.stem for p in sorted(REF_DIR.glob("*.json"))]


def family_of(ref: dict) -> str:
    """glmmjax's family name for a reference model (glmer.nb is nbinom2)."""
    return ref["family_canonical"]


def fit_reference(ref: dict):
    data = gj.datasets.load(ref["dataset"][:-4])
    fam = family_of(ref)
    reml = bool(ref["REML"]) if fam == "gaussian" else None
    return gj.glmm(ref["formula"]["cond"], data, family=fam, reml=reml, zi=zi_formula(ref))


def fixed_table(ref: dict, key: str = "fixed_effects"):
    tab = ref[key]
    return [e["term"] for e in tab], np.array([e["estimate"] for e in tab]), np.array([e["std_error"] for e in tab])


def random_sds(ref: dict, component: str = "cond") -> dict:
    """(grouping factor, term) -> SD, over the blocks of the conditional (or "zi") model."""
    out = {}
    for blk in ref["random_effects"]:
        if blk["component"] != component:
            continue
        for term, sd in zip(blk["terms"], blk["std_dev"]):
            out[(blk["grouping_factor"], term)] = sd
    return out


def tmb_parameters(ref: dict, model) -> np.ndarray:
    """glmmTMB's optimum (tmb_par) as glmmjax's flat parameter vector.

    glmmTMB's theta (thetazi for the zero-inflation model) holds each scalar random-effect
    term's log-SD in formula order; glmmjax's theta holds the Cholesky entry (the SD itself)
    per block, largest block first.
    """
    names = ref["tmb_par"]["names"]
    vals = np.array(ref["tmb_par"]["values"], dtype=float)
    pick = lambda nm: vals[[i for i, n in enumerate(names) if n == nm]]
    beta, betad, betazi, theta = pick("beta"), pick("betad"), pick("betazi"), pick("theta")
    groups = [b["grouping_factor"] for b in ref["random_effects"] if b["component"] == "cond"]
    for b in ref["random_effects"]:
        if len(b["terms"]) != 1:
            raise NotImplementedError("tmb_parameters handles scalar random-effect terms only")
    sd = {("cond", g): s for g, s in zip(groups, np.exp(theta))}
    zi_groups = [b["grouping_factor"] for b in ref["random_effects"] if b["component"] == "zi"]
    sd.update({("zi", g): s for g, s in zip(zi_groups, np.exp(pick("thetazi")))})
    our_theta = np.array([sd[(b.component, b.group)] for b in model.blocks])
    return np.concatenate([beta, our_theta, betad, betazi])
