"""Warm fit times of the reference models at two versions of glmmjax, side by side.

    python benchmarks/ab_reference.py BEFORE_DIR [AFTER_DIR] [--runs 5] [--only REGEX]

BEFORE_DIR and AFTER_DIR are checkouts (``git worktree add /tmp/before <commit>``; AFTER_DIR
defaults to this checkout). Each run is ``bench_reference.py --no-process`` (every model's
best of 5 warm ``gj.glmm`` calls) in a fresh process, alternating the two versions so that
the machine's drift hits both; the table gives per model the median over the runs of each
version and their ratio (after / before). "No slower" is a ratio within 1.10.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(tree: str, only: str) -> dict:
    cmd = [sys.executable, os.path.join(tree, "benchmarks", "bench_reference.py"), "--no-process"]
    if only:
        cmd += ["--only", only]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=tree,
                         env=dict(os.environ, PYTHONPATH=tree))
    times = {}
    for line in out.stderr.splitlines():
        m = re.match(r"\['([^']+)', '[^']*', '[^']*', '([0-9.]+)'", line)
        if m:
            times[m.group(1)] = float(m.group(2))
    return times


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", default=os.path.dirname(HERE))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    before, after = {}, {}
    for i in range(args.runs):
        for tree, store in ((args.before, before), (args.after, after)):
            for k, v in run(tree, args.only).items():
                store.setdefault(k, []).append(v)
        print(f"run {i + 1}/{args.runs} done", file=sys.stderr, flush=True)
    print(f"{'model':<38} {'before s':>9} {'after s':>9} {'ratio':>6}")
    ratios = []
    for k in before:
        b, a = statistics.median(before[k]), statistics.median(after.get(k, [float("nan")]))
        ratios.append(a / b)
        print(f"{k:<38} {b:9.4f} {a:9.4f} {a / b:6.2f}")
    print(f"\nmedians of {args.runs} runs per version; ratios {min(ratios):.2f}-{max(ratios):.2f}, "
          f"median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
