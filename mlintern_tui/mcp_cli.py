"""``mlintern mcp list|add|remove|trust``: the MCP servers of the config, edited from the shell.

``add`` and ``remove`` change the user config's ``mcpServers`` (or the project's ``.mcp.json``
with ``--project``), keeping everything else in the file as written. ``list`` shows every
server the app would start here, with what is wrong with an entry; it connects to nothing.
``trust`` agrees to run the servers of this directory's ``.mcp.json`` as the file is now.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO


def _pairs(values: list[str], sep: str, what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, found, rest = value.partition(sep)
        if not found or not key.strip():
            raise SystemExit(f"Error: {what} {value!r} must look like NAME{sep}VALUE")
        out[key.strip()] = rest.strip() if sep == ":" else rest
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlintern mcp", description="The MCP servers the agent connects to.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="every server the app would start in this directory")
    add = sub.add_parser("add", help="add a server: NAME -- COMMAND ARGS… (stdio) or NAME --url URL",
                         usage="mlintern mcp add NAME [options] -- COMMAND [ARGS…]  |  mlintern mcp add NAME --url URL")
    add.add_argument("name")
    add.add_argument("--url", help="a remote server (streamable HTTP, or SSE with --transport sse)")
    add.add_argument("--transport", choices=("http", "streamable-http", "sse"), default=None)
    add.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="a request header (remote)")
    add.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                     help="an environment variable for the server (stdio); ${VAR} is read at start")
    add.add_argument("--cwd", help="the server's working directory (stdio)")
    add.add_argument("--timeout", type=float, help="seconds a call may take (default 60)")
    add.add_argument("--approval", choices=("ask", "auto"), help="ask before each call (default) or not")
    add.add_argument("--project", action="store_true", help="write to ./.mcp.json instead of your config")
    remove = sub.add_parser("remove", help="remove a server")
    remove.add_argument("name")
    remove.add_argument("--project", action="store_true", help="from ./.mcp.json instead of your config")
    sub.add_parser("trust", help="trust the servers of ./.mcp.json as the file is now")
    return p


def main(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    command_line: list[str] = []
    if "--" in argv:  # everything after -- is the server's command line, options included
        cut = argv.index("--")
        argv, command_line = argv[:cut], argv[cut + 1:]
    args = build_parser().parse_args(argv)
    args.command_line = command_line
    try:
        if args.command == "list":
            return _list(out)
        if args.command == "add":
            return _add(args, out, err)
        if args.command == "remove":
            return _remove(args, out, err)
        return _trust(out, err)
    except SystemExit as exc:
        if isinstance(exc.code, str):
            print(exc.code, file=err)
            return 2
        raise


def _entry_from(args: argparse.Namespace) -> dict[str, Any]:
    command = list(args.command_line)
    if args.url and command:
        raise SystemExit("Error: give either --url or -- COMMAND ARGS…, not both")
    if not args.url and not command:
        raise SystemExit("Error: give the server's command after -- (mlintern mcp add NAME -- COMMAND ARGS…) or --url URL")
    entry: dict[str, Any]
    if args.url:
        entry = {"url": args.url}
        if args.transport:
            entry["transport"] = args.transport
        if args.header:
            entry["headers"] = _pairs(args.header, ":", "--header")
        if args.env or args.cwd:
            raise SystemExit("Error: --env and --cwd are for stdio servers (a command), not --url")
    else:
        entry = {"command": command[0], "args": command[1:]}
        if args.env:
            entry["env"] = _pairs(args.env, "=", "--env")
        if args.cwd:
            entry["cwd"] = args.cwd
        if args.header or args.transport:
            raise SystemExit("Error: --header and --transport are for remote servers (--url)")
    if args.timeout is not None:
        entry["timeout"] = args.timeout
    if args.approval:
        entry["approval"] = args.approval
    return entry


def _check(name: str, entry: dict[str, Any]) -> None:
    from agent.mcp.config import parse_entry

    # ${VAR} is kept as written; it is checked with the variables set to something
    checked = parse_entry(name, entry, "user", env={**os.environ, **_placeholders(entry)})
    if checked.error:
        raise SystemExit(f"Error: {checked.error}")


def _placeholders(entry: Any) -> dict[str, str]:
    import re

    names = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", json.dumps(entry))
    return {n: "x" for n in names if n not in os.environ}


def _add(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    entry = _entry_from(args)
    _check(args.name, entry)
    if args.project:
        path = Path.cwd() / ".mcp.json"
        data = _read_project(path)
        existed = args.name in data["mcpServers"]
        data["mcpServers"][args.name] = entry
        _write_project(path, data)
    else:
        from agent.config import edit_config

        existed = False

        def change(raw: dict[str, Any]) -> None:
            nonlocal existed
            servers = raw.setdefault("mcpServers", {})
            if not isinstance(servers, dict):
                raise SystemExit("Error: mcpServers in your config is not an object; fix it by hand first")
            existed = args.name in servers
            servers[args.name] = entry

        path = edit_config("mcpServers", change)
    print(f"{'Replaced' if existed else 'Added'} MCP server {args.name!r} in {path}: {_target(entry)}", file=out)
    return 0


def _remove(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.project:
        path = Path.cwd() / ".mcp.json"
        data = _read_project(path)
        if args.name not in data["mcpServers"]:
            print(f"Error: {path} has no server named {args.name!r}", file=err)
            return 1
        del data["mcpServers"][args.name]
        _write_project(path, data)
    else:
        from agent.config import edit_config

        found = False

        def change(raw: dict[str, Any]) -> None:
            nonlocal found
            servers = raw.get("mcpServers")
            if isinstance(servers, dict) and args.name in servers:
                found = True
                del servers[args.name]

        path = edit_config("mcpServers", change)
        if not found:
            print(f"Error: your config ({path}) has no server named {args.name!r}", file=err)
            return 1
    print(f"Removed MCP server {args.name!r} from {path}", file=out)
    return 0


def _read_project(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"mcpServers": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SystemExit(f"Error: {path} cannot be read as JSON ({exc}); fix it by hand first") from None
    if not isinstance(data, dict) or not isinstance(data.setdefault("mcpServers", {}), dict):
        raise SystemExit(f"Error: {path} must hold an object with an mcpServers object; fix it by hand first")
    return data


def _write_project(path: Path, data: dict[str, Any]) -> None:
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".mcp.json.")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)


def _target(entry: dict[str, Any]) -> str:
    if "url" in entry:
        return entry["url"]
    return " ".join([entry["command"], *entry.get("args", [])])


def _list(out: TextIO) -> int:
    from agent.config import ConfigError, config_path, data_dir, load_config
    from agent.llm.models import hf_token
    from agent.mcp.config import (DEFAULT_NAME, PROJECT_FILE, TRUST_FILE, ProjectTrust, default_hf_entry,
                                  parse_servers, read_servers_file)
    from agent.endpoints import Endpoints
    from agent.terminal_text import visible

    try:
        config = load_config()
    except ConfigError as exc:
        print(f"Error: {exc}", file=out)
        return 2
    entries = parse_servers(config.mcp_servers, "user", str(config_path()))
    project = Path.cwd() / PROJECT_FILE
    project_note = ""
    if project.is_file():
        found, error = read_servers_file(project, "project")
        entries += found
        trusted = ProjectTrust(data_dir() / TRUST_FILE).trusted(project)
        project_note = error or ("" if trusted else f"{project} is not trusted yet: `mlintern mcp trust` (or the app asks)")
    if DEFAULT_NAME not in {e.name for e in entries}:
        entries.append(default_hf_entry(Endpoints.resolve(dict(config.endpoints or {})).hub, hf_token()))
    if not entries:
        print("No MCP servers. Add one: mlintern mcp add NAME -- COMMAND ARGS…  or  mlintern mcp add NAME --url URL",
              file=out)
        return 0
    for e in entries:
        state = "broken" if e.error and e.origin != "default" else ("off" if not e.enabled else "on")
        line = f"{e.name:<16} {state:<6} {e.origin:<8} {e.transport:<5} {e.target}"
        if e.approval == "auto":
            line += "  (runs without asking" + (" for read-only tools)" if e.is_hf else ")")
        # a project's .mcp.json comes with the repository: its names reach the terminal as text
        print(visible(line), file=out)
        if e.error:
            print(visible(f"{'':16}   {e.error}"), file=out)
    if project_note:
        print(visible(project_note), file=out)
    return 0


def _trust(out: TextIO, err: TextIO) -> int:
    from agent.config import data_dir
    from agent.mcp.config import PROJECT_FILE, TRUST_FILE, ProjectTrust, read_servers_file

    project = Path.cwd() / PROJECT_FILE
    if not project.is_file():
        print(f"Error: there is no {PROJECT_FILE} in {Path.cwd()}", file=err)
        return 1
    found, error = read_servers_file(project, "project")
    if error:
        print(f"Error: {error}", file=err)
        return 1
    ProjectTrust(data_dir() / TRUST_FILE).trust(project)
    print(f"Trusted {project} as it is now ({len(found)} server{'s' if len(found) != 1 else ''}):", file=out)
    for e in found:
        print(f"  {e.name}: {e.target}", file=out)
    print("A later change to the file is asked about again.", file=out)
    return 0
