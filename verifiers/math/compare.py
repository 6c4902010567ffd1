"""Compare: are two parsed answers the same mathematical object?

Answers are first put in a canonical shape (scalar, ordered tuple, unordered set, union of
intervals, equation, matrix); shapes are compared structurally and scalars by a comparator.
``ExactComparator`` decides scalars with exact rational arithmetic and bounded work, so it is safe in
the caller's process; when it cannot decide it raises ``NeedSympy`` and the caller hands the pair
to a worker process that uses ``restem.verifiers.math.symbolic.SympyComparator`` under a hard time limit.
"""

from __future__ import annotations

import math
import operator
from fractions import Fraction

from restem.verifiers.math.parse import ParseError

__all__ = [
    "ARITHMETIC",
    "ExactComparator",
    "NeedSympy",
    "canonical",
    "decimal_places",
    "is_decimal_literal",
    "match_unordered",
    "to_fraction",
    "values_equal",
]

# The binary arithmetic nodes and their operators, for this exact evaluator and the sympy one.
ARITHMETIC = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
}
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
    if (
        kind in ("sub", "div")
        and node[1] == node[2]
        and (magnitude(node[1]) is not None or (kind == "sub" and _integral(node[1])))
    ):
        # X - X and X / X for a number X too large to evaluate (a finite one: it has a size)
        return Fraction(0) if kind == "sub" or magnitude(node[1])[0] == 0 else Fraction(1)
    if kind in ARITHMETIC:
        a, b = to_fraction(node[1]), to_fraction(node[2])
        if a is None or b is None or (kind == "div" and b == 0):
            return None
        return ARITHMETIC[kind](a, b)
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


# ---------------------------------------------------------------- magnitudes of huge numbers
#
# Towers (2^20^87^84) and factorial chains cannot be evaluated, but their sizes can: |x| is kept
# as T_level(v) with T_0(v) = v and T_{k+1}(v) = 2^T_k(v), in floats; level -1 holds numbers below
# 2^-1000 as 2^-v. Two numbers whose sizes
# differ clearly are different; that decides most hostile pairs in the caller, without sympy.
# Only "different" is ever concluded, and only when one side exceeds 2^1000, where a relative gap
# of 1e-6 between logarithms dwarfs the float error (cancellations that lose precision give up).

_HUGE_LOG = 1000.0  # level 0 holds |x| < 2^1000; above, its logarithm is kept instead
_MAX_LEVEL = 8
_LOG2_E = 1.4426950408889634


def _norm(sign: int, level: int, v: float):
    if sign == 0:
        return (0, 0, 0.0)
    if level < 0:
        return (sign, level, v) if _HUGE_LOG <= v < 2.0**_HUGE_LOG else None
    if v != v or v <= 0:  # nan, or a level-0 size that underflowed: unknown
        return None
    while level > 0 and v < _HUGE_LOG:
        v, level = 2.0**v, level - 1
    if v == math.inf:
        return None
    if v > 2.0**_HUGE_LOG:
        return _norm(sign, level + 1, math.log2(v)) if level < _MAX_LEVEL else None
    return (sign, level, v)


def _log2_of(m):
    """log2|x| as a signed magnitude (x != 0)."""
    _, level, v = m
    if level > 0:
        return (1, level - 1, v)
    if level < 0:
        return (-1, 0, v)
    y = math.log2(v)
    return (0, 0, 0.0) if y == 0 else (1 if y > 0 else -1, 0, abs(y))


def _exp2_of(m):
    if m is None:
        return None
    sign, level, v = m
    if sign == 0:
        return (1, 0, 1.0)
    if level == 0:
        y = sign * v
        if y < -_HUGE_LOG:
            return (1, -1, -y)  # below 2^-1000
        return _norm(1, 1, y) if y > _HUGE_LOG else _norm(1, 0, 2.0**y)
    return None if sign < 0 else _norm(1, level + 1, v)


def _abs_less(a, b) -> bool:
    return (a[1], a[2] if a[1] >= 0 else -a[2]) < (b[1], b[2] if b[1] >= 0 else -b[2])


def _negated(m):
    return (-m[0], m[1], m[2])


