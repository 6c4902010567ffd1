"""`restem bench math`: restem's MATH verifier next to Math-Verify and an is_equiv baseline, on two
labelled data sets, plus a seeded fuzz run of hostile strings.

Parts (``--only``, default all):

- ``labeled``: the 800 real model outputs with adjudicated labels (``--data`` for another file);
- ``suite``: Math-Verify's own test cases (gold, response, expected; ``--suite`` for another file);
- ``fuzz``: 10,000 seeded random and hostile pairs through restem's batch API (restem only), one
  pair per call from N threads, so that each pair's latency is its own.

On each data set all contenders judge the same rows in one run, each the way its users run it:
restem through ``verify_math_batch(pairs, workers=N)`` (exact arithmetic in the caller's process,
sympy in N worker processes); the peers in the caller's process with 1 worker, and in a process
pool of N workers otherwise. Reported per data set: accuracy, false positives and false negatives
against the labels; answers/s with 1 and N workers; per-answer latency (p50/p99, one call at a
time); the ratio restem / each peer. On the labelled set also answers/s over batch sizes x workers
(the data cycled). The fuzz run reports exceptions, late verdicts, time-outs, statuses and latency.

    restem bench math [--only labeled,suite,fuzz] [--output benchmarks/results/math.json] ...

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

from restem.benchmarks import report as shared
from restem.benchmarks.report import (
    RESULTS_DIR,
    DataError,
    data_file,
    int_list,
    machine_info,
    markdown_table,
    percentile,
    progress,
    rate,
    ratio,
    version_of,
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
DEFAULT_SUITE = "math/math_verify_suite.jsonl"
LABEL_FIELDS = ("label", "correct", "expected")
PARTS = ("labeled", "suite", "fuzz")
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
    """Rows of a JSONL file; the label is ``label_field``, else the first of ``LABEL_FIELDS``
    present: true/false, or 1/0 (Math-Verify's suite writes ``expected`` as 1/0). A malformed line
    is an error naming the file and line."""
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
            key = label_field or next((k for k in LABEL_FIELDS if k in obj), None)
            label = obj.get(key) if key else None
            if key and label_field and key not in obj:
                raise DataError(f"{where}: label field {key!r} missing")
            if type(label) is int and label in (0, 1):
                label = bool(label)
            if label is not None and not isinstance(label, bool):
                raise DataError(f"{where}: label {key!r} must be true/false or 1/0, got {label!r}")
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
    start: int,
    period: int,
    chunk: list[Pair],
) -> list[Judgment]:
    """Judge ``chunk``, the pairs from index ``start`` of data that cycles every ``period``
    pairs; the worker's caches are emptied whenever it moves on to another cycle."""
    global _worker_cycle
    judgments = []
    for k, (response, gold) in enumerate(chunk):
        cycle = (start + k) // period
        if cycle != _worker_cycle:
            clear()
            _worker_cycle = cycle
        judgments.append(_safe(judge, response, gold))
    return judgments


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
                _judge_chunk,
                [contender.judge] * workers,
                [clear] * workers,
                [-period] * workers,
                [period] * workers,
                warm,
            )
        )
        setup = time.perf_counter() - t0
        size = max(1, math.ceil(len(pairs) / (workers * 8)))
        starts = range(0, len(pairs), size)
        start = time.perf_counter()
        results = list(
            ex.map(
                _judge_chunk,
                [contender.judge] * len(starts),
                [clear] * len(starts),
                starts,
                [period] * len(starts),
                [pairs[i : i + size] for i in starts],
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


def _interleaved(
    contenders: list[Contender],
    batches: dict[str, list[Pair]],
    workers: int,
    period: int,
    repeat: int,
) -> dict[str, tuple[list[Judgment], float, list[float]]]:
    """``repeat`` rounds of one timed run per contender, the order reversed every other round,
    so that every contender's runs sample the same stretches of a shared machine's load. Per
    contender: the first run's judgments, the median seconds, all seconds."""
    runs: dict[str, list[tuple[list[Judgment], float]]] = {c.name: [] for c in contenders}
    for r in range(repeat):
        for c in contenders if r % 2 == 0 else contenders[::-1]:
            runs[c.name].append(run_with_workers(c, batches[c.name], workers, period))
    return {
        name: (done[0][0], statistics.median(t for _, t in done), [t for _, t in done])
        for name, done in runs.items()
    }


def run_bench(
    rows: list[Row],
    contenders: list[Contender],
    *,
    n_workers: int,
    workers: Sequence[int] = (1, 2, 4),
    sizes: Sequence[int] = (100, 1_000),
    repeat: int = 3,
    min_seconds: float = 0.0,
    tag: str = TAG,
) -> dict[str, Any]:
    """Run every contender over ``rows`` (accuracy, 1 and N workers, latency), then the scaling
    grid; the report as a JSON-able dict. Each timing is the median of ``repeat`` runs, the
    contenders' runs interleaved; a run passes over the data as often as it takes to last about
    ``min_seconds`` (a small, fast data set would otherwise be timed in milliseconds), with the
    caches emptied at every pass."""
    pairs = [(r.response, r.gold) for r in rows]
    labels = [r.label for r in rows]
    n = len(pairs)
    one_pass: dict[str, tuple[list[Judgment], list[float], float]] = {}
    timed: dict[str, list[Pair]] = {}
    for c in contenders:
        progress(tag, f"{c.name}: warming up")
        _warm_up(c, pairs)
        judgments, latencies, seq_s = run_sequential(c, pairs)
        progress(tag, f"{c.name}: {n} answers one at a time in {seq_s:.2f} s")
        one_pass[c.name] = (judgments, latencies, seq_s)
        passes = max(1, math.ceil(min_seconds / seq_s)) if seq_s > 0 else 1
        timed[c.name] = _cycle(pairs, n * passes)
    runs = {}
    for w in (1, n_workers):
        runs[w] = _interleaved(contenders, timed, w, n, repeat)
        for c in contenders:
            total, seconds = len(timed[c.name]), runs[w][c.name][1]
            progress(
                tag, f"{c.name}: {w} worker(s) {seconds:.2f} s ({rate(total, seconds)} answers/s)"
            )
    results: dict[str, Any] = {}
    for c in contenders:
        judgments, latencies, seq_s = one_pass[c.name]
        total = len(timed[c.name])
        one, one_s, one_all = runs[1][c.name]
        many, many_s, many_all = runs[n_workers][c.name]
        results[c.name] = {
            "how": c.how,
            "version": c.version,
            **score(judgments, labels),
            "one_worker": {
                "answers": total,
                "seconds": round(one_s, 4),
                "answers_per_s": rate(total, one_s),
                "all_seconds": [round(t, 4) for t in one_all],
            },
            "n_workers": {
                "workers": n_workers,
                "answers": total,
                "seconds": round(many_s, 4),
                "answers_per_s": rate(total, many_s),
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
                a != j or b != j for a, b, j in zip(one[:n], many[:n], judgments, strict=True)
            ),
        }
    scaling = []
    for size in sizes:
        batch = _cycle(pairs, size)
        for w in workers:
            grid = _interleaved(contenders, {c.name: batch for c in contenders}, w, n, repeat)
            for c in contenders:
                seconds = grid[c.name][1]
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
                    tag,
                    f"scaling {c.name}: {size} answers, {w} workers: {seconds:.2f} s "
                    f"({rate(size, seconds)} answers/s)",
                )
    return {"results": results, "ratios": _ratios(results), "scaling": scaling}


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


# The targets (reported, never asserted).
SPEED_TARGET = 15.0  # restem's answers/s at 1 worker, over Math-Verify's, on each data set
SUITE_TARGET = (222, 234)  # agree on at least 222 of Math-Verify's 234 suite cases
FUZZ_TIMEOUT_TARGET = 0.005  # at most 0.5% of the fuzz pairs time out


def _targets(name: str, body: dict[str, Any]) -> dict[str, Any]:
    """One data set's targets: the issue's, as facts of this run."""
    results = body["results"]
    mine = results.get("restem")
    if mine is None or mine["accuracy"] is None:
        return {}
    targets: dict[str, Any] = {"zero_false_positives": mine["false_positives"] == 0}
    if name == "labeled":
        targets["all_agree"] = mine["agree"] == mine["labeled"]
    if name == "suite":
        need = math.ceil(mine["labeled"] * SUITE_TARGET[0] / SUITE_TARGET[1])
        targets[f"agree_at_least_{need}_of_{mine['labeled']}"] = mine["agree"] >= need
    speed = body["ratios"].get("math-verify", {}).get("one_worker")
    if speed is not None:
        targets[f"at_least_{SPEED_TARGET:g}x_math_verify_one_worker"] = speed >= SPEED_TARGET
    return targets


def _fuzz_targets(fuzz: dict[str, Any]) -> dict[str, Any]:
    return {
        "zero_exceptions": fuzz["exceptions"] == 0,
        "zero_late_verdicts": fuzz["late_verdicts"] == 0,
        f"timeouts_at_most_{FUZZ_TIMEOUT_TARGET:.1%}": fuzz["timeouts"]
        <= FUZZ_TIMEOUT_TARGET * fuzz["pairs"],
    }


# --- output -----------------------------------------------------------------------------------


def _dataset_table(body: dict[str, Any]) -> str:
    results, ratios = body["results"], body.get("ratios", {})
    n_workers = next(iter(results.values()))["n_workers"]["workers"] if results else 0
    return markdown_table(
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
                "1" if name == "restem" else shared.times(ratios.get(name, {}).get("one_worker")),
                "1" if name == "restem" else shared.times(ratios.get(name, {}).get("n_workers")),
            ]
            for name, row in results.items()
        ],
    )


