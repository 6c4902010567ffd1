"""Problem files: JSONL, parquet, or a Hugging Face ``datasets`` folder written by ``save_to_disk``.

Every reader gives plain dict rows, so one field mapping (``data.problem_field``, ...) serves all
three. A field name may be a dotted path into nested records (``reward_model.ground_truth`` in
verl's parquet files). Errors name the file, and the row and field where one is at fault.
"""

from __future__ import annotations

from pathlib import Path

from restem.verifiers.jsonl import json_objects

from restem.errors import ProblemError

__all__ = ["MISSING", "file_format", "get_field", "read_rows"]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()  # a field a row does not have (a stored None is a value)


def file_format(path: Path) -> str:
    """jsonl | parquet | datasets, from what is at ``path``."""
    if path.is_dir():
        return "datasets"
    if path.suffix.lower() in (".parquet", ".pq"):
        return "parquet"
    return "jsonl"


def read_rows(path: str | Path) -> list[dict]:
    """All rows of a problem file, as dicts, in file order."""
    path = Path(path)
    if not path.exists():
        raise ProblemError(f"problems file {path} does not exist")
    kind = file_format(path)
    if kind == "parquet":
        return _read_parquet(path)
    if kind == "datasets":
        return _read_datasets(path)
    return _read_jsonl(path)


def get_field(row: dict, name: str):
    """``row[name]``, or the value at a dotted path (``a.b``) in nested records; MISSING if absent.

    A key that itself contains dots is found first, so flat data with such names still works.
    """
    if name in row:
        return row[name]
    value = row
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def _read_jsonl(path: Path) -> list[dict]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(f"cannot read problems file {path}: {exc}") from None
    errors: list[str] = []
    rows = [row for _, row in json_objects(lines, errors)]
    if errors:  # the first bad line names the problem
        raise ProblemError(f"{path}: {errors[0]}")
    return rows


def _read_parquet(path: Path) -> list[dict]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ProblemError(
            f"{path}: reading parquet needs pyarrow (pip install 'restem[harness]')"
        ) from None
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:  # pyarrow raises its own types for a damaged or foreign file
        raise ProblemError(f"cannot read parquet file {path}: {exc}") from None


def _read_datasets(path: Path) -> list[dict]:
    if not ((path / "dataset_info.json").exists() or (path / "dataset_dict.json").exists()):
        raise ProblemError(
            f"{path} is a folder but not a Hugging Face dataset saved with save_to_disk "
            "(no dataset_info.json or dataset_dict.json)"
        )
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise ProblemError(
            f"{path}: reading a datasets folder needs datasets (pip install 'restem[harness]')"
        ) from None
    try:
        dataset = load_from_disk(str(path))
    except Exception as exc:  # datasets raises its own types for a damaged folder
        raise ProblemError(f"cannot load dataset folder {path}: {exc}") from None
    if isinstance(dataset, DatasetDict):
        splits = sorted(dataset)
        if len(splits) != 1:
            raise ProblemError(
                f"{path} holds the splits {', '.join(splits)}: point at one of them "
                f"(e.g. {path / splits[0]})"
            )
        dataset = dataset[splits[0]]
    return dataset.to_list()
