"""Judge: one (response, gold) pair -> a MathVerdict, given a scalar comparator.

The same function runs twice at most: first in the caller's process with the exact comparator
(bounded work; raises NeedSympy when it cannot decide), then, only if needed, in a worker process
with the sympy comparator under a hard time limit.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

from restem.verifiers.math.compare import (
    ExactComparator,
    NeedSympy,
    canonical,
    match_unordered,
    values_equal,
)
from restem.verifiers.math.extract import (
    braces_balanced,
    extract_answer,
    extract_gold,
    undouble_backslashes,
)
from restem.verifiers.math.normalize import Normalized, normalize_answer
from restem.verifiers.math.parse import ParseError, parse_latex
from restem.verifiers.math.structure import (
    Shape,
    analyze,
    evaluate_matrices,
    solutions,
    tuple_label_names,
)
from restem.verifiers.settings import MathSettings
from restem.verifiers.verdict import MathStatus, MathVerdict

__all__ = ["judge", "judge_symbolic", "prepare_answer", "prepare_gold"]

_CONSTANT_SYMBOLS = frozenset(["i", "e"])
_PLAIN = Shape("")


@dataclass(frozen=True, slots=True)
class Prepared:
    norm: Normalized  # of the value (the label and the other sides of a chain removed)
    value: tuple | None  # canonical value; None when the text is not maths we can parse
    parse_error: str = ""
    shape: Shape = _PLAIN
    tree: tuple | None = None  # the parsed value before canonical (bound variables are renamed)
    # A system of labelled values: solutions, each a tuple of (label, canonical value or None).
    system: tuple[tuple[tuple[str, tuple | None], ...], ...] = ()
    whole: str = ""  # the whole normalized answer, for reading "y = 2x+3" as an equation


def _value(
    text: str, norm: Normalized | None = None
) -> tuple[Normalized, tuple | None, tuple | None, str]:
    norm = norm or normalize_answer(text)
    if norm.is_text or norm.choice or norm.base:
        return norm, None, None, "text"
    try:
        tree = parse_latex(norm.latex)
        if "\\begin" in norm.latex and "vmatrix" not in norm.latex.lower():
            tree = evaluate_matrices(tree)
        return norm, tree, canonical(tree), ""
    except (ParseError, RecursionError) as exc:
        return norm, None, None, str(exc) or type(exc).__name__


def _prepare(text: str) -> Prepared:
    text = undouble_backslashes(text)
    whole = normalize_answer(text)
    if whole.choice or whole.base or not whole.latex:
        norm, tree, value, error = _value(text, whole)
        return Prepared(norm, value, error, Shape(whole.latex), tree, whole=whole.latex)
    shape = analyze(whole.latex)
    if whole.is_text and shape.text != whole.latex:
        # "f(x) = x \text{ for all } x": words only in a condition or a label, not in the value
        whole = replace(whole, is_text=False)
    if shape.is_system:
        groups = solutions(shape.items)
        system = tuple(tuple((label, _value(v)[2]) for label, v in group) for group in groups)
        return Prepared(whole, None, "system", shape, system=system, whole=whole.latex)
    if shape.text == whole.latex:
        norm, tree, value, error = _value(text, whole)
    else:
        norm, tree, value, error = _value(shape.text)
    names = tuple_label_names(shape.label) if shape.label else ()
    if names and value is not None:
        system = _tuple_system(names, value)
        if system:
            return Prepared(norm, value, error, shape, tree, system=system, whole=whole.latex)
    return Prepared(norm, value, error, shape, tree, whole=whole.latex)


def _tuple_system(names: tuple[str, ...], value: tuple) -> tuple:
    """``(p,q) = (3,2)`` and ``(x,y) = (5,8), (8,5)``: the tuple label names each entry."""
    rows = [value] if value[0] == "tuple" else value[1] if value[0] == "set" else []
    if not rows or any(r[0] != "tuple" or len(r[1]) != len(names) for r in rows):
        return ()
    return tuple(tuple(zip(names, r[1])) for r in rows)


@lru_cache(maxsize=16384)
def prepare_gold(gold: str) -> Prepared | str:
    """The parsed gold answer, or a string saying why it is unusable. Cached: golds repeat."""
    if not braces_balanced(gold):
        return "the gold answer has unbalanced braces"
    answer = extract_gold(undouble_backslashes(gold))
    if answer is None:
        return "the gold's \\boxed{} is never closed"
    if not answer.strip():
        return "the gold answer is empty"
    prepared = _prepare(answer)
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
    if gold.system or answer.system:
        same = _systems_equal(gold, answer, cmp)
        return same, "labelled values equal" if same else "labelled values differ"
    equation = _as_equations(gold, answer, cmp)
    if equation is not None:
        return equation, "equal equations" if equation else "different equations"
    g, a = gold.norm, answer.norm
    bound = gold.shape.bound or answer.shape.bound  # the same text may bind other variables
    if g.latex == a.latex and g.latex and not bound:
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
    gold_value, answer_value = _renamed(gold, answer)
    same = values_equal(gold_value, _without_repeats(gold_value, answer_value), cmp)
    return same, "equal" if same else "not equal"


# ---------------------------------------------------------------- labelled answers


def _as_equations(gold: Prepared, answer: Prepared, cmp) -> bool | None:
    """A labelled value read as an equation: ``y = -x/2 + 3/4`` against ``2x + 4y - 3 = 0``,
    and ``a = 2b`` against ``b = a/2`` (each solved for a different variable)."""
    g_label, a_label = gold.shape.label, answer.shape.label
    if (
        g_label
        and a_label
        and g_label != a_label
        and _is_variable(g_label)
        and _is_variable(a_label)
        and a_label in _free_symbols(gold.tree, set())
        and g_label in _free_symbols(answer.tree, set())
    ):
        g_eq, a_eq = _equation(gold), _equation(answer)
        if g_eq is not None and a_eq is not None:
            return values_equal(g_eq, a_eq, cmp)
    for one, other in ((gold, answer), (answer, gold)):
        if one.value is None or one.value[0] != "eq" or other.value is None:
            continue
        if other.value[0] == "eq" or not other.shape.label or other.shape.function:
            return None
        if not _is_variable(other.shape.label):
            return None
        eq = _equation(other)
        return None if eq is None else values_equal(one.value, eq, cmp)
    return None


def _equation(prepared: Prepared) -> tuple | None:
    """``y = 2x + 3`` as the equation ("eq", y, 2x + 3), or None."""
    try:
        tree = parse_latex(prepared.whole)
    except (ParseError, RecursionError):
        return None
    if tree[0] != "rel" or tree[1] != ["="] or len(tree[2]) != 2:
        return None
    return ("eq", tree[2][0], tree[2][1])


def _rightmost_side(answer: Prepared, gold: Prepared) -> Prepared:
    """In a response without a box, "the sum is $a + b = 12$" states 12.

    Only for an equation with a constant, nonzero right side ("x^2 - 4 = 0" states no value),
    and only when the gold is not an equation itself.
    """
    if answer.value is None or answer.value[0] != "eq" or answer.tree is None:
        return answer
    if gold.value is not None and gold.value[0] == "eq":
        return answer
    tree = answer.tree
    if tree[0] != "rel" or len(tree[2]) != 2:
        return answer
    rhs = tree[2][1]
    if _free_symbols(rhs, set()) or rhs == ("num", "0"):
        return answer
    return Prepared(answer.norm, canonical(rhs), "", answer.shape, rhs, whole=answer.whole)


def _is_variable(label: str) -> bool:
    return len(label) == 1 or (label[0].isalpha() and label[1] == "_" and "(" not in label)


def _free_symbols(tree, found: set[str]) -> set[str]:
    if isinstance(tree, tuple):
        if len(tree) == 2 and tree[0] == "sym" and isinstance(tree[1], str):
            if tree[1] not in _CONSTANT_SYMBOLS:
                found.add(tree[1])
            return found
        for child in tree[1:]:
            _free_symbols(child, found)
    elif isinstance(tree, list):
        for child in tree:
            _free_symbols(child, found)
    return found


def _rename(tree, mapping: dict[str, str]):
    if isinstance(tree, tuple):
        if len(tree) == 2 and tree[0] == "sym" and tree[1] in mapping:
            return ("sym", mapping[tree[1]])
        return tuple(_rename(child, mapping) if i else child for i, child in enumerate(tree))
    if isinstance(tree, list):
        return [_rename(child, mapping) for child in tree]
    return tree


def _renamed(gold: Prepared, answer: Prepared) -> tuple[tuple, tuple]:
    """Rename the answer's bound variable to the gold's: ``f(t) = t^2+1`` = ``f(x) = x^2+1``."""
    g_bound, a_bound = gold.shape.bound, answer.shape.bound
    if not (g_bound or a_bound) or answer.tree is None or gold.tree is None:
        return gold.value, answer.value
    if g_bound and a_bound:
        if len(g_bound) != len(a_bound):
            return gold.value, answer.value
        # Both to the same fresh names, so "f(t) = x^2+1" (constant in t) is not "f(x) = x^2+1".
        fresh = [f"_bound{k}" for k in range(len(g_bound))]
        return (
            canonical(_rename(gold.tree, dict(zip(g_bound, fresh)))),
            canonical(_rename(answer.tree, dict(zip(a_bound, fresh)))),
        )
    # One side is a bare expression in one variable: that variable is the other's bound one.
    bound, bare = (g_bound, answer) if g_bound else (a_bound, gold)
    free = _free_symbols(bare.tree, set())
    if len(bound) != 1 or len(free) != 1 or free == set(bound):
        return gold.value, answer.value
    renamed = canonical(_rename(bare.tree, {free.pop(): bound[0]}))
    return (gold.value, renamed) if bare is answer else (renamed, answer.value)


def _without_repeats(gold_value: tuple, answer_value: tuple) -> tuple:
    """A solution listed twice is listed once: ``(1,2), (1,2), (3,4)`` = ``(1,2), (3,4)``.

    Only tuples: a repeated number may claim a double root, and multiplicity counts there.
    """
    if gold_value[0] != "set" or answer_value[0] != "set":
        return answer_value
    items = answer_value[1]
    if not items or any(item[0] != "tuple" for item in items):
        return answer_value
    if len(set(map(repr, gold_value[1]))) != len(gold_value[1]):
        return answer_value  # the gold repeats one itself
    unique = list({repr(item): item for item in items}.values())
    return (answer_value[0], unique, *answer_value[2:])


def _rows(prepared: Prepared) -> list[list[tuple | None]] | None:
    """An unlabelled answer as solution rows: ``(5,2), (7,2)`` -> two rows; ``4, 5`` -> one."""
    value = prepared.value
    if value is None:
        return None
    if value[0] == "tuple":
        return [list(value[1])]
    if value[0] == "set":
        items = value[1]
        if items and all(item[0] == "tuple" for item in items):
            return [list(item[1]) for item in items]
        return [list(items)]
    return None


def _systems_equal(gold: Prepared, answer: Prepared, cmp) -> bool:
    if gold.system and answer.system:
        return match_unordered(
            gold.system,
            answer.system,
            lambda g, a: (
                dict(g).keys() == dict(a).keys()
                and len(g) == len(a)
                and all(_equal(v, dict(a)[k], cmp) for k, v in g)
            ),
        )
    labelled, bare = (gold, answer) if gold.system else (answer, gold)
    rows = _rows(bare)
    if rows is None:
        return False
    if len(labelled.system) > 1 and len(rows) == 1 and len(rows[0]) != len(labelled.system[0]):
        return False
    return match_unordered(
        labelled.system,
        rows,
        lambda sol, row: (
            len(sol) == len(row) and all(_equal(v, r, cmp) for (_, v), r in zip(sol, row))
        ),
    )


def _equal(a, b, cmp) -> bool:
    return a is not None and b is not None and values_equal(a, b, cmp)


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
            prepared = prepare_answer(candidate)
            if extraction.method in ("sentence", "math_span"):
                prepared = _rightmost_side(prepared, prepared_gold)
            same, why = answers_equal(prepared_gold, prepared, cmp)
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
    several = prepared_gold.system and len(prepared_gold.system[0]) > 1
    if not several and (value is None or value[0] not in ("set", "ivl") or len(value[1]) < 2):
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