def _signed_add(a, b, loss: list[float]):
    if a is None or b is None:
        return None
    if a[0] == 0:
        return b
    if b[0] == 0:
        return a
    if a[1] == 0 and b[1] == 0:
        total = a[0] * a[2] + b[0] * b[2]
        big = max(a[2], b[2])
        if total == 0:
            return None  # exact cancellation in floats proves nothing
        if a[0] != b[0] and abs(total) < 1e-2 * big:
            loss[0] *= big / abs(total)  # cancellation: relative precision lost
            if loss[0] > 1e6:
                return None
        return _norm(1 if total > 0 else -1, 0, abs(total))
    # at least one side beyond 2^1000: add in log space, log2|big| + log2(1 +- 2^-gap)
    big, small = (a, b) if _abs_less(b, a) else (b, a)
    log_big = _log2_of(big)
    gap = _signed_add(log_big, _negated(_log2_of(small)), loss)
    if gap is None or gap[0] <= 0:
        return None  # equal or unknown sizes: the sum or difference is out of reach
    if gap[1] > 0 or gap[2] > 1100:
        return big
    same = a[0] == b[0]
    if not same and gap[2] < 0.5:
        return None
    corr = math.log2(1 + (1 if same else -1) * 2.0 ** -gap[2])
    if corr == 0:
        return big
    out = _exp2_of(_signed_add(log_big, (1 if corr > 0 else -1, 0, abs(corr)), loss))
    return None if out is None else (big[0], out[1], out[2])


def _signed_mul(a, b, loss: list[float]):
    if a is None or b is None:
        return None
    if a[0] == 0 or b[0] == 0:
        return (0, 0, 0.0)
    log = _signed_add(_log2_of(a), _log2_of(b), loss)
    out = None if log is None else _exp2_of(log)
    return None if out is None else (a[0] * b[0], out[1], out[2])


def _integral(node) -> bool:
    kind = node[0]
    if kind == "num":
        return "." not in node[1]
    if kind in ("add", "sub", "mul"):
        return _integral(node[1]) and _integral(node[2])
    if kind in ("neg", "fact"):
        return _integral(node[1])
    if kind == "pow":
        return _integral(node[1]) and _integral(node[2]) and node[2][0] != "neg"
    return False


