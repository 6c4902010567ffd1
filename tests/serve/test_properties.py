"""Properties: untrusted input never makes a reward raise, nor the server answer 5xx."""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from restem.rewards import MathReward, judge_many  # noqa: E402

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
COMPLETION = st.text(max_size=200) | st.lists(
    st.fixed_dictionaries({"role": st.sampled_from(["assistant", "user"]), "content": JSON}),
    max_size=3,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(COMPLETION, JSON), min_size=1, max_size=6))
def test_trl_math_reward_never_raises_on_untrusted_rows(rows):
    completions = [c for c, _ in rows]
    golds = [g for _, g in rows]
    rewards = MathReward()(prompts=["p"] * len(rows), completions=completions, answer=golds)
    assert len(rewards) == len(rows)
    assert all(r in (0.0, 1.0, None) for r in rewards)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.text(max_size=80), st.text(max_size=20), JSON), max_size=5))
def test_openrlhf_judge_never_raises_on_math_labels(rows):
    # Labels that parse as code problems would run programs; keep this to the math path.
    rows = [
        r
        for r in rows
        if not (
            isinstance(r[2], dict) and {"input_output", "test", "test_list", "inputs"} & set(r[2])
        )
    ]
    out = judge_many([q for q, _, _ in rows], [p for _, p, _ in rows], [lab for _, _, lab in rows])
    assert len(out["rewards"]) == len(rows) == len(out["statuses"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    path=st.sampled_from(["/verify/math", "/verify/code", "/get_reward", "/run_code"]),
    body=JSON,
)
def test_server_never_answers_5xx_to_any_json(server, path, body):
    with server.client() as client:
        if path == "/verify/code" and isinstance(body, dict) and body.get("rows"):
            body = {"rows": "x"}  # programs would run; their handling is tested elsewhere
        r = client.post(path, json=body)
        assert r.status_code < 500, (r.status_code, r.text)
        if r.status_code >= 400:
            assert r.json().get("error")
