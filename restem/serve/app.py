"""The `restem serve` ASGI app (Starlette): restem's verifiers over HTTP.

Endpoints
  POST /verify/math   {"rows": [{"response", "gold", ...}, ...]}  -> {"verdicts": [...]}
  POST /verify/code   {"rows": [{"problem": {...}, "solution"}, ...], "all_tests"?, "compare"?}
  POST /get_reward    OpenRLHF: {"query", "prompts", "labels"} -> {"rewards", "scores", "extra_logs"}
  POST /run_code      SandboxFusion, python only
  GET  /healthz       liveness (no token needed)
  GET  /metrics       Prometheus text

Every request is bounded: body size (413), rows per batch (413), requests verified at once (503
with Retry-After, never an unbounded queue) and time (504). Bad input is a 4xx whose JSON body
says what is wrong; untrusted code runs only in the sandbox. Blocking work runs in a bounded
thread pool; its time limits are the verifiers' own, at a process boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from restem.serve import sandbox_fusion
from restem.serve.config import ServeSettings
from restem.serve.metrics import Metrics

__all__ = ["HTTPError", "Service", "create_app"]

logger = logging.getLogger("restem.serve")


class HTTPError(Exception):
    """A request answered with `status` and a JSON body {"error": message, ...extra}."""

    def __init__(self, status: int, message: str, headers: dict | None = None, **extra: Any):
        super().__init__(message)
        self.status, self.message, self.headers, self.extra = status, message, headers, extra

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.message, **self.extra}, self.status, headers=self.headers
        )


class _Cancelled(Exception):
    pass


def _text_field(row: dict, name: str, where: str, numbers: bool = False) -> str:
    if name not in row:
        raise HTTPError(400, f"{where}: missing field {name!r}")
    value = row[name]
    if numbers and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise HTTPError(
            422, f"{where}: field {name!r} must be a string, got {type(value).__name__}"
        )
    return value


def _only(body: dict, allowed: set[str], path: str) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPError(
            400,
            f"{path}: unknown field(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(allowed))}",
        )


class Service:
    """The state behind the app: executor, sandbox for /run_code, limits, metrics."""

    def __init__(self, settings: ServeSettings):
        from restem.verifiers.code.verify import CodeLimits

        self.settings = settings
        self.metrics = Metrics()
        self.code_limits = CodeLimits(test_s=settings.code_test_s, memory_mb=settings.max_memory_mb)
        self.executor: Any = None
        self.run_sandbox: Any = None
        self.sandbox_name = "none"
        self.in_flight = 0
        # Threads for blocking work: one per request that may be in flight, so none waits here.
        self.threads = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="restem-serve")
        self._ray_lock = threading.Lock()  # the Ray executor is driven by one thread at a time
        self._token = settings.token.encode() if settings.token else None

    # ------------------------------------------------------------ life cycle

    def open(self) -> None:
        from restem.verifiers.code.verify import open_sandbox
        from restem.verifiers.executor import make_executor

        s = self.settings
        options = {"ray_address": s.ray_address} if s.executor == "ray" else {}
        self.executor = make_executor(s.executor, workers=s.workers, **options)
        try:
            if s.executor == "local":
                # Opened now, not on the first request: a docker pool takes seconds, and an
                # engine that is down should stop the server at start, not fail requests.
                self.run_sandbox = self.executor.sandbox(s.sandbox_backend, self.code_limits)
            else:
                self.run_sandbox = open_sandbox(s.sandbox_backend, s.workers or 1, self.code_limits)
            self.sandbox_name = self.run_sandbox.name
        except BaseException:
            self.executor.close()
            raise

    def close(self) -> None:
        # In-flight requests have finished (uvicorn waits for them); threads still working for
        # requests that already got a 504 stop at their next verdict.
        self.threads.shutdown(wait=True, cancel_futures=True)
        if self.settings.executor != "local" and self.run_sandbox is not None:
            self.run_sandbox.close()
        if self.executor is not None:
            self.executor.close()
        self.executor = self.run_sandbox = None
        if self.settings.executor == "ray":
            import ray

            # Disconnect; a local instance the server started goes with it (left to interpreter
            # exit, its agent processes outlived the server).
            if ray.is_initialized():
                ray.shutdown()

    # ------------------------------------------------------------ request plumbing

    def authorized(self, request: Request) -> bool:
        if self._token is None:
            return True
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        # Constant time, so the token cannot be found a byte at a time from response times.
        return scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self._token
        )

    async def body(self, request: Request) -> Any:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                raise HTTPError(400, "Content-Length is not a number")
            if int(declared) > limit:
                raise HTTPError(413, f"request body of {declared} bytes is over the {limit} limit")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise HTTPError(413, f"request body is over the {limit}-byte limit")
                chunks.append(chunk)
        except ClientDisconnect as exc:
            raise HTTPError(400, "the client went away mid-body") from exc
        raw = b"".join(chunks)
        if not raw:
            raise HTTPError(400, "empty body: expected a JSON object")
        try:
            text = raw.decode("utf-8")  # JSON over HTTP is UTF-8 (RFC 8259); no guessing
        except UnicodeDecodeError as exc:
            raise HTTPError(400, f"body is not UTF-8: {exc.reason} at byte {exc.start}") from exc
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise HTTPError(
                400, f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from exc
        except RecursionError as exc:
            raise HTTPError(400, "malformed JSON: nested too deeply") from exc

    async def run(self, work: Callable[[threading.Event], Any]) -> Any:
        """`work` in the thread pool under the request time limit. On time out the request is
        answered 504; its thread sees `cancel` set and stops at its next verdict."""
        cancel = threading.Event()
        future = asyncio.get_running_loop().run_in_executor(self.threads, work, cancel)
        # Retrieved even when the request has already been answered 504, so nothing is logged
        # as an exception never retrieved.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            return await asyncio.wait_for(
                asyncio.shield(future), timeout=self.settings.request_timeout_s
            )
        except TimeoutError:
            cancel.set()
            raise HTTPError(
                504,
                f"the request took longer than {self.settings.request_timeout_s:g} s; "
                "send smaller batches",
            ) from None

    def endpoint(self, handler: Callable, *, guarded: bool = True, sandbox_fusion: bool = False):
        async def serve(request: Request) -> Response:
            start = time.monotonic()
            path = request.url.path
            try:
                response = await self._serve(request, handler, guarded)
            except HTTPError as exc:
                response = exc.response()
                if sandbox_fusion:  # its clients read status / message
                    response = JSONResponse(
                        {"status": "SandboxError", "message": exc.message, "error": exc.message},
                        exc.status,
                        headers=exc.headers,
                    )
            except Exception as exc:  # our bug or a broken sandbox: a 500 that says which
                logger.exception("restem serve: %s failed", path)
                response = JSONResponse(
                    {"error": f"internal error: {type(exc).__name__}: {exc}"[:2000]}, 500
                )
            self.metrics.request(path, response.status_code, time.monotonic() - start)
            return response

        return serve

    async def _serve(self, request: Request, handler: Callable, guarded: bool) -> Response:
        if guarded and not self.authorized(request):
            raise HTTPError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not guarded:
            return await handler(request)
        if self.in_flight >= self.settings.max_in_flight:
            self.metrics.rejected += 1
            raise HTTPError(
                503,
                f"busy: {self.in_flight} requests in flight (limit "
                f"{self.settings.max_in_flight}); retry shortly",
                headers={"Retry-After": "1"},
            )
        self.in_flight += 1
        self.metrics.in_flight = self.in_flight
        try:
            return await handler(request)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight = self.in_flight

    # ------------------------------------------------------------ verification in threads

    def _consume(self, verdicts, cancel: threading.Event, kind: str) -> list:
        out = []
        lock = self._ray_lock if self.settings.executor == "ray" else contextlib.nullcontext()
        with lock:
            try:
                for verdict in verdicts:
                    out.append(verdict)
                    if cancel.is_set():
                        raise _Cancelled
            finally:
                close = getattr(verdicts, "close", None)
                if close is not None:
                    close()
        self.metrics.verdicts(kind, [v.status.value for v in out])
        return out

    def math_verdicts(self, pairs: list[tuple[str, str]], cancel: threading.Event) -> list:
        from restem.verifiers.settings import MathSettings

        settings = MathSettings(timeout_s=self.settings.math_timeout_s)
        return self._consume(self.executor.verify_math(pairs, settings=settings), cancel, "math")

    def code_verdicts(self, items: list, cancel: threading.Event, **options: Any) -> list:
        verdicts = self.executor.verify_code(
            items, backend=self.settings.sandbox_backend, limits=self.code_limits, **options
        )
        return self._consume(verdicts, cancel, "code")

    def rows(self, body: Any, path: str, allowed: set[str]) -> list:
        if not isinstance(body, dict):
            raise HTTPError(422, f"{path}: expected a JSON object, got {type(body).__name__}")
        _only(body, allowed, path)
        rows = body.get("rows")
        if not isinstance(rows, list):
            raise HTTPError(422, f"{path}: 'rows' must be a list of row objects")
        if len(rows) > self.settings.max_batch:
            raise HTTPError(
                413,
                f"{path}: {len(rows)} rows is over the batch limit of {self.settings.max_batch}",
            )
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise HTTPError(422, f"rows[{i}]: expected an object, got {type(row).__name__}")
        return rows


def _routes(service: Service) -> list[Route]:
    s = service.settings

    async def verify_math(request: Request) -> Response:
        rows = service.rows(await service.body(request), "/verify/math", {"rows"})
        pairs = [
            (
                _text_field(row, "response", f"rows[{i}]"),
                _text_field(row, "gold", f"rows[{i}]", numbers=True),
            )
            for i, row in enumerate(rows)
        ]
        verdicts = await service.run(lambda cancel: service.math_verdicts(pairs, cancel))
        return JSONResponse({"verdicts": [v.to_dict() for v in verdicts]})

    async def verify_code(request: Request) -> Response:
        from restem.verifiers.code.judge import Comparison

        body = await service.body(request)
        rows = service.rows(body, "/verify/code", {"rows", "all_tests", "compare"})
        all_tests = body.get("all_tests", False)
        if not isinstance(all_tests, bool):
            raise HTTPError(422, "all_tests must be true or false")
        compare = body.get("compare", "strict")
        choices = [c.value for c in Comparison]
        if compare not in choices:
            raise HTTPError(422, f"compare must be one of {', '.join(choices)}, got {compare!r}")
        items = []
        for i, row in enumerate(rows):
            if "problem" not in row:
                raise HTTPError(400, f"rows[{i}]: missing field 'problem'")
            if not isinstance(row["problem"], dict):
                # A path would name a file on this host: the server takes problems inline only.
                raise HTTPError(
                    422,
                    f"rows[{i}]: 'problem' must be an object (the server does not read paths), "
                    f"got {type(row['problem']).__name__}",
                )
            items.append((row["problem"], _text_field(row, "solution", f"rows[{i}]")))
        verdicts = await service.run(
            lambda cancel: service.code_verdicts(
                items, cancel, all_tests=all_tests, comparison=compare
            )
        )
        return JSONResponse({"verdicts": [v.to_dict() for v in verdicts]})

    async def get_reward(request: Request) -> Response:
        from restem.rewards import judge_many

        body = await service.body(request)
        if not isinstance(body, dict):
            raise HTTPError(422, f"expected a JSON object, got {type(body).__name__}")
        _only(body, {"query", "prompts", "labels"}, "/get_reward")
        query, labels = body.get("query"), body.get("labels")
        if not isinstance(query, list) or not all(isinstance(q, str) for q in query):
            raise HTTPError(422, "'query' must be a list of strings (prompt + response)")
        if not isinstance(labels, list):
            raise HTTPError(422, "'labels' must be a list: gold answers, or tests as JSON objects")
        prompts = body.get("prompts")
        if prompts is None:
            prompts = [""] * len(query)
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise HTTPError(422, "'prompts' must be a list of strings")
        if not (len(query) == len(prompts) == len(labels)):
            raise HTTPError(
                422,
                f"query, prompts and labels differ in length: "
                f"{len(query)}, {len(prompts)}, {len(labels)}",
            )
        if len(query) > s.max_batch:
            raise HTTPError(413, f"{len(query)} queries is over the batch limit of {s.max_batch}")

        def work(cancel: threading.Event) -> dict:
            from restem.verifiers.settings import MathSettings

            lock = service._ray_lock if s.executor == "ray" else contextlib.nullcontext()
            with lock:
                result = judge_many(
                    query,
                    prompts,
                    labels,
                    settings=MathSettings(timeout_s=s.math_timeout_s),
                    backend=s.sandbox_backend,
                    executor=service.executor,
                    code_limits=service.code_limits,
                )
            service.metrics.verdicts("reward", result["statuses"])
            return result

        result = await service.run(work)
        return JSONResponse(result)

    async def run_code(request: Request) -> Response:
        body = await service.body(request)
        try:
            job = sandbox_fusion.parse_request(
                body, max_run_timeout_s=s.max_run_timeout_s, max_memory_mb=s.max_memory_mb
            )
        except sandbox_fusion.RunCodeRequestError as exc:
            raise HTTPError(400, str(exc)) from exc

        def work(cancel: threading.Event):
            result = service.run_sandbox.run(job.code, job.stdin, job.limits)
            service.metrics.verdicts("run_code", [result.status.value])
            return result

        return JSONResponse(sandbox_fusion.to_response(await service.run(work)))

    async def healthz(request: Request) -> Response:
        return JSONResponse(
            {
                "status": "ok",
                "executor": s.executor,
                "sandbox": service.sandbox_name,
                "in_flight": service.in_flight,
            }
        )

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(
            service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def with_auth(request: Request, handler=metrics) -> Response:
        if not service.authorized(request):
            raise HTTPError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        return await handler(request)

    return [
        Route("/verify/math", service.endpoint(verify_math), methods=["POST"]),
        Route("/verify/code", service.endpoint(verify_code), methods=["POST"]),
        Route("/get_reward", service.endpoint(get_reward), methods=["POST"]),
        Route("/run_code", service.endpoint(run_code, sandbox_fusion=True), methods=["POST"]),
        Route("/healthz", service.endpoint(healthz, guarded=False), methods=["GET"]),
        Route("/metrics", service.endpoint(with_auth, guarded=False), methods=["GET"]),
    ]


_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _signal_handlers() -> dict:
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.getsignal(sig) for sig in _SIGNALS}


def _restore_signal_handlers(handlers: dict) -> None:
    for sig, handler in handlers.items():
        if handler is not None:
            signal.signal(sig, handler)


def create_app(settings: ServeSettings, service: Service | None = None) -> Starlette:
    """The ASGI app; its lifespan opens the executor and sandbox and closes them at shutdown."""
    service = service or Service(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        handlers = _signal_handlers()
        await asyncio.to_thread(service.open)
        # ray.init installs its own SIGTERM handler (it aborts the process): put back the
        # server's, so SIGTERM still drains in-flight requests and closes the pools.
        _restore_signal_handlers(handlers)
        try:
            yield
        finally:
            await asyncio.to_thread(service.close)

    async def not_found(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"error": f"no such endpoint: {request.method} {request.url.path}"}, 404
        )

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return JSONResponse(
            {"error": f"{request.method} is not allowed on {request.url.path}"}, 405
        )

    app = Starlette(
        routes=_routes(service),
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_allowed},
    )
    app.state.service = service
    return app
