"""The ``mlintern`` command: the full-screen app, or one headless turn with ``-p``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mlintern_tui import __version__


def _dollars(text: str) -> float:
    try:
        value = float(text.strip().lstrip("$"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a dollar amount: {text!r} (e.g. 2.50)") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"the budget must be 0 or more dollars (got {text!r})")
    return value


def _duration(text: str) -> float:
    """``0``, ``90`` (seconds), ``90s``, ``30m``, ``2h``, ``1d``."""
    raw = text.strip().lower()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (raw[:-1], raw[-1]) if raw and raw[-1] in units else (raw, "s")
    try:
        value = float(number) * units[unit]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 0, 90s, 30m, 2h)") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"the duration must be 0 or more (got {text!r})")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mlintern", description="An autonomous ML-engineering agent in your terminal.",
        epilog="Also: `mlintern mcp list|add|remove|trust` (MCP servers), `mlintern export ID|--last` (a saved "
               "session as Claude Code JSONL or Markdown).")
    p.add_argument("-p", "--prompt", help="run one turn headless with this prompt and exit")
    p.add_argument("-m", "--model", help="model id (litellm id, HF router org/model[:provider], ollama/…, or demo)")
    p.add_argument("--output-format", choices=("text", "json", "stream-json"), default="text",
                   help="headless output: final text, one JSON object, or every event as JSON lines")
    p.add_argument("--yolo", action="store_true",
                   help="auto-approve calls that would need approval, within the budget (scheduled jobs still ask)")
    p.add_argument("--budget", type=_dollars, default=None, metavar="USD",
                   help="YOLO budget for this session in dollars, model calls included (default: yolo_cap_usd "
                        "in the config, $5); does not turn YOLO on")
    p.add_argument("--max-iterations", type=int, default=None, help="model calls per turn before stopping (-1: no limit)")
    p.add_argument("--jobs-backend", choices=("auto", "local", "hf"), default=None,
                   help="where hf_jobs runs jobs: Hugging Face Jobs (hf), this machine's CPU (local), auto")
    p.add_argument("-c", "--continue", dest="continue_", action="store_true",
                   help="resume the newest saved session of this directory")
    p.add_argument("-r", "--resume", nargs="?", const="", default=None, metavar="ID",
                   help="resume a saved session by id (or a unique prefix); without ID, pick one from a list")
    p.add_argument("--wait-jobs", type=_duration, default=None, metavar="DURATION",
                   help="headless: after the turn, wait up to DURATION (90s, 30m, 2h) for the jobs it started, "
                        "and let the agent read their results (default: until they end, bounded by their own "
                        "timeouts; 0: exit at once and print how to follow them)")
    p.add_argument("--input-format", choices=("text", "stream-json"), default="text",
                   help="headless: stream-json reads user messages as JSON lines on stdin (Claude Code's shape); "
                        "one sent while the agent works joins the running turn at its next step")
    p.add_argument("--keep-background", action="store_true",
                   help="headless: leave running what the agent's commands started in the background "
                        "(default: stopped at exit; work that should outlive the run belongs in a job)")
    p.add_argument("--mcp-config", action="append", default=[], metavar="FILE",
                   help="a JSON file with mcpServers to add for this run (repeatable); "
                        "`mlintern mcp list|add|remove|trust` edits the lasting ones")
    p.add_argument("--version", action="version", version=f"mlintern {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    from mlintern_tui import heap

    heap.tune()  # before the imports below: they allocate enough to trigger ~30 ms of collections
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Textual paints at most MAX_FPS frames a second. A typed or deleted character no longer
    # waits for one (the prompt draws its own rows, and local echo draws a typed key before
    # the loop has it), but every burst of changes gets its own frame: with the agent's
    # rounds arriving back to back, 500 rounds cost 14.7-17.7 s of CPU at 60 against
    # 15.9-26.8 s at 120 (bench/tui_long_conversation.py), and echo while they ran was 3 ms
    # median at both. Textual's default of 60 is kept, unless the user sets another.
    os.environ.setdefault("TEXTUAL_FPS", "60")
    raw = sys.argv[1:] if argv is None else argv
    if raw[:1] == ["mcp"]:
        from mlintern_tui.mcp_cli import main as mcp_main

        return mcp_main(raw[1:])
    if raw[:1] == ["export"]:
        from mlintern_tui.export_cli import main as export_main

        return export_main(raw[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    heap.no_pydantic_plugins()
    mcp_files = []
    for name in args.mcp_config:
        path = os.path.abspath(os.path.expanduser(name))
        if not os.path.isfile(path):
            print(f"Error: --mcp-config {name}: no such file", file=sys.stderr)
            return 2
        mcp_files.append(path)
    if args.continue_ and args.resume is not None:
        parser.error("--continue and --resume pick a session each: give one of them")
    resume: str | None = None
    if args.continue_ or args.resume:
        try:
            resume = _session_to_resume(args.resume if args.resume else None)
        except LookupError as exc:
            print(f"Error: {exc}", file=sys.stderr)
            return 2
    if args.prompt is not None or args.input_format == "stream-json":
        if args.prompt is not None and not args.prompt.strip():
            print("Error: the prompt is empty", file=sys.stderr)
            return 2
        if args.resume == "":
            print("Error: headless --resume needs a session id (run `mlintern --resume` without -p to pick one)",
                  file=sys.stderr)
            return 2
        from mlintern_tui.headless import run_headless

        return asyncio.run(run_headless(
            args.prompt, model=args.model, output_format=args.output_format,
            yolo=args.yolo, max_iterations=args.max_iterations, jobs_backend=args.jobs_backend,
            budget=args.budget, resume=resume, wait_jobs=args.wait_jobs, mcp_files=tuple(mcp_files),
            input_format=args.input_format, keep_background=args.keep_background,
        ))
    if args.wait_jobs is not None:
        print("Error: --wait-jobs is for headless runs (-p); the app waits for jobs by itself", file=sys.stderr)
        return 2
    if args.budget is not None:
        from agent.config import BUDGET_ENV

        os.environ[BUDGET_ENV] = repr(args.budget)  # the app's load_config applies it over the file
    heap.hold_until_built()  # on again once the session is built, or at the first frame
    # the last start's first frame, drawn now if nothing it shows can have changed: the rest of
    # the start (Textual's import, the layout) happens behind it, keys typed meanwhile kept
    from mlintern_tui import instant_frame

    # (not for the resume picker: it opens over the prompt the keys would go to)
    instant = instant_frame.show(raw) if args.resume != "" else instant_frame.Start(raw, None)
    try:
        _hold_for_tests()
        from mlintern_tui.app import run_app

        return run_app(model=args.model, yolo=args.yolo, max_iterations=args.max_iterations,
                       jobs_backend=args.jobs_backend, resume_session_id=resume, open_resume_picker=args.resume == "",
                       mcp_files=tuple(mcp_files), instant=instant)
    finally:
        if instant.gap is not None:
            instant.gap.close()  # nothing, once the driver took over; else the terminal as it was


def _hold_for_tests() -> None:
    """``MLINTERN_TEST_HOLD_START=PATH``: wait here, with the kept frame on screen and before
    Textual is imported, until PATH exists (the end-to-end test of the kept frame types into
    it); ``PATH.held`` says the start got here."""
    hold = os.environ.get("MLINTERN_TEST_HOLD_START")
    if hold:
        import time

        with open(hold + ".held", "w"):
            pass
        while not os.path.exists(hold):
            time.sleep(0.02)


def _session_to_resume(id_or_prefix: str | None) -> str:
    """The stored session ``--resume ID`` or ``--continue`` (None) means; LookupError says why not."""
    from agent.config import data_dir
    from agent.store import SessionNotFound, SessionStore, StoreError, db_path

    path = db_path(data_dir())
    if not path.exists():
        raise LookupError(f"no sessions have been saved yet ({path} does not exist)")
    store = SessionStore(path)
    try:
        if id_or_prefix is None:
            cwd = os.path.realpath(os.getcwd())
            found = store.latest(cwd)
            if found is None:
                raise LookupError(f"no saved session in {cwd}; `mlintern --resume` lists them all")
            return found.id
        return store.find(id_or_prefix).id
    except SessionNotFound as exc:
        raise LookupError(str(exc)) from None
    except (StoreError, OSError, __import__("sqlite3").Error) as exc:
        raise LookupError(f"the session store {path} cannot be read: {exc}") from None
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
