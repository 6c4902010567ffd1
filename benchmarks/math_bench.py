"""`restem bench math`: restem's MATH verifier next to Math-Verify and an is_equiv baseline.

All contenders judge the same (response, gold[, label]) rows in one run, each the way its users run
it: restem through ``verify_math_batch(pairs, workers=N)`` (exact arithmetic in the caller's
process, sympy in N worker processes); the peers in the caller's process with 1 worker, and in a
process pool of N workers otherwise. Reported: accuracy, false positives and false negatives against
the labels; answers/s with 1 and N workers; per-answer latency (p50/p99, one call at a time); the
ratio restem / each peer; and answers/s over batch sizes x workers (the data cycled).

    restem bench math [--data FILE.jsonl] [--output benchmarks/results/math.json] ...

Writes the JSON and a PNG next to it, prints markdown tables on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import multiprocessing
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
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
    percentile,
    plot_available,
    progress,
    rate,
    ratio,
    version_of,
    write_json,
)

__all__ = [
    "CONTENDERS",
    "Contender",
    "Row",
    "add_arguments",
    "load_rows",
    "main",
    "render_markdown",
    "run_bench",
    "score",
]

DEFAULT_DATA = "math/labeled_outputs_800.jsonl"
DEFAULT_OUTPUT = RESULTS_DIR / "math.json"
CONTENDERS = ("restem", "math-verify", "is_equiv")
TAG = "bench math"

Pair = tuple[str, str]
Judgment = bool | None  # None: the contender abstained (restem: the gold is unusable) or failed


@dataclass(frozen=True)
class Row:
    response: str
    gold: str
    label: bool | None


@dataclass(frozen=True)
class Contender:
    name: str
    # One pair, in the caller's process (module-level, so that a process pool can pickle it).
    judge: Callable[[str, str], Judgment]
    how: str
    version: str | None = None
    # The contender's own batch API, ``batch(pairs, workers) -> judgments``; None: run ``judge``
    # one pair at a time (1 worker) or in a process pool of ``workers`` processes.
    batch: Callable[[Iterable[Pair], int], list[Judgment]] | None = None
    # Empties the contender's caches of earlier inputs (module-level: picklable). Called before
    # every timed run and whenever cycled data starts over, so a repeated pass over the same
    # rows is not judged from a cache: in training every response is new.
    clear: Callable[[], None] | None = None


# --- contenders -------------------------------------------------------------------------------


def _restem_judge(response: str, gold: str) -> Judgment:
    from restem.verifiers import verify_math

    verdict = verify_math(response, gold)
    return None if verdict.reward is None else verdict.correct


def _clear_caches(module: str, names: Sequence[str]) -> None:
    """``cache_clear()`` the named functools caches of ``module`` (those that exist)."""
    loaded = importlib.import_module(module)
    for name in names:
        clear = getattr(getattr(loaded, name, None), "cache_clear", None)
        if clear is not None:
            clear()


def _restem_clear() -> None:
    _clear_caches("restem.verifiers.math.judge", ("prepare_gold", "prepare_answer"))


def _math_verify_clear() -> None:
    _clear_caches("math_verify.parser", ("parse_latex_cached", "parse_expr_cached"))


def _restem_batch(pairs: Iterable[Pair], workers: int) -> list[Judgment]:
    from restem.verifiers import verify_math_batch

    return [
        None if v.reward is None else v.correct for v in verify_math_batch(pairs, workers=workers)
    ]


def _math_verify_judge(response: str, gold: str) -> Judgment:
    from restem.benchmarks.peers import math_verify_peer

    return math_verify_peer.judge(response, gold)


def _is_equiv_judge(response: str, gold: str) -> Judgment:
    from restem.benchmarks.peers import is_equiv

    return is_equiv.judge(response, gold)


def make_contenders(names: Sequence[str]) -> tuple[list[Contender], dict[str, str]]:
    """The contenders that can run here, and why each of the others cannot."""
    chosen: list[Contender] = []
    skipped: dict[str, str] = {}
    for name in names:
        if name == "restem":
            chosen.append(
                Contender(
                    "restem",
                    _restem_judge,
                    "verify_math_batch(pairs, workers=N): exact arithmetic in the caller's "
                    "process, sympy in N pebble workers",
                    version_of("restem"),
                    batch=_restem_batch,
                    clear=_restem_clear,
                )
            )
        elif name == "math-verify":
            from restem.benchmarks.peers import math_verify_peer

            reason = math_verify_peer.available()
            if reason:
                skipped[name] = reason
                continue
            logging.getLogger("math_verify").setLevel(logging.CRITICAL)
            chosen.append(
                Contender(
                    "math-verify",
                    _math_verify_judge,
                    "verify(parse(gold), parse(response)) in process; N workers: a process pool",
                    math_verify_peer.version(),
                    clear=_math_verify_clear,
                )
            )
        elif name == "is_equiv":
            chosen.append(
                Contender(
                    "is_equiv",
                    _is_equiv_judge,
                    "last \\boxed{}, normalized strings compared (Hendrycks/lm-eval style); "
                    "N workers: a process pool",
                )
            )
        else:
            raise DataError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
    return chosen, skipped


# --- data -------------------------------------------------------------------------------------


def load_rows(
    path: Path,
    response_field: str = "response",
    gold_field: str = "gold",
    label_field: str | None = None,
) -> list[Row]:
    """Rows of a JSONL file; the label is ``label_field``, else ``label`` or ``correct`` when
    present. A malformed line is an error naming the file and line."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{where}: not JSON ({exc.msg})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{where}: expected a JSON object")
            values = []
            for name in (response_field, gold_field):
                value = obj.get(name)
                if isinstance(value, bool) or not isinstance(value, str | int | float):
                    raise DataError(f"{where}: field {name!r} missing or not text")
                values.append(str(value))
            key = label_field or next((k for k in ("label", "correct") if k in obj), None)
            label = obj.get(key) if key else None
            if key and label_field and key not in obj:
                raise DataError(f"{where}: label field {key!r} missing")
            if label is not None and not isinstance(label, bool):
                raise DataError(f"{where}: label {key!r} must be true or false, got {label!r}")
            rows.append(Row(values[0], values[1], label))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


