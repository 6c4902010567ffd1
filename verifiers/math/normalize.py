"""Normalize: turn an extracted answer into clean LaTeX the parser can read.

This is string work only (no sympy): strip delimiters, spacing and sizing commands, units, degree
and percent marks, dollar signs, text wrappers; recognise the answer kinds that are decided by
their spelling rather than their value (multiple-choice letters, numbers in a base, plain text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from restem.verifiers.math.extract import (
    LATEX_COMMAND,
    braces_balanced,
    find_boxed,
    matching_brace,
)
from restem.verifiers.math.parse import FUNCTION_NAMES

__all__ = ["MATH_WORDS", "Normalized", "normalize_answer", "text_key"]

_UNICODE = {
    "\u2212": "-",
    "\u2013": "-",
    "\u00d7": "\\times ",
    "\u00f7": "\\div ",
    "\u00b7": "\\cdot ",
    "\u22c5": "\\cdot ",
    "\u221a": "\\sqrt",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u2264": "\\le ",
    "\u2265": "\\ge ",
    "\u2260": "\\ne ",
    "\u222a": "\\cup ",
    "\u00b0": "^\\circ",
    "\u00b1": "\\pm ",
    "\u2208": "\\in ",
    "\u00a0": " ",
}

_DELETE = re.compile(
    r"\\displaystyle|\\textstyle|\\scriptstyle|\\limits|\\nolimits|\\middle"
    r"|\\[Bb]igg?[lrm]?(?![a-zA-Z])|\\left\.|\\right\.|\\left(?![a-zA-Z])|\\right(?![a-zA-Z])"
    r"|(?<!\\)\\!|(?<!\\)\\,|\\allowbreak|\\phantom\{[^{}]*\}|\\hphantom\{[^{}]*\}"
)
_SPACE = re.compile(
    r"\\quad|\\qquad|\\enspace|\\thinspace|(?<!\\)\\[;: ]|~|\\hspace\*?\{[^{}]*\}|\\vspace\*?\{[^{}]*\}"
)
_CHOOSE = re.compile(r"\{\s*([^{}]+?)\s*\\choose\s*([^{}]+?)\s*\}")
_REALS = re.compile(r"\\mathbb\s*\{\s*R\s*\}|\\R(?![a-zA-Z])")
_FRAC = re.compile(r"\\[dtc]frac(?![a-zA-Z])")
_BINOM = re.compile(r"\\[dt]binom(?![a-zA-Z])")
_DEGREE = re.compile(
    r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|\^\s*\{\s*\\text\{\s*o\s*\}\s*\}"
    r"|\\text\{\s*degrees?\s*\}|(?<=\d)\s*degrees?\b"
)
_PERCENT = re.compile(r"\\%|%|\\text\{\s*percent\s*\}")
_TEXT_COMMANDS = (
    "\\text",
    "\\textbf",
    "\\textit",
    "\\textrm",
    "\\textsf",
    "\\texttt",
    "\\mathrm",
    "\\mathbf",
    "\\mathit",
    "\\mathsf",
    "\\mathtt",
    "\\mbox",
    "\\operatorname",
    "\\boldsymbol",
    "\\mathnormal",
    "\\emph",
    "\\textnormal",
    "\\textup",
)
_UNIT_TAIL = re.compile(
    r"\s*\\(?:text|mbox|textrm|mathrm|textit|textbf|textnormal|textup|operatorname)\s*\{\s*([^{}]*)\}\s*(?:\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_WORD_UNIT_TAIL = re.compile(
    r"^(?P<head>.*?[0-9}).])\s+(?P<unit>[A-Za-z]{2,}(?:[\s-]+[A-Za-z]{2,})*)\s*(?:\^\s*\{?[23]\}?)?$"
)
_SEPARATOR_WORDS = re.compile(r"\s*(?:\\text\{\s*(?:or|and)\s*\}|\b(?:or|and)\b)\s*", re.IGNORECASE)
_LEADING_MEMBERSHIP = re.compile(r"^[a-zA-Z]\s*\\in\s*")
# "11,\\! 111,\\! 100": a comma with a negative space is MATH's thousands separator, never a list.
_COMMA_THOUSANDS = re.compile(r"(?<=\d),\s*\\!\s*(?=\d{3}(?!\d))")
# "1 000 000" (a space, \, \; or ~ between groups of three digits): one number. A group of any
# other length ("1 0000") is not a separator, and the answer stays unparseable.
_SPACE_THOUSANDS = re.compile(r"(?<![\d.])\d{1,3}(?: \d{3})+(?!\d)")
# Ordinals: 12^{\text{th}}, 12^{th}, 12\text{th}, 12th, 1st, 22nd, 3rd.
_ORDINAL = re.compile(
    r"(?<=\d)\s*(?:\^\s*\{?\s*(?:\\(?:text|mathrm|textnormal)\s*\{\s*)?|\\text\s*\{\s*)?"
    r"(?:st|nd|rd|th)(?![A-Za-z])\s*\}?\s*\}?"
)
_THOUSANDS = re.compile(r"^-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?$")
_CHOICE = re.compile(r"^\(\s*([A-E])\s*\)(?:\s.*)?$|^([A-E])$")
_BASE = re.compile(r"^([0-9A-Za-z]+)_\{?\s*(\d{1,2})\s*\}?$")
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"
# Letter runs that are maths, not words (after backslash commands are removed): the parser's
# function names but "lg", and the other operator names MATH writes.
MATH_WORDS = (FUNCTION_NAMES - {"lg"}) | {
    "sqrt",
    "max",
    "min",
    "gcd",
    "lcm",
    "mod",
    "det",
    "deg",
    "lim",
    "inf",
}
_ENVIRONMENT = re.compile(r"\\(?:begin|end)\s*\{[^{}]*\}(?:\{[^{}]*\})?")
_LETTER_RUN = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True, slots=True)
class Normalized:
    latex: str  # cleaned LaTeX for the parser
    key: str  # case-folded, space- and period-free form for plain-text comparison
    is_text: bool  # contains words: compare as text, not as maths
    choice: str | None = None  # a multiple-choice letter, A-E
    base: tuple[str, int] | None = None  # digits (lower case) and base, for ``1011_2``
    balanced: bool = True


def unwrap_commands(s: str, commands: tuple[str, ...]) -> str:
    """Replace ``\\cmd{X}`` by ``X`` for each listed command (innermost content kept)."""
    for _ in range(50):  # bounded: each pass removes at least one wrapper
        best = -1
        best_len = 0
        for command in commands:
            start = 0
            while True:
                p = s.find(command, start)
                if p == -1:
                    break
                after = p + len(command)
                if after < len(s) and s[after].isalpha():
                    start = after
                    continue
                if best == -1 or p < best:
                    best, best_len = p, len(command)
                break
        if best == -1:
            return s
        j = best + best_len
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "{":
            end = matching_brace(s, j)
            if end == -1:
                return s
            s = s[:best] + s[j + 1 : end] + s[end + 1 :]
        else:
            s = s[:best] + s[j:]
    return s


def _strip_delimiters(s: str) -> str:
    for _ in range(10):
        before = s
        s = s.strip()
        for left, right in (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)")):
            if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
                s = s[len(left) : len(s) - len(right)]
        if s.startswith(("\\boxed", "\\fbox")):
            contents, truncated = find_boxed(s)
            if len(contents) == 1 and not truncated and s.rstrip().endswith("}"):
                s = contents[0]
        if s == before:
            break
    return s.strip()


def text_key(s: str) -> str:
    s = unwrap_commands(s, _TEXT_COMMANDS)
    s = s.lower()
    s = re.sub(r"\\[,;:! ]|\\quad|~|\$|\\\(|\\\)", "", s)
    s = re.sub(r"(?<=\d)\s+(?=\d)", "_", s)  # "1 0000" is not the wording of 10000
    return re.sub(r"[\s.{}]", "", s)


def _base_of(s: str) -> tuple[str, int] | None:
    m = _BASE.match(s)
    if not m:
        return None
    digits, base = m.group(1).lower(), int(m.group(2))
    if not 2 <= base <= 36 or not any(c.isdigit() for c in digits):
        return None
    if any(_DIGITS.index(c) >= base for c in digits):
        return None
    return digits, base


def _is_unit(command: str, word: str) -> bool:
    word = word.strip()
    if re.search(r"[A-Za-z]{2,}", word):
        return True
    # One letter ("5\text{ m}") is a unit only in a text box, and never i or e (\mathrm{i} = i).
    return (
        re.fullmatch(r"[A-Za-z]", word) is not None
        and word not in "ie"
        and re.match(r"\s*\\(?:text|mbox|textrm)\b", command) is not None
    )


def _looks_like_text(s: str) -> bool:
    bare = LATEX_COMMAND.sub(" ", _ENVIRONMENT.sub(" ", s))
    return any(run.lower() not in MATH_WORDS for run in _LETTER_RUN.findall(bare))


def normalize_answer(raw: str) -> Normalized:
    s = raw
    for old, new in _UNICODE.items():
        if old in s:
            s = s.replace(old, new)
    s = _strip_delimiters(s)
    balanced = braces_balanced(s)
    s = _COMMA_THOUSANDS.sub(",", s)
    s = _DELETE.sub("", s)
    s = _SPACE.sub(" ", s)
    s = _SPACE_THOUSANDS.sub(lambda m: m.group(0).replace(" ", ""), s)
    s = s.replace("{,}", ",")
    s = _CHOOSE.sub(r"\\binom{\1}{\2}", s)
    s = s.replace("\\langle", "(").replace("\\rangle", ")")
    s = _REALS.sub(r"(-\\infty,\\infty)", s)
    s = _FRAC.sub("\\\\frac", s)
    s = _BINOM.sub("\\\\binom", s)
    s = _DEGREE.sub("", s)
    s = _PERCENT.sub("", s)
    s = s.replace("\\$", "").replace("$", "")
    s = _SEPARATOR_WORDS.sub(", ", s) if re.search(r"\d|\\|[=<>]", s) else s
    s = s.strip().rstrip(".;,").strip()

    s = _ORDINAL.sub("", s)

    # Units: a trailing \text{...} after something else is a unit ("5\text{ cm}^2").
    for _ in range(3):
        m = _UNIT_TAIL.search(s)
        if not m or not s[: m.start()].strip() or not _is_unit(m.group(0), m.group(1)):
            break
        s = s[: m.start()].strip()

    before_unwrap = s
    s = unwrap_commands(s, _TEXT_COMMANDS)
    s = re.sub(r"\s+", " ", s).strip()
    s = _LEADING_MEMBERSHIP.sub("", s)

    choice_m = _CHOICE.match(s)
    choice = (choice_m.group(1) or choice_m.group(2)) if choice_m else None

    m = _WORD_UNIT_TAIL.match(s)
    if m and not _looks_like_text(m.group("head")):
        unit_words = m.group("unit").lower().split()
        if not any(w in MATH_WORDS for w in unit_words):
            s = m.group("head").strip()

    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    s = s.rstrip(".").strip()

    # "No" is a word, not N times o (three-letter words are caught by _looks_like_text).
    is_text = (_looks_like_text(s) or s.lower() == "no") and choice is None
    return Normalized(
        latex=s,
        key=text_key(before_unwrap),
        is_text=is_text,
        choice=choice,
        base=_base_of(s.replace(" ", "")),
        balanced=balanced,
    )