def _fuzz_table(fuzz: dict[str, Any]) -> str:
    lat = fuzz["latency_ms"]
    return markdown_table(
        [
            "pairs",
            "seconds",
            "exceptions",
            f"later than {fuzz['time_limit_s']:g} s + {fuzz['late_allowance_s']:g} s",
            "time-outs",
            "p50 ms",
            "p99 ms",
            "max ms",
            "statuses",
        ],
        [
            [
                fuzz["pairs"],
                fuzz["seconds"],
                fuzz["exceptions"],
                fuzz["late_verdicts"],
                f"{fuzz['timeouts']} ({fuzz['timeout_rate']:.2%})",
                lat["p50"],
                lat["p99"],
                lat["max"],
                ", ".join(f"{k} {v:,}" for k, v in fuzz["statuses"].items()),
            ]
        ],
    )


def render_markdown(report: dict[str, Any]) -> str:
    out = [shared.machine_line(report["machine"])]
    for name, body in report.get("datasets", {}).items():
        data = body["data"]
        out += [
            "",
            f"Data set `{name}`: `{data['path_name']}` ({data['rows']} rows, "
            f"{data['labeled']} labelled, {data['labeled_correct']} correct).",
            "",
            _dataset_table(body),
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
            f"Answers/s by batch size (the `{report.get('scaling_data', 'labeled')}` data "
            "cycled) and workers:",
            "",
            markdown_table(
                ["contender", "batch", *(f"{w} worker{'s' if w > 1 else ''}" for w in ws)],
                [[c, size, *(v.get(w) for w in ws)] for (c, size), v in table.items()],
            ),
        ]
    fuzz = report.get("fuzz")
    if fuzz:
        out += [
            "",
            f"Fuzz: {fuzz['pairs']:,} seeded random and hostile pairs (seed {fuzz['seed']}), "
            f"restem's batch API, default settings, one pair per call from {fuzz['streams']} "
            "threads over as many worker processes:",
            "",
            _fuzz_table(fuzz),
        ]
    targets = report.get("targets") or {}
    if targets:
        out += [
            "",
            "Targets: "
            + "; ".join(
                f"{part}: " + ", ".join(f"{k} {'met' if v else 'NOT met'}" for k, v in t.items())
                for part, t in targets.items()
                if t
            ),
        ]
    return "\n".join(out)


