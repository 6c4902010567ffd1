"""Acceptance table for the symbolic MATH answer verifier.

Each phenomenon the verifier must handle is a list of ``(gold, response, expected)`` cases, where
``expected`` is a ``MathStatus`` value. ``NEAR_MISSES`` are answers that a loose checker (numeric
tolerance, sloppy parsing, set-instead-of-tuple, x100 percent rescaling, ...) would wrongly accept;
they must all be ``incorrect``. Responses are mostly bare answers; a good share are wrapped in
realistic model text (``say``) so extraction is exercised together with equivalence.

The whole table goes through ``verify_math_batch`` once (module fixture); each case then asserts on
its own verdict, so a failure names the phenomenon and index (``fractions-3``).
"""

from __future__ import annotations

import pytest
from restem.verifiers import MathSettings, MathStatus, MathVerdict, verify_math

from tests.verifiers.math.tables import (
    duplicated_pairs,
    judge_cases,
    name_cases,
    status_message,
)

# Expected statuses, short so the table stays one case per line (X: incorrect).
C, X, N, G = "correct", "incorrect", "no_answer", "invalid_gold"

# How models actually end their solutions (shapes taken from real MATH outputs).
_TEMPLATES = (
    r"Therefore, the answer is \(\boxed{ANS}\).",
    "Combining the cases above, we conclude:\n\n\\[\n\\boxed{ANS}\n\\]",
    r"Substituting back and simplifying, we get $\boxed{ANS}$.",
    "## Step 3: Conclude\nThe final answer is: $\\boxed{ANS}$",
)


def say(answer: str, style: int = 0) -> str:
    """A full model response whose (only) boxed answer is ``answer``."""
    return _TEMPLATES[style % len(_TEMPLATES)].replace("ANS", answer)


# Policy 1: where the answer is taken from.
EXTRACTION = [
    ("5", r"So the answer is $\boxed{5}$.", C),
    ("5", r"So the answer is $\boxed{6}$.", X),
    (r"\frac{\sqrt{3}}{2}", r"Hence $\sin 60^\circ = \boxed{\frac{\sqrt{3}}{2}}$.", C),
    ("7", r"Counting all the cases, the total is \fbox{7}.", C),
    ("12", "I added the terms one by one.\nThe final answer is 12.", C),
    ("12", "I added the terms one by one.\nThe final answer is $12$.", C),
    ("12", "Adding the two partial sums, the answer is 12", C),
    ("12", "Adding the two partial sums, the answer is 13", X),
    (
        r"\frac{3}{4}",
        "We divide the favourable count by the total.\n\n"
        r"Final Answer: The final answer is $\frac{3}{4}$. I hope it is correct.",
        C,
    ),
    ("8", "Each box holds two apples.\nSo the number of apples in the four boxes is $8$", C),
    ("8", "Each box holds two apples.\nSo the number of apples in the four boxes is $8$.", C),
    (r"\frac{9}{2}", "We simplify the expression.\nThe area equals $\\frac{9}{2}$", C),
    ("42", "42", C),
    ("42", "  42\n", C),
    ("42", "43", X),
    (r"\frac{9}{2}", r"\frac{9}{2}", C),
    ("5", r"\boxed{ 5 }", C),
    ("x^2", "Completing the argument,\n\\[\\boxed{x^2}\\]", C),
    # A box outranks an earlier "answer is" sentence: the box is the final answer.
    (
        "5",
        "At first I thought the answer is 4, but that misses a case.\n\n"
        r"Correcting it, we get $\boxed{5}$.",
        C,
    ),
    # Truncated generations: the last box never closes.
    ("5", "We add the numbers.\n\nSo the result is \\boxed{5", N),
    ("5", "First pass gives \\boxed{5}.\n\nLet me double-check: the value is \\boxed{5", N),
    (r"\frac{1}{2}", "Dividing, we get the probability\n\\[\\boxed{\\frac{1}{2}", N),
    ("5", "So we conclude, after all that work, that $\\boxed{}$.", N),
    ("5", "", N),
    ("5", "   \n\t ", N),
    (
        "5",
        "Let me think about this problem carefully. First, we consider the constraints on the\n"
        "variables and try several substitutions, but none of them seem to lead anywhere useful.\n"
        "We would need to analyse the remaining cases in much more detail before concluding.",
        N,
    ),
    (
        "4",
        "We start by writing the equation in standard form and then look at the discriminant.\n"
        "The discriminant is positive, so there are two real roots to consider, and we now need\n"
        "to check each of them against the original constraint on the domain of the variable.",
        N,
    ),
    ("20", say("20", 0), C),
    ("20", say("20", 1), C),
    ("20", say("20", 2), C),
    ("20", say("20", 3), C),
    ("20", say("21", 1), X),
]

