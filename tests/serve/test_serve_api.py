"""`restem serve` over real HTTP: its own endpoints, bad input, the token, limits and metrics."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

from tests.serve.conftest import TOKEN, start_server

ADD = {"input_output": {"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}}
GOOD = "print(sum(map(int, input().split())))"


def test_verify_math_gives_verdicts_in_order(server):
    rows = [
        {"response": "so $\\boxed{\\frac{2}{4}}$", "gold": "\\frac12", "id": 1},
        {"response": "\\boxed{0.33}", "gold": "\\frac13"},  # near miss: too few digits
        {"response": "so the answer is \\boxed{3", "gold": "3"},  # cut off
        {"response": "\\boxed{3}", "gold": ""},  # unusable gold
        {"response": "\\boxed{7}", "gold": 7},  # numbers are accepted, as in the API
    ]
    with server.client() as client:
        r = client.post("/verify/math", json={"rows": rows})
    assert r.status_code == 200, r.text
    got = [v["status"] for v in r.json()["verdicts"]]
    assert got == ["correct", "incorrect", "no_answer", "invalid_gold", "correct"]
    assert all(v["reason"] for v in r.json()["verdicts"])


def test_verify_code_runs_in_the_sandbox(server):
    rows = [
        {"problem": ADD, "solution": GOOD},
        {"problem": ADD, "solution": "print(3)"},  # near miss: passes the first test only
        {"problem": ADD, "solution": "while True: pass"},
        {"problem": {"input_output": "not json"}, "solution": GOOD},
    ]
    with server.client() as client:
        r = client.post("/verify/code", json={"rows": rows, "all_tests": True})
    assert r.status_code == 200, r.text
    verdicts = r.json()["verdicts"]
    assert [v["status"] for v in verdicts] == [
        "passed",
        "wrong_answer",
        "timeout",
        "invalid_problem",
    ]
    assert verdicts[1]["pass_fraction"] == 0.5


# (path, raw body or JSON value, status, words the message must contain)
BAD_INPUT = [
    ("/verify/math", b'{"rows": [', 400, "malformed JSON"),
    ("/verify/math", b"\xff\xfe", 400, "UTF-8"),
    ("/verify/math", b"", 400, "empty body"),
    ("/verify/math", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("/verify/math", [], 422, "expected a JSON object"),
    ("/verify/math", {"rows": "x"}, 422, "'rows' must be a list"),
    ("/verify/math", {"rows": [], "extra": 1}, 400, "unknown field(s) 'extra'"),
    ("/verify/math", {"rows": [1]}, 422, "rows[0]: expected an object"),
    ("/verify/math", {"rows": [{"gold": "1"}]}, 400, "missing field 'response'"),
    ("/verify/math", {"rows": [{"response": ["a"], "gold": "1"}]}, 422, "must be a string"),
    ("/verify/math", {"rows": [{"response": "1", "gold": None}]}, 422, "'gold' must be a string"),
    ("/verify/code", {"rows": [{"problem": "/etc", "solution": "x"}]}, 422, "does not read paths"),
    ("/verify/code", {"rows": [{"problem": ADD}]}, 400, "missing field 'solution'"),
    ("/verify/code", {"rows": [], "compare": "loose"}, 422, "compare must be one of"),
    ("/verify/code", {"rows": [], "all_tests": "yes"}, 422, "all_tests must be true or false"),
    ("/get_reward", {"query": "a", "labels": []}, 422, "'query' must be a list"),
    ("/get_reward", {"query": ["a"], "prompts": [""], "labels": []}, 422, "differ in length"),
    ("/get_reward", {"query": ["a"], "labels": ["1"], "x": 1}, 400, "unknown field(s) 'x'"),
    ("/run_code", {"code": "print(1)", "language": "cpp"}, 400, "runs python only"),
    ("/run_code", {"code": 5, "language": "python"}, 400, "code must be a string"),
    ("/run_code", {"code": "", "language": "python", "run_timeout": "9"}, 400, "must be a number"),
    ("/run_code", {"code": "", "language": "python", "files": {"a": "eA=="}}, 400, "files"),
    ("/run_code", {"code": "", "language": "python", "bogus": 1}, 400, "unknown field(s)"),
    ("/nowhere", {}, 404, "no such endpoint"),
]


@pytest.mark.parametrize(("path", "body", "status", "words"), BAD_INPUT)
def test_bad_input_is_a_clear_4xx_and_the_server_keeps_serving(server, path, body, status, words):
    with server.client() as client:
        if isinstance(body, bytes):
            r = client.post(path, content=body, headers={"Content-Type": "application/json"})
        else:
            r = client.post(path, json=body)
        assert r.status_code == status, r.text
        message = r.json().get("error") or r.json().get("message")
        assert words in message, message
        ok = client.post("/verify/math", json={"rows": [{"response": "\\boxed{1}", "gold": "1"}]})
        assert ok.json()["verdicts"][0]["status"] == "correct"


def test_hostile_programs_get_verdicts_not_crashes(server):
    hostile = [
        "import os\nos.kill(os.getppid(), 9)",
        "import os\nwhile True: os.fork()",
        "x = 'a' * (1 << 34)",
        "import sys\nsys.stdout.write('x' * (1 << 26))",
        "import socket\nsocket.create_connection(('127.0.0.1', 1))",
    ]
    rows = [{"problem": ADD, "solution": program} for program in hostile]
    with server.client() as client:
        r = client.post("/verify/code", json={"rows": rows})
        assert r.status_code == 200, r.text
        assert all(v["status"] != "passed" for v in r.json()["verdicts"])
        assert client.get("/healthz").json()["status"] == "ok"


def test_oversize_body_and_batch_are_refused(server):
    with server.client() as client:
        big = {"rows": [{"response": "x" * 1024, "gold": "1"}] * 9000}  # > 8 MiB
        r = client.post("/verify/math", json=big)
        assert r.status_code == 413 and "limit" in r.json()["error"]
        many = {"rows": [{"response": "1", "gold": "1"}] * 1025}  # > 1024 rows
        r = client.post("/verify/math", json=many)
        assert r.status_code == 413 and "batch limit" in r.json()["error"]
        r = client.post("/verify/math", json={"rows": many["rows"][:1024]})
        assert r.status_code == 200 and len(r.json()["verdicts"]) == 1024


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token-0123456789", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
def test_token_is_required(server, header):
    headers = {"Authorization": header} if header else {}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        r = client.post("/verify/math", json={"rows": []})
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get("/metrics").status_code == 401
        assert client.get("/healthz").status_code == 200  # liveness needs no secret
    with server.client() as client:
        assert client.post("/verify/math", json={"rows": []}).status_code == 200


def test_token_from_the_command_line_and_non_loopback_refused():
    srv = start_server("--backend", "local", "--token", "from-the-command-line-123")
    try:
        with httpx.Client(base_url=srv.url) as client:
            body = {"rows": []}
            assert client.post("/verify/math", json=body).status_code == 401
            auth = {"Authorization": "Bearer from-the-command-line-123"}
            assert client.post("/verify/math", json=body, headers=auth).status_code == 200
    finally:
        assert srv.stop() == 0
    with pytest.raises(AssertionError, match=r"refusing to listen on 0\.0\.0\.0 without a token"):
        start_server("--backend", "local", "--host", "0.0.0.0")


def test_saturation_answers_503_at_once_and_recovers():
    srv = start_server("--backend", "local", "--workers", "1", "--max-in-flight", "1")
    try:
        slow = {"rows": [{"problem": ADD, "solution": "import time\ntime.sleep(2)"}]}
        result = {}

        def post_slow():
            with srv.client() as client:
                result["slow"] = client.post("/verify/code", json=slow)

        thread = threading.Thread(target=post_slow)
        thread.start()
        with srv.client() as client:
            for _ in range(200):  # until the slow request is in flight
                if client.get("/healthz").json()["in_flight"]:
                    break
                threading.Event().wait(0.02)
            busy = client.post("/verify/math", json={"rows": []})
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert "busy" in busy.json()["error"]
            thread.join(60)
            assert result["slow"].status_code == 200
            assert client.post("/verify/math", json={"rows": []}).status_code == 200
            assert "restem_rejected_total 1" in client.get("/metrics").text
    finally:
        assert srv.stop() == 0


def test_request_time_limit_answers_504():
    srv = start_server("--backend", "local", "--workers", "1", "--request-timeout", "1")
    try:
        slow = {"rows": [{"problem": ADD, "solution": "import time\ntime.sleep(3)"}]}
        with srv.client() as client:
            r = client.post("/verify/code", json=slow)
            assert r.status_code == 504 and "longer than 1 s" in r.json()["error"]
            ok = client.post("/verify/math", json={"rows": [{"response": "1", "gold": "1"}]})
            assert ok.status_code == 200
    finally:
        assert srv.stop() == 0


def test_metrics_count_requests_verdicts_and_latency(server):
    with server.client() as client:
        rows = [{"response": "\\boxed{2}", "gold": "2"}, {"response": "\\boxed{3}", "gold": "2"}]
        client.post("/verify/math", json={"rows": rows})
        text = client.get("/metrics").text
    assert 'restem_verdicts_total{kind="math",status="correct"}' in text
    assert 'restem_verdicts_total{kind="math",status="incorrect"}' in text
    assert 'restem_requests_total{path="/verify/math",code="200"}' in text
    assert 'restem_request_seconds_count{path="/verify/math"}' in text
    assert "# TYPE restem_request_seconds histogram" in text


def test_healthz_says_which_sandbox(server):
    with server.client() as client:
        body = client.get("/healthz").json()
    assert body == {"status": "ok", "executor": "local", "sandbox": "local", "in_flight": 0}
    assert json.dumps(body)  # plain JSON


def test_listening_socket_disables_nagle():
    """Accepted connections inherit TCP_NODELAY; without it every response waited ~40 ms for the
    client's delayed ACK (found by the serve benchmark)."""
    import socket

    from restem.serve.cli import _bind

    sock = _bind("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
