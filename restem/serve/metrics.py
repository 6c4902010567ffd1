"""Counters and latency histograms in the Prometheus text format (no client library needed)."""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["Metrics"]

_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    body = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in pairs
    )
    return "{" + body + "}"


class Metrics:
    """Thread-safe: handlers record from the event loop, verdicts are counted where decided."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: dict[tuple, int] = defaultdict(int)
        self._verdicts: dict[tuple, int] = defaultdict(int)
        self._hist: dict[str, list[int]] = {}
        self._sum: dict[str, float] = defaultdict(float)
        self._count: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.rejected = 0

    def request(self, path: str, code: int, seconds: float) -> None:
        with self._lock:
            self._requests[(("path", path), ("code", str(code)))] += 1
            buckets = self._hist.setdefault(path, [0] * len(_BUCKETS))
            for i, bound in enumerate(_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            self._sum[path] += seconds
            self._count[path] += 1

    def verdicts(self, kind: str, statuses: list[str]) -> None:
        with self._lock:
            for status in statuses:
                self._verdicts[(("kind", kind), ("status", status))] += 1

    def render(self) -> str:
        with self._lock:
            lines = [
                "# HELP restem_requests_total HTTP requests by path and status code.",
                "# TYPE restem_requests_total counter",
            ]
            lines += [f"restem_requests_total{_labels(k)} {v}" for k, v in self._requests.items()]
            lines += [
                "# HELP restem_verdicts_total Verdicts given, by kind and status.",
                "# TYPE restem_verdicts_total counter",
            ]
            lines += [f"restem_verdicts_total{_labels(k)} {v}" for k, v in self._verdicts.items()]
            lines += [
                "# HELP restem_request_seconds Request latency by path.",
                "# TYPE restem_request_seconds histogram",
            ]
            for path, buckets in self._hist.items():
                for bound, n in zip(_BUCKETS, buckets):
                    le = _labels((("path", path), ("le", f"{bound:g}")))
                    lines.append(f"restem_request_seconds_bucket{le} {n}")
                inf = _labels((("path", path), ("le", "+Inf")))
                lines.append(f"restem_request_seconds_bucket{inf} {self._count[path]}")
                lab = _labels((("path", path),))
                lines.append(f"restem_request_seconds_sum{lab} {self._sum[path]:.6f}")
                lines.append(f"restem_request_seconds_count{lab} {self._count[path]}")
            lines += [
                "# HELP restem_in_flight Requests being verified now.",
                "# TYPE restem_in_flight gauge",
                f"restem_in_flight {self.in_flight}",
                "# HELP restem_rejected_total Requests refused because the server was saturated.",
                "# TYPE restem_rejected_total counter",
                f"restem_rejected_total {self.rejected}",
            ]
        return "\n".join(lines) + "\n"
