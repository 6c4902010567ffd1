"""`restem verify ...`: JSONL in, JSONL out.

Output rows are the input rows plus the verdict fields, in input order, written and flushed as
they are decided (a crash loses nothing already written). A bad line (broken JSON, a missing or
non-text field) is reported on stderr with its line number and left out; the rest is processed.
The exit status is 0 when the run completed, whatever the verdicts, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Iterator
from typing import IO

from restem.verifiers.jsonl import Progress, json_objects, open_output

__all__ = [
    "add_executor_arguments",
    "add_parser",
    "executor_usage_error",
    "open_executor",
    "open_run",
]


def add_parser(commands: argparse._SubParsersAction) -> None:
    verify = commands.add_parser("verify", help="verify answers (JSONL in, JSONL out)")
    kinds = verify.add_subparsers(dest="verify_kind", metavar="KIND", required=True)

    math = kinds.add_parser(
        "math",
        help="MATH-style answers: symbolic equivalence with a reference answer",
        description="Judge each row's response against its gold answer. "
        "Rows: {response, gold, ...}; output rows add correct, status, extracted, reason.",
    )
    math.add_argument("--input", required=True, help="input JSONL file ('-' for stdin)")
    math.add_argument("--output", required=True, help="output JSONL file ('-' for stdout)")
    add_executor_arguments(math)
    math.add_argument(
        "--timeout",
        type=positive_float,
        default=3.0,
        help="hard time limit per answer, seconds (default 3)",
    )
    math.add_argument("--response-field", default="response", help="default: response")
    math.add_argument("--gold-field", default="gold", help="default: gold")
    math.add_argument("--quiet", action="store_true", help="no progress line, summary only")
    math.set_defaults(handler=run_math)

    from restem.verifiers.code import cli as code_cli

    code_cli.add_parser(kinds)


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--executor",
        choices=("local", "ray"),
        default="local",
        help="where verification runs: local process pool (default) or a Ray cluster",
    )
    parser.add_argument(
        "--ray-address",
        default=None,
        metavar="ADDR",
        help="Ray cluster to join: 'auto' (the one this node is in), host:port or "
        "ray://host:10001 (default: start Ray on this machine)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help="local: worker processes (default: CPUs); ray: verifier actors, each with its own "
        "pool on its node (default: the cluster's CPUs)",
    )


def executor_usage_error(args: argparse.Namespace, prog: str) -> bool:
    """Say so (and return True) when the executor options contradict each other."""
    if args.ray_address and args.executor != "ray":
        print(f"{prog}: --ray-address needs --executor ray", file=sys.stderr)
        return True
    return False


def open_executor(args: argparse.Namespace, prog: str):
    """The executor the arguments ask for, or None after saying on stderr why it cannot start."""
    from restem.verifiers.executor import ExecutorError, make_executor

    try:
        return make_executor(args.executor, workers=args.workers, ray_address=args.ray_address)
    except ExecutorError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return None


def open_run(args: argparse.Namespace, prog: str):
    """The output stream and the executor for a verify run, or the exit status after saying on
    stderr why not (2: the output cannot be written; 1: the executor cannot start)."""
    try:
        out = open_output(args.output)
    except OSError as exc:
        print(f"{prog}: cannot write {args.output}: {exc}", file=sys.stderr)
        return 2
    executor = open_executor(args, prog)
    if executor is None:
        if out is not sys.stdout:
            out.close()
        return 1
    return out, executor


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _field(row: dict, name: str, line_no: int) -> str:
    if name not in row:
        raise ValueError(f"line {line_no}: missing field {name!r}")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(
            f"line {line_no}: field {name!r} must be text or a number, got {type(value).__name__}"
        )
    return str(value)


def _read_rows(
    stream: IO[str], response_field: str, gold_field: str, errors: list[str]
) -> list[tuple[dict, str, str]]:
    rows = []
    for line_no, row in json_objects(stream, errors):
        try:
            rows.append(
                (row, _field(row, response_field, line_no), _field(row, gold_field, line_no))
            )
        except ValueError as exc:
            errors.append(str(exc))
    return rows


def run_math(args: argparse.Namespace) -> int:
    from restem.verifiers import MathSettings

    if executor_usage_error(args, "restem verify math"):
        return 2
    errors: list[str] = []
    try:
        if args.input == "-":
            rows = _read_rows(sys.stdin, args.response_field, args.gold_field, errors)
        else:
            with open(args.input, encoding="utf-8") as stream:
                rows = _read_rows(stream, args.response_field, args.gold_field, errors)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"restem verify math: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    for message in errors:
        print(f"restem verify math: {args.input}: {message}", file=sys.stderr)

    settings = MathSettings(timeout_s=args.timeout)
    counts: collections.Counter[str] = collections.Counter()
    opened = open_run(args, "restem verify math")
    if isinstance(opened, int):
        return opened
    out, executor = opened
    progress = Progress(len(rows), not args.quiet)
    start = time.monotonic()
    try:
        verdicts: Iterator = executor.verify_math(
            ((response, gold) for _, response, gold in rows), settings=settings
        )
        for done, ((row, _, _), verdict) in enumerate(zip(rows, verdicts), start=1):
            out.write(json.dumps({**row, **verdict.to_dict()}, ensure_ascii=False) + "\n")
            out.flush()
            counts[verdict.status.value] += 1
            progress.update(done)
    finally:
        executor.close()
        if out is not sys.stdout:
            out.close()
    elapsed = time.monotonic() - start

    total = sum(counts.values())
    judged = total - counts["invalid_gold"]
    accuracy = counts["correct"] / judged if judged else 0.0
    per_status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(
        f"restem verify math: {total} answers in {elapsed:.2f} s "
        f"({total / max(elapsed, 1e-9):,.0f}/s, {executor.name} executor); accuracy {accuracy:.4f} "
        f"({counts['correct']}/{judged}); {per_status or 'no rows'}"
        + (f"; {len(errors)} bad input line(s) skipped" if errors else ""),
        file=sys.stderr,
    )
    return 0