def magnitude(
    node,
    budget: list[int] | None = None,
    loss: list[float] | None = None,
    point: float | None = None,
):
    """(sign, level, v) with |x| = T_level(v), for a number built from literals, + - * / ^ !,
    roots and logarithms; with ``point``, every variable takes that value. None when unknown.
    Bounded work (a node budget)."""
    budget = [200] if budget is None else budget
    loss = [1.0] if loss is None else loss
    budget[0] -= 1
    if budget[0] < 0:
        return None
    kind = node[0]
    rec = lambda child: magnitude(child, budget, loss, point)  # noqa: E731
    if kind == "num":
        return _literal_magnitude(node[1])
    if kind == "const":
        return (1, 0, math.pi) if node[1] == "pi" else None
    if kind == "sym":
        if node[1] == "e":
            return (1, 0, math.e)
        return (1, 0, point) if point is not None and _single_variable(node) else None
    if kind == "log":
        arg = rec(node[2])
        base = (1, 0, math.e) if node[1] is None else rec(node[1])
        if arg is None or base is None or arg[0] <= 0 or base[0] <= 0:
            return None
        log_base = _log2_of(base)
        if log_base[0] == 0 or log_base[1] != 0:
            return None
        out = _signed_mul(_log2_of(arg), (log_base[0], 0, 1.0 / log_base[2]), loss)
        return out
    if kind == "neg":
        m = rec(node[1])
        return None if m is None else (-m[0], m[1], m[2])
    if kind == "abs":
        m = rec(node[1])
        return None if m is None else (abs(m[0]), m[1], m[2])
    if kind == "sub" and node[1] == node[2] and _integral(node[1]):
        return (0, 0, 0.0)  # X - X for an integer X, however large
    if kind == "div" and node[1] == node[2]:
        inner = rec(node[1])
        return None if inner is None or inner[0] == 0 else (1, 0, 1.0)  # X / X
    if kind in ("add", "sub"):
        a, b = rec(node[1]), rec(node[2])
        if a is None or b is None:
            return None
        return _signed_add(a, _negated(b) if kind == "sub" else b, loss)
    if kind in ("mul", "div"):
        a, b = rec(node[1]), rec(node[2])
        if a is None or b is None:
            return None
        if kind == "mul":
            return _signed_mul(a, b, loss)
        if b[0] == 0:
            return None
        if a[0] == 0:
            return a
        out = _exp2_of(_signed_add(_log2_of(a), _negated(_log2_of(b)), loss))
        return None if out is None else (a[0] * b[0], out[1], out[2])
    if kind == "pow":
        base, exp = rec(node[1]), rec(node[2])
        if base is None or exp is None:
            return None
        if base[0] == 0:
            return (0, 0, 0.0) if exp[0] > 0 else None
        sign = 1
        if base[0] < 0:
            if not _integral(node[2]):
                return None
            parity = _rational(node[2]) if exp[1] == 0 and exp[2] < 1e15 else None
            if parity is None:
                return None
            sign = -1 if parity.numerator % 2 else 1
        log = _signed_mul(_log2_of(base), exp, loss)
        out = None if log is None else _exp2_of(log)
        return None if out is None else (sign, out[1], out[2])
    if kind in ("sqrt", "root"):
        a = rec(node[1])
        n = (1, 0, 2.0) if kind == "sqrt" else rec(node[2])
        if a is None or n is None or a[0] < 0 or n[0] <= 0 or n[1] > 0:
            return None
        if a[0] == 0:
            return a
        out = _exp2_of(_signed_mul(_log2_of(a), (1, 0, 1.0 / n[2]), loss))
        return None if out is None else (1, out[1], out[2])
    if kind == "fact":
        n = rec(node[1])
        if n is None or n[0] < 0 or n[1] < 0 or not _integral(node[1]):
            return None
        if n[0] == 0:
            return (1, 0, 1.0)
        if n[1] == 0:
            log = math.lgamma(n[2] + 1) / math.log(2)
            return _exp2_of((1, 0, log)) if log > 0 else (1, 0, 1.0)
        # log2(n!) = n (log2 n - log2 e) + O(log n): relatively exact at these sizes
        ln = _log2_of(n)
        log = _signed_mul(n, _signed_add(ln, (-1, 0, _LOG2_E), loss), loss)
        return None if log is None else _exp2_of(log)
    if kind == "binom":
        return _binom_magnitude(rec(node[1]), rec(node[2]), node, loss)
    if kind in ("mixed", "repeat"):
        value = _rational(node)
        if value is None:
            return None
        return _norm((value > 0) - (value < 0), 0, abs(float(value)))
    return None


def _binom_magnitude(n, k, node, loss: list[float]):
    """C(n, k) for an integer n beyond 2^1000 (or below 10^9) and a small integer k."""
    if n is None or k is None or n[0] <= 0 or k[0] < 0 or k[1] != 0 or k[2] > 1e9:
        return None
    if not (_integral(node[1]) and _integral(node[2])):
        return None
    if k[0] == 0:
        return (1, 0, 1.0)
    if n[1] == 0:
        if n[2] > 1e9 or k[2] > n[2]:
            return None
        log = math.lgamma(n[2] + 1) - math.lgamma(k[2] + 1) - math.lgamma(n[2] - k[2] + 1)
        return _exp2_of((1, 0, log / math.log(2))) if log > 0 else None
    # n far beyond k: log2 C(n, k) = k log2 n - log2 k! (relative error about k^2 / n)
    first = _signed_mul((1, 0, k[2]), _log2_of(n), loss)
    log = _signed_add(first, (-1, 0, math.lgamma(k[2] + 1) / math.log(2)), loss)
    return None if log is None else _exp2_of(log)


def _literal_magnitude(text: str):
    text = text.rstrip(".") or "0"
    whole, _, frac = text.partition(".")
    whole = whole.lstrip("0")
    digits = (whole + frac).lstrip("0")
    if not digits:
        return (0, 0, 0.0)
    if len(text) < 300:
        return _norm(1, 0, float(text))
    # a huge literal: its leading digits times a power of ten
    zeros = len(frac) - len(frac.lstrip("0"))
    exponent = len(whole) - 17 if whole else -zeros - 17
    log = math.log2(float(digits[:17])) + exponent * math.log2(10)
    if log < -_HUGE_LOG:
        return (1, -1, -log)
    return _norm(1, 1, log) if log > 0 else _norm(1, 0, 2.0**log)


