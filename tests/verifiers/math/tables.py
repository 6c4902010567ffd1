"""The machinery the table-driven math tests share: phenomena -> named cases -> verdicts."""

from __future__ import annotations

from restem.verifiers import MathSettings, MathVerdict, verify_math_batch

Case = tuple[str, str, str]  # (gold, response, expected status)


def name_cases(phenomena: dict[str, list[Case]]) -> dict[str, Case]:
    """Each case named by its phenomenon and position ("relations-3"), for test ids."""
    return {
        f"{name}-{i}": case for name, cases in phenomena.items() for i, case in enumerate(cases)
    }


def judge_cases(cases: dict[str, Case], settings: MathSettings) -> dict[str, MathVerdict]:
    """Every case through one `verify_math_batch` call (2 workers), verdicts by case name."""
    ids = list(cases)
    pairs = [(cases[k][1], cases[k][0]) for k in ids]  # (response, gold)
    results = verify_math_batch(pairs, workers=2, settings=settings)
    assert len(results) == len(pairs)
    return dict(zip(ids, results, strict=True))


def duplicated_pairs(cases: dict[str, Case]) -> set[tuple[str, str]]:
    """(gold, response) pairs listed twice: they would inflate the counts, testing nothing new."""
    pairs = [(gold, response) for gold, response, _ in cases.values()]
    return {p for p in pairs if pairs.count(p) > 1}


def status_message(gold: str, response: str, expected: str, verdict: MathVerdict) -> str:
    """What a failing case prints: the pair, the expected and actual status, and why."""
    return (
        f"\n  gold:      {gold!r}\n  response:  {response!r}\n  expected:  {expected}"
        f"\n  got:       {verdict.status.value}\n  extracted: {verdict.extracted!r}"
        f"\n  reason:    {verdict.reason!r}"
    )
