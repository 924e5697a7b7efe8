"""The full-screen app with a 1,000-message conversation: the start against the end.

    python bench/tui_long_conversation.py [--runs 3] [--rounds 500] [--json out.json]

Setup: as bench/tui_stream.py (installed ``mlintern`` in a private tmux server at 120x36,
``-m vllm/bench-model`` against a loopback OpenAI-compatible server, ``--max-iterations``
above the round count). One prompt; the model answers with ``--rounds`` tool-call rounds,
each a sentence of text plus one call (``read`` of a small file, or ``bash echo``,
alternating, every call different so the repetition guard stays quiet), then a final
answer. That is 2 messages per round: 500 rounds make a 1,002-message history.

Two replies are held back by the model server until the bench has measured: the one after
``--start-rounds`` rounds (the start) and the final answer (the end). At both points the
app is waiting for the model, so the screen is the same kind of screen:
- key echo: ``--keys`` printable keys, one at a time, each timed until the prompt box shows it;
- VmRSS;
- scrolling: PageUp a few times, PageDown, ctrl+home, ctrl+end (the app binds these on top of
  the prompt, which keeps focus), each timed until the conversation's rows change.

Between the two: wall time and app CPU for the rounds, seconds per round early against
late, and key echo every 300 ms while the rounds run (grouped by round). After the final
answer: the receipt, idle echo, VmRSS and VmHWM, and the history length the model saw.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)

#: what on screen suggests something went wrong (printed after the table)
PROBLEM = re.compile(r"✗|Traceback|Exception|Error|⚠")
from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls  # noqa: E402

PROMPT = "Go through every note file and check each one."
FINAL = "All notes checked: nothing needs changing."
SENTENCES = [
    "Reading the next note to compare its numbers with the previous run.",
    "The loss curve in this one looks flat after warmup; checking the next file.",
    "Echoing a marker so the log shows where this batch of checks ends.",
    "This note agrees with the eval table, moving on to the next one.",
    "Learning rate and batch size match the config; the next note should cover the eval split.",
]


class Gate:
    """Holds one model reply until the bench releases it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()

    def hold(self, reply):
        def held(body: dict):
            self.arrived.set()
            self.release.wait(600)
            return reply
        return held


