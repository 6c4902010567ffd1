"""`restem bench ...`: verifier throughput and accuracy next to the peers."""

from __future__ import annotations

import argparse

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    # The bench modules import only the standard library at module level: `restem --help` stays fast.
    from restem.benchmarks import code_bench, executor_bench, math_bench

    parser = commands.add_parser("bench", help="benchmark verifiers against their peers")
    kinds = parser.add_subparsers(dest="bench_kind", metavar="KIND", required=True)

    math = kinds.add_parser(
        "math",
        help="MATH answers: restem vs Math-Verify vs an is_equiv baseline",
        description=math_bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    math_bench.add_arguments(math)
    math.set_defaults(handler=math_bench.main)

    code = kinds.add_parser(
        "code",
        help="code with tests: restem's sandboxes vs docker run vs an unsandboxed runner",
        description=code_bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    code_bench.add_arguments(code)
    code.set_defaults(handler=code_bench.main)

    executor = kinds.add_parser(
        "executor",
        help="the local executor vs the Ray executor: the overhead of going distributed",
        description=executor_bench.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    executor_bench.add_arguments(executor)
    executor.set_defaults(handler=executor_bench.main)
