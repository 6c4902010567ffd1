"""`restem verify code`: JSONL of (problem, solution) -> JSONL with verdicts.

Rows: `problem` (an object with `input_output` {inputs, outputs, optional fn_name} and optional
`starter_code`, or a HumanEval / MBPP row, or the path of an APPS problem folder) and `solution`
(the program text). Output rows: the input row plus `correct`, `status`, `pass_fraction`,
`reason`, `tests`, in input order, flushed as they are decided. A bad row is reported on stderr
with its line number and left out; the rest run. Exit status: 0 when the run completed, 2 on a
usage error or unreadable input, 1 when the sandbox cannot start.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from typing import IO

from restem.verifiers.cli import (
    add_executor_arguments,
    executor_usage_error,
    open_run,
    positive_float,
)
from restem.verifiers.jsonl import Progress, json_objects

__all__ = ["add_parser"]


def add_parser(kinds: argparse._SubParsersAction) -> None:
    code = kinds.add_parser(
        "code",
        help="programs against APPS / HumanEval / MBPP tests, run in the sandbox",
        description="Run each row's solution against its problem's tests in the sandbox. "
        "Rows: {problem, solution, ...}; output rows add correct, status, pass_fraction, "
        "reason, tests.",
    )
    code.add_argument("--input", required=True, help="input JSONL file ('-' for stdin)")
    code.add_argument("--output", required=True, help="output JSONL file ('-' for stdout)")
    code.add_argument(
        "--backend",
        choices=("docker", "local", "auto"),
        default="auto",
        help="sandbox backend (default: docker when an engine answers, else local)",
    )
    add_executor_arguments(code)
    code.add_argument(
        "--timeout",
        type=positive_float,
        default=4.0,
        help="CPU seconds per test (default 4; the wall-clock limit is 3x + 1 s)",
    )
    code.add_argument(
        "--total-timeout",
        type=positive_float,
        default=60.0,
        help="CPU seconds for all tests of one program (default 60)",
    )
    code.add_argument(
        "--all-tests",
        action="store_true",
        help="run every test (default: stop at the first failure)",
    )
    code.add_argument(
        "--compare",
        choices=("strict", "apps_compat"),
        default="strict",
        help="output comparison (default strict; apps_compat reproduces APPS's lenient checker)",
    )
    code.add_argument("--problem-field", default="problem", help="default: problem")
    code.add_argument("--solution-field", default="solution", help="default: solution")
    code.add_argument("--quiet", action="store_true", help="no progress line, summary only")
    code.set_defaults(handler=run_code)


def _read_rows(stream: IO[str], args: argparse.Namespace, errors: list[str]) -> list[tuple]:
    from restem.verifiers.code.problems import ProblemError, as_problem

    rows = []
    for line_no, row in json_objects(stream, errors):
        missing = [f for f in (args.problem_field, args.solution_field) if f not in row]
        if missing:
            errors.append(f"line {line_no}: missing field {missing[0]!r}")
            continue
        solution = row[args.solution_field]
        if not isinstance(solution, str):
            errors.append(
                f"line {line_no}: field {args.solution_field!r} must be text, "
                f"got {type(solution).__name__}"
            )
            continue
        try:
            problem = as_problem(row[args.problem_field])
        except (ProblemError, OSError, UnicodeDecodeError) as exc:
            errors.append(f"line {line_no}: bad problem: {exc}")
            continue
        rows.append((row, problem, solution))
    return rows


def run_code(args: argparse.Namespace) -> int:
    from restem.verifiers.code.verify import CodeLimits

    if executor_usage_error(args, "restem verify code"):
        return 2
    errors: list[str] = []
    try:
        if args.input == "-":
            rows = _read_rows(sys.stdin, args, errors)
        else:
            with open(args.input, encoding="utf-8") as stream:
                rows = _read_rows(stream, args, errors)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"restem verify code: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    for message in errors:
        print(f"restem verify code: {args.input}: {message}", file=sys.stderr)

    limits = CodeLimits(test_s=args.timeout, total_s=args.total_timeout)
    backend = None if args.backend == "auto" else args.backend
    opened = open_run(args, "restem verify code")
    if isinstance(opened, int):
        return opened
    out, executor = opened
    try:
        # Started before the clock (and, under Ray, on each node when its actor first verifies).
        where = (
            f"{executor.sandbox(backend, limits).name} sandbox"
            if executor.name == "local"
            else (f"{args.backend} sandboxes on the Ray workers")
        )
    except Exception as exc:  # an engine that is down, an image that will not build
        executor.close()
        if out is not sys.stdout:
            out.close()
        print(
            f"restem verify code: cannot start the {args.backend} sandbox: {exc}", file=sys.stderr
        )
        return 1
    counts: collections.Counter[str] = collections.Counter()
    progress = Progress(len(rows), not args.quiet)
    start = time.monotonic()
    try:
        verdicts = executor.verify_code(
            ((problem, solution) for _, problem, solution in rows),
            backend=backend,
            limits=limits,
            all_tests=args.all_tests,
            comparison=args.compare,
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
    per_status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(
        f"restem verify code: {total} programs in {elapsed:.2f} s on the {where} "
        f"({total / max(elapsed, 1e-9):,.1f}/s); passed {counts['passed']}/{total}; "
        f"{per_status or 'no rows'}"
        + (f"; {len(errors)} bad input line(s) skipped" if errors else ""),
        file=sys.stderr,
    )
    return 0
