"""The glmmjax command (glmmjax.cli), run in-process."""
import pytest

import glmmjax as gj
from glmmjax import cli


@pytest.fixture(autouse=True)
def no_persistent_cache(monkeypatch):
    # keep the test session's JAX configuration as it is (the CLI turns the cache on)
    monkeypatch.setattr(cli, "_enable_compilation_cache", lambda: None)


@pytest.fixture(scope="module")
def sleep_out():
    import contextlib
    import io
    import warnings

    buf = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf):
        warnings.simplefilter("ignore")
        saved, cli._enable_compilation_cache = cli._enable_compilation_cache, lambda: None
        rc = cli.main(["fit", "--dataset", "sleepstudy", "Reaction ~ Days + (Days|Subject)"])
    cli._enable_compilation_cache = saved
    return rc, buf.getvalue()


def test_fit_prints_summary(sleep_out):
    rc, out = sleep_out
    assert rc == 0
    lines = [ln.rstrip() for ln in out.splitlines()]
    assert lines[:2] == ["Linear mixed model fit by REML. t-tests use Satterthwaite's method [", "lmerModLmerTest]"]
    assert lines[2] == "Formula: Reaction ~ Days + (Days | Subject)"
    assert lines[3] == "   Data: sleepstudy"
    assert "REML criterion at convergence: 1743.6" in lines
    assert "Number of obs: 180, groups:  Subject, 18" in lines
    assert any(ln.startswith("(Intercept)  251.40") for ln in lines)


def test_datasets_lists_sources(capsys):
    assert cli.main(["datasets"]) == 0
    out = capsys.readouterr().out
    for name in gj.datasets.names():
        assert name in out
    assert "lme4::sleepstudy" in out and "lme4::grouseticks" in out


@pytest.mark.parametrize("argv, needle", [
    (["fit", "--dataset", "sleepstudy", "Reaction ~ Days + (Days|"], "formula"),
    (["fit", "--dataset", "sleepstudy", "Reaction ~ Foo + (1|Subject)"], "Foo"),
    (["fit", "--dataset", "nosuchdata", "y ~ x + (1|g)"], "nosuchdata"),
    (["fit", "--dataset", "sleepstudy", "--family", "nosuchfamily", "Reaction ~ Days + (1|Subject)"], "nosuchfamily"),
    (["fit", "--dataset", "sleepstudy", "--family", "poisson", "--link", "probit", "Reaction ~ Days + (1|Subject)"],
     "probit"),
    (["fit", "--data", "/nonexistent/file.csv", "y ~ x + (1|g)"], "not found"),
    (["fit", "Reaction ~ Days + (1|Subject)"], "--dataset"),
    (["fit", "--dataset", "sleepstudy", "--method", "nelder", "Reaction ~ Days + (1|Subject)"], "method"),
])
def test_bad_input_exits_2(capsys, argv, needle):
    assert cli.main(argv) == 2
    cap = capsys.readouterr()
    assert "glmmjax: error:" in cap.err
    assert needle in cap.err
    assert "Traceback" not in cap.err + cap.out


def test_fit_from_csv_bad_column(tmp_path, capsys):
    path = tmp_path / "d.csv"
    gj.datasets.load("sleepstudy").to_csv(path, index=False)
    assert cli.main(["fit", "--data", str(path), "Reaction ~ Nope + (1|Subject)"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("glmmjax: error:") and "Nope" in err and "Traceback" not in err


def test_help_and_module_entry(capsys):
    assert cli.main(["--help"]) == 0
    assert "fit" in capsys.readouterr().out
    import glmmjax.__main__  # noqa: F401  (importable; runs main only as a script)


def test_the_console_command_exits_with_mains_status():
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "glmmjax", "datasets"], capture_output=True, text=True)
    assert ok.returncode == 0 and "sleepstudy" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "glmmjax", "fit", "--dataset", "sleepstudy",
                          "Reaction ~ Nope + (1|Subject)"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "Nope" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("fast_exit, finalized", [(None, False), ("0", True)])
def test_exit_skips_the_final_collection_unless_turned_off(fast_exit, finalized):
    """Importing glmmjax registers gc.freeze at exit (package docstring): a reference cycle
    left at exit is not collected (its __del__ does not run); GLMMJAX_FAST_EXIT=0 keeps
    Python's usual shutdown, whose final collection finalizes it."""
    import os
    import subprocess
    import sys

    code = ("import glmmjax\n"
            "class C:\n"
            "    def __del__(self): print('finalized', flush=True)\n"
            "c = C(); c.self = c; del c\n"
            "print('end', flush=True)\n")
    env = {k: v for k, v in os.environ.items() if k != "GLMMJAX_FAST_EXIT"}
    if fast_exit is not None:
        env["GLMMJAX_FAST_EXIT"] = fast_exit
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == (["end", "finalized"] if finalized else ["end"])
