"""A local job printing 20,000 log lines a second, followed by the real job monitor.

    python bench/jobs_log_throughput.py [--rate 20000] [--seconds 10] [--runs 1] [--no-tui] [--json out.json]

The job is a pure-Python generator printing trainer-style lines (``{'step': 123, 'loss': ...,
't': <CLOCK_MONOTONIC when printed>}``) at ``--rate`` lines/s for ``--seconds`` s, flushed in
100 batches a second on an absolute schedule, then one ``GENERATOR DONE`` line. Two parts:

- **engine**: in this process, a real ``Session`` (demo model, local jobs backend) whose
  ``hf_jobs`` tool launches the job through the router. A subscriber on the session's event
  bus does what the Jobs pane does with each batch (``LossTracker.feed_many``). Measured:
  lines printed against the lines in the job's own output file, the monitor's log file and
  the ``job_log`` events (in order, none lost or repeated); events/s; this process's CPU
  (the job is a child and not counted); the lag from a line being printed to its event
  reaching the subscriber; event-loop lag of a 5 ms heartbeat; memory.
- **tui** (skip with ``--no-tui``): the installed app in a private tmux server at 120x36, as
  bench/tui_logs.py, with ``--yolo`` against a loopback model that asks for the same job and
  then answers. Measured: lines in the app's job log file against printed; key echo while
  the lines flow (one key every 300 ms) against idle; the app's own CPU (the job is its
  child, not counted); VmRSS over time and VmHWM; when the newest step on screen last
  changed, and how long after the generator ended the screen showed its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)

GENERATOR = '''\
"""Trainer-style log lines at a fixed rate, flushed in 100 batches a second, each stamped
with CLOCK_MONOTONIC; then a summary line, and the counts in a JSON file."""
import json, math, os, sys, time

rate, seconds, stats = float(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
burst = max(1, round(rate / 100))
interval = burst / rate
start = time.monotonic()
n = bursts = 0
while time.monotonic() - start < seconds:
    now = time.monotonic()
    lines = []
    for _ in range(burst):
        lines.append(f"{{'step': {n}, 'loss': {2.5 * math.exp(-n / 40000) + 0.05 * math.sin(n):.4f}, "
                     f"'grad_norm': {0.8 + 0.1 * math.cos(n):.4f}, 'epoch': {n / 50000:.4f}, 't': {now:.6f}}}")
        n += 1
    sys.stdout.write("\\n".join(lines) + "\\n")
    sys.stdout.flush()
    bursts += 1
    delay = start + bursts * interval - time.monotonic()
    if delay > 0:
        time.sleep(delay)
end = time.monotonic()
print(f"GENERATOR DONE lines={n} wall={end - start:.3f}s rate={n / (end - start):.0f}/s", flush=True)
with open(stats + ".tmp", "w") as f:
    json.dump({"lines": n, "start": start, "end": end, "cpu_s": sum(os.times()[:2])}, f)
os.replace(stats + ".tmp", stats)
'''
_STAMP = re.compile(r"'t': ([\d.]+)\}$")
_STEP = re.compile(r"'step': (\d+)")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _rss(field: str = "VmRSS") -> float:
    return ts.memory_mb(os.getpid(), field)


def _lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


# --------------------------------------------------------------------------- engine


async def engine_run(args: argparse.Namespace, work: Path) -> dict:
    os.environ["MLINTERN_HOME"] = str(work / "home")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from agent.config import Config
    from agent.jobs.loss import LossTracker
    from agent.protocol import JobLog, JobUpdate
    from agent.session import Session

    cwd = work / "cwd"
    cwd.mkdir(parents=True, exist_ok=True)
    stats_path = cwd / "gen_stats.json"
    # the bench launches the jobs itself, in the user's place: CPU jobs run without a card
    # (the router refuses a gated call that nobody approved)
    session = Session(Config(confirm_cpu_jobs=False), model_id="demo", cwd=cwd, jobs_backend="local")
    sub = session.subscribe("bench")
    tracker = LossTracker()
    got = {"events": 0, "lines": 0, "steps_in_order": True, "next_step": 0, "done_line": False,
           "lags": [], "feed_s": 0.0, "final": None, "last_at": None, "first_at": None}
    beats: list[float] = []

    async def heartbeat() -> None:
        nxt = time.monotonic()
        while True:
            nxt += 0.005
            await asyncio.sleep(max(0.0, nxt - time.monotonic()))
            beats.append(max(0.0, time.monotonic() - nxt))
            nxt = max(nxt, time.monotonic())  # a long stall is one sample, not a burst of catch-ups

    async def consume() -> None:
        async for event in sub:
            now = time.monotonic()
            if isinstance(event, JobLog):
                got["events"] += 1
                got["lines"] += len(event.lines)
                got["first_at"] = got["first_at"] or now
                got["last_at"] = now
                stamp = _STAMP.search(event.lines[0])
                if stamp:
                    got["lags"].append(now - float(stamp.group(1)))
                t0 = time.thread_time()  # CPU, not wall: other load must not count
                tracker.feed_many(event.lines)  # as the Jobs pane reads a batch
                got["feed_s"] += time.thread_time() - t0
                for line in event.lines:
                    step = _STEP.match(line, 1)
                    if step:
                        if int(step.group(1)) != got["next_step"]:
                            got["steps_in_order"] = False
                        got["next_step"] = int(step.group(1)) + 1
                    elif line.startswith("GENERATOR DONE"):
                        got["done_line"] = True
            elif isinstance(event, JobUpdate) and event.status in ("COMPLETED", "ERROR", "CANCELED"):
                got["final"] = event.status
                return

    beat_task = asyncio.ensure_future(heartbeat())
    consumer = asyncio.ensure_future(consume())
    await asyncio.sleep(0.5)
    rss0 = _rss()
    cpu0 = sum(os.times()[:2])
    beats.clear()
    call = session.router.parse("bench-1", "hf_jobs", json.dumps({
        "operation": "run", "script": GENERATOR, "script_args": [f"{args.rate:g}", f"{args.seconds:g}", str(stats_path)],
        "timeout": "5m"}))
    t_call = time.monotonic()
    result = await session.router.execute(call, session._tool_context("bench-1", "hf_jobs"))
    run_returned_s = time.monotonic() - t_call
    if "accepted on" not in result.output:
        raise RuntimeError(f"the job did not start: {result.output[:300]}")
    try:
        await asyncio.wait_for(consumer, timeout=args.seconds + 120)
    finally:
        beat_task.cancel()
    cpu = sum(os.times()[:2]) - cpu0
    flow_beats = list(beats)
    stats = json.loads(stats_path.read_text())
    [watched] = session.jobs.monitor.jobs.values()
    job_dir = session.jobs.backend.jobs_dir / watched.info.id
    end_lag = got["last_at"] - stats["end"] if got["last_at"] else float("nan")
    out = {
        "run_result_head": result.output.splitlines()[0],
        "run_returned_s": run_returned_s,
        "printed": stats["lines"] + 1,
        "gen_wall_s": stats["end"] - stats["start"], "gen_cpu_s": stats["cpu_s"],
        "backend_file_lines": _lines(job_dir / "output.log"),
        "monitor_file_lines": _lines(watched.log_path),
        "event_lines": got["lines"], "events": got["events"],
        "steps_in_order": got["steps_in_order"] and got["next_step"] == stats["lines"], "done_line": got["done_line"],
        "final_status": got["final"],
        "events_per_s": got["events"] / max(1e-9, got["last_at"] - got["first_at"]),
        "lines_per_s_delivered": got["lines"] / max(1e-9, got["last_at"] - got["first_at"]),
        "app_cpu_s": cpu, "app_cpu_pct": 100 * cpu / max(1e-9, stats["end"] - stats["start"] + end_lag),
        "feed_s": got["feed_s"],
        "lag_p50_ms": 1000 * _pct(got["lags"], 0.5), "lag_p99_ms": 1000 * _pct(got["lags"], 0.99),
        "lag_max_ms": 1000 * max(got["lags"], default=float("nan")),
        "end_lag_ms": 1000 * end_lag,
        "beat_p50_ms": 1000 * _pct(flow_beats, 0.5), "beat_p99_ms": 1000 * _pct(flow_beats, 0.99),
        "beat_max_ms": 1000 * max(flow_beats, default=float("nan")),
        "rss_before_mb": rss0, "rss_after_mb": _rss(), "hwm_mb": _rss("VmHWM"),
        "loss_points": len(tracker.points),
    }
    await session.jobs.monitor.close()
    sub.close()
    return out


def engine_report(runs: list[dict], args: argparse.Namespace) -> None:
    rows = [
        ("lines printed (incl. the DONE line)", lambda r: f"{r['printed']:,} in {r['gen_wall_s']:.2f} s"),
        ("  in the job's output file", lambda r: f"{r['backend_file_lines']:,}"),
        ("  in the monitor's log file", lambda r: f"{r['monitor_file_lines']:,}"),
        ("  in job_log events", lambda r: f"{r['event_lines']:,}" + (" in order" if r["steps_in_order"] else " OUT OF ORDER/GAPS")
                                          + ("" if r["done_line"] else ", no DONE line")),
        ("job_log events, events/s", lambda r: f"{r['events']:,}, {r['events_per_s']:.1f}/s"),
        ("lines/s delivered", lambda r: f"{r['lines_per_s_delivered']:,.0f}"),
        ("hf_jobs run returned after", lambda r: f"{r['run_returned_s']:.2f} s"),
        ("process CPU over the flow", lambda r: f"{r['app_cpu_s']:.1f} s ({r['app_cpu_pct']:.0f}% of a core)"),
        ("  of which LossTracker.feed_many", lambda r: f"{r['feed_s']:.2f} s"),
        ("  generator's own CPU", lambda r: f"{r['gen_cpu_s']:.1f} s"),
        ("line printed -> event, p50/p99/max", lambda r: f"{r['lag_p50_ms']:.0f}/{r['lag_p99_ms']:.0f}/{r['lag_max_ms']:.0f} ms"),
        ("  last line after the generator ended", lambda r: f"{r['end_lag_ms']:.0f} ms"),
        ("event loop lag (5 ms beat), p50/p99/max", lambda r: f"{r['beat_p50_ms']:.1f}/{r['beat_p99_ms']:.1f}/{r['beat_max_ms']:.0f} ms"),
        ("VmRSS before / after, VmHWM", lambda r: f"{r['rss_before_mb']:.0f} / {r['rss_after_mb']:.0f}, {r['hwm_mb']:.0f} MB"),
        ("final status", lambda r: str(r["final_status"])),
    ]
    ts.print_table(f"\nengine: Session + hf_jobs run + JobMonitor + bus subscriber, {args.rate:,.0f} lines/s "
                   f"for {args.seconds:g} s", rows, runs)


# --------------------------------------------------------------------------- tui


def tui_run(args: argparse.Namespace) -> dict:
    from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls

    with tempfile.TemporaryDirectory(prefix="mlintern-bench-jobs-") as tmp:
        work = Path(tmp)
        home, cwd = work / "home", work / "cwd"
        home.mkdir()
        cwd.mkdir()
        stats_path = cwd / "gen_stats.json"
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        server.script(
            ToolCalls([Call("j1", "hf_jobs", json.dumps({
                "operation": "run", "script": GENERATOR, "timeout": "5m",
                "script_args": [f"{args.rate:g}", f"{args.seconds:g}", str(stats_path)]}))],
                content="Launching the log generator as a job."),
            Text("The generator job is running."),
            # the agent wakes when its job ends (a turn of its own): the model reads the news
            Text("The generator job finished."),
        )
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            result = run.startup(ts.app_command(home, server.base_url, ts.MODEL, extra="--yolo"), cwd)
            pid = ts.app_pid(tm.pane_pid())
            result["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            result.update(tui_flow(run, pid, home, stats_path, args))
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            tm.close()
            server.stop()


def tui_flow(run: ts.Run, pid: int, home: Path, stats_path: Path, args: argparse.Namespace) -> dict:
    tm = run.tm
    prompt = "Run the log generator job."
    tm.keys(ts._quote(prompt), literal=True)
    if run.wait_prompt(prompt, time.perf_counter()) is None:
        raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
    offset = time.perf_counter() - time.monotonic()
    rss0 = ts.memory_mb(pid, "VmRSS")
    t_enter = time.perf_counter()
    tm.keys("Enter")
    probe = ts.EchoProbe(run, args.echo_every, t_enter)
    samples: list[tuple[float, float, float]] = []  # (t, VmRSS MB, app CPU s)
    step_changes: list[tuple[float, int]] = []
    done_shown = receipt = None
    stats = None
    problems: list[str] = []
    while True:
        lines = tm.screen()
        now = time.perf_counter()
        if now - t_enter > args.timeout + args.seconds:
            raise RuntimeError("the generator did not finish in time:\n" + "\n".join(lines))
        probe.see(lines, now, typing=stats is None)
        steps = [int(m) for line in lines for m in _STEP.findall(line)]
        if steps and (not step_changes or max(steps) > step_changes[-1][1]):
            step_changes.append((now, max(steps)))
        if done_shown is None and any("GENERATOR DONE" in line for line in lines):
            done_shown = now
        if receipt is None and ts.shows_receipt(lines):
            receipt = now
        if not samples or now - samples[-1][0] >= 0.5:
            samples.append((now, ts.memory_mb(pid, "VmRSS"), ts.cpu_seconds(pid, tree=False)))
        ts.note_problems(lines, problems)
        if stats is None and stats_path.exists():
            try:
                stats = json.loads(stats_path.read_text())
            except ValueError:
                pass
        if stats is not None and (done_shown is not None or now - (stats["end"] + offset) > 10) and not probe.pending:
            break
        time.sleep(run.poll)
    hwm = ts.memory_mb(pid)
    g0, g1 = stats["start"] + offset, stats["end"] + offset

    def at(t: float) -> tuple[float, float, float]:
        return min(samples, key=lambda s: abs(s[0] - t))

    time.sleep(2.0)  # let the monitor write the reconciled tail
    logs = list((home / "jobs").glob("*.log"))
    steady = [t for t, _ in step_changes if g0 + 1.0 <= t <= g1]
    gaps = [b - a for a, b in zip([g0 + 1.0] + steady, steady + [g1])]
    in_flow = [ms * 1000 for ms, sent in zip(probe.echo, probe.echo_at) if g0 <= t_enter + sent <= g1]
    return {
        "printed": stats["lines"] + 1, "gen_wall_s": g1 - g0, "gen_cpu_s": stats["cpu_s"],
        "log_file_lines": _lines(logs[0]) if len(logs) == 1 else None,
        "echo_flow_ms": in_flow, "echo_lost": len(probe.pending),
        "app_cpu_s": at(g1)[2] - at(g0)[2],
        "rss_before_mb": rss0, "rss_start_mb": at(g0)[1], "rss_end_mb": at(g1)[1],
        "rss_max_mb": max(s[1] for s in samples), "peak_mb": hwm,
        "screen_steps_max": step_changes[-1][1] if step_changes else None,
        "screen_changes": len(steady), "screen_max_gap_s": max(gaps) if gaps else None,
        "done_shown_after_s": None if done_shown is None else done_shown - g1,
        "receipt_s": None if receipt is None else receipt - t_enter,
        "problems": problems, "final_screen": tm.screen(),
    }


def tui_report(runs: list[dict], args: argparse.Namespace) -> None:
    def ms(values: list[float]) -> str:
        return f"{statistics.median(values):.0f}/{max(values):.0f} ms (n={len(values)})" if values else "n/a"

    rows = [
        ("lines printed / in the app's job log", lambda r: f"{r['printed']:,} / {r['log_file_lines'] or 0:,}"),
        ("key echo while flowing, med/max", lambda r: ms(r["echo_flow_ms"]) + (f", {r['echo_lost']} lost" if r["echo_lost"] else "")),
        ("  key echo idle", lambda r: ms(r["idle_echo_ms"]).split(" (")[0]),
        ("app CPU over the flow (job excluded)", lambda r: f"{r['app_cpu_s']:.1f} s ({100 * r['app_cpu_s'] / r['gen_wall_s']:.0f}%)"),
        ("VmRSS before Enter / flow start -> end", lambda r: f"{r['rss_before_mb']:.0f} / {r['rss_start_mb']:.0f} -> {r['rss_end_mb']:.0f} MB"),
        ("VmRSS max, VmHWM", lambda r: f"{r['rss_max_mb']:.0f}, {r['peak_mb']:.0f} MB"),
        ("newest step on screen", lambda r: f"{r['screen_steps_max']:,}" if r["screen_steps_max"] is not None else "never"),
        ("  screen changes / longest gap", lambda r: f"{r['screen_changes']} / {r['screen_max_gap_s']:.1f} s"
                                                     if r["screen_max_gap_s"] is not None else "-"),
        ("DONE line on screen after the end", lambda r: "never" if r["done_shown_after_s"] is None else f"{r['done_shown_after_s']:.2f} s"),
        ("turn receipt after Enter", lambda r: "never" if r["receipt_s"] is None else f"{r['receipt_s']:.2f} s"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    ts.print_table(f"\ntui: installed app in tmux {ts.WIDTH}x{ts.HEIGHT}, --yolo, the job printing "
                   f"{args.rate:,.0f} lines/s for {args.seconds:g} s", rows, runs)
    for i, r in enumerate(runs, 1):
        if r["problems"]:
            print(f"run {i}: suspicious lines on screen: {r['problems'][:5]}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ts.add_run_args(p)
    p.add_argument("--rate", type=float, default=20_000, help="lines per second the job prints")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--no-tui", action="store_true", help="only the engine part (no tmux needed)")
    args = p.parse_args()
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    engine_runs, tui_runs = [], []
    for i in range(args.runs):
        busy = ts.wait_for_quiet(args.quiet_wait)
        print(f"engine run {i + 1}/{args.runs} (machine {busy:.0f}% busy before it) …", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory(prefix="mlintern-bench-jobs-") as tmp:
            engine_runs.append(asyncio.run(engine_run(args, Path(tmp))))
    if not args.no_tui and ts.preflight():
        tui_runs = ts.run_repeatedly(args, lambda: tui_run(args))
    if args.json:
        args.json.write_text(json.dumps({"engine": engine_runs, "tui": tui_runs}, indent=1, ensure_ascii=False))
    engine_report(engine_runs, args)
    if tui_runs:
        tui_report(tui_runs, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