def _folded(node, budget: list[int]):
    """``node`` with every subtree that has a small exact value replaced by that value, so that
    ``2^{2^{2^{2^{2^2}}}}`` and ``2^{2^{2^{16}}}`` read the same."""
    budget[0] -= 1
    if budget[0] < 0 or node[0] in ("num", "sym", "const"):
        return node
    value = _rational(node)
    if value is not None and value.denominator == 1 and value.numerator.bit_length() < 4096:
        return _frac_node(value)
    return (node[0], *(_folded(c, budget) if isinstance(c, tuple) else c for c in node[1:]))


def _has_unknown(node) -> bool:
    found: set = set()
    try:
        _unknowns(node, found, [400])
    except ValueError:
        return True
    return any(x[0] == "sym" for x in found)


def _reach(node, budget: list[int]) -> tuple[int, bool, bool]:
    """(tower height, contains a factorial, out of reach) of ``node``; see ``out_of_reach``."""
    budget[0] -= 1
    if budget[0] < 0:
        return 0, False, True
    kind = node[0]
    children = [c for c in node[1:] if isinstance(c, tuple)]
    for c in node[1:]:
        if isinstance(c, list):
            children.extend(x for x in c if isinstance(x, tuple))
    results = [_reach(c, budget) for c in children]
    height = max((r[0] for r in results), default=0)
    has_fact = any(r[1] for r in results)
    if any(r[2] for r in results):
        return height, has_fact, True
    if kind == "fact":
        if has_fact and _has_unknown(node):
            return height, True, True  # (n!)!: no sample point keeps it finite in time
        return height, True, False
    if kind == "pow":
        height += 1
        if _has_unknown(node):
            if height >= 3 and _has_unknown(node[2]):
                return height, has_fact, True  # 9^{27^{x^9}}
            for part in node[1:3]:
                if not _has_unknown(part):
                    size = magnitude(part)
                    if size is None or size[1] != 0:
                        return height, has_fact, True  # x^{47^{54^{12}}}
    return height, has_fact, False


def out_of_reach(node) -> bool:
    """An expression no evaluation settles within a time limit: a variable in the exponent of a
    tower of three or more powers, a factorial of a factorial of a variable, a variable raised to
    (or raising) a constant beyond 2^1000."""
    return _reach(node, [400])[2]


def sizes_differ(a, b) -> bool:
    """Are two numbers different by their sizes? Only decided when one exceeds 2^1000; ordinary
    sizes are left to the exact or symbolic comparison. Two numbers beyond 2^(2^1000) that are
    not written identically count as different: nothing could evaluate them to confirm it.
    Expressions in variables are sized at one point (all variables 1.37): equal expressions are
    equal there too, so sizes that differ at that point prove them different."""
    a_var, b_var = _has_unknown(a), _has_unknown(b)
    if a_var != b_var:
        # an expression in a variable against a number beyond 2^1000 (or below 2^-1000): only a
        # contrived expression (x - x + 2^{5000}) could be equal, so it is not
        known = magnitude(b if a_var else a)
        if known is not None and known[1] != 0:
            return True
    if a_var or b_var:
        ma, mb = magnitude(a, point=_POINT), magnitude(b, point=_POINT)
        if ma is None or mb is None or (ma[1] == 0 and mb[1] == 0):
            return False  # undefined there, or ordinary sizes: sympy decides
        return _sizes_apart(ma, mb)
    ma, mb = magnitude(a), magnitude(b)
    if ma is None or mb is None or (ma[1] == 0 and mb[1] == 0):
        return False
    if ma[1] >= 2 and mb[1] >= 2 and ma[0] == mb[0]:
        return _folded(a, [400]) != _folded(b, [400])
    return _sizes_apart(ma, mb)


_POINT = 1.37


def _sizes_apart(ma, mb) -> bool:
    if ma[0] != mb[0]:
        return True
    if -1 in (ma[1], mb[1]):  # below 2^-1000: apart from anything at level 0 or above
        return ma[1] != mb[1] or abs(ma[2] - mb[2]) > 1e-6 * max(ma[2], mb[2])
    while ma[1] < mb[1]:  # lift both to one level and compare there with a wide margin
        ma = (ma[0], ma[1] + 1, math.log2(ma[2]) if ma[2] > 0 else -math.inf)
    while mb[1] < ma[1]:
        mb = (mb[0], mb[1] + 1, math.log2(mb[2]) if mb[2] > 0 else -math.inf)
    if math.inf in (-ma[2], -mb[2]):  # a small one lifted past zero: far below the other
        return True
    return abs(ma[2] - mb[2]) > 1e-6 * max(abs(ma[2]), abs(mb[2]))


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


