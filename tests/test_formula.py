"""Tests of lme4 formula parsing (glmmjax.formula)."""
import pytest

from glmmjax.formula import RandomSpec, deparse, parse_expression, parse_formula


def test_simple_random_intercept():
    p = parse_formula("TICKS ~ YEAR + (1 | LOCATION)")
    assert p.response == "TICKS"
    assert p.fixed == "YEAR"
    assert p.random == (RandomSpec("1", "LOCATION", False),)
    assert p.offsets == ()


@pytest.mark.parametrize("text, lhs", [
    ("y ~ x + (x | g)", "x"),
    ("y ~ x + (1 + x | g)", "1 + x"),
    ("y ~ x + (0 + x | g)", "0 + x"),
    ("y ~ x + (-1 + x | g)", "-1 + x"),
])
def test_random_lhs_kept_as_written(text, lhs):
    assert parse_formula(text).random == (RandomSpec(lhs, "g", False),)


def test_double_bar_is_one_independent_term():
    p = parse_formula("Reaction ~ Days + (Days || Subject)")
    assert p.random == (RandomSpec("Days", "Subject", True),)


def test_nested_groups_named_like_lme4():
    p = parse_formula("normexam ~ standLRT + (1 | school/student)")
    assert [s.group for s in p.random] == ["student:school", "school"]


def test_three_level_nesting():
    p = parse_formula("y ~ (1 | a/b/c)")
    assert [s.group for s in p.random] == ["c:b:a", "b:a", "a"]
    assert p.fixed == "1"


def test_interaction_group_as_written_and_crossed_terms():
    p = parse_formula("y ~ x + (1 | g:h) + (1 | g) + (0 + x | h)")
    assert [(s.lhs, s.group) for s in p.random] == [("1", "g:h"), ("1", "g"), ("0 + x", "h")]


def test_parenthesised_group_of_random_terms():
    p = parse_formula("Reaction ~ Days + ((1 | Subject) + (0 + Days | Subject))")
    assert p.random == (RandomSpec("1", "Subject"), RandomSpec("0 + Days", "Subject"))
    assert p.fixed == "Days"


@pytest.mark.parametrize("text, fixed", [
    ("y ~ 0 + x + (1 | g)", "0 + x"),
    ("y ~ x - 1 + (1 | g)", "x - 1"),
    ("y ~ (1 | g)", "1"),
    ("y ~ 0 + (1 | g)", "0"),
])
def test_intercept_semantics(text, fixed):
    assert parse_formula(text).fixed == fixed


def test_power_translated_inside_and_outside_I():
    p = parse_formula("y ~ I(age^2) + (a + b + c)^2")
    assert p.fixed == "I(age ** 2) + (a + b + c) ** 2"
    assert p.fixed_r == "I(age^2) + (a + b + c)^2"


def test_non_identifier_names_are_quoted():
    p = parse_formula("total.fruits ~ nutrient + log(total.fruits2) + (1 | popu)")
    assert p.response == "total.fruits"
    assert p.fixed == "nutrient + log(Q('total.fruits2'))"


def test_offsets_removed_from_fixed_part():
    p = parse_formula("y ~ offset(log(n)) + x + (1 | g) + offset(z)")
    assert p.offsets == ("log(n)", "z")
    assert p.fixed == "x"


def test_cbind_response_and_one_sided_formulas():
    assert parse_formula("cbind(s, n - s) ~ x").response == "cbind(s, n - s)"
    assert parse_formula("~1").response is None
    assert parse_formula("~ mined").fixed == "mined"


def test_named_arguments_translate_to_python():
    p = parse_formula("y ~ scale(x, center = FALSE)")
    assert p.fixed == "scale(x, center=False)"
    assert p.fixed_r == "scale(x, center = FALSE)"


def test_deparse_matches_r_spacing():
    assert deparse(parse_expression("cbind(a,b-a)")) == "cbind(a, b - a)"
    assert deparse(parse_expression("I(x ^ 2)")) == "I(x^2)"


@pytest.mark.parametrize("text, message", [
    ("y ~ (x | g", r"unbalanced parentheses: '\(' at position 4 is never closed"),
    ("y ~ x)", r"unbalanced parentheses: unexpected '\)' at position 5"),
    ("y + x", r"missing '~'"),
    ("y ~ (| g)", r"missing left-hand side of '\|' at position 5"),
    ("y ~ (x | )", r"missing right-hand side of '\|'.* at position 9"),
    ("y ~ (x || )", r"missing right-hand side of '\|\|'"),
    ("y ~ x $ z", r"unexpected character '\$' at position 6"),
    ("y ~ x | g", r"must be in parentheses"),
    ("y ~ x + (1 | log(g))", r"unsupported grouping factor 'log\(g\)' at position 13"),
    ("y ~ x %in% g", r"unsupported formula syntax 'x %in% g' at position 4"),
    ("y ~ x + 2", r"must be 0 or 1, got '2' at position 8"),
    ("y ~ x - (1 | g)", r"cannot subtract a random-effect term"),
    ("y ~ x ~ z", r"more than one '~'"),
    ("y ~ ", r"missing right-hand side of '~'"),
    ("", r"empty formula"),
])
def test_malformed_formulas(text, message):
    with pytest.raises(ValueError, match=message):
        parse_formula(text)
