"""Symbolic comparison with sympy. Imported only inside worker processes, which run under a hard
time limit (``restem.verifiers.pool``): sympy can hang or eat memory on hostile input, and only a process
boundary stops it.

Building the sympy expression from our own AST (never from text through ``eval``) lets us refuse to
evaluate towers like ``2^{2^{2^{2^{2^2}}}}`` or ``(10^9)!``: they are kept unevaluated.
"""

from __future__ import annotations

import random
from fractions import Fraction

import sympy
from restem.verifiers.math.compare import (
    ARITHMETIC,
    ExactComparator,
    NeedSympy,
    approximates,
    is_decimal_literal,
    to_fraction,
)

__all__ = ["SympyComparator", "to_sympy"]

_MAX_EXPONENT = 1000
_MAX_FACTORIAL = 1000
_PRECISION = 50
_FUNCTIONS = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "arcsec": sympy.asec,
    "arccsc": sympy.acsc,
    "arccot": sympy.acot,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "ln": sympy.log,
}


_MAX_POWER_BITS = 100_000


def _power_bits(base, exp) -> int:
    return max(int(base.p).bit_length(), int(base.q).bit_length()) * abs(int(exp))


def _small_number(expr) -> bool:
    return expr.is_Number and abs(expr) <= _MAX_EXPONENT


def to_sympy(node):
    kind = node[0]
    if kind == "num":
        text = node[1].rstrip(".") or "0"
        return sympy.Rational(text) if "." in text else sympy.Integer(text)
    if kind == "sym":
        name = node[1]
        if name == "i":
            return sympy.I
        if name == "e":
            return sympy.E
        return sympy.Symbol(name)
    if kind == "const":
        return sympy.pi if node[1] == "pi" else sympy.oo
    if kind == "neg":
        return -to_sympy(node[1])
    if kind in ARITHMETIC:
        return ARITHMETIC[kind](to_sympy(node[1]), to_sympy(node[2]))
    if kind == "pow":
        base, exp = to_sympy(node[1]), to_sympy(node[2])
        if exp.is_Number and not _small_number(exp) and base.is_number:
            return sympy.Pow(base, exp, evaluate=False)
        if exp.is_Integer and base.is_Rational and _power_bits(base, exp) > _MAX_POWER_BITS:
            return sympy.Pow(base, exp, evaluate=False)  # ((73^93)^13)^95: millions of digits
        if not exp.is_Number and exp.is_number and base.is_number:
            return sympy.Pow(base, exp, evaluate=False)
        return base**exp
    if kind == "sqrt":
        return sympy.sqrt(to_sympy(node[1]))
    if kind == "root":
        arg, index = to_sympy(node[1]), to_sympy(node[2])
        if index.is_Integer and index % 2 == 1 and arg.is_real and arg.is_negative:
            return sympy.real_root(arg, index)
        return sympy.root(arg, index)
    if kind == "fact":
        arg = to_sympy(node[1])
        if (arg.is_Integer and arg > _MAX_FACTORIAL) or not arg.is_Integer:
            return sympy.factorial(arg, evaluate=False)
        return sympy.factorial(arg)
    if kind == "binom":
        n, k = to_sympy(node[1]), to_sympy(node[2])
        if n.is_Integer and n > _MAX_FACTORIAL:
            return sympy.binomial(n, k, evaluate=False)
        return sympy.binomial(n, k)
    if kind == "abs":
        return sympy.Abs(to_sympy(node[1]))
    if kind == "floor":
        return sympy.floor(to_sympy(node[1]))
    if kind == "ceil":
        return sympy.ceiling(to_sympy(node[1]))
    if kind == "func":
        return _FUNCTIONS[node[1]](to_sympy(node[2]))
    if kind == "apply":  # f(x+1): an undefined function applied, never a product
        return sympy.Function(node[1])(to_sympy(node[2]))
    if kind == "log":
        base, arg = node[1], to_sympy(node[2])
        return sympy.log(arg) if base is None else sympy.log(arg, to_sympy(base))
    if kind in ("mixed", "repeat"):
        value = to_fraction(node)
        return sympy.Rational(value.numerator, value.denominator)
    raise ValueError(f"not a scalar: {kind}")


def _unbounded(expr) -> bool:
    return bool(expr.has(sympy.oo, -sympy.oo, sympy.zoo, sympy.nan))


def _sample_point(symbols, rng: random.Random) -> dict:
    # Signed points: positive-only samples would equate |x| with x and sqrt(x^2) with x.
    return {
        s: sympy.Rational(rng.choice((-1, 1)) * rng.randint(1, 97), rng.randint(1, 13))
        for s in symbols
    }