class Watch:
    """The app's CPU (its own threads, in ns; not the ``bash`` children) read at each
    request's arrival, once ``pid`` is known: CPU per round, free of the time the model
    server itself takes to read a growing request."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.cpu_ns: list[int | None] = []

    def read(self) -> None:
        pid = self.pid
        self.cpu_ns.append(ts.thread_cpu_ns(pid) if pid is not None else None)


def stamped(arrivals: list[float], replies: list, watch: Watch | None = None) -> list:
    """Each reply records when its request arrived (perf_counter), and the app's CPU then,
    before it is resolved."""
    def stamp(reply):
        def stamped_reply(body: dict):
            arrivals.append(time.perf_counter())
            if watch is not None:
                watch.read()
            return reply(body) if callable(reply) else reply
        return stamped_reply
    return [stamp(r) for r in replies]


def prepare(work: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """MLINTERN_HOME with the context window set, and a working directory with the notes."""
    home = work / "home"
    home.mkdir()
    # the assumed 32k window of an unknown local model would compact long before 1,000
    # messages, and the summary request would eat a scripted reply
    config = {"context_windows": {ts.MODEL: args.window}}
    if args.no_local_echo:
        config["local_echo"] = False  # keys echo only when the UI loop gets to them
    if args.no_frame_pacing:
        config["frame_pacing"] = False  # every tick of the frame timer draws
    (home / "config.json").write_text(json.dumps(config))
    cwd = work / "cwd"
    (cwd / "notes").mkdir(parents=True)
    for i in range(0, args.rounds, 2):
        (cwd / "notes" / f"n{i:04d}.txt").write_text(
            f"note {i}\nrun r{i % 17:02d}: eval loss {1 + (i % 13) / 10:.2f}\nstatus: ok\n")
    return home, cwd


def per_round(arrivals: list, first: int, last: int, span: int) -> tuple[float, float] | None:
    """Per round over the first and the last ``span`` rounds of first..last (arrival ``k`` is
    request k+1: the model call after k rounds), of seconds or of CPU ns; None if a reading
    is missing."""
    ends = (arrivals[first], arrivals[first + span], arrivals[last - span], arrivals[last])
    if any(x is None for x in ends):
        return None
    return (ends[1] - ends[0]) / span, (ends[3] - ends[2]) / span


def round_figures(arrivals: list[float], watch: Watch, args: argparse.Namespace) -> dict:
    """Seconds and app CPU per round over the first and last 100 rounds after the start point
    (fewer when the run is short)."""
    span = min(100, (args.rounds - args.start_rounds - 1) // 2)
    early, late = per_round(arrivals, args.start_rounds + 1, args.rounds, span)
    cpu = per_round(watch.cpu_ns, args.start_rounds + 1, args.rounds, span)
    return {"s_per_round_early": early, "s_per_round_late": late,
            "cpu_ms_per_round": None if cpu is None else [ns / 1e6 for ns in cpu],
            "cpu_ms_by_100": cpu_by_hundred(watch.cpu_ns, args.start_rounds + 1, args.rounds)}


def cpu_by_hundred(cpu_ns: list, first: int, last: int) -> dict[str, float]:
    """App CPU per round over each hundred rounds from ``first`` (whether it still grows once
    the conversation pane holds its most blocks, not only first against last)."""
    out = {}
    for start in range(first, last, 100):
        end = min(start + 100, last)
        if end - start >= 20 and cpu_ns[start] is not None and cpu_ns[end] is not None:
            out[f"{start}-{end}"] = (cpu_ns[end] - cpu_ns[start]) / (end - start) / 1e6
    return out


def round_reply(i: int) -> ToolCalls:
    text = f"Step {i + 1}. {SENTENCES[i % len(SENTENCES)]}"
    if i % 2 == 0:
        call = Call(f"call_{i}", "read", json.dumps({"path": f"notes/n{i:04d}.txt"}))
    else:
        call = Call(f"call_{i}", "bash", json.dumps({"command": f"echo round {i + 1} checked"}))
    return ToolCalls([call], content=text)


# --------------------------------------------------------------------------- the screen


def prompt_top(lines: list[str]) -> int:
    """Row of the prompt box's top border (it sits at column 1, the side panes far right)."""
    rows = [i for i, line in enumerate(lines) if line.startswith(" ╭")]
    return rows[-1] if rows else len(lines) - 2


def conversation_rows(lines: list[str]) -> list[str]:
    split = lines[0].find("╭─ Plan") if lines and "╭─ Plan" in lines[0] else ts.WIDTH
    return [line[:split].rstrip() for line in lines[:prompt_top(lines)]]


def busy(lines: list[str]) -> bool:
    return "working…" in ts.status_line(lines)