def _label(node) -> bool:
    """A name a value is given to: ``x``, ``a_1``, ``f(x)`` (an application to variables)."""
    if _single_variable(node):
        return True
    if node[0] == "ratio":  # V_1 : V_2 = 11 : 21
        return all(_label(x) for x in node[1])
    if node[0] != "apply":
        return False
    arg = node[2]
    args = arg[3] if arg[0] == "tuple" else [arg]
    return all(_single_variable(a) for a in args)


def _is_set_like(node) -> bool:
    """Written as a set: braces, an interval with an infinite end, a union or a difference."""
    kind = node[0]
    if kind in ("set", "union", "diff", "builder"):
        return True
    if kind != "tuple" or len(node[3]) != 2:
        return False
    return node[1] + node[2] != "()" or any(_is_infinite(x) for x in node[3])


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
_NEG_INF, _POS_INF = ("neg", ("const", "inf")), ("const", "inf")


def _rational(node) -> Fraction | None:
    try:
        return to_fraction(node)
    except NeedSympy:
        return None


def _frac_node(value: Fraction):
    magnitude = ("num", str(abs(value.numerator)))
    if value.denominator != 1:
        magnitude = ("div", magnitude, ("num", str(value.denominator)))
    return ("neg", magnitude) if value < 0 else magnitude


def _unknowns(node, found: set, budget: list[int]) -> None:
    """The unknowns of an expression: variables, and applications like f(x) taken whole."""
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError("expression too large")
    kind = node[0]
    if kind == "sym":
        if _single_variable(node):
            found.add(node)
    elif kind == "apply":
        found.add(node)
    elif kind not in ("num", "const", "repeat", "mixed"):
        for child in node[1:]:
            if isinstance(child, tuple):
                _unknowns(child, found, budget)
            elif isinstance(child, list):
                for item in child:
                    if isinstance(item, tuple):
                        _unknowns(item, found, budget)


def _linear(node, var):
    """``node`` as ``k * var + b``: (k, b) with k rational and b an expression (None for 0);
    None when ``node`` is not linear in ``var`` with a rational coefficient."""
    if node == var:
        return Fraction(1), None
    kind = node[0]
    found: set = set()
    _unknowns(node, found, [400])
    if var not in found:
        return Fraction(0), node
    if kind == "neg":
        inner = _linear(node[1], var)
        if inner is None:
            return None
        k, b = inner
        return -k, (None if b is None else ("neg", b))
    if kind in ("add", "sub"):
        left, right = _linear(node[1], var), _linear(node[2], var)
        if left is None or right is None:
            return None
        (k1, b1), (k2, b2) = left, right
        k = k1 + k2 if kind == "add" else k1 - k2
        if b2 is None:
            b = b1
        elif b1 is None:
            b = b2 if kind == "add" else ("neg", b2)
        else:
            b = (kind, b1, b2)
        return k, b
    if kind in ("mul", "div"):
        left = _linear(node[1], var)
        if kind == "mul" and left is not None and left[0] == 0:
            c, other = _rational(node[1]), _linear(node[2], var)
        else:
            c, other = _rational(node[2]), left
        if c is None or other is None or (kind == "div" and c == 0):
            return None
        factor = c if kind == "mul" else 1 / c
        k, b = other
        return k * factor, (None if b is None else ("mul", b, _frac_node(factor)))
    return None


def _solve_side(expr, var):
    """``expr`` = k * var + b -> (k, b), with k != 0; else None."""
    lin = _linear(expr, var)
    if lin is None or lin[0] == 0:
        return None
    return lin


def _isolate(bound, k: Fraction, b):
    """The value of var where ``k * var + b == bound``, as an AST."""
    shifted = bound if b is None else ("sub", bound, b)
    return shifted if k == 1 else ("div", shifted, _frac_node(k))


