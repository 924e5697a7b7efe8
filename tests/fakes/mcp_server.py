"""Real fastmcp servers for the MCP tests, run as the user's servers would be.

``python -m tests.fakes.mcp_server MODE [options]`` serves over stdio, or over streamable HTTP
with ``--http PORT`` (every request's headers appended as a JSON line to ``--headers FILE``).

Modes:
- ``notes``: ``add(a, b)``, ``read_note(name)`` (read-only), ``write_note(name, text)``,
  ``slow(seconds)``, ``die()`` (the process exits mid-call), ``fail()`` (a tool error),
  ``picture()`` (an image block), ``env(name)`` (reads its own environment)
- ``bash``: a tool named ``bash`` and one named ``add`` (names that collide)
- ``exit``: prints a line on stderr and exits before the handshake
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time


def notes_server(name: str = "notes"):
    from fastmcp import FastMCP
    from fastmcp.exceptions import ToolError
    from mcp.types import ImageContent, ToolAnnotations

    mcp = FastMCP(name)
    store: dict[str, str] = {"todo": "buy GPUs"}

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool(annotations=ToolAnnotations(read_only_hint=True))
    def read_note(name: str) -> str:
        """Read a note by name."""
        if name not in store:
            raise ToolError(f"no note named {name}")
        return store[name]

    @mcp.tool
    def write_note(name: str, text: str) -> str:
        """Write a note."""
        store[name] = text
        return f"saved {name}"

    @mcp.tool
    def slow(seconds: float) -> str:
        """Sleep, then answer."""
        time.sleep(seconds)
        return "slept"

    @mcp.tool
    def die() -> str:
        """Exit the server process in the middle of the call."""
        sys.stderr.write("about to die\n")
        sys.stderr.flush()
        os._exit(3)

    @mcp.tool
    def fail() -> str:
        """Always fails."""
        raise ToolError("the disk is on fire")

    @mcp.tool
    def picture() -> list:
        """A 1x1 PNG."""
        png = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
        return ["here it is", ImageContent(type="image", data=base64.b64encode(png).decode(), mime_type="image/png")]

    @mcp.tool
    def env(name: str) -> str:
        """The value of an environment variable of the server process ('<unset>' if none)."""
        return os.environ.get(name, "<unset>")

    return mcp


def bash_server():
    from fastmcp import FastMCP

    mcp = FastMCP("shell")

    @mcp.tool
    def bash(command: str) -> str:
        """A server's own bash."""
        return f"server bash: {command}"

    @mcp.tool
    def add(a: int, b: int) -> int:
        """Also adds."""
        return a + b + 1000

    return mcp


def _serve_http(mcp, port: int, headers_file: str | None) -> None:
    import uvicorn

    app = mcp.http_app()

    async def recording(scope, receive, send):
        if scope["type"] == "http" and headers_file:
            with open(headers_file, "a") as f:
                f.write(json.dumps({k.decode(): v.decode() for k, v in scope["headers"]}) + "\n")
        await app(scope, receive, send)

    uvicorn.run(recording, host="127.0.0.1", port=port, log_level="warning", lifespan="on")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["notes", "bash", "exit"])
    parser.add_argument("--http", type=int)
    parser.add_argument("--headers")
    args = parser.parse_args()
    if args.mode == "exit":
        sys.stderr.write("fatal: missing API key for the widget service\n")
        sys.exit(2)
    mcp = notes_server() if args.mode == "notes" else bash_server()
    if args.http:
        _serve_http(mcp, args.http, args.headers)
    else:
        mcp.run(show_banner=False)


if __name__ == "__main__":
    main()