# --- running ----------------------------------------------------------------------------------


def _safe(judge: Callable[[str, str], Judgment], response: str, gold: str) -> Judgment:
    try:
        return judge(response, gold)
    except Exception:  # a peer that raises on a pair has not judged it
        return None


def _noop() -> None:
    pass


def _fresh(pairs: list[Pair], period: int, clear: Callable[[], None] | None) -> Iterator[Pair]:
    """``pairs``, with ``clear()`` before the first and at every restart of the cycled data."""
    for i, pair in enumerate(pairs):
        if clear is not None and i % period == 0:
            clear()
        yield pair


_worker_cycle: int | None = None  # in a pool worker: the data cycle its caches hold


def _judge_chunk(
    judge: Callable[[str, str], Judgment],
    clear: Callable[[], None],
    cycle: int,
    chunk: list[Pair],
) -> list[Judgment]:
    global _worker_cycle
    if cycle != _worker_cycle:
        clear()
        _worker_cycle = cycle
    return [_safe(judge, r, g) for r, g in chunk]


def run_sequential(
    contender: Contender, pairs: list[Pair], period: int | None = None
) -> tuple[list[Judgment], list[float], float]:
    """One pair at a time in this process: judgments, per-pair seconds, total seconds."""
    judgments, latencies = [], []
    clock = time.perf_counter
    start = clock()
    for response, gold in _fresh(pairs, period or len(pairs), contender.clear):
        t = clock()
        judgments.append(_safe(contender.judge, response, gold))
        latencies.append(clock() - t)
    return judgments, latencies, clock() - start


