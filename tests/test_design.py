"""Tests of design building (glmmjax.design) against R's names, orders and counts."""
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import glmmjax.datasets as datasets
from glmmjax.design import fixed_matrix, make_design, new_data

REFERENCE = Path(__file__).parent / "fixtures" / "reference"
REFERENCE_FILES = sorted(REFERENCE.glob("*.json"))


def _call_formula(call: str) -> str:
    """The formula as written in the R call (keeps ``||`` unexpanded)."""
    return re.match(r"[\w.]+\((.*?), data =", call).group(1)


@pytest.fixture(scope="module", params=REFERENCE_FILES, ids=lambda p: p.stem)
def reference(request):
    ref = json.loads(request.param.read_text())
    data = datasets.load(ref["dataset"][:-4])
    return ref, data


@pytest.mark.parametrize("source", ["cond", "call"])
def test_matches_r_reference(reference, source):
    ref, data = reference
    formula = ref["formula"]["cond"] if source == "cond" else _call_formula(ref["call"])
    design = make_design(formula, data)
    assert list(design.fixed_names) == [fe["term"] for fe in ref["fixed_effects"]]
    assert design.nobs == ref["fit_stats"]["nobs"]
    assert {t.group: t.nlevels for t in design.terms} == ref["ngrps"]
    columns, levels = {}, {}
    for term in design.terms:
        columns.setdefault(term.group, []).extend(term.columns)
        levels[term.group] = list(term.levels)
    for modes in ref["conditional_modes"]:
        if modes["component"] == "cond":
            group = modes["grouping_factor"]
            assert columns[group] == modes["terms"]
            assert levels[group][:len(modes["levels"])] == modes["levels"]


@pytest.fixture
def toy():
    rng = np.random.default_rng(1)
    n = 60
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "f": rng.choice(["a", "b", "c"], n),
        "flag": rng.choice([True, False], n),
        "g": np.repeat(np.arange(1, 7), 10),
        "h": np.tile(np.arange(1, 6), 12),
        "size.n": rng.uniform(1, 3, n),
        "s": rng.integers(0, 5, n).astype(float),
        "o": pd.Categorical(rng.choice(["lo", "mid", "hi"], n),
                            categories=["lo", "mid", "hi"], ordered=True),
    })


@pytest.mark.parametrize("formula, names", [
    ("y ~ x + f", ["(Intercept)", "x", "fb", "fc"]),
    ("y ~ f * x", ["(Intercept)", "fb", "fc", "x", "fb:x", "fc:x"]),
    ("y ~ x * f", ["(Intercept)", "x", "fb", "fc", "x:fb", "x:fc"]),
    ("y ~ 0 + f", ["fa", "fb", "fc"]),
    ("y ~ I(x^2) + log(size.n) + flag", ["(Intercept)", "I(x^2)", "log(size.n)", "flagTRUE"]),
    ("y ~ o", ["(Intercept)", "o.L", "o.Q"]),
    ("y ~ factor(h)", ["(Intercept)"] + [f"factor(h){k}" for k in range(2, 6)]),
    ("y ~ (x + f + flag)^2 - f:flag",
     ["(Intercept)", "x", "fb", "fc", "flagTRUE", "x:fb", "x:fc", "x:flagTRUE"]),
])
def test_r_column_order_and_names(toy, formula, names):
    assert list(make_design(formula, toy).fixed_names) == names


def test_sum_contrasts(toy):
    design = make_design("y ~ f", toy, contrasts={"f": "sum"})
    assert design.fixed_names == ("(Intercept)", "f1", "f2")
    assert np.allclose(design.X[toy["f"].to_numpy() == "c", 1:], -1)


def test_powers_and_scale(toy):
    design = make_design("y ~ I(x^2) + scale(x)", toy)
    x = toy["x"].to_numpy()
    assert np.allclose(design.X[:, 1], x ** 2)
    assert np.allclose(design.X[:, 2], (x - x.mean()) / x.std(ddof=1))


