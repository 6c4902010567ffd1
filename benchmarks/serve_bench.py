"""`restem bench serve`: `restem serve` under a bounded load on loopback, next to the in-process API.

One run, four phases, against a real server process this benchmark starts on 127.0.0.1 (a free
port, a random bearer token) and stops with SIGTERM:

1. **load**: ``--clients`` concurrent HTTP clients send ``--requests`` requests of ``--batch`` rows
   each to /verify/math, then ``--code-requests`` to /verify/code; the same batches then go through the in-process
   API (``verify_math_batch`` / ``verify_code_batch`` on an open sandbox) from as many threads.
   Reported: rows/s, requests/s, p50 / p99 latency per request, 503s (retried after a pause).
2. **bad input**: malformed JSON, wrong types, an oversize body, too many rows, unknown fields,
   a missing token, a path for a problem; each must be a 4xx with a message. Hostile programs
   (fork bomb, memory hog, flood of output, killing the parent, network) are valid requests: each
   must come back 200 with a verdict that is not ``passed``. /healthz must still answer after.
3. **shutdown under load**: a wave of code requests, SIGTERM once they are in flight; every request
   the server accepted must be answered (200), and the server must exit 0.
4. **leaks**: after the exit, no process of the server is left, no container it started (docker),
   and no new entry in the temp folder.

Workloads are built here, no data needed: math rows are the shipped sample answers
(``examples/math_answers.jsonl``) cycled; code rows are small stdin problems (a+b, reverse, sum of
a list) with right and wrong programs. Loads are bounded in count and time (``--max-seconds``).

    restem bench serve [--clients 8] [--requests 500] [--code-requests 25] [--batch 8]
                       [--backend local|docker|auto]
                       [--workers N] [--max-seconds 120] [--output PATH]

Prints markdown tables, writes benchmarks/results/serve.json. Exit 0 when every check held, 1
otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from restem.benchmarks.report import RESULTS_DIR, machine_info, markdown_table, write_json

__all__ = ["ServerProcess", "add_arguments", "code_rows", "load", "main", "math_rows"]

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "math_answers.jsonl"

_PROBLEMS = [
    (
        {"input_output": {"inputs": ["1 2\n", "40 2\n"], "outputs": ["3\n", "42\n"]}},
        "a, b = map(int, input().split())\nprint(a + b)",
        "a, b = map(int, input().split())\nprint(a - b)",
    ),
    (
        {"input_output": {"inputs": ["abc\n", "xy\n"], "outputs": ["cba\n", "yx\n"]}},
        "print(input()[::-1])",
        "print(input())",
    ),
    (
        {"input_output": {"inputs": ["3\n1 2 3\n", "1\n7\n"], "outputs": ["6\n", "7\n"]}},
        "input()\nprint(sum(map(int, input().split())))",
        "input()\nprint(max(map(int, input().split())))",
    ),
]

HOSTILE = {
    "fork bomb": "import os\nwhile True:\n    os.fork()",
    "memory hog": "x = bytearray(1 << 34)",
    "output flood": "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)",
    "kill parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)",
    "network": "import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=2)",
    "busy loop": "while True:\n    pass",
    "sleep": "import time\ntime.sleep(60)",
}


def math_rows(n: int) -> list[dict]:
    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line]
    rows = [{"response": r["response"], "gold": r["gold"]} for r in sample]
    return [rows[i % len(rows)] for i in range(n)]


def code_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        problem, right, wrong = _PROBLEMS[i % len(_PROBLEMS)]
        rows.append({"problem": problem, "solution": wrong if i % 4 == 3 else right})
    return rows


# ---------------------------------------------------------------- the server process


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _pid_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _containers_of(pid: int) -> list[str] | None:
    """Sandbox containers owned by process `pid` (None when no engine answers)."""
    try:
        from restem.sandbox.docker.engine import client
        from restem.sandbox.docker.pool import OWNER_LABEL, ROLE_LABEL

        engine = client(timeout=30)
        try:
            found = engine.containers.list(all=True, filters={"label": ROLE_LABEL})
        finally:
            engine.close()
    except Exception:
        return None
    return [c.short_id for c in found if c.labels.get(OWNER_LABEL, "").endswith(f":{pid}")]


@dataclass
class ServerProcess:
    """`restem serve` as a child process: started, its URL read from its first line."""

    args: list[str]
    token: str | None = field(default_factory=lambda: secrets.token_urlsafe(24))
    proc: subprocess.Popen | None = None
    url: str = ""
    stderr: list[str] = field(default_factory=list)
    pids: list[int] = field(default_factory=list)

    def start(self, env: dict | None = None) -> ServerProcess:
        environment = {**os.environ, **(env or {})}
        environment.pop("RESTEM_SERVE_TOKEN", None)
        if self.token:
            environment["RESTEM_SERVE_TOKEN"] = self.token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "restem.serve.cli", "--port", "0", *self.args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=environment,
        )
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True).start()
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.wait(60)
            raise RuntimeError(f"restem serve did not start: {line!r} {''.join(self.stderr)}")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.url = line.rsplit(" ", 1)[1].strip()
        return self

    @property
    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def snapshot(self) -> None:
        """Remember the server's processes now, to check later that none outlived it."""
        self.pids = sorted(set(self.pids) | set(_descendants(self.proc.pid)))

    def stop(self, timeout: float = 120) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def left_behind(self) -> list[int]:
        """Processes of the server still alive after it exited (none expected)."""
        deadline = time.monotonic() + 10  # a killed worker may take a moment to be reaped
        alive = [p for p in self.pids if _pid_alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.2)
            alive = [p for p in alive if _pid_alive(p)]
        return alive


