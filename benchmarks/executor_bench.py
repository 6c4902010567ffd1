"""`restem bench executor`: what going distributed costs, the Ray executor next to the local one.

The same batches go through `restem.verifiers.executor`, side by side in one run:

- ``local-1``, ``local-2``: ``LocalExecutor(workers=N)`` (math: exact arithmetic in the caller's
  process, sympy in N pool processes; code: a sandbox pool of N);
- ``ray-1``, ``ray-2``: ``RayExecutor(workers=N, pool_workers=1)``, N verifier actors, each with
  its own 1-process pool and 1-slot sandbox, on a Ray instance this benchmark starts on this
  machine (``--ray-address`` to use a running cluster instead).

Workloads: ``math``, the labeled answers of ``$RESTEM_DATA_DIR/math/labeled_outputs_800.jsonl``
cycled to ``--math-pairs``; ``humaneval``, the first ``--humaneval`` HumanEval canonical
solutions against their ``check``; ``trivial``, ``--trivial`` one-test stdio programs (one in
four wrong), the sandbox's fixed cost alone. Code runs in the ``--backend`` sandbox (local).

Reported per contender and workload: items/s, the ratio to the local executor with the same
number of workers, the time to the first verdict, agreement with the labels (math) or the
expected outcome (code), and mismatches: verdicts (status, and the extracted answer or each
test's status) that differ from the first contender's (must be 0). Ray's start-up (``ray.init``,
then the actors ready) is reported apart from the throughput; every contender makes one untimed
warm-up call first.

    restem bench executor [--math-pairs 8000] [--humaneval 64] [--trivial 200] [--workers 1,2]

Writes benchmarks/results/executor.json and a PNG next to it, prints markdown tables on stdout,
progress on stderr.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restem.benchmarks import report as shared
from restem.benchmarks.report import (
    RESULTS_DIR,
    DataError,
    data_file,
    int_list,
    machine_info,
    markdown_table,
    progress,
    rate,
    ratio,
    version_of,
)

__all__ = [
    "EXECUTORS",
    "Workload",
    "add_arguments",
    "load_workloads",
    "main",
    "render_markdown",
    "run_bench",
]

TAG = "bench executor"
DEFAULT_OUTPUT = RESULTS_DIR / "executor.json"
DEFAULT_MATH = "math/labeled_outputs_800.jsonl"
EXECUTORS = ("local", "ray")
WORKLOADS = ("math", "humaneval", "trivial")
_WARM_SYMBOLIC = (r"\boxed{\sqrt{8}}", r"2\sqrt{2}")  # decided by sympy, in a pool process
_WARM_EXACT = (r"\boxed{1}", "1")


@dataclass(frozen=True)
class Workload:
    """One batch every contender verifies: ``items`` are (response, gold) pairs (math) or
    (problem, program) pairs (code); ``expected`` is each item's label, None where unknown."""

    name: str
    kind: str  # math | code
    unit: str  # what an item is, for the tables: pairs | programs
    items: list
    expected: list[bool | None]
    source: str


# --- workloads --------------------------------------------------------------------------------


def _math_workload(path: Path, pairs: int) -> Workload:
    from restem.benchmarks.math_bench import load_rows

    rows = load_rows(path)
    chosen = list(itertools.islice(itertools.cycle(rows), pairs))
    return Workload(
        "math",
        "math",
        "pairs",
        [(r.response, r.gold) for r in chosen],
        [r.label for r in chosen],
        f"{path.name} ({len(rows)} rows) cycled to {pairs:,} pairs",
    )


def _humaneval_workload(code_dir: Path, limit: int) -> Workload:
    from restem.benchmarks.code_bench import load_workloads as load_code

    cases = load_code(code_dir, ["humaneval"], limit)
    return Workload(
        "humaneval",
        "code",
        "programs",
        [(c.problem, c.solution) for c in cases],
        [True] * len(cases),  # the canonical solutions
        f"the first {len(cases)} HumanEval canonical solutions",
    )


