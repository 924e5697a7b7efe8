"""The full-screen app while a tool prints 10,000 lines a second into the Output pane.

    python bench/tui_logs.py [--runs 3] [--rate 10000] [--seconds 10] [--json out.json]

Setup: as bench/tui_stream.py (installed ``mlintern`` in a private tmux server at 120x36,
``-m vllm/bench-model`` against a loopback OpenAI-compatible server), but the model asks
for one ``bash`` call that runs a small generator printing trainer-style log lines
(``{'step': 123, 'loss': ...}``) at ``--rate`` lines/s for ``--seconds`` s, in 100 bursts a
second on an absolute schedule; then the model answers "done".

Measured per run:
- lines/s the generator actually produced (a slow reader fills the pipe and slows it down);
- key echo while the lines flow, one key every 300 ms, against the idle echo before;
- the app's own CPU (not its children) over the generator's run;
- VmRSS every 0.5 s from Enter to the end, and VmHWM at the end: is memory bounded?
- whether the screen keeps updating: the last visible line of the Output pane is read on
  every poll, and the longest stretch without a change while lines flow is reported;
- whether the tool card ends as completed and the model got the result ("done" answer and
  a receipt line).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)
from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls  # noqa: E402

PROMPT = "Run the log generator and tell me when it is done."
GENERATOR = '''\
"""Prints trainer-style log lines at a fixed rate, in bursts, on an absolute schedule."""
import json, math, os, sys, time

rate, seconds = float(sys.argv[1]), float(sys.argv[2])
burst = max(1, round(rate / 100))  # 100 bursts a second
interval = burst / rate
start = time.monotonic()
n = bursts = 0
while time.monotonic() - start < seconds:
    lines = []
    for _ in range(burst):
        loss = 2.5 * math.exp(-n / 40000) + 0.05 * math.sin(n)
        lines.append(f"{{'step': {n}, 'loss': {loss:.4f}, 'grad_norm': {0.8 + 0.1 * math.cos(n):.4f}, "
                     f"'learning_rate': {2e-5 * (1 - n / 1e6):.3e}, 'epoch': {n / 50000:.4f}}}")
        n += 1
    sys.stdout.write("\\n".join(lines) + "\\n")
    sys.stdout.flush()
    bursts += 1
    delay = start + bursts * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)
end = time.monotonic()
cpu = sum(os.times()[:2])
print(f"GENERATOR DONE lines={n} wall={end - start:.3f}s rate={n / (end - start):.0f}/s", flush=True)
with open("gen_stats.json", "w") as f:
    json.dump({"lines": n, "start": start, "end": end, "cpu_s": cpu}, f)
'''


def output_pane(lines: list[str]) -> list[str] | None:
    """The text rows inside the Output pane's border (None while it is not drawn).

    The pane is the right-most box; each row is read between the last two ``│`` of its
    line, so wide characters further left cannot shift the columns. Rows that are only
    a scrollbar are dropped."""
    top = next((i for i, line in enumerate(lines) if "╭─ Output" in line), None)
    if top is None:
        return None
    rows: list[str] = []
    for line in lines[top + 1:]:
        if line.rstrip().endswith("╯"):
            break
        right = line.rfind("│")
        left = line.rfind("│", 0, right)
        if left < 0:
            break
        row = line[left + 1:right].strip()
        if row.strip(_SCROLLBAR):
            rows.append(row)
    return rows


_SCROLLBAR = " ▁▂▃▄▅▆▇█▉▊▋▌▍▎▏▐"


def last_log_line(lines: list[str]) -> str:
    rows = output_pane(lines) or []
    return rows[-1] if rows else ""


def card_state(lines: list[str]) -> str:
    """The state word on the generator's tool card header ("?" if the card is not on screen)."""
    for i, line in enumerate(lines):
        if "gen_logs.py" in line:
            # the header may wrap; its state word is on this line or the next
            text = line + " " + (lines[i + 1] if i + 1 < len(lines) else "")
            for state in ("completed", "failed", "running", "cancelled", "waiting"):
                if state in text:
                    return state
    return "?"