# Policy 2: every distinct boxed answer must equal the gold.
HEDGING = [
    ("3", r"The answer is $\boxed{3}$ or $\boxed{5}$.", X),
    ("3", r"So $x = \boxed{3}$. Checking again by substitution, $x = \boxed{3}$.", C),
    ("3", r"\boxed{3, 5}", X),
    ("3", r"Either way we find $\boxed{3}$ \quad or \quad $\boxed{-3}$.", X),
    # Boxes that differ in form but not in value are not a hedge.
    (r"\frac{1}{2}", r"We have $\boxed{\frac{1}{2}}$, which is also $\boxed{0.5}$.", C),
    ("2", r"The answer is \boxed{2}, i.e. \fbox{2}.", C),
    ("3, 5", r"The two roots are $\boxed{3, 5}$.", C),
    ("3", r"Testing both candidates, $\boxed{3 \text{ or } 5}$.", X),
    ("7", "Case 1 gives $\\boxed{7}$.\n\nCase 2 gives $\\boxed{9}$.", X),
    ("9", "Case 1 gives $\\boxed{7}$.\n\nCase 2 gives $\\boxed{9}$.", X),
]

# Policy 3: unusable golds, and golds that are whole solutions.
GOLD = [
    ("", "5", G),
    ("   ", "5", G),
    ("\n\t", "", G),
    (r"\frac{1}{2", "1/2", G),
    (r"\frac{1}{2}}", "1/2", G),
    (r"\boxed{5", "5", G),
    ("{", "5", G),
    (r"The sum is $2+3 = \boxed{5}$.", "5", C),
    (r"The sum is $2+3 = \boxed{5}$.", "6", X),
    (r"Solution: after simplifying, $p = \boxed{\frac{1}{2}}$.", r"\boxed{0.5}", C),
    (r"We first find $a = \boxed{3}$, and finally $b = \boxed{7}$.", "7", C),
    (r"We first find $a = \boxed{3}$, and finally $b = \boxed{7}$.", "3", X),
]

# Policies 4 and 5: value, not form; fraction notations; mixed numbers.
FRACTIONS = [
    (r"\frac{1}{2}", "2/4", C),
    (r"\frac{1}{2}", r"\frac{2}{4}", C),
    ("5", "2+3", C),
    (r"\frac{3}{4}", r"\frac{1}{2}+\frac{1}{4}", C),
    ("12", r"3 \cdot 4", C),
    ("12", r"3 \times 4", C),
    ("10", "2^3+2", C),
    (r"\frac{1}{2}", r"\frac12", C),
    (r"\frac{1}{2}", r"\dfrac{1}{2}", C),
    (r"\frac{1}{2}", r"\tfrac{1}{2}", C),
    (r"\frac{1}{2}", "1/2", C),
    (r"\frac{1}{2}", "0.5", C),
    (r"\frac{1}{2}", "(1/2)", C),
    (r"-\frac{1}{2}", r"\frac{-1}{2}", C),
    (r"-\frac{1}{2}", r"\frac{1}{-2}", C),
    (r"-\frac{1}{2}", "-1/2", C),
    (r"\frac{-1}{2}", "-0.5", C),
    (r"\frac{1}{-2}", r"-\dfrac{1}{2}", C),
    (r"\frac{-3}{4}", r"-\dfrac{3}{4}", C),
    (r"\frac{5}{2}", r"2\frac{1}{2}", C),
    (r"2\frac{1}{2}", "2.5", C),
    (r"2\frac{1}{2}", "5/2", C),
    (r"-2\frac{1}{2}", r"-\frac{5}{2}", C),
    (r"\frac{7}{3}", r"2\frac{1}{3}", C),
    (r"\frac{3}{2}", r"1\tfrac{1}{2}", C),
    (r"\frac{22}{7}", r"3\frac{1}{7}", C),
    (r"12\frac{3}{5}", "12.6", C),
    (r"1\frac{1}{4}", r"\frac{5}{4}", C),
    (r"\frac{1}{3}", r"\frac{2}{6}", C),
    (r"\frac{10}{4}", "5/2", C),
    (r"\frac{4}{6}", r"\frac{2}{3}", C),
    ("1.5", r"\frac{3}{2}", C),
    (r"\dfrac{3}{5}", "0.6", C),
    (r"\dfrac{1}{9}", r"\frac{1}{9}", C),
    (r"\frac{1}{2}", r"\frac{1}{3}", X),
    (r"\frac{5}{2}", r"2\frac{1}{3}", X),
    (r"\frac{3}{8}", say(r"\frac{3}{8}", 0), C),
    (r"\frac{3}{8}", say(r"\dfrac{6}{16}", 1), C),
    (r"-\frac{40}{153}", say(r"-\frac{40}{153}", 2), C),
    (r"-\frac{40}{153}", say(r"\frac{40}{153}", 3), X),
    (r"1\frac{9}{10}", say("1.9", 0), C),
]

