"""The hostile half of `restem bench math`: a seeded stream of random and hostile (response, gold)
pairs, and a run of restem's public batch API over them.

Nine kinds of string, drawn with equal weight (``KINDS``): random text, LaTeX-fragment soup, power
towers (``2^20^87^84``, ``2^{2^{2^2}}``), factorial chains, huge literals, deep nesting, boxes
(many, nested, unclosed), unicode (numerals, symbols, lone surrogates) and symbolic traps
(huge powers of polynomials, functions of towers). A pair is a hostile response against an
ordinary gold, an ordinary response against a hostile gold, or two hostile strings, with equal
weight. The same seed gives the same pairs, on any machine.

What a run reports (:func:`run_fuzz`): exceptions raised (must be 0), verdicts that came later
than the time limit plus an allowance for process overhead (must be 0), time-outs, the count of
each status, and the per-pair latency (p50, p99, max). Each pair goes alone through
``verify_math_batch([pair], workers=streams)`` with the default settings (3 s limit), from
``streams`` threads sharing one pool of ``streams`` worker processes, so a pair never waits
behind another and its latency is its own.
"""

from __future__ import annotations

import bisect
import math
import random
import string
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["FRAGMENTS", "KINDS", "LATE_ALLOWANCE_S", "fuzz_pairs", "latency_histogram", "run_fuzz"]

# Killing a stuck worker, reaping it and handing back the verdict: a moment past the limit is
# process overhead, not a late verdict. The same slack as the verifier's property tests
# (tests/verifiers/math/test_properties.py); the maximum latency is reported as measured.
LATE_ALLOWANCE_S = 1.5

# Pieces of hostile LaTeX-ish text; the verifier's property tests draw from them too.
FRAGMENTS = (
    *"0123456789",
    *"{}^_()[],.-+*/=<>!$ &|'",
    "\n",
    "x",
    "y",
    "n",
    "i",
    "e",
    r"\frac{",
    r"\dfrac",
    r"\frac",
    r"\boxed{",
    r"\fbox{",
    r"\sqrt",
    r"\sqrt[",
    r"\infty",
    r"\pm",
    r"\cup",
    r"\cap",
    r"\setminus",
    r"\le",
    r"\geq",
    r"\neq",
    r"\circ",
    r"\pi",
    r"\%",
    r"\$",
    r"\!",
    r"\,",
    r"\;",
    r"\cdot",
    r"\times",
    r"\div",
    r"\\",
    r"\left(",
    r"\right)",
    r"\left[",
    r"\right]",
    r"\{",
    r"\}",
    r"\text{",
    r"\mathrm{",
    r"\operatorname{",
    r"\begin{pmatrix}",
    r"\end{pmatrix}",
    r"\begin{cases}",
    r"\end{cases}",
    r"\sin",
    r"\log",
    r"\ln",
    r"\tan^{-1}",
    r"\binom{",
    r"\sum_{k=1}^{",
    r"\int_0^",
    r"\overline{",
    r"\approx",
    r"\mid",
    r"\mathbb{R}",
    "10^{",
    "!",
    "^{-1}",
    "f(x)=",
    "x=",
    ":",
    "The final answer is ",
    "the answer is ",
    "Final Answer: ",
    "or ",
)

# Ordinary answers: the other side of a pair whose hostile string is the response (or the gold).
_ORDINARY = (
    "0",
    "2",
    "-7",
    "42",
    "1000",
    r"\frac{1}{2}",
    r"\frac{3}{4}",
    "0.5",
    r"\sqrt{2}",
    r"2\sqrt{3}",
    r"\pi",
    "(1,2)",
    r"[3,\infty)",
    r"x^2+1",
    r"\text{(C)}",
    "1, 2, 3",
    r"\{1, 2\}",
    "x > 5",
    "11:21",
    r"\text{yes}",
)

_UNICODE_POOL = (
    "²³¹⁰₂①⑳½¾Ⅻ٣३𝟘〇፲０１２９√π∞≤≥≠±×÷∪∩∈ℝ∑∫→⇒°′″€£¥"
    "αβγδθλμσφωΩ\u200b\u200d\u202e\u0301\u0308\ufeff\x00\x07\x1b"
    "😀🧮中文العربيةไทยहिन्दी한국어"
)


