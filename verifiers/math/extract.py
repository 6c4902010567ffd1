"""Extract: find the answer a model committed to inside its free-form response.

Priority, first match wins:
1. every ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces matched); the last one is "the" answer,
   the others are kept so the caller can reject hedged responses; a closing "Final Answer: the
   final answer is X" sentence written after the last box outranks the boxes;
2. "The final answer is X." / "the answer is X" / "Final Answer: The largest $n$ is 34." sentences
   (the last one; in a prose sentence the value after its last "is");
3. a ``$...$`` / ``\\(...\\)`` / ``\\[...\\]`` math span that ends the response, or is followed
   only by "is the answer"-like words;
4. a short one-line response with none of the above is itself the answer;
5. the last number of the final sentence, when that sentence concludes, does not hedge, and the
   number is its only one or ends it ("Therefore, the probability is 2/3.").

Text after a chat-template turn marker (``<|im_end|>``, ``<|im_start|>user`` ...) is not part of
the response. Everything here is a linear scan: it is safe on a 60 KB response in the caller's
process.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "LATEX_COMMAND",
    "Extraction",
    "braces_balanced",
    "extract_answer",
    "extract_gold",
    "find_boxed",
    "matching_brace",
    "undouble_backslashes",
]

_BOX_COMMANDS = ("\\boxed", "\\fbox")
_BOX_START = re.compile("|".join(re.escape(c) for c in _BOX_COMMANDS))
_MAX_BARE_CHARS = 200  # a longer box-free response is prose, not an answer
# A box holding only these is a drawn blank ("11x - 7 + \boxed{\phantom{2}}"), not an answer.
_BLANK = re.compile(r"\\h?phantom\{[^{}]*\}|\\[,;:! ]|\\q?quad|\\square|\\_|\s|~")


@dataclass(frozen=True, slots=True)
class Extraction:
    answers: tuple[str, ...]  # candidate answers, last = final; empty when none was found
    method: str  # "boxed", "sentence", "math_span", "bare", "last_number" or "none"
    problem: str = ""  # why nothing was extracted (e.g. a truncated box)
    # The last boxes when only connectors separate them ("$x=\boxed{3}$ or $x=\boxed{5}$"):
    # together they may be one multi-part answer.
    final_group: tuple[str, ...] = ()

    @property
    def final(self) -> str | None:
        return self.answers[-1] if self.answers else None


def _unmatched_close(text: str, start: int) -> tuple[int, int]:
    """The first ``}`` from ``start`` on that closes no ``{`` opened after ``start`` (its index,
    or -1 if there is none) and the depth of braces still open where the scan stopped.

    ``\\{`` and ``\\}`` are escaped literal braces and do not count.
    """
    depth = 0
    i = start
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
            if depth < 0:
                return i, depth
        i += 1
    return -1, depth


def matching_brace(text: str, open_index: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``open_index``, or -1 if it is never closed.

    ``\\{`` and ``\\}`` are escaped literal braces and do not count.
    """
    return _unmatched_close(text, open_index + 1)[0]


def braces_balanced(text: str) -> bool:
    """Whether every ``{`` in ``text`` is closed and every ``}`` closes one."""
    return _unmatched_close(text, 0) == (-1, 0)


def find_boxed(text: str, spans: list[tuple[int, int]] | None = None) -> tuple[list[str], bool]:
    """All top-level boxed contents in order, and whether the last box was cut off.

    ``spans``, when given, receives the (start, end) of each box in ``text``.
    """
    contents: list[str] = []
    truncated = False
    i = 0
    while True:
        found = _BOX_START.search(text, i)  # leftmost of the commands, in one C-level scan
        if found is None:
            break
        start, j = found.span()
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
# "#### 42" as the last line ends GSM8K-style solutions ("#### 1. Setup" is a heading).
_GSM8K_LINE = re.compile(r"####[ \t]*([^\n]{1,60})")
# Only the strong form may outrank boxes written before it.
_FINAL_SENTENCE = re.compile(r"final\s+answer\s*(?:is|:)", re.IGNORECASE)
_SPAN_OPENER = re.compile(r"(?<!\\)\$\$?|\\\(|\\\[")
_SPAN_CLOSER = {"$$": "$$", "$": "$", "\\(": "\\)", "\\[": "\\]"}
_SENTENCE_END = re.compile(r"\.(?=\s|$)|\n|(?<=\$)\s*[,;]")
# Chat-template turn markers: whatever a model writes after one is not its answer.
_TURN_MARKER = re.compile(
    r"<\|(?:im_end|im_start|endoftext|eot_id|end_of_text|end|start_header_id|user|assistant)\|>"
    r"|</s>"
)
_NEXT_PROBLEM = re.compile(r"\n[ \t#*]*(?:Problem|Question|Human|User|Q)[ \t*]*:", re.IGNORECASE)
_ANSWERED = re.compile(r"\\boxed|\\fbox|answer", re.IGNORECASE)
# After the last math span, only words that point back at it: "$x \ge 5$ is the solution."
_COMMIT_TAIL = re.compile(
    r"\s*(?:(?:is|are|was|gives|as)\s+(?:the|our|my)\s+(?:final\s+)?"
    r"(?:answer|solution|result|value)s?\b)?\s*[.!]?\s*",
    re.IGNORECASE,
)
_COPULA = re.compile(r"\s(?:is|are|was|equals|=)\s", re.IGNORECASE)
_NUMBER = re.compile(r"(?<![\w.,/])-?\d+(?:[.,]\d+)*(?:\s*/\s*\d+)?%?")
_WORD = re.compile(r"[A-Za-z']+")
# A final sentence with one of these does not commit to one number.
_HEDGES = frozenset(
    [
        "or",
        "either",
        "maybe",
        "perhaps",
        "possibly",
        "probably",
        "might",
        "could",
        "unsure",
        "guess",
        "between",
        "approximately",
        "around",
        "about",
        "roughly",
        "nearly",
        "almost",
        "estimate",
        "estimated",
        "if",
        "unless",
        "suppose",
        "assuming",
        "think",
        "believe",
        "likely",
        # a bound is not a value: "at least 5", "more than 5"
        "least",
        "most",
        "more",
        "less",
        "fewer",
        "than",
        "over",
        "under",
        "below",
        "above",
        "exceed",
        "exceeds",
    ]
)
_FINAL_ENVIRONMENT = re.compile(r"\\end\{(align\*?|aligned|equation\*?|eqnarray\*?|gather\*?)\}$")
LATEX_COMMAND = re.compile(r"\\[a-zA-Z]+")  # a backslash command (\frac, \text)
_RETRACTION = re.compile(
    r"\b(?:wait|actually|mistake|incorrect|wrong|recheck|re-check|let me (?:re)?check)\b",
    re.IGNORECASE,
)
# Words after a number that are not its unit.
_NOT_UNITS = frozenset(
    [
        "is",
        "are",
        "was",
        "were",
        "be",
        "and",
        "or",
        "not",
        "but",
        "if",
        "then",
        "so",
        "which",
        "that",
        "this",
        "it",
    ]
)
# A closing remark with one of these takes back what came before it.
_DOUBTS = frozenset(
    [
        "but",
        "however",
        "wrong",
        "incorrect",
        "impossible",
        "contradiction",
        "contradicts",
        "wait",
        "check",
        "recheck",
        "mistake",
        "error",
        "invalid",
        "false",
    ]
)
_NEGATIONS = frozenset(
    ["not", "no", "never", "nor", "except", "than", "without", "isn't", "aren't", "wasn't"]
)
_CONCLUDES = re.compile(
    r"\b(?:therefore|thus|hence|so|finally|in conclusion|in total|altogether|overall"
    r"|the answer|the result|the final)\b",
    re.IGNORECASE,
)
_BOILERPLATE = re.compile(
    r"^\s*(?:i hope (?:it|this) is correct|hope (?:it|this) helps|thank you|thanks)\b[^.!?\n]*[.!?]?\s*$",
    re.IGNORECASE,
)
_MAX_NUMBER_SENTENCE = 300


_CONNECTOR = re.compile(
    r"(?:\s|\$|\\[()\[\]]|[,;&.]|\\\\|\\quad|\\[,;: ]|\b(?:and|or)\b"
    r"|\\text\{\s*(?:(?:and|or|for|parts?|\([a-d]\)|[,;])\s*){0,6}\}"
    r"|[a-zA-Z](?:_\{?\w+\}?)?\s*=)*",
    re.IGNORECASE,
)
# Between two gold boxes, these end the first box's part: the later box is the conclusion.
_GOLD_BREAK = re.compile(
    r"\.(?:\s|$)|\n|\b(?:finally|then|thus|hence|therefore|so|next|answer|gives?|get|check|wait)\b",
    re.IGNORECASE,
)
_MAX_GOLD_GAP = 80
_MAX_GOLD_PARTS = 12
# Spans in a row state one answer together; "or" too, so "$1$ or $2$" is a hedge, not 1.
_SPAN_JOIN = re.compile(r"\s*,?\s*(?:(?:and|or)\s*)?", re.IGNORECASE)


def undouble_backslashes(text: str) -> str:
    """``\\\\frac{1}{2}`` -> ``\\frac{1}{2}`` when every command is written with two backslashes.

    Text escaped twice (JSON inside a string literal) doubles every backslash. Real LaTeX never
    writes every command after a line break, so the rule only fires when no command has a single
    backslash. Linear.
    """
    if "\\\\" not in text or not re.search(r"\\\\[a-zA-Z]", text):
        return text
    if re.search(r"(?<!\\)\\[a-zA-Z]", text):
        return text
    return text.replace("\\\\", "\\")


def _cut_at_turn_marker(text: str) -> str:
    for m in _TURN_MARKER.finditer(text):
        if text[: m.start()].strip():
            text = text[: m.start()]
            break
    # A base model that has answered often goes on with a made-up next problem. (The marker is
    # rare and cheap to look for; the case-blind "answer" search is not, so it goes second.)
    if _NEXT_PROBLEM.search(text) is None:
        return text
    answered = _ANSWERED.search(text)
    if answered is not None:
        m = _NEXT_PROBLEM.search(text, answered.end())
        if m is not None:
            return text[: m.start()]
    return text


def _final_group(text: str, spans: list[tuple[int, int]], answers: list[str]) -> tuple[str, ...]:
    group = [answers[-1]]
    for k in range(len(spans) - 1, 0, -1):
        between = text[spans[k - 1][1] : spans[k][0]]
        if len(between) > 40 or not _CONNECTOR.fullmatch(between):
            break
        group.append(answers[k - 1])
    return tuple(reversed(group))


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    content: str


def _find_closer(text: str, closer: str, start: int) -> int:
    """Index of the next ``closer`` at or after ``start`` ("\\$" is a dollar sign, not one)."""
    while True:
        k = text.find(closer, start)
        if k <= 0 or text[k - 1] != "\\" or closer[0] == "\\":
            return k
        start = k + 1


def _math_spans(text: str) -> list[_Span]:
    """``$...$``, ``$$...$$``, ``\\(...\\)`` and ``\\[...\\]`` spans in order. Linear: an opener
    whose closer never comes means no later opener of that kind closes either."""
    spans: list[_Span] = []
    exhausted: set[str] = set()
    i = 0
    while True:
        m = _SPAN_OPENER.search(text, i)
        if m is None:
            return spans
        opener = m.group(0)
        if opener in exhausted:
            i = m.end()
            continue
        close = _find_closer(text, _SPAN_CLOSER[opener], m.end())
        if close == -1:
            exhausted.add(opener)
            i = m.end()
            continue
        if close == m.end():  # "$$" read as an empty "$...$": try it as a display opener
            i = m.end()
            continue
        end = close + len(_SPAN_CLOSER[opener])
        spans.append(_Span(m.start(), end, text[m.end() : close]))
        i = end


def _without_spans(text: str, spans: list[_Span]) -> str:
    out, position = [], 0
    for span in spans:
        out.append(text[position : span.start])
        out.append(" " * (span.end - span.start))
        position = span.end
    out.append(text[position:])
    return "".join(out)


def _first_math_span(text: str) -> str | None:
    spans = _math_spans(text)
    return spans[0].content if spans else None


def _value_of_sentence(answer: str) -> str:
    """The value a prose answer sentence states: "The largest $n$ is 34" -> "34"."""
    if len(answer) > 500:
        return answer
    outside = _without_spans(answer, _math_spans(answer))
    if not re.search(r"[A-Za-z]{3,}", outside):
        return answer  # already a bare value ("$\frac{3}{4}$", "12,000,023")
    tail = None
    copulas = list(_COPULA.finditer(outside))
    if copulas:
        tail = answer[copulas[-1].end() :].strip()
    if tail:
        span = _first_math_span(tail)
        if span is not None and tail.startswith(("$", "\\(", "\\[")):
            return span.strip()
        return tail
    number = _committed_number(answer, needs_conclusion=False)
    return number if number is not None else answer


def _from_sentence(text: str) -> tuple[str, int] | None:
    """The answer of the last "answer is" sentence, and where that sentence starts."""
    matches = list(_SENTENCE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip("*_ ")
    rest = rest.lstrip('"').removeprefix('\\"').lstrip()
    span = _first_math_span(rest[:500])
    if span is not None and rest.lstrip().startswith(("$", "\\(", "\\[")):
        several = _spans_sentence(rest[:500])
        return (several or span.strip()), matches[-1].start()
    end = _SENTENCE_END.search(rest)
    answer = (rest[: end.start()] if end else rest).strip().strip("*_").strip()
    if span is not None and not answer:
        return span.strip(), matches[-1].start()
    if answer.startswith(("$", "\\(", "\\[")) and span is not None:
        return span.strip(), matches[-1].start()
    if not answer:
        return None
    return _value_of_sentence(answer), matches[-1].start()


def _takes_back(text: str, start: int) -> bool:
    """Whether the text after the answer sentence starting at ``start`` retracts it."""
    cue = _SENTENCE.match(text, start)
    end = _SENTENCE_END.search(text, cue.end() if cue else start)
    after = end.end() if end else len(text)
    return _RETRACTION.search(text, after, after + 1000) is not None


def _from_gsm8k_line(text: str) -> str | None:
    last_line = text.rstrip()[-200:].rpartition("\n")[2].strip()
    m = _GSM8K_LINE.fullmatch(last_line)
    if m is None or re.search(r"[A-Za-z]{3,}|\d\.\s", m.group(1)):
        return None
    return m.group(1).strip()


def _spans_sentence(text: str) -> str | None:
    """ "$12$ and $13$. I hope..." -> "12, 13": a sentence of several spans and connectors."""
    spans = []
    position = 0
    for m in _math_spans(text):
        between = text[position : m.start]
        if spans and not _SPAN_JOIN.fullmatch(between):
            break
        if not spans and between.strip():
            return None
        spans.append(m.content.strip())
        position = m.end
    if len(spans) < 2:
        return None
    return ", ".join(spans)


def _span_run(text: str, spans: list[_Span]) -> str:
    """The last span with the spans joined to it by "," / "and" / "or": "$x=1$ or $x=2$."."""
    run = [spans[-1].content.strip()]
    for k in range(len(spans) - 1, 0, -1):
        if not _SPAN_JOIN.fullmatch(text, spans[k - 1].end, spans[k].start):
            break
        run.append(spans[k - 1].content.strip())
    return ", ".join(reversed(run))


def _from_trailing_math(text: str) -> str | None:
    """The last math span, when nothing after it says anything new.

    After an inline span only "is the answer"-like words may follow; after a display
    (``$$...$$``, ``\\[...\\]``) a short closing remark with no number, no maths and no
    hedge or negation ("which is what we wanted") may follow too.
    """
    stripped = text.rstrip()
    spans = _math_spans(stripped)
    if not spans:
        return None
    last = spans[-1]
    if _COMMIT_TAIL.fullmatch(stripped, last.end):
        return _span_run(stripped, spans)
    display = stripped.startswith(("$$", "\\["), last.start)
    tail = stripped[last.end :]
    words = [w.lower() for w in _WORD.findall(tail)]
    if (
        display
        and len(tail) <= 120
        and len(words) <= 12
        and not re.search(r"[\d\\$]", tail)
        and not any(w in _HEDGES or w in _NEGATIONS or w in _DOUBTS for w in words)
    ):
        return _span_run(stripped, spans)
    # A number and its unit: "the perimeter is $24$ inches."
    if (
        len(words) <= 2
        and len(tail) <= 40
        and re.search(r"\d", last.content)
        and not re.search(r"[A-Za-z]", LATEX_COMMAND.sub("", last.content))
        and not re.search(r"[\d\\$]", tail)
        and not any(w in _NOT_UNITS for w in words)
    ):
        return _span_run(stripped, spans)
    return None


def _from_final_environment(text: str) -> str | None:
    """The last line of a display environment that ends the response:
    ``\\begin{align*} ... &= 22 \\times 7 \\times 10 \\\\ &= 1540. \\end{align*}`` gives
    ``1540``; an empty left side (``&= ...``) continues the chain above it."""
    stripped = text.rstrip().rstrip(".").rstrip()
    m = _FINAL_ENVIRONMENT.search(stripped[-20:])
    if m is None:
        return None
    end = len(stripped) - 20 + m.start() if len(stripped) > 20 else m.start()
    begin = stripped.rfind("\\begin{" + m.group(1) + "}", 0, end)
    if begin == -1:
        return None
    body = stripped[begin + len(m.group(1)) + 8 : end]
    line = body.rpartition("\\\\")[2].replace("&", " ").strip().rstrip(".,").strip()
    line = line.lstrip("=").strip()
    return line or None


def _sentences(text: str) -> list[str]:
    # a display ("$$...$$", "\\[...\\]") ends a sentence too
    return [s for s in re.split(r"(?<=[.!?])\s+|(?<=\$\$)\s+|(?<=\\\])\s*|\n+", text) if s.strip()]


def _committed_number(sentence: str, needs_conclusion: bool) -> str | None:
    """The one number a sentence commits to, or None when it hedges or states several."""
    if len(sentence) > _MAX_NUMBER_SENTENCE or re.search(r"\$|\\[(\[]|\\boxed|\?", sentence):
        return None
    words = [w.lower() for w in _WORD.findall(sentence)]
    if any(w in _HEDGES for w in words):
        return None
    if needs_conclusion and not _CONCLUDES.search(sentence):
        return None
    numbers = list(_NUMBER.finditer(sentence))
    if not numbers:
        return None
    last = numbers[-1]
    before = _WORD.findall(sentence[: last.start()])
    if before and before[-1].lower() in _NEGATIONS:
        return None
    if len(numbers) > 1:
        # Several numbers: only the last one, ending the sentence ("... which is 1,000.99"),
        # and not one of a list ("x = 5 and y = 3", "3, 4").
        after = _WORD.findall(sentence[last.end() :])
        between = sentence[numbers[-2].end() : last.start()]
        listed = len(_WORD.findall(between)) <= 2 and re.search(r",|\band\b", between, re.I)
        if len(after) > 1 or listed:
            return None
    return last.group(0).replace(" ", "")


def _from_last_number(text: str) -> str | None:
    """The last number of the final sentence, with guards (see ``_committed_number``)."""
    tail = text[-4000:]
    sentences = _sentences(tail)
    while sentences and _BOILERPLATE.match(sentences[-1]):
        sentences.pop()
    if not sentences:
        return None
    short = len(sentences) == 1 and "\n" not in text.strip()
    return _committed_number(sentences[-1].strip(), needs_conclusion=not short)


def _gold_group(text: str, spans: list[tuple[int, int]], answers: list[str]) -> tuple[str, ...]:
    group = [answers[-1]]
    for k in range(len(spans) - 1, 0, -1):
        if len(group) == _MAX_GOLD_PARTS:
            return (answers[-1],)  # a run of this many boxes is not one answer's parts
        between = text[spans[k - 1][1] : spans[k][0]]
        if len(between) > _MAX_GOLD_GAP or _GOLD_BREAK.search(between):
            break
        if len(_WORD.findall(re.sub(r"\\[a-zA-Z]+", " ", between))) > 2:
            break  # prose between the boxes: the last box concludes
        group.append(answers[k - 1])
    return tuple(reversed(group))


def extract_gold(gold: str) -> str | None:
    """The answer a reference answer states; None when its final box is never closed.

    A gold is often text too: ``$...$``, a sentence, a whole solution. Several boxes in a row
    ("\\boxed{1} and \\boxed{-2}") are one multi-part answer; a box after a sentence break or a
    "finally" is the conclusion of a solution and stands alone.
    """
    spans: list[tuple[int, int]] = []
    boxes, truncated = find_boxed(gold, spans)
    if truncated:
        return None
    kept = [(b.strip(), span) for b, span in zip(boxes, spans) if _BLANK.sub("", b)]
    if kept:
        group = _gold_group(gold, [span for _, span in kept], [b for b, _ in kept])
        return ", ".join(group)
    stripped = gold.strip()
    # Only a sentence or a whole solution needs extracting; a short gold is the answer itself,
    # even when written in several spans ("$1$ and $2$").
    if not (_SENTENCE.search(stripped) or "\n" in stripped or len(stripped) > 200):
        return gold
    extraction = _extract(gold, takes_back=False)
    if extraction.method in ("sentence", "math_span", "last_number") and extraction.final:
        return extraction.final
    return gold


def extract_answer(response: str) -> Extraction:
    return _extract(response, takes_back=True)


def _extract(response: str, takes_back: bool) -> Extraction:
    """``takes_back``: a response that takes back its answer sentence ("The answer is 5. Wait,
    that is wrong.") has no answer. A gold's notes ("the solution above is incorrect") do not."""
    response = _cut_at_turn_marker(response)
    spans: list[tuple[int, int]] = []
    boxed, truncated = find_boxed(response, spans)
    if truncated:
        return Extraction((), "none", "the final \\boxed{ is never closed (truncated response)")
    kept = [(b.strip(), span) for b, span in zip(boxed, spans) if _BLANK.sub("", b)]
    if kept:
        closing = _closing_sentence(response, kept[-1][1][1])
        if closing:
            return Extraction((closing,), "sentence")
        answers = [b for b, _ in kept]
        group = _final_group(response, [span for _, span in kept], answers)
        return Extraction(tuple(answers), "boxed", final_group=group if len(group) > 1 else ())
    if boxed:
        return Extraction((), "none", "the \\boxed{} is empty")

    marked = _from_gsm8k_line(response)
    if marked:
        return Extraction((marked,), "sentence")

    sentence = _from_sentence(response)
    if sentence:
        if takes_back and _takes_back(response, sentence[1]):
            return Extraction((), "none", "the response takes back its answer sentence")
        return Extraction((sentence[0],), "sentence")

    trailing = _from_trailing_math(response) or _from_final_environment(response)
    if trailing:
        return Extraction((trailing,), "math_span")

    bare = response.strip()
    one_line = bare and "\n" not in bare
    if one_line and (len(bare) <= _MAX_BARE_CHARS or not re.search(r"\s", bare)):
        if len(_WORD.findall(bare)) >= 4 and not re.search(r"[\\{}^_]", bare):
            # a short prose sentence, not a bare answer
            number = _from_last_number(bare)
            if number is not None:
                return Extraction((number,), "last_number")
        return Extraction((bare,), "bare")
    if not bare:
        return Extraction((), "none", "the response is empty")
    number = _from_last_number(response)
    if number is not None:
        return Extraction((number,), "last_number")
    return Extraction((), "none", "no \\boxed{}, 'answer is' sentence or final math span found")


def _closing_sentence(text: str, after: int) -> str | None:
    """A "Final Answer: the final answer is X" sentence written after the last box."""
    tail = text[after:]
    if not _FINAL_SENTENCE.search(tail):
        return None
    found = _from_sentence(tail)
    if found is None:
        return None
    answer, start = found
    # The last "answer is" of the tail must itself be the strong form, stating a value
    # ("the final answer is $28\\%$"), not a remark ("the final answer is positive, because").
    strong = _FINAL_SENTENCE.match(tail, start)
    if strong is None:
        return None
    rest = tail[strong.end() :].lstrip(' *_:"\\')
    if not re.match(r"(?:\$|\(|\[|-?\d)", rest) and not rest.startswith(("\\(", "\\[")):
        return None
    return answer