def _numeric(expr, subs=None):
    value = expr.evalf(_PRECISION, subs=subs)
    if not value.is_number:
        return None
    return complex(value) if value.has(sympy.I) else value


def _close(a, b) -> bool:
    """Equal to ~40 significant digits (the comparison is done at 50); never for infinities."""
    if not isinstance(a, complex) and (
        _unbounded(sympy.sympify(a)) or _unbounded(sympy.sympify(b))
    ):
        return False
    try:
        diff = abs(sympy.N(a - b, _PRECISION)) if not isinstance(a, complex) else abs(a - b)
        scale = max(1, abs(sympy.N(a, _PRECISION)) if not isinstance(a, complex) else abs(a))
        return bool(diff <= scale * sympy.Float(10) ** -40)
    except (TypeError, ValueError):
        return False


def _constants_equal(a, b) -> bool:
    """Two constants equal to ~40 significant digits, relative to their size: ``e^{-100}`` and
    ``e^{-101}`` both lie within 1e-40 of each other, and are still different numbers."""
    if not _close(a, b):
        return False
    try:
        diff = abs(sympy.N(a - b, _PRECISION))
        scale = max(abs(sympy.N(a, _PRECISION)), abs(sympy.N(b, _PRECISION)))
        if diff <= scale * sympy.Float(10) ** -40:
            return True
        # Both tiny. A real difference keeps its size at a higher precision; the evaluation
        # noise of an unsimplified zero (tan(pi/8) - sqrt(2) + 1) shrinks with it.
        finer = abs(sympy.N(a - b, 3 * _PRECISION))
        return bool(finer <= sympy.Float(10) ** (-2 * _PRECISION))
    except (TypeError, ValueError):
        return False


class SympyComparator(ExactComparator):
    """Exact where possible, then sympy: numeric evaluation at 50 digits and simplification."""

    def scalars_equal(self, a, b) -> bool:
        try:
            return super().scalars_equal(a, b)
        except NeedSympy:
            pass
        a_dec, b_dec = is_decimal_literal(a), is_decimal_literal(b)
        if a_dec != b_dec:
            decimal, other = (a, b) if a_dec else (b, a)
            return self._decimal_matches(decimal, other)
        return self._expressions_equal(to_sympy(a), to_sympy(b))

    def _decimal_matches(self, decimal, exact) -> bool:
        negative = decimal[0] == "neg"
        value = Fraction(decimal[1][1] if negative else decimal[1])  # no size cap in a worker
        value = -value if negative else value
        target = to_sympy(exact)
        if target.free_symbols or not target.is_number:
            return False
        if target.is_Rational:
            return approximates(
                decimal, value, Fraction(int(target.p), int(target.q)), self.min_sig_digits
            )
        approx = target.evalf(_PRECISION)
        if not approx.is_real:
            return False
        # Compare as exact rationals of the 50-digit value: the tolerance is one unit in the last
        # printed digit of the decimal, far larger than the evaluation error.
        return approximates(decimal, value, Fraction(str(approx)), self.min_sig_digits)

    def _expressions_equal(self, a, b) -> bool:
        if a == b:
            return True
        if _unbounded(a) or _unbounded(b):
            return False  # oo, -oo, zoo, nan: only identical ones are equal (checked above)
        symbols = sorted(a.free_symbols | b.free_symbols, key=str)
        if not symbols:
            # Equal to 40 digits at 50-digit precision: distinct closed forms from an answer key
            # do not agree that far, and exact simplification would only add hang risk.
            return _constants_equal(a, b)
        rng = random.Random(1234)
        for _ in range(3):
            point = _sample_point(symbols, rng)
            va, vb = _numeric(a, point), _numeric(b, point)
            if va is None or vb is None:
                break
            if not _close(va, vb):
                return False
        else:
            return True
        return sympy.simplify(a - b) == 0

    def equations_equal(self, l1, r1, l2, r2) -> bool:
        try:
            return super().equations_equal(l1, r1, l2, r2)
        except NeedSympy:
            pass
        d1 = to_sympy(l1) - to_sympy(r1)
        d2 = to_sympy(l2) - to_sympy(r2)
        symbols = sorted(d1.free_symbols | d2.free_symbols, key=str)
        rng = random.Random(4321)
        ratios = []
        for _ in range(4):
            point = _sample_point(symbols, rng)
            v1, v2 = _numeric(d1, point), _numeric(d2, point)
            if v1 is None or v2 is None:
                return False
            if _close(v2, 0):
                if not _close(v1, 0):
                    return False
                continue
            ratios.append(v1 / v2)
        if not ratios:
            return True
        return all(_close(r, ratios[0]) for r in ratios) and not _close(ratios[0], 0)