def _abs_intervals(lo, lo_closed, hi, hi_closed):
    """The intervals where ``lo <(=) |u| <(=) hi`` (``None`` ends are infinite), in u; rational
    bounds only. Returns a list of (lo, hi, lo_closed, hi_closed) Fraction-or-None tuples."""
    if lo is not None and hi is not None and lo > hi:
        return []
    if lo is not None and lo < 0:
        lo, lo_closed = None, False
    if hi is not None and (hi < 0 or (hi == 0 and not hi_closed)):
        return []
    if lo is None or (lo == 0 and lo_closed):
        return [(None if hi is None else -hi, hi, hi_closed, hi_closed)]
    neg_lo = None if hi is None else -hi
    return [(neg_lo, -lo, hi_closed, lo_closed), (lo, hi, lo_closed, hi_closed)]


def _inequality_intervals(ops, parts):
    """A relation in one unknown (``a < x <= b``, ``-x > -1``, ``|x| \\ge 2``, ``x \\ne 3``)
    -> its solution set as intervals, else None."""
    if len(parts) not in (2, 3) or any(op not in _FLIP and op != "!=" for op in ops):
        return None
    if "!=" in ops and len(parts) != 2:
        return None
    found: set = set()
    try:
        for part in parts:
            _unknowns(part, found, [400])
    except ValueError:
        return None
    if len(found) != 1:
        return None
    (var,) = found
    if len(parts) == 2:
        left, right = parts
        op = ops[0]
        left_unknowns: set = set()
        _unknowns(left, left_unknowns, [400])
        if not left_unknowns:
            left, right, op = right, left, _FLIP.get(op, op)
        found_right: set = set()
        _unknowns(right, found_right, [400])
        if found_right:
            return None
        # lo-side: "x > a" -> (a, oo); as a double inequality with one open side
        if op == "!=":
            return _ne_intervals(left, right, var)
        if op in ("<", "<="):
            return _double(left, var, None, False, right, op == "<=")
        return _double(left, var, right, op == ">=", None, False)
    lo, mid, hi = parts
    op1, op2 = ops
    if op1 in (">", ">=") and op2 in (">", ">="):
        lo, hi, op1, op2 = hi, lo, _FLIP[op2], _FLIP[op1]
    if not (op1 in ("<", "<=") and op2 in ("<", "<=")):
        return None
    side: set = set()
    _unknowns(lo, side, [400])
    _unknowns(hi, side, [400])
    if side:
        return None
    return _double(mid, var, lo, op1 == "<=", hi, op2 == "<=")


def _ne_intervals(expr, bound, var):
    lin = _solve_side(expr, var)
    if lin is None:
        return None
    point = _isolate(bound, *lin)
    return [(_NEG_INF, point, False, False), (point, _POS_INF, False, False)]


def _double(expr, var, lo, lo_closed, hi, hi_closed):
    """Where ``lo <(=) expr <(=) hi`` (None: no bound on that side), in ``var``."""
    if expr[0] == "abs":
        return _abs_double(expr[1], var, lo, lo_closed, hi, hi_closed)
    lin = _solve_side(expr, var)
    if lin is None:
        return None
    k, b = lin
    lo_end = _NEG_INF if lo is None else _isolate(lo, k, b)
    hi_end = _POS_INF if hi is None else _isolate(hi, k, b)
    lo_closed, hi_closed = lo_closed and lo is not None, hi_closed and hi is not None
    if k < 0:  # dividing by a negative coefficient flips the interval and its brackets
        lo_end, hi_end = hi_end, lo_end
        lo_end = _NEG_INF if hi is None else lo_end
        hi_end = _POS_INF if lo is None else hi_end
        lo_closed, hi_closed = hi_closed, lo_closed
    return [(lo_end, hi_end, lo_closed, hi_closed)]


def _abs_double(inner, var, lo, lo_closed, hi, hi_closed):
    lin = _solve_side(inner, var)
    if lin is None:
        return None
    k, b = lin
    b_value = Fraction(0) if b is None else _rational(b)
    lo_value = None if lo is None else _rational(lo)
    hi_value = None if hi is None else _rational(hi)
    if (
        b_value is None
        or (lo is not None and lo_value is None)
        or (hi is not None and hi_value is None)
    ):
        return None
    out = []
    for u_lo, u_hi, c_lo, c_hi in _abs_intervals(lo_value, lo_closed, hi_value, hi_closed):
        # u = k x + b  ->  x = (u - b) / k
        x_lo = None if u_lo is None else (u_lo - b_value) / k
        x_hi = None if u_hi is None else (u_hi - b_value) / k
        if k < 0:
            x_lo, x_hi, c_lo, c_hi = x_hi, x_lo, c_hi, c_lo
        out.append(
            (
                _NEG_INF if x_lo is None else _frac_node(x_lo),
                _POS_INF if x_hi is None else _frac_node(x_hi),
                c_lo and x_lo is not None,
                c_hi and x_hi is not None,
            )
        )
    return out


