"""The string-normalizing baseline of the Hendrycks MATH paper and lm-eval-harness.

Take the last ``\\boxed{...}`` / ``\\fbox{...}`` of the response, normalize both strings the way
that ``is_equiv`` does, and compare the strings. Written here from the documented behaviour of that
function (drop spaces, ``\\left``/``\\right``, ``\\!``, degrees, ``\\$``, a trailing ``\\text{ unit}``
and ``\\%``; ``dfrac``/``tfrac`` -> ``frac``; brace ``\\frac12`` and ``\\sqrt2``; ``a/b`` of
integers -> ``\\frac{a}{b}``; a leading ``.5`` -> ``0.5``, ``0.5`` -> ``\\frac{1}{2}``; a short
``x =`` prefix is dropped), not copied from either code base.

The gold is a bare answer in MATH. A gold given as text (Math-Verify's suite) is reduced the way
lm-eval reduces a MATH solution: its last box when it has one, else the text inside a ``$...$``
that spans it; otherwise it is compared as given.
"""

from __future__ import annotations

__all__ = ["NAME", "available", "gold_answer", "is_equiv", "judge", "last_boxed", "normalize"]

NAME = "is_equiv"


def available() -> str | None:
    return None  # standard library only


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed x``); None when
    there is none or its braces never close."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    rest = text[start:]
    if rest.startswith("\\boxed "):  # the "\boxed 5$" form: up to the closing dollar
        return rest[len("\\boxed ") :].split("$", 1)[0].strip()
    open_at = rest.find("{")
    if open_at < 0:
        return None
    depth = 0
    for i in range(open_at, len(rest)):
        if rest[i] == "{":
            depth += 1
        elif rest[i] == "}":
            depth -= 1
            if depth == 0:
                return rest[open_at + 1 : i]
    return None


def _brace_sqrt(s: str) -> str:
    # \sqrt2 -> \sqrt{2}: a bare character right after \sqrt becomes its braced argument
    parts = s.split("\\sqrt")
    out = parts[0]
    for part in parts[1:]:
        if part and part[0] != "{":
            part = "{" + part[0] + "}" + part[1:]
        out += "\\sqrt" + part
    return out


def _brace_fracs(s: str) -> str:
    # \frac12 -> \frac{1}{2}, \frac1{2} -> \frac{1}{2}, \frac{1}2 -> \frac{1}{2}
    parts = s.split("\\frac")
    out = parts[0]
    for part in parts[1:]:
        out += "\\frac"
        if not part:
            continue
        if part[0] == "{":
            # numerator braced: brace a bare one-character denominator that follows it
            close = part.find("}")
            if 0 < close < len(part) - 1 and part[close + 1] != "{":
                part = part[: close + 1] + "{" + part[close + 1] + "}" + part[close + 2 :]
            out += part
            continue
        if len(part) < 2:
            return s  # malformed: leave the whole string alone
        num, rest = part[0], part[1:]
        if rest[0] == "{":
            out += "{" + num + "}" + rest
        else:
            out += "{" + num + "}{" + rest[0] + "}" + rest[1:]
    return out


def _slash_to_frac(s: str) -> str:
    pieces = s.split("/")
    if len(pieces) == 2 and pieces[0].isdigit() and pieces[1].isdigit():
        return "\\frac{" + pieces[0] + "}{" + pieces[1] + "}"
    return s


def _drop_trailing_units(s: str) -> str:
    marker = "\\text{ "
    return s.split(marker, 1)[0] if marker in s else s


def normalize(s: str) -> str:
    s = s.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    s = s.replace("tfrac", "frac").replace("dfrac", "frac")
    s = s.replace("\\left", "").replace("\\right", "")
    s = s.replace("^{\\circ}", "").replace("^\\circ", "")
    s = s.replace("\\$", "")
    s = _drop_trailing_units(s)
    s = s.replace("\\%", "")
    s = s.replace(" .", " 0.").replace("{.", "{0.")
    if not s:
        return s
    if s[0] == ".":
        s = "0" + s
    sides = s.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:  # "x = 5", "k=5"
        s = sides[1]
    s = _brace_sqrt(s)
    s = s.replace(" ", "")
    s = _brace_fracs(s)
    if s == "0.5":
        s = "\\frac{1}{2}"
    return _slash_to_frac(s)


def is_equiv(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    try:
        return normalize(a) == normalize(b)
    except Exception:  # the reference behaviour: fall back to the raw strings
        return a == b


def gold_answer(gold: str) -> str:
    """The answer part of a gold: its last box, else the inside of ``$...$``, else the gold."""
    boxed = last_boxed(gold)
    if boxed is not None:
        return boxed
    text = gold.strip()
    if len(text) > 1 and text[0] == text[-1] == "$" and "$" not in text[1:-1]:
        return text[1:-1].strip()
    return gold


def judge(response: str, gold: str) -> bool:
    answer = last_boxed(response)
    return answer is not None and is_equiv(answer, gold_answer(gold))
