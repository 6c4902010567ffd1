"""Compare: are two parsed answers the same mathematical object?

Answers are first put in a canonical shape (scalar, ordered tuple, unordered set, union of
intervals, equation, matrix); shapes are compared structurally and scalars by a comparator.
``ExactComparator`` decides scalars with exact rational arithmetic and bounded work, so it is safe in
the caller's process; when it cannot decide it raises ``NeedSympy`` and the caller hands the pair
to a worker process that uses ``restem.verifiers.math.symbolic.SympyComparator`` under a hard time limit.
"""

from __future__ import annotations

import math
from fractions import Fraction

__all__ = [
    "ExactComparator",
    "NeedSympy",
    "canonical",
    "decimal_places",
    "is_decimal_literal",
    "to_fraction",
    "values_equal",
]

_MAX_LITERAL_DIGITS = 400  # longer literals go to the worker (int() of 5000 digits is slow-ish)
_MAX_POWER_BITS = 4096


class NeedSympy(Exception):
    """The exact comparator cannot decide; the symbolic one (in a worker) must."""


# ---------------------------------------------------------------- numbers without sympy


def literal_fraction(text: str) -> Fraction:
    if len(text) > _MAX_LITERAL_DIGITS:
        raise NeedSympy
    if text.endswith("."):
        text = text[:-1]
    return Fraction(text)


def to_fraction(node) -> Fraction | None:
    """The exact rational value of a purely rational AST, else None. Bounded work."""
    kind = node[0]
    if kind == "num":
        return literal_fraction(node[1])
    if kind == "neg":
        v = to_fraction(node[1])
        return None if v is None else -v
    if kind in ("add", "sub", "mul", "div"):
        a, b = to_fraction(node[1]), to_fraction(node[2])
        if a is None or b is None:
            return None
        if kind == "add":
            return a + b
        if kind == "sub":
            return a - b
        if kind == "mul":
            return a * b
        return None if b == 0 else a / b
    if kind == "pow":
        base, exp = to_fraction(node[1]), to_fraction(node[2])
        if base is None or exp is None or exp.denominator != 1:
            return None
        size = max(base.numerator.bit_length(), base.denominator.bit_length())
        if abs(exp.numerator) > 10_000 or size * abs(exp.numerator) > _MAX_POWER_BITS:
            raise NeedSympy
        if base == 0 and exp < 0:
            return None
        return base**exp.numerator
    if kind == "mixed":
        whole, num, den = (literal_fraction(t) for t in node[1:])
        return None if den == 0 else whole + num / den
    if kind == "repeat":
        head, digits = node[1], node[2]
        if len(head) + len(digits) > 50:
            raise NeedSympy
        head = head if "." in head else head + "."
        whole, _, fixed = head.partition(".")
        base = Fraction(int(whole or "0")) + (
            Fraction(int(fixed), 10 ** len(fixed)) if fixed else 0
        )
        return base + Fraction(int(digits), (10 ** len(digits) - 1) * 10 ** len(fixed))
    if kind == "fact":
        v = to_fraction(node[1])
        if v is None or v.denominator != 1 or v < 0:
            return None
        if v > 200:
            raise NeedSympy
        return Fraction(math.factorial(int(v)))
    if kind == "binom":
        n, k = to_fraction(node[1]), to_fraction(node[2])
        if n is None or k is None or n.denominator != 1 or k.denominator != 1:
            return None
        if n > 1000 or n < 0 or k < 0:
            raise NeedSympy
        return Fraction(math.comb(int(n), int(k)))
    if kind == "abs":
        v = to_fraction(node[1])
        return None if v is None else abs(v)
    if kind == "sqrt":
        v = to_fraction(node[1])
        if v is None or v < 0:
            return None
        if max(v.numerator.bit_length(), v.denominator.bit_length()) > 2000:
            raise NeedSympy
        rn, rd = math.isqrt(v.numerator), math.isqrt(v.denominator)
        if rn * rn == v.numerator and rd * rd == v.denominator:
            return Fraction(rn, rd)
        return None
    return None


def is_decimal_literal(node) -> bool:
    if node[0] == "neg":
        node = node[1]
    return node[0] == "num" and "." in node[1]


def decimal_places(node) -> tuple[int, int]:
    """(significant digits, digits after the point) of a decimal literal."""
    if node[0] == "neg":
        node = node[1]
    text = node[1]
    whole, _, frac = text.partition(".")
    digits = (whole + frac).lstrip("0")
    return len(digits), len(frac)


def approximates(decimal_node, decimal_value: Fraction, exact, min_sig: int) -> bool:
    """A decimal with >= min_sig significant digits within one unit of its last digit."""
    sig, places = decimal_places(decimal_node)
    if sig < min_sig:
        return False
    if isinstance(exact, Fraction) and (exact * 10**places).denominator == 1:
        return False  # the exact value fits in that many places: 1.999999 is not 2
    return abs(decimal_value - exact) < Fraction(1, 10**places)


# ---------------------------------------------------------------- canonical shapes