class Measure:
    def __init__(self, run: ts.Run, pid: int, args: argparse.Namespace):
        self.run = run
        self.tm = run.tm
        self.pid = pid
        self.args = args

    def settle(self, quiet: float = 0.5, limit: float = 10.0) -> list[str]:
        """Wait until the conversation rows stop changing for ``quiet`` seconds."""
        end = time.perf_counter() + limit
        rows = conversation_rows(self.tm.screen())
        since = time.perf_counter()
        while time.perf_counter() < end:
            time.sleep(0.02)
            now_rows = conversation_rows(self.tm.screen())
            if now_rows != rows:
                rows, since = now_rows, time.perf_counter()
            elif time.perf_counter() - since >= quiet:
                break
        return self.tm.screen()

    def scroll(self, key: str, limit: float = 3.0) -> tuple[float | None, list[str]]:
        """Send one key; seconds until the conversation rows change (None: they did not)."""
        before = conversation_rows(self.tm.screen())
        t = time.perf_counter()
        self.tm.keys(key)
        while True:
            lines = self.tm.screen()
            now = time.perf_counter()
            if conversation_rows(lines) != before:
                time.sleep(0.3)  # let it finish drawing and leave a gap before the next key
                return now - t, self.tm.screen()
            if now - t > limit:
                return None, lines
            time.sleep(self.run.poll)

    def point(self) -> dict:
        """Everything measured at the start and at the end."""
        screen = self.settle()
        out: dict = {"rss_mb": ts.memory_mb(self.pid, "VmRSS"), "screen": screen}
        echo = [self.run.key(c) for c in "abcdefghijklmnopqrstuvwxyz"[: self.args.keys]]
        self.run.clear()
        out["echo_ms"] = [x * 1000 for x in echo if x is not None]
        out["echo_lost"] = sum(x is None for x in echo)
        bottom = conversation_rows(self.tm.screen())
        steps = [(f"PageUp {i + 1}", "PageUp") for i in range(self.args.pages)]
        steps += [("PageDown", "PageDown"), ("ctrl+home", "C-Home"), ("ctrl+end", "C-End")]
        out["scroll"] = []
        for name, key in steps:
            latency, lines = self.scroll(key)
            rows = [r.strip() for r in conversation_rows(lines) if r.strip()]
            out["scroll"].append({"key": name, "s": latency, "top": rows[:2]})
        out["back_at_bottom"] = conversation_rows(self.tm.screen()) == bottom
        c0 = ts.cpu_seconds(self.pid)
        time.sleep(1.0)
        out["cpu_waiting_pct"] = (ts.cpu_seconds(self.pid) - c0) * 100
        return out


# --------------------------------------------------------------------------- one run


def run_once(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-conv-") as tmp:
        work = Path(tmp)
        home, cwd = prepare(work, args)
        start_gate, end_gate = Gate(), Gate()
        replies = [round_reply(i) for i in range(args.rounds)]
        replies[args.start_rounds] = start_gate.hold(replies[args.start_rounds])
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        server.arrivals = []
        watch = Watch()
        server.script(*stamped(server.arrivals, [*replies, end_gate.hold(Text(FINAL))], watch))
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            command = ts.app_command(home, server.base_url, ts.MODEL, f"--max-iterations {args.rounds + 10}")
            result = run.startup(command, cwd)
            pid = ts.app_pid(tm.pane_pid())
            watch.pid = pid
            tmux_pid = tm.server_pid()
            m = Measure(run, pid, args)
            result["rss_idle_mb"] = ts.memory_mb(pid, "VmRSS")
            result["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghij") if x is not None]
            run.clear()
            tm.keys(ts._quote(PROMPT), literal=True)
            if run.wait_prompt(PROMPT, time.perf_counter()) is None:
                raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
            t_enter = time.perf_counter()
            tm.keys("Enter")
            if not start_gate.arrived.wait(args.timeout):
                raise RuntimeError("the start point never came:\n" + "\n".join(tm.screen()))
            result["enter_to_start_s"] = time.perf_counter() - t_enter
            result["start"] = m.point()
            result.update(rounds(run, pid, tmux_pid, server, start_gate, end_gate, args, watch))
            result["end"] = m.point()
            t = time.perf_counter()
            end_gate.release.set()
            receipt = None
            while time.perf_counter() - t < 30:
                lines = tm.screen()
                if ts.shows_receipt(lines) and not busy(lines):
                    receipt = time.perf_counter() - t
                    break
                time.sleep(run.poll)
            result["final_to_receipt_s"] = receipt
            final = m.settle()
            result["final_screen"] = final
            result["final_shown"] = any(FINAL in row for row in final)
            result["after_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghij") if x is not None]
            run.clear()
            c0 = ts.cpu_seconds(pid)
            time.sleep(2.0)
            result["idle_cpu_after_pct"] = (ts.cpu_seconds(pid) - c0) / 2.0 * 100
            result["rss_after_mb"] = ts.memory_mb(pid, "VmRSS")
            result["peak_mb"] = ts.memory_mb(pid)
            last = server.requests[-1] if server.requests else {}
            result["messages_last_request"] = len(last.get("messages", []))
            result["requests"] = len(server.requests)
            result["clean_exit"] = run.quit(pid)
            return result
        finally:
            start_gate.release.set()
            end_gate.release.set()
            tm.close()
            server.stop()


