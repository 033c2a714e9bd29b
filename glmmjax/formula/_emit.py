"""Translate R formula syntax trees into patsy formulas and Python expressions.

patsy evaluates the leaves of a formula (names, calls) as Python, so R-isms are rewritten
there: ``^`` becomes ``**``, names that are not Python identifiers (``total.fruits``) are
quoted as ``Q("total.fruits")``, ``TRUE``/``FALSE`` become ``True``/``False``. Between
leaves, R's formula operators map onto patsy's (``^`` -> ``**`` for interaction order).
"""
from __future__ import annotations

import keyword
from typing import Callable

from ._syntax import Arg, BinOp, Call, Name, Node, Number, Paren, String, UnaryOp, deparse

__all__ = ["python_code", "patsy_code", "variables", "is_leaf"]

_R_CONSTANTS = {"TRUE": "True", "FALSE": "False", "T": "True", "F": "False", "NULL": "None"}
_PY_BINARY = {
    "+": "+", "-": "-", "*": "*", "/": "/", "^": "**", "%%": "%", "%/%": "//",
    "==": "==", "!=": "!=", "<": "<", ">": ">", "<=": "<=", ">=": ">=", "&": "&", "|": "|",
}
_PATSY_BINARY = {"+": "+", "-": "-", "*": "*", "/": "/", ":": ":", "^": "**"}
# Names that are R constants, not data columns.
_NON_DATA_NAMES = set(_R_CONSTANTS) | {"pi"}


def _python_name(name: str) -> str:
    if name in _R_CONSTANTS:
        return _R_CONSTANTS[name]
    if name.isidentifier() and not keyword.iskeyword(name):
        return name
    return f"Q({name!r})"


def python_code(node: Node) -> str:
    """Python source for an R expression (the inside of a formula leaf)."""
    if isinstance(node, Name):
        return _python_name(node.name)
    if isinstance(node, Number):
        return node.text
    if isinstance(node, String):
        return repr(node.value)
    if isinstance(node, Call):
        return f"{node.func}({', '.join(_python_arg(a) for a in node.args)})"
    if isinstance(node, Paren):
        return f"({python_code(node.inner)})"
    if isinstance(node, UnaryOp) and node.op in ("+", "-", "!"):
        op = "~" if node.op == "!" else node.op
        return f"{op}{python_code(node.operand)}"
    if isinstance(node, BinOp) and node.op in _PY_BINARY:
        return f"{python_code(node.left)} {_PY_BINARY[node.op]} {python_code(node.right)}"
    raise ValueError(f"unsupported syntax {deparse(node)!r} at position {node.pos}")


def _python_arg(arg: Arg) -> str:
    value = python_code(arg.value)
    return value if arg.name is None else f"{arg.name}={value}"


def is_leaf(node: Node) -> bool:
    """Whether patsy sees ``node`` as one factor (a variable or a function call)."""
    return isinstance(node, (Name, Call))


def patsy_code(node: Node, leaf: Callable[[Node], str] | None = None) -> str:
    """patsy formula text for the right-hand side ``node`` of an R formula.

    ``leaf`` turns a variable or call into patsy factor code; by default
    :func:`python_code`. Design building uses it to attach contrasts to factors.
    """
    leaf = leaf or python_code
    if is_leaf(node):
        return leaf(node)
    if isinstance(node, Number):
        if node.text in ("0", "1"):
            return node.text
        raise ValueError(f"a number in a formula must be 0 or 1, got {node.text!r} "
                         f"at position {node.pos}")
    if isinstance(node, Paren):
        return f"({patsy_code(node.inner, leaf)})"
    if isinstance(node, UnaryOp) and node.op in ("+", "-"):
        return f"{node.op}{patsy_code(node.operand, leaf)}"
    if isinstance(node, BinOp) and node.op in _PATSY_BINARY:
        left = patsy_code(node.left, leaf)
        if node.op == "^":
            return f"{left} ** {_interaction_order(node.right)}"
        return f"{left} {_PATSY_BINARY[node.op]} {patsy_code(node.right, leaf)}"
    raise ValueError(f"unsupported formula syntax {deparse(node)!r} at position {node.pos}")


def _interaction_order(node: Node) -> str:
    if isinstance(node, Number) and node.text.isdigit():
        return node.text
    raise ValueError(f"the power of '^' in a formula must be a whole number, "
                     f"got {deparse(node)!r} at position {node.pos}")


def variables(node: Node) -> list:
    """The data variables an expression refers to, in order of first appearance."""
    found: list = []

    def visit(n: Node):
        if isinstance(n, Name):
            if n.name not in _NON_DATA_NAMES and n.name not in found:
                found.append(n.name)
        elif isinstance(n, Call):
            for arg in n.args:
                visit(arg.value)
        elif isinstance(n, Paren):
            visit(n.inner)
        elif isinstance(n, UnaryOp):
            visit(n.operand)
        elif isinstance(n, BinOp):
            visit(n.left)
            visit(n.right)

    visit(node)
    return found
