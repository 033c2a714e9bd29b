"""Shared helpers of the benchmark scripts: reference models, R's timings, tables."""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REF_DIR = ROOT / "tests" / "fixtures" / "reference"
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