def rounds(run: ts.Run, pid: int, tmux_pid: int, server: ScriptedLLMServer, start_gate: Gate, end_gate: Gate,
           args: argparse.Namespace, watch: Watch) -> dict:
    """Release the start and run to the end point, typing every 300 ms meanwhile."""
    tm = run.tm
    cpu0, tmux0 = ts.cpu_seconds(pid), ts.cpu_seconds(tmux_pid, tree=False)
    t0 = time.perf_counter()
    start_gate.release.set()
    probe = ts.EchoProbe(run, args.echo_every, t0)
    rss: list[tuple[float, float]] = []
    sent_at_round: list[int] = []  # the request count when each key went out
    problems: list[str] = []
    arrived = None
    while arrived is None or (probe.pending and time.perf_counter() - arrived < 5):
        lines = tm.screen()
        now = time.perf_counter()
        if now - t0 > args.timeout:
            raise RuntimeError(f"the end point did not come within {args.timeout:.0f} s:\n" + "\n".join(lines))
        if arrived is None and end_gate.arrived.is_set():
            arrived = now
            cpu1, tmux1 = ts.cpu_seconds(pid), ts.cpu_seconds(tmux_pid, tree=False)
        n_sent = len(probe.pending) + len(probe.echo)
        probe.see(lines, now, typing=arrived is None)
        if len(probe.pending) + len(probe.echo) > n_sent:
            sent_at_round.append(len(server.requests))
        if not rss or now - rss[-1][0] >= 0.5:
            rss.append((now, ts.memory_mb(pid, "VmRSS")))
        ts.note_problems(lines, problems, PROBLEM)
        time.sleep(run.poll)
    run.clear()

    bins: dict[str, list[float]] = {}
    for ms, n in zip(probe.echo, sent_at_round):
        lo = (n // 100) * 100
        bins.setdefault(f"{lo}-{lo + 99}", []).append(ms * 1000)
    return {
        "rounds_wall_s": arrived - t0,
        "rounds_run": args.rounds - args.start_rounds,
        "rounds_cpu_s": cpu1 - cpu0,
        "rounds_tmux_cpu_s": tmux1 - tmux0,
        **round_figures(server.arrivals, watch, args),
        "echo_busy_ms": [x * 1000 for x in probe.echo],
        # when each of those keys went out, on the machine's monotonic clock (time.perf_counter),
        # to line them up with a timeline recorded inside the app
        "echo_busy_sent_at": [round(t0 + x, 4) for x in probe.echo_at],
        "echo_busy_lost": len(probe.pending),
        "echo_busy_by_round": bins,
        "rss_timeline": [(round(t - t0, 2), round(r, 1)) for t, r in rss],
        "arrivals": [round(t - t0, 4) for t in server.arrivals],
        "problems": problems,
    }


def headless_once(args: argparse.Namespace) -> dict:
    """The same script through ``mlintern -p`` (no screen): the engine's share of the time."""
    import resource

    with tempfile.TemporaryDirectory(prefix="mlintern-bench-conv-") as tmp:
        home, cwd = prepare(Path(tmp), args)
        server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
        server.arrivals = []
        watch = Watch()
        server.script(*stamped(server.arrivals, [*(round_reply(i) for i in range(args.rounds)), Text(FINAL)], watch))
        env = dict(os.environ, MLINTERN_HOME=str(home), VLLM_BASE_URL=server.base_url, OPENAI_API_KEY="sk-bench")
        try:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            app = subprocess.Popen([str(ts.APP), "-p", PROMPT, "-m", ts.MODEL, "--max-iterations", str(args.rounds + 10)],
                                   cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            watch.pid = app.pid  # the console script's python itself (no wrapper in between)
            try:
                stdout, stderr = app.communicate(timeout=args.timeout)
            except subprocess.TimeoutExpired:
                app.kill()
                raise
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
        finally:
            server.stop()
        if app.returncode or FINAL not in stdout:
            raise RuntimeError(f"headless run failed ({app.returncode}): {stderr[-2000:]}")
        return {
            "wall_s": wall,
            "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
            "rounds_s": server.arrivals[args.rounds] - server.arrivals[args.start_rounds],
            **round_figures(server.arrivals, watch, args),
        }


# --------------------------------------------------------------------------- report


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values):.0f}/{max(values):.0f} ms" if values else "n/a"


