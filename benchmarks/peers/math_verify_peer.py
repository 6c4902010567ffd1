"""Math-Verify (Hugging Face, ``pip install math-verify``), run the way its README shows:
``verify(parse(gold), parse(response))`` in the caller's process, with its default extraction
configs and its own signal-based timeouts. A bare gold answer is put in a LaTeX environment
(``$...$``) first, as its parser extracts LaTeX only from one.
"""

from __future__ import annotations

__all__ = ["NAME", "available", "judge", "version"]

NAME = "math-verify"


def available() -> str | None:
    try:
        import math_verify  # noqa: F401
    except ImportError as exc:
        return f"math-verify is not installed ({exc}); pip install 'restem[bench]'"
    return None


def version() -> str | None:
    from restem.benchmarks.report import version_of

    return version_of("math-verify")


def _gold_text(gold: str) -> str:
    text = gold.strip()
    if text.startswith("$") or "\\boxed" in text or text.startswith(("\\[", "\\(")):
        return text
    return f"${text}$"


def judge(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(_gold_text(gold)), parse(response)))
