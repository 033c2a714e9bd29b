"""Writes the sweep's manifest and fits every dataset in R (tests/sweep/README.md).

    python tests/sweep/make_references.py [--only PREFIX]

Needs R with lme4 1.1-31 and glmmTMB 1.1.5. Writes tests/sweep/manifest.csv and
tests/sweep/r_results.csv (both committed); the datasets themselves go to a temporary
directory (each is regenerated from its id by generate.py).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sweep.generate import dataset_ids, generate, model_row  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="",
                    help="refit only the datasets whose id starts with this (merged into the table)")
    args = ap.parse_args()
    ids = [i for i in dataset_ids() if i.startswith(args.only)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in ids:
            ds = generate(i)
            ds.data.to_csv(Path(tmp) / (i.replace("/", "__") + ".csv"), index=False, float_format="%.17g")
            rows.append(model_row(ds))
        man = pd.DataFrame(rows)
        man.to_csv(Path(tmp) / "manifest.csv", index=False)
        out = Path(tmp) / "r_results.csv"
        subprocess.run(["Rscript", str(HERE / "fit_r.R"), tmp, str(Path(tmp) / "manifest.csv"), str(out)], check=True)
        res = pd.read_csv(out, keep_default_na=False)
    if args.only:
        old_man = pd.read_csv(HERE / "manifest.csv", keep_default_na=False)
        old_res = pd.read_csv(HERE / "r_results.csv", keep_default_na=False)
        man = pd.concat([old_man[~old_man.id.isin(man.id)], man])
        res = pd.concat([old_res[~old_res.id.isin(res.id)], res])
        order = {k: j for j, k in enumerate(dataset_ids())}
        man = man.sort_values("id", key=lambda s: s.map(order))
        res = res.sort_values("id", key=lambda s: s.map(order))
    man.to_csv(HERE / "manifest.csv", index=False)
    res.to_csv(HERE / "r_results.csv", index=False)
    print(f"{len(ids)} datasets written and fitted")


if __name__ == "__main__":
    main()
