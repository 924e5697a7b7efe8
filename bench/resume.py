"""Resuming a long session, and what saving sessions costs while the agent works.

    python bench/resume.py [--turns 1000] [--runs 3] [--events 20000] [--skip-app] [--json out.json]

A session of ``--turns`` turns is written into a fresh store the way a session writes
itself (agent/store.py checkpoints of history entries): each turn a prompt, an assistant
message with a ``bash`` call, its ~1.5 KB result and a ~600-character answer, so 4 messages
a turn (4,000 for 1,000 turns).

- **engine resume**: in a fresh process, a real ``Session`` (the scripted loopback model, no
  request is made) takes ``Resume`` and emits ``resume_complete``; wall time from the op to
  the event, and the process's RSS before and after (median of ``--runs`` processes).
- **app resume** (needs tmux; ``--skip-app`` leaves it out): the installed ``mlintern
  --continue`` in a private tmux server at 120x36 (bench/tui_stream.py's harness), from
  ``tmux new`` until the status bar names the model (ready; the resume is sent then) and
  until the "Resumed" line is on screen; VmRSS and VmHWM then, and the echo of
  ten keys typed afterwards.
- **store cost per event**: ``Session.emit`` of ``--events`` streamed chunks (the store skips
  them) and of ``--events`` / 10 tool outputs (~1 KB each, written by the store's thread),
  with the store and without it (``save_sessions: false``): microseconds per event on the
  event loop, and the writer thread's CPU per stored event. A 2,000 tok/s stream is 2,000
  chunk events a second: the chunk row is the cost the stream adds to the UI loop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass
class _Entry:
    message: dict
    kind: str
    turn: int
    cost_usd: float | None = None


def build_session(home: Path, cwd: Path, turns: int) -> str:
    """A ``turns``-turn session in ``home``'s store, for the directory ``cwd``; its id."""
    from agent.store import Checkpoint, SessionStore, db_path

    store = SessionStore.open(db_path(home))
    entries: list[_Entry] = []
    session_id = "bench" + "0" * 27
    result = "\n".join(f"line {i}: " + "x" * 60 for i in range(22))  # ~1.5 KB
    for turn in range(1, turns + 1):
        call_id = f"call_{turn}"
        entries += [
            _Entry({"role": "user", "content": f"Turn {turn}: check the metrics of run {turn} and compare them "
                                               "with the previous run; say which one to keep and why. " * 2}, "user", turn),
            _Entry({"role": "assistant", "content": "Looking at the run's metrics.", "tool_calls": [
                {"id": call_id, "type": "function",
                 "function": {"name": "bash", "arguments": json.dumps({"command": f"cat runs/{turn}/metrics.txt"})}}]},
                   "assistant", turn, 0.001),
            _Entry({"role": "tool", "tool_call_id": call_id, "name": "bash", "content": result}, "tool", turn),
            _Entry({"role": "assistant", "content": ("Run {t} is slightly better on eval loss; keeping it. ".format(t=turn)
                                                     + "The learning-rate warmup explains the gap. " * 12)},
                   "assistant", turn, 0.002),
        ]
        if turn % 50 == 0 or turn == turns:  # a checkpoint now and then, as a session makes them
            store.checkpoint(Checkpoint(
                session_id=session_id, title=f"bench session of {turns} turns", title_auto=False,
                model="vllm/bench-model", cwd=str(cwd), created=time.time() - 86400, first_prompt=entries[0].message["content"],
                turns=turn, spend_model=0.003 * turn, spend_compute=0.0, spend_title=0.0, status="idle", headless=False,
                state={"mode": "auto", "turn": turn, "session_cost": 0.003 * turn, "plan": []}, entries=list(entries)))
    store.flush()
    store.close()
    return session_id


