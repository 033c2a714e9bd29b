"""Split an lme4 formula into response, fixed part, random-effect terms and offsets.

lme4 rules implemented here:

* ``(x | g)`` is a correlated random effect of ``1 + x`` per level of ``g``; ``0 +`` or
  ``-1 +`` on the left removes the random intercept.
* ``(x || g)`` is the same with a diagonal covariance (kept as one term, ``independent``).
* ``(x | g/h)`` expands to ``(x | h:g) + (x | g)``, the nested factor named as lme4 names it;
  ``(x | a/b/c)`` gives ``c:b:a``, ``b:a`` and ``a``.
* ``offset(expr)`` anywhere in the right-hand side is an offset, not a fixed effect.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._emit import patsy_code, python_code
from ._syntax import BinOp, Call, Name, Node, Paren, UnaryOp, deparse, parse_expression

__all__ = ["RandomSpec", "ParsedFormula", "parse_formula", "group_components"]


@dataclass(frozen=True)
class RandomSpec:
    """One random-effect term ``(lhs | group)`` after expanding ``/``.

    Attributes:
        lhs: the left-hand side in R syntax ("1", "Days", "0 + YEAR").
        group: the grouping factor as lme4 names it ("Subject", "student:school").
        independent: True for ``||`` (uncorrelated effects, diagonal covariance).
    """

    lhs: str
    group: str
    independent: bool = False


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula taken apart.

    Attributes:
        text: the formula as given.
        response: the left-hand side in R syntax, or None for a one-sided formula.
        fixed: the fixed-effects right-hand side as a patsy formula (Python leaves,
            ``**`` for ``^``, ``Q("a.b")`` for non-identifier names); "1" or "0" when
            only the intercept (or nothing) is left.
        random: the random-effect terms, in formula order.
        offsets: the expressions inside ``offset(...)``, in R syntax.
        fixed_r: the fixed-effects right-hand side in R syntax.
    """

    text: str
    response: str | None
    fixed: str
    random: tuple = ()
    offsets: tuple = ()
    fixed_r: str = "1"


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4-style formula such as ``"y ~ x + (1 + x | g)"``.

    Raises:
        ValueError: for malformed formulas; the message says what is wrong and where.
    """
    if not isinstance(text, str):
        raise TypeError(f"formula must be a string, got {type(text).__name__}")
    tree = parse_expression(text)
    response, rhs = _split_tilde(tree, text)
    fixed_items, random, offsets = [], [], []
    for sign, node in _summands(rhs, "+"):
        _classify(sign, node, fixed_items, random, offsets)
    fixed_r = _join_fixed(fixed_items)
    fixed_tree = parse_expression(fixed_r)
    return ParsedFormula(
        text=text,
        response=None if response is None else deparse(response),
        fixed=patsy_code(fixed_tree),
        random=tuple(random),
        offsets=tuple(offsets),
        fixed_r=fixed_r,
    )


def _split_tilde(tree: Node, text: str):
    if isinstance(tree, BinOp) and tree.op == "~":
        if isinstance(tree.left, (BinOp, UnaryOp)) and tree.left.op == "~":
            raise ValueError(f"more than one '~' in formula {text!r}")
        return tree.left, tree.right
    if isinstance(tree, UnaryOp) and tree.op == "~":
        return None, tree.operand
    raise ValueError(f"missing '~' in formula {text!r}; expected 'response ~ terms'")


def _summands(node: Node, sign: str):
    """Flatten ``a + b - c`` into [(sign, a), (sign, b), ("-", c)]."""
    if isinstance(node, BinOp) and node.op in ("+", "-"):
        yield from _summands(node.left, sign)
        yield from _summands(node.right, node.op if sign == "+" else _flip(node.op))
    elif isinstance(node, UnaryOp) and node.op in ("+", "-"):
        yield from _summands(node.operand, node.op if sign == "+" else _flip(node.op))
    else:
        yield sign, node


def _flip(op: str) -> str:
    return "+" if op == "-" else "-"


def _is_bar(node: Node) -> bool:
    return isinstance(node, BinOp) and node.op in ("|", "||")


def _contains_bar(node: Node) -> bool:
    if _is_bar(node):
        return True
    if isinstance(node, Paren):
        return _contains_bar(node.inner)
    if isinstance(node, BinOp):
        return _contains_bar(node.left) or _contains_bar(node.right)
    if isinstance(node, UnaryOp):
        return _contains_bar(node.operand)
    return False


def _classify(sign: str, node: Node, fixed_items: list, random: list, offsets: list):
    """Sort one summand of the right-hand side into fixed, random or offset."""
    if isinstance(node, Paren) and _is_bar(node.inner):
        _require_plus(sign, node, "a random-effect term")
        random.extend(_expand_bar(node.inner))
    elif isinstance(node, Paren) and _contains_bar(node.inner):
        _require_plus(sign, node, "a random-effect term")
        for inner_sign, inner in _summands(node.inner, "+"):
            if not (isinstance(inner, Paren) and _is_bar(inner.inner)):
                raise ValueError(f"only random-effect terms may be grouped with a random-effect "
                                 f"term, got {deparse(inner)!r} at position {inner.pos}")
            _classify(inner_sign, inner, fixed_items, random, offsets)
    elif _is_bar(node):
        raise ValueError(f"random-effect term {deparse(node)!r} at position {node.pos} "
                         f"must be in parentheses, e.g. (1 | g)")
    elif isinstance(node, Call) and node.func == "offset":
        _require_plus(sign, node, "an offset")
        if len(node.args) != 1 or node.args[0].name is not None:
            raise ValueError(f"offset() takes one expression, at position {node.pos}")
        python_code(node.args[0].value)  # validates the expression
        offsets.append(deparse(node.args[0].value))
    elif _contains_bar(node):
        raise ValueError(f"'|' may only appear in a random-effect term like (x | g), "
                         f"at position {node.pos}")
    else:
        patsy_code(node)  # validates the term, reporting positions in the original text
        fixed_items.append((sign, node))


def _require_plus(sign: str, node: Node, what: str):
    if sign != "+":
        raise ValueError(f"cannot subtract {what} ({deparse(node)!r} at position {node.pos})")


def _expand_bar(bar: BinOp) -> list:
    """``lhs | g/h`` -> [RandomSpec(lhs, "h:g"), RandomSpec(lhs, "g")]."""
    lhs = deparse(bar.left)
    independent = bar.op == "||"
    return [RandomSpec(lhs, group, independent) for group in _expand_group(bar.right)]


def _expand_group(node: Node) -> list:
    chain = _slash_chain(node)
    groups = []
    for i in range(len(chain), 0, -1):
        groups.append(":".join(deparse(part) for part in reversed(chain[:i])))
    return groups


def _slash_chain(node: Node) -> list:
    """``a/b/c`` -> [a, b, c]; every part must be a name or an interaction of names."""
    if isinstance(node, BinOp) and node.op == "/":
        return _slash_chain(node.left) + _slash_chain(node.right)
    if isinstance(node, Paren):
        return _slash_chain(node.inner)
    group_components(node)
    return [node]


def group_components(node: Node) -> list:
    """Names of the variables of a grouping factor ``g`` or ``g:h`` (R-style names)."""
    if isinstance(node, Name):
        return [node.name]
    if isinstance(node, BinOp) and node.op == ":":
        return group_components(node.left) + group_components(node.right)
    if isinstance(node, Paren):
        return group_components(node.inner)
    raise ValueError(f"unsupported grouping factor {deparse(node)!r} at position {node.pos}; "
                     f"expected a variable name, g:h or g/h")


def _join_fixed(items: list) -> str:
    """R text of the fixed part from its signed summands ("1" if nothing is left)."""
    if not items:
        return "1"
    parts = []
    for i, (sign, node) in enumerate(items):
        text = deparse(node)
        if i == 0:
            parts.append(text if sign == "+" else f"-{text}")
        else:
            parts.append(f"{sign} {text}")
    return " ".join(parts)
