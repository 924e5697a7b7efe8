"""The ``mlintern`` command: the full-screen app, or one headless turn with ``-p``."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from mlintern_tui import __version__


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mlintern", description="An autonomous ML-engineering agent in your terminal.")
    p.add_argument("-p", "--prompt", help="run one turn headless with this prompt and exit")
    p.add_argument("-m", "--model", help="model id (litellm id, HF router org/model[:provider], ollama/…, or demo)")
    p.add_argument("--output-format", choices=("text", "json", "stream-json"), default="text",
                   help="headless output: final text, one JSON object, or every event as JSON lines")
    p.add_argument("--yolo", action="store_true", help="auto-approve calls that would need approval")
    p.add_argument("--max-iterations", type=int, default=None, help="model calls per turn before stopping (-1: no limit)")
    p.add_argument("--jobs-backend", choices=("auto", "local", "hf"), default=None,
                   help="where hf_jobs runs jobs: Hugging Face Jobs (hf), this machine's CPU (local), auto")
    p.add_argument("--version", action="version", version=f"mlintern {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Textual paints at most MAX_FPS frames a second, and a key that lands just after a
    # frame waits for the next slot: at the default 60 that alone is 15 ms of echo
    # (measured 16 ms median idle echo at 60, 5 ms at 240). Frames are still only drawn
    # when something changed, so the cap costs nothing while idle.
    os.environ.setdefault("TEXTUAL_FPS", "240")
    args = build_parser().parse_args(argv)
    if args.prompt is not None:
        if not args.prompt.strip():
            print("Error: the prompt is empty", file=sys.stderr)
            return 2
        from mlintern_tui.headless import run_headless

        return asyncio.run(run_headless(
            args.prompt, model=args.model, output_format=args.output_format,
            yolo=args.yolo, max_iterations=args.max_iterations, jobs_backend=args.jobs_backend,
        ))
    from mlintern_tui.app import run_app

    return run_app(model=args.model, yolo=args.yolo, max_iterations=args.max_iterations, jobs_backend=args.jobs_backend)


if __name__ == "__main__":
    sys.exit(main())