def test_offset_terms_and_argument(toy):
    design = make_design("y ~ x + offset(log(size.n)) + (1 | g)", toy, offset=np.ones(len(toy)))
    assert np.allclose(design.offset, np.log(toy["size.n"]) + 1)
    assert design.fixed_names == ("(Intercept)", "x")


def test_cbind_response(toy):
    toy = toy.assign(n=toy["s"] + 2)
    design = make_design("cbind(s, n - s) ~ x + (1 | g)", toy)
    assert np.array_equal(design.y, toy["s"])
    assert np.array_equal(design.size, toy["n"])
    assert design.response == "cbind(s, n - s)"


def test_random_terms(toy):
    design = make_design("y ~ x + (f | g) + (0 + x || h) + (1 | g/h)", toy)
    groups = [(t.group, t.columns, t.cov, t.nlevels) for t in design.terms]
    assert groups == [
        ("g", ("(Intercept)", "fb", "fc"), "us", 6),
        ("h", ("x",), "diag", 5),
        ("h:g", ("(Intercept)",), "us", 30),
        ("g", ("(Intercept)",), "us", 6),
    ]
    nested = design.terms[2]
    assert nested.levels[:3] == ("1:1", "1:2", "1:3")
    assert nested.codes.dtype == np.int32
    assert np.array_equal(design.terms[1].Z[:, 0], toy["x"])


def test_missing_values_dropped_with_warning(toy):
    toy = toy.astype({"x": float})
    toy.loc[[3, 7], "x"] = np.nan
    toy["z"] = 1.0
    toy.loc[10, "z"] = np.nan
    with pytest.warns(UserWarning, match="dropped 3 of 60 rows with missing values"):
        design = make_design("y ~ x + (1 | g)", toy, extra_formulas=["~ z"])
    assert design.nobs == 57 and design.n_dropped == 3
    assert 3 not in design.rows and 10 not in design.rows


def test_missing_values_in_every_kind_of_column(toy):
    # float NaN, None in a string column, NaN in a Categorical, pd.NA in a nullable integer;
    # plain integer and boolean columns have none
    toy = toy.assign(s=toy["f"].astype(object), c=pd.Categorical(toy["f"]), k=pd.array(np.arange(60), dtype="Int64"),
                     i=np.arange(60), b=np.arange(60) % 2 == 0, x=toy["x"].astype(float))
    toy.loc[2, "x"] = np.nan
    toy.loc[5, "s"] = None
    toy.loc[8, "c"] = np.nan
    toy.loc[11, "k"] = pd.NA
    with pytest.warns(UserWarning, match="dropped 4 of 60 rows with missing values"):
        design = make_design("y ~ x + s + k + b + (1 | c)", toy, extra_formulas=["~ i"])
    assert design.nobs == 56 and not {2, 5, 8, 11} & set(design.rows)
    assert design.fixed_names == ("(Intercept)", "x", "sb", "sc", "k", "bTRUE")
    assert design.terms[0].levels == ("a", "b", "c")


def test_intercept_only_matrices(toy):
    # random intercepts and "~1" formulas: a column of ones, also rebuilt on new data
    design = make_design("y ~ x + (1 | g)", toy)
    assert design.terms[0].columns == ("(Intercept)",) and np.array_equal(design.terms[0].Z, np.ones((60, 1)))
    X, names, info = fixed_matrix("~1", toy, design.rows[:7])
    assert names == ("(Intercept)",) and np.array_equal(X, np.ones((7, 1)))
    assert np.array_equal(info.build(toy.iloc[:3]), np.ones((3, 1)))


def test_rank_deficient_columns_dropped(toy):
    toy = toy.assign(x2=2 * toy["x"])
    with pytest.warns(UserWarning, match="rank deficient so dropping 1 column.*x2"):
        design = make_design("y ~ x + x2 + f + (1 | g)", toy)
    assert design.fixed_names == ("(Intercept)", "x", "fb", "fc")
    assert design.dropped_columns == ("x2",)