# Policy 6: decimals; approximations accepted only at >= 6 significant digits within one unit.
DECIMALS = [
    (r"\frac{2}{5}", ".4", C),
    ("0.4", ".4", C),
    ("4", "4.00", C),
    ("4.00", "4", C),
    ("2", "2.0", C),
    ("-0.5", "-.5", C),
    ("0.5", "0.50", C),
    ("3.5", "3.50", C),
    ("37.50", "37.5", C),
    ("1.25", r"\frac{5}{4}", C),
    ("0.125", "1/8", C),
    ("100", "100.000000", C),
    (r"\frac{1}{3}", "0.3333333", C),
    (r"\frac{1}{3}", "0.333333", C),
    (r"\frac{1}{3}", "0.3333333333", C),
    (r"\frac{2}{3}", "0.666667", C),
    # Truncated rather than rounded, still within one unit of the last digit.
    (r"\frac{2}{3}", "0.666666", C),
    (r"\frac{1}{7}", "0.142857", C),
    # Leading zeros are not significant: six significant digits here.
    (r"\frac{1}{3000}", "0.000333333", C),
    (r"\pi", "3.14159", C),
    (r"\pi", "3.141593", C),
    (r"2\pi", "6.28319", C),
    (r"\sqrt{2}", "1.41421", C),
    (r"\sqrt{2}", "1.414214", C),
    (r"\frac{\sqrt{3}}{2}", "0.866025", C),
    ("e", "2.71828", C),
    (r"\ln 2", "0.693147", C),
    (r"\frac{\pi}{4}", "0.785398", C),
    (r"-\frac{1}{3}", "-0.333333", C),
    (r"\frac{100}{3}", "33.3333", C),
    (r"\frac{100}{3}", "33.33", X),
    (r"\frac{1}{3}", "0.33", X),
    (r"\frac{1}{3}", "0.333", X),
    (r"\sqrt{2}", "1.414", X),
    (r"\frac{\sqrt{3}}{2}", "0.866", X),
    ("3.5", "3.49999", X),
    ("10000", "9999.5", X),
    ("13.18", say("13.18", 0), C),
    ("13.18", say("13.180", 1), C),
    ("13.18", say("13.2", 2), X),
]

# Policy 7: thousands separators.
THOUSANDS = [
    ("1000", "1,000", C),
    ("10000", "10{,}000", C),
    ("900000", r"900,\!000", C),
    ("1000", r"1\,000", C),
    ("1,000", "1000", C),
    (r"10{,}000", "10000", C),
    (r"900,\!000,\!000", "900000000", C),
    (r"3,\!250", "3250", C),
    (r"50,\!625", "50,625", C),
    ("1234567", "1,234,567", C),
    ("1000000", "1{,}000{,}000", C),
    ("12345.6", "12,345.6", C),
    ("5000", r"\$5,000", C),
    ("6290000", r"6{,}290{,}000", C),
    ("1000", "1,100", X),
    (r"900,\!000", "90,000", X),
    (r"10{,}000", say(r"10,\!000", 0), C),
    (r"3,\!250", say("3,250", 2), C),
]

# Policy 8: scientific notation.
SCIENTIFIC = [
    ("1500", r"1.5\times10^{3}", C),
    ("1500", r"1.5 \cdot 10^3", C),
    (r"1.5\times10^{3}", "1500", C),
    (r"1.5\times10^{3}", r"1.5 \cdot 10^{3}", C),
    ("0.0025", r"2.5\times 10^{-3}", C),
    (r"2.5 \times 10^{-3}", r"\frac{1}{400}", C),
    (r"3\times10^{8}", "300000000", C),
    (r"6.02\times10^{23}", r"6.02 \times 10^{23}", C),
    ("1500", r"15 \times 10^2", C),
    (r"3\times10^{8}", r"3\times10^{9}", X),
    (r"3\times10^{8}", say(r"3 \times 10^8", 1), C),
]

# Policy 9: percent signs are dropped, never rescaled.
PERCENT = [
    (r"25\%", "25", C),
    ("25", r"25\%", C),
    (r"25\%", "25%", C),
    (r"12.5\%", "12.5", C),
    (r"40\%", r"40 \%", C),
    (r"198\%", "198", C),
    (r"33\frac{1}{3}\%", r"\frac{100}{3}", C),
    (r"25\%", r"26\%", X),
    (r"\frac{1}{4}", r"25\%", X),
    (r"25\%", say(r"25\%", 0), C),
    (r"198\%", say(r"198\%", 3), C),
]

