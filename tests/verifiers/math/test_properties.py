"""Property tests for the MATH verifier.

(a) Robustness: any response/gold strings (random unicode, LaTeX-ish soup, deep nesting, huge
    numbers, known pathological inputs) give a well-formed verdict, never raise, and come back
    within the hard time limit plus a small slack.
(b) Rationals: the same rational written in any accepted form (unreduced, a/b, mixed number, exact
    decimal, \\dfrac/\\tfrac, any sign placement, bare or boxed in a response) matches its gold in
    lowest terms; a different rational never does.
"""

from __future__ import annotations

import time
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from restem.benchmarks import math_fuzz
from restem.verifiers import MathSettings, MathStatus, MathVerdict, verify_math

FAST = MathSettings(timeout_s=1.0)
# Slack over the limit: killing a hung worker and handing back the verdict takes a moment.
SLACK_S = 1.5

ROBUST = settings(
    max_examples=150,
    deadline=None,  # the time bound is asserted explicitly, per call
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module", autouse=True)
def _warm_pool() -> None:
    # The first call may start the worker pool; that start-up is not verification time.
    verify_math("1", "1", settings=FAST)


def check(response: str, gold: str, settings: MathSettings = FAST) -> MathVerdict:
    """One call that must not raise, must be well-formed and must respect the time limit."""
    t0 = time.monotonic()
    v = verify_math(response, gold, settings=settings)
    elapsed = time.monotonic() - t0
    assert isinstance(v, MathVerdict), type(v)
    assert isinstance(v.status, MathStatus), v.status
    # "error" means the verifier itself broke; odd input is the model's problem, not an error.
    assert v.status is not MathStatus.ERROR, (response[:300], gold[:300], v)
    assert v.correct == (v.status is MathStatus.CORRECT)
    assert (v.reward is None) == (v.status is MathStatus.INVALID_GOLD)
    assert v.extracted is None or isinstance(v.extracted, str)
    assert isinstance(v.reason, str)
    assert elapsed <= settings.timeout_s + SLACK_S, (elapsed, response[:300], gold[:300])
    return v


# ---------------------------------------------------------------------------------------------
# (a) robustness

# The benchmark's hostile fragments, plus an empty group and Unicode digits that str.isdigit()
# accepts but int()/Fraction() reject.
FRAGMENTS = [*math_fuzz.FRAGMENTS, "{}", "²", "①", "½", "٣"]

fragment = st.one_of(
    st.sampled_from(FRAGMENTS),
    st.integers(-(10**12), 10**12).map(str),
)
latexish = st.lists(fragment, max_size=40).map("".join)


# Characters that look numeric to one Python predicate or another; a CI run once found "²" as
# gold crashing the exact comparator.
UNICODE_NUMERALS = ["²", "³", "¹", "⁰", "₂", "①", "⑳", "½", "Ⅻ", "٣", "३", "𝟘", "〇", "፲"]


@pytest.mark.parametrize("char", UNICODE_NUMERALS)
def test_unicode_numerals_never_error(char: str) -> None:
    for response, gold in [
        ("0", char),
        (char, "2"),
        (rf"\boxed{{{char}}}", char),
        (f"3{char}", f"3{char}"),
        (rf"\boxed{{1{char}.5}}", f"1{char}"),
        (rf"x{char}+1", rf"x{char}+1"),
    ]:
        check(response, gold)


def _nest(depth: int, kind: int) -> str:
    # Deep nesting of each construct that recursive parsers and simplifiers descend into.
    return [
        r"\frac{1}{" * depth + "2" + "}" * depth,
        "2^{" * depth + "2" + "}" * depth,
        r"\sqrt{" * depth + "2" + "}" * depth,
        "(" * depth + "1" + ")" * depth,
        r"\boxed{" * depth + "7" + "}" * depth,
        "{" * depth + "x" + "}" * depth,
        r"\boxed{" * depth + "7",  # unclosed
    ][kind]


deep = st.builds(_nest, st.integers(1, 300), st.integers(0, 6))
long_number = st.builds(
    lambda n, d, frac: d * n + ("." + d * (n // 2) if frac else ""),
    st.integers(100, 5000),
    st.sampled_from(["9", "1", "7", "31"]),
    st.booleans(),
)
hard = st.one_of(deep, long_number, latexish)


@ROBUST
@given(response=st.text(max_size=300), gold=st.text(max_size=60))
def test_random_text_never_raises(response: str, gold: str) -> None:
    check(response, gold)


@ROBUST
@given(response=latexish, gold=latexish)
def test_latexish_soup_never_raises(response: str, gold: str) -> None:
    check(response, gold)


@settings(ROBUST, max_examples=60)
@given(response=hard, gold=st.one_of(hard, st.sampled_from(["2", r"\frac{1}{2}", "(1,2)"])))
def test_deep_and_huge_inputs_return_in_time(response: str, gold: str) -> None:
    check(response, gold)


@ROBUST
@given(body=latexish, gold=st.sampled_from(["3", r"\frac{1}{2}", r"[3,\infty)", r"\text{(C)}"]))
def test_boxed_soup_against_real_golds(body: str, gold: str) -> None:
    # Random material inside a realistic response, with a well-formed gold.
    check(f"Simplifying, we obtain $\\boxed{{{body}}}$.", gold)


PATHOLOGICAL = {
    "tower": "2^{2^{2^{2^{2^2}}}}",
    "tower_boxed": r"So the answer is $\boxed{2^{2^{2^{2^{2^{2^2}}}}}}$.",
    "factorial": "(10^9)!",
    "factorial_boxed": r"\boxed{(10^{9})!}",
    "huge_power": "10^{10^{10}}",
    "digits_5000": "9" * 5000,
    "digits_5000_fraction": r"\frac{" + "7" * 5000 + "}{" + "3" * 4999 + "}",
    "nested_frac_300": r"\frac{1}{" * 300 + "2" + "}" * 300,
    "nested_paren_300": "(" * 300 + "1" + ")" * 300,
    "response_60kb": ("We consider the sum $1+2+3$ and so on. " * 1500)[:60_000] + r" $\boxed{6}$",
    "boxes_60kb": r"\boxed{1}" * 6000,
    "unclosed_boxes": r"\boxed{" * 5000,
    "big_polynomial": "(x+1)^{1000}",
    "big_product": "*".join(["(x+1)"] * 300),
}


@pytest.mark.parametrize("text", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
@pytest.mark.parametrize("as_gold", [False, True], ids=["response", "gold"])
def test_pathological_inputs_return_in_time(text: str, as_gold: bool) -> None:
    if as_gold:
        check("6", text)
    else:
        check(text, "6")


# ---------------------------------------------------------------------------------------------
# (b) equal rationals in different forms

rationals = st.builds(Fraction, st.integers(-60, 60), st.integers(1, 40))


def gold_latex(r: Fraction) -> str:
    """How MATH writes a rational gold: an integer, or a lowest-terms \\frac with a leading sign."""
    sign = "-" if r < 0 else ""
    if r.denominator == 1:
        return str(r.numerator)
    return f"{sign}\\frac{{{abs(r.numerator)}}}{{{r.denominator}}}"


def _terminates(den: int) -> bool:
    for f in (2, 5):
        while den % f == 0:
            den //= f
    return den == 1


def forms(r: Fraction, k: int) -> list[str]:
    """Every accepted way of writing r; k >= 2 scales numerator and denominator (unreduced)."""
    a, b = abs(r.numerator), r.denominator
    neg = r < 0
    s = "-" if neg else ""
    out = []
    for cmd in (r"\frac", r"\dfrac", r"\tfrac"):
        out.append(f"{s}{cmd}{{{a}}}{{{b}}}")
        out.append(f"{s}{cmd}{{{a * k}}}{{{b * k}}}")
    out += [f"{s}{a}/{b}", f"{s}{a * k}/{b * k}"]
    if neg:
        # The minus sign may sit in front, in the numerator or in the denominator.
        out += [
            f"\\frac{{-{a * k}}}{{{b * k}}}",
            f"\\frac{{{a}}}{{-{b}}}",
            f"\\frac{{-{a}}}{{{b}}}",
        ]
    elif a:
        out.append(f"\\frac{{-{a * k}}}{{-{b * k}}}")
    if b == 1:
        out += [f"{s}{a}", f"{s}{a}.0"]
    elif a > b:
        # Mixed number: 7/2 -> 3\frac{1}{2}, and -7/2 -> -3\frac{1}{2}.
        out.append(f"{s}{a // b}\\frac{{{a % b}}}{{{b}}}")
    if _terminates(b):
        dec = format(Decimal(a) / Decimal(b), "f")
        out += [f"{s}{dec}", f"{s}{dec}0" if "." in dec else f"{s}{dec}.00"]
        if dec.startswith("0."):
            out.append(f"{s}{dec[1:]}")  # .125
    return out


def in_response(answer: str, style: int) -> str:
    return [
        answer,
        f"Dividing the favourable cases by the total, the probability is $\\boxed{{{answer}}}$.",
        f"Simplifying,\n\\[\n\\boxed{{{answer}}}\n\\]",
        f"The final answer is ${answer}$.",
    ][style]


RATIONAL = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RATIONAL
@given(r=rationals, k=st.integers(2, 9), pick=st.integers(0, 10**6), style=st.integers(0, 3))
def test_equal_rationals_in_any_form_match(r: Fraction, k: int, pick: int, style: int) -> None:
    options = forms(r, k)
    answer = options[pick % len(options)]
    v = check(in_response(answer, style), gold_latex(r), settings=MathSettings(timeout_s=3.0))
    assert v.status is MathStatus.CORRECT, (gold_latex(r), answer, v)


@RATIONAL
@given(
    r=rationals,
    other=rationals,
    k=st.integers(2, 9),
    pick=st.integers(0, 10**6),
    style=st.integers(0, 3),
)
def test_different_rationals_never_match(
    r: Fraction, other: Fraction, k: int, pick: int, style: int
) -> None:
    if other == r:
        other = r + 1
    options = forms(other, k)
    answer = options[pick % len(options)]
    v = check(in_response(answer, style), gold_latex(r), settings=MathSettings(timeout_s=3.0))
    assert v.status is MathStatus.INCORRECT, (gold_latex(r), answer, v)


def test_forms_helper_is_exact() -> None:
    # Guard the generator itself: every form it emits must denote r (checked without the verifier).
    r = Fraction(-7, 4)
    fs = forms(r, 3)
    assert (
        r"-\frac{7}{4}" in fs and r"-1\frac{3}{4}" in fs and "-1.75" in fs and r"\frac{7}{-4}" in fs
    )
    assert forms(Fraction(1, 8), 2)[-1] == ".125"
    assert gold_latex(Fraction(6, 3)) == "2"
