"""Math-Verify (Hugging Face, ``pip install math-verify``), run the way its README shows:
``verify(parse(gold), parse(response))`` in the caller's process, with its default extraction
configs and its own signal-based timeouts, never tuned per case. A gold with no LaTeX delimiter
(``$``, ``\\(``, ``\\[``) and no box is put in ``$...$`` first, as the README's examples write
golds, since the parser extracts LaTeX only from such an environment; any other gold (``$9$``, a
sentence, a boxed gold) is parsed as given.
"""

from __future__ import annotations

import re

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


# An unescaped dollar, \( or \[, or a box: the gold already says where its LaTeX is.
_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed|\\fbox")


def _gold_text(gold: str) -> str:
    text = gold.strip()
    return text if _DELIMITED.search(text) else f"${text}$"


def judge(response: str, gold: str) -> bool:
    from math_verify import parse, verify

    return bool(verify(parse(_gold_text(gold)), parse(response)))
