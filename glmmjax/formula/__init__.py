"""lme4 formula syntax: parse ``y ~ x + (1 + x | g)`` into its parts.

``parse_formula`` splits a formula into response, fixed part (as a patsy formula),
random-effect terms and offsets. The lower-level pieces (``parse_expression``,
``deparse``, ``patsy_code``, ``python_code``, ``variables``) are used by
:mod:`glmmjax.design` to evaluate the parts on data.
"""
from ._emit import is_leaf, patsy_code, python_code, variables
from ._parse import ParsedFormula, RandomSpec, group_components, parse_formula
from ._syntax import (
    Arg,
    BinOp,
    Call,
    Name,
    Node,
    Number,
    Paren,
    String,
    UnaryOp,
    deep_recursion,
    deparse,
    parse_expression,
)

__all__ = [
    "parse_formula", "ParsedFormula", "RandomSpec", "parse_expression", "deparse",
    "patsy_code", "python_code", "variables", "is_leaf", "group_components",
    "Node", "Name", "Number", "String", "Arg", "Call", "BinOp", "UnaryOp", "Paren", "deep_recursion",
]
