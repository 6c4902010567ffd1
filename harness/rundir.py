"""The run directory: everything a run produces, written so that a kill at any moment loses at most
the line being written and a resume redoes no finished work.

```
runs/<name>/config.yaml            the resolved config
runs/<name>/metrics.jsonl          one row per evaluated model (rewritten atomically)
runs/<name>/reward.png             held-out reward per iteration
runs/<name>/iter_<t>/generations.jsonl   E-step samples, appended as generated
runs/<name>/iter_<t>/verdicts.jsonl      one verdict per sample, appended as verified
runs/<name>/iter_<t>/kept.jsonl          the filtered training set (atomic)
runs/<name>/iter_<t>/model/              the M-step checkpoint (renamed into place when complete)
runs/<name>/iter_<t>/eval.json           held-out metrics (atomic)
runs/<name>/baseline/                    SFT on human data, same step count
```
"""

from __future__ import annotations

import json
import os
import signal
from dataclasses import asdict, dataclass
from pathlib import Path

_fault_counts: dict[str, int] = {}


def fault_point(stage: str) -> None:
    """Crash-test hook: with RESTEM_FAULT=<stage>:<n>, the process SIGKILLs itself right after the
    n-th journal write of that stage, exactly as an OOM kill or a lost node would end it."""
    wanted = os.environ.get("RESTEM_FAULT")
    if not wanted:
        return
    _fault_counts[stage] = _fault_counts.get(stage, 0) + 1
    if wanted == f"{stage}:{_fault_counts[stage]}":
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = [
    "SampleRow",
    "VerdictRow",
    "append_jsonl",
    "fault_point",
    "read_json",
    "read_jsonl",
    "write_json_atomic",
    "write_jsonl_atomic",
]


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One E-step sample, as journaled in ``generations.jsonl`` and ``kept.jsonl``."""

    problem_id: str
    sample: int  # its index among the problem's k samples
    completion: str

    @classmethod
    def from_row(cls, row: dict) -> SampleRow:
        return cls(str(row["problem_id"]), int(row["sample"]), str(row["completion"]))

    def to_row(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class VerdictRow:
    """The verdict on one sample, as journaled in ``verdicts.jsonl``."""

    problem_id: str
    sample: int
    correct: bool
    status: str  # the verifier's status value ("correct", "wrong_answer", "timeout", ...)
    reason: str

    @classmethod
    def from_row(cls, row: dict) -> VerdictRow:
        return cls(
            str(row["problem_id"]),
            int(row["sample"]),
            bool(row["correct"]),
            str(row["status"]),
            str(row.get("reason", "")),
        )

    def to_row(self) -> dict:
        return asdict(self)


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append rows and fsync: what returns is on disk."""
    if not rows:
        return
    with open(path, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: Path) -> list[dict]:
    """Rows of a journal; a torn last line (killed mid-write) is dropped and cut from the file."""
    if not path.exists():
        return []
    rows = []
    good_bytes = 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                rows.append(json.loads(raw))
            except json.JSONDecodeError:
                break
            good_bytes += len(raw)
    if good_bytes != path.stat().st_size:
        with open(path, "r+b") as f:
            f.truncate(good_bytes)
    return rows


def write_json_atomic(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_jsonl_atomic(path: Path, rows: list[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None
