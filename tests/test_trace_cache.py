"""glmmjax's trace cache (glmmjax/_trace_cache.py).

With JAX's persistent compilation cache on, a fresh process reads the fit's traced
computations from disk instead of tracing them again. The computation read back gives the
same fit as the one traced in the process.
"""
import json
import os
import subprocess
import sys
import warnings
from dataclasses import dataclass

import numpy as np
import pytest

import glmmjax as gj
from glmmjax import _trace_cache as tc
from glmmjax.families import Poisson

CBPP = ("cbind(incidence, size - incidence) ~ period + (1|herd)", "cbpp", "binomial")

SCRIPT = r"""
import json, sys, warnings
import jax
jax.config.update("jax_compilation_cache_dir", sys.argv[1])
import glmmjax as gj
from glmmjax.fit._post import fit_and_post
warnings.simplefilter("ignore")
f = gj.glmm(sys.argv[2], gj.datasets.load(sys.argv[3]), family=sys.argv[4])
print(json.dumps(dict(loglik=f.loglik, fixef=f.fixef.tolist(), se=f.se.tolist(), theta=f.theta.tolist(),
                      traced=fit_and_post._cache_size())))
"""


def _fresh_process_fit(cache_dir, formula, dataset, family):
    env = dict(os.environ)
    env.pop("GLMMJAX_TRACE_CACHE", None)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(cache_dir), formula, dataset, family],
                         check=True, capture_output=True, text=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    cache = tmp_path_factory.mktemp("jax_cache")
    first = _fresh_process_fit(cache, *CBPP)
    files = sorted(p.name.split("-")[0] for p in (cache / "glmmjax-traces").iterdir())
    second = _fresh_process_fit(cache, *CBPP)
    return first, files, second


def test_a_fresh_process_reads_the_fit_instead_of_tracing_it(two_processes):
    first, files, second = two_processes
    assert files == ["fit_and_post"]
    assert first["traced"] == 0        # the first process traced for jax.export, not by calling the jit
    assert second["traced"] == 0
    for k in ("loglik", "fixef", "se", "theta"):
        np.testing.assert_array_equal(second[k], first[k])


def test_the_cached_computation_equals_the_traced_one(two_processes, monkeypatch):
    first, _, _ = two_processes
    monkeypatch.setenv("GLMMJAX_TRACE_CACHE", "0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = gj.glmm(CBPP[0], gj.datasets.load(CBPP[1]), family=CBPP[2])
    np.testing.assert_allclose(first["loglik"], f.loglik, rtol=1e-12)
    np.testing.assert_allclose(first["fixef"], f.fixef.to_numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(first["se"], f.se.to_numpy(), rtol=1e-7)
    np.testing.assert_allclose(first["theta"], f.theta, rtol=1e-9)


@dataclass(frozen=True, repr=False)
class MyPoisson(Poisson):
    """A user's family: its code is not in glmmjax's source digest."""


def test_static_arguments_are_described_field_by_field_or_not_cached():
    d = gj.datasets.load("sleepstudy")
    a = gj.GLMM("Reaction ~ Days + (Days|Subject)", d).spec
    b = gj.GLMM("Reaction ~ Days + (Days|Subject)", d.iloc[::-1]).spec
    ml = gj.GLMM("Reaction ~ Days + (Days|Subject)", d, reml=False).spec
    assert tc.describe(a) == tc.describe(b)
    assert tc.describe(a) != tc.describe(ml)
    assert "reml=True" in tc.describe(a) and "glmmjax.families._gaussian.Gaussian(link=" in tc.describe(a)
    assert tc.describe(dict(x=0.1)) == "{'x':" + float.hex(0.1) + "}"
    assert tc.describe(lambda x: x) is None
    g = gj.datasets.load("grouseticks")
    assert tc.describe(gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", g, family=MyPoisson()).spec) is None
    assert tc.describe(gj.GLMM("TICKS ~ YEAR + (1|LOCATION)", g, family="poisson").spec) is not None


def _fit(formula, d, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gj.glmm(formula, d, **kw)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_damaged_file_is_removed_with_a_warning_and_replaced(tmp_path, monkeypatch, damage):
    monkeypatch.setattr(tc, "_directory", lambda: tmp_path)
    monkeypatch.setattr(tc, "_memo", {})
    d = gj.datasets.load("sleepstudy")
    f1 = _fit("Reaction ~ Days + (1|Subject)", d)
    (path,) = sorted(tmp_path.iterdir())
    assert path.name.startswith("fit_and_post-")
    good = path.read_bytes()
    path.write_bytes(b"not a jax.export artefact" if damage == "garbage" else good[: len(good) // 2])
    tc._memo.clear()
    with pytest.warns(gj.GlmmjaxWarning, match="trace cache file .* is damaged or holds another computation"):
        f2 = gj.glmm("Reaction ~ Days + (1|Subject)", d)
    assert f2.loglik == f1.loglik
    np.testing.assert_array_equal(f2.fixef, f1.fixef)
    key = path.name[len("fit_and_post-"):-len(".jaxexp")]
    assert tc._read(path, key) is not None       # traced again and written again, whole


def test_another_models_artefact_under_this_name_is_not_run(tmp_path, monkeypatch):
    # REML and ML fits of one design: the same shapes, different computations
    monkeypatch.setattr(tc, "_directory", lambda: tmp_path)
    monkeypatch.setattr(tc, "_memo", {})
    d = gj.datasets.load("sleepstudy")
    reml = _fit("Reaction ~ Days + (1|Subject)", d)
    (reml_path,) = sorted(tmp_path.iterdir())
    ml = _fit("Reaction ~ Days + (1|Subject)", d, reml=False)
    (ml_path,) = [p for p in tmp_path.iterdir() if p != reml_path]
    ml_path.write_bytes(reml_path.read_bytes())          # the REML artefact where the ML one belongs
    tc._memo.clear()
    with pytest.warns(gj.GlmmjaxWarning, match="damaged or holds another computation"):
        again = gj.glmm("Reaction ~ Days + (1|Subject)", d, reml=False)
    assert again.loglik == ml.loglik and again.loglik != reml.loglik
