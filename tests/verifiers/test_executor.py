"""Executors: the local pool and Ray give the same verdicts, in order, and Ray loses nothing when a
worker or a whole node dies mid-batch.

Everything here is real: a local Ray instance with the machine's 2 CPUs (module fixture), real
verifier actors with their own process pools and sandboxes, real SIGKILLs, and a second Ray node
(``ray.cluster_utils.Cluster`` starts a real raylet process) removed mid-batch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from restem.verifiers import CodeLimits, CodeVerdict, MathSettings, MathStatus
from restem.verifiers.executor import LocalExecutor, RayExecutor, make_executor

from tests.verifiers.math.test_table import ALL_CASES

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install -e '.[ray]'")

SETTINGS = MathSettings(timeout_s=10.0)  # generous: a busy CI machine must not flip a verdict
STALL = (r"\boxed{\sin(10^{999999})}", "0")  # sympy stalls on it: a hard-limit timeout
FAST_TIMEOUT = MathSettings(timeout_s=1.0)
# The local Ray instance has the machine's 2 CPUs; the module's executors share them, so each
# actor reserves a quarter (the work itself is bounded by the actors' own pools).
CPUS = 0.25
LIMITS = CodeLimits(test_s=1.0, total_s=10.0)  # the looping program costs 1 s, not 4


@pytest.fixture(scope="module")
def ray_executor(ray_instance):
    executor = RayExecutor(workers=2, cpus_per_worker=CPUS, math_chunk=16, code_chunk=2)
    assert len(executor.wait_ready(timeout=120)) == 2
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def table_pairs() -> list[tuple[str, str]]:
    # The acceptance table (~500 cases over every phenomenon), as (response, gold).
    return [(response, gold) for gold, response, _ in ALL_CASES.values()]


@pytest.fixture(scope="module")
def local_table_verdicts(table_pairs):
    with LocalExecutor(2) as executor:
        return list(executor.verify_math(table_pairs, settings=SETTINGS))


def code_key(verdict: CodeVerdict) -> tuple:
    """What a verdict says, without its timings."""
    return (
        verdict.status,
        verdict.total_tests,
        verdict.pass_fraction,
        tuple((t.index, t.status) for t in verdict.tests),
    )


# ---------------------------------------------------------------- programs

ECHO_SUM = {
    "input_output": {"inputs": ["1 2\n", "5 7\n", "-3 3\n"], "outputs": ["3\n", "12\n", "0\n"]}
}
CALL_MAX = {
    "input_output": {"fn_name": "biggest", "inputs": [[[1, 5, 2]], [[-1, -7]]], "outputs": [5, -1]}
}
SUM_PROGRAMS = {
    "passed": "a, b = map(int, input().split())\nprint(a + b)",
    "wrong_answer": "a, b = map(int, input().split())\nprint(a - b)",
    "runtime_error": "a, b = map(int, input().split())\nprint(a // 0)",
    "compile_error": "a, b = map(int input().split())\nprint(a + b",
    "timeout": "while True:\n    pass",
    "exits_early": "import sys\nsys.exit(0)",
}
BROKEN = {"input_output": "{not json"}  # an invalid problem
CALL_PROGRAMS = {
    "passed": "def biggest(xs):\n    return max(xs)",
    "wrong_answer": "def biggest(xs):\n    return min(xs)",
    "always_equal": (
        "class Yes:\n    def __eq__(self, other):\n        return True\n"
        "def biggest(xs):\n    return Yes()"
    ),
}


def code_items() -> list[tuple[dict, str]]:
    items = [(ECHO_SUM, program) for program in SUM_PROGRAMS.values()]
    items += [(CALL_MAX, program) for program in CALL_PROGRAMS.values()]
    items.append((BROKEN, "print(1)"))
    # A few dozen in all, in an order that mixes fast and slow ones.
    return [items[i % len(items)] for i in range(0, 3 * len(items))][::-1]


# ---------------------------------------------------------------- same verdicts


def test_math_verdicts_match_local(ray_executor, table_pairs, local_table_verdicts) -> None:
    verdicts = list(ray_executor.verify_math(table_pairs, settings=SETTINGS))
    assert len(verdicts) == len(table_pairs) >= 300
    mismatches = [
        (pair, local, remote)
        for pair, local, remote in zip(table_pairs, local_table_verdicts, verdicts)
        if local != remote
    ]
    assert not mismatches, mismatches[:5]
    # The table covers every status the verifier gives, so agreement is not only on "correct".
    assert {v.status for v in verdicts} >= {"correct", "incorrect", "no_answer", "invalid_gold"}


def test_math_timeouts_come_back_as_timeouts(ray_executor) -> None:
    pairs = [STALL, ("\\boxed{2}", "2"), STALL, ("\\boxed{3}", "2")]
    verdicts = list(ray_executor.verify_math(pairs, settings=FAST_TIMEOUT))
    assert [v.status for v in verdicts] == ["timeout", "correct", "timeout", "incorrect"]


def test_code_verdicts_match_local(ray_executor) -> None:
    items = code_items()
    with LocalExecutor(2) as local:
        expected = [code_key(v) for v in local.verify_code(items, backend="local", limits=LIMITS)]
    got = [code_key(v) for v in ray_executor.verify_code(items, backend="local", limits=LIMITS)]
    assert len(items) >= 30
    assert got == expected
    statuses = {key[0] for key in got}
    assert statuses >= {
        "passed",
        "wrong_answer",
        "runtime_error",
        "compile_error",
        "timeout",
        "invalid_problem",
    }


@pytest.mark.docker
def test_code_verdicts_match_local_under_docker(ray_executor) -> None:
    from restem.sandbox import docker_available

    if not docker_available():
        if os.environ.get("RESTEM_REQUIRE_DOCKER") == "1":
            pytest.fail("RESTEM_REQUIRE_DOCKER=1 but no Docker engine answers")
        pytest.skip("no Docker engine answers")
    # Each actor opens its own docker warm pool on its node.
    items = code_items()[:12]
    with LocalExecutor(2) as local:
        expected = [code_key(v) for v in local.verify_code(items, backend="docker", limits=LIMITS)]
    got = [code_key(v) for v in ray_executor.verify_code(items, backend="docker", limits=LIMITS)]
    assert got == expected


def test_verdicts_stream_in_order_before_the_batch_ends(ray_executor) -> None:
    # The first verdicts arrive while later chunks are still stalling in the workers.
    pairs = [(f"\\boxed{{{i}}}", str(i)) for i in range(16)] + [STALL] * 6
    start = time.monotonic()
    stream = ray_executor.verify_math(pairs, settings=FAST_TIMEOUT)
    first = next(stream)
    first_at = time.monotonic() - start
    rest = list(stream)
    total = time.monotonic() - start
    assert first.correct and len(rest) == len(pairs) - 1
    assert [v.status for v in rest[15:]] == ["timeout"] * 6
    assert first_at < total - 0.5, (first_at, total)


def test_callers_bugs_raise_here_not_remotely(ray_executor) -> None:
    with pytest.raises(TypeError, match="response must be str"):
        list(ray_executor.verify_math([(3, "3")]))
    with pytest.raises(TypeError, match="program must be str"):
        list(ray_executor.verify_code([(ECHO_SUM, None)]))


def test_empty_batches(ray_executor) -> None:
    assert list(ray_executor.verify_math([])) == []
    assert list(ray_executor.verify_code([])) == []


def test_bad_executor_settings_are_clear() -> None:
    with pytest.raises(ValueError, match="executor must be one of local, ray"):
        make_executor("dask")
    with pytest.raises(ValueError, match="workers must be at least 1"):
        LocalExecutor(0)
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        RayExecutor(workers=1, max_attempts=0)


# ---------------------------------------------------------------- workers and nodes lost


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _first_worker(executor, workers: int) -> int:
    """The pid of the first of the executor's ``workers`` actors, once all are ready."""
    ready = executor.wait_ready(timeout=120)
    assert len(ready) == workers, ready
    return ready[0]["pid"]


