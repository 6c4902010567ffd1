"""Plain data values crossing the sandbox boundary, decoded on the trusted side.

Inside the sandbox the harness encodes a returned value as JSON, accepting only exact builtin
types (no subclasses, so no overridden ``__eq__``). Tuples, sets, frozensets, bytes, complex
numbers and dicts with non-string keys travel as one-key tagged objects; ``decode`` rebuilds them
here from builtin types only. Integers too long for ``int()`` under Python's digit limit stay
``HugeInt`` (their decimal text), so a hostile 10**6-digit answer costs nothing to compare.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["TAGS", "HugeInt", "ValueFormatError", "decode", "is_close", "loads"]

TAGS = ("__tuple__", "__set__", "__frozenset__", "__bytes__", "__complex__", "__dict__")
_MAX_INT_DIGITS = 4000  # below CPython's default int_max_str_digits (4300)
_MAX_DEPTH = 200


class ValueFormatError(ValueError):
    """The encoded value is not what the harness writes (a forged or truncated report)."""


@dataclass(frozen=True, slots=True)
class HugeInt:
    """An integer with more digits than ``int()`` converts by default, kept as its text."""

    text: str

    def __repr__(self) -> str:
        return f"HugeInt({self.text[:20]}...{self.text[-20:]}, {len(self.text)} chars)"


def _parse_int(text: str) -> int | HugeInt:
    return int(text) if len(text) <= _MAX_INT_DIGITS else HugeInt(text)


def loads(text: str) -> Any:
    """``json.loads`` that keeps huge integers as ``HugeInt`` instead of raising."""
    return json.loads(text, parse_int=_parse_int)


def decode(obj: Any, depth: int = 0) -> Any:
    """Rebuild a tagged JSON value (as ``loads`` returns it) into builtin Python values."""
    if depth > _MAX_DEPTH:
        raise ValueFormatError("value nested too deeply")
    if obj is None or isinstance(obj, bool | int | float | str | HugeInt):
        return obj
    if isinstance(obj, list):
        return [decode(x, depth + 1) for x in obj]
    if not isinstance(obj, dict):
        raise ValueFormatError(f"unexpected {type(obj).__name__}")
    if len(obj) != 1:
        raise ValueFormatError("objects must carry exactly one tag")
    ((tag, body),) = obj.items()
    try:
        if tag == "__tuple__":
            return tuple(decode(x, depth + 1) for x in body)
        if tag == "__set__":
            return {_hashable(decode(x, depth + 1)) for x in body}
        if tag == "__frozenset__":
            return frozenset(_hashable(decode(x, depth + 1)) for x in body)
        if tag == "__bytes__":
            return bytes.fromhex(body)
        if tag == "__complex__":
            real, imag = body
            return complex(float(real), float(imag))
        if tag == "__dict__":
            return {_hashable(decode(k, depth + 1)): decode(v, depth + 1) for k, v in body}
    except (TypeError, ValueError) as exc:
        raise ValueFormatError(f"malformed {tag}: {exc}") from exc
    raise ValueFormatError(f"unknown tag {tag!r}")


def _hashable(value: Any) -> Any:
    if isinstance(value, list | dict | set):
        raise ValueFormatError("unhashable element in a set or dict key")
    return value


def is_close(a: float, b: float, tol: float = 1e-6) -> bool:
    """Absolute or relative tolerance; NaN equals nothing, infinities only themselves."""
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= tol or abs(a - b) <= tol * max(abs(a), abs(b))
