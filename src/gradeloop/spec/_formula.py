"""``calculate_output`` of a multi grader: a small, safe arithmetic language (no ``eval``).

Grammar, loosest binding first::

    expr  := term (("+" | "-") term)*
    term  := unary (("*" | "/") unary)*
    unary := ("+" | "-") unary | power
    power := atom ("^" unary)?           # right-associative: 2^3^2 = 2^9; -2^2 = -(2^2)
    atom  := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Names are the multi grader's keys. Functions: ``min`` and ``max`` (one or more arguments),
``abs``, ``floor``, ``ceil``, ``exp``, ``sqrt`` and ``log`` (natural logarithm; ``log(x, b)``
takes base ``b``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Formula", "FormulaError", "FormulaMathError", "parse_formula"]

_TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?|([A-Za-z_]\w*)|(\S))")
_FUNCTIONS: dict[str, tuple[Callable[..., float], int, int | None]] = {
    "min": (lambda *a: min(a), 1, None), "max": (lambda *a: max(a), 1, None), "abs": (abs, 1, 1), "floor": (math.floor, 1, 1),
    "ceil": (math.ceil, 1, 1), "exp": (math.exp, 1, 1), "sqrt": (math.sqrt, 1, 1), "log": (math.log, 1, 2),
}


class FormulaError(ValueError):
    """The formula does not parse, or names something unknown (``formula_parse_error``)."""


class FormulaMathError(ArithmeticError):
    """The formula parsed but its value is undefined for these scores (division by zero, …)."""


@dataclass
class _Node:
    op: str
    args: tuple[Any, ...]


class Formula:
    """A parsed formula; :meth:`evaluate` computes it for given variable values."""

    def __init__(self, text: str, tree: Any, names: set[str]) -> None:
        self.text = text
        self._tree = tree
        self.names = names

    def evaluate(self, values: dict[str, float]) -> float:
        """The formula's value; raises FormulaMathError when it is undefined."""
        try:
            result = float(_eval(self._tree, values))
        except (ZeroDivisionError, ValueError, OverflowError, TypeError) as exc:
            raise FormulaMathError(f"{self.text!r}: {exc}") from None
        if math.isnan(result) or math.isinf(result):
            raise FormulaMathError(f"{self.text!r} evaluates to {result}")
        return result


def _eval(node: Any, values: dict[str, float]) -> float:
    if isinstance(node, float):
        return node
    if isinstance(node, str):
        return values[node]
    args = [_eval(a, values) for a in node.args]
    op = node.op
    if op == "+":
        return args[0] + args[1]
    if op == "-":
        return args[0] - args[1]
    if op == "*":
        return args[0] * args[1]
    if op == "/":
        return args[0] / args[1]
    if op == "^":
        return math.pow(args[0], args[1])
    if op == "neg":
        return -args[0]
    return _FUNCTIONS[op][0](*args)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens: list[tuple[str, str]] = []
        for m in _TOKEN.finditer(text):
            number, name, other = m.groups()
            if number is not None:
                self.tokens.append(("num", m.group(0).strip()))
            elif name is not None:
                self.tokens.append(("name", name))
            elif other is not None:
                self.tokens.append(("op", other))
        self.pos = 0
        self.names: set[str] = set()

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise FormulaError(f"{self.text!r}: unexpected end of formula")
        if value is not None and token[1] != value:
            raise FormulaError(f"{self.text!r}: expected '{value}' but found '{token[1]}'")
        self.pos += 1
        return token

    def expr(self) -> Any:
        node = self.term()
        while (tok := self.peek()) and tok[1] in ("+", "-") and tok[0] == "op":
            self.take()
            node = _Node(tok[1], (node, self.term()))
        return node

    def term(self) -> Any:
        node = self.unary()
        while (tok := self.peek()) and tok[1] in ("*", "/") and tok[0] == "op":
            self.take()
            node = _Node(tok[1], (node, self.unary()))
        return node

    def unary(self) -> Any:
        tok = self.peek()
        if tok and tok[0] == "op" and tok[1] in ("+", "-"):
            self.take()
            inner = self.unary()
            return _Node("neg", (inner,)) if tok[1] == "-" else inner
        return self.power()

    def power(self) -> Any:
        base = self.atom()
        tok = self.peek()
        if tok and tok == ("op", "^"):
            self.take()
            return _Node("^", (base, self.unary()))
        return base

    def atom(self) -> Any:
        kind, value = self.take()
        if kind == "num":
            return float(value)
        if kind == "name":
            if self.peek() == ("op", "("):
                return self.call(value)
            self.names.add(value)
            return value
        if value == "(":
            node = self.expr()
            self.take(")")
            return node
        raise FormulaError(f"{self.text!r}: unexpected '{value}'")

    def call(self, name: str) -> Any:
        if name not in _FUNCTIONS:
            raise FormulaError(f"{self.text!r}: unknown function '{name}' (known: {', '.join(_FUNCTIONS)})")
        self.take("(")
        args = [self.expr()]
        while self.peek() == ("op", ","):
            self.take()
            args.append(self.expr())
        self.take(")")
        _, low, high = _FUNCTIONS[name]
        if len(args) < low or (high is not None and len(args) > high):
            expected = str(low) if high == low else (f"{low} to {high}" if high else f"{low} or more")
            raise FormulaError(f"{self.text!r}: {name}() takes {expected} argument(s), got {len(args)}")
        return _Node(name, tuple(args))


def parse_formula(text: str, names: set[str] | None = None) -> Formula:
    """Parse ``text``; with ``names``, every variable must be one of them.

    Returns a Formula; raises FormulaError naming the problem.
    """
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("calculate_output is empty")
    parser = _Parser(text)
    tree = parser.expr()
    if parser.peek() is not None:
        raise FormulaError(f"{text!r}: unexpected '{parser.peek()[1]}'")
    if names is not None:
        unknown = sorted(parser.names - set(names))
        if unknown:
            raise FormulaError(f"{text!r}: unknown name(s) {unknown}; the graders' keys are {sorted(names)}")
    return Formula(text, tree, parser.names)