# Policy 10: units and \text{} are dropped; they never rescue a wrong number.
UNITS = [
    ("5", r"5\text{ cm}", C),
    ("5", r"5 \text{ cm}^2", C),
    ("42409", r"\$42,\!409", C),
    ("10", r"10\mbox{ inches}", C),
    ("6", r"6 \text{ square units}", C),
    (r"100\text{ square units}", "100", C),
    (r"5\text{ cm}", "5", C),
    (r"\$6", "6", C),
    (r"\$18.90", "18.90", C),
    ("18.90", r"\$18.90", C),
    ("7", r"7 \text{ meters}", C),
    ("12", r"12\text{ dollars}", C),
    ("20", r"20\,\text{cm}", C),
    # One-letter unit names are units too, not variables.
    ("5", r"5\text{ m}", C),
    ("1500", r"1500 \text{ m}", C),
    ("12", r"12\text{ g}", C),
    (r"5\text{ m}", "5", C),
    ("1500", r"1.5\times 10^{3}\text{ m}", C),
    ("3", r"3\text{ hours}", C),
    (r"\frac{1}{2}", r"\frac{1}{2}\text{ inch}", C),
    (r"9\pi", r"9\pi \text{ square units}", C),
    ("5", r"6\text{ cm}", X),
    (r"100\text{ square units}", r"10\text{ square units}", X),
    ("52", say(r"52 \text{ feet}", 1), C),
    (r"\$6", say(r"\$6", 2), C),
    (r"\$6", say(r"\$7", 0), X),
]

# Policy 11: degree signs are dropped; radians are not converted.
DEGREES = [
    ("30", r"30^\circ", C),
    (r"30^\circ", r"30^{\circ}", C),
    (r"30^\circ", "30°", C),
    (r"30^\circ", "30", C),
    ("45", r"45^{\circ}", C),
    (r"120^\circ", r"120 ^\circ", C),
    (r"90^\circ", r"90\text{ degrees}", C),
    (r"22.5^\circ", "22.5", C),
    (r"30^\circ", r"60^\circ", X),
    (r"\frac{\pi}{6}", r"30^\circ", X),
    (r"48^\circ", say("48", 0), C),
    (r"120^\circ", say(r"120^{\circ}", 1), C),
]

# Policy 12: a single-variable left side is dropped; other equations compare as equations.
EQUATIONS = [
    ("5", "x = 5", C),
    ("x = 5", "5", C),
    ("x=5", "x = 5", C),
    ("x = -3", "x=-3", C),
    ("4", "k = 4", C),
    (r"\frac{1}{2}", r"a = \frac{1}{2}", C),
    ("2x+3", "y = 2x+3", C),
    ("y = 2x+3", "2x+3", C),
    ("y = 2x+3", "y=3+2x", C),
    ("y = x^2", r"y = x \cdot x", C),
    ("x+y=1", "y+x=1", C),
    ("2x+3y=6", "3y+2x=6", C),
    ("5", "x = 6", X),
    ("x+y=1", "x+y=2", X),
    ("4t", say("4t", 0), C),
    ("4a-2", say("2(2a-1)", 1), C),
    ("-4", say("x = -4", 2), C),
]

# Policy 13: radicals and pi.
RADICALS = [
    (r"2\sqrt{2}", r"\sqrt{8}", C),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", C),
    ("2", r"\sqrt[3]{8}", C),
    (r"2\pi", r"\pi\cdot 2", C),
    (r"\sqrt{2}", r"\sqrt2", C),
    (r"3\sqrt{3}", r"\sqrt{27}", C),
    (r"\sqrt{12}", r"2\sqrt{3}", C),
    (r"4\pi", r"4 \pi", C),
    (r"\frac{\pi}{2}", r"\frac{1}{2}\pi", C),
    (r"\sqrt{3}", "3^{1/2}", C),
    (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}", C),
    (r"5+2\sqrt{6}", r"(\sqrt{2}+\sqrt{3})^2", C),
    (r"\sqrt[3]{2}", "2^{1/3}", C),
    (r"\pi^2", r"\pi \cdot \pi", C),
    ("3", r"\sqrt{9}", C),
    (r"\sqrt{5}", r"\sqrt{6}", X),
    (r"\pi", r"\frac{22}{7}", X),
    (r"7\pi", say(r"7\pi", 0), C),
    (r"7\pi", say(r"\pi \cdot 7", 3), C),
    (r"7\pi", say(r"6\pi", 2), X),
]

# Policy 14: polynomial and expression equivalence.
POLYNOMIALS = [
    ("x^2-1", "(x-1)(x+1)", C),
    ("x^2+2x+1", "(x+1)^2", C),
    ("(x+1)^2", "x^2+2x+1", C),
    ("2x", "x+x", C),
    ("3x^2-6x", "3x(x-2)", C),
    (r"\frac{x+1}{2}", r"\frac{x}{2}+\frac{1}{2}", C),
    ("a^2-b^2", "(a+b)(a-b)", C),
    ("(x-2)(x+3)", "x^2+x-6", C),
    ("x^3-1", "(x-1)(x^2+x+1)", C),
    ("2x+3", "3+2x", C),
    ("4x^2", "(2x)^2", C),
    ("x^{-1}", r"\frac{1}{x}", C),
    ("xy", "yx", C),
    ("x^2+2xy+y^2", "(x+y)^2", C),
    ("(x-2)(x+3)", "x^2-x-6", X),
    ("6x^5", "6x^4", X),
    ("x^2+5x+6", say("(x+2)(x+3)", 1), C),
    ("x^2+5x+6", say("(x+2)(x-3)", 2), X),
]

