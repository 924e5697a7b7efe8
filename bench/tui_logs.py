"""The full-screen app while a tool prints 10,000 lines a second into the Output pane.

    python bench/tui_logs.py [--runs 3] [--rate 10000] [--seconds 10] [--calls 2] [--json out.json]

Setup: as bench/tui_stream.py (installed ``mlintern`` in a private tmux server at 120x36,
``-m vllm/bench-model`` against a loopback OpenAI-compatible server), but the model asks
for a ``bash`` call that runs a small generator printing trainer-style log lines
(``{'step': 123, 'loss': ...}``) at ``--rate`` lines/s for ``--seconds`` s, in 100 bursts a
second on an absolute schedule; then the model answers "done". ``--calls 2`` runs the
generator twice in a row, to see whether memory from the first run is kept.

Measured per run:
- lines/s the generator actually produced (a slow reader fills the pipe and slows it down);
- key echo while the lines flow, one key every 300 ms, against the idle echo before;
- the app's own CPU (not its children) over each generator run;
- VmRSS every 0.5 s from Enter to the end, its slope over the last third of each run, and
  VmHWM at the end: is memory bounded?
- whether the screen keeps updating: the last visible line of the Output pane is read on
  every poll; reported are when it last changed, how many times, and the longest stretch
  without a change while lines flow (the first second of each run is start-up);
- whether each tool card ends as completed, the model got each result (its last line), and
  the answer and the receipt line show.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)
from jobs_log_throughput import GENERATOR  # noqa: E402  (the same generator the jobs benches run)
from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls  # noqa: E402

PROMPT = "Run the log generator and tell me when it is done."


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


def card_state(lines: list[str], tag: str) -> str:
    """The state word on the tool card whose command ends in ``tag`` ("?" if not on screen)."""
    for i, line in enumerate(lines):
        if f"gen_logs.py {tag}" in line:
            # the header may wrap; its state word is on this line or the next
            text = line + " " + (lines[i + 1] if i + 1 < len(lines) else "")
            for state in ("completed", "failed", "running", "cancelled", "waiting"):
                if state in text:
                    return state
    return "?"


def _slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (MB/s) of (time, MB) points."""
    if len(points) < 2:
        return 0.0
    mt = statistics.fmean(t for t, _ in points)
    mv = statistics.fmean(v for _, v in points)
    den = sum((t - mt) ** 2 for t, _ in points)
    return sum((t - mt) * (v - mv) for t, v in points) / den if den else 0.0


