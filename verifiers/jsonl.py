"""JSONL in and out for the `restem verify` commands: bad input lines named, progress on stderr."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from typing import IO

__all__ = ["Progress", "json_objects", "open_output"]


def json_objects(stream: IO[str], errors: list[str]) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each good line; each bad line adds a message to ``errors``."""
    for line_no, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"line {line_no}: invalid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:  # json.loads recurses: "[[[[...]]]]" a few thousand deep
            errors.append(f"line {line_no}: invalid JSON (nested too deeply)")
            continue
        if not isinstance(row, dict):
            errors.append(f"line {line_no}: expected a JSON object, got {type(row).__name__}")
            continue
        yield line_no, row


class Progress:
    """A one-line progress report on stderr, only when it is a terminal."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.25 and done < self.total):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        print(f"\rverified {done}/{self.total} ({rate:,.0f}/s)", end="", file=sys.stderr)
        if done >= self.total:
            print(file=sys.stderr)


def open_output(path: str) -> IO[str]:
    if path == "-":
        return sys.stdout
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    return open(path, "w", encoding="utf-8")
