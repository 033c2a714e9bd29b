"""ruff, configured in pyproject.toml ([tool.ruff]), passes on the package, the tests and the
benchmarks (ruff is in the test extra)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_ruff_passes():
    out = subprocess.run([sys.executable, "-m", "ruff", "check", "glmmjax", "tests", "benchmarks"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