def run_once(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-logs-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        cwd = work / "cwd"
        cwd.mkdir()
        (cwd / "gen_logs.py").write_text(GENERATOR)
        tags = [f"{args.rate:g} {args.seconds:g} gen_stats_{k}.json" for k in range(1, args.calls + 1)]
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        server.script(
            *(ToolCalls([Call(f"c{k}", "bash", json.dumps({"command": f"{sys.executable} gen_logs.py {tag}",
                                                           "timeout": 120}))],
                        content="Starting the generator." if k == 1 else "Once more.")
              for k, tag in enumerate(tags, 1)),
            Text("done"),
        )
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            result = run.startup(ts.app_command(work / "home", server.base_url, ts.MODEL), cwd)
            pid = ts.app_pid(tm.pane_pid())
            result["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result.update(flow(run, pid, server, cwd, tags, args))
            result["idle_echo_after_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            tm.close()
            server.stop()


def flow(run: ts.Run, pid: int, server: ScriptedLLMServer, cwd: Path, tags: list[str], args: argparse.Namespace) -> dict:
    tm = run.tm
    tm.keys(ts._quote(PROMPT), literal=True)
    if run.wait_prompt(PROMPT, time.perf_counter()) is None:
        raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
    mono_offset = time.perf_counter() - time.monotonic()  # the generator stamps CLOCK_MONOTONIC
    rss0 = ts.memory_mb(pid, "VmRSS")
    t_enter = time.perf_counter()
    tm.keys("Enter")
    probe = ts.EchoProbe(run, args.echo_every, t_enter)
    samples: list[tuple[float, float, float, float]] = []  # (t, VmRSS MB, app CPU s, app+children CPU s)
    changes: list[tuple[float, str]] = []  # when the Output pane's last line changed, and to what
    last = ""
    stats: dict[int, dict] = {}
    problems: list[str] = []
    screens: list[tuple[float, list[str]]] = []
    watch = ts.UntilReceipt(tm, run, probe, t_enter, args.timeout)
    for lines, now in watch:
        line = last_log_line(lines)
        if line != last:
            changes.append((now, line))
            last = line
        if not samples or now - samples[-1][0] >= 0.5:
            samples.append((now, ts.memory_mb(pid, "VmRSS"), ts.cpu_seconds(pid, tree=False), ts.cpu_seconds(pid)))
            screens.append((now - t_enter, lines))
        k = len(stats) + 1
        if k <= len(tags) and (cwd / f"gen_stats_{k}.json").exists():
            try:
                stats[k] = json.loads((cwd / f"gen_stats_{k}.json").read_text())
                stats[k]["rss_mb"] = ts.memory_mb(pid, "VmRSS")
            except ValueError:  # caught it half written
                pass
        ts.note_problems(lines, problems)
    receipt = watch.receipt
    hwm = ts.memory_mb(pid)
    time.sleep(1.0)
    c0 = ts.cpu_seconds(pid, tree=False)
    time.sleep(2.0)
    idle_cpu = (ts.cpu_seconds(pid, tree=False) - c0) / 2.0
    final = tm.screen()
    if len(stats) < len(tags):
        raise RuntimeError(f"only {len(stats)} of {len(tags)} generator runs wrote their stats:\n" + "\n".join(final))

    def at(t: float) -> tuple[float, float, float, float]:
        return min(samples, key=lambda s: abs(s[0] - t))

    calls = []
    for k, st in sorted(stats.items()):
        g0, g1 = st["start"] + mono_offset, st["end"] + mono_offset
        # the first second is start-up (process spawn, the pane appearing); judge the steady flow
        steady = [t for t, _ in changes if g0 + 1.0 <= t <= g1]
        gaps = [b - a for a, b in zip([g0 + 1.0] + steady, steady + [g1])]
        during = [(t, text) for t, text in changes if g0 <= t <= g1]
        third = [(t, r) for t, r, _, _ in samples if g0 + 2 * (g1 - g0) / 3 <= t <= g1]
        calls.append({
            "lines": st["lines"], "wall_s": st["end"] - st["start"], "gen_cpu_s": st["cpu_s"],
            "lines_per_s": st["lines"] / (st["end"] - st["start"]),
            "t0": g0 - t_enter, "t1": g1 - t_enter,
            "app_cpu_s": at(g1)[2] - at(g0)[2], "tree_cpu_s": at(g1)[3] - at(g0)[3],
            "rss_start_mb": at(g0)[1], "rss_end_mb": st["rss_mb"], "rss_slope_last_third": _slope(third),
            "changes": len(steady), "max_gap_s": max(gaps), "gaps_over_1s": sum(1 for g in gaps if g > 1.0),
            "last_change_s": during[-1][0] - g0 if during else None, "last_shown": during[-1][1] if during else "",
            "card": card_state(final, tags[k - 1]),
        })
    first = calls[0]
    froze_at = t_enter + first["t0"] + (first["last_change_s"] or 0.0)
    in_flow = [(ms * 1000, t_enter + sent) for ms, sent in zip(probe.echo, probe.echo_at)
               if any(c["t0"] <= sent <= c["t1"] for c in calls)]
    tool_msgs = [m for m in (server.requests[-1].get("messages", []) if server.requests else []) if m.get("role") == "tool"]
    results = [m["content"] if isinstance(m["content"], str) else " ".join(p.get("text", "") for p in m["content"])
               for m in tool_msgs]
    return {
        "calls": calls,
        "echo_flow_ms": [ms for ms, _ in in_flow],
        "echo_flow_updating_ms": [ms for ms, t in in_flow if t <= froze_at],
        "echo_all_ms": [x * 1000 for x in probe.echo],
        "echo_lost": len(probe.pending),
        "gen_end_to_receipt_s": receipt - (t_enter + calls[-1]["t1"]),
        "rss_before_mb": rss0,
        "rss_max_mb": max(s[1] for s in samples),
        "peak_mb": hwm,
        "rss_after_mb": ts.memory_mb(pid, "VmRSS"),
        "rss_timeline": [(round(t - t_enter, 2), round(r, 1)) for t, r, _, _ in samples],
        "last_line_at_end": last_log_line(final),
        "results_have_done_line": [("GENERATOR DONE" in r) for r in results],
        "result_chars": [len(r) for r in results],
        "result_tails": [r[-400:] for r in results],
        "answer_done_shown": any(row.split("│")[0].strip() == "done" for row in final),
        "requests": len(server.requests),
        "idle_cpu_after_pct": idle_cpu * 100,
        "problems": problems,
        "screens": screens,
        "final_screen": final,
    }


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}/{max(values):.0f} ms (n={len(values)})" if values else "n/a"


def _calls(r: dict, fmt) -> str:
    return " | ".join(fmt(c) for c in r["calls"])


def report(runs: list[dict], args: argparse.Namespace) -> None:
    c1 = lambda r: r["calls"][0]  # noqa: E731
    rows = [
        ("lines/s produced (per call)", lambda r: _calls(r, lambda c: f"{c['lines_per_s']:,.0f}")),
        ("key echo while flowing, med/max", lambda r: _ms(r["echo_flow_ms"]) + (f", {r['echo_lost']} lost" if r["echo_lost"] else "")),
        ("  while the pane still updated", lambda r: _ms(r["echo_flow_updating_ms"])),
        ("  key echo idle before / after", lambda r: f"{_ms(r['idle_echo_ms']).split(' (')[0]} / {_ms(r['idle_echo_after_ms']).split(' (')[0]}"),
        ("app CPU over the flow", lambda r: _calls(r, lambda c: f"{c['app_cpu_s']:.1f} s ({100 * c['app_cpu_s'] / c['wall_s']:.0f}%)")),
        ("  generator's own CPU", lambda r: _calls(r, lambda c: f"{c['gen_cpu_s']:.1f} s")),
        ("VmRSS before Enter", lambda r: f"{r['rss_before_mb']:.0f} MB"),
        ("  VmRSS call start -> end", lambda r: _calls(r, lambda c: f"{c['rss_start_mb']:.0f}->{c['rss_end_mb']:.0f}")),
        ("  growth in the last third", lambda r: _calls(r, lambda c: f"{c['rss_slope_last_third']:+.1f} MB/s")),
        ("  VmRSS max / after", lambda r: f"{r['rss_max_mb']:.0f} / {r['rss_after_mb']:.0f} MB"),
        ("VmHWM at the end", lambda r: f"{r['peak_mb']:.0f} MB"),
        ("Output pane: last change", lambda r: _calls(r, lambda c: "never" if c["last_change_s"] is None
                                                      else f"{c['last_change_s']:.1f} s of {c['wall_s']:.1f}")),
        ("  changes / longest gap", lambda r: _calls(r, lambda c: f"{c['changes']} / {c['max_gap_s']:.1f} s")),
        ("  gaps over 1 s", lambda r: _calls(r, lambda c: str(c["gaps_over_1s"]))),
        ("  step on screen at last change", lambda r: _calls(r, lambda c: _step(c["last_shown"]))),
        ("generator start after Enter", lambda r: f"{c1(r)['t0']:.2f} s"),
        ("last generator end to receipt", lambda r: f"{r['gen_end_to_receipt_s']:.2f} s"),
        ("tool card(s) at the end", lambda r: _calls(r, lambda c: c["card"])),
        ("result reached the model", lambda r: " | ".join(("yes" if ok else "NO") + f" {n:,} ch"
                                                           for ok, n in zip(r["results_have_done_line"], r["result_chars"]))),
        ("  answer 'done' on screen", lambda r: "yes" if r["answer_done_shown"] else "NO"),
        ("app CPU idle afterwards", lambda r: f"{r['idle_cpu_after_pct']:.0f}%"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    ts.print_table(f"\nmlintern TUI, tmux {ts.WIDTH}x{ts.HEIGHT}, bash tool printing {args.rate:,.0f} lines/s for "
                   f"{args.seconds:g} s" + (f", {args.calls} calls in a row" if args.calls > 1 else ""), rows, runs)
    for i, r in enumerate(runs, 1):
        print(f"run {i}: last Output line at the end: {r['last_line_at_end']!r}")
        if r["problems"]:
            print(f"run {i}: suspicious lines on screen: {r['problems'][:5]}")
        if r["requests"] != args.calls + 1:
            print(f"run {i}: the app made {r['requests']} model requests (expected {args.calls + 1})")


def _step(line: str) -> str:
    match = re.search(r"'step': (\d+)", line)
    return f"{int(match.group(1)):,}" if match else (repr(line[:20]) if line else "-")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ts.add_run_args(p)
    p.add_argument("--rate", type=float, default=10_000, help="lines per second the tool prints")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--calls", type=int, default=2, help="run the generator this many times in a row (memory retained?)")
    args = p.parse_args()
    if not ts.preflight():
        return 2
    runs = ts.run_repeatedly(args, lambda: run_once(args))
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1, ensure_ascii=False))
    report(runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