def _is_infinite(node) -> bool:
    if node[0] == "neg":
        node = node[1]
    return node == ("const", "inf")


def _single_variable(node) -> bool:
    return node[0] == "sym" and node[1] not in ("i", "e")


def _expand_pm(node, budget: list[int]) -> list:
    """``a \\pm b`` -> [a + b, a - b], recursively; capped at 8 variants."""
    kind = node[0]
    if kind == "pm":
        a = node[1]
        bs = _expand_pm(node[2], budget)
        out = []
        for b in bs:
            if a is None:
                out += [b, ("neg", b)]
            else:
                for a_ in _expand_pm(a, budget):
                    out += [("add", a_, b), ("sub", a_, b)]
        budget[0] -= 1
        if len(out) > 8 or budget[0] < 0:
            raise ValueError("too many \\pm")
        return out
    if kind in ("add", "sub", "mul", "div", "pow"):
        lefts = _expand_pm(node[1], budget)
        rights = _expand_pm(node[2], budget)
        if len(lefts) == 1 and len(rights) == 1:
            return [node]
        return [(kind, x, y) for x in lefts for y in rights][:8]
    if kind == "neg":
        return [("neg", x) for x in _expand_pm(node[1], budget)]
    return [node]


def _interval(node):
    """An interval from a bracket pair, or None."""
    if node[0] != "tuple" or len(node[3]) != 2:
        return None
    _, open_, close, (lo, hi) = node
    if open_ == "(" and close == ")" and not (_is_infinite(lo) or _is_infinite(hi)):
        return None  # (a, b) is a point as much as an interval; decided at comparison time
    return (lo, hi, open_ == "[", close == "]")


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _inequality_intervals(ops, parts):
    """``a < x <= b``, ``x >= a``, ``a > x`` in one variable -> intervals, else None."""
    if any(op not in _FLIP for op in ops):
        return None
    neg_inf, pos_inf = ("neg", ("const", "inf")), ("const", "inf")
    if len(parts) == 2:
        (left, right), op = parts, ops[0]
        if _single_variable(right) and not _single_variable(left):
            left, right, op = right, left, _FLIP[op]
        if not _single_variable(left):
            return None
        if op in ("<", "<="):
            return [(neg_inf, right, False, op == "<=")]
        return [(right, pos_inf, op == ">=", False)]
    if len(parts) == 3 and _single_variable(parts[1]):
        lo, hi = parts[0], parts[2]
        op1, op2 = ops
        if op1 in (">", ">=") and op2 in (">", ">="):
            lo, hi, op1, op2 = hi, lo, _FLIP[op2], _FLIP[op1]
        if op1 in ("<", "<=") and op2 in ("<", "<="):
            return [(lo, hi, op1 == "<=", op2 == "<=")]
    return None


def canonical(node):
    """A parsed answer -> a canonical value (a tagged tuple)."""
    kind = node[0]
    if kind == "list":
        items = [canonical(x) for x in node[1]]
        flat = []
        for item in items:  # "x = 1, x = 2" and "1 \pm 2, 5" flatten into one set
            flat.extend(item[1] if item[0] == "set" and item[2] == "pm" else [item])
        if flat and all(item[0] == "ivl" for item in flat):  # "x < 1 or x > 2"
            return ("ivl", [part for item in flat for part in item[1]])
        return ("set", flat, "list")
    if kind == "set":
        return ("set", [canonical(x) for x in node[1]], "braces")
    if kind == "tuple":
        interval = _interval(node)
        if interval is not None:
            return ("ivl", [interval])
        return ("tuple", [canonical(x) for x in node[3]], node[1] + node[2])
    if kind == "union":
        parts = []
        for part in node[1]:
            value = canonical(part)
            if value[0] == "ivl":
                parts.extend(value[1])
            elif value[0] == "tuple" and len(value[1]) == 2 and value[2] == "()":
                parts.append((part[3][0], part[3][1], False, False))
            elif value[0] == "set" and all(v[0] == "scalar" for v in value[1]):
                parts.extend((v[1], v[1], True, True) for v in value[1])
            else:
                return ("union", [canonical(p) for p in node[1]])
        return ("ivl", parts)
    if kind == "rel":
        ops, parts = node[1], node[2]
        if all(op == "=" for op in ops):
            if _single_variable(parts[0]) and len(parts) == 2:
                return canonical(parts[-1])
            if len(parts) == 2 and _single_variable(parts[1]) and parts[0][0] != "sym":
                return canonical(parts[0])
            if len(parts) > 2 and all(_single_variable(p) for p in parts[:-1]):
                return canonical(parts[-1])
            if len(parts) == 2:
                return ("eq", parts[0], parts[1])
        intervals = _inequality_intervals(ops, parts)
        if intervals is not None:
            return ("ivl", intervals)
        return ("rel", tuple(ops), [canonical(p) for p in parts])
    if kind == "matrix":
        return ("matrix", [[canonical(x) for x in row] for row in node[1]])
    try:
        variants = _expand_pm(node, [16])
    except ValueError:
        return ("scalar", node)
    if len(variants) > 1:
        return ("set", [("scalar", v) for v in variants], "pm")
    return ("scalar", node)