def plot(report: dict[str, Any], path: Path) -> Path:
    plt = shared.pyplot()
    datasets, scaling = report.get("datasets", {}), report.get("scaling") or []
    fuzz = report.get("fuzz")
    panels = len(datasets) + (2 if scaling else 0) + (1 if fuzz else 0)
    fig, axes = plt.subplots(1, max(1, panels), figsize=(5.2 * max(1, panels), 4.8), squeeze=False)
    axes = list(axes[0])
    width = 0.38
    for name, body in datasets.items():
        ax = axes.pop(0)
        results = body["results"]
        names = list(results)
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
        ax.set_xticks(
            list(xs),
            [f"{c}\n{results[c]['agree']}/{results[c]['labeled']} agree" for c in names],
        )
        ax.set_yscale("log")
        ax.set_ylabel("answers / s (log)")
        ax.set_title(f"{name}: {body['data']['rows']} answers")
        ax.legend()
    if scaling:
        names = list(dict.fromkeys(s["contender"] for s in scaling))
        by_workers, by_size = axes.pop(0), axes.pop(0)
        biggest = max(s["batch_size"] for s in scaling)
        for c in names:
            pts = sorted(
                (s["workers"], s["answers_per_s"])
                for s in scaling
                if s["contender"] == c and s["batch_size"] == biggest
            )
            by_workers.plot(*zip(*pts), marker="o", label=c)
            one = sorted(
                (s["batch_size"], s["seconds"])
                for s in scaling
                if s["contender"] == c and s["workers"] == 1
            )
            by_size.plot(*zip(*one), marker="o", label=c)
        by_workers.set(
            xlabel="workers",
            ylabel="answers / s (log)",
            yscale="log",
            title=f"scaling with workers, batch {biggest:,}",
        )
        by_workers.set_xticks(sorted({s["workers"] for s in scaling}))
        by_size.set(
            xlabel="batch size (log)",
            ylabel="seconds (log)",
            xscale="log",
            yscale="log",
            title="cost by batch size, 1 worker",
        )
        for a in (by_workers, by_size):
            a.legend()
            a.grid(True, which="both", alpha=0.3)
    if fuzz:
        ax = axes.pop(0)
        hist = fuzz["latency_histogram"]
        ax.bar(range(len(hist)), [h["pairs"] for h in hist])
        ax.set_xticks(range(len(hist)), [h["bucket"] for h in hist], rotation=45, ha="right")
        ax.set_yscale("log")
        ax.set_ylabel("pairs (log)")
        ax.set_title(
            f"fuzz: {fuzz['pairs']:,} pairs, {fuzz['timeouts']} time-outs, "
            f"{fuzz['exceptions']} exceptions"
        )
    m = report["machine"]
    fig.suptitle(
        f"restem bench math — {m['cpu']}, {m['cpus_usable']} CPUs (shared; load "
        f"{m['load_average_1_5_15'][0] if m['load_average_1_5_15'] else '?'}), {m['when']}",
        fontsize=9,
    )
    return shared.save_figure(fig, path)