@pytest.mark.parametrize("formula, kwargs, message", [
    ("y ~ xx + (1 | g)", {}, r"unknown column 'xx'.*did you mean 'x'"),
    ("y ~ x + (1 | one)", {}, r"grouping factor 'one' has only 1 level"),
    ("~ x + (1 | g)", {}, r"has no response"),
    ("y ~ x", {"weights": "neg"}, r"weights must be non-negative"),
    ("y ~ x", {"weights": np.ones(3)}, r"weights has length 3"),
    ("y ~ x", {"contrasts": {"f": "bogus"}}, r"unknown contrasts 'bogus'"),
])
def test_errors(toy, formula, kwargs, message):
    toy = toy.assign(one="a", neg=-1.0)
    if "contrasts" in kwargs:
        formula = "y ~ f"
    with pytest.raises(ValueError, match=message):
        make_design(formula, toy, **kwargs)


def test_no_rows_left(toy):
    toy = toy.assign(y=np.nan)
    with warnings.catch_warnings(), pytest.raises(ValueError, match="no rows left"):
        warnings.simplefilter("ignore")
        make_design("y ~ x", toy)


def test_formula_without_random_terms(toy):
    design = make_design("y ~ x", toy)
    assert design.terms == () and design.X.shape == (60, 2)


def test_new_data_round_trip():
    data = datasets.load("grouseticks")
    design = make_design("TICKS ~ YEAR + scale(HEIGHT) + (YEAR | LOCATION) + (1 | BROOD)", data)
    nd = new_data(design, data.drop(columns="TICKS"))
    assert np.allclose(nd.X, design.X)
    for codes, Z, term in zip(nd.codes, nd.Z, design.terms):
        assert np.array_equal(codes, term.codes)
        assert np.allclose(Z, term.Z)


def test_new_data_unseen_level_and_stored_scale():
    data = datasets.load("grouseticks")
    design = make_design("TICKS ~ YEAR + scale(HEIGHT) + (1 | LOCATION)", data)
    new = data.iloc[:2].astype({"LOCATION": str})
    new.loc[new.index[0], "LOCATION"] = "999"
    nd = new_data(design, new)
    assert nd.codes[0][0] == -1 and nd.codes[0][1] == design.terms[0].codes[1]
    assert np.allclose(nd.X, design.X[:2])  # scale() reuses the fitted mean and sd


def test_new_data_unseen_fixed_level_is_an_error(toy):
    design = make_design("y ~ f + (1 | g)", toy)
    with pytest.raises(ValueError, match="levels not in the fitted data: 'zz'"):
        new_data(design, toy.assign(f="zz"))


def test_fixed_matrix_on_design_rows(toy):
    design = make_design("y ~ x + (1 | g)", toy.drop(index=[0, 1]))
    X, names, info = fixed_matrix("~ f", toy, design.rows)
    assert names == ("(Intercept)", "fb", "fc") and X.shape == (58, 3)
    assert np.allclose(info.build(toy.loc[design.rows]), X)


def test_design_cache_keeps_designs_apart():
    """patsy's design is cached per formula code and column types (design._matrix._DESIGNS):
    a second data set with other factor levels or other numeric values gets its own columns,
    and a stateful transform (scale) is never served from the cache."""
    from glmmjax.design import _matrix

    data = datasets.load("grouseticks")
    formula = "TICKS ~ YEAR + log(HEIGHT) + scale(HEIGHT) + (1 | LOCATION)"
    first = make_design(formula, data)
    two_years = data[data.YEAR.astype(str) != "95"].copy()
    two_years["YEAR"] = two_years.YEAR.astype(str)           # levels 96, 97 only
    shifted = data.assign(HEIGHT=data.HEIGHT + 100.0)
    cached = [make_design(formula, d) for d in (two_years, shifted)]
    _matrix._DESIGNS.clear()
    fresh = [make_design(formula, d) for d in (two_years, shifted)]
    for c, f in zip(cached, fresh):
        assert c.fixed_names == f.fixed_names
        np.testing.assert_array_equal(c.X, f.X)
    assert cached[0].fixed_names == ("(Intercept)", "YEAR97", "log(HEIGHT)", "scale(HEIGHT)")
    assert first.fixed_names == ("(Intercept)", "YEAR96", "YEAR97", "log(HEIGHT)", "scale(HEIGHT)")
    # scale() centred on each data set: the shifted heights give the same scaled column
    np.testing.assert_allclose(cached[1].X[:, 4], first.X[:, 4], atol=1e-12)
    np.testing.assert_allclose(cached[1].X[:, 3], np.log(data.HEIGHT.to_numpy() + 100.0))


