"""What every benchmark shares: the machine it ran on, latency percentiles, progress on stderr,
markdown tables, JSON results and PNG plots (matplotlib with the Agg backend, when installed)."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from restem.errors import RestemError

__all__ = [
    "RESULTS_DIR",
    "DataError",
    "add_counts",
    "add_output_arguments",
    "count",
    "data_file",
    "finish",
    "int_list",
    "machine_info",
    "machine_line",
    "markdown_table",
    "name_list",
    "number_type",
    "percentile",
    "plot_available",
    "progress",
    "pyplot",
    "rate",
    "ratio",
    "save_figure",
    "standalone",
    "times",
    "version_of",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"
DATA_ENV = "RESTEM_DATA_DIR"


class DataError(RestemError, ValueError):
    """Bad benchmark input (a missing data file, a malformed row): the message says what to fix."""

    exit_status = 2


def data_file(explicit: str | os.PathLike | None, relative: str, option: str = "--data") -> Path:
    """``explicit`` if given, else ``$RESTEM_DATA_DIR/relative``; it must exist."""
    if explicit is not None:
        path = Path(explicit)
        if not path.exists():
            raise DataError(f"data not found: {path} (given by {option})")
        return path
    base = os.environ.get(DATA_ENV)
    if not base:
        raise DataError(
            f"no data: set {DATA_ENV} to the shared data folder (it must hold {relative}) "
            f"or pass {option} PATH"
        )
    path = Path(base) / relative
    if not path.exists():
        raise DataError(
            f"data not found: {path} ({DATA_ENV}={base}; expected {relative} inside it); "
            f"set {DATA_ENV} to the shared data folder or pass {option} PATH"
        )
    return path


def version_of(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def machine_info() -> dict[str, Any]:
    """Where the numbers came from. The load average says how busy the machine was at the start
    (other jobs share it): compare contenders of one run by their ratios, not across runs."""
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_1_5_15": load,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else float("inf")


def ratio(a: float | None, b: float | None) -> float | None:
    if not a or not b or math.isinf(a) or math.isinf(b):
        return None
    return round(a / b, 2)


def progress(tag: str, message: str) -> None:
    print(f"[{tag}] {message}", file=sys.stderr, flush=True)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}" if abs(value) >= 0.1 else f"{value:.3g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def plot_available() -> str | None:
    """None when matplotlib can draw here, else why not."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot
    except Exception as exc:  # ImportError, or a broken install
        return f"matplotlib unavailable ({type(exc).__name__}: {exc}); install restem[bench]"
    return None


def int_list(text: str) -> list[int]:
    """argparse type: comma-separated positive integers ("1,2,4")."""
    import argparse

    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def number_type(
    convert: Callable[[str], Any], minimum: float, what: str, at_least: str
) -> Callable[[str], Any]:
    """argparse type: ``convert(text)``, at least ``minimum`` (NaN refused); the messages say
    "expected {what}" for text that does not convert, "expected {at_least}" for a smaller value."""
    import argparse

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"expected {at_least}, got {text!r}")
        return value

    return parse


count = number_type(int, 0, "an integer", "0 or more")


def name_list(text: str) -> list[str]:
    """argparse type: comma-separated names, blanks dropped."""
    return [x.strip() for x in text.split(",") if x.strip()]


def add_counts(parser: Any, *options: tuple[str, int, str]) -> None:
    """``--option N`` arguments of type `count`, given as (flag, default, help)."""
    for flag, default, help_text in options:
        parser.add_argument(flag, type=count, default=default, help=help_text)


def add_output_arguments(parser: Any, default: Path) -> None:
    """``--output`` (the result JSON, the PNG next to it) and ``--no-plot``."""
    parser.add_argument(
        "--output",
        type=Path,
        default=default,
        help=f"result JSON; the PNG goes next to it (default: benchmarks/results/{default.name})",
    )
    parser.add_argument("--no-plot", action="store_true", help="write no PNG")


def times(value: float | None) -> str | None:
    """A ratio as a table cell: "1.23x"."""
    return None if value is None else f"{value:.2f}x"


def machine_line(machine: dict[str, Any]) -> str:
    """The first line of a markdown report: where and when it ran."""
    m = machine
    return (
        f"Machine: {m['cpu']}, {m['cpus_usable']} usable CPUs, Python {m['python']}, load "
        f"average {m['load_average_1_5_15']} at the start; {m['when']}."
    )


def pyplot() -> Any:
    """matplotlib.pyplot with the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Lay out, write as PNG, and close ``fig``."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def finish(
    tag: str,
    report: dict[str, Any],
    output: Path,
    plot: Callable[[dict[str, Any], Path], Path] | None,
    render: Callable[[dict[str, Any]], str],
) -> None:
    """Note the load at the end, write the JSON, the PNG next to it (``plot`` None: none), and
    print the markdown."""
    report["machine"]["load_average_1_5_15_at_end"] = machine_info()["load_average_1_5_15"]
    write_json(output, report)
    progress(tag, f"results written to {output}")
    if plot is not None:
        why_not = plot_available()
        if why_not:
            progress(tag, f"no plot: {why_not}")
        else:
            progress(tag, f"plot written to {plot(report, output.with_suffix('.png'))}")
    print(render(report))


def standalone(
    module: str,
    doc: str | None,
    add_arguments: Callable[[Any], None],
    main: Callable[[Any], int],
    argv: list[str] | None = None,
    **parser_options: Any,
) -> int:
    """``python -m restem.benchmarks.<module>``: the bench's parser and main, without restem's CLI."""
    import argparse

    parser = argparse.ArgumentParser(
        prog=f"python -m restem.benchmarks.{module}", description=doc, **parser_options
    )
    add_arguments(parser)
    return main(parser.parse_args(argv))
