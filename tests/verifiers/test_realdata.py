"""The verifier on real data (RESTEM_DATA_DIR): labeled model outputs and the MATH answer key."""

from __future__ import annotations

import collections
import json

import pytest
from restem.verifiers import MathSettings, MathStatus, verify_math_batch

pytestmark = pytest.mark.realdata


def _rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def test_agrees_with_all_800_adjudicated_labels(data_dir):
    rows = _rows(data_dir / "math" / "labeled_outputs_800.jsonl")
    assert len(rows) == 800
    verdicts = verify_math_batch([(r["response"], r["gold"]) for r in rows], workers=2)
    disagreements = [
        (r["id"], r["gold"], v.extracted, v.status.value, v.reason)
        for r, v in zip(rows, verdicts)
        if v.correct != r["correct"]
    ]
    assert disagreements == []
    # No false positive and no verifier failure either (the agreement above implies the first).
    assert not [v for v in verdicts if v.status in (MathStatus.ERROR, MathStatus.TIMEOUT)]


@pytest.mark.slow
def test_every_math_solution_matches_its_own_answer(data_dir):
    """12,496 human solutions against their last boxed answer: all correct, except solutions that
    box several different results. Those are hedges by our rule: most are multi-answer problems
    whose answer field kept only the last box ("$\\boxed{-2}$ and $\\boxed{1}$" -> "1")."""
    rows = [
        r
        for name in ("math_train.jsonl", "math_test.jsonl")
        for r in _rows(data_dir / "math" / name)
        if r.get("answer_last_boxed")
    ]
    verdicts = verify_math_batch(
        [(r["solution"], r["answer_last_boxed"]) for r in rows],
        workers=2,
        settings=MathSettings(timeout_s=10),
    )
    statuses = collections.Counter(v.status for v in verdicts)
    not_correct = [v for v in verdicts if not v.correct]
    assert all(v.reason.startswith("hedged") for v in not_correct), [
        v for v in not_correct if not v.reason.startswith("hedged")
    ][:5]
    assert len(not_correct) <= 40, statuses


def test_math500_answers_match_their_solutions(data_dir):
    rows = _rows(data_dir / "math" / "math500.jsonl")
    verdicts = verify_math_batch([(r["solution"], r["answer"]) for r in rows], workers=2)
    wrong = [
        (r["unique_id"], r["answer"], v.reason) for r, v in zip(rows, verdicts) if not v.correct
    ]
    assert len(wrong) <= 3, wrong  # at most a few solutions that box intermediate results
    assert all("hedged" in reason for _, _, reason in wrong), wrong
