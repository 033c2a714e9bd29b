"""Shared helpers of the benchmark scripts: reference models, R's timings, tables."""
from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_DIR = ROOT / "tests" / "fixtures" / "reference"
EXTRA_DIR = ROOT / "tests" / "fixtures" / "reference_extra"
R_TIMES = ROOT / "benchmarks" / "r" / "r_times.csv"


def references(zero_inflated=False):
    out = []
    for p in sorted(REF_DIR.glob("*.json")):
        ref = json.loads(p.read_text())
        zi = (ref["formula"].get("zi") or "~0").replace(" ", "") not in ("~0", "")
        if zi == zero_inflated:
            out.append(ref)
    return out


def glmmjax_call(ref) -> tuple:
    """(formula, dataset, family, reml) of a reference model."""
    fam = ref["family_canonical"]
    reml = bool(ref["REML"]) if fam == "gaussian" else None
    return ref["formula"]["cond"], ref["dataset"][:-4], fam, reml


def tmb_reference_paths() -> list:
    """The glmmTMB reference JSONs of the zero-inflation / hurdle / dispersion / extra-family
    kind: reference/*tmb*.json, reference_extra/*.json and reference_extra/<any folder>/*.json
    (sub-folders are globbed, so new ones are picked up as they appear)."""
    return (sorted(REF_DIR.glob("*tmb*.json")) + sorted(EXTRA_DIR.glob("*.json"))
            + sorted(EXTRA_DIR.glob("*/*.json")))


def _optional_formula(f, trivial):
    """A zi / disp formula, or None when it is one of ``trivial`` (glmmTMB's defaults)."""
    if f is None or f.replace(" ", "") in trivial:
        return None
    return f


@dataclass(frozen=True)
class TmbModel:
    """A glmmTMB reference JSON as glmmjax's model arguments (as tests/test_reference_zi_disp_families.py
    and tests/test_family_hurdle_lognormal_zigamma_betabinomial.py build them): the conditional formula, the family with
    the JSON's link (a ziGamma call is glmmjax's ziGamma family), the zi formula (None for
    ~0) and the disp formula (None for ~1), ML; the data are the bundled dataset, or the
    simulated CSV next to the JSON when ``dataset_location`` names the JSON's folder."""

    id: str
    path: Path
    ref: dict
    formula: str
    family: str
    link: str
    zi: str | None
    disp: str | None
    reml: bool

    @classmethod
    def from_json(cls, path):
        """The model of a reference JSON, or None for a JSON that records no model fit (a
        density grid, say: no formula or no family)."""
        path = Path(path)
        ref = json.loads(path.read_text())
        if not (ref.get("formula") or {}).get("cond") or not ref.get("family_canonical") or not ref.get("dataset"):
            return None
        fam = ref["family_canonical"]
        if re.search(r"\bziGamma\s*\(", ref.get("call") or ""):
            fam = "ziGamma"    # glmmTMB reports ziGamma's family as "Gamma"
        f = ref["formula"]
        return cls(ref["id"], path, ref, f["cond"], fam, ref.get("link"), _optional_formula(f.get("zi"), ("~0", "")),
                   _optional_formula(f.get("disp"), ("~1", "")), bool(ref.get("REML", False)))

    @property
    def local_csv(self) -> bool:
        """Whether the data are a CSV next to the JSON (simulated data) rather than bundled."""
        return self.ref.get("dataset_location", "glmmjax") != "glmmjax"

    def data(self):
        import pandas as pd

        import glmmjax as gj

        if self.local_csv:
            return pd.read_csv(self.path.parent / self.ref["dataset"])
        return gj.datasets.load(self.ref["dataset"][:-4])

    def glmm_family(self):
        """The glmmjax Family (ValueError when glmmjax does not know the family)."""
        from glmmjax.families import get_family

        return get_family(self.family, self.link)

    def model(self, data=None):
        """The glmmjax model (gj.GLMM) of the reference."""
        import glmmjax as gj

        return gj.GLMM(self.formula, self.data() if data is None else data, family=self.glmm_family(),
                       zi=self.zi, disp=self.disp, reml=self.reml)

    @property
    def r_recorded_s(self):
        """The R fit time recorded in the JSON when it was made (min over its runs), or None."""
        times = self.ref.get("wall_times_s") or ([self.ref["wall_time_s"]] if self.ref.get("wall_time_s") else [])
        return min(times) if times else None


def r_times() -> dict:
    if not R_TIMES.exists():
        return {}
    with open(R_TIMES) as fh:
        return {row["id"]: row for row in csv.DictReader(fh)}


def best_of(fn, repeats=5):
    """Minimum wall time of fn() over repeats (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def table(rows, headers):
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(headers)]
    line = lambda r: "  ".join(str(v).rjust(w) for v, w in zip(r, widths))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
