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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlintern", description="An autonomous ML-engineering agent in your terminal.")
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
    p.add_argument("--version", action="version", version=f"mlintern {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    from mlintern_tui import heap

    heap.tune()  # before the imports below: they allocate enough to trigger ~30 ms of collections
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Textual paints at most MAX_FPS frames a second, and a key that lands just after a
    # frame waits for the next slot: idle key echo measured 17 / 8 / 4 ms at 60 / 120 / 240.
    # Every burst of changes gets its own frame too, though: 150 agent rounds cost 5.2 /
    # 6.7 / 9.0 s of CPU at those rates. 120 keeps the echo under 13 ms for less.
    os.environ.setdefault("TEXTUAL_FPS", "120")
    args = build_parser().parse_args(argv)
    if args.prompt is not None:
        if not args.prompt.strip():
            print("Error: the prompt is empty", file=sys.stderr)
            return 2
        from mlintern_tui.headless import run_headless

        return asyncio.run(run_headless(
            args.prompt, model=args.model, output_format=args.output_format,
            yolo=args.yolo, max_iterations=args.max_iterations, jobs_backend=args.jobs_backend,
            budget=args.budget,
        ))
    if args.budget is not None:
        from agent.config import BUDGET_ENV

        os.environ[BUDGET_ENV] = repr(args.budget)  # the app's load_config applies it over the file
    from mlintern_tui.app import run_app

    return run_app(model=args.model, yolo=args.yolo, max_iterations=args.max_iterations, jobs_backend=args.jobs_backend)


if __name__ == "__main__":
    sys.exit(main())
