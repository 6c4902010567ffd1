"""`restem serve --executor ray`: the CLI's Ray executor behind the same endpoints."""

from __future__ import annotations

import pytest
from restem.benchmarks.serve_bench import ServerProcess, code_rows, math_rows

pytest.importorskip("ray", reason="the ray extra is not installed: pip install '.[ray]'")


@pytest.mark.slow
def test_serve_on_the_ray_executor_and_sigterm_leaves_nothing():
    import httpx

    server = ServerProcess(["--executor", "ray", "--backend", "local", "--workers", "1"]).start()
    try:
        with httpx.Client(base_url=server.url, headers=server.headers, timeout=120) as client:
            assert client.get("/healthz").json()["executor"] == "ray"
            rows = [*math_rows(6), {"response": "\\boxed{5}", "gold": "6"}]
            math = client.post("/verify/math", json={"rows": rows}).json()["verdicts"]
            assert [v["status"] for v in math] == ["correct"] * 6 + ["incorrect"]
            code = client.post("/verify/code", json={"rows": code_rows(4)}).json()["verdicts"]
            assert [v["status"] for v in code] == ["passed", "passed", "passed", "wrong_answer"]
            reward = client.post(
                "/get_reward", json={"query": ["Q \\boxed{2}"], "prompts": ["Q"], "labels": ["2"]}
            )
            assert reward.json()["rewards"] == [1.0]
        server.snapshot()  # Ray's processes (raylet, GCS, agents, the verifier actor) included
    finally:
        status = server.stop()
    # Ray's own SIGTERM handler (installed by ray.init) would abort: the server's must win.
    assert status == 0, "".join(server.stderr)[-3000:]
    assert server.pids and server.left_behind() == []