# --- command line -----------------------------------------------------------------------------


_positive = shared.number_type(int, 1, "a positive integer", "a positive integer")
_seconds = shared.number_type(float, 0, "seconds", "seconds >= 0")


def _parts(text: str) -> list[str]:
    parts = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [p for p in parts if p not in PARTS]
    if not parts or unknown:
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated choice of {', '.join(PARTS)}, got {text!r}"
        )
    return parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--only",
        type=_parts,
        default=list(PARTS),
        help=f"comma-separated parts to run (default: {','.join(PARTS)})",
    )
    parser.add_argument(
        "--data",
        help="the 'labeled' data set: JSONL of response, gold[, label] rows "
        f"(default: $RESTEM_DATA_DIR/{DEFAULT_DATA})",
    )
    parser.add_argument(
        "--suite",
        help="the 'suite' data set: JSONL of gold, response, expected rows "
        f"(default: $RESTEM_DATA_DIR/{DEFAULT_SUITE})",
    )
    parser.add_argument("--response-field", default="response", help="of --data")
    parser.add_argument("--gold-field", default="gold", help="of --data")
    parser.add_argument(
        "--label-field",
        default=None,
        help=f"boolean or 1/0 label of --data (default: the first of {', '.join(LABEL_FIELDS)})",
    )
    parser.add_argument(
        "--limit", type=_positive, default=None, help="use only the first N rows of each data set"
    )
    parser.add_argument(
        "--contenders",
        type=shared.name_list,
        default=list(CONTENDERS),
        help=f"comma-separated (default: {','.join(CONTENDERS)})",
    )
    parser.add_argument(
        "--n-workers",
        type=_positive,
        default=2,
        help="N of the 'N workers' figures, and the fuzz run's parallel streams (default 2)",
    )
    parser.add_argument(
        "--workers", type=int_list, default=[1, 2, 4], help="scaling grid (default 1,2,4)"
    )
    parser.add_argument(
        "--sizes",
        type=int_list,
        default=[100, 1_000],
        help="scaling batch sizes, on the labeled data (default 100,1000: larger ones cost "
        "minutes of Math-Verify on a small machine)",
    )
    parser.add_argument("--no-scaling", action="store_true", help="skip the scaling grid")
    parser.add_argument(
        "--repeat", type=_positive, default=3, help="timed runs per figure; the median is kept"
    )
    parser.add_argument(
        "--min-time",
        type=_seconds,
        default=0.5,
        help="a timed run passes over a data set until it has lasted about this long "
        "(default 0.5 s; 0: one pass)",
    )
    parser.add_argument(
        "--fuzz-pairs", type=_positive, default=10_000, help="fuzz pairs (default 10000)"
    )
    parser.add_argument("--fuzz-seed", type=int, default=0, help="fuzz seed (default 0)")
    shared.add_output_arguments(parser, DEFAULT_OUTPUT)