# ---------------------------------------------------------------- load


@dataclass
class LoadResult:
    latencies: list[float]
    seconds: float
    rows: int
    codes: dict[int, int]
    errors: list[str]

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(q: float) -> float | None:
            if not ordered:
                return None
            return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

        return {
            "requests": len(self.latencies),
            "rows": self.rows,
            "seconds": round(self.seconds, 3),
            "rows_per_s": round(self.rows / self.seconds, 1) if self.seconds else None,
            "requests_per_s": round(len(self.latencies) / self.seconds, 2)
            if self.seconds
            else None,
            "p50_ms": None if pct(0.5) is None else round(pct(0.5) * 1000, 1),
            "p99_ms": None if pct(0.99) is None else round(pct(0.99) * 1000, 1),
            "codes": {str(k): v for k, v in sorted(self.codes.items())},
            "errors": self.errors[:5],
        }


def load(
    url: str,
    path: str,
    bodies: list[dict],
    *,
    clients: int,
    headers: dict,
    max_seconds: float,
    check: Callable[[dict, dict], str | None] | None = None,
) -> LoadResult:
    """POST each body once, `clients` at a time; 503s are retried after Retry-After. Bounded:
    requests not started by `max_seconds` are not sent."""
    import httpx

    latencies: list[float] = []
    codes: dict[int, int] = {}
    errors: list[str] = []
    rows = 0
    queue = list(reversed(bodies))
    deadline = time.monotonic() + max_seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal rows
        while queue and time.monotonic() < deadline:
            body = queue.pop()
            for _attempt in range(20):
                start = time.monotonic()
                try:
                    r = await client.post(path, json=body)
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    break
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                if r.status_code == 503:
                    await asyncio.sleep(float(r.headers.get("retry-after", "1")) / 10)
                    continue
                latencies.append(time.monotonic() - start)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                else:
                    rows += len(body.get("rows", body.get("query", [])))
                    problem = check(body, r.json()) if check else None
                    if problem:
                        errors.append(problem)
                break

    async def run() -> None:
        limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
        async with httpx.AsyncClient(
            base_url=url, headers=headers, timeout=300, limits=limits
        ) as client:
            await asyncio.gather(*(worker(client) for _ in range(clients)))

    start = time.monotonic()
    asyncio.run(run())
    return LoadResult(latencies, time.monotonic() - start, rows, codes, errors)


