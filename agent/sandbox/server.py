"""The control server that runs inside a sandbox Space: shell commands and file edits over HTTP.

It is uploaded into the Space with its two helpers (``remote_shell.py``, ``remote_files.py``)
and started with a bare ``python3``, so all three use the standard library only. Every
route except ``GET /api/health`` needs ``X-Sandbox-Authorization: Bearer <token>``; the
``Authorization`` header is left to the Space edge, which checks the HF token of private
Spaces. The server refuses to start without a token: an open one would hand a shell, and
whatever secrets the Space holds, to anyone who can reach it.

Routes take and return JSON (errors are ``{"error": sentence, "code": word}``):
``POST /api/bash``, ``/api/kill``, ``/api/read``, ``/api/write``, ``/api/edit``.
Run ``python3 server.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import signal
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable
from urllib.parse import urlsplit

if __package__:
    from agent.sandbox.remote_files import Refusal, edit_file, read_file, write_file
    from agent.sandbox.remote_shell import TOKEN_ENV, CommandRunner
else:  # inside the Space the server's files sit side by side and run as plain scripts
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also under python -I
    from remote_files import Refusal, edit_file, read_file, write_file
    from remote_shell import TOKEN_ENV, CommandRunner

AUTH_HEADER = "X-Sandbox-Authorization"
#: on every answer, so a client can tell our 401 from the Space edge's
SERVER_HEADER = "X-Sandbox-Server"
MIN_TOKEN_CHARS = 16
MAX_BODY_BYTES = 64 * 1024 * 1024
#: the files that make up the server, uploaded together into the Space
SOURCE_FILES = ("server.py", "remote_shell.py", "remote_files.py")


class SandboxApp:
    """The routes, independent of HTTP so they read as plain functions of a JSON body."""

    def __init__(self, token: str, workdir: str, spill_dir: str | None = None) -> None:
        self._token = token.encode()
        self.workdir = os.path.realpath(workdir)
        self.commands = CommandRunner(self.workdir, spill_dir)
        self.routes: dict[str, Callable[[dict], dict]] = {
            "bash": self.commands.bash,
            "kill": self.commands.kill,
            "read": lambda body: read_file(body, self.workdir),
            "write": lambda body: write_file(body, self.workdir),
            "edit": lambda body: edit_file(body, self.workdir),
        }

    def authorized(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return False
        return hmac.compare_digest(value.strip().encode(), self._token)

    def health(self) -> dict:
        return {"status": "ok", "workdir": self.workdir}

    def kill_all(self) -> None:
        self.commands.kill({})


class _Handler(BaseHTTPRequestHandler):
    server_version = "mlintern-sandbox/1"
    protocol_version = "HTTP/1.1"
    server: SandboxHTTPServer

    def do_GET(self) -> None:  # noqa: N802
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def _route(self, method: str) -> None:
        app = self.server.app
        path = urlsplit(self.path).path.rstrip("/")
        name = path[len("/api/"):] if path.startswith("/api/") else ""
        try:
            if method == "GET" and name == "health":
                return self._reply(200, app.health())
            if name not in app.routes:
                raise Refusal(404, f"no route {method} {path}; the routes are GET /api/health and POST "
                                   + ", ".join(f"/api/{r}" for r in app.routes), "no_route")
            if method != "POST":
                raise Refusal(405, f"{path} takes POST with a JSON body.", "method")
            if not app.authorized(self.headers.get(AUTH_HEADER)):
                raise Refusal(401, f"missing or wrong sandbox token: send '{AUTH_HEADER}: Bearer <token>'.",
                              "unauthorized")
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise Refusal(413, f"the request body is over {MAX_BODY_BYTES >> 20} MB.", "too_large")
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
            except ValueError:
                raise Refusal(400, "the body is not valid JSON.") from None
            if not isinstance(body, dict):
                raise Refusal(400, "the body must be a JSON object.")
            self._reply(200, app.routes[name](body))
        except Refusal as refusal:
            if refusal.status in (401, 404, 405, 413):
                self.close_connection = True  # the body was never read, so the stream is out of step
            self._reply(refusal.status, {"error": refusal.message, "code": refusal.code})
        except Exception as exc:  # one broken request must not take the server down
            self._reply(500, {"error": f"internal error: {type(exc).__name__}: {exc}", "code": "internal"})

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header(SERVER_HEADER, "1")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        # only the request line is logged, never a header, so no token reaches the log
        if not self.server.quiet:
            sys.stderr.write(f"{self.log_date_time_string()} {format % args}\n")


class SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], app: SandboxApp, quiet: bool = False) -> None:
        self.app, self.quiet = app, quiet
        super().__init__(address, _Handler)


def make_server(host: str, port: int, token: str, workdir: str, *, spill_dir: str | None = None,
                quiet: bool = True) -> SandboxHTTPServer:
    """A bound server (not yet serving); ``port=0`` picks a free one (see ``server_address``)."""
    if len(token) < MIN_TOKEN_CHARS:
        raise ValueError(f"the sandbox token must be at least {MIN_TOKEN_CHARS} characters")
    return SandboxHTTPServer((host, port), SandboxApp(token, workdir, spill_dir), quiet=quiet)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Sandbox control server (token from ${TOKEN_ENV}).")
    parser.add_argument("--host", default=os.environ.get("SANDBOX_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("SANDBOX_PORT") or 7860))
    parser.add_argument("--workdir", default=os.environ.get("SANDBOX_WORKDIR") or os.getcwd())
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    # taken out of the environment so the commands we run cannot read it
    token = os.environ.pop(TOKEN_ENV, "").strip()
    if len(token) < MIN_TOKEN_CHARS:
        print(f"sandbox server: refusing to start without {TOKEN_ENV} (a random secret of at least "
              f"{MIN_TOKEN_CHARS} characters); an unauthenticated server would run anyone's commands.",
              file=sys.stderr)
        return 2
    if not os.path.isdir(args.workdir):
        print(f"sandbox server: the workdir {args.workdir} is not a directory.", file=sys.stderr)
        return 2
    server = make_server(args.host, args.port, token, args.workdir, quiet=args.quiet)

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    host, port = server.server_address[:2]
    print(f"sandbox server listening on http://{host}:{port} (workdir {server.app.workdir})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.app.kill_all()  # nothing we started outlives the server
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