def _load_datasets(args: argparse.Namespace) -> list[tuple[str, Path, list[Row]]]:
    datasets = []
    if "labeled" in args.only:
        path = data_file(args.data, DEFAULT_DATA)
        rows = load_rows(path, args.response_field, args.gold_field, args.label_field)
        datasets.append(("labeled", path, rows[: args.limit] if args.limit else rows))
    if "suite" in args.only:
        path = data_file(args.suite, DEFAULT_SUITE, "--suite")
        rows = load_rows(path)
        datasets.append(("suite", path, rows[: args.limit] if args.limit else rows))
    return datasets


def main(args: argparse.Namespace) -> int:
    try:
        datasets = _load_datasets(args)
        contenders, skipped = make_contenders(args.contenders) if datasets else ([], {})
    except DataError as exc:
        print(f"restem {TAG}: {exc}", file=sys.stderr)
        return 2
    for name, reason in skipped.items():
        progress(TAG, f"skipping {name}: {reason}")
    if datasets and not contenders:
        print(f"restem {TAG}: no contender can run here", file=sys.stderr)
        return 2
    machine = machine_info()
    progress(
        TAG,
        f"parts {', '.join(args.only)}; contenders {', '.join(c.name for c in contenders)}; "
        f"{machine['cpus_usable']} CPUs, load {machine['load_average_1_5_15']}",
    )
    report: dict[str, Any] = {
        "benchmark": "math",
        "machine": machine,
        "parts": list(args.only),
        "versions": {
            "restem": version_of("restem"),
            "math-verify": version_of("math-verify"),
            "sympy": version_of("sympy"),
        },
        "notes": (
            "Contenders ran one after another in one process on a shared machine; compare "
            "them by the ratios of one run. Their timed runs are interleaved (one run of each "
            "contender per round, the order reversed every other round), so that they share the "
            "machine's load. Each contender first makes one untimed pass over "
            "the data (imports, parser set-up); every timed run starts with the contenders' "
            "input caches emptied, and so does every restart of cycled data, since in training "
            "every response is new. A timed run passes over the data until it has lasted about "
            "min_time_s. Process-pool start-up of the peers is not timed; restem's batch calls "
            "include their own worker start-up, as its users pay it. Timings are medians of "
            "the repeats. Math-Verify parses a gold that has no LaTeX delimiter or box inside "
            "$...$, as its README's examples do; otherwise gold and response as given."
        ),
        "min_time_s": args.min_time,
        "skipped": skipped,
        "datasets": {},
        "scaling": [],
        "targets": {},
    }
    for name, path, rows in datasets:
        tag = f"{TAG} {name}"
        progress(tag, f"{len(rows)} rows from {path}")
        body = run_bench(
            rows,
            contenders,
            n_workers=args.n_workers,
            workers=args.workers,
            sizes=[] if args.no_scaling or name != "labeled" else args.sizes,
            repeat=args.repeat,
            min_seconds=args.min_time,
            tag=tag,
        )
        if body["scaling"]:
            report["scaling"] = body["scaling"]
            report["scaling_data"] = name
        report["datasets"][name] = {
            "data": {
                "path_name": path.name,
                "rows": len(rows),
                "labeled": sum(r.label is not None for r in rows),
                "labeled_correct": sum(r.label is True for r in rows),
            },
            "results": body["results"],
            "ratios": body["ratios"],
        }
        report["targets"][name] = _targets(name, report["datasets"][name])
    if "fuzz" in args.only:
        from restem.benchmarks.math_fuzz import run_fuzz

        tag = f"{TAG} fuzz"
        progress(tag, f"{args.fuzz_pairs} pairs, seed {args.fuzz_seed}, {args.n_workers} streams")
        report["fuzz"] = run_fuzz(
            args.fuzz_pairs,
            args.fuzz_seed,
            streams=args.n_workers,
            on_progress=lambda done, s: progress(tag, f"{done} pairs in {s:.1f} s"),
        )
        report["targets"]["fuzz"] = _fuzz_targets(report["fuzz"])
    shared.finish(TAG, report, args.output, None if args.no_plot else plot, render_markdown)
    return 0


if __name__ == "__main__":
    raise SystemExit(shared.standalone("math_bench", __doc__, add_arguments, main))
