"""`restem sandbox ...` subcommands."""

from __future__ import annotations

import argparse
import sys

__all__ = ["add_parser"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("sandbox", help="manage the code sandbox")
    actions = parser.add_subparsers(dest="sandbox_command", metavar="ACTION", required=True)
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


def _build_image(args: argparse.Namespace) -> int:
    from .docker.engine import SandboxUnavailable
    from .docker.image import IMAGE, build_image

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
    except SandboxUnavailable as exc:
        log(str(exc))
        return 2
    except Exception as exc:  # build failures: report, non-zero, no traceback wall
        log(f"build failed: {exc.__class__.__name__}: {exc}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m restem.sandbox.cli ACTION`: the same subcommands without the `restem` dispatcher."""
    parser = argparse.ArgumentParser(prog="python -m restem.sandbox.cli")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["sandbox", *(sys.argv[1:] if argv is None else argv)])
    return int(args.handler(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
