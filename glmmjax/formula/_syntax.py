"""Tokenizer, syntax tree and parser for R model formulas.

The parser follows R's operator precedence (lowest first)::

    ~   |  ||   &   !   == != < > <= >=   + -   * /   %op%   :   unary + -   ^   calls

and produces a small immutable syntax tree. Every node remembers the character position
where it starts, so errors can say where the problem is.
"""
from __future__ import annotations

import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = [
    "Node", "Name", "Number", "String", "Arg", "Call", "BinOp", "UnaryOp", "Paren",
    "parse_expression", "deparse", "deep_recursion"]


# --------------------------------------------------------------------------- nodes


@dataclass(frozen=True)
class Node:
    """Base class of all syntax-tree nodes; ``pos`` is the 0-based character offset."""

    pos: int


@dataclass(frozen=True)
class Name(Node):
    name: str


@dataclass(frozen=True)
class Number(Node):
    text: str


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Arg:
    """One argument of a call; ``name`` is None for positional arguments."""

    name: str | None
    value: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple


@dataclass(frozen=True)
class BinOp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class UnaryOp(Node):
    op: str
    operand: Node


@dataclass(frozen=True)
class Paren(Node):
    inner: Node


# --------------------------------------------------------------------------- tokens


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "number", "string", "op", "end"
    text: str
    pos: int


_TOKEN_RE = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?L?)
  | (?P<name>[A-Za-z.][A-Za-z0-9._]*|`[^`]*`)
  | (?P<string>"[^"]*"|'[^']*')
  | (?P<op>%[^%]*%|\|\||&&|==|!=|<=|>=|[~|&!<>+\-*/^:(),=])
    """,
    re.VERBOSE,
)


def _tokenize(text: str) -> list:
    tokens, pos = [], 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ValueError(f"unexpected character {text[pos]!r} at position {pos} in {text!r}")
        kind = match.lastgroup
        if kind != "space":
            token_text = match.group()
            if kind == "name" and token_text.startswith("`"):
                token_text = token_text[1:-1]
            tokens.append(_Token(kind, token_text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# --------------------------------------------------------------------------- parser

# Binary operators by precedence level, lowest first; all left-associative except "^".
_BINARY_LEVELS = (
    ("~",),
    ("|", "||"),
    ("&", "&&"),
    None,  # unary "!"
    ("==", "!=", "<", ">", "<=", ">="),
    ("+", "-"),
    ("*", "/"),
    ("%",),  # any %op%
    (":",),
)


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # -- helpers
    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, pos: int):
        raise ValueError(f"{message} at position {pos} in formula {self.text!r}")

    def is_op(self, level: tuple) -> bool:
        tok = self.tok
        if tok.kind != "op":
            return False
        if level == ("%",):
            return len(tok.text) > 1 and tok.text.startswith("%")
        return tok.text in level

    # -- grammar
    def parse(self) -> Node:
        if self.tok.kind == "end":
            self.error("empty formula", 0)
        node = self.parse_level(0)
        tok = self.tok
        if tok.kind != "end":
            if tok.text == ")":
                self.error("unbalanced parentheses: unexpected ')'", tok.pos)
            self.error(f"unexpected {tok.text!r}", tok.pos)
        return node

    def parse_level(self, level: int) -> Node:
        if level == len(_BINARY_LEVELS):
            return self.parse_unary()
        ops = _BINARY_LEVELS[level]
        if ops is None:
            if self.tok.kind == "op" and self.tok.text == "!":
                tok = self.advance()
                return UnaryOp(tok.pos, "!", self.parse_level(level))
            return self.parse_level(level + 1)
        if ops == ("~",) and self.is_op(ops):  # one-sided formula "~ x"
            tok = self.advance()
            return UnaryOp(tok.pos, "~", self.parse_level(level + 1))
        left = self.parse_level(level + 1)
        while self.is_op(ops):
            tok = self.advance()
            self.require_operand(tok)
            right = self.parse_level(level + 1)
            left = BinOp(left.pos, tok.text, left, right)
        return left

    def parse_unary(self) -> Node:
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):
            tok = self.advance()
            return UnaryOp(tok.pos, tok.text, self.parse_unary())
        return self.parse_power()

    def parse_power(self) -> Node:
        base = self.parse_postfix()
        if self.tok.kind == "op" and self.tok.text == "^":
            self.advance()
            exponent = self.parse_unary()  # right-associative, allows x^-1
            return BinOp(base.pos, "^", base, exponent)
        return base

    def parse_postfix(self) -> Node:
        node = self.parse_atom()
        if isinstance(node, Name) and self.tok.kind == "op" and self.tok.text == "(":
            return self.parse_call(node)
        return node

    def parse_call(self, func: Name) -> Call:
        open_tok = self.advance()
        args = []
        if not (self.tok.kind == "op" and self.tok.text == ")"):
            while True:
                args.append(self.parse_arg())
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.advance()
                    continue
                break
        self.expect_close(open_tok)
        return Call(func.pos, func.name, tuple(args))

    def parse_arg(self) -> Arg:
        nxt = self.tokens[self.i + 1]
        if self.tok.kind == "name" and nxt.kind == "op" and nxt.text == "=":
            name = self.advance().text
            self.advance()
            return Arg(name, self.parse_level(1))
        return Arg(None, self.parse_level(1))

    def require_operand(self, op_tok: _Token):
        """Fail clearly when a binary operator has nothing on its right."""
        tok = self.tok
        if tok.kind == "end" or (tok.kind == "op" and tok.text in (")", ",")):
            self.error(f"missing right-hand side of {op_tok.text!r} "
                       f"(operator at position {op_tok.pos})", tok.pos)

    def expect_close(self, open_tok: _Token):
        tok = self.tok
        if tok.kind == "op" and tok.text == ")":
            self.advance()
            return
        if tok.kind == "end":
            self.error(f"unbalanced parentheses: '(' at position {open_tok.pos} is never closed",
                       tok.pos)
        self.error(f"expected ')' to close '(' at position {open_tok.pos} but found {tok.text!r}",
                   tok.pos)

    def parse_atom(self) -> Node:
        tok = self.tok
        if tok.kind == "name":
            self.advance()
            return Name(tok.pos, tok.text)
        if tok.kind == "number":
            self.advance()
            return Number(tok.pos, tok.text.rstrip("L"))
        if tok.kind == "string":
            self.advance()
            return String(tok.pos, tok.text[1:-1])
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            if self.tok.kind == "op" and self.tok.text == ")":
                self.error("empty parentheses", tok.pos)
            inner = self.parse_level(0)
            self.expect_close(tok)
            return Paren(tok.pos, inner)
        if tok.kind == "end":
            self.error("formula ends where a term was expected", tok.pos)
        if tok.text == ")":
            self.error("unbalanced parentheses: unexpected ')'", tok.pos)
        self.error(f"missing left-hand side of {tok.text!r}", tok.pos)


