"""Formulas from users run no code: glmmjax evaluates every term itself, from its parsed form,
against the data's columns and a fixed table of functions (design/_evaluate.py).

Each attack (code execution, file access, reading the environment) through ``gj.glmm``,
``zi=``, ``disp=`` and the command line is a clear error naming what is not allowed; no file
appears, and no value of the environment is echoed. The functions with fitted state (poly,
scale) and the factor helpers match R, in the fit and in ``predict(newdata)``
(tests/fixtures/formula_functions, made by make_refs.R there).
"""
from __future__ import annotations

import json
import pickle
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmjax as gj

REFS = json.loads((Path(__file__).parent / "fixtures" / "formula_functions" / "refs.json").read_text())
SECRET = "s3cr3t-value-7781"

UNKNOWN = "unknown function '{}' in the formula; allowed: I, abs"
# (term, the message): a function outside glmmjax's table is named; Python's dunder names are
# not R names at all, and the formula parser stops at them
ATTACKS = [
    ('offset(eval("__import__(\'os\').system(\'id > pwned.txt\') * 0"))', UNKNOWN.format("eval")),
    ("I(open('pwned.txt', 'w'))", UNKNOWN.format("open")),
    ("I(int(Sys.getenv('GLMMJAX_SECRET')))", UNKNOWN.format("int")),
    ("I(int(__import__('os').environ['GLMMJAX_SECRET']))", "unexpected character '_' at position"),
    ("I(getattr(Days, 'x'))", UNKNOWN.format("getattr")),
    ("I(globals())", UNKNOWN.format("globals")),
    ("I(vars())", UNKNOWN.format("vars")),
    ("I(compile('1', 'f', 'eval'))", UNKNOWN.format("compile")),
    ("exec('open(\"pwned.txt\", \"w\")')", UNKNOWN.format("exec")),
    ("__import__('os')", "unexpected character '_' at position"),
]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GLMMJAX_SECRET", SECRET)
    yield tmp_path
    assert list(tmp_path.iterdir()) == [], "a formula created a file"


@pytest.fixture(scope="module")
def sleep():
    return gj.datasets.load("sleepstudy")


@pytest.mark.parametrize("term, message", ATTACKS)
def test_conditional_formula(sandbox, sleep, term, message):
    with pytest.raises(ValueError, match=re.escape(message)) as e:
        gj.glmm(f"Reaction ~ Days + {term} + (1|Subject)", sleep)
    assert SECRET not in str(e.value)


@pytest.mark.parametrize("term, message", [
    ('offset(eval("1"))', "offset() in '~ offset(eval(\"1\"))': glmmjax takes offsets in the conditional"),
    *ATTACKS[1:4]])
def test_zi_and_disp_formulas(sandbox, sleep, term, message):
    d = sleep.assign(n=np.round(sleep.Reaction / 50))
    for kw in ({"zi": f"~ {term}", "family": "poisson"}, {"disp": f"~ {term}", "family": "gaussian"}):
        with pytest.raises(ValueError, match=re.escape(message)) as e:
            gj.glmm("n ~ Days + (1|Subject)", d, **kw)
        assert SECRET not in str(e.value)


def test_response_and_cbind_arguments(sandbox, sleep):
    with pytest.raises(ValueError, match="unknown function 'open'"):
        gj.glmm("I(open('pwned.txt', 'w')) ~ Days + (1|Subject)", sleep)
    with pytest.raises(ValueError, match="unknown function 'eval'"):
        gj.glmm("cbind(eval('1'), Days) ~ 1 + (1|Subject)", sleep, family="binomial")