def _trivial_items(count: int) -> tuple[list, list[bool]]:
    """``count`` one-test stdio problems; every fourth program prints a wrong sum."""
    from restem.benchmarks.sandbox_bench import PROGRAM
    from restem.verifiers.code.problems import Mode, Problem, TestCase

    items, expected = [], []
    for i in range(count):
        problem = Problem(Mode.STDIO, (TestCase(f"{i} {i}\n", f"{2 * i}\n"),), id=f"sum/{i}")
        right = i % 4 != 3
        items.append((problem, PROGRAM if right else "print(-1)\n"))
        expected.append(right)
    return items, expected


def _trivial_workload(count: int) -> Workload:
    items, expected = _trivial_items(count)
    return Workload(
        "trivial",
        "code",
        "programs",
        items,
        expected,
        f"{count} one-test stdio programs (sum two numbers; one in four wrong)",
    )


def load_workloads(args: argparse.Namespace) -> list[Workload]:
    workloads = []
    if args.math_pairs:
        workloads.append(_math_workload(data_file(args.data, DEFAULT_MATH), args.math_pairs))
    if args.humaneval:
        code_dir = data_file(args.data_dir, "code", "--data-dir")
        workloads.append(_humaneval_workload(code_dir, args.humaneval))
    if args.trivial:
        workloads.append(_trivial_workload(args.trivial))
    if not workloads:
        raise DataError("nothing to run: --math-pairs, --humaneval and --trivial are all 0")
    return workloads


# --- running ----------------------------------------------------------------------------------


def _key(verdict: Any) -> tuple:
    """What must be equal across executors: the status and the extracted answer (math) or each
    test's status (code); reasons and timings may differ."""
    tests = getattr(verdict, "tests", None)
    if tests is not None:
        return (verdict.status.value, tuple(t.status.value for t in tests))
    return (verdict.status.value, verdict.extracted)


def _verify(executor: Any, workload: Workload, backend: str) -> Iterator[Any]:
    if workload.kind == "math":
        return executor.verify_math(workload.items)
    return executor.verify_code(workload.items, backend=backend)


def _warm_up(executor: Any, workers: int, workloads: Sequence[Workload], args) -> None:
    """Untimed first use of every actor or pool (two chunks each): imports, the symbolic pools
    and the sandboxes started. Its items are not the benchmark's: no data lands in a cache."""
    if any(w.kind == "math" for w in workloads):
        # Each chunk starts with a pair that needs sympy (it starts the executor's pool).
        chunk = [_WARM_SYMBOLIC] + [_WARM_EXACT] * (args.math_chunk - 1)
        list(executor.verify_math(chunk * (2 * workers)))
    if any(w.kind == "code" for w in workloads):
        items, _ = _trivial_items(2 * args.code_chunk * workers)
        list(executor.verify_code(items, backend=args.backend))


def _clear_math_caches() -> None:
    # The caller's parsed-answer caches (the local executor judges there); a Ray contender's
    # actors are new processes, so both start each run equally cold.
    from restem.benchmarks.math_bench import _restem_clear

    _restem_clear()


def _timed(executor: Any, workload: Workload, backend: str) -> dict[str, Any]:
    if workload.kind == "math":
        _clear_math_caches()
    start = time.perf_counter()
    first = None
    verdicts = []
    for verdict in _verify(executor, workload, backend):
        if first is None:
            first = time.perf_counter() - start
        verdicts.append(verdict)
    seconds = time.perf_counter() - start
    labeled = [(v, e) for v, e in zip(verdicts, workload.expected, strict=True) if e is not None]
    return {
        "items": len(verdicts),
        "seconds": round(seconds, 4),
        "items_per_s": rate(len(verdicts), seconds),
        "first_verdict_ms": None if first is None else round(first * 1e3, 2),
        "correct": sum(v.correct for v in verdicts),
        "labeled": len(labeled),
        "agree": sum(v.correct == e for v, e in labeled),
        "keys": [_key(v) for v in verdicts],
    }


