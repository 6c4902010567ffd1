"""`restem bench code`: running programs against tests, restem's sandboxes next to the alternatives.

Workloads (from ``$RESTEM_DATA_DIR/code``): the HumanEval canonical solutions against their
``check``; the APPS problems of ``apps_original_layout`` with all their reference solutions; the
APPS reference solutions of ``apps_reference_solutions.jsonl`` against the tests of
``apps_mapcoder150.jsonl``. One sandbox run per test.

Contenders, each at 1, 2 and 4 workers:

- ``docker-pool``: restem's warm pool of hardened containers (`restem.sandbox.DockerSandbox`) running
  restem's test harness (`restem.verifiers.code.execute`), judged on the host;
- ``local``: the same harness in restem's local backend (`restem.sandbox.LocalSandbox`);
- ``docker-run``: the same harness programs, one ``docker run`` each (on an evenly spread subset
  of the programs: a container start costs ~0.5 s);
- ``unsandboxed``: APPS ``testing_util``-style, ``exec`` in worker processes with
  ``signal.alarm`` (`restem.benchmarks.peers.apps_unsandboxed`): the unsafe speed limit.

Also, through `restem.benchmarks.sandbox_bench`, the raw sandboxes on N trivial programs (bare
subprocess, local, docker pool, docker run). Reported: programs/s and tests/s, and the ratios.

    restem bench code [--data-dir DIR] [--workers 1,2,4] [--synthetic 1000] ...
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from restem.benchmarks.report import (
    RESULTS_DIR,
    DataError,
    data_file,
    int_list,
    machine_info,
    markdown_table,
    plot_available,
    progress,
    rate,
    ratio,
    version_of,
    write_json,
)

__all__ = [
    "CONTENDERS",
    "WORKLOADS",
    "Case",
    "add_arguments",
    "load_workloads",
    "main",
    "render_markdown",
    "run_bench",
]

TAG = "bench code"
DEFAULT_OUTPUT = RESULTS_DIR / "code.json"
CONTENDERS = ("docker-pool", "local", "docker-run", "unsandboxed")
WORKLOADS = ("humaneval", "apps-folders", "apps-reference")


@dataclass(frozen=True)
class Case:
    """One program to judge: a solution for a `restem.verifiers.code.problems.Problem`."""

    workload: str
    id: str
    problem: Any  # verifiers.code.problems.Problem
    solution: str


# --- workloads --------------------------------------------------------------------------------


def _humaneval(code_dir: Path) -> list[Case]:
    from restem.verifiers.code.problems import humaneval_problem

    with gzip.open(code_dir / "humaneval.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [
        Case("humaneval", r["task_id"], humaneval_problem(r), r["prompt"] + r["canonical_solution"])
        for r in rows
    ]


def _apps_folders(code_dir: Path) -> list[Case]:
    from restem.verifiers.code.problems import load_apps_folder, load_apps_solutions

    cases = []
    for folder in sorted(p for p in (code_dir / "apps_original_layout").iterdir() if p.is_dir()):
        problem = load_apps_folder(folder)
        for n, solution in enumerate(load_apps_solutions(folder)):
            cases.append(Case("apps-folders", f"{folder.name}/{n}", problem, solution))
    return cases


def _apps_reference(code_dir: Path) -> list[Case]:
    from restem.verifiers.code.problems import load_apps_mapcoder

    problems = {p.id: p for p in load_apps_mapcoder(code_dir / "apps_mapcoder150.jsonl")}
    cases = []
    with open(code_dir / "apps_reference_solutions.jsonl", encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                problem = problems.get(str(row["id"]))
                if problem is not None:
                    cases.append(Case("apps-reference", row["path"], problem, row["text"]))
    return cases


_LOADERS: dict[str, Callable[[Path], list[Case]]] = {
    "humaneval": _humaneval,
    "apps-folders": _apps_folders,
    "apps-reference": _apps_reference,
}


def load_workloads(code_dir: Path, names: Sequence[str], limit: int | None = None) -> list[Case]:
    """The cases of the named workloads (the first ``limit`` of each)."""
    cases = []
    for name in names:
        if name not in _LOADERS:
            raise DataError(f"unknown workload {name!r}; choose from {', '.join(WORKLOADS)}")
        try:
            loaded = _LOADERS[name](code_dir)
        except FileNotFoundError as exc:
            raise DataError(
                f"workload {name}: {exc.filename} not found (RESTEM_DATA_DIR or --data-dir "
                "must name the shared data folder)"
            ) from None
        cases += loaded[:limit] if limit else loaded
    return cases


def _runs(cases: Sequence[Case]) -> list[tuple[Case, int]]:
    return [(c, i) for c in cases for i in range(len(c.problem.tests))]


def _spread(cases: Sequence[Case], count: int) -> list[Case]:
    """About ``count`` cases spread evenly over every workload."""
    by_workload: dict[str, list[Case]] = {}
    for c in cases:
        by_workload.setdefault(c.workload, []).append(c)
    share = max(1, count // max(1, len(by_workload)))
    chosen = []
    for group in by_workload.values():
        step = max(1, len(group) // share)
        chosen += group[::step][:share]
    return chosen


# --- contenders -------------------------------------------------------------------------------


def _code_limits():
    from restem.verifiers.code import CodeLimits

    return CodeLimits()  # restem's defaults: 4 CPU s per test, 3 x 4 + 1 s wall, 1 GiB


def _limits_report() -> dict[str, Any]:
    try:
        from dataclasses import asdict

        return asdict(_code_limits())
    except ImportError:
        return {}


def _prepare(runs: Sequence[tuple[Case, int]]) -> list[Any]:
    from restem.verifiers.code.execute import prepare_test

    return [prepare_test(c.problem, c.solution, i) for c, i in runs]


def _judge(prepared: Sequence[Any], results: Sequence[Any]) -> list[bool]:
    from restem.verifiers.code.execute import judge_run
    from restem.verifiers.verdict import CodeStatus

    return [judge_run(p, r)[0] is CodeStatus.PASSED for p, r in zip(prepared, results, strict=True)]


# Every contender maps cases to (tests run, tests passed, tests re-run after a timeout) per case.
Outcome = tuple[int, int, int]


def _per_case(cases: Sequence[Case], passed: Sequence[bool]) -> list[Outcome]:
    out, i = [], 0
    for c in cases:
        n = len(c.problem.tests)
        out.append((n, sum(passed[i : i + n]), 0))
        i += n
    return out


class _RestemContender:
    """`restem.verifiers.code.verify_code_batch` on an open restem sandbox (started before the clock
    runs), every test of every program run (``all_tests=True``), restem's default limits."""

    def __init__(self, name: str, workers: int):
        from restem.verifiers.code import open_sandbox

        self.workers = workers
        self.box = open_sandbox("docker" if name == "docker-pool" else "local", workers)
        self.box.run("pass", b"", _code_limits().run_limits())  # first contact, untimed

    def __call__(self, cases: Sequence[Case]) -> list[Outcome]:
        from restem.verifiers.code import verify_code_batch

        verdicts = verify_code_batch(
            [(c.problem, c.solution) for c in cases],
            backend=self.box,
            workers=self.workers,
            limits=_code_limits(),
            all_tests=True,
        )
        return [
            (len(v.tests), sum(t.passed for t in v.tests), sum(t.retried for t in v.tests))
            for v in verdicts
        ]

    def close(self) -> None:
        self.box.close()


