"""Extract: find the answer a model committed to inside its free-form response.

Priority, first match wins:
1. every ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces matched); the last one is "the" answer,
   the others are kept so the caller can reject hedged responses;
2. "The final answer is X." / "the answer is X" sentences (the last one);
3. a ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` math span that ends the response;
4. a short one-line response with none of the above is itself the answer.

Everything here is a linear scan: it is safe on a 60 KB response in the caller's process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Extraction", "extract_answer", "find_boxed", "matching_brace"]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_MAX_BARE_CHARS = 200  # a longer box-free response is prose, not an answer
# A box holding only these is a drawn blank ("11x - 7 + \boxed{\phantom{2}}"), not an answer.
_BLANK = re.compile(r"\\h?phantom\{[^{}]*\}|\\[,;:! ]|\\q?quad|\\square|\\_|\s|~")


@dataclass(frozen=True, slots=True)
class Extraction:
    answers: tuple[str, ...]  # candidate answers, last = final; empty when none was found
    method: str  # "boxed", "sentence", "math_span", "bare", or "none"
    problem: str = ""  # why nothing was extracted (e.g. a truncated box)
    # The last boxes when only connectors separate them ("$x=\boxed{3}$ or $x=\boxed{5}$"):
    # together they may be one multi-part answer.
    final_group: tuple[str, ...] = ()

    @property
    def final(self) -> str | None:
        return self.answers[-1] if self.answers else None


def matching_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_index``, or -1 if it is never closed.

    ``\\{`` and ``\\}`` are escaped literal braces and do not count.
    """
    depth = 0
    i = open_index
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def find_boxed(text: str, spans: list[tuple[int, int]] | None = None) -> tuple[list[str], bool]:
    """All top-level boxed contents in order, and whether the last box was cut off.

    ``spans``, when given, receives the (start, end) of each box in ``text``.
    """
    contents: list[str] = []
    truncated = False
    i = 0
    while True:
        starts = [(p, c) for c in _BOX_COMMANDS if (p := text.find(c, i)) != -1]
        if not starts:
            break
        start, command = min(starts)
        j = start + len(command)
        if j < len(text) and (text[j].isalpha()):  # e.g. \boxedtext: another command
            i = j
            continue
        while j < len(text) and text[j] == " ":
            j += 1
        if j < len(text) and text[j] == "{":
            end = matching_brace(text, j)
            if end == -1:
                truncated = True
                break
            contents.append(text[j + 1 : end])
            if spans is not None:
                spans.append((start, end + 1))
            truncated = False
            i = end + 1
        else:
            # "\boxed 5": LaTeX takes the next token
            m = re.match(r"[^\s$]+", text[j:])
            if m is None:
                truncated = True
                break
            contents.append(m.group(0))
            if spans is not None:
                spans.append((start, j + m.end()))
            truncated = False
            i = j + m.end()
    return contents, truncated


_SENTENCE = re.compile(r"(?:final\s+answer|answer)\s*(?:is|:|=)\s*:?\s*", re.IGNORECASE)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.DOTALL)
_SENTENCE_END = re.compile(r"\.(?=\s|$)(?<!\d\.)|\n|(?<=\$)\s*[,;]")


_CONNECTOR = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;&.]|\\\\|\\quad|\\[,;: ]|\b(?:and|or)\b"
    r"|\\text\{\s*(?:and|or|,)?\s*\}|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*",
    re.IGNORECASE,
)


def _final_group(text: str, spans: list[tuple[int, int]], answers: list[str]) -> tuple[str, ...]:
    group = [answers[-1]]
    for k in range(len(spans) - 1, 0, -1):
        between = text[spans[k - 1][1] : spans[k][0]]
        if len(between) > 40 or not _CONNECTOR.fullmatch(between):
            break
        group.append(answers[k - 1])
    return tuple(reversed(group))


def _first_math_span(text: str) -> str | None:
    m = _MATH_SPAN.search(text)
    if m is None:
        return None
    return next(g for g in m.groups() if g is not None)


def _from_sentence(text: str) -> str | None:
    matches = list(_SENTENCE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip("*_ ")
    span = _first_math_span(rest[:500])
    if span is not None and rest.lstrip().startswith(("$", "\\(", "\\[")):
        return span.strip()
    end = _SENTENCE_END.search(rest)
    answer = (rest[: end.start()] if end else rest).strip().strip("*_").strip()
    if span is not None and not answer:
        return span.strip()
    if answer.startswith(("$", "\\(", "\\[")) and span is not None:
        return span.strip()
    return answer or None


def _from_trailing_math(text: str) -> str | None:
    stripped = text.rstrip().rstrip(".").rstrip()
    if not stripped.endswith(("$", "\\)", "\\]")):
        return None
    spans = list(_MATH_SPAN.finditer(stripped))
    if not spans or spans[-1].end() != len(stripped):
        return None
    return next(g for g in spans[-1].groups() if g is not None).strip()


def extract_answer(response: str) -> Extraction:
    spans: list[tuple[int, int]] = []
    boxed, truncated = find_boxed(response, spans)
    if truncated:
        return Extraction((), "none", "the final \\boxed{ is never closed (truncated response)")
    kept = [(b.strip(), span) for b, span in zip(boxed, spans) if _BLANK.sub("", b)]
    if kept:
        answers = [b for b, _ in kept]
        group = _final_group(response, [span for _, span in kept], answers)
        return Extraction(tuple(answers), "boxed", final_group=group if len(group) > 1 else ())
    if boxed:
        return Extraction((), "none", "the \\boxed{} is empty")

    sentence = _from_sentence(response)
    if sentence:
        return Extraction((sentence,), "sentence")

    trailing = _from_trailing_math(response)
    if trailing:
        return Extraction((trailing,), "math_span")

    bare = response.strip()
    if bare and "\n" not in bare and (len(bare) <= _MAX_BARE_CHARS or not re.search(r"\s", bare)):
        return Extraction((bare,), "bare")
    if not bare:
        return Extraction((), "none", "the response is empty")
    return Extraction((), "none", "no \\boxed{}, 'answer is' sentence or final math span found")
