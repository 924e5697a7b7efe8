"""``mlintern export [ID | --last] [--format claude-jsonl|markdown] [-o PATH]``: a saved session
as a trace file.

claude-jsonl writes Claude Code's session format (the Hub's Agent Trace Viewer reads it): the
main chain to PATH (or stdout), and each research sub-agent run beside it as
``<PATH without .jsonl>/subagents/agent-<id>.jsonl`` with its ``.meta.json``, as Claude Code lays
them out. markdown writes one readable file.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TextIO


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlintern export", description="Write a saved session as a trace.")
    p.add_argument("session", nargs="?", help="a session id or a unique prefix (see `mlintern --resume`)")
    p.add_argument("--last", action="store_true", help="the newest session of this directory")
    p.add_argument("--format", choices=("claude-jsonl", "markdown"), default="claude-jsonl")
    p.add_argument("-o", "--output", help="the file to write (default: standard output)")
    return p


def main(argv: list[str], out: TextIO = sys.stdout, err: TextIO = sys.stderr) -> int:
    from agent.config import data_dir
    from agent.store import SessionNotFound, SessionStore, StoreError, db_path
    from agent.trace_export import claude_trace, load_events, markdown

    parser = build_parser()
    args = parser.parse_args(argv)
    if bool(args.session) == bool(args.last):
        print("Error: name one session: an ID (or prefix), or --last", file=err)
        return 2
    path = db_path(data_dir())
    if not path.exists():
        print(f"Error: no sessions have been saved yet ({path} does not exist)", file=err)
        return 1
    store = SessionStore(path)
    try:
        if args.last:
            found = store.latest(os.path.realpath(os.getcwd()))
            if found is None:
                print(f"Error: no saved session in {os.getcwd()}; give an id (`mlintern --resume` lists them)",
                      file=err)
                return 1
            session_id = found.id
        else:
            session_id = store.find(args.session).id
        stored = store.load(session_id)
        events = load_events(store, session_id)
    except SessionNotFound as exc:
        print(f"Error: {exc}", file=err)
        return 1
    except (StoreError, OSError, __import__("sqlite3").Error) as exc:
        print(f"Error: the session store {path} cannot be read: {exc}", file=err)
        return 1
    finally:
        store.close()
    if not any(e.type == "user_message" for e in events):
        print(f"Note: session {session_id} was saved before prompts were kept as events; its trace has no prompts.",
              file=err)
    if args.format == "markdown":
        return _write(args.output, markdown(stored.summary, events), out, err)
    trace = claude_trace(session_id, stored.summary.cwd, events)
    code = _write(args.output, trace.jsonl(), out, err)
    if code or not trace.sidechains:
        return code
    if not args.output:
        print(f"Note: {len(trace.sidechains)} research sub-agent run(s) not written: give -o PATH to write them beside it",
              file=err)
        return 0
    folder = Path(args.output).with_suffix("") / "subagents"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for agent_id, (records, meta) in trace.sidechains.items():
            (folder / f"agent-{agent_id}.jsonl").write_text(trace.dump(records), encoding="utf-8")
            (folder / f"agent-{agent_id}.meta.json").write_text(json.dumps(meta), encoding="utf-8")
    except OSError as exc:
        print(f"Error: could not write the sub-agent traces to {folder}: {exc}", file=err)
        return 1
    print(f"Wrote {args.output} and {len(trace.sidechains)} sub-agent trace(s) in {folder}", file=err)
    return 0


def _write(target: str | None, text: str, out: TextIO, err: TextIO) -> int:
    if not target:
        out.write(text)
        return 0
    path = Path(target)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        print(f"Error: could not write {path}: {exc}", file=err)
        return 1
    return 0