class _DockerRunContender:
    """restem's harness programs, each test in a fresh ``docker run`` container."""

    def __init__(self, workers: int):
        self.workers = workers

    def __call__(self, cases: Sequence[Case]) -> list[Outcome]:
        from restem.benchmarks.peers import docker_run

        limits = _code_limits().run_limits()
        prepared = _prepare(_runs(cases))
        jobs = [(p.program, p.stdin) for p in prepared]
        results = docker_run.run_batch(jobs, self.workers, limits.wall_s, limits.memory_mb)
        return _per_case(cases, _judge(prepared, results))

    def close(self) -> None:
        pass


class _UnsandboxedContender:
    def __init__(self, workers: int):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from restem.benchmarks.peers import apps_unsandboxed

        self.workers = workers
        context = multiprocessing.get_context("fork")
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
        warm = [apps_unsandboxed.Job("stdio", "print(input())", "1\n", "1")] * workers
        apps_unsandboxed.run_batch(warm, workers, self.pool)

    def __call__(self, cases: Sequence[Case]) -> list[Outcome]:
        from restem.benchmarks.peers import apps_unsandboxed

        jobs = []
        for c, i in _runs(cases):
            p, test = c.problem, c.problem.tests[i]
            jobs.append(
                apps_unsandboxed.Job(
                    p.mode.value, c.solution, test.input, test.expected, p.fn_name, p.setup_code
                )
            )
        return _per_case(cases, apps_unsandboxed.run_batch(jobs, self.workers, self.pool))

    def close(self) -> None:
        self.pool.shutdown()