def _builder(node):
    """``\\{x \\mid x < 3\\}`` -> the intervals its conditions describe (over the reals)."""
    _, var, domain, conditions = node
    if domain is not None and canonical(domain) != ("ivl", [(_NEG_INF, _POS_INF, False, False)]):
        raise ParseError("set-builder over a domain other than the reals")
    parts = []
    for condition in conditions:
        found: set = set()
        _unknowns(condition, found, [400])
        value = canonical(condition)
        if found != {("sym", var)} or value[0] != "ivl":
            raise ParseError("set-builder condition is not an inequality in its variable")
        parts.extend(value[1])
    return ("ivl", parts)


def _bound(node, upper: bool):
    """An interval end as a Fraction; None for the matching infinity; raises ValueError else."""
    if _is_infinite(node):
        if (node[0] == "neg") == upper:
            raise ValueError("reversed infinity")
        return None
    value = _rational(node)
    if value is None:
        raise ValueError("not a rational end")
    return value


def _upper_less(v1, c1, v2, c2) -> bool:
    """Is the upper end (v1, closed c1) below (v2, c2)? None is +infinity."""
    if v1 is None or v2 is None:
        return v2 is None and v1 is not None
    return v1 < v2 or (v1 == v2 and c2 and not c1)


def _nonempty(lo, hi, lo_closed, hi_closed) -> bool:
    return lo is None or hi is None or lo < hi or (lo == hi and lo_closed and hi_closed)


def _subtract(a, b) -> list:
    al, ah, alc, ahc = a
    bl, bh, blc, bhc = b
    out = []
    if bl is not None:  # the part of a below b
        hi, hic = (ah, ahc) if _upper_less(ah, ahc, bl, not blc) else (bl, not blc)
        if _nonempty(al, hi, alc, hic):
            out.append((al, hi, alc, hic))
    if bh is not None:  # the part of a above b
        above = al is not None and (al > bh or (al == bh and not (alc and bhc)))
        lo, loc = (al, alc) if above else (bh, not bhc)
        if _nonempty(lo, ah, loc, ahc):
            out.append((lo, ah, loc, ahc))
    return out


