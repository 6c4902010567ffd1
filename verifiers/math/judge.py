"""Judge: one (response, gold) pair -> a MathVerdict, given a scalar comparator.

The same function runs twice at most: first in the caller's process with the exact comparator
(bounded work; raises NeedSympy when it cannot decide), then, only if needed, in a worker process
with the sympy comparator under a hard time limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from restem.verifiers.math.compare import ExactComparator, NeedSympy, canonical, values_equal
from restem.verifiers.math.extract import extract_answer, find_boxed
from restem.verifiers.math.normalize import Normalized, braces_balanced, normalize_answer
from restem.verifiers.math.parse import ParseError, parse_latex
from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import MathStatus, MathVerdict

__all__ = ["judge", "judge_symbolic", "prepare_answer", "prepare_gold"]


@dataclass(frozen=True, slots=True)
class Prepared:
    norm: Normalized
    value: tuple | None  # canonical value; None when the text is not maths we can parse
    parse_error: str = ""


def _prepare(text: str) -> Prepared:
    norm = normalize_answer(text)
    if norm.is_text or norm.choice or norm.base:
        return Prepared(norm, None, "text")
    try:
        return Prepared(norm, canonical(parse_latex(norm.latex)))
    except (ParseError, RecursionError) as exc:
        return Prepared(norm, None, str(exc) or type(exc).__name__)


@lru_cache(maxsize=16384)
def prepare_gold(gold: str) -> Prepared | str:
    """The parsed gold answer, or a string saying why it is unusable. Cached: golds repeat."""
    if not braces_balanced(gold):
        return "the gold answer has unbalanced braces"
    if "\\boxed" in gold or "\\fbox" in gold:
        boxes, truncated = find_boxed(gold)
        if truncated or not boxes:
            return "the gold's \\boxed{} is never closed"
        gold = boxes[-1]
    if not gold.strip():
        return "the gold answer is empty"
    prepared = _prepare(gold)
    if not prepared.norm.balanced:
        return "the gold answer has unbalanced braces"
    if not prepared.norm.latex and not prepared.norm.key:
        return "the gold answer is empty after normalization"
    return prepared


@lru_cache(maxsize=16384)
def prepare_answer(answer: str) -> Prepared:
    return _prepare(answer)


def _digits_only(norm: Normalized) -> str | None:
    text = norm.latex.replace(" ", "").lower()
    return text if text.isalnum() else None


def answers_equal(gold: Prepared, answer: Prepared, cmp) -> tuple[bool, str]:
    g, a = gold.norm, answer.norm
    if g.latex == a.latex and g.latex:
        return True, "identical after normalization"
    if g.choice:
        key = a.key.strip("()")
        letter = a.choice or (key.upper() if len(key) == 1 and key.isalpha() else None)
        return letter == g.choice, f"choice {letter or a.latex!r} vs {g.choice!r}"
    if g.base:
        digits, base = g.base
        same = a.base == g.base if a.base else _digits_only(a) == digits
        return same, f"base-{base} digits {'match' if same else 'differ'}"
    if gold.value is None or answer.value is None:
        same = bool(g.key) and g.key == a.key
        why = "text" if gold.value is None else f"unparseable answer ({answer.parse_error})"
        return same, f"{why}: {'same' if same else 'different'} wording"
    same = values_equal(gold.value, answer.value, cmp)
    return same, "equal" if same else "not equal"


def judge(response: str, gold: str, settings: MathSettings, cmp=None) -> MathVerdict:
    """Judge one pair. With the default exact comparator this may raise NeedSympy."""
    if cmp is None:
        cmp = ExactComparator(settings.min_sig_digits)
    prepared_gold = prepare_gold(gold)
    if isinstance(prepared_gold, str):
        return MathVerdict(MathStatus.INVALID_GOLD, None, prepared_gold)
    extraction = extract_answer(response)
    if not extraction.answers:
        return MathVerdict(MathStatus.NO_ANSWER, None, extraction.problem)
    final = extraction.final
    if extraction.final_group:
        verdict = _judge_group(extraction, prepared_gold, cmp)
        if verdict is not None:
            return verdict
    # Check the final answer first, then every other distinct one: a hedged response
    # ("\boxed{3} or \boxed{5}") must not earn the reward for containing the right one.
    candidates = [final] + [a for a in dict.fromkeys(extraction.answers) if a != final]
    for index, candidate in enumerate(candidates):
        if len(candidate) > settings.max_answer_chars:
            same = normalize_answer(candidate).latex == prepared_gold.norm.latex
            why = "answer too long to parse; compared as text"
        else:
            same, why = answers_equal(prepared_gold, prepare_answer(candidate), cmp)
        if not same:
            if index == 0:
                return MathVerdict(MathStatus.INCORRECT, final, why)
            return MathVerdict(
                MathStatus.INCORRECT,
                final,
                f"hedged: also boxed {candidate[:80]!r}, which differs from the gold",
            )
    return MathVerdict(MathStatus.CORRECT, final, f"{why} ({extraction.method})")


def _judge_group(extraction, prepared_gold: Prepared, cmp) -> MathVerdict | None:
    """Several boxes joined by "and"/"or" as one answer, when the gold has several parts."""
    value = prepared_gold.value
    if value is None or value[0] not in ("set", "ivl") or len(value[1]) < 2:
        return None
    group = extraction.final_group
    if len(set(extraction.answers)) != len(set(group)):
        return None  # other, earlier boxes: judged one by one (hedging)
    joined = ", ".join(group)
    same, why = answers_equal(prepared_gold, prepare_answer(joined), cmp)
    status = MathStatus.CORRECT if same else MathStatus.INCORRECT
    return MathVerdict(status, joined, f"{why} (boxed parts joined)")


def judge_symbolic(response: str, gold: str, settings: MathSettings) -> MathVerdict:
    """The worker-side entry point: the full judgement with sympy. Runs under a hard limit."""
    from restem.verifiers.math.symbolic import SympyComparator

    try:
        return judge(response, gold, settings, SympyComparator(settings.min_sig_digits))
    except RecursionError:
        return MathVerdict(MathStatus.INCORRECT, None, "expression too deeply nested to compare")
    except (
        NeedSympy,
        ValueError,
        TypeError,
        ZeroDivisionError,
        ArithmeticError,
        AttributeError,
    ) as exc:
        # sympy gives up on some inputs by raising; that is "not shown equal", not a crash.
        extraction = extract_answer(response)
        return MathVerdict(
            MathStatus.INCORRECT,
            extraction.final,
            f"could not compare symbolically ({type(exc).__name__}: {str(exc)[:120]})",
        )