# ---------------------------------------------------------------- structural equality


class ExactComparator:
    """Scalars by exact rational arithmetic; raises NeedSympy for anything else."""

    def __init__(self, min_sig_digits: int = 6):
        self.min_sig_digits = min_sig_digits

    def scalars_equal(self, a, b) -> bool:
        fa, fb = to_fraction(a), to_fraction(b)
        if fa is not None and fb is not None:
            return self.rationals_equal(a, fa, b, fb)
        if a == b:
            return True
        raise NeedSympy

    def rationals_equal(self, a, fa: Fraction, b, fb: Fraction) -> bool:
        if fa == fb:
            return True
        a_dec, b_dec = is_decimal_literal(a), is_decimal_literal(b)
        if a_dec and not b_dec:
            return approximates(a, fa, fb, self.min_sig_digits)
        if b_dec and not a_dec:
            return approximates(b, fb, fa, self.min_sig_digits)
        return False

    def equations_equal(self, l1, r1, l2, r2) -> bool:
        if (l1, r1) in ((l2, r2), (r2, l2)):
            return True
        raise NeedSympy


def _endpoint_equal(a, b, cmp) -> bool:
    if _is_infinite(a) or _is_infinite(b):
        return a == b or (a[0] == b[0] and _is_infinite(a) and _is_infinite(b))
    return cmp.scalars_equal(a, b)


def _intervals_equal(x, y, cmp) -> bool:
    return (
        x[2] == y[2]
        and x[3] == y[3]
        and _endpoint_equal(x[0], y[0], cmp)
        and _endpoint_equal(x[1], y[1], cmp)
    )


def _match_unordered(xs, ys, equal) -> bool:
    if len(xs) != len(ys):
        return False
    unmatched = list(ys)
    for x in xs:
        for j, y in enumerate(unmatched):
            if equal(x, y):
                del unmatched[j]
                break
        else:
            return False
    return True


def _as_vector(value):
    if value[0] == "matrix":
        rows = value[1]
        if len(rows) == 1:
            return rows[0]
        if all(len(r) == 1 for r in rows):
            return [r[0] for r in rows]
    if value[0] == "tuple" and value[2] in ("()", "[]", "<>"):
        return value[1]
    return None


def values_equal(g, r, cmp) -> bool:
    """Structural equality of canonical values; scalars are decided by ``cmp``."""
    gk, rk = g[0], r[0]
    if gk == "set" and rk != "set" and len(g[1]) == 1:
        return values_equal(g[1][0], r, cmp)
    if rk == "set" and gk != "set" and len(r[1]) == 1:
        return values_equal(g, r[1][0], cmp)
    if gk == "scalar" and rk == "scalar":
        return cmp.scalars_equal(g[1], r[1])
    if gk == "set" and rk == "set":
        return _match_unordered(g[1], r[1], lambda x, y: values_equal(x, y, cmp))
    if gk == "tuple" and rk == "tuple":
        if len(g[1]) != len(r[1]) or (g[2] != r[2] and "()" not in (g[2], r[2])):
            return False
        return all(values_equal(x, y, cmp) for x, y in zip(g[1], r[1]))
    if {gk, rk} == {"tuple", "ivl"}:
        point, ivl = (g, r) if gk == "tuple" else (r, g)
        if point[2] != "()" or len(point[1]) != 2 or len(ivl[1]) != 1:
            return False
        lo, hi, lo_closed, hi_closed = ivl[1][0]
        if lo_closed or hi_closed or any(v[0] != "scalar" for v in point[1]):
            return False
        return _endpoint_equal(point[1][0][1], lo, cmp) and _endpoint_equal(point[1][1][1], hi, cmp)
    if gk == "ivl" and rk == "ivl":
        return _match_unordered(g[1], r[1], lambda x, y: _intervals_equal(x, y, cmp))
    if gk == "matrix" and rk == "matrix":
        if [len(row) for row in g[1]] != [len(row) for row in r[1]]:
            return False
        return all(values_equal(x, y, cmp) for gr, rr in zip(g[1], r[1]) for x, y in zip(gr, rr))
    if "matrix" in (gk, rk) and "tuple" in (gk, rk):
        gv, rv = _as_vector(g), _as_vector(r)
        if gv is None or rv is None or len(gv) != len(rv):
            return False
        return all(values_equal(x, y, cmp) for x, y in zip(gv, rv))
    if gk == "eq" and rk == "eq":
        return cmp.equations_equal(g[1], g[2], r[1], r[2])
    if gk == "rel" and rk == "rel":
        if g[1] != r[1] or len(g[2]) != len(r[2]):
            return False
        return all(values_equal(x, y, cmp) for x, y in zip(g[2], r[2]))
    if gk == "union" and rk == "union":
        return _match_unordered(g[1], r[1], lambda x, y: values_equal(x, y, cmp))
    return False