class _Ray:
    """The Ray instance the Ray contenders share: joined once, timed, shut down at the end if
    this benchmark started it."""

    def __init__(self, address: str | None):
        self.address = address
        self.init_s: float | None = None
        self.started_here = False
        self.error: str | None = None

    def connect(self) -> bool:
        if self.init_s is not None or self.error:
            return self.error is None
        from restem.verifiers.executor import ExecutorError, connect_ray

        try:
            import ray

            already = ray.is_initialized()
        except ImportError:
            already = False
        start = time.perf_counter()
        try:
            connect_ray(self.address)
        except ExecutorError as exc:
            self.error = str(exc)
            return False
        self.init_s = round(time.perf_counter() - start, 3)
        self.started_here = not already
        progress(TAG, f"Ray {'started' if self.started_here else 'joined'} in {self.init_s:.2f} s")
        return True

    def info(self) -> dict[str, Any]:
        if self.init_s is None:
            return {"address": self.address, "error": self.error}
        import ray

        return {
            "address": self.address or "a local instance started by the benchmark",
            "init_s": self.init_s,
            "already_connected": not self.started_here,
            "cluster_cpus": ray.cluster_resources().get("CPU"),
            "nodes": len([n for n in ray.nodes() if n.get("Alive")]),
        }

    def close(self) -> None:
        if self.started_here:
            import ray

            ray.shutdown()


def _start(executor: str, workers: int, ray: _Ray, args: argparse.Namespace) -> tuple[Any, dict]:
    """The executor, and how long it took to be ready (Ray: its actors started)."""
    from restem.verifiers.executor import LocalExecutor, RayExecutor

    start = time.perf_counter()
    if executor == "local":
        return LocalExecutor(workers), {"start_s": round(time.perf_counter() - start, 3)}
    remote = RayExecutor(
        ray.address,
        workers=workers,
        pool_workers=1,
        math_chunk=args.math_chunk,
        code_chunk=args.code_chunk,
    )
    where = remote.wait_ready(timeout=120)
    info = {"start_s": round(time.perf_counter() - start, 3), "actors": where}
    if len(where) < workers:
        remote.close()
        raise RuntimeError(f"only {len(where)} of {workers} Ray actors started within 120 s")
    return remote, info


def run_bench(
    workloads: Sequence[Workload], args: argparse.Namespace
) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, Any]]:
    """Every contender (executor x workers) over every workload: the rows, the contenders that
    could not run (and why), and the Ray instance."""
    ray = _Ray(args.ray_address)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    try:
        for executor in args.executors:
            for workers in args.workers:
                name = f"{executor}-{workers}"
                if executor == "ray" and not ray.connect():
                    skipped[name] = ray.error or "Ray unavailable"
                    progress(TAG, f"skipping {name}: {skipped[name]}")
                    continue
                try:
                    contender, info = _start(executor, workers, ray, args)
                except Exception as exc:  # reported; the other contenders still run
                    skipped[name] = f"could not start: {type(exc).__name__}: {exc}"
                    progress(TAG, f"skipping {name}: {skipped[name]}")
                    continue
                try:
                    start = time.perf_counter()
                    _warm_up(contender, workers, workloads, args)
                    info["warm_up_s"] = round(time.perf_counter() - start, 3)
                    progress(
                        TAG,
                        f"{name}: ready in {info['start_s']:.2f} s, "
                        f"warmed up in {info['warm_up_s']:.2f} s",
                    )
                    results = {}
                    for workload in workloads:
                        results[workload.name] = _timed(contender, workload, args.backend)
                        r = results[workload.name]
                        progress(
                            TAG,
                            f"{name}: {workload.name}, {r['items']} {workload.unit} in "
                            f"{r['seconds']:.2f} s ({r['items_per_s']} /s), first verdict "
                            f"after {r['first_verdict_ms']} ms",
                        )
                    stats = getattr(contender, "stats", None)
                    if stats is not None:
                        info["ray_stats"] = dict(vars(stats))
                finally:
                    contender.close()
                rows.append(
                    {"contender": name, "executor": executor, "workers": workers, **info}
                    | {"workloads": results}
                )
        ray_info = ray.info() if "ray" in args.executors else {}
    finally:
        ray.close()
    _compare(rows)
    return rows, skipped, ray_info


def _compare(rows: list[dict[str, Any]]) -> None:
    """Mismatches against the first contender's verdicts, and throughput against the local
    executor with the same number of workers; the verdict keys are dropped afterwards."""
    if not rows:
        return
    reference = rows[0]
    local = {r["workers"]: r for r in rows if r["executor"] == "local"}
    for row in rows:
        for name, result in row["workloads"].items():
            ref = reference["workloads"][name]["keys"]
            result["mismatches"] = sum(a != b for a, b in zip(result["keys"], ref, strict=True))
            base = local.get(row["workers"])
            result["vs_local_same_workers"] = (
                ratio(result["items_per_s"], base["workloads"][name]["items_per_s"])
                if base
                else None
            )
    for row in rows:
        for result in row["workloads"].values():
            del result["keys"]