def _pair_ms(pair: list[float] | None, between: str = " / ") -> str:
    return "n/a" if pair is None else f"{pair[0]:.1f}{between}{pair[1]:.1f} ms"


def _scroll(point: dict) -> str:
    parts = []
    for step in point["scroll"]:
        parts.append(f"{step['s'] * 1000:.0f}" if step["s"] is not None else "-")
    return " ".join(parts) + " ms"


def report(runs: list[dict], args: argparse.Namespace, headless: dict | None = None) -> None:
    keys = " ".join(["PgUp"] * args.pages + ["PgDn", "Home", "End"])
    rows = [
        ("startup to usable prompt", lambda r: f"{r['usable_s']:.2f} s"),
        ("key echo idle, before the prompt", lambda r: _ms(r["idle_echo_ms"])),
        (f"START (after {args.start_rounds} rounds)", lambda r: f"Enter + {r['enter_to_start_s']:.2f} s"),
        ("  key echo med/max", lambda r: _ms(r["start"]["echo_ms"])),
        ("  VmRSS", lambda r: f"{r['start']['rss_mb']:.0f} MB"),
        (f"  scroll ({keys})", lambda r: _scroll(r["start"])),
        ("  app CPU waiting for the model", lambda r: f"{r['start']['cpu_waiting_pct']:.0f}%"),
        (f"ROUNDS {args.start_rounds + 1}-{args.rounds}", lambda r: f"{r['rounds_wall_s']:.1f} s wall"),
        ("  app CPU (+children) / tmux", lambda r: f"{r['rounds_cpu_s']:.1f} s / {r['rounds_tmux_cpu_s']:.1f} s"),
        ("  s/round first / last 100", lambda r: f"{r['s_per_round_early'] * 1000:.0f} / {r['s_per_round_late'] * 1000:.0f} ms"),
        ("  app CPU/round first / last 100", lambda r: _pair_ms(r.get("cpu_ms_per_round"))),
        ("  key echo while running", lambda r: _ms(r["echo_busy_ms"]) + f" (n={len(r['echo_busy_ms'])}"
                                                + (f", {r['echo_busy_lost']} lost)" if r["echo_busy_lost"] else ")")),
        (f"END (after {args.rounds} rounds)", lambda r: f"{r['messages_last_request']} msgs sent to model"),
        ("  key echo med/max", lambda r: _ms(r["end"]["echo_ms"])),
        ("  VmRSS", lambda r: f"{r['end']['rss_mb']:.0f} MB"),
        (f"  scroll ({keys})", lambda r: _scroll(r["end"])),
        ("  app CPU waiting for the model", lambda r: f"{r['end']['cpu_waiting_pct']:.0f}%"),
        ("final answer to receipt", lambda r: "n/a" if r["final_to_receipt_s"] is None else f"{r['final_to_receipt_s']:.2f} s"),
        ("  key echo idle after", lambda r: _ms(r["after_echo_ms"])),
        ("  VmRSS / VmHWM", lambda r: f"{r['rss_after_mb']:.0f} / {r['peak_mb']:.0f} MB"),
        ("  app CPU idle", lambda r: f"{r['idle_cpu_after_pct']:.0f}%"),
        ("final answer on screen", lambda r: "yes" if r["final_shown"] else "NO"),
        ("clean quit (ctrl+q)", lambda r: "yes" if r["clean_exit"] else "NO"),
    ]
    if headless:
        rows.insert(rows.index(next(r for r in rows if r[0].startswith("  key echo while running"))), (
            "  same rounds headless (-p)", lambda r: f"{headless['rounds_s']:.1f} s, "
                                                     f"{headless['s_per_round_early'] * 1000:.0f}/{headless['s_per_round_late'] * 1000:.0f} ms, "
                                                     f"CPU {_pair_ms(headless.get('cpu_ms_per_round'), '/')}"))
    ts.print_table(f"\nmlintern TUI, tmux {ts.WIDTH}x{ts.HEIGHT}, {args.rounds} tool-call rounds "
                   f"({2 * args.rounds + 2} messages), scroll times until the conversation rows change "
                   "('-': no change in 3 s)", rows, runs, 32)
    for i, r in enumerate(runs, 1):
        by_round = ", ".join(f"{k}: {statistics.median(v):.0f}" for k, v in sorted(r["echo_busy_by_round"].items(),
                                                                                  key=lambda kv: int(kv[0].split('-')[0])))
        print(f"run {i}: key echo while running, median ms by round: {by_round}")
        if r.get("cpu_ms_by_100"):
            print(f"run {i}: app CPU ms/round by round: "
                  + ", ".join(f"{k}: {v:.1f}" for k, v in r["cpu_ms_by_100"].items()))
        for where in ("start", "end"):
            home = next(s for s in r[where]["scroll"] if s["key"] == "ctrl+home")
            print(f"run {i}: {where}: top after ctrl+home: {home['top']}; back at the bottom after ctrl+end: "
                  f"{'yes' if r[where]['back_at_bottom'] else 'NO'}")
        if r["problems"]:
            print(f"run {i}: suspicious lines on screen: {r['problems'][:5]}")
        if r["requests"] != args.rounds + 1:
            print(f"run {i}: the app made {r['requests']} model requests (expected {args.rounds + 1})")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=1)
    p.add_argument("--rounds", type=int, default=500, help="tool-call rounds (2 messages each)")
    p.add_argument("--start-rounds", type=int, default=20, help="rounds before the start measurement")
    p.add_argument("--keys", type=int, default=15, help="key-echo samples at the start and at the end")
    p.add_argument("--pages", type=int, default=3, help="PageUp presses in the scroll test")
    p.add_argument("--window", type=int, default=1_000_000, help="context window configured for the model")
    p.add_argument("--echo-every", type=float, default=0.3, help="seconds between key-echo samples while running")
    p.add_argument("--poll-ms", type=float, default=2.0, help="sleep between screen reads")
    p.add_argument("--timeout", type=float, default=600.0)
    p.add_argument("--quiet-wait", type=float, default=60.0, help="seconds to wait for other load to settle before a run")
    p.add_argument("--no-headless", action="store_true", help="skip the comparison run through mlintern -p")
    p.add_argument("--no-local-echo", action="store_true", help="run the app with local_echo off (for an A/B)")
    p.add_argument("--no-frame-pacing", action="store_true", help="run the app with frame_pacing off (for an A/B)")
    p.add_argument("--json", type=Path, help="write every run's numbers and screens here")
    args = p.parse_args()
    if args.rounds < args.start_rounds + 20:
        p.error("--rounds must be at least --start-rounds + 20")
    if not ts.preflight():
        return 2
    runs = ts.run_repeatedly(args, lambda: run_once(args))
    headless = None
    if not args.no_headless:
        print("the same rounds headless (mlintern -p) …", file=sys.stderr, flush=True)
        headless = headless_once(args)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "headless": headless}, indent=1, ensure_ascii=False))
    report(runs, args, headless)
    if headless:
        print(f"headless: {headless['wall_s']:.1f} s wall for the whole command (start-up included), "
              f"{headless['cpu_s']:.1f} s CPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
