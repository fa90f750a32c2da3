"""Check the computations written in an answer: ``<<a*b=c>>`` annotations and ``a op b = c`` text.

Use it when an answer shows its working (math word problems, invoices, unit conversions): a
cheap model that writes ``15 + 26 = 40`` is wrong about the rest too, and a line of arithmetic
is the one thing in a free-text answer that can be checked exactly, without another model.

Policy: only what parses as plain arithmetic is judged (numbers, ``+ - * / x ÷ ^``, parentheses,
``%`` as /100, ``$`` and thousands commas ignored). Anything with words or variables in it is
skipped, never failed, so a false alarm needs a written computation that really is wrong. A
stated result may be rounded: ``10/3 = 3.33`` passes (half a unit of its last decimal).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

MAX_EXPONENT = 64.0
# Bounds that keep a pathological answer linear: an expression is read from at most the last
# MAX_EXPRESSION_CHARS before its "=", only the last MAX_TEXT_CHARS of an answer are checked
# (where its result is), and at most MAX_CHECKS computations.
MAX_EXPRESSION_CHARS = 160
MAX_TEXT_CHARS = 8_000
MAX_CHECKS = 200
_ANNOTATION = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_THOUSANDS = re.compile(r"(?<![\d.])(\d{1,3}(?:,\d{3})+)(?![\d,])")
_TIMES = re.compile(r"(?<=[\d)%\s])[x\u00d7](?=[\s\d($])")
# Runs of arithmetic characters; words and most punctuation end a run.
_OPERATORS = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("\\*", "*"),
    ("÷", "/"),
    ("⋅", "*"),
    ("·", "*"),
    ("$", ""),
    ("\\$", ""),
)
_RUN = re.compile(r"[0-9$.%\s+\-*/÷()^=]+")
_TOKEN = re.compile(r"\s*(?:(\d+\.?\d*|\.\d+)(%?)|(\*\*|[-+*/()^]))")


@dataclass(frozen=True, slots=True)
class Check:
    """One written computation: the expression, what the answer says it is, what it is."""

    expression: str
    stated_text: str
    stated: float
    computed: float

    @property
    def ok(self) -> bool:
        if agrees(self.computed, self.stated, self.stated_text):
            return True
        # "(6 / 12) * 100 = 50%": the percent sign names the unit, it does not divide again.
        return self.stated_text.endswith("%") and agrees(
            self.computed, self.stated * 100.0, self.stated_text[:-1]
        )


def agrees(computed: float, stated: float, stated_text: str = "") -> bool:
    """The stated value is the computed one, allowing rounding to the stated precision."""
    if math.isclose(computed, stated, rel_tol=1e-6, abs_tol=1e-9):
        return True
    text = stated_text or f"{stated:g}"
    decimals = len(text.split(".", 1)[1]) if "." in text else 0
    # Integers: within half a unit (money and people are rounded); a wrong digit is >= 1 off.
    return abs(computed - stated) <= 0.5 * 10.0**-decimals + 1e-9


def _tokens(expr: str) -> list[str] | None:
    out: list[str] = []
    pos = 0
    expr = expr.rstrip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if m is None:
            return None
        if m.group(1) is not None:
            value = m.group(1)
            out.append(f"{value}%" if m.group(2) else value)
        else:
            out.append("**" if m.group(3) == "^" else m.group(3))
        pos = m.end()
    return out


class _Parser:
    """Recursive descent over + - * / ** and parentheses; None for anything else."""

    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def parse(self) -> float | None:
        try:
            value = self._sum()
        except (ArithmeticError, ValueError, IndexError):
            return None
        if self.pos != len(self.tokens) or not math.isfinite(value):
            return None
        return value

    def _peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _sum(self) -> float:
        value = self._product()
        while self._peek() in ("+", "-"):
            op = self.tokens[self.pos]
            self.pos += 1
            rhs = self._product()
            value = value + rhs if op == "+" else value - rhs
        return value

    def _product(self) -> float:
        value = self._power()
        while self._peek() in ("*", "/"):
            op = self.tokens[self.pos]
            self.pos += 1
            rhs = self._power()
            value = value * rhs if op == "*" else value / rhs
        return value

    def _power(self) -> float:
        base = self._unary()
        if self._peek() == "**":
            self.pos += 1
            exponent = self._power()
            if abs(exponent) > MAX_EXPONENT:
                raise ValueError("exponent too large")
            return float(base**exponent)
        return base

    def _unary(self) -> float:
        if self._peek() == "-":
            self.pos += 1
            return -self._unary()
        if self._peek() == "+":
            self.pos += 1
            return self._unary()
        return self._atom()

    def _atom(self) -> float:
        token = self.tokens[self.pos]
        self.pos += 1
        if token == "(":
            value = self._sum()
            if self._peek() != ")":
                raise ValueError("unbalanced")
            self.pos += 1
            return value
        if token[0].isdigit() or token[0] == ".":
            return float(token[:-1]) / 100.0 if token.endswith("%") else float(token)
        raise ValueError(f"unexpected {token}")


def normalise(text: str) -> str:
    """Drop ``$`` and thousands commas; read x, times and divide signs as operators."""
    text = _THOUSANDS.sub(lambda m: m.group(1).replace(",", ""), text)
    for written, operator in _OPERATORS:
        text = text.replace(written, operator)
    return _TIMES.sub("*", text)


def evaluate(expr: str) -> float | None:
    """The value of a plain arithmetic expression, or None when it is not one."""
    tokens = _tokens(normalise(expr).strip())
    if not tokens:
        return None
    return _Parser(tokens).parse()


def _has_operator(expr: str) -> bool:
    tokens = _tokens(expr.strip()) or []
    return any(t in ("+", "-", "*", "/", "**") for t in tokens[1:])


def _longest_suffix(segment: str) -> tuple[str, float] | None:
    """The longest tail of ``segment`` that is an expression (text before '=' may be noise)."""
    stripped = segment.strip()[-MAX_EXPRESSION_CHARS:]
    for start in range(len(stripped)):
        if start and stripped[start - 1] not in " (":
            continue
        tail = stripped[start:].lstrip(" .")
        value = evaluate(tail) if tail else None
        if value is not None:
            return tail, value
    return None


def _leading_number(segment: str) -> tuple[str, float] | None:
    m = re.match(r"\s*(-?\s*(?:\d+\.?\d*|\.\d+))(%?)", segment)
    if m is None:
        return None
    text = m.group(1).replace(" ", "").rstrip(".")
    value = float(text) / (100.0 if m.group(2) else 1.0)
    return text + m.group(2), value


def _chain_checks(run: str) -> list[Check]:
    parts = run.split("=", MAX_CHECKS)[:MAX_CHECKS]
    out: list[Check] = []
    for i in range(len(parts) - 1):
        left = _longest_suffix(parts[i]) if i == 0 else None
        if i > 0:
            middle = parts[i].strip()
            if len(middle) > MAX_EXPRESSION_CHARS:
                continue
            value = evaluate(middle)
            left = (middle, value) if value is not None else None
        if left is None or not _has_operator(left[0]):
            continue
        nxt = parts[i + 1].strip()
        whole = evaluate(nxt) if i + 1 < len(parts) - 1 else None
        if whole is not None and _has_operator(nxt):
            continue  # an expression = an expression: checked when the chain reaches a number
        right = _leading_number(parts[i + 1])
        if right is None:
            continue
        out.append(Check(left[0], right[0], right[1], left[1]))
    return out


def _annotation_checks(text: str) -> list[Check]:
    out = []
    for m in _ANNOTATION.finditer(text):
        computed = evaluate(m.group(1))
        stated = _leading_number(normalise(m.group(2)))
        if computed is not None and stated is not None:
            out.append(Check(m.group(1).strip(), stated[0], stated[1], computed))
    return out


def find_checks(text: str) -> tuple[Check, ...]:
    """Every computation in ``text`` that can be checked, annotations first, in order."""
    text = text[-MAX_TEXT_CHARS:]
    out = _annotation_checks(text)
    plain = normalise(_ANNOTATION.sub(" ", text))
    for line in plain.splitlines():
        for m in _RUN.finditer(line):
            if "=" in m.group(0):
                out.extend(_chain_checks(m.group(0)))
            if len(out) >= MAX_CHECKS:
                return tuple(out[:MAX_CHECKS])
    return tuple(out)