# --- output -----------------------------------------------------------------------------------


def _label(row: dict[str, Any]) -> str:
    w = row["workers"]
    if row["executor"] == "ray":
        return f"ray, {w} actor{'s' if w > 1 else ''}"
    return f"local, {w} worker{'s' if w > 1 else ''}"


def render_markdown(report: dict[str, Any]) -> str:
    m, rows = report["machine"], report["rows"]
    out = [
        f"Machine: {m['cpu']}, {m['cpus_usable']} usable CPUs, {m['memory_gib']} GiB, Python "
        f"{m['python']}, load average {m['load_average_1_5_15']} at the start; {m['when']}. "
        f"Backend: {report['backend']}.",
    ]
    units = {w["name"]: w["unit"] for w in report["workloads"]}
    out += [
        "",
        markdown_table(
            [
                "workload",
                "contender",
                "items",
                "items/s",
                "÷ local, same workers",
                "first verdict ms",
                "right vs labels",
                "mismatches",
            ],
            [
                [
                    f"{name} ({units[name]})",
                    _label(row),
                    r["items"],
                    r["items_per_s"],
                    shared.times(r["vs_local_same_workers"]),
                    r["first_verdict_ms"],
                    f"{r['agree']}/{r['labeled']}" if r["labeled"] else None,
                    r["mismatches"],
                ]
                for name in units
                for row in rows
                if name in row["workloads"]
                for r in [row["workloads"][name]]
            ],
        ),
        "",
        "Start-up (not in the throughput): "
        + _startup_line(report.get("ray") or {}, rows)
        + ". Mismatches: verdicts unlike the first contender's.",
    ]
    for name, why in report.get("skipped", {}).items():
        out.append(f"\nSkipped {name}: {why}")
    return "\n".join(out)