# Policy 15: i is the imaginary unit.
COMPLEX = [
    ("3+4i", "4i+3", C),
    (r"\frac{1+i}{2}", r"\frac12+\frac{i}{2}", C),
    ("-1", "i^2", C),
    ("2i", r"i \cdot 2", C),
    ("1+i", "i+1", C),
    ("-i", r"\frac{1}{i}", C),
    ("5", "(2+i)(2-i)", C),
    ("2+2i", "2(1+i)", C),
    (r"\frac{3}{5}+\frac{4}{5}i", r"\frac{3+4i}{5}", C),
    ("3+4i", "3 + 4 i", C),
    ("-1+i", "i-1", C),
    ("1-i", "1+i", X),
    ("2i", "-2i", X),
    ("1+2i", say("2i+1", 0), C),
    ("1+2i", say("1-2i", 1), X),
]

# Policy 16: ordered tuples and points.
TUPLES = [
    ("(1, 2)", r"\left(1,2\right)", C),
    ("(1,2,3)", "(1, 2, 3)", C),
    (r"\left(\frac{1}{2}, 3\right)", "(0.5, 3)", C),
    ("(-1, 4)", "(-1,4)", C),
    (r"(0, \sqrt{3})", r"(0,\sqrt3)", C),
    ("(4, 5)", "(4.0, 5)", C),
    (r"\left(\frac{1}{2}, -\frac{3}{4}\right)", "(1/2, -3/4)", C),
    ("(2, 4)", "(1+1, 2^2)", C),
    ("(1,2)", "(1,2,3)", X),
    ("(3, -2)", "(3, 2)", X),
    ("(2, -1, 3)", "(2, 3, -1)", X),
    ("(2, 4)", say("(2,4)", 0), C),
    ("(2, 4)", say(r"\left( 2, 4 \right)", 1), C),
    ("(2, 4)", say("(4, 2)", 2), X),
]

# Policies 17 and 21: intervals (ends matter), unions in any order, inequalities.
INTERVALS = [
    ("[1,2)", "[1, 2)", C),
    ("[1,2)", "[1,2]", X),
    ("(1,2]", "[1,2]", X),
    ("(1,2)", "[1,2]", X),
    (r"(-\infty, 3)", "x < 3", C),
    (r"[3,\infty)", r"x \ge 3", C),
    (r"[3, \infty)", r"x \geq 3", C),
    ("(-2, 5]", r"-2 < x \le 5", C),
    ("(-2,5]", r"\left(-2, 5\right]", C),
    (r"[2, 5)", r"2 \leq x < 5", C),
    (r"[-2, 2]", r"-2 \le x \le 2", C),
    (r"(0, \infty)", "x > 0", C),
    (r"(-\infty, -1)", "x<-1", C),
    (r"(-\infty,\infty)", r"(-\infty, \infty)", C),
    (r"\left[ -1, \frac{1}{2} \right)", "[-1, 0.5)", C),
    (r"(-\infty, 0) \cup (1, \infty)", r"(1, \infty) \cup (-\infty, 0)", C),
    (r"(-\infty, 2] \cup [3, \infty)", r"[3,\infty) \cup (-\infty, 2]", C),
    (r"(-\infty, 0) \cup (1, \infty)", r"(-\infty, 0] \cup (1, \infty)", X),
    (r"(-\infty, 3)", r"x \le 3", X),
    ("(1, 5)", "(1, 6)", X),
    (r"(-\infty, 2] \cup [3, \infty)", say(r"(-\infty,2]\cup[3,\infty)", 0), C),
    (r"[3,\infty)", say(r"x \geq 3", 1), C),
    (r"[3,\infty)", say(r"x > 3", 2), X),
]

# Policy 18: sets and "all solutions" lists are unordered, but length and multiplicity count.
SETS = [
    ("1, 2, 3", "3, 1, 2", C),
    ("1, 2, 3", r"\{1,2,3\}", C),
    (r"\{1,2,3\}", "3,2,1", C),
    (r"\{1, 2\}", r"\{2, 1\}", C),
    ("1,2", "x=1, x=2", C),
    ("-2, 3", "3, -2", C),
    (r"\frac{1}{2}, -1", "-1, 0.5", C),
    ("-1, 1", "1,-1", C),
    ("0, 1, -1", "-1, 0, 1", C),
    ("1, 2", "1, 3", X),
    ("1,2", "x=1, x=3", X),
    ("1, 2, 3", say("3, 2, 1", 0), C),
    ("1, 2, 3", say(r"\{1, 2, 3\}", 1), C),
    ("-2, 3", say("-2, -3", 2), X),
]