def _verify_killing(executor, victim: int, delay: float, batch) -> list:
    """The batch's verdicts while ``victim`` is SIGKILLed ``delay`` seconds in."""
    killer = threading.Timer(delay, os.kill, (victim, signal.SIGKILL))
    killer.start()
    got = list(executor.verify_math(batch, settings=FAST_TIMEOUT))
    killer.join()
    return got


def _stalling_batch(pairs: list[tuple[str, str]], every: int) -> list[tuple[str, str]]:
    """``pairs`` with a 1-second stall every ``every`` items, so each chunk is still being worked
    on when the kill comes."""
    batch = []
    for i, pair in enumerate(pairs):
        if i % every == 0:
            batch.append(STALL)
        batch.append(pair)
    return batch


@pytest.mark.slow
def test_killed_worker_loses_no_sample(ray_instance, table_pairs) -> None:
    batch = _stalling_batch(table_pairs[:160], every=16)
    with LocalExecutor(2) as local:
        expected = list(local.verify_math(batch, settings=FAST_TIMEOUT))
    executor = RayExecutor(workers=2, cpus_per_worker=CPUS, math_chunk=8)
    try:
        victim = _first_worker(executor, workers=2)
        # Warm the victim's pool so it has a worker child to leave behind (or not).
        list(executor.verify_math([(r"\boxed{x^2}", "x*x")] * 4))
        orphans = _children(victim)
        got = _verify_killing(executor, victim, 1.5, batch)
    finally:
        executor.close()
    assert not _alive(victim)
    assert len(got) == len(batch)  # each verdict once, none lost
    assert got == expected
    assert executor.stats.lost_workers >= 1
    assert executor.stats.retried_chunks >= 1
    assert executor.stats.failed_chunks == 0
    # The dead actor's pool workers do not outlive it.
    deadline = time.monotonic() + 15
    while any(_alive(p) for p in orphans) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in orphans if _alive(p)]


def test_chunk_lost_too_often_becomes_error_verdicts(ray_instance) -> None:
    # One attempt allowed: the chunk whose worker is killed comes back as `error` verdicts that
    # say why, and the rest of the batch is judged normally.
    batch = _stalling_batch([(f"\\boxed{{{i}}}", str(i)) for i in range(40)], every=4)
    executor = RayExecutor(workers=1, cpus_per_worker=CPUS, math_chunk=10, max_attempts=1)
    try:
        victim = _first_worker(executor, workers=1)
        got = _verify_killing(executor, victim, 1.0, batch)
    finally:
        executor.close()
    assert len(got) == len(batch)
    errors = [v for v in got if v.status is MathStatus.ERROR]
    assert errors and all("verifier worker lost 1 times" in v.reason for v in errors)
    assert executor.stats.failed_chunks >= 1
    judged = [v for v in got if v.status is not MathStatus.ERROR]
    assert judged and all(v.status in ("correct", "timeout") for v in judged)


NODE_LOSS = r"""
import json, sys, threading
import ray
from ray.cluster_utils import Cluster
from restem.verifiers import MathSettings
from restem.verifiers.executor import LocalExecutor, RayExecutor

pairs = [tuple(p) for p in json.loads(sys.stdin.read())]
settings = MathSettings(timeout_s=1.0)
with LocalExecutor(2) as local:
    expected = list(local.verify_math(pairs, settings=settings))
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
second = cluster.add_node(num_cpus=1)
try:
    executor = RayExecutor(cluster.address, workers=2, math_chunk=8)
    nodes = {w["node"] for w in executor.wait_ready(timeout=120)}
    threading.Timer(1.5, cluster.remove_node, (second,), {"allow_graceful": False}).start()
    got = list(executor.verify_math(pairs, settings=settings))
    print("RESULT " + json.dumps({
        "nodes": len(nodes),
        "same": got == expected,
        "count": len(got),
        "lost_workers": executor.stats.lost_workers,
        "retried_chunks": executor.stats.retried_chunks,
        "failed_chunks": executor.stats.failed_chunks,
    }))
    executor.close()
finally:
    ray.shutdown()
    cluster.shutdown()
"""


