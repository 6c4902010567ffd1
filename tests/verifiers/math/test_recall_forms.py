"""Recall table for answer *forms*: relations, sets, numbers, ratios, functions, huge magnitudes.

Each phenomenon is a list of ``(gold, response, expected)`` cases with near-miss negatives beside
the positives: a flipped inequality that is not equal, other interval brackets, a different set, a
different function, a near-miss number. The whole table goes through ``verify_math_batch`` once;
each case then asserts on its own verdict (``relations-3``).

The property tests at the end check that power towers and factorial chains against ordinary
numbers are decided by their sizes in the caller's process (no worker, so no waiting), and that
hostile magnitudes never raise.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from restem.verifiers import MathSettings, MathStatus, MathVerdict, verify_math
from restem.verifiers.math.compare import NeedSympy
from restem.verifiers.math.judge import judge

from tests.verifiers.math.tables import judge_cases, name_cases

C, X = "correct", "incorrect"
SETTINGS = MathSettings(timeout_s=3.0)

RELATION_SPELLINGS = [
    (r"x \ge 5", "x >= 5", C),
    ("x >= 5", r"x \geq 5", C),
    (r"x \geq 5", r"x \geqslant 5", C),
    (r"x \le 2", "x <= 2", C),
    (r"x \leqslant 2", r"x \leq 2", C),
    ("x > 5", r"x \gt 5", C),
    ("x < 5", r"x \lt 5", C),
    (r"x \ne 3", "x != 3", C),
    (r"x \neq 3", r"x \ne 3", C),
    ("x \u2265 5", r"x \ge 5", C),
    (r"x \ge 5", "x > 5", X),
    (r"x \le 2", "x < 2", X),
    (r"x \ne 3", "x != 4", X),
    ("x >= 5", "x <= 5", X),
    (r"x \neq 3", "x = 3", X),
]

FLIPPED_AND_NEGATED = [
    ("x > 5", "5 < x", C),
    (r"x \le 1", r"1 \ge x", C),
    ("x < 1", "-x > -1", C),
    (r"x \le 1", r"-x \ge -1", C),
    ("x > 2", "2x > 4", C),
    (r"x \ge -1", r"-3x \le 3", C),
    ("x < 3", r"\frac{x}{3} < 1", C),
    ("x > 2", "x - 2 > 0", C),
    (r"(-\infty, 1)", "-x > -1", C),
    ("x < 1", "-x < -1", X),
    ("x > 5", "5 > x", X),
    (r"x \le 1", "-x > -1", X),
    ("x > 2", "2x > 2", X),
    ("x < 1", "x > 1", X),
]

DOUBLE_INEQUALITIES = [
    ("(0,1)", "0 < y < 1", C),
    ("0 < y < 1", "(0, 1)", C),
    ("[1,2)", r"1 \le x < 2", C),
    ("(1,2]", r"2 \ge x > 1", C),
    ("[-1,3]", r"-1 \le x \le 3", C),
    ("(0,1)", "0 < f(x) < 1", C),
    ("(-1,3)", "-3 < -x < 1", C),
    ("[1,2)", r"-2 < -x \le -1", C),
    ("[1,2)", r"1 < x \le 2", X),
    ("(0,1)", r"0 \le y < 1", X),
    ("(0,1)", "0 < y < 2", X),
    ("[1,2]", r"1 \le x \le 3", X),
    ("(-1,3)", "-3 < x < 1", X),
]

ABSOLUTE_VALUE = [
    (r"[-2,-1] \cup [1,2]", r"1 \le |z| \le 2", C),
    (
        r"1\leq|z|\leq \frac{3}{2}",
        r"z \in \left[-\frac{3}{2}, -1\right] \cup \left[1, \frac{3}{2}\right]",
        C,
    ),
    ("(-3,3)", "|x| < 3", C),
    (r"(-\infty,-2)\cup(2,\infty)", "|x| > 2", C),
    ("(-1,3)", "|x-1| < 2", C),
    (r"(-\infty,-1]\cup[2,\infty)", r"|2x-1| \ge 3", C),
    ("[-3,3]", r"|x| \le 3", C),
    (r"[-2,-1] \cup [1,2]", r"1 < |z| \le 2", X),
    (r"[-2,-1]\cup[1,2]", "[1,2]", X),
    ("(-3,3)", r"|x| \le 3", X),
    (r"(-\infty,-2)\cup(2,\infty)", "|x| < 2", X),
    ("(-1,3)", "|x+1| < 2", X),
]

SET_BUILDER = [
    (r"(-\infty,3)", r"\{x \mid x < 3\}", C),
    (r"(-\infty,3)", r"\{x : x < 3\}", C),
    (r"[2,\infty)", r"\{x \in \mathbb{R} \mid x \ge 2\}", C),
    (r"\{x \mid x<3\}", "x < 3", C),
    (r"(-\infty,1)\cup(2,\infty)", r"\{x \mid x < 1 \text{ or } x > 2\}", C),
    (r"(-\infty,3)", r"\{x \mid x \le 3\}", X),
    (r"(-\infty,3)", r"\{x \mid x > 3\}", X),
    (r"(-\infty,3)", r"\{3\}", X),
]

SET_DIFFERENCE = [
    (r"(-\infty,1)\cup(1,\infty)", r"\mathbb{R}\setminus\{1\}", C),
    (r"x \ne 1", r"\mathbb{R} - \{1\}", C),
    (r"\mathbb{R}\setminus\{1\}", r"x \neq 1", C),
    (r"(-\infty,\infty)", r"\mathbb{R}", C),
    (r"[0,1)\cup(1,2]", r"[0,2]\setminus\{1\}", C),
    ("[0,1)", r"[0,2]\setminus[1,2]", C),
    (r"\mathbb{R}\setminus\{-1, 1\}", r"(-\infty,-1)\cup(-1,1)\cup(1,\infty)", C),
    (r"\mathbb{R}\setminus\{1\}", r"\mathbb{R}\setminus\{-1\}", X),
    (r"[0,1)\cup(1,2]", "[0,2]", X),
    ("[0,1)", r"[0,2]\setminus(1,2]", X),
    (r"\mathbb{R}", r"\mathbb{R}\setminus\{0\}", X),
]

MEMBERSHIP = [
    (r"[1,2]\cup[3,4]", r"x \in [1,2] \cup [3,4]", C),
    (r"(0,\infty)", r"t \in (0, \infty)", C),
    (r"[1,2]\cup[3,4]", r"x \in [1,2) \cup [3,4]", X),
    (r"(0,\infty)", r"t \in [0,\infty)", X),
]

SEPARATORS = [
    ("1000", "1 000", C),
    ("1000", r"1\,000", C),
    ("1000", r"1\;000", C),
    ("1000000", "1 000 000", C),
    ("1000.99", "1,000.99", C),
    ("1000.99", r"\$1,000.99", C),
    ("11111111100", r"11,\! 111,\! 111,\! 100", C),
    ("32349", r"So the answer is $\boxed{32,\! 349}$.", C),
    ("1000.5", "1 000.5", C),
    ("10000", "1 0000", X),
    ("1000", "1 0000", X),
    ("0", "1 0000", X),
    ("1000", "1 001", X),
    ("1000.99", "1,000.9", X),
    ("32349", r"32,\! 348", X),
]

ORDINALS = [
    ("12", r"12^{\text{th}}", C),
    ("12", "12th", C),
    ("21", "21st", C),
    ("2", "2^{nd}", C),
    ("3", r"3\text{rd}", C),
    ("12", "13th", X),
    ("1", "21st", X),
    ("12", r"12^{\text{th}}, 13^{\text{th}}", X),
]

UNITS_AND_WORDS = [
    ("125", r"The distance is $\boxed{125\textnormal{ miles}}$.", C),
    ("5", r"5\mathrm{~cm}", C),
    ("5", r"5\operatorname{cm}", C),
    ("7", r"7 \textnormal{ apples}", C),
    (r"\text{Yes}", "yes", C),
    ("YES", r"\text{yes}", C),
    ("No", r"\textbf{no}", C),
    (r"\text{even}", "Even", C),
    ("125", r"126\textnormal{ miles}", X),
    ("5", r"50\mathrm{~mm}", X),
    (r"\text{Yes}", "no", X),
    (r"\text{odd}", "even", X),
]

PM_IN_SETS = [
    (r"\{1+\sqrt5, 1-\sqrt5, -2\}", r"\{1 \pm \sqrt5, -2\}", C),
    (r"\{1 \pm \sqrt5, -2\}", r"-2, 1+\sqrt{5}, 1-\sqrt5", C),
    (r"1 \pm \sqrt{2}, 3", r"\{3, 1+\sqrt2, 1-\sqrt2\}", C),
    (r"\{1 \pm \sqrt5, -2\}", r"\{1 + \sqrt5, -2\}", X),
    (r"\{1 \pm \sqrt5, -2\}", r"\{1 \pm \sqrt5, 2\}", X),
    (r"\{1 \pm \sqrt5, -2\}", r"\{1 \pm \sqrt3, -2\}", X),
]

APPROXIMATE_GOLDS = [
    (r"\frac{1+\sqrt{97}}{8} \approx 1.36", r"\frac{1+\sqrt{97}}{8}", C),
    (r"\frac{1+\sqrt{97}}{8} \approx 1.36", r"\frac{\sqrt{97}+1}{8}", C),
    (r"2\sqrt{2} \approx 2.83", r"\sqrt{8}", C),
    (r"\sqrt8", r"2\sqrt2 \approx 2.83", C),
    (r"\frac{1+\sqrt{97}}{8} \approx 1.36", "1.36", X),
    (r"\frac{1+\sqrt{97}}{8} \approx 1.36", r"\frac{1-\sqrt{97}}{8}", X),
    (r"2\sqrt{2} \approx 2.83", "2.83", X),
    (r"\sqrt 8", r"3 \approx 2.83", X),
    (r"x \approx 1.36", "1.36", C),
    (r"x \approx 1.36", "1.37", X),
    (r"x = \frac13 \approx 0.33", r"\frac{1}{3}", C),
    (r"x = \frac13 \approx 0.33", "0.33", X),
]

INVERSE_FUNCTIONS = [
    (r"\arctan 2", r"\tan^{-1} 2", C),
    (r"\arcsin\frac{1}{3}", r"\sin^{-1}\left(\frac{1}{3}\right)", C),
    (r"\arccos(x)", r"\cos^{-1}(x)", C),
    (r"\frac{\pi}{4}", r"\tan^{-1}(1)", C),
    (r"\operatorname{arccot} 2", r"\cot^{-1} 2", C),
    (r"\arctan 2", r"\frac{1}{\tan 2}", X),
    (r"\arctan 2", r"\tan^{-1} 3", X),
    (r"\arcsin x", r"\cos^{-1} x", X),
    (r"\frac{1}{\tan 2}", r"\tan^{-1} 2", X),
]

RATIOS = [
    ("7:32", "7/32", C),
    (r"\frac{7}{32}", "7:32", C),
    ("1:2", "2:4", C),
    ("1:2:3", "2:4:6", C),
    ("3:1", "3", C),
    ("V_1:V_2 = 11:21", "11:21", C),
    ("7:32", "32:7", X),
    ("1:2", "1:3", X),
    ("1:2:3", "1:2", X),
    ("1:2:3", "1:2:4", X),
    ("1:2", "2", X),
    ("0:1", "0:2", X),
]

FUNCTION_APPLICATION = [
    ("0", r"\boxed{-p(0)}", X),
    ("0", "p(0)", X),
    ("5", "f(2)", X),
    ("0", "3g(0)", X),
    ("f(x+1)", "f(1+x)", C),
    ("x^2+x", "x(x+1)", C),
    ("p - p^2", "p(1-p)", C),
    ("2f(x)", "f(x)+f(x)", C),
    ("f(x+1)", "f x + f", X),
    ("g(2)", "f(2)", X),
    ("f(x+1)", "f(x-1)", X),
]

HOSTILE_MAGNITUDES = [
    ("2", "2^20^87^84", X),
    ("6", "(10^9)!", X),
    (r"2^{10000}", r"4^{5000}", C),
    (r"2^{10000}", r"4^{5001}", X),
    (r"2^{2^{2^{2^{2^2}}}}", r"2^{2^{2^{2^{2^2}}}}", C),
    ("0", r"(10^9)! - (10^9)!", C),
    ("1", r"\frac{(10^9)!}{(10^9)!}", C),
    (r"10^{10^{10}}", r"10^{10^{11}}", X),
    ("1000", r"\frac{(((100!)!)!)!}{(100!)!}", X),
    (r"-3^{2001}", r"3^{2001}", X),
    (r"2^{2^{2^{2^{2^2}}}}", r"2^{2^{2^{16}}}", C),
    (r"2^{2^{2^{2^{2^2}}}}", r"2^{2^{2^{17}}}", X),
    ("x^{512}", "x^{2^{3^2}}", C),
    ("2^{2^n}+1", "2^{2^n}+1", C),
    ("x^2+1", "x^{47^{54^{12}}}", X),
    ("x^2+1", "(10^9)!", X),
    ("10", r"\log_2(2^{10})", C),
    (r"\log_2(2^{10000})", r"\binom{175106!!}{539682}", X),
    ("0", r"(((190915!)!)!)! - (((190915!)!)!)!", C),
    ("1", r"(((190915!)!)!)! - (((190915!)!)!)!", X),
]

# Tiny constants compare relative to their size: both lie within 1e-40 of 0 and of each other.
TINY_CONSTANTS = [
    (r"e^{-100}", r"e^{-101}", X),
    (r"\frac{1}{2006!}", r"\frac{1}{2004!}", X),
    (r"\pi^{-90}", r"\pi^{-91}", X),
    ("0", r"e^{-200}", X),
    (r"\frac{1}{e^{100}}", r"e^{-100}", C),
    ("0", r"\tan(\pi/8) - \sqrt{2} + 1", C),  # an unsimplified zero: only evaluation noise
    (r"\sqrt{2}-1", r"\tan\frac{\pi}{8}", C),
]

PHENOMENA = {
    "relations": RELATION_SPELLINGS,
    "flipped": FLIPPED_AND_NEGATED,
    "double": DOUBLE_INEQUALITIES,
    "abs": ABSOLUTE_VALUE,
    "builder": SET_BUILDER,
    "difference": SET_DIFFERENCE,
    "membership": MEMBERSHIP,
    "separators": SEPARATORS,
    "ordinals": ORDINALS,
    "units": UNITS_AND_WORDS,
    "pm": PM_IN_SETS,
    "approx": APPROXIMATE_GOLDS,
    "inverse": INVERSE_FUNCTIONS,
    "ratios": RATIOS,
    "application": FUNCTION_APPLICATION,
    "magnitudes": HOSTILE_MAGNITUDES,
    "tiny": TINY_CONSTANTS,
}
ALL_CASES = name_cases(PHENOMENA)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, MathVerdict]:
    return judge_cases(ALL_CASES, SETTINGS)


def test_table_shape() -> None:
    assert len(ALL_CASES) >= 150, len(ALL_CASES)
    for name, cases in PHENOMENA.items():
        statuses = {expected for _, _, expected in cases}
        assert statuses == {C, X}, f"{name} needs positives and near-miss negatives"


@pytest.mark.parametrize(("case_id"), list(ALL_CASES))
def test_case(verdicts: dict[str, MathVerdict], case_id: str) -> None:
    gold, response, expected = ALL_CASES[case_id]
    verdict = verdicts[case_id]
    assert verdict.status.value == expected, (case_id, gold, response, verdict)


# ---------------------------------------------------------------------------------------------
# Hostile magnitudes: decided by size in the caller, never raising, never waiting out the limit.

digits = st.integers(2, 99).map(str)


def _tower(parts: list[str], braced: bool) -> str:
    if not braced:
        return "^".join(parts)
    return "^{".join(parts) + "}" * (len(parts) - 1)


towers = st.builds(_tower, st.lists(digits, min_size=3, max_size=7), st.booleans())


def _chain(n: int, wraps: list[bool]) -> str:
    text = f"{n}!"
    for wrap in wraps:  # (n!)! or n!! (which the parser reads as (n!)!)
        text = f"({text})!" if wrap else text + "!"
    return text


factorial_chains = st.builds(_chain, st.integers(171, 10**6), st.lists(st.booleans(), max_size=4))
ordinary = st.one_of(st.integers(-(10**6), 10**6).map(str), st.sampled_from(["\\frac{1}{2}", "0"]))
MAGNITUDES = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@MAGNITUDES
@given(huge=st.one_of(towers, factorial_chains), gold=ordinary, boxed=st.booleans())
def test_huge_against_ordinary_is_decided_in_the_caller(huge: str, gold: str, boxed: bool) -> None:
    # The exact comparator decides by size: no worker, no sympy, no waiting (NeedSympy would
    # send the pair to a worker process).
    response = rf"So the answer is $\boxed{{{huge}}}$." if boxed else huge
    try:
        verdict = judge(response, gold, SETTINGS)
    except NeedSympy:
        pytest.fail(f"{huge!r} vs {gold!r} needed sympy")
    assert verdict.status is MathStatus.INCORRECT, verdict


hostile = st.one_of(
    towers,
    factorial_chains,
    st.builds(lambda a, op, b: f"{a}{op}{b}", towers, st.sampled_from("+-/*"), towers),
    st.builds(lambda t: rf"\sqrt{{{t}}}", towers),
    st.builds(lambda t, n: rf"\binom{{{t}}}{{{n}}}", towers, st.integers(2, 10**6)),
)


@MAGNITUDES
@given(response=hostile, gold=st.one_of(hostile, ordinary))
def test_hostile_magnitudes_never_raise(response: str, gold: str) -> None:
    # How fast they are decided is measured by the fuzz in `restem bench math`, not here.
    verdict = verify_math(response, gold, settings=SETTINGS)
    assert verdict.status in (MathStatus.CORRECT, MathStatus.INCORRECT, MathStatus.TIMEOUT), verdict
    if response == gold:
        assert verdict.status is MathStatus.CORRECT, verdict