def _why_not(name: str) -> str | None:
    """None when the contender can run here, else why not."""
    if name in ("docker-pool", "docker-run"):
        try:
            from restem.sandbox import docker_available

            if not docker_available():
                return "no Docker engine answers (see docs/sandbox.md)"
        except Exception as exc:
            return f"docker backend unavailable: {type(exc).__name__}: {exc}"
        if name == "docker-run":
            from restem.benchmarks.peers import docker_run

            return docker_run.available()
    if name in ("docker-pool", "local", "docker-run"):
        try:
            from restem.verifiers.code import open_sandbox, verify_code_batch  # noqa: F401
            from restem.verifiers.code.execute import judge_run, prepare_test  # noqa: F401
        except ImportError as exc:
            return f"restem's code harness is not available yet ({exc})"
    return None


def _start(name: str, workers: int):
    if name in ("docker-pool", "local"):
        return _RestemContender(name, workers)
    if name == "docker-run":
        return _DockerRunContender(workers)
    if name == "unsandboxed":
        return _UnsandboxedContender(workers)
    raise DataError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


# --- running ----------------------------------------------------------------------------------


def run_bench(
    cases: list[Case],
    names: Sequence[str],
    *,
    workers: Sequence[int] = (1, 2, 4),
    docker_run_programs: int = 30,
) -> dict[str, Any]:
    """Every available contender over ``cases`` at each worker count."""
    skipped = {}
    for name in names:
        if name not in CONTENDERS:
            raise DataError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
        why = _why_not(name)
        if why:
            skipped[name] = why
            progress(TAG, f"skipping {name}: {why}")
    subset = _spread(cases, docker_run_programs)
    rows = []
    for w in workers:
        for name in names:
            if name in skipped:
                continue
            chosen = subset if name == "docker-run" else cases
            t0 = time.perf_counter()
            try:
                contender = _start(name, w)
            except Exception as exc:
                skipped[name] = f"could not start: {type(exc).__name__}: {exc}"
                progress(TAG, f"skipping {name}: {skipped[name]}")
                continue
            setup = time.perf_counter() - t0
            try:
                start = time.perf_counter()
                outcomes = contender(chosen)
                seconds = time.perf_counter() - start
            finally:
                contender.close()
            by_workload: dict[str, dict[str, int]] = {}
            for c, (ran, ok, _) in zip(chosen, outcomes, strict=True):
                entry = by_workload.setdefault(
                    c.workload, {"programs": 0, "passed_programs": 0, "tests": 0, "passed_tests": 0}
                )
                entry["programs"] += 1
                entry["passed_programs"] += ok == len(c.problem.tests)
                entry["tests"] += ran
                entry["passed_tests"] += ok
            tests_run = sum(o[0] for o in outcomes)
            row = {
                "contender": name,
                "workers": w,
                "subset": name == "docker-run",
                "programs": len(chosen),
                "tests": tests_run,
                "passed_programs": sum(e["passed_programs"] for e in by_workload.values()),
                "passed_tests": sum(e["passed_tests"] for e in by_workload.values()),
                # restem re-runs, alone, a test the wall clock killed under load
                "retried_tests": sum(o[2] for o in outcomes),
                "seconds": round(seconds, 3),
                "programs_per_s": rate(len(chosen), seconds),
                "tests_per_s": rate(tests_run, seconds),
                "setup_s": round(setup, 3),
                "by_workload": by_workload,
            }
            rows.append(row)
            progress(
                TAG,
                f"{name}, {w} worker{'s' if w > 1 else ''}: {len(chosen)} programs, "
                f"{tests_run} tests in {seconds:.2f} s ({row['programs_per_s']} programs/s, "
                f"{row['tests_per_s']} tests/s); passed {row['passed_programs']} programs",
            )
    return {"rows": rows, "skipped": skipped, "ratios": _ratios(rows)}


def _ratios(rows: list[dict]) -> dict[str, dict[str, float | None]]:
    """Per worker count: tests/s of one contender divided by another's."""
    pairs = [
        ("docker-pool", "docker-run"),
        ("docker-pool", "unsandboxed"),
        ("local", "unsandboxed"),
        ("docker-pool", "local"),
    ]
    out: dict[str, dict[str, float | None]] = {}
    for w in sorted({r["workers"] for r in rows}):
        tps = {r["contender"]: r["tests_per_s"] for r in rows if r["workers"] == w}
        out[str(w)] = {
            f"{a} / {b}": ratio(tps[a], tps[b]) for a, b in pairs if a in tps and b in tps
        }
    return out


