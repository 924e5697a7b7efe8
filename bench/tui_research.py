"""The full-screen app while a research sub-agent makes 50 tool calls.

    python bench/tui_research.py [--runs 3] [--calls 50] [--per-step 2] [--step-delay 0.15]

Setup: as bench/tui_stream.py (installed ``mlintern`` in a private tmux server at 120x36,
``-m vllm/bench-model`` against a loopback OpenAI-compatible server). The main model calls
``research``; the sub-agent (told apart by its system prompt) then answers ``--calls``
tool calls, ``--per-step`` per response (``read`` of small files in the working
directory, so the tools themselves cost nothing), each response streamed over about
``--step-delay`` seconds; then its report, then the main model's "done".

Measured per run: key echo (one key every 300 ms, as in tui_stream) while the research
card fills, against the idle echo before; the app's CPU over the research run; VmHWM; the
card's final step count and state as drawn; whether the report reached the main model.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)
from agent.research import RESEARCH_SYSTEM  # noqa: E402
from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls  # noqa: E402

PROMPT = "Research the best recipe for the task."
MARK = RESEARCH_SYSTEM.splitlines()[0]


def script(server: ScriptedLLMServer, args: argparse.Namespace) -> None:
    steps = [args.per_step] * (args.calls // args.per_step) + ([args.calls % args.per_step] if args.calls % args.per_step else [])
    research: list = []
    n = 0
    for size in steps:
        calls = []
        for _ in range(size):
            calls.append(Call(f"r{n}", "read", json.dumps({"path": f"notes_{n % 10}.md"})))
            n += 1
        # the fragments arrive `delay` apart: a response streams over about step_delay seconds
        research.append(ToolCalls(calls, fragment_chars=12, delay=args.step_delay / (size * 4)))
    research.append(Text("## Report\n| rank | recipe |\n|---|---|\n| 1 | SFT |\n\nRESEARCH REPORT END"))
    main = [ToolCalls([Call("m1", "research", json.dumps({"task": "best SFT recipe"}))]), Text("done")]

    def reply(body: dict):
        queue = research if MARK in str(body["messages"][0].get("content")) else main
        return queue.pop(0)

    server.script(*[reply] * (len(research) + len(main)))


def run_once(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-research-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        (home / "config.json").write_text(json.dumps({"research_max_iterations": args.calls + 10}))
        cwd = work / "cwd"
        cwd.mkdir()
        for k in range(10):
            (cwd / f"notes_{k}.md").write_text(f"note {k}: lr 2e-5, 3 epochs\n" * 20)
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        script(server, args)
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            result = run.startup(ts.app_command(home, server.base_url, ts.MODEL), cwd)
            pid = ts.app_pid(tm.pane_pid())
            result["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result.update(flow(run, pid, server, args))
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            tm.close()
            server.stop()


def flow(run: ts.Run, pid: int, server: ScriptedLLMServer, args: argparse.Namespace) -> dict:
    tm = run.tm
    tm.keys(ts._quote(PROMPT), literal=True)
    if run.wait_prompt(PROMPT, time.perf_counter()) is None:
        raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
    t_enter = time.perf_counter()
    cpu0 = ts.cpu_seconds(pid, tree=False)
    tm.keys("Enter")
    probe = ts.EchoProbe(run, args.echo_every, t_enter)
    watch = ts.UntilReceipt(tm, run, probe, t_enter, args.timeout)
    for _lines, _now in watch:
        pass
    receipt = watch.receipt
    cpu = ts.cpu_seconds(pid, tree=False) - cpu0
    final = tm.screen()
    header = next((line for line in final if "research " in line and "tool call" in line), "")
    last_body = server.requests[-1] if server.requests else {}
    report_seen = any("RESEARCH REPORT END" in str(m.get("content")) for m in last_body.get("messages", [])
                      if m.get("role") == "tool")
    return {
        "wall_s": receipt - t_enter,
        "app_cpu_s": cpu,
        "echo_ms": [x * 1000 for x in probe.echo],
        "echo_lost": len(probe.pending),
        "peak_mb": ts.memory_mb(pid),
        "card_header": header.strip(),
        "report_reached_model": report_seen,
        "requests": len(server.requests),
        "final_screen": final,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}/{max(values):.0f} ms (n={len(values)})" if values else "n/a"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ts.add_run_args(p)
    p.add_argument("--calls", type=int, default=50, help="tool calls the sub-agent makes")
    p.add_argument("--per-step", type=int, default=2, help="tool calls per sub-agent response")
    p.add_argument("--step-delay", type=float, default=0.15, help="seconds each sub-agent response streams")
    args = p.parse_args()
    if not ts.preflight():
        return 2
    runs = ts.run_repeatedly(args, lambda: run_once(args))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    rows = [
        ("key echo during research, med/max", lambda r: _ms(r["echo_ms"]) + (f", {r['echo_lost']} lost" if r["echo_lost"] else "")),
        ("key echo idle, med/max", lambda r: _ms(r["idle_echo_ms"])),
        ("Enter to receipt", lambda r: f"{r['wall_s']:.1f} s"),
        ("app CPU over the run", lambda r: f"{r['app_cpu_s']:.2f} s"),
        ("VmHWM at the end", lambda r: f"{r['peak_mb']:.0f} MB"),
        ("model requests", lambda r: str(r["requests"])),
        ("report reached the main model", lambda r: "yes" if r["report_reached_model"] else "NO"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    ts.print_table(f"\nmlintern TUI, tmux {ts.WIDTH}x{ts.HEIGHT}, research sub-agent making {args.calls} tool calls "
                   f"({args.per_step} per response)", rows, runs)
    for i, r in enumerate(runs, 1):
        print(f"run {i}: card: {r['card_header']!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
