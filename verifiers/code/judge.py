"""Output comparison, done in the trusted host process after the run.

``strict`` (the default):
  stdout: lines of whitespace-separated tokens; trailing blank lines and whitespace around tokens
  are ignored, everything else counts: the number of lines, the tokens on each line and their
  order. Two integer tokens must be the same integer (``1000001`` ≠ ``1000000``); when either
  number has a decimal point or exponent they may differ by 1e-6, absolute or relative. Other
  tokens must be identical (case included).
  returned values: same type family and structure (a tuple counts as a list, as in APPS's JSON);
  ints exact, floats within 1e-6; a bool equals 0 / 1 as in Python. APPS wraps many expected values in a
  one-element list, so ``v`` also matches an expected ``[v]``.

``apps_compat``: the fallback chain of APPS's ``eval/testing_util.py``, for comparing with
  published APPS numbers. It also accepts the lines of the output in any order and with
  duplicates (each line compared as a *set* of tokens), numbers within ``numpy.allclose``'s
  default tolerance (so ``1000001`` for ``1000000``), and tokens rounded to 3 decimals; so it
  accepts ``2 1`` and ``1 2 2 1`` for ``1 2``. Values compare with Python's ``==``
  (``True == 1``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from restem.verifiers.code.values import HugeInt, is_close

__all__ = ["Comparison", "compare_stdout", "compare_value"]


class Comparison(StrEnum):
    STRICT = "strict"
    APPS_COMPAT = "apps_compat"


_INTEGER = re.compile(r"[+-]?\d+")
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


def _short(token: str) -> str:
    return repr(token if len(token) <= 40 else token[:37] + "...")


def _token_lines(text: str) -> list[list[str]]:
    lines = [line.split() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _integer_text(token: str) -> str:
    digits = token.lstrip("+-").lstrip("0") or "0"
    return "-" + digits if token.startswith("-") and digits != "0" else digits


def _tokens_equal(got: str, expected: str) -> bool:
    if got == expected:
        return True
    if not (_NUMBER.fullmatch(got) and _NUMBER.fullmatch(expected)):
        return False
    if _INTEGER.fullmatch(got) and _INTEGER.fullmatch(expected):
        return _integer_text(got) == _integer_text(expected)
    return is_close(float(got), float(expected))


def _strict_stdout(got: str, expected: str) -> tuple[bool, str]:
    got_lines, expected_lines = _token_lines(got), _token_lines(expected)
    for number, (g, e) in enumerate(zip(got_lines, expected_lines), start=1):
        if len(g) != len(e):
            return False, f"line {number}: expected {len(e)} tokens, got {len(g)}"
        for position, (a, b) in enumerate(zip(g, e), start=1):
            if not _tokens_equal(a, b):
                return (
                    False,
                    f"line {number}, token {position}: expected {_short(b)}, got {_short(a)}",
                )
    if len(got_lines) != len(expected_lines):
        return False, f"expected {len(expected_lines)} lines, got {len(got_lines)}"
    return True, "output matches"


def _allclose(a: list[float], b: list[float]) -> bool:
    # numpy.allclose(a, b) defaults: |a - b| <= atol + rtol * |b|
    return len(a) == len(b) and all(
        abs(x - y) <= 1e-8 + 1e-5 * abs(y) for x, y in zip(a, b) if x != y
    )


def _apps_stdout(got: str, expected: str) -> bool:
    """APPS testing_util.py's standard-input checks, in its order; any one accepting is a pass."""
    output = got.splitlines()
    if "\n".join(output).strip() == expected.strip():
        return True
    if "\n".join(o.strip() for o in output).strip() == expected.strip():
        return True
    if output == [expected]:
        return True
    expected_lines = [x.strip() for x in expected.split("\n") if x]
    if output == expected_lines:
        return True
    output = [o for o in output if o]
    if output == expected_lines:
        return True
    try:
        if _allclose([float(o) for o in output], [float(e) for e in expected_lines]):
            return True
    except (ValueError, OverflowError):
        pass
    output_sets = [set(o.split()) for o in output if o.split()]
    expected_sets = [set(e.split()) for e in expected_lines]
    if {frozenset(s) for s in output_sets} == {frozenset(s) for s in expected_sets}:
        return True
    try:
        rounded_out = {frozenset(round(float(t), 3) for t in s) for s in output_sets}
        rounded_exp = {frozenset(round(float(t), 3) for t in s) for s in expected_sets}
        return rounded_out == rounded_exp
    except (ValueError, OverflowError):
        return False


def compare_stdout(
    got: str, expected: str, comparison: Comparison = Comparison.STRICT
) -> tuple[bool, str]:
    """Does a program's stdout match the expected output? (equal, reason)."""
    if Comparison(comparison) is Comparison.APPS_COMPAT:
        equal = _apps_stdout(got, expected)
        return equal, "output matches (apps_compat)" if equal else "output differs (apps_compat)"
    return _strict_stdout(got, expected)


def _same(got: Any, expected: Any, depth: int = 0) -> bool:
    if depth > 200:
        return False
    if isinstance(expected, bool) or isinstance(got, bool):
        # As the judges these tests come from (Codewars' assert_equals is ==): False == 0.
        return isinstance(got, bool | int) and isinstance(expected, bool | int) and got == expected
    if expected is None or got is None:
        return got is None and expected is None
    if isinstance(expected, HugeInt) or isinstance(got, HugeInt):
        return got == expected
    if isinstance(expected, int | float):
        if not isinstance(got, int | float):
            return False
        if isinstance(expected, int) and isinstance(got, int):
            return got == expected
        try:
            return is_close(float(got), float(expected))
        except OverflowError:
            return False
    if isinstance(expected, str):
        return isinstance(got, str) and got == expected
    if isinstance(expected, list | tuple):
        return (
            isinstance(got, list | tuple)
            and len(got) == len(expected)
            and all(_same(g, e, depth + 1) for g, e in zip(got, expected))
        )
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(_same(got[k], expected[k], depth + 1) for k in expected)
        )
    return type(got) is type(expected) and got == expected


def _apps_value(got: Any, expected: Any) -> bool:
    if isinstance(got, tuple):
        got = list(got)
    try:
        if got == expected:
            return True
        if isinstance(expected, list) and expected and got == expected[0]:
            return True
        if isinstance(got, list) and got and isinstance(got[0], tuple):
            return isinstance(expected, list) and [list(x) for x in got] == expected[0]
    except (RecursionError, TypeError, IndexError):
        return False
    return False


def compare_value(
    got: Any, expected: Any, comparison: Comparison = Comparison.STRICT
) -> tuple[bool, str]:
    """Does a returned value (decoded on the host) match the expected one? (equal, reason)."""
    if Comparison(comparison) is Comparison.APPS_COMPAT:
        equal = _apps_value(got, expected)
    else:
        equal = _same(got, expected) or (
            isinstance(expected, list) and len(expected) == 1 and _same(got, expected[0])
        )
    if equal:
        return True, "returned the expected value"
    return False, f"expected {_preview(expected)}, got {_preview(got)}"


def _preview(value: Any) -> str:
    try:
        text = repr(value)
    except RecursionError:
        text = "<deeply nested value>"
    return text if len(text) <= 80 else text[:77] + "..."