def run_synthetic(n: int, workers: Sequence[int], docker_run_n: int) -> dict[str, Any]:
    """The raw sandboxes on ``n`` trivial programs, through `restem.benchmarks.sandbox_bench`."""
    from restem.benchmarks import sandbox_bench

    rows, skipped = [], {}
    docker_ok = _why_not("docker-pool") is None
    if not docker_ok:
        skipped["docker_pool"] = skipped["docker_run"] = _why_not("docker-pool")
    for w in workers:
        benches = [("bare", sandbox_bench.bench_bare, n), ("local", sandbox_bench.bench_local, n)]
        if docker_ok:
            benches += [
                ("docker_pool", sandbox_bench.bench_pool, n),
                ("docker_run", sandbox_bench.bench_docker_run, docker_run_n),
            ]
        for name, bench, count in benches:
            if count < 1:
                continue
            progress(TAG, f"synthetic: {name}, {w} workers, {count} programs")
            rows.append({"contender": name, "workers": w, **bench(count, w)})
    return {"program": sandbox_bench.PROGRAM, "rows": rows, "skipped": skipped}


# --- output -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    out = [
        f"Machine: {m['cpu']}, {m['cpus_usable']} usable CPUs, Python {m['python']}, load "
        f"average {m['load_average_1_5_15']} at the start; {m['when']}.",
    ]
    rows = report["tests"]["rows"]
    if rows:
        ws = sorted({r["workers"] for r in rows})
        names = list(dict.fromkeys(r["contender"] for r in rows))
        cell = {(r["contender"], r["workers"]): r for r in rows}
        out += [
            "",
            f"Programs against their tests ({', '.join(report['tests']['workloads'])}; "
            f"{max(r['programs'] for r in rows)} programs, {max(r['tests'] for r in rows)} "
            "test runs; docker-run on a spread subset). Programs/s and tests/s:",
            "",
            markdown_table(
                [
                    "contender",
                    "passed programs",
                    *(f"programs/s, {w}w" for w in ws),
                    *(f"tests/s, {w}w" for w in ws),
                ],
                [
                    [
                        n,
                        f"{cell[(n, ws[0])]['passed_programs']}/{cell[(n, ws[0])]['programs']}"
                        if (n, ws[0]) in cell
                        else None,
                        *(cell[(n, w)]["programs_per_s"] if (n, w) in cell else None for w in ws),
                        *(cell[(n, w)]["tests_per_s"] if (n, w) in cell else None for w in ws),
                    ]
                    for n in names
                ],
            ),
        ]
        w0 = ws[0]
        workloads = list(dict.fromkeys(k for r in rows for k in r["by_workload"]))
        out += [
            "",
            f"Passed programs by workload ({w0} worker{'s' if w0 > 1 else ''}):",
            "",
            markdown_table(
                ["contender", *workloads],
                [
                    [
                        n,
                        *(
                            _passed(cell[(n, w0)]["by_workload"].get(k))
                            if (n, w0) in cell
                            else None
                            for k in workloads
                        ),
                    ]
                    for n in names
                ],
            ),
        ]
        ratios = report["tests"]["ratios"]
        keys = list(dict.fromkeys(k for v in ratios.values() for k in v))
        if keys:
            out += [
                "",
                "Ratios of tests/s:",
                "",
                markdown_table(
                    ["ratio", *(f"{w} workers" for w in ratios)],
                    [[k, *(_x(ratios[w].get(k)) for w in ratios)] for k in keys],
                ),
            ]
    for name, why in report["tests"].get("skipped", {}).items():
        out.append(f"\nSkipped {name}: {why}")
    syn = report.get("synthetic") or {}
    if syn.get("rows"):
        ws = sorted({r["workers"] for r in syn["rows"]})
        names = list(dict.fromkeys(r["contender"] for r in syn["rows"]))
        cell = {(r["contender"], r["workers"]): r for r in syn["rows"]}
        out += [
            "",
            "Raw sandboxes, trivial programs (`benchmarks/sandbox_bench.py`), programs/s:",
            "",
            markdown_table(
                ["sandbox", "programs", *(f"{w} workers" for w in ws)],
                [
                    [
                        n,
                        max(r["programs"] for r in syn["rows"] if r["contender"] == n),
                        *(cell[(n, w)]["programs_per_s"] if (n, w) in cell else None for w in ws),
                    ]
                    for n in names
                ],
            ),
        ]
    return "\n".join(out)


def _passed(entry: dict[str, int] | None) -> str | None:
    if not entry:
        return None
    return f"{entry['passed_programs']}/{entry['programs']} ({entry['tests']} tests)"


def _x(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}x"


def plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("tests", "tests_per_s", "tests / s (log)", "programs against tests")]
    if (report.get("synthetic") or {}).get("rows"):
        panels.append(("synthetic", "programs_per_s", "programs / s (log)", "trivial programs"))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    # One colour per kind of runner in both panels (the synthetic rows use underscores).
    colours = {"docker-pool": "C0", "local": "C1", "docker-run": "C2", "unsandboxed": "C3"}
    colours["bare"] = "C4"
    for ax, (key, metric, ylabel, title) in zip(axes[0], panels, strict=True):
        rows = report[key]["rows"]
        for name in dict.fromkeys(r["contender"] for r in rows):
            pts = sorted((r["workers"], r[metric]) for r in rows if r["contender"] == name)
            colour = colours.get(name.replace("_", "-"))
            ax.plot(*zip(*pts), marker="o", label=name, color=colour)
        ax.set(xlabel="workers", ylabel=ylabel, yscale="log", title=title)
        ax.set_xticks(sorted({r["workers"] for r in rows}))
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    m = report["machine"]
    fig.suptitle(
        f"restem bench code — {m['cpu']}, {m['cpus_usable']} CPUs (shared), {m['when']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- command line -----------------------------------------------------------------------------


def _list(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        help="the folder holding humaneval.jsonl.gz, apps_* (default: $RESTEM_DATA_DIR/code)",
    )
    parser.add_argument(
        "--workloads",
        type=_list,
        default=list(WORKLOADS),
        help=f"comma-separated (default: {','.join(WORKLOADS)})",
    )
    parser.add_argument(
        "--contenders",
        type=_list,
        default=list(CONTENDERS),
        help=f"comma-separated (default: {','.join(CONTENDERS)})",
    )
    parser.add_argument(
        "--workers", type=int_list, default=[1, 2, 4], help="worker counts (default 1,2,4)"
    )
    parser.add_argument(
        "--limit", type=_count, default=0, help="only the first N programs of each workload"
    )
    parser.add_argument(
        "--docker-run-programs",
        type=_count,
        default=30,
        help="programs (spread over the workloads) for docker-run (default 30)",
    )
    parser.add_argument(
        "--synthetic",
        type=_count,
        default=1000,
        help="trivial programs per raw sandbox, 0 to skip (default 1000)",
    )
    parser.add_argument(
        "--synthetic-docker-run",
        type=_count,
        default=100,
        help="of which docker run gets (default 100: ~0.3 s each)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="result JSON; the PNG goes next to it (default: benchmarks/results/code.json)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")


def main(args: argparse.Namespace) -> int:
    try:
        code_dir = data_file(args.data_dir, "code", "--data-dir")
        for name in args.contenders:
            if name not in CONTENDERS:
                raise DataError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
        cases = load_workloads(code_dir, args.workloads, args.limit or None)
    except DataError as exc:
        print(f"restem {TAG}: {exc}", file=sys.stderr)
        return 2
    machine = machine_info()
    progress(
        TAG,
        f"{len(cases)} programs, {len(_runs(cases))} test runs from {code_dir}; "
        f"{machine['cpus_usable']} CPUs, load {machine['load_average_1_5_15']}",
    )
    tests = run_bench(
        cases, args.contenders, workers=args.workers, docker_run_programs=args.docker_run_programs
    )
    tests["workloads"] = list(args.workloads)
    synthetic = (
        run_synthetic(args.synthetic, args.workers, args.synthetic_docker_run)
        if args.synthetic
        else None
    )
    machine["load_average_1_5_15_at_end"] = machine_info()["load_average_1_5_15"]
    report = {
        "benchmark": "code",
        "machine": machine,
        "versions": {"restem": version_of("restem"), "docker": version_of("docker")},
        "limits": _limits_report(),
        "notes": (
            "Every test of every program runs (restem: verify_code_batch(all_tests=True), which "
            "still stops at a compile error). restem's sandboxes and the unsandboxed pool are "
            "started before the clock runs (setup_s). docker-run ran restem's harness programs "
            "on a spread subset of the programs. The unsandboxed runner compares outputs more "
            "leniently. The machine is shared: compare contenders by the ratios of one run."
        ),
        "tests": tests,
        "synthetic": synthetic,
    }
    write_json(args.output, report)
    progress(TAG, f"results written to {args.output}")
    if not args.no_plot:
        why_not = plot_available()
        if why_not:
            progress(TAG, f"no plot: {why_not}")
        else:
            progress(TAG, f"plot written to {plot(report, args.output.with_suffix('.png'))}")
    print(render_markdown(report))
    return 0


def _standalone(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m restem.benchmarks.code_bench", description=__doc__
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(_standalone())
