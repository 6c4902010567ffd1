"""The `restem` console script: one entry point, a subcommand per job.

Each package contributes its own subcommands through ``add_parser(subparsers)``; those modules
import nothing heavy at module level, so ``restem verify math`` never loads torch or docker.
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    from restem.benchmarks import cli as bench_cli
    from restem.sandbox import cli as sandbox_cli
    from restem.verifiers import cli as verifiers_cli

    parser = argparse.ArgumentParser(
        prog="restem",
        description="Reward verifiers (MATH answers, code with tests) and a ReST-EM self-training loop.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    verifiers_cli.add_parser(commands)
    sandbox_cli.add_parser(commands)
    bench_cli.add_parser(commands)
    _add_train_parser(commands)
    return parser


def _add_train_parser(commands) -> None:
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
    train.add_argument("--iterations", type=int, help="override the number of iterations")
    train.set_defaults(handler=_run_train)


def _run_train(args) -> int:
    from restem.harness.config import ConfigError, load_config
    from restem.harness.loop import RunError, load_run_config, run

    overrides = {"name": args.name, "runs_dir": args.runs_dir, "iterations": args.iterations}
    try:
        if args.resume:
            cfg = load_run_config(args.resume)
            if any(v is not None for v in overrides.values()):
                print(
                    "restem train: --resume takes the run's saved config; no overrides",
                    file=sys.stderr,
                )
                return 2
            resume = True
        elif args.preset == "demo":
            from restem.harness.demo import demo_config

            preset = {"iterations": args.iterations} if args.iterations else {}
            cfg = demo_config(args.runs_dir or "runs", args.name or "demo", **preset)
            resume = (cfg.run_dir / "config.yaml").exists()
        else:
            cfg = load_config(args.config, **overrides)
            resume = False
        run(cfg, resume=resume)
    except (ConfigError, RunError, FileNotFoundError, ValueError) as exc:
        print(f"restem train: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        print("restem: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
