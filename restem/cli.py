"""The `restem` command: one entry module, a subcommand per job.

    restem verify math|code ...   JSONL in, JSONL out
    restem train ...              the ReST-EM loop
    restem bench math|code|executor|serve ...
    restem sandbox build-image
    restem serve ...              the verifiers over HTTP

This module imports the packages (lazily, inside each handler, so ``restem verify math`` never
loads torch or docker); no package imports it. Errors restem raises on purpose (``RestemError``)
become one line on stderr and the exit status their class names (2: the caller's input,
1: infrastructure), in one place: ``main``.

Verify runs: output rows are the input rows plus the verdict fields, in input order, written and
flushed as they are decided (a crash loses nothing already written). A bad line (broken JSON, a
missing or mistyped field, an unusable problem) is reported on stderr with its line number and
left out; the rest is processed. Exit status 0 when the run completed, whatever the verdicts.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any

from restem.errors import ConfigError, RestemError

__all__ = ["build_parser", "main"]


# ---------------------------------------------------------------- argument types


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


# ---------------------------------------------------------------- the parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="restem",
        description="Reward verifiers (MATH answers, code with tests) and a ReST-EM self-training loop.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_verify(commands)
    _add_train(commands)
    _add_bench(commands)
    _add_sandbox(commands)
    _add_serve(commands)
    return parser


def _group(commands, name: str, help: str, dest: str, metavar: str):
    """A subcommand with subcommands of its own (`restem verify math`)."""
    parser = commands.add_parser(name, help=help)
    return parser.add_subparsers(dest=dest, metavar=metavar, required=True)


def _add_io_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="input JSONL file ('-' for stdin)")
    parser.add_argument("--output", required=True, help="output JSONL file ('-' for stdout)")
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
    parser.add_argument("--quiet", action="store_true", help="no progress line, summary only")


def _add_verify(commands) -> None:
    kinds = _group(
        commands, "verify", "verify answers (JSONL in, JSONL out)", "verify_kind", "KIND"
    )

    math = kinds.add_parser(
        "math",
        help="MATH-style answers: symbolic equivalence with a reference answer",
        description="Judge each row's response against its gold answer. "
        "Rows: {response, gold, ...}; output rows add correct, status, extracted, reason.",
    )
    _add_io_arguments(math)
    math.add_argument(
        "--timeout",
        type=positive_float,
        default=3.0,
        help="hard time limit per answer, seconds (default 3)",
    )
    math.add_argument("--response-field", default="response", help="default: response")
    math.add_argument("--gold-field", default="gold", help="default: gold")
    math.set_defaults(handler=lambda args: _verify(args, _MATH))

    code = kinds.add_parser(
        "code",
        help="programs against APPS / HumanEval / MBPP tests, run in the sandbox",
        description="Run each row's solution against its problem's tests in the sandbox. "
        "Rows: {problem, solution, ...}; output rows add correct, status, pass_fraction, "
        "reason, tests. Exit status 1 when the sandbox cannot start.",
    )
    _add_io_arguments(code)
    code.add_argument(
        "--backend",
        choices=("docker", "local", "auto"),
        default="auto",
        help="sandbox backend (default: docker when an engine answers, else local)",
    )
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
    code.set_defaults(handler=lambda args: _verify(args, _CODE))


def _add_train(commands) -> None:
    train = commands.add_parser(
        "train",
        help="run the ReST-EM self-training loop",
        description="Generate -> verify -> filter -> fine-tune, repeated. Writes runs/<name>/; "
        "a killed run continues with --resume.",
    )
    source = train.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", help="a YAML run config (unknown keys are errors)")
    source.add_argument(
        "--preset", choices=["demo"], help="demo: a tiny model built here, no downloads"
    )
    source.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its folder")
    train.add_argument("--name", help="run name (folder under --runs-dir)")
    train.add_argument("--runs-dir", help="where runs are written (default: runs)")
    train.add_argument("--iterations", type=positive_int, help="override the number of iterations")
    train.set_defaults(handler=_train)


def _add_bench(commands) -> None:
    # The bench modules import only the standard library at module level: `restem --help` stays fast.
    from restem.benchmarks import code_bench, executor_bench, math_bench, serve_bench

    kinds = _group(
        commands, "bench", "benchmark verifiers against their peers", "bench_kind", "KIND"
    )
    for name, module, summary in (
        ("math", math_bench, "MATH answers: restem vs Math-Verify vs an is_equiv baseline"),
        ("code", code_bench, "code with tests: restem's sandboxes vs docker run vs unsandboxed"),
        ("executor", executor_bench, "the local executor vs the Ray executor"),
        ("serve", serve_bench, "restem serve under load on loopback vs the in-process API"),
    ):
        sub = kinds.add_parser(
            name,
            help=summary,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(handler=module.main)


def _add_sandbox(commands) -> None:
    actions = _group(commands, "sandbox", "manage the code sandbox", "sandbox_command", "ACTION")
    build = actions.add_parser(
        "build-image",
        help="build the docker sandbox image (offline by default); skipped when current",
        description="Build the sandbox image. Default: offline, from a debootstrap'ed Debian "
        "root file system (root needed the first time). --from-registry: on python:3.11-slim.",
    )
    build.add_argument("--from-registry", action="store_true", help="base on python:3.11-slim")
    build.add_argument("--suite", default="bookworm", help="Debian suite for the offline base")
    build.add_argument("--tag", default=None, help="image tag (default restem-sandbox:latest)")
    build.add_argument("--force", action="store_true", help="rebuild even when current")
    build.set_defaults(handler=_build_image)


def _add_serve(commands) -> None:
    from restem.serve import cli as serve_cli

    serve = commands.add_parser(
        "serve",
        help="the verifiers over HTTP (restem's endpoints, OpenRLHF's /get_reward, "
        "SandboxFusion's /run_code)",
        description=serve_cli.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve_cli.add_arguments(serve)
    serve.set_defaults(handler=serve_cli.main)


# ---------------------------------------------------------------- verify: one runner, two kinds


@dataclass(frozen=True)
class _Kind:
    """What differs between `verify math` and `verify code`; the runner is shared."""

    name: str
    noun: str  # what a row is, in the summary
    read_row: Callable[[dict, argparse.Namespace], tuple]  # row -> the item to verify
    start: Callable[[Any, argparse.Namespace], str]  # executor -> where it runs (may raise)
    verify: Callable[[Any, Iterator, argparse.Namespace], Iterator]
    summary: Callable[[collections.Counter], str]


def _text_field(row: dict, name: str) -> str:
    if name not in row:
        raise ValueError(f"missing field {name!r}")
    value = row[name]
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError(f"field {name!r} must be text or a number, got {type(value).__name__}")
    return str(value)


def _math_row(row: dict, args: argparse.Namespace) -> tuple:
    return _text_field(row, args.response_field), _text_field(row, args.gold_field)


def _math_verify(executor, items: Iterator, args: argparse.Namespace) -> Iterator:
    from restem.verifiers import MathSettings

    return executor.verify_math(items, settings=MathSettings(timeout_s=args.timeout))


def _math_summary(counts: collections.Counter) -> str:
    judged = sum(counts.values()) - counts["invalid_gold"]
    accuracy = counts["correct"] / judged if judged else 0.0
    return f"accuracy {accuracy:.4f} ({counts['correct']}/{judged})"


def _code_row(row: dict, args: argparse.Namespace) -> tuple:
    from restem.verifiers.code.problems import as_problem

    for name in (args.problem_field, args.solution_field):
        if name not in row:
            raise ValueError(f"missing field {name!r}")
    solution = row[args.solution_field]
    if not isinstance(solution, str):
        raise ValueError(
            f"field {args.solution_field!r} must be text, got {type(solution).__name__}"
        )
    try:
        problem = as_problem(row[args.problem_field])
    except (RestemError, OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad problem: {exc}") from None
    return problem, solution


def _code_limits(args: argparse.Namespace):
    from restem.verifiers.code.verify import CodeLimits

    return CodeLimits(test_s=args.timeout, total_s=args.total_timeout)


def _code_backend(args: argparse.Namespace) -> str | None:
    return None if args.backend == "auto" else args.backend


def _code_start(executor, args: argparse.Namespace) -> str:
    # Started before the clock (and, under Ray, on each node when its actor first verifies).
    if executor.name != "local":
        return f"{args.backend} sandboxes on the Ray workers"
    try:
        return f"{executor.sandbox(_code_backend(args), _code_limits(args)).name} sandbox"
    except Exception as exc:  # an engine that is down, an image that will not build
        from restem.errors import SandboxUnavailable

        raise SandboxUnavailable(f"cannot start the {args.backend} sandbox: {exc}") from None


def _code_verify(executor, items: Iterator, args: argparse.Namespace) -> Iterator:
    return executor.verify_code(
        items,
        backend=_code_backend(args),
        limits=_code_limits(args),
        all_tests=args.all_tests,
        comparison=args.compare,
    )


def _code_summary(counts: collections.Counter) -> str:
    return f"passed {counts['passed']}/{sum(counts.values())}"


_MATH = _Kind(
    "math", "answers", _math_row, lambda e, a: f"{e.name} executor", _math_verify, _math_summary
)
_CODE = _Kind("code", "programs", _code_row, _code_start, _code_verify, _code_summary)


def _read_rows(stream: IO[str], kind: _Kind, args, errors: list[str]) -> list[tuple[dict, tuple]]:
    from restem.verifiers.jsonl import json_objects

    rows = []
    for line_no, row in json_objects(stream, errors):
        try:
            rows.append((row, kind.read_row(row, args)))
        except ValueError as exc:
            errors.append(f"line {line_no}: {exc}")
    return rows


def _verify(args: argparse.Namespace, kind: _Kind) -> int:
    from restem.verifiers.executor import make_executor
    from restem.verifiers.jsonl import Progress, open_output

    prog = f"restem verify {kind.name}"
    if args.ray_address and args.executor != "ray":
        raise ConfigError("--ray-address needs --executor ray")
    errors: list[str] = []
    try:
        if args.input == "-":
            rows = _read_rows(sys.stdin, kind, args, errors)
        else:
            with open(args.input, encoding="utf-8") as stream:
                rows = _read_rows(stream, kind, args, errors)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {args.input}: {exc}") from None
    for message in errors:
        print(f"{prog}: {args.input}: {message}", file=sys.stderr)
    try:
        out = open_output(args.output)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc}") from None

    counts: collections.Counter[str] = collections.Counter()
    try:
        executor = make_executor(args.executor, workers=args.workers, ray_address=args.ray_address)
        try:
            where = kind.start(executor, args)
            progress = Progress(len(rows), not args.quiet)
            start = time.monotonic()
            verdicts = kind.verify(executor, (item for _, item in rows), args)
            for done, ((row, _), verdict) in enumerate(zip(rows, verdicts), start=1):
                out.write(json.dumps({**row, **verdict.to_dict()}, ensure_ascii=False) + "\n")
                out.flush()
                counts[verdict.status.value] += 1
                progress.update(done)
            elapsed = time.monotonic() - start
        finally:
            executor.close()
    finally:
        if out is not sys.stdout:
            out.close()

    total = sum(counts.values())
    per_status = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
    print(
        f"{prog}: {total} {kind.noun} in {elapsed:.2f} s on the {where} "
        f"({total / max(elapsed, 1e-9):,.1f}/s); {kind.summary(counts)}; "
        f"{per_status or 'no rows'}"
        + (f"; {len(errors)} bad input line(s) skipped" if errors else ""),
        file=sys.stderr,
    )
    return 0


# ---------------------------------------------------------------- train, sandbox


def _train(args: argparse.Namespace) -> int:
    from restem.harness.config import load_config
    from restem.harness.loop import load_run_config, run

    overrides = {"name": args.name, "runs_dir": args.runs_dir, "iterations": args.iterations}
    if args.resume:
        if any(v is not None for v in overrides.values()):
            raise ConfigError("--resume takes the run's saved config; no overrides")
        cfg = load_run_config(args.resume)
        resume = True
    elif args.preset == "demo":
        from restem.harness.demo import demo_config

        preset = {"iterations": args.iterations} if args.iterations else {}
        cfg = demo_config(args.runs_dir or "runs", args.name or "demo", **preset)
        resume = (cfg.run_dir / "config.yaml").exists()
    else:
        try:
            cfg = load_config(args.config, **overrides)
        except FileNotFoundError as exc:
            raise ConfigError(f"no such config file: {exc.filename}") from None
        resume = False
    run(cfg, resume=resume)
    return 0


def _build_image(args: argparse.Namespace) -> int:
    from restem.sandbox.docker.image import IMAGE, build_image

    def log(message: str) -> None:
        print(f"restem sandbox: {message}", file=sys.stderr)

    try:
        build_image(
            tag=args.tag or IMAGE,
            from_registry=args.from_registry,
            suite=args.suite,
            force=args.force,
            log=log,
        )
    except RestemError:
        raise
    except Exception as exc:  # build failures: report, non-zero, no traceback wall
        log(f"build failed: {exc.__class__.__name__}: {exc}")
        return 1
    return 0


# ---------------------------------------------------------------- main


def _prog(args: argparse.Namespace) -> str:
    words = ["restem", args.command]
    for attr in ("verify_kind", "bench_kind", "sandbox_command"):
        if getattr(args, attr, None):
            words.append(getattr(args, attr))
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.handler(args) or 0)
    except RestemError as exc:
        # The one place errors become exit statuses: 2 for the caller's input, 1 otherwise.
        print(f"{_prog(args)}: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print("restem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