def _startup_line(ray: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    parts = []
    if ray.get("init_s") is not None:
        parts.append(f"ray.init {ray['init_s']:.2f} s")
    parts += [
        f"{_label(r)} ready {r['start_s']:.2f} s (+ {r['warm_up_s']:.2f} s warm-up)" for r in rows
    ]
    return "; ".join(parts)


def plot(report: dict[str, Any], path: Path) -> Path:
    plt = shared.pyplot()
    rows, workloads = report["rows"], report["workloads"]
    fig, axes = plt.subplots(1, len(workloads), figsize=(4.6 * len(workloads), 4.6), squeeze=False)
    colours = {"local": "C0", "ray": "C1"}
    for ax, workload in zip(axes[0], workloads, strict=True):
        name = workload["name"]
        shown = [r for r in rows if name in r["workloads"]]
        values = [r["workloads"][name]["items_per_s"] for r in shown]
        bars = ax.bar(
            range(len(shown)), values, color=[colours.get(r["executor"], "C2") for r in shown]
        )
        for bar, r in zip(bars, shown, strict=True):
            x = r["workloads"][name]["vs_local_same_workers"]
            ax.annotate(
                "" if x is None or r["executor"] == "local" else f"{x:.2f}x",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        ax.set_xticks(range(len(shown)), [r["contender"] for r in shown])
        ax.set(
            ylabel=f"{workload['unit']} / s",
            title=f"{name}: {workload['items']:,} {workload['unit']}",
        )
        ax.grid(True, axis="y", alpha=0.3)
    m, ray = report["machine"], report.get("ray") or {}
    init = f"; ray.init {ray['init_s']:.1f} s" if ray.get("init_s") is not None else ""
    fig.suptitle(
        f"restem bench executor — {m['cpu']}, {m['cpus_usable']} CPUs (shared; load "
        f"{m['load_average_1_5_15'][0] if m['load_average_1_5_15'] else '?'}){init}; "
        "labels: throughput ÷ local with the same workers",
        fontsize=9,
    )
    return shared.save_figure(fig, path)


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", help=f"labeled math JSONL (default: $RESTEM_DATA_DIR/{DEFAULT_MATH})"
    )
    parser.add_argument(
        "--data-dir", help="the folder holding humaneval.jsonl.gz (default: $RESTEM_DATA_DIR/code)"
    )
    shared.add_counts(
        parser,
        ("--math-pairs", 8000, "math pairs, the data cycled; 0 to skip (default 8000)"),
        ("--humaneval", 64, "HumanEval canonical solutions; 0 to skip (default 64)"),
        ("--trivial", 200, "one-test trivial programs; 0 to skip (default 200)"),
    )
    parser.add_argument(
        "--executors",
        type=shared.name_list,
        default=list(EXECUTORS),
        help=f"comma-separated (default: {','.join(EXECUTORS)})",
    )
    parser.add_argument(
        "--workers",
        type=int_list,
        default=[1, 2],
        help="local pool workers / Ray actors, comma-separated (default 1,2)",
    )
    parser.add_argument(
        "--backend",
        choices=("local", "docker"),
        default="local",
        help="the sandbox the code runs in (default local)",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        help="a running Ray cluster ('auto', host:port, ray://host:10001); default: start a "
        "local instance",
    )
    parser.add_argument(
        "--math-chunk", type=int, default=64, help="Ray: pairs per remote call (default 64)"
    )
    parser.add_argument(
        "--code-chunk", type=int, default=2, help="Ray: programs per remote call (default 2)"
    )
    shared.add_output_arguments(parser, DEFAULT_OUTPUT)


def _check_args(args: argparse.Namespace) -> None:
    for name in args.executors:
        if name not in EXECUTORS:
            raise DataError(f"unknown executor {name!r}; choose from {', '.join(EXECUTORS)}")
    if not args.executors:
        raise DataError("no executor chosen")
    for option in ("math_chunk", "code_chunk"):
        if getattr(args, option) < 1:
            raise DataError(f"--{option.replace('_', '-')} must be at least 1")
    if args.backend == "docker" and (args.humaneval or args.trivial):
        from restem.benchmarks.code_bench import _why_not

        why = _why_not("docker-pool")
        if why:
            raise DataError(f"--backend docker: {why}")


def main(args: argparse.Namespace) -> int:
    try:
        _check_args(args)
        workloads = load_workloads(args)
    except DataError as exc:
        print(f"restem {TAG}: {exc}", file=sys.stderr)
        return 2
    machine = machine_info()
    progress(
        TAG,
        f"{', '.join(f'{w.name} {len(w.items):,}' for w in workloads)}; executors "
        f"{','.join(args.executors)} x workers {','.join(map(str, args.workers))}; "
        f"{machine['cpus_usable']} CPUs, load {machine['load_average_1_5_15']}",
    )
    rows, skipped, ray_info = run_bench(workloads, args)
    report = {
        "benchmark": "executor",
        "machine": machine,
        "versions": {"restem": version_of("restem"), "ray": version_of("ray")},
        "backend": args.backend,
        "chunks": {"math": args.math_chunk, "code": args.code_chunk},
        "workloads": [
            {"name": w.name, "unit": w.unit, "items": len(w.items), "source": w.source}
            for w in workloads
        ],
        "ray": ray_info,
        "notes": (
            "Contenders ran one after another in one process on a shared machine; compare them "
            "by the ratios of one run. Start-up (ray.init; executor construction until every "
            "actor answers) and one untimed warm-up call per contender are not in the "
            "throughput. The math data is cycled: each executor's parsed-answer caches start "
            "empty (the caller's are cleared before each local run; Ray actors are new "
            "processes) and are warm after the first pass, for every contender alike. "
            "Mismatches count verdicts (status; extracted answer or each test's status) that "
            "differ from the first contender's."
        ),
        "rows": rows,
        "skipped": skipped,
    }
    shared.finish(
        TAG, report, args.output, None if args.no_plot or not rows else plot, render_markdown
    )
    mismatched = sum(r["mismatches"] for row in rows for r in row["workloads"].values())
    if mismatched:
        progress(TAG, f"{mismatched} verdicts differ between executors")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(
        shared.standalone(
            "executor_bench",
            __doc__,
            add_arguments,
            main,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )
