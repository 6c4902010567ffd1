"""Hard limits and concurrency: timeouts kill workers, callers may be threads, asyncio tasks or
worker processes, and a worker killed mid-batch costs exactly one verdict."""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
from restem.verifiers import (
    MathSettings,
    MathStatus,
    iter_verify_math,
    verify_math,
    verify_math_batch,
)
from restem.verifiers.pool import HardLimitPool

# Needs ~1M digits of working precision to reduce the argument: sympy grinds for many seconds.
STALLS_SYMPY = r"\sin(10^{999999})"

# A mix of in-process (exact) and worker (sympy) decisions, correct and incorrect.
MIXED = [
    (r"\boxed{\frac{1}{2}}", "0.5", MathStatus.CORRECT),
    (r"\boxed{2\sqrt{2}}", r"\sqrt{8}", MathStatus.CORRECT),
    (r"\boxed{(x+1)^2}", "x^2+2x+1", MathStatus.CORRECT),
    (r"\boxed{3.14}", r"\pi", MathStatus.INCORRECT),
    (r"\boxed{3.14159}", r"\pi", MathStatus.CORRECT),
    (r"\boxed{\frac{\sqrt{2}}{2}}", r"\frac{1}{\sqrt{2}}", MathStatus.CORRECT),
    (r"\boxed{x^2-1}", "(x-1)(x+1)", MathStatus.CORRECT),
    (r"\boxed{x^2+1}", "(x-1)(x+1)", MathStatus.INCORRECT),
    ("9999", "10000", MathStatus.INCORRECT),
    (r"\boxed{1 \pm \sqrt{3}}", r"1+\sqrt3, 1-\sqrt3", MathStatus.CORRECT),
    (r"\boxed{5", "5", MathStatus.NO_ANSWER),
    ("7", r"\frac{1}{", MathStatus.INVALID_GOLD),
]


def _expected():
    return [status for _, _, status in MIXED]


def test_mixed_cases_serial_baseline():
    assert [verify_math(r, g).status for r, g, _ in MIXED] == _expected()


class TestTimeout:
    def test_stalled_sympy_becomes_a_timeout_verdict_within_the_limit(self):
        settings = MathSettings(timeout_s=1.0)
        start = time.monotonic()
        verdict = verify_math(STALLS_SYMPY, "0", settings=settings)
        elapsed = time.monotonic() - start
        assert verdict.status is MathStatus.TIMEOUT, verdict
        assert verdict.reward == 0.0
        assert elapsed < 1.0 + 2.0, elapsed
        # The killed worker was replaced: the next symbolic verdict is right.
        assert verify_math(r"2\sqrt{2}", r"\sqrt{8}", settings=settings).correct

    def test_timeout_in_a_batch_costs_one_item_and_keeps_order(self):
        pairs = [(r, g) for r, g, _ in MIXED]
        pairs.insert(3, (STALLS_SYMPY, "0"))
        verdicts = verify_math_batch(pairs, workers=2, settings=MathSettings(timeout_s=1.0))
        statuses = [v.status for v in verdicts]
        assert statuses.pop(3) is MathStatus.TIMEOUT
        assert statuses == _expected()


class TestCallers:
    def test_eight_threads_agree_with_serial_calls(self):
        work = [(r, g) for r, g, _ in MIXED] * 8
        serial = [verify_math(r, g) for r, g in work]
        results: dict[int, object] = {}
        errors: list[BaseException] = []

        def run(offset: int) -> None:
            try:
                for i in range(offset, len(work), 8):
                    results[i] = verify_math(*work[i])
            except BaseException as exc:  # surfaced below; a thread must not die silently
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors
        assert [results[i] for i in range(len(work))] == serial

    def test_asyncio_tasks(self):
        async def main():
            return await asyncio.gather(
                *(asyncio.to_thread(verify_math, r, g) for r, g, _ in MIXED)
            )

        verdicts = asyncio.run(main())
        assert [v.status for v in verdicts] == _expected()

    @pytest.mark.timeout(120)
    def test_inside_multiprocessing_pool_workers(self):
        # multiprocessing.Pool workers are daemonic, which normally forbids child processes.
        with multiprocessing.get_context("fork").Pool(2) as pool:
            statuses = pool.starmap(_status_of, [(r, g) for r, g, _ in MIXED])
        assert statuses == [s.value for s in _expected()]

    @pytest.mark.timeout(120)
    @pytest.mark.parametrize("start_method", ["fork", "spawn"])
    def test_inside_process_pool_executor_workers(self, start_method):
        # Also proves the worker can exit: its exit path joins child processes, ours included.
        ctx = multiprocessing.get_context(start_method)
        with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as ex:
            statuses = list(ex.map(_status_of, *zip(*[(r, g) for r, g, _ in MIXED])))
        assert statuses == [s.value for s in _expected()]


def _status_of(response: str, gold: str) -> str:
    return verify_math(response, gold, settings=MathSettings(timeout_s=5.0)).status.value


class TestWorkerDeath:
    def test_a_worker_killed_mid_batch_costs_that_item_only(self):
        pairs = [(r, g) for r, g, _ in MIXED]
        slow_index = 4
        pairs.insert(slow_index, (STALLS_SYMPY, "0"))
        settings = MathSettings(timeout_s=60.0)  # the kill, not the limit, must end it
        verdicts = []
        with HardLimitPool(1) as pool:
            consumer = threading.Thread(
                target=lambda: verdicts.extend(
                    iter_verify_math(pairs, settings=settings, pool=pool)
                )
            )
            consumer.start()
            deadline = time.monotonic() + 20
            while len(verdicts) < slow_index and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)  # the slow item is now the one running in the only worker
            victims = pool.worker_pids()
            assert victims
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            consumer.join(timeout=60)
            assert not consumer.is_alive()
        statuses = [v.status for v in verdicts]
        assert statuses.pop(slow_index) in (MathStatus.ERROR, MathStatus.TIMEOUT)
        assert "died" in verdicts[slow_index].reason
        assert statuses == _expected()

    def test_a_stalled_worker_does_not_outlive_its_killed_parent(self):
        # The parent enforces the time limit; once it is gone (SIGKILL, a Ray actor killed), a
        # worker stuck in sympy must exit by itself rather than spin on for minutes.
        import subprocess
        import sys

        script = (
            "import sys, time\n"
            "from verifiers.pool import HardLimitPool\n"
            "from verifiers.math.judge import judge_symbolic\n"
            "from verifiers import MathSettings\n"
            "pool = HardLimitPool(1)\n"
            f"pool.submit(judge_symbolic, {STALLS_SYMPY!r}, '0', MathSettings(timeout_s=300.0),"
            " timeout=300.0)\n"
            "time.sleep(1.0)\n"
            "print(pool.worker_pids()[0], flush=True)\n"
            "time.sleep(300)\n"
        )
        parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
        try:
            worker = int(parent.stdout.readline())
            assert _alive(worker)
        finally:
            parent.kill()
            parent.wait()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(worker), "the orphaned worker is still running"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class TestContract:
    @pytest.mark.parametrize("bad", [None, b"1", ["1"], True])
    def test_non_text_arguments_are_caller_bugs(self, bad):
        with pytest.raises(TypeError):
            verify_math(bad, "1")
        with pytest.raises(TypeError):
            verify_math("1", bad)

    def test_numbers_are_accepted_as_text(self):
        assert verify_math("\\boxed{42}", 42).correct
        assert verify_math(0.5, "1/2").correct

    @pytest.mark.parametrize(
        "kwargs",
        [{"timeout_s": 0}, {"timeout_s": -1}, {"min_sig_digits": 0}, {"start_method": "thread"}],
    )
    def test_settings_are_validated(self, kwargs):
        with pytest.raises(ValueError):
            MathSettings(**kwargs)

    def test_reward_is_none_only_for_invalid_gold(self):
        assert verify_math("1", "").reward is None
        assert verify_math("1", "1").reward == 1.0
        assert verify_math("", "1").reward == 0.0

    def test_no_signal_alarm_anywhere_in_the_verifiers(self):
        root = Path(__file__).resolve().parents[2] / "verifiers"
        calls = re.compile(r"\b(?:signal\.)?(?:alarm|setitimer)\s*\(")
        offenders = [p for p in root.rglob("*.py") if calls.search(p.read_text())]
        assert offenders == []

    def test_import_verifiers_does_not_import_sympy_or_heavy_packages(self):
        import subprocess
        import sys

        code = (
            "import sys, restem.verifiers as verifiers; "
            "print(sorted(m for m in ('sympy','torch','docker','transformers') if m in sys.modules))"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == "[]"

    def test_fast_path_answers_need_no_worker_process(self):
        import subprocess
        import sys

        code = (
            "import sys, restem.verifiers as verifiers;"
            "v = verifiers.verify_math('\\\\boxed{\\\\frac{2}{4}}', '0.5');"
            "print(v.status, 'sympy' in sys.modules)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.split() == ["correct", "False"]
