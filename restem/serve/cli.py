"""`restem serve`: the verifiers over HTTP, on uvicorn.

    restem serve [--host 127.0.0.1] [--port 8000] [--token T | $RESTEM_SERVE_TOKEN] [--workers N]
                 [--executor local|ray] [--ray-address A] [--backend auto|docker|local] ...

Prints ``restem serve: listening on http://HOST:PORT`` on stdout once it accepts requests
(``--port 0`` picks a free port). SIGTERM or Ctrl-C: stop accepting, let in-flight requests finish
(up to --shutdown-grace seconds), close the pools (no container or worker process is left), exit 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import socket
import sys

from restem.serve.config import TOKEN_ENV, ServeSettings

__all__ = ["add_arguments", "main", "settings_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ServeSettings()
    a = parser.add_argument
    a("--host", default=d.host, help="address to bind (default: loopback only)")
    a("--port", type=int, default=d.port, help="port (0: any free port)")
    a(
        "--token",
        default=None,
        help=f"bearer token every request must carry (default: ${TOKEN_ENV}; none if unset)",
    )
    a(
        "--insecure-no-token",
        action="store_true",
        help="allow a non-loopback --host without a token (only behind an authenticating proxy)",
    )
    a("--workers", type=int, default=None, help="verifier processes / sandboxes (Ray: actors)")
    a("--executor", choices=("local", "ray"), default=d.executor, help="where batches run")
    a("--ray-address", default=None, help="Ray cluster address with --executor ray")
    a("--backend", choices=("auto", "docker", "local"), default=d.backend, help="code sandbox")
    a("--max-body-bytes", type=int, default=d.max_body_bytes, help="largest request body")
    a("--max-batch", type=int, default=d.max_batch, help="most rows per request")
    a("--max-in-flight", type=int, default=d.max_in_flight, help="requests verified at once")
    a("--request-timeout", type=float, default=d.request_timeout_s, help="seconds per request")
    a("--math-timeout", type=float, default=d.math_timeout_s, help="seconds per symbolic check")
    a("--code-timeout", type=float, default=d.code_test_s, help="CPU seconds per code test")
    a("--shutdown-grace", type=float, default=d.shutdown_grace_s, help="seconds to drain")
    a("--log-level", default="warning", choices=("critical", "error", "warning", "info", "debug"))


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    return ServeSettings(
        host=args.host,
        port=args.port,
        token=args.token or ServeSettings.env_token(),
        workers=args.workers,
        executor=args.executor,
        ray_address=args.ray_address,
        backend=args.backend,
        max_body_bytes=args.max_body_bytes,
        max_batch=args.max_batch,
        max_in_flight=args.max_in_flight,
        request_timeout_s=args.request_timeout,
        math_timeout_s=args.math_timeout,
        code_test_s=args.code_timeout,
        shutdown_grace_s=args.shutdown_grace,
    )


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it. uvicorn sets it only on sockets it binds itself; without
    # it a response written in two pieces waits ~40 ms for the client's delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def _drained(signum, frame) -> None:
    """The signal uvicorn raises again after it has drained: already handled."""


def main(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from restem.serve.app import create_app
    except ImportError as exc:
        print(
            f"restem serve: {exc.name} is not installed; pip install 'restem[serve]'",
            file=sys.stderr,
        )
        return 2
    if args.ray_address and args.executor != "ray":
        print("restem serve: --ray-address needs --executor ray", file=sys.stderr)
        return 2
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"restem serve: {exc}", file=sys.stderr)
        return 2
    if not _loopback(settings.host) and settings.token is None and not args.insecure_no_token:
        print(
            f"restem serve: refusing to listen on {settings.host} without a token: anyone who "
            f"reaches it could run programs in the sandbox. Set --token or ${TOKEN_ENV}, or put "
            "an authenticating proxy in front and pass --insecure-no-token.",
            file=sys.stderr,
        )
        return 2
    try:
        sock = _bind(settings.host, settings.port)
    except OSError as exc:
        print(
            f"restem serve: cannot listen on {settings.host}:{settings.port}: {exc}",
            file=sys.stderr,
        )
        return 2

    app = create_app(settings)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    class Server(uvicorn.Server):
        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if not self.should_exit:
                print(f"restem serve: listening on http://{shown}:{port}", flush=True)

    config = uvicorn.Config(
        app,
        log_level=args.log_level,
        lifespan="on",
        timeout_graceful_shutdown=int(settings.shutdown_grace_s) or 1,
        # Connections beyond this get 503 from uvicorn itself; requests that do the work are
        # bounded lower, by --max-in-flight.
        limit_concurrency=settings.max_in_flight * 4 + 16,
        access_log=args.log_level in ("info", "debug"),
        server_header=False,
    )
    server = Server(config)
    # uvicorn drains on SIGTERM / SIGINT, then raises the signal again under the handlers it
    # found. Found the default ones, the process would die there, before atexit closes the
    # worker pools; found these, main returns and the interpreter exits normally.
    previous = {sig: signal.signal(sig, _drained) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        print("restem serve: the server did not start (see the error above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # python -m restem.serve.cli
    parser = argparse.ArgumentParser(prog="restem serve", description=__doc__)
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