def test_direct_builder_equals_patsy():
    """Designs of plain leaves (one-column numbers, whatever call made them, factors under any
    contrast, interactions of both) are built without patsy once the first build has matched
    patsy's matrix exactly; the others (a matrix-valued leaf such as poly(x, 2)) always go
    through patsy."""
    from patsy import NAAction, build_design_matrices

    from glmmjax.design import _matrix

    data = datasets.load("Arabidopsis")
    data["amd_o"] = pd.Categorical(data.amd, ordered=True)
    data["total.x"] = data["total.fruits"] * 0.5 + 1.0
    cases = [
        ("total.fruits ~ nutrient + rack + status + amd + reg", True),
        ("total.fruits ~ nutrient * amd * status", True),           # three-way interactions
        ("total.fruits ~ 0 + status:amd + total.x", True),          # a full-rank coding, a dotted name
        ("total.fruits ~ amd_o * nutrient", True),                  # ordered: polynomial contrasts
        ("total.fruits ~ log(nutrient) + amd", True),               # glmmjax evaluates the call
        ("total.fruits ~ poly(gen, 2) + amd", False),          # two columns from one leaf
    ]
    for formula, direct in cases:
        _matrix._DESIGNS.clear()
        for _ in range(2):                      # the second build is served from the cache
            design = make_design(formula, data, contrasts={"status": "sum"})
        ((_, design_info, plain),) = _matrix._DESIGNS.values()
        assert (plain is not None) == direct, formula
        if direct:
            rows = data.iloc[design.positions]
            bound = design.fixed_info.fixed.bind(rows)
            got = _matrix._direct_matrix(design_info, bound, plain)
            want = np.asarray(design.fixed_info.fixed.build(rows))
            order = design.fixed_info.fixed.order
            np.testing.assert_array_equal(got[:, order][:, design.fixed_info.fixed.keep], want)
            (patsy_matrix,) = build_design_matrices([design_info], bound, NA_action=NAAction(NA_types=[]))
            np.testing.assert_array_equal(got, np.asarray(patsy_matrix))
            np.testing.assert_array_equal(design.X, want)


def test_interaction_grouping_levels_and_codes():
    """a:b:c levels in R's order (first component slowest, unused combinations dropped) and
    every row's code pointing at its own combination's label."""
    from glmmjax.design._data import group_levels_and_codes

    rng = np.random.default_rng(3)
    df = pd.DataFrame({"a": rng.choice(list("zyx"), 400), "b": rng.integers(0, 12, 400).astype(float),
                       "c": pd.Categorical(rng.choice(["q", "r"], 400), categories=["r", "q"])})
    levels, codes = group_levels_and_codes(df, ["a", "b", "c"])
    rows = [f"{a}:{int(b)}:{c}" for a, b, c in zip(df.a, df.b, df.c)]
    assert [levels[k] for k in codes] == rows
    order = {"a": ["x", "y", "z"], "c": ["r", "q"]}
    key = lambda lab: (order["a"].index(lab.split(":")[0]), int(lab.split(":")[1]), order["c"].index(lab.split(":")[2]))
    assert list(levels) == sorted(set(rows), key=key)
    assert codes.dtype == np.int32