@contextmanager
def deep_recursion(limit: int = 50_000):
    """Room for formulas of thousands of terms: ``a + b + c + ...`` is a left-deep tree, and
    the walks over it (here, in the design, in patsy) recurse once per term, past Python's
    default limit of 1000 frames."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, limit))
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def parse_expression(text: str) -> Node:
    """Parse an R formula or expression into a syntax tree.

    Raises:
        ValueError: on malformed input; the message names the problem and its position.
    """
    return _Parser(text).parse()


# --------------------------------------------------------------------------- deparse

_TIGHT_OPS = {":", "^"}


def deparse(node: Node) -> str:
    """Text of ``node`` the way R's ``deparse`` prints it ("I(age^2)", "size - incidence")."""
    if isinstance(node, Name):
        return node.name if _is_r_name(node.name) else f"`{node.name}`"
    if isinstance(node, Number):
        return node.text
    if isinstance(node, String):
        # strings have no escapes (the tokenizer's rule), so each holds at most one kind of
        # quote: the other kind delimits it and the text parses back to the same string
        return f"'{node.value}'" if '"' in node.value else f'"{node.value}"'
    if isinstance(node, Call):
        args = ", ".join(deparse(a.value) if a.name is None else f"{a.name} = {deparse(a.value)}"
                         for a in node.args)
        return f"{node.func}({args})"
    if isinstance(node, Paren):
        return f"({deparse(node.inner)})"
    if isinstance(node, UnaryOp):
        sep = " " if node.op == "~" else ""
        return f"{node.op}{sep}{deparse(node.operand)}"
    if isinstance(node, BinOp):
        sep = "" if node.op in _TIGHT_OPS else " "
        return f"{deparse(node.left)}{sep}{node.op}{sep}{deparse(node.right)}"
    raise TypeError(f"not a formula node: {node!r}")


def _is_r_name(name: str) -> bool:
    return re.fullmatch(r"[A-Za-z.][A-Za-z0-9._]*", name) is not None and not re.match(
        r"\.\d", name)