@pytest.mark.parametrize("formula, disp", [
    ("Reaction ~ Days + offset(eval(\"__import__('os').system('id > pwned.txt') * 0\")) + (1|Subject)", None),
    ("Reaction ~ Days + (1|Subject)", "~ I(open('pwned.txt', 'w'))"),
])
def test_command_line(sandbox, formula, disp):
    cmd = [sys.executable, "-m", "glmmjax", "fit", "--dataset", "sleepstudy", formula]
    if disp:
        cmd += ["--disp", disp]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "unknown function" in out.stderr and "Traceback" not in out.stderr
    assert SECRET not in out.stdout + out.stderr


def test_unknown_names_and_attribute_access_are_named(sleep):
    with pytest.raises(ValueError, match="unknown column 'Days.__class__'"):
        gj.glmm("Reaction ~ Days.__class__ + (1|Subject)", sleep)
    with pytest.raises(ValueError, match="unknown column 'os'"):
        gj.glmm("Reaction ~ os + (1|Subject)", sleep)


def test_a_column_named_like_a_builtin_is_data(sleep):
    d = sleep.rename(columns={"Days": "__import__"}).assign(eval=sleep.Days ** 2)
    fit = gj.glmm("Reaction ~ `__import__` + eval + (1|Subject)", d)
    ref = gj.glmm("Reaction ~ Days + I(Days^2) + (1|Subject)", sleep)
    assert list(fit.fixef.index) == ["(Intercept)", "`__import__`", "eval"]   # R's name for it
    assert fit.loglik == pytest.approx(ref.loglik, rel=1e-10)


def test_functions_of_ones_own_are_passed_explicitly(sleep):
    logit = lambda p: np.log(p / (1 - p))
    d = sleep.assign(p=(sleep.Days + 0.5) / 11)
    with pytest.raises(ValueError, match="unknown function 'logit'"):
        gj.glmm("Reaction ~ logit(p) + (1|Subject)", d)
    fit = gj.glmm("Reaction ~ logit(p) + (1|Subject)", d, functions={"logit": logit})
    ref = gj.glmm("Reaction ~ lp + (1|Subject)", d.assign(lp=logit(d.p)))
    np.testing.assert_allclose(fit.fixef.values, ref.fixef.values, rtol=1e-10)
    assert list(fit.fixef.index) == ["(Intercept)", "logit(p)"]
    np.testing.assert_allclose(fit.predict(newdata=d.head(4)), ref.predict(newdata=d.assign(lp=logit(d.p)).head(4)))
    with pytest.raises(TypeError, match="must map names to callables"):
        gj.glmm("Reaction ~ Days + (1|Subject)", sleep, functions={"f": 3})


@pytest.mark.parametrize("ref", REFS["models"], ids=lambda r: r["id"])
def test_stateful_and_factor_functions_match_r(sleep, ref):
    d = sleep.assign(grp=pd.Categorical(np.where(sleep.Days % 3 == 0, "a", np.where(sleep.Days % 3 == 1, "b", "c"))))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = gj.glmm(ref["formula"], d)
    assert list(fit.fixef.index) == list(ref["fixef"])
    np.testing.assert_allclose(fit.fixef.values, list(ref["fixef"].values()), rtol=1e-6, atol=1e-6)
    assert fit.loglik == pytest.approx(ref["loglik"], abs=1e-6)
    new = pd.DataFrame(REFS["newdata"]).assign(Subject="308")
    np.testing.assert_allclose(fit.predict(newdata=new, re_form="~0"), ref["predict_new"], rtol=1e-7)
    again = pickle.loads(pickle.dumps(fit))      # a fitted model pickles, with its formula's state
    np.testing.assert_allclose(again.predict(newdata=new, re_form="~0"), ref["predict_new"], rtol=1e-7)


def test_function_argument_errors(sleep):
    with pytest.raises(ValueError, match="poly\\(\\) has no argument 'deg'"):
        gj.glmm("Reaction ~ poly(Days, deg = 2) + (1|Subject)", sleep)
    with pytest.raises(ValueError, match="must be an existing level"):
        gj.glmm("Reaction ~ relevel(factor(Days), ref = 'z') + (1|Subject)", sleep)