# Policy 19: \pm expands to the two-element set.
PLUS_MINUS = [
    (r"1 \pm \sqrt{2}", r"1+\sqrt{2}, 1-\sqrt{2}", C),
    (r"\pm 2", "2, -2", C),
    ("2, -2", r"\pm 2", C),
    (r"1+\sqrt{2}, 1-\sqrt{2}", r"1 \pm \sqrt{2}", C),
    (r"\pm 3", "-3, 3", C),
    (r"\frac{-1 \pm \sqrt{5}}{2}", r"\frac{-1+\sqrt{5}}{2}, \frac{-1-\sqrt{5}}{2}", C),
    (r"\pm\sqrt{3}", r"\sqrt{3}, -\sqrt{3}", C),
    (r"x = \pm 2", "2, -2", C),
    (r"\pm 2", r"\pm 3", X),
    (r"\pm 2", say(r"\pm 2", 0), C),
    (r"\pm 2", say("-2, 2", 3), C),
]

_M22 = r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}"
_COL12 = r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}"

# Policy 20: matrices and vectors; entries by value, dimensions matter.
MATRICES = [
    (_M22, r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}", C),
    (_M22, r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", C),
    (
        r"\begin{pmatrix} \frac{1}{2} \\ 3 \end{pmatrix}",
        r"\begin{pmatrix} 0.5 \\ 3 \end{pmatrix}",
        C,
    ),
    (
        r"\begin{pmatrix} 2 & 0 \\ 0 & 2 \end{pmatrix}",
        r"\begin{pmatrix} 1+1 & 0 \\ 0 & 4/2 \end{pmatrix}",
        C,
    ),
    (r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}", r"\begin{bmatrix}1\\-2\end{bmatrix}", C),
    (
        r"\begin{pmatrix} \sqrt{2} \\ 1 \end{pmatrix}",
        r"\begin{pmatrix} \sqrt2 \\ 1 \end{pmatrix}",
        C,
    ),
    # A column vector and the tuple of its entries are the same answer (both directions).
    (_COL12, "(1,2)", C),
    ("(1,2)", _COL12, C),
    (_COL12, r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}", X),
    (r"\begin{pmatrix} 1 \\ 2 \\ 3 \end{pmatrix}", _COL12, X),
    (r"\begin{pmatrix} -1 \\ 2 \end{pmatrix}", _COL12, X),
    (_M22, say(_M22, 2), C),
    (_M22, say(r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}", 1), C),
    (_M22, say(r"\begin{pmatrix} 1 & 2 \\ 3 & 5 \end{pmatrix}", 0), X),
]

# Policy 22: base subscripts; the base may be omitted, but the digits must match.
BASES = [
    ("1011_2", "1011_{2}", C),
    ("1011_{2}", "1011_2", C),
    ("1011_2", "1011", C),
    ("123_4", "123_{4}", C),
    ("123_4", "123", C),
    ("10001_2", "10001_{2}", C),
    ("52_8", "52_{8}", C),
    # The decimal value is a different answer from the base-b numeral asked for.
    ("123_4", "27", X),
    ("52_8", "42", X),
    ("101_2", "110_2", X),
    ("1011_2", say("1011_2", 0), C),
    ("1011_2", say("1011_{2}", 1), C),
    ("1011_2", say("1111_2", 2), X),
]

# Policy 23: multiple-choice letters in any wrapping.
MULTIPLE_CHOICE = [
    (r"\text{(C)}", "C", C),
    ("C", "(C)", C),
    (r"\text{(C)}", r"\textbf{(C)}", C),
    ("C", r"\text{(C)}", C),
    ("C", r"\text{C}", C),
    (r"\text{(B)}", "B", C),
    ("B", r"\textbf{(B)}", C),
    ("(A)", r"\text{(A)}", C),
    (r"\text{(A)}", "A", C),
    ("D", "(D)", C),
    ("E", r"\boxed{E}", C),
    (r"\text{(C)}", r"\text{(E)}", X),
    ("A", "B", X),
    ("A", say("A", 0), C),
    ("C", say(r"\text{(C)}", 1), C),
    ("C", say(r"\textbf{(B)}", 2), X),
]

# Policy 24: plain-text answers ignore case, spaces and periods.
TEXT = [
    (r"\text{4:30 p.m.}", "4:30 p.m.", C),
    (r"\text{4:30 p.m.}", "4:30 PM", C),
    ("4:30 p.m.", r"\text{4:30 pm}", C),
    (r"\text{4:30 p.m.}", "4:30 P.M.", C),
    (r"\text{4:30 p.m.}", r"4:30 \text{ p.m.}", C),
    (r"\text{Monday}", "Monday", C),
    (r"\text{Monday}", "monday", C),
    (r"\text{yes}", "Yes", C),
    (r"\text{Sunday}", r"\textbf{Sunday}", C),
    (r"\text{Evelyn}", "Evelyn", C),
    (r"\text{odd}", "odd", C),
    (r"\text{neither}", r"\text{Neither}", C),
    (r"\text{no}", r"\text{yes}", X),
    (r"\text{Evelyn}", "Emily", X),
    (r"\text{odd}", r"\text{even}", X),
    (r"\text{4:30 p.m.}", "4:40 p.m.", X),
    (
        r"\text{4:30 p.m.}",
        "Adding 2 hours to 2:30 p.m., they will arrive at \\boxed{4:30 \\text{ p.m.}}.",
        C,
    ),
    (r"\text{4:30 p.m.}", say(r"\text{4:30 p.m.}", 2), C),
    (r"\text{Monday}", say(r"\text{Monday}", 1), C),
]

# Policy 25: answers a loose checker (numeric tolerance, sloppy parsing, sets for tuples, x100
# percent rescaling, taking the last box only, ...) would wrongly accept. All must be rejected.
NEAR_MISSES = [
    # integers compare exactly, whatever the relative size of the error
    ("9999", "10000", X),
    ("10000", "9999", X),
    ("100000", "100001", X),
    ("1000000", "1000001", X),
    ("123456789", "123456788", X),
    ("12", "11", X),
    ("12", "13", X),
    # two decimals compare exactly (no absolute or relative tolerance)
    ("0.0001", "0.0002", X),
    ("0", "0.0001", X),
    ("1.5", "1.50001", X),
    ("0.333333", "0.3333333", X),
    # too few significant digits, or just outside one unit of the last digit
    (r"\frac{1}{3}", "0.3", X),
    (r"\frac{1}{3}", "0.3333", X),
    (r"\frac{1}{3}", "0.3333332", X),
    (r"\frac{2}{3}", "0.666665", X),
    (r"\frac{2}{3}", "0.67", X),
    (r"\frac{1}{7}", "0.1429", X),
    (r"\pi", "3.14", X),
    (r"\pi", "3.1416", X),
    (r"\pi", "3.14158", X),
    (r"2\pi", "6.28", X),
    (r"\sqrt{2}", "1.4142", X),
    ("e", "2.718", X),
    # percent is never rescaled
    ("50", "0.5", X),
    (r"50\%", "0.5", X),
    ("0.25", r"25\%", X),
    (r"25\%", "0.25", X),
    # sign errors
    ("3", "-3", X),
    (r"-\frac{1}{2}", r"\frac{1}{2}", X),
    (r"-\frac{1}{2}", r"\frac{-1}{-2}", X),
    ("-3", r"\sqrt{9}", X),
    ("x = 5", "x = -5", X),
    ("2x+3", "2x-3", X),
    # inverted or misparsed fractions (a mixed number is not a product)
    (r"\frac{1}{2}", r"\frac{2}{1}", X),
    (r"\frac{3}{4}", r"\frac{4}{3}", X),
    (r"2\frac{1}{2}", "1", X),
    ("1", r"2\frac{1}{2}", X),
    ("0.5", "5", X),
    # radicals, pi, powers
    (r"\sqrt{2}", "2", X),
    (r"\sqrt{3}", "3", X),
    (r"\frac{\sqrt{2}}{2}", r"\sqrt{2}", X),
    (r"2\sqrt{3}", r"3\sqrt{2}", X),
    ("x^2", "2x", X),
    ("x^2+1", "x^2-1", X),
    ("(x+1)^2", "x^2+1", X),
    ("x^3-1", "(x-1)^3", X),
    # |x| and sqrt(x^2) equal x only for x >= 0; nothing says x >= 0
    ("x", "|x|", X),
    ("x", r"\sqrt{x^2}", X),
    (r"\frac{1}{x-1}", r"\frac{1}{1-x}", X),
    # complex numbers
    ("3+4i", "3-4i", X),
    ("3+4i", "4+3i", X),
    (r"\frac{1+i}{2}", r"\frac{1-i}{2}", X),
    # equations
    ("y=2x+3", "y=2x+4", X),
    ("x+y=1", "x-y=1", X),
    # degrees vs radians
    (r"30^\circ", r"\frac{\pi}{6}", X),
    (r"\frac{\pi}{6}", "30", X),
    # ordered tuples are not sets
    ("(1,2)", "(2,1)", X),
    ("(3,-4)", "(-4,3)", X),
    (_COL12, "(2,1)", X),
    (_M22, r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}", X),
    (_COL12, r"\begin{pmatrix} 1 & 2 \end{pmatrix}", X),
    # interval ends
    ("[1,2)", "(1,2]", X),
    (r"[3,\infty)", r"(3,\infty)", X),
    (r"(-\infty, 3)", r"(-\infty, 3]", X),
    ("(-2, 5]", r"-2 \le x \le 5", X),
    (r"(0,\infty)", r"x \geq 0", X),
    (r"(-\infty, 2] \cup [3, \infty)", r"(-\infty, 2] \cup (3, \infty)", X),
    (r"(-\infty, 2] \cup [3, \infty)", r"(-\infty, 2]", X),
    # infinity is not just a big number, and its sign matters
    (r"\infty", r"-\infty", X),
    (r"-\infty", r"\infty", X),
    (r"\infty", "1000000", X),
    (r"\infty", "x", X),
    # bases
    ("1011_2", "11", X),
    ("1011_2", "1011_3", X),
    ("1011_2", "1101_2", X),
    # partial or extra solutions, multiplicity
    ("1,2,3", "1,2", X),
    ("1,2", "1,2,3", X),
    ("1,2", "1,1,2", X),
    (r"\pm 2", "2", X),
    (r"1 \pm \sqrt{2}", r"1+\sqrt{2}", X),
    (r"1 \pm \sqrt{2}", r"-1 \pm \sqrt{2}", X),
    # hedged answers (a last-box-only checker would accept the last two)
    ("3", r"\boxed{3} or \boxed{5}", X),
    ("5", r"\boxed{3, 5}", X),
    ("5", r"First guess: $\boxed{4}$. Corrected: $\boxed{5}$.", X),
    # numbers inside formatting
    ("1000", "1,001", X),
    ("1500", r"1.5\times10^{4}", X),
    (r"5\text{ cm}", r"50\text{ mm}", X),
    ("42409", r"\$42,\!410", X),
    # letters and text
    ("(C)", "(D)", X),
    (r"\text{4:30 p.m.}", "4:30 a.m.", X),
    (r"\text{Monday}", r"\text{Tuesday}", X),
]

PHENOMENA: dict[str, list[tuple[str, str, str]]] = {
    "extraction": EXTRACTION,
    "hedging": HEDGING,
    "gold": GOLD,
    "fractions": FRACTIONS,
    "decimals": DECIMALS,
    "thousands": THOUSANDS,
    "scientific": SCIENTIFIC,
    "percent": PERCENT,
    "units": UNITS,
    "degrees": DEGREES,
    "equations": EQUATIONS,
    "radicals": RADICALS,
    "polynomials": POLYNOMIALS,
    "complex": COMPLEX,
    "tuples": TUPLES,
    "intervals": INTERVALS,
    "sets": SETS,
    "plus_minus": PLUS_MINUS,
    "matrices": MATRICES,
    "bases": BASES,
    "multiple_choice": MULTIPLE_CHOICE,
    "text": TEXT,
    "near_miss": NEAR_MISSES,
}

ALL_CASES = name_cases(PHENOMENA)

# Generous per-item limit: a slow CI machine must not turn a correct case into a timeout.
SETTINGS = MathSettings(timeout_s=10.0)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, MathVerdict]:
    return judge_cases(ALL_CASES, SETTINGS)


def test_table_sizes() -> None:
    # The acceptance floor: 300 cases, 60 near misses. Fails loudly if the table shrinks.
    assert len(ALL_CASES) >= 300, len(ALL_CASES)
    assert len(NEAR_MISSES) >= 60, len(NEAR_MISSES)
    for name, cases in PHENOMENA.items():
        assert len(cases) >= 8, f"phenomenon {name} has only {len(cases)} cases"


def test_table_well_formed() -> None:
    allowed = {C, X, N, G}
    for case_id, (gold, response, expected) in ALL_CASES.items():
        assert isinstance(gold, str) and isinstance(response, str), case_id
        assert expected in allowed, case_id
    assert all(expected == X for _, _, expected in NEAR_MISSES)
    # A duplicated pair would inflate the counts without testing anything new.
    assert not duplicated_pairs(ALL_CASES)


@pytest.mark.parametrize(
    ("gold", "response", "expected"),
    list(ALL_CASES.values()),
    ids=list(ALL_CASES),
)
def test_case(
    request: pytest.FixtureRequest,
    verdicts: dict[str, MathVerdict],
    gold: str,
    response: str,
    expected: str,
) -> None:
    case_id = request.node.callspec.id
    v = verdicts[case_id]
    assert isinstance(v, MathVerdict)
    assert v.status == MathStatus(expected), status_message(gold, response, expected, v)
    assert v.reward == {C: 1.0, G: None}.get(expected, 0.0)


def test_single_calls_agree_with_batch(verdicts: dict[str, MathVerdict]) -> None:
    # verify_math and verify_math_batch must be the same judge; sample a slice of every group.
    sample = [f"{name}-{i}" for name, cases in PHENOMENA.items() for i in range(0, len(cases), 7)]
    for case_id in sample:
        gold, response, _ = ALL_CASES[case_id]
        single = verify_math(response, gold, settings=SETTINGS)
        assert single.status == verdicts[case_id].status, (case_id, single, verdicts[case_id])