def run_pool(
    contender: Contender, pairs: list[Pair], workers: int, period: int | None = None
) -> tuple[list[Judgment], float, float]:
    """In a pool of ``workers`` forked processes (started and warmed before the clock starts):
    judgments, seconds, pool start-up seconds."""
    period = period or len(pairs)
    clear = contender.clear or _noop
    t0 = time.perf_counter()
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as ex:
        warm = [pairs[: min(4, len(pairs))]] * workers
        list(
            ex.map(
                _judge_chunk, [contender.judge] * workers, [clear] * workers, [-1] * workers, warm
            )
        )
        setup = time.perf_counter() - t0
        # Chunks never straddle a restart of the cycled data, so a worker clears its caches
        # whenever it moves on to the next cycle.
        size = max(1, math.ceil(min(period, len(pairs)) / (workers * 8)))
        bounds = []
        i = 0
        while i < len(pairs):
            j = min(i + size, (i // period + 1) * period, len(pairs))
            bounds.append((i, j))
            i = j
        start = time.perf_counter()
        results = list(
            ex.map(
                _judge_chunk,
                [contender.judge] * len(bounds),
                [clear] * len(bounds),
                [i // period for i, _ in bounds],
                [pairs[i:j] for i, j in bounds],
            )
        )
        seconds = time.perf_counter() - start
    return [j for chunk in results for j in chunk], seconds, setup


def run_with_workers(
    contender: Contender, pairs: list[Pair], workers: int, period: int | None = None
) -> tuple[list[Judgment], float]:
    """The contender's way with ``workers`` workers: judgments and seconds. ``period``: the
    length of the data that ``pairs`` cycles (caches are cleared at each restart)."""
    period = period or len(pairs)
    if contender.batch is not None:
        start = time.perf_counter()
        judgments = contender.batch(_fresh(pairs, period, contender.clear), workers)
        return judgments, time.perf_counter() - start
    if workers == 1:
        judgments, _, seconds = run_sequential(contender, pairs, period)
        return judgments, seconds
    judgments, seconds, _ = run_pool(contender, pairs, workers, period)
    return judgments, seconds


def score(judgments: Sequence[Judgment], labels: Sequence[bool | None]) -> dict[str, Any]:
    """Agreement with the labels. An abstention (None) counts as 'not correct' for accuracy and
    as a false negative when the label is true."""
    tp = tn = fp = fn = abstained = labeled = 0
    for j, label in zip(judgments, labels, strict=True):
        if label is None:
            continue
        labeled += 1
        abstained += j is None
        said = bool(j)
        if said and label:
            tp += 1
        elif said:
            fp += 1
        elif label:
            fn += 1
        else:
            tn += 1
    return {
        "labeled": labeled,
        "agree": tp + tn,
        "accuracy": round((tp + tn) / labeled, 4) if labeled else None,
        "false_positives": fp,
        "false_negatives": fn,
        "true_positives": tp,
        "true_negatives": tn,
        "abstained": abstained,
    }


def _cycle(pairs: list[Pair], size: int) -> list[Pair]:
    return [pairs[i % len(pairs)] for i in range(size)]


def _warm_up(contender: Contender, pairs: list[Pair]) -> None:
    # First calls pay imports and set-up (sympy, antlr's parser caches, regexes) that a
    # long-running user pays once: one untimed pass, then the input caches are cleared by the
    # timed runs themselves.
    run_sequential(contender, pairs[:2000])
    if contender.batch is not None:
        contender.batch(pairs[:32], 1)


def _median_run(
    contender: Contender, pairs: list[Pair], workers: int, period: int, repeat: int
) -> tuple[list[Judgment], float, list[float]]:
    """``repeat`` timed runs: the first run's judgments, the median seconds, all seconds."""
    first: list[Judgment] | None = None
    times = []
    for _ in range(repeat):
        judgments, seconds = run_with_workers(contender, pairs, workers, period)
        first = judgments if first is None else first
        times.append(seconds)
    return first or [], statistics.median(times), times


def run_bench(
    rows: list[Row],
    contenders: list[Contender],
    *,
    n_workers: int,
    workers: Sequence[int] = (1, 2, 4),
    sizes: Sequence[int] = (100, 1_000, 10_000),
    repeat: int = 3,
) -> dict[str, Any]:
    """Run every contender over ``rows`` (accuracy, 1 and N workers, latency), then the scaling
    grid; the report as a JSON-able dict. Each timing is the median of ``repeat`` runs."""
    pairs = [(r.response, r.gold) for r in rows]
    labels = [r.label for r in rows]
    n = len(pairs)
    results: dict[str, Any] = {}
    for c in contenders:
        progress(TAG, f"{c.name}: warming up")
        _warm_up(c, pairs)
        judgments, latencies, seq_s = run_sequential(c, pairs)
        progress(TAG, f"{c.name}: {n} answers one at a time in {seq_s:.2f} s")
        one, one_s, one_all = _median_run(c, pairs, 1, n, repeat)
        progress(TAG, f"{c.name}: 1 worker {one_s:.2f} s ({rate(n, one_s)} answers/s)")
        many, many_s, many_all = _median_run(c, pairs, n_workers, n, repeat)
        progress(TAG, f"{c.name}: {n_workers} workers {many_s:.2f} s ({rate(n, many_s)} answers/s)")
        results[c.name] = {
            "how": c.how,
            "version": c.version,
            **score(judgments, labels),
            "one_worker": {
                "seconds": round(one_s, 4),
                "answers_per_s": rate(n, one_s),
                "all_seconds": [round(t, 4) for t in one_all],
            },
            "n_workers": {
                "workers": n_workers,
                "seconds": round(many_s, 4),
                "answers_per_s": rate(n, many_s),
                "all_seconds": [round(t, 4) for t in many_all],
            },
            "one_at_a_time": {"seconds": round(seq_s, 4), "answers_per_s": rate(n, seq_s)},
            "latency_ms": {
                "p50": round(percentile(latencies, 50) * 1e3, 4),
                "p99": round(percentile(latencies, 99) * 1e3, 4),
                "max": round(max(latencies) * 1e3, 4),
            },
            # The same pairs judged by the 1- and N-worker runs: they must agree with the
            # one-at-a-time pass (a disagreement is a bug or a timeout under load).
            "disagreements_across_runs": sum(
                a != j or b != j for a, b, j in zip(one, many, judgments, strict=True)
            ),
        }
    scaling = []
    for size in sizes:
        batch = _cycle(pairs, size)
        for c in contenders:
            for w in workers:
                _, seconds, _ = _median_run(c, batch, w, n, repeat)
                scaling.append(
                    {
                        "contender": c.name,
                        "batch_size": size,
                        "workers": w,
                        "seconds": round(seconds, 4),
                        "answers_per_s": rate(size, seconds),
                    }
                )
                progress(
                    TAG,
                    f"scaling {c.name}: {size} answers, {w} workers: {seconds:.2f} s "
                    f"({rate(size, seconds)} answers/s)",
                )
    return {
        "results": results,
        "ratios": _ratios(results),
        "scaling": scaling,
        "targets": _targets(results),
    }


def _ratios(results: dict[str, Any]) -> dict[str, Any]:
    """restem's throughput divided by each peer's (above 1: restem is faster)."""
    if "restem" not in results:
        return {}
    mine = results["restem"]
    return {
        peer: {
            "one_worker": ratio(
                mine["one_worker"]["answers_per_s"], row["one_worker"]["answers_per_s"]
            ),
            "n_workers": ratio(
                mine["n_workers"]["answers_per_s"], row["n_workers"]["answers_per_s"]
            ),
            "p50_latency": ratio(row["latency_ms"]["p50"], mine["latency_ms"]["p50"]),
        }
        for peer, row in results.items()
        if peer != "restem"
    }


def _targets(results: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, reported (never asserted)."""
    if "restem" not in results or results["restem"]["accuracy"] is None:
        return {}
    mine = results["restem"]
    targets: dict[str, Any] = {
        "zero_false_positives": mine["false_positives"] == 0,
        "highest_accuracy": all(
            mine["accuracy"] >= (row["accuracy"] or 0) for row in results.values()
        ),
    }
    if "math-verify" in results:
        targets["at_least_2x_math_verify_one_worker"] = (
            mine["one_worker"]["answers_per_s"]
            >= 2 * results["math-verify"]["one_worker"]["answers_per_s"]
        )
    return targets


# --- output -----------------------------------------------------------------------------------


def render_markdown(report: dict[str, Any]) -> str:
    results, ratios = report["results"], report.get("ratios", {})
    m = report["machine"]
    n_workers = next(iter(results.values()))["n_workers"]["workers"] if results else 0
    out = [
        f"Data: `{report['data']['path_name']}` ({report['data']['rows']} rows, "
        f"{report['data']['labeled']} labeled). Machine: {m['cpu']}, {m['cpus_usable']} usable "
        f"CPUs, Python {m['python']}, load average {m['load_average_1_5_15']} at the start; "
        f"{m['when']}.",
        "",
        markdown_table(
            [
                "contender",
                "accuracy",
                "false pos.",
                "false neg.",
                "answers/s, 1 call at a time",
                "answers/s, 1 worker",
                f"answers/s, {n_workers} workers",
                "p50 ms",
                "p99 ms",
                "restem ÷ it, 1 worker",
                f"restem ÷ it, {n_workers} workers",
            ],
            [
                [
                    name,
                    None if row["accuracy"] is None else f"{row['agree']}/{row['labeled']}",
                    row["false_positives"] if row["labeled"] else None,
                    row["false_negatives"] if row["labeled"] else None,
                    row["one_at_a_time"]["answers_per_s"],
                    row["one_worker"]["answers_per_s"],
                    row["n_workers"]["answers_per_s"],
                    row["latency_ms"]["p50"],
                    row["latency_ms"]["p99"],
                    "1" if name == "restem" else _x(ratios.get(name, {}).get("one_worker")),
                    "1" if name == "restem" else _x(ratios.get(name, {}).get("n_workers")),
                ]
                for name, row in results.items()
            ],
        ),
    ]
    if report.get("skipped"):
        out += ["", *(f"Skipped {k}: {v}" for k, v in report["skipped"].items())]
    scaling = report.get("scaling") or []
    if scaling:
        ws = sorted({s["workers"] for s in scaling})
        table: dict[tuple[str, int], dict[int, float]] = {}
        for s in scaling:
            table.setdefault((s["contender"], s["batch_size"]), {})[s["workers"]] = s[
                "answers_per_s"
            ]
        out += [
            "",
            "Answers/s by batch size (the data cycled) and workers:",
            "",
            markdown_table(
                ["contender", "batch", *(f"{w} worker{'s' if w > 1 else ''}" for w in ws)],
                [[c, size, *(v.get(w) for w in ws)] for (c, size), v in table.items()],
            ),
        ]
    return "\n".join(out)


def _x(value: float | None) -> str | None:
    return None if value is None else f"{value:.2f}x"


def plot(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results, scaling = report["results"], report.get("scaling") or []
    names = list(results)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ax = axes[0]
    width = 0.38
    n_workers = results[names[0]]["n_workers"]["workers"]
    xs = range(len(names))
    ax.bar(
        [x - width / 2 for x in xs],
        [results[c]["one_worker"]["answers_per_s"] for c in names],
        width,
        label="1 worker",
    )
    ax.bar(
        [x + width / 2 for x in xs],
        [results[c]["n_workers"]["answers_per_s"] for c in names],
        width,
        label=f"{n_workers} workers",
    )
    ax.set_xticks(list(xs), names)
    ax.set_yscale("log")
    ax.set_ylabel("answers / s (log)")
    ax.set_title(f"throughput, {report['data']['rows']} answers")
    ax.legend()
    if scaling:
        biggest = max(s["batch_size"] for s in scaling)
        for c in names:
            pts = sorted(
                (s["workers"], s["answers_per_s"])
                for s in scaling
                if s["contender"] == c and s["batch_size"] == biggest
            )
            axes[1].plot(*zip(*pts), marker="o", label=c)
            one = sorted(
                (s["batch_size"], s["seconds"])
                for s in scaling
                if s["contender"] == c and s["workers"] == 1
            )
            axes[2].plot(*zip(*one), marker="o", label=c)
        axes[1].set(
            xlabel="workers",
            ylabel="answers / s (log)",
            yscale="log",
            title=f"scaling with workers, batch {biggest:,}",
        )
        axes[1].set_xticks(sorted({s["workers"] for s in scaling}))
        axes[2].set(
            xlabel="batch size (log)",
            ylabel="seconds (log)",
            xscale="log",
            yscale="log",
            title="cost by batch size, 1 worker",
        )
        for a in axes[1:]:
            a.legend()
            a.grid(True, which="both", alpha=0.3)
    m = report["machine"]
    fig.suptitle(
        f"restem bench math — {m['cpu']}, {m['cpus_usable']} CPUs (shared; load "
        f"{m['load_average_1_5_15'][0] if m['load_average_1_5_15'] else '?'}), {m['when']}",
        fontsize=9,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- command line -----------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        help=f"JSONL of response, gold[, label] rows (default: $RESTEM_DATA_DIR/{DEFAULT_DATA})",
    )
    parser.add_argument("--response-field", default="response")
    parser.add_argument("--gold-field", default="gold")
    parser.add_argument(
        "--label-field", default=None, help="boolean label (default: 'label', else 'correct')"
    )
    parser.add_argument(
        "--limit", type=_positive, default=None, help="use only the first N rows of the data"
    )
    parser.add_argument(
        "--contenders",
        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
        default=list(CONTENDERS),
        help=f"comma-separated (default: {','.join(CONTENDERS)})",
    )
    parser.add_argument(
        "--n-workers",
        type=_positive,
        default=None,
        help="N of the 'N workers' figures (default: usable CPUs)",
    )
    parser.add_argument(
        "--workers", type=int_list, default=[1, 2, 4], help="scaling grid (default 1,2,4)"
    )
    parser.add_argument(
        "--sizes",
        type=int_list,
        default=[100, 1_000, 10_000],
        help="scaling batch sizes (default 100,1000,10000)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling grid")
    parser.add_argument(
        "--repeat", type=_positive, default=3, help="timed runs per figure; the median is kept"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT,
        help="result JSON; the PNG goes next to it (default: benchmarks/results/math.json)",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")


def main(args: argparse.Namespace) -> int:
    try:
        path = data_file(args.data, DEFAULT_DATA)
        rows = load_rows(path, args.response_field, args.gold_field, args.label_field)
        contenders, skipped = make_contenders(args.contenders)
    except DataError as exc:
        print(f"restem {TAG}: {exc}", file=sys.stderr)
        return 2
    if args.limit:
        rows = rows[: args.limit]
    for name, reason in skipped.items():
        progress(TAG, f"skipping {name}: {reason}")
    if not contenders:
        print(f"restem {TAG}: no contender can run here", file=sys.stderr)
        return 2
    machine = machine_info()
    n_workers = args.n_workers or machine["cpus_usable"] or 1
    progress(
        TAG,
        f"{len(rows)} rows from {path}; contenders {', '.join(c.name for c in contenders)}; "
        f"{machine['cpus_usable']} CPUs, load {machine['load_average_1_5_15']}",
    )
    body = run_bench(
        rows,
        contenders,
        n_workers=n_workers,
        workers=args.workers,
        sizes=[] if args.no_scaling else args.sizes,
        repeat=args.repeat,
    )
    machine["load_average_1_5_15_at_end"] = machine_info()["load_average_1_5_15"]
    report = {
        "benchmark": "math",
        "machine": machine,
        "data": {
            "path_name": path.name,
            "rows": len(rows),
            "labeled": sum(r.label is not None for r in rows),
            "labeled_correct": sum(r.label is True for r in rows),
        },
        "versions": {
            "restem": version_of("restem"),
            "math-verify": version_of("math-verify"),
            "sympy": version_of("sympy"),
        },
        "notes": (
            "Contenders ran one after another in one process on a shared machine; compare "
            "them by the ratios of one run. Each contender first makes one untimed pass over "
            "the data (imports, parser set-up); every timed run starts with the contenders' "
            "input caches emptied, and so does every restart of cycled data, since in training "
            "every response is new. Process-pool start-up of the peers is not timed; restem's "
            "batch calls include their own worker start-up, as its users pay it. Timings are "
            "medians of the repeats."
        ),
        "skipped": skipped,
        **body,
    }
    write_json(args.output, report)
    progress(TAG, f"results written to {args.output}")
    if not args.no_plot:
        why_not = plot_available()
        if why_not:
            progress(TAG, f"no plot: {why_not}")
        else:
            png = plot(report, args.output.with_suffix(".png"))
            progress(TAG, f"plot written to {png}")
    print(render_markdown(report))
    return 0


def _standalone(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m restem.benchmarks.math_bench", description=__doc__
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(_standalone())