_ENGINE = """
import asyncio, json, os, sys, time
sys.path.insert(0, sys.argv[1])
from agent.config import Config
from agent.protocol import Resume, Shutdown
from agent.session import Session

def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

async def main():
    session = Session(Config(), model_id="openai/bench-model", cwd=__import__("pathlib").Path(sys.argv[3]))
    sub = session.subscribe("bench")
    session.start()
    while (await sub.get()).type != "ready":
        pass
    while session.store is None:
        await asyncio.sleep(0.01)
    before = rss()
    t = time.perf_counter()
    session.submit(Resume(target_session_id=sys.argv[2]))
    while True:
        event = await sub.get()
        if event.type in ("resume_complete", "error"):
            break
    took = time.perf_counter() - t
    after = rss()
    session.submit(Shutdown())
    await session._runner
    print(json.dumps({"type": event.type, "s": took, "rss_before": before, "rss_after": after,
                      "messages": getattr(event, "restored_messages", 0)}))

asyncio.run(main())
"""


def engine_resume(home: Path, cwd: Path, session_id: str, runs: int) -> dict:
    env = {**os.environ, "MLINTERN_HOME": str(home), "OPENAI_API_KEY": "sk-bench", "LITELLM_OFFLINE_MODE": "true",
           "OPENAI_BASE_URL": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"}
    out = []
    for _ in range(runs):
        done = subprocess.run([sys.executable, "-c", _ENGINE, str(ROOT), session_id, str(cwd)], env=env,
                              capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        out.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"runs": out, "median_s": statistics.median(r["s"] for r in out),
            "rss_added_mb": statistics.median(r["rss_after"] - r["rss_before"] for r in out)}


def app_resume(home: Path, cwd: Path, runs: int) -> dict:
    import tui_stream as ts

    if not ts.preflight():
        return {"skipped": "tmux or the installed app is missing"}
    out = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mlintern-bench-") as tmp:
            tm = ts.Tmux(Path(tmp))
            run = ts.Run(tm, 0.002, 120)
            try:
                command = ts.app_command(home, "http://127.0.0.1:9", ts.MODEL, "--continue")
                t0 = time.perf_counter()
                tm.new(command, cwd)
                ready = None
                while True:
                    lines = tm.screen()
                    status = ts.status_line(lines)
                    if ready is None and ts.MODEL.split("/", 1)[1] in status and "(loading)" not in status:
                        ready = time.perf_counter() - t0
                    if any("Resumed" in line for line in lines):
                        shown = time.perf_counter() - t0
                        break
                    if time.perf_counter() - t0 > 120:
                        raise RuntimeError("no 'Resumed' line within 120 s:\n" + "\n".join(lines))
                    time.sleep(0.005)
                pid = ts.app_pid(tm.pane_pid())
                rss, hwm = ts.memory_mb(pid, "VmRSS"), ts.memory_mb(pid)
                time.sleep(0.5)
                echo = [run.key(c) for c in "abcdefghij"]
                out.append({"resumed_on_screen_s": shown, "ready_s": ready or shown, "rss_mb": rss, "hwm_mb": hwm,
                            "echo_ms": [e * 1000 for e in echo if e is not None], "cpu_s": ts.cpu_seconds(pid)})
                run.quit(pid)
            finally:
                tm.close()
    return {"runs": out, "median_s": statistics.median(r["resumed_on_screen_s"] for r in out),
            "median_echo_ms": statistics.median(e for r in out for e in r["echo_ms"]) if out else None}


_COST = """
import asyncio, json, os, sys, time, threading
sys.path.insert(0, sys.argv[1])
from agent.config import Config
from agent.protocol import AssistantChunk, ToolOutput, Shutdown
from agent.session import Session

async def main():
    config = Config(save_sessions=sys.argv[2] == "on")
    session = Session(config, model_id="openai/bench-model")
    sub = session.subscribe("bench")
    session.start()
    while (await sub.get()).type != "ready":
        pass
    await asyncio.sleep(0.3)  # the store opens
    n = int(sys.argv[3])
    body = "y" * 1000
    rows = {}
    for name, make, count in (("chunk", lambda i: AssistantChunk(content="tok "), n),
                              ("tool_output", lambda i: ToolOutput(tool_call_id=f"c{i}", tool="bash", output=body,
                                                                   success=True, parent_call_id="r"), n // 10)):
        events = [make(i) for i in range(count)]
        writer = [t for t in threading.enumerate() if t.name == "session-store"]
        t = time.perf_counter()
        for event in events:
            session.emit(event)
        took = time.perf_counter() - t
        cpu0 = time.thread_time()
        if session.store is not None:
            t2 = time.perf_counter()
            await asyncio.to_thread(session.store.flush, 60)
            flush = time.perf_counter() - t2
        else:
            flush = 0.0
        rows[name] = {"us_per_event": took / count * 1e6, "flush_s": flush, "count": count}
        while not sub.queue.empty():
            sub.get_nowait()
    session.submit(Shutdown())
    await session._runner
    print(json.dumps(rows))

asyncio.run(main())
"""


def store_cost(home: Path, events: int, runs: int) -> dict:
    env = {**os.environ, "MLINTERN_HOME": str(home), "OPENAI_API_KEY": "sk-bench", "LITELLM_OFFLINE_MODE": "true",
           "OPENAI_BASE_URL": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1"}
    out: dict = {}
    for mode in ("off", "on"):
        rows = []
        for _ in range(runs):
            done = subprocess.run([sys.executable, "-c", _COST, str(ROOT), mode, str(events)], env=env,
                                  capture_output=True, text=True, timeout=300)
            if done.returncode:
                raise RuntimeError(done.stderr[-2000:])
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        out[mode] = {kind: {"us_per_event": statistics.median(r[kind]["us_per_event"] for r in rows),
                            "flush_s": statistics.median(r[kind]["flush_s"] for r in rows),
                            "count": rows[0][kind]["count"]} for kind in rows[0]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--skip-app", action="store_true")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="mlintern-resume-bench-") as tmp:
        home, cwd = Path(tmp) / "home", Path(tmp) / "cwd"
        home.mkdir()
        cwd.mkdir()
        t = time.perf_counter()
        session_id = build_session(home, cwd, args.turns)
        db = home / "sessions.db"
        size = db.stat().st_size + sum(p.stat().st_size for p in home.glob("sessions.db-*"))
        print(f"store: {args.turns} turns ({4 * args.turns:,} messages) written in {time.perf_counter() - t:.1f} s, "
              f"{size / 1e6:.1f} MB on disk")
        results["engine"] = engine = engine_resume(home, cwd, session_id, args.runs)
        print(f"engine resume: {engine['median_s'] * 1000:.0f} ms median over {args.runs} processes "
              f"({engine['runs'][0]['messages']:,} messages restored), RSS +{engine['rss_added_mb']:.0f} MB")
        if not args.skip_app:
            results["app"] = app = app_resume(home, cwd, args.runs)
            if "skipped" in app:
                print(f"app resume: skipped ({app['skipped']})")
            else:
                hwm = statistics.median(r["hwm_mb"] for r in app["runs"])
                ready = statistics.median(r["ready_s"] for r in app["runs"])
                print(f"app resume (mlintern --continue, tmux 120x36): model ready {ready:.2f} s, 'Resumed' on screen "
                      f"{app['median_s']:.2f} s after start (medians), VmHWM {hwm:.0f} MB, key echo after it "
                      f"{app['median_echo_ms']:.1f} ms median")
        cost_home = Path(tmp) / "cost-home"
        cost_home.mkdir()
        results["store_cost"] = cost = store_cost(cost_home, args.events, args.runs)
        print("store cost per event on the event loop (Session.emit), without / with the store:")
        for kind in cost["on"]:
            off, on = cost["off"][kind], cost["on"][kind]
            writer = f"; the writer thread then took {on['flush_s']:.2f} s for {on['count']:,}" if on["flush_s"] else ""
            print(f"  {kind:12} {off['us_per_event']:6.2f} / {on['us_per_event']:6.2f} µs{writer}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