@pytest.mark.slow
def test_lost_node_loses_no_sample(table_pairs) -> None:
    # A separate process: a driver joins one cluster per process, and this one has two real
    # raylets (two nodes) of which one is removed mid-batch.
    batch = _stalling_batch(table_pairs[:96], every=16)
    result = subprocess.run(
        [sys.executable, "-c", NODE_LOSS],
        input=json.dumps(batch),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # Ray forwards its processes' logs to stdout too: the report is the marked line.
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout[-3000:]
    report = json.loads(lines[0].removeprefix("RESULT "))
    assert report["nodes"] == 2  # SPREAD put one actor on each node
    assert report["count"] == len(batch)
    assert report["same"], report
    assert report["lost_workers"] >= 1 and report["retried_chunks"] >= 1, report
    assert report["failed_chunks"] == 0, report


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:9", "cannot connect to Ray at 127.0.0.1:9: Connection refused"),
        ("ray://127.0.0.1:9", "cannot connect to Ray at ray://127.0.0.1:9: Connection refused"),
        ("headnode", "Ray address must be auto, host:port or ray://host:port"),
    ],
)
def test_unreachable_cluster_is_a_clear_error_at_once(address, message) -> None:
    # In a fresh process (this one may already be connected); ray.init alone would retry for
    # minutes.
    code = (
        "from verifiers.executor import RayExecutor, ExecutorError\n"
        f"try:\n    RayExecutor({address!r}, workers=1)\n"
        "except ExecutorError as exc:\n    print('ExecutorError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert f"ExecutorError: {message}" in result.stdout, result.stdout + result.stderr[-2000:]


def test_missing_ray_is_a_clear_error() -> None:
    code = (
        "import sys; sys.modules['ray'] = None\n"
        "from verifiers.executor import make_executor, ExecutorError\n"
        "try:\n    make_executor('ray')\n"
        "except ExecutorError as exc:\n    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert "pip install 'restem[ray]'" in result.stdout, result.stderr


# ---------------------------------------------------------------- the command line


def _restem(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "restem.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
def test_cli_ray_executor_writes_the_same_rows_as_local(tmp_path) -> None:
    # Each command starts (and stops) a Ray instance of its own, as a user's would.
    math_in = tmp_path / "math.jsonl"
    rows = [{"id": i, "response": r, "gold": g} for i, (r, g) in enumerate(list(_table())[:120])]
    math_in.write_text("".join(json.dumps(row) + "\n" for row in rows))
    code_in = tmp_path / "code.jsonl"
    code_in.write_text(
        "".join(
            json.dumps({"problem": p, "solution": s}) + "\n"
            for p, s in code_items()
            if p is not BROKEN  # the CLI reports it as a bad line: tested in its own module
        )
    )
    for kind, source, extra in (
        ("math", math_in, []),
        ("code", code_in, ["--backend", "local", "--timeout", "1"]),
    ):
        outputs = {}
        for executor in ("local", "ray"):
            out = tmp_path / f"{kind}-{executor}.jsonl"
            result = _restem(
                "verify", kind, "--input", str(source), "--output", str(out), "--quiet",
                "--executor", executor, "--workers", "2", *extra,
            )  # fmt: skip
            assert result.returncode == 0, result.stderr[-3000:]
            outputs[executor] = [json.loads(line) for line in out.read_text().splitlines()]
        local, remote = outputs["local"], outputs["ray"]
        assert len(local) == len(remote) == len(source.read_text().splitlines())
        if kind == "code":
            assert {row["status"] for row in local} >= {"passed", "wrong_answer", "timeout"}
            for row in local + remote:  # timings (and a timeout's CPU/load figures) vary
                for test in row["tests"]:
                    test.pop("wall_s")
                    if test["status"] == "timeout":
                        test.pop("reason")
                        row.pop("reason", None)
        else:
            assert {row["status"] for row in local} >= {"correct", "incorrect", "no_answer"}
        assert local == remote


def _table():
    return ((response, gold) for gold, response, _ in ALL_CASES.values())