def in_process(batches: list[list], verify: Callable[[list], list], clients: int) -> LoadResult:
    """The same batches through the Python API from `clients` threads."""
    from concurrent.futures import ThreadPoolExecutor

    latencies: list[float] = []

    def one(batch: list) -> None:
        start = time.monotonic()
        verify(batch)
        latencies.append(time.monotonic() - start)

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, batches))
    rows = sum(len(b) for b in batches)
    return LoadResult(latencies, time.monotonic() - start, rows, {}, [])


# ---------------------------------------------------------------- bad input


def bad_input(server: ServerProcess, max_body: int) -> list[dict]:
    """Each hostile or malformed request and what the server answered."""
    import httpx

    add = _PROBLEMS[0][0]
    cases: list[tuple[str, str, Any, dict | None, str]] = [
        ("malformed JSON", "/verify/math", b'{"rows": [', None, "4xx"),
        ("not UTF-8", "/verify/math", b"\xff\xfe\x00", None, "4xx"),
        ("deeply nested JSON", "/verify/math", b"[" * 50_000 + b"]" * 50_000, None, "4xx"),
        ("wrong type: rows", "/verify/math", {"rows": {"a": 1}}, None, "4xx"),
        (
            "wrong type: gold",
            "/verify/math",
            {"rows": [{"response": "1", "gold": [1]}]},
            None,
            "4xx",
        ),
        ("unknown field", "/verify/math", {"rows": [], "timeout": 99}, None, "4xx"),
        (
            "oversize body",
            "/verify/math",
            {"rows": [{"response": "x" * 4096, "gold": "1"}] * (max_body // 4096 + 8)},
            None,
            "4xx",
        ),
        (
            "too many rows",
            "/verify/math",
            {"rows": [{"response": "1", "gold": "1"}] * 5000},
            None,
            "4xx",
        ),
        (
            "problem as a path",
            "/verify/code",
            {"rows": [{"problem": "/etc", "solution": ""}]},
            None,
            "4xx",
        ),
        ("no token", "/verify/math", {"rows": []}, {}, "4xx"),
        ("wrong token", "/verify/math", {"rows": []}, {"Authorization": "Bearer nope"}, "4xx"),
        ("other language", "/run_code", {"code": "int main(){}", "language": "cpp"}, None, "4xx"),
        ("labels missing", "/get_reward", {"query": ["a"]}, None, "4xx"),
    ]
    for name, program in HOSTILE.items():
        cases.append(
            (
                f"hostile: {name}",
                "/verify/code",
                {"rows": [{"problem": add, "solution": program}]},
                None,
                "verdict",
            )
        )
    out = []
    with httpx.Client(base_url=server.url, timeout=300) as client:
        for name, path, body, headers, expect in cases:
            headers = server.headers if headers is None else headers
            if isinstance(body, bytes):
                r = client.post(
                    path, content=body, headers={**headers, "Content-Type": "application/json"}
                )
            else:
                r = client.post(path, json=body, headers=headers)
            try:
                payload = r.json()
            except ValueError:
                payload = {"error": r.text[:200]}
            if expect == "4xx":
                message = payload.get("error") or payload.get("message") or ""
                ok = 400 <= r.status_code < 500 and bool(message)
            else:
                verdicts = payload.get("verdicts") or [{}]
                message = f"{verdicts[0].get('status')}: {verdicts[0].get('reason', '')}"
                ok = r.status_code == 200 and verdicts[0].get("status") not in (None, "passed")
            out.append({"case": name, "code": r.status_code, "ok": ok, "message": message[:160]})
        health = client.get("/healthz")
        out.append(
            {
                "case": "still serving (/healthz)",
                "code": health.status_code,
                "ok": health.status_code == 200,
                "message": health.text[:160],
            }
        )
    return out


# ---------------------------------------------------------------- shutdown under load


def shutdown_under_load(server: ServerProcess, requests: int) -> dict:
    """`requests` code requests at once; SIGTERM once the server has accepted all of them (each
    is in a handler: counted in /healthz's in_flight). Every accepted request must get its 200;
    the server must exit 0. Size `requests` at most the server's --max-in-flight."""
    import httpx

    slow = {
        "rows": [
            {
                "problem": _PROBLEMS[0][0],
                "solution": "import time\ntime.sleep(2)\n" + _PROBLEMS[0][1],
            }
        ]
    }
    results: list[Any] = [None] * requests

    def post(i: int) -> None:
        try:
            with httpx.Client(base_url=server.url, headers=server.headers, timeout=180) as c:
                results[i] = c.post("/verify/code", json=slow).status_code
        except httpx.HTTPError as exc:
            results[i] = type(exc).__name__

    threads = [threading.Thread(target=post, args=(i,)) for i in range(requests)]
    for t in threads:
        t.start()
    accepted = 0
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as c:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            accepted = c.get("/healthz").json()["in_flight"] + sum(r == 200 for r in results)
            if accepted >= requests:
                break
            time.sleep(0.02)
    server.snapshot()
    server.proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(240)
    exit_status = server.stop()
    return {
        "requests": requests,
        "accepted_before_sigterm": accepted,
        "answered_200": sum(1 for r in results if r == 200),
        "not_answered": sum(1 for r in results if r != 200),
        "outcomes": sorted({str(r) for r in results}),
        "exit_status": exit_status,
    }


# ---------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    a = parser.add_argument
    a("--clients", type=int, default=8, help="concurrent clients (default 8)")
    a("--requests", type=int, default=500, help="math requests (default 500)")
    a("--code-requests", type=int, default=25, help="code requests (default 25)")
    a("--batch", type=int, default=8, help="rows per request (default 8)")
    a("--backend", choices=("auto", "docker", "local"), default="auto", help="code sandbox")
    a("--workers", type=int, default=None, help="server verifier workers (default: CPUs)")
    a("--max-seconds", type=float, default=120.0, help="bound on each load phase")
    a("--output", default=str(RESULTS_DIR / "serve.json"), help="JSON report path")


def _check_math(body: dict, reply: dict) -> str | None:
    if len(reply.get("verdicts", [])) != len(body["rows"]):
        return "verdict count differs from row count"
    return None


def main(args: argparse.Namespace) -> int:
    for name in ("clients", "requests", "code_requests", "batch"):
        if getattr(args, name) < 1:
            print(f"restem bench serve: --{name} must be at least 1", file=sys.stderr)
            return 2
    try:
        import httpx  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        print(
            f"restem bench serve: {exc.name} is missing: pip install '.[serve,trainers]'",
            file=sys.stderr,
        )
        return 2
    from restem.verifiers import verify_code_batch, verify_math_batch
    from restem.verifiers.code.verify import CodeLimits, open_sandbox

    backend = args.backend
    if backend == "auto":
        from restem.sandbox import docker_available

        backend = "docker" if docker_available() else "local"
    workers = args.workers or os.cpu_count() or 1
    server_args = ["--backend", backend, "--workers", str(workers)]
    # The server's own temp folder: what it leaves there is its leak, whatever else runs here.
    server_tmp = tempfile.mkdtemp(prefix="restem_serve_bench_")
    report: dict[str, Any] = {
        "benchmark": "serve",
        "machine": machine_info(),
        "settings": {
            "clients": args.clients,
            "requests": args.requests,
            "code_requests": args.code_requests,
            "batch": args.batch,
            "backend": backend,
            "workers": workers,
        },
    }
    print(
        f"restem bench serve: starting the server ({backend} sandbox, {workers} workers)",
        file=sys.stderr,
    )
    server = ServerProcess(server_args).start(env={"TMPDIR": server_tmp})
    checks: dict[str, bool] = {}
    try:
        math_bodies = [{"rows": math_rows(args.batch)} for _ in range(args.requests)]
        code_bodies = [{"rows": code_rows(args.batch)} for _ in range(args.code_requests)]
        bodies = {"math": math_bodies, "code": code_bodies}
        for kind, some in bodies.items():  # warm-up
            load(
                server.url,
                f"/verify/{kind}",
                some[:2],
                clients=1,
                headers=server.headers,
                max_seconds=60,
            )
        phases = {}
        print("restem bench serve: HTTP load", file=sys.stderr)
        for kind, some in bodies.items():
            phases[f"{kind} http"] = load(
                server.url,
                f"/verify/{kind}",
                some,
                clients=args.clients,
                headers=server.headers,
                max_seconds=args.max_seconds,
                check=_check_math,
            )
        server.snapshot()
        print("restem bench serve: in-process API", file=sys.stderr)
        math_batches = [[(r["response"], r["gold"]) for r in b["rows"]] for b in math_bodies]
        code_batches = [[(r["problem"], r["solution"]) for r in b["rows"]] for b in code_bodies]
        phases["math in-process"] = in_process(
            math_batches, lambda b: verify_math_batch(b, workers=workers), args.clients
        )
        limits = CodeLimits()
        with open_sandbox(backend, workers, limits) as sandbox:
            verify_code_batch(code_batches[0], backend=sandbox, limits=limits)  # warm
            phases["code in-process"] = in_process(
                code_batches,
                lambda b: verify_code_batch(b, backend=sandbox, workers=workers, limits=limits),
                args.clients,
            )
        report["load"] = {k: v.summary() for k, v in phases.items()}
        checks["load: every request answered 200"] = all(
            not v.errors for k, v in phases.items() if "http" in k
        )
        print("restem bench serve: bad input", file=sys.stderr)
        report["bad_input"] = bad_input(server, 8 << 20)
        checks["bad input: 4xx with a message, hostile programs judged"] = all(
            c["ok"] for c in report["bad_input"]
        )
        server.snapshot()
        print("restem bench serve: SIGTERM under load", file=sys.stderr)
        shutdown = shutdown_under_load(server, requests=max(4, args.clients))
        report["shutdown"] = shutdown
        checks["shutdown: accepted requests answered, exit 0"] = (
            shutdown["answered_200"] >= shutdown["accepted_before_sigterm"]
            and shutdown["exit_status"] == 0
        )
    finally:
        if server.proc.poll() is None:
            server.stop()
    left = server.left_behind()
    containers = _containers_of(server.proc.pid) if backend == "docker" else []
    time.sleep(0.5)
    new_tmp = sorted(os.listdir(server_tmp))
    if not new_tmp:
        os.rmdir(server_tmp)
    report["leaks"] = {"processes": left, "containers": containers, "temp_entries": new_tmp}
    checks["leaks: no process, container or temp entry left"] = (
        not left and not containers and not new_tmp
    )
    report["checks"] = checks
    write_json(Path(args.output), report)
    _print(report)
    return 0 if all(checks.values()) else 1


def _print(report: dict) -> None:
    rows = []
    for name, s in report.get("load", {}).items():
        rows.append(
            [
                name,
                s["requests"],
                s["rows"],
                s["rows_per_s"],
                s["requests_per_s"],
                s["p50_ms"],
                s["p99_ms"],
                s["codes"].get("503", 0),
            ]
        )
    print(
        markdown_table(
            ["contender", "requests", "rows", "rows/s", "requests/s", "p50 ms", "p99 ms", "503s"],
            rows,
        )
    )
    print()
    print(
        markdown_table(
            ["bad input", "HTTP", "ok", "message"],
            [[c["case"], c["code"], c["ok"], c["message"]] for c in report.get("bad_input", [])],
        )
    )
    print()
    print(json.dumps({"shutdown": report.get("shutdown"), "leaks": report["leaks"]}, indent=1))
    for name, ok in report["checks"].items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="restem bench serve", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