def _difference(a, b):
    """``A \\setminus B`` for intervals and finite sets with rational ends; else kept as is."""
    try:
        if a[0] == "ivl":
            pieces = [(_bound(lo, False), _bound(hi, True), lc, hc) for lo, hi, lc, hc in a[1]]
        else:
            raise ValueError("not intervals")
        if b[0] == "set" and all(v[0] == "scalar" for v in b[1]):
            holes = [(p, p, True, True) for p in (_bound(v[1], True) for v in b[1])]
        elif b[0] == "ivl":
            holes = [(_bound(lo, False), _bound(hi, True), lc, hc) for lo, hi, lc, hc in b[1]]
        else:
            raise ValueError("not intervals")
        if any(h[0] is None and h[1] is None and (h[2] or h[3]) for h in holes):
            raise ValueError("odd hole")
        for hole in holes[:64]:
            pieces = [part for piece in pieces for part in _subtract(piece, hole)][:256]
    except ValueError:
        return ("diff", a, b)
    return (
        "ivl",
        [
            (
                _NEG_INF if lo is None else _frac_node(lo),
                _POS_INF if hi is None else _frac_node(hi),
                lc,
                hc,
            )
            for lo, hi, lc, hc in pieces
        ],
    )


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
        flat = []
        for item in (canonical(x) for x in node[1]):  # \{1 \pm \sqrt5, -2\} has three members
            flat.extend(item[1] if item[0] == "set" and item[2] == "pm" else [item])
        return ("set", flat, "braces")
    if kind == "ratio":
        return ("ratio", [canonical(x) for x in node[1]])
    if kind == "builder":
        return _builder(node)
    if kind == "diff" or (kind == "sub" and _is_set_like(node[1]) and _is_set_like(node[2])):
        return _difference(canonical(node[1]), canonical(node[2]))
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
        if "~" in ops:  # "a \approx 1.36": the approximation is commentary on the exact value
            cut = ops.index("~")
            if cut == 0:  # "x \approx 1.36": only an approximate value is given; "a \approx b": a
                return canonical(parts[1] if _label(parts[0]) else parts[0])
            ops, parts = ops[:cut], parts[: cut + 1]
        if all(op == "=" for op in ops):
            if _label(parts[0]) and len(parts) == 2:
                return canonical(parts[-1])
            if len(parts) == 2 and _label(parts[1]) and parts[0][0] not in ("sym", "apply"):
                return canonical(parts[0])
            if len(parts) > 2 and all(_label(p) for p in parts[:-1]):
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
        try:
            fa, fb = to_fraction(a), to_fraction(b)
        except NeedSympy:
            if a == b or _folded(a, [400]) == _folded(b, [400]):
                return True
            if sizes_differ(a, b):  # towers, factorial chains: different sizes, decided here
                return False
            if out_of_reach(a) or out_of_reach(b):
                return False  # not written alike (checked above)
            raise
        if fa is not None and fb is not None:
            return self.rationals_equal(a, fa, b, fb)
        if a == b:
            return True
        if sizes_differ(a, b):
            return False
        if out_of_reach(a) or out_of_reach(b):
            return _folded(a, [400]) == _folded(b, [400])  # equal only when written alike
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


def match_unordered(xs, ys, equal) -> bool:
    """Whether ``xs`` and ``ys`` pair off one to one under ``equal``, in any order."""
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


def _ratios_equal(g, r, cmp) -> bool:
    """Ratios are equal when proportional (``2:4`` = ``1:2``); ``a:b`` also equals the number a/b."""
    if g[0] != "ratio":
        g, r = r, g
    if any(x[0] != "scalar" for x in g[1]):
        return False
    if r[0] == "scalar":
        return len(g[1]) == 2 and cmp.scalars_equal(("div", g[1][0][1], g[1][1][1]), r[1])
    if r[0] != "ratio" or len(r[1]) != len(g[1]) or any(x[0] != "scalar" for x in r[1]):
        return False
    gs, rs = [x[1] for x in g[1]], [x[1] for x in r[1]]
    if any(_rational(x) == 0 for x in gs + rs):  # no scaling with a zero term: compare as written
        return all(cmp.scalars_equal(x, y) for x, y in zip(gs, rs))
    return all(
        cmp.scalars_equal(("mul", gi, rs[0]), ("mul", ri, gs[0])) for gi, ri in zip(gs[1:], rs[1:])
    )


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
        return match_unordered(g[1], r[1], lambda x, y: values_equal(x, y, cmp))
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
        return match_unordered(g[1], r[1], lambda x, y: _intervals_equal(x, y, cmp))
    if gk == "matrix" and rk == "matrix":
        if [len(row) for row in g[1]] != [len(row) for row in r[1]]:
            return False
        return all(values_equal(x, y, cmp) for gr, rr in zip(g[1], r[1]) for x, y in zip(gr, rr))
    if "matrix" in (gk, rk) and "tuple" in (gk, rk):
        gv, rv = _as_vector(g), _as_vector(r)
        if gv is None or rv is None or len(gv) != len(rv):
            return False
        return all(values_equal(x, y, cmp) for x, y in zip(gv, rv))
    if gk == "ratio" or rk == "ratio":
        return _ratios_equal(g, r, cmp)
    if gk == "diff" and rk == "diff":
        return values_equal(g[1], r[1], cmp) and values_equal(g[2], r[2], cmp)
    if gk == "eq" and rk == "eq":
        return cmp.equations_equal(g[1], g[2], r[1], r[2])
    if gk == "rel" and rk == "rel":
        if g[1] != r[1] or len(g[2]) != len(r[2]):
            return False
        return all(values_equal(x, y, cmp) for x, y in zip(g[2], r[2]))
    if gk == "union" and rk == "union":
        return match_unordered(g[1], r[1], lambda x, y: values_equal(x, y, cmp))
    return False