def run_once(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-logs-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        cwd = work / "cwd"
        cwd.mkdir()
        (cwd / "gen_logs.py").write_text(GENERATOR)
        command = f"{sys.executable} gen_logs.py {args.rate:g} {args.seconds:g}"
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        server.script(
            ToolCalls([Call("c1", "bash", json.dumps({"command": command, "timeout": 120}))],
                      content="Starting the generator."),
            Text("done"),
        )
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            result = run.startup(ts.app_command(work / "home", server.base_url, ts.MODEL), cwd)
            pid = ts.app_pid(tm.pane_pid())
            tmux_pid = tm.server_pid()
            result["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result.update(flow(run, pid, tmux_pid, server, cwd, args))
            result["idle_echo_after_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            tm.close()
            server.stop()


def flow(run: ts.Run, pid: int, tmux_pid: int, server: ScriptedLLMServer, cwd: Path, args: argparse.Namespace) -> dict:
    tm = run.tm
    tm.keys(ts._quote(PROMPT), literal=True)
    if run.wait_prompt(PROMPT, time.perf_counter()) is None:
        raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
    mono_offset = time.perf_counter() - time.monotonic()  # the generator stamps CLOCK_MONOTONIC
    rss0 = ts.memory_mb(pid, "VmRSS")
    t_enter = time.perf_counter()
    tm.keys("Enter")
    probe = ts.EchoProbe(run, args.echo_every, t_enter)
    samples: list[tuple[float, float, float, float]] = []  # (t, VmRSS MB, app CPU s, tree CPU s)
    changes: list[float] = []  # when the Output pane's last line changed
    last = ""
    receipt = None
    stats = None
    problems: list[str] = []
    screens: list[tuple[float, list[str]]] = []
    while receipt is None or (probe.pending and time.perf_counter() - receipt < 5):
        lines = tm.screen()
        now = time.perf_counter()
        if now - t_enter > args.timeout:
            raise RuntimeError(f"no receipt {args.timeout:.0f} s after Enter:\n" + "\n".join(lines))
        probe.see(lines, now, typing=receipt is None)
        line = last_log_line(lines)
        if line != last:
            changes.append(now)
            last = line
        if not samples or now - samples[-1][0] >= 0.5:
            samples.append((now, ts.memory_mb(pid, "VmRSS"), ts.cpu_seconds(pid, tree=False), ts.cpu_seconds(pid)))
            screens.append((now - t_enter, lines))
        if stats is None and (cwd / "gen_stats.json").exists():
            try:
                stats = json.loads((cwd / "gen_stats.json").read_text())
            except ValueError:  # caught it half written
                pass
        if receipt is None and any(row.lstrip().startswith("turn: ") for row in lines):
            receipt = now
        for row in lines:
            if any(s in row for s in ("✗", "Traceback", "Exception", "Error", "error")) and row.strip() not in problems:
                problems.append(row.strip())
        time.sleep(run.poll)
    hwm = ts.memory_mb(pid)
    # quiet for a second, then the settled screen and idle CPU
    time.sleep(1.0)
    c0 = ts.cpu_seconds(pid, tree=False)
    time.sleep(2.0)
    idle_cpu = (ts.cpu_seconds(pid, tree=False) - c0) / 2.0
    final = tm.screen()
    if stats is None:
        raise RuntimeError("the generator never wrote gen_stats.json:\n" + "\n".join(final))
    g0, g1 = stats["start"] + mono_offset, stats["end"] + mono_offset

    def at(t: float) -> tuple[float, float, float, float]:
        return min(samples, key=lambda s: abs(s[0] - t))

    s0, s1 = at(g0), at(g1)
    # the first second is start-up (process spawn, the pane appearing); judge the steady flow
    steady = [t for t in changes if g0 + 1.0 <= t <= g1] or [g0 + 1.0]
    gaps = [b - a for a, b in zip([g0 + 1.0] + steady, steady + [g1])]
    flowing = [ms * 1000 for ms, sent in zip(probe.echo, probe.echo_at) if g0 <= t_enter + sent <= g1]
    mid = at((g0 + g1) / 2)
    tool_msgs = [m for body in server.requests[1:2] for m in body.get("messages", []) if m.get("role") == "tool"]
    tool_result = tool_msgs[-1]["content"] if tool_msgs else ""
    if isinstance(tool_result, list):
        tool_result = " ".join(part.get("text", "") for part in tool_result)
    return {
        "lines": stats["lines"],
        "gen_wall_s": stats["end"] - stats["start"],
        "lines_per_s": stats["lines"] / (stats["end"] - stats["start"]),
        "gen_cpu_s": stats["cpu_s"],
        "enter_to_gen_start_s": g0 - t_enter,
        "gen_end_to_receipt_s": receipt - g1,
        "echo_flow_ms": flowing,
        "echo_all_ms": [x * 1000 for x in probe.echo],
        "echo_lost": len(probe.pending),
        "app_cpu_flow_s": s1[2] - s0[2],
        "tree_cpu_flow_s": s1[3] - s0[3],
        "rss_before_mb": rss0,
        "rss_gen_start_mb": s0[1],
        "rss_gen_mid_mb": mid[1],
        "rss_gen_end_mb": s1[1],
        "rss_max_mb": max(s[1] for s in samples),
        "peak_mb": hwm,
        "rss_after_mb": ts.memory_mb(pid, "VmRSS"),
        "rss_timeline": [(round(t - t_enter, 2), round(r, 1)) for t, r, _, _ in samples],
        "screen_changes": len(steady),
        "max_gap_s": max(gaps),
        "gaps_over_1s": sum(1 for g in gaps if g > 1.0),
        "last_line_at_end": last_log_line(final),
        "card_state": card_state(final),
        "tool_result_has_done_line": "GENERATOR DONE" in tool_result,
        "tool_result_chars": len(tool_result),
        "answer_done_shown": any(row.split("│")[0].strip() == "done" for row in final),
        "requests": len(server.requests),
        "idle_cpu_after_pct": idle_cpu * 100,
        "problems": problems,
        "screens": screens,
        "final_screen": final,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}/{max(values):.0f} ms (n={len(values)})" if values else "n/a"


def report(runs: list[dict], args: argparse.Namespace) -> None:
    rows = [
        ("lines produced / wall", lambda r: f"{r['lines']:,} in {r['gen_wall_s']:.2f} s"),
        ("  lines/s produced", lambda r: f"{r['lines_per_s']:,.0f} (target {args.rate:,.0f})"),
        ("key echo while flowing, med/max", lambda r: _ms(r["echo_flow_ms"]) + (f", {r['echo_lost']} lost" if r["echo_lost"] else "")),
        ("  key echo idle before / after", lambda r: f"{_ms(r['idle_echo_ms']).split(' (')[0]} / {_ms(r['idle_echo_after_ms']).split(' (')[0]}"),
        ("app CPU over the flow", lambda r: f"{r['app_cpu_flow_s']:.1f} s of {r['gen_wall_s']:.1f} s "
                                            f"({100 * r['app_cpu_flow_s'] / r['gen_wall_s']:.0f}%)"),
        ("  app + children CPU", lambda r: f"{r['tree_cpu_flow_s']:.1f} s (generator {r['gen_cpu_s']:.1f} s)"),
        ("VmRSS before / gen start", lambda r: f"{r['rss_before_mb']:.0f} / {r['rss_gen_start_mb']:.0f} MB"),
        ("  VmRSS gen mid / gen end", lambda r: f"{r['rss_gen_mid_mb']:.0f} / {r['rss_gen_end_mb']:.0f} MB"),
        ("  VmRSS max / after", lambda r: f"{r['rss_max_mb']:.0f} / {r['rss_after_mb']:.0f} MB"),
        ("VmHWM at the end", lambda r: f"{r['peak_mb']:.0f} MB"),
        ("Output pane updates (steady)", lambda r: f"{r['screen_changes']} changes, max gap {r['max_gap_s']:.2f} s"),
        ("  gaps over 1 s", lambda r: str(r["gaps_over_1s"])),
        ("Enter to generator start", lambda r: f"{r['enter_to_gen_start_s']:.2f} s"),
        ("generator end to receipt", lambda r: f"{r['gen_end_to_receipt_s']:.2f} s"),
        ("tool card at the end", lambda r: r["card_state"]),
        ("model got the result (its last line)", lambda r: ("yes" if r["tool_result_has_done_line"] else "NO") + f", {r['tool_result_chars']:,} chars"),
        ("  answer 'done' on screen", lambda r: "yes" if r["answer_done_shown"] else "NO"),
        ("app CPU idle afterwards", lambda r: f"{r['idle_cpu_after_pct']:.0f}%"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    width = max(len(name) for name, _ in rows) + 2
    print(f"\nmlintern TUI, tmux {ts.WIDTH}x{ts.HEIGHT}, bash tool printing {args.rate:,.0f} lines/s for {args.seconds:g} s")
    print("".ljust(width) + "".join(f"run {i + 1}".ljust(36) for i in range(len(runs))))
    for name, cell in rows:
        print(name.ljust(width) + "".join(cell(r).ljust(36) for r in runs))
    for i, r in enumerate(runs, 1):
        print(f"run {i}: last Output line at the end: {r['last_line_at_end']!r}")
        if r["problems"]:
            print(f"run {i}: suspicious lines on screen: {r['problems'][:5]}")
        if r["requests"] != 2:
            print(f"run {i}: the app made {r['requests']} model requests (expected 2)")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--rate", type=float, default=10_000, help="lines per second the tool prints")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--echo-every", type=float, default=0.3, help="seconds between key-echo samples")
    p.add_argument("--poll-ms", type=float, default=2.0, help="sleep between screen reads")
    p.add_argument("--timeout", type=float, default=90.0)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for other load to settle before a run")
    p.add_argument("--json", type=Path, help="write every run's numbers and screens here")
    args = p.parse_args()
    if shutil.which("tmux") is None:
        print("error: tmux is not installed; this bench drives the app in a tmux pane", file=sys.stderr)
        return 2
    if not ts.APP.exists():
        print(f"error: {ts.APP} not found; install the package into this interpreter's environment", file=sys.stderr)
        return 2
    runs = []
    for i in range(args.runs):
        busy = ts.wait_for_quiet(args.quiet_wait)
        print(f"run {i + 1}/{args.runs} (machine {busy:.0f}% busy before it) …", file=sys.stderr, flush=True)
        runs.append(run_once(args))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