def _digits(rng: random.Random, low: int, high: int) -> str:
    n = rng.randint(low, high)
    # A random 64-digit block repeated: long literals cost the verifier, not the generator.
    block = str(rng.randint(1, 9)) + "".join(rng.choices(string.digits, k=63))
    return (block * (n // 64 + 1))[:n]


def _random_text(rng: random.Random) -> str:
    alphabet = string.printable if rng.random() < 0.7 else string.printable + _UNICODE_POOL
    return "".join(rng.choices(alphabet, k=rng.randint(0, 300)))


def _soup(rng: random.Random) -> str:
    parts = []
    for _ in range(rng.randint(1, 60)):
        if rng.random() < 0.15:
            parts.append(str(rng.randint(-(10**12), 10**12)))
        else:
            parts.append(rng.choice(FRAGMENTS))
    return "".join(parts)


def _tower(rng: random.Random) -> str:
    height = rng.randint(2, 7)
    bases = [
        str(rng.randint(2, 99)) if rng.random() < 0.8 else rng.choice("xn9") for _ in "_" * height
    ]
    style = rng.randrange(4)
    if style == 0:  # 2^20^87^84: unbraced, as models write it
        tower = "^".join(bases)
    elif style == 1:  # 2^{20^{87^{84}}}
        tower = "^{".join(bases) + "}" * (height - 1)
    elif style == 2:  # a tower with a factorial, a fraction or a root in it
        tower = (
            "^".join(bases[:-1]) + "^{" + rng.choice(["100!", r"\frac{9}{2}", r"\sqrt{99}"]) + "}"
        )
    else:  # arithmetic around towers: the difference of two is small or huge
        other = "^".join(str(rng.randint(2, 99)) for _ in "_" * height)
        tower = "^".join(bases) + rng.choice(["-", "+", "/", r"\cdot "]) + other
    wrap = rng.randrange(3)
    if wrap == 0:
        return tower
    if wrap == 1:
        return rf"So the answer is $\boxed{{{tower}}}$."
    return f"{tower} {rng.choice(['=', '>', '<'])} {rng.choice(['1', tower, '10^{100}'])}"


def _factorials(rng: random.Random) -> str:
    base = rng.choice([str(rng.randint(2, 10**6)), "(10^9)", "(2^{64})", r"(100!)", "n", "x"])
    chain = base + "!" * rng.randint(1, 5)
    for _ in range(rng.randint(0, 3)):
        chain = f"({chain})" + "!" * rng.randint(1, 3)
    return rng.choice(
        [
            chain,
            rf"\boxed{{{chain}}}",
            rf"\frac{{{chain}}}{{{base}!}}",
            rf"\binom{{{chain}}}{{{rng.randint(2, 10**6)}}}",
            f"{chain} - {chain}",
        ]
    )


def _huge(rng: random.Random) -> str:
    digits = _digits(rng, 100, 10_000)
    forms: list[Callable[[], str]] = [
        lambda: digits,
        lambda: f"{digits}.{_digits(rng, 1, 5000)}",
        lambda: rf"\frac{{{digits}}}{{{_digits(rng, 100, 5000)}}}",
        lambda: f"1e{_digits(rng, 3, 9)}",
        lambda: rf"1.5\times10^{{{_digits(rng, 3, 12)}}}",
        lambda: f"10^{{10^{{{rng.randint(2, 100)}}}}}",
        lambda: f"0.{'0' * rng.randint(100, 5000)}1",
        lambda: rf"0.\overline{{{_digits(rng, 50, 2000)}}}",
        lambda: ",".join([digits[:3]] * rng.randint(100, 2000)),
        lambda: rf"\boxed{{{digits}}}",
    ]
    return rng.choice(forms)()


def _nested(rng: random.Random) -> str:
    depth = rng.randint(10, 3000)
    open_, leaf, close = rng.choice(
        [
            (r"\frac{1}{", "2", "}"),
            ("2^{", "2", "}"),
            (r"\sqrt{", "2", "}"),
            ("(", "1", ")"),
            ("[", "1", "]"),
            (r"\left(", "x", r"\right)"),
            (r"\boxed{", "7", "}"),
            ("{", "x", "}"),
            (r"\sin(", "x", ")"),
            (r"\{", "1", r"\}"),
            ("1+(", "1", ")"),
        ]
    )
    closed = rng.random() < 0.8
    return open_ * depth + leaf + (close * depth if closed else close * rng.randint(0, depth))


def _boxes(rng: random.Random) -> str:
    inner = rng.choice((*_ORDINARY, _soup(rng), _tower(rng), ""))
    choice = rng.randrange(5)
    if choice == 0:  # many boxes, maybe disagreeing
        return " and ".join(
            rf"\boxed{{{rng.choice(_ORDINARY)}}}" for _ in "_" * rng.randint(2, 2000)
        )
    if choice == 1:  # nested boxes
        depth = rng.randint(2, 500)
        return r"\boxed{" * depth + inner + "}" * depth
    if choice == 2:  # unclosed, or closed too often
        return rf"The answer is \boxed{{{inner}" + "}" * rng.choice([0, 0, 2, 50])
    if choice == 3:  # boxes of odd spellings
        return "".join(
            rng.choice([r"\boxed", r"\fbox", r"\boxed ", r"\boxed{}", r"\boxed{\phantom{2}}"])
            + "{"
            + inner
            + "}"
            for _ in "_" * rng.randint(1, 5)
        )
    return rf"$\boxed{{{inner}}}$ " * rng.randint(1, 3) + rng.choice(
        ["", "or maybe ", r"\boxed{", "Final Answer: 5"]
    )


def _unicode(rng: random.Random) -> str:
    chars = rng.choices(_UNICODE_POOL + string.digits + "{}^\\", k=rng.randint(1, 200))
    if rng.random() < 0.2:  # lone surrogates: valid str, invalid UTF-8
        chars.insert(rng.randrange(len(chars) + 1), chr(rng.randint(0xD800, 0xDFFF)))
    text = "".join(chars)
    return rng.choice([text, rf"\boxed{{{text}}}", f"The answer is {text}."])


def _symbolic(rng: random.Random) -> str:
    n = rng.choice([rng.randint(50, 5000), 10 ** rng.randint(3, 9)])
    return rng.choice(
        [
            f"(x+1)^{{{n}}}",
            f"(x+y+1)^{{{n}}} - (y+x+1)^{{{n}}}",
            rf"\sin^{{{n}}}(x) + \cos^{{{n}}}(x)",
            rf"\sin({_digits(rng, 20, 400)})",
            rf"\sum_{{k=1}}^{{{n}}} k^{{{rng.randint(2, 50)}}}",
            rf"\int_0^{{{n}}} x^{{{n}}} dx",
            rf"e^{{e^{{e^{{{rng.randint(2, 99)}}}}}}}",
            rf"\log_{{2}}(2^{{{n}}})",
            rf"\sqrt[{n}]{{{_digits(rng, 10, 300)}}}",
            rf"x^{{{n}}} = 1",
            rf"\begin{{pmatrix}} x^{{{n}}} & 1 \\ 1 & x \end{{pmatrix}}",
        ]
    )


KINDS: dict[str, Callable[[random.Random], str]] = {
    "random_text": _random_text,
    "latex_soup": _soup,
    "tower": _tower,
    "factorial": _factorials,
    "huge_literal": _huge,
    "deep_nesting": _nested,
    "boxes": _boxes,
    "unicode": _unicode,
    "symbolic": _symbolic,
}


# Upper edges of the latency histogram, in seconds: where the time limit sits is what matters.
_BUCKETS = (0.001, 0.01, 0.1, 1.0, 2.0, 3.0, 4.0, 5.0, math.inf)


def latency_histogram(latencies: list[float]) -> list[dict[str, Any]]:
    """Pairs per latency bucket (``"<= 10 ms"``, ..., ``"> 5 s"``)."""
    counts = [0] * len(_BUCKETS)
    for seconds in latencies:
        counts[bisect.bisect_left(_BUCKETS, seconds)] += 1
    labels = [f"<= {b * 1e3:g} ms" if b < 1 else f"<= {b:g} s" for b in _BUCKETS[:-1]]
    labels.append(f"> {_BUCKETS[-2]:g} s")
    return [{"bucket": label, "pairs": n} for label, n in zip(labels, counts, strict=True)]


def fuzz_pairs(count: int, seed: int = 0) -> Iterator[tuple[str, str, str]]:
    """``count`` seeded (kind, response, gold) triples."""
    rng = random.Random(seed)
    names = list(KINDS)
    for _ in range(count):
        kind = rng.choice(names)
        hostile = KINDS[kind](rng)
        side = rng.randrange(3)
        if side == 0:
            yield kind, hostile, rng.choice(_ORDINARY)
        elif side == 1:
            yield kind, rng.choice(_ORDINARY), hostile
        else:
            yield kind, hostile, KINDS[rng.choice(names)](rng)


def _judge_one(pair: tuple[str, str, str], workers: int) -> tuple[str, float, str | None]:
    """One pair alone through the batch API: its status, its seconds, the exception if any."""
    from restem.verifiers import verify_math_batch

    _, response, gold = pair
    t = time.perf_counter()
    try:
        (verdict,) = verify_math_batch([(response, gold)], workers=workers)
    except Exception as exc:  # counted and reported: the bench's target is zero
        return "exception", time.perf_counter() - t, f"{type(exc).__name__}: {exc}"[:300]
    return verdict.status.value, time.perf_counter() - t, None


def run_fuzz(
    count: int = 10_000,
    seed: int = 0,
    *,
    streams: int = 1,
    on_progress: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Judge ``count`` fuzz pairs with restem's batch API (default settings), one pair per call,
    in ``streams`` threads over a pool of ``streams`` workers (no pair waits behind another);
    the JSON-able figures."""
    from restem.benchmarks.report import percentile
    from restem.verifiers import MathSettings, MathStatus, verify_math_batch

    limit = MathSettings().timeout_s
    # Start the worker pool: not a pair's time.
    verify_math_batch([("1", "1"), ("x+1", "1+x")], workers=streams)
    pairs = list(fuzz_pairs(count, seed))
    statuses: Counter[str] = Counter()
    by_kind: dict[str, Counter[str]] = {}
    latencies: list[float] = []
    exceptions: list[dict[str, str]] = []
    late: list[dict[str, Any]] = []
    timed_out: list[dict[str, Any]] = []
    slowest: tuple[float, str, str, str] = (0.0, "", "", "")
    clock = time.perf_counter
    start = clock()
    with ThreadPoolExecutor(max_workers=streams) as pool:
        for i, ((kind, response, gold), (status, seconds, error)) in enumerate(
            zip(pairs, pool.map(_judge_one, pairs, [streams] * len(pairs)), strict=True)
        ):
            latencies.append(seconds)
            statuses[status] += 1
            by_kind.setdefault(kind, Counter())[status] += 1
            example = {"kind": kind, "response": response[:200], "gold": gold[:200]}
            if error is not None and len(exceptions) < 20:
                exceptions.append({"error": error, **example})
            if status == MathStatus.TIMEOUT.value and len(timed_out) < 30:
                timed_out.append({"seconds": round(seconds, 3), **example})
            if seconds > limit + LATE_ALLOWANCE_S and len(late) < 20:
                late.append({"seconds": round(seconds, 3), "status": status, **example})
            if seconds > slowest[0]:
                slowest = (seconds, kind, response[:200], gold[:200])
            if on_progress is not None and (i + 1) % 1000 == 0:
                on_progress(i + 1, clock() - start)
    total = clock() - start
    timeouts = statuses.get(MathStatus.TIMEOUT.value, 0)
    return {
        "pairs": count,
        "seed": seed,
        "time_limit_s": limit,
        "late_allowance_s": LATE_ALLOWANCE_S,
        "how": "each pair alone through verify_math_batch([pair]) with default MathSettings, "
        f"in {streams} thread(s)",
        "streams": streams,
        "seconds": round(total, 3),
        "pairs_per_s": round(count / total, 1) if total > 0 else None,
        "exceptions": statuses.get("exception", 0),
        "late_verdicts": sum(s > limit + LATE_ALLOWANCE_S for s in latencies),
        "timeouts": timeouts,
        "timeout_rate": round(timeouts / count, 5) if count else None,
        "statuses": dict(statuses.most_common()),
        "statuses_by_kind": {k: dict(v.most_common()) for k, v in sorted(by_kind.items())},
        "latency_ms": {
            "p50": round(percentile(latencies, 50) * 1e3, 3) if latencies else None,
            "p99": round(percentile(latencies, 99) * 1e3, 3) if latencies else None,
            "max": round(max(latencies) * 1e3, 3) if latencies else None,
        },
        "latency_histogram": latency_histogram(latencies),
        "slowest": {
            "seconds": round(slowest[0], 3),
            "kind": slowest[1],
            "response": slowest[2],
            "gold": slowest[3],
        },
        "exception_examples": exceptions,
        "late_examples": late,
        "timeout_examples": timed_out,
    }
