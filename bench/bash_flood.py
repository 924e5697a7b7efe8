"""Output flood through the ``bash`` tool (issue 18): MB/s into the spill file against the raw
pipe, peak memory, and how many live ``tool_log`` lines the flood became, headless and in the app.

    python bench/bash_flood.py [MB] [--runs 3] [--no-headless] [--no-app] [--json out.json]

The command is ``yes | head -c <MB>M; echo THE-END`` (default 500 MB). Each run measures, in
turn (after the machine has settled, as the tmux benches do):

- **raw pipe**: the same pipeline into /dev/null from a shell, no Python reading it.
- **asyncio reader**: the pipe read as the tool reads it (a StreamReader, 64 KiB reads) and
  thrown away: the floor for reading it from Python's event loop at all.
- **tool, in-process**: ``BashTool().run`` in this process: the tool alone, no bus, no model.
  Peak RSS is this process's ``ru_maxrss`` over what it held before the first run.
- **headless**: the installed ``mlintern -p --output-format stream-json`` against a loopback
  OpenAI-compatible model (tests/fakes/openai_server.py) that asks for the command, then
  answers. Flood = from the model's first request arriving to its second (the tool call, run,
  its result sent back); turn = process start to exit. Idle RSS is VmRSS when the first request
  arrives (started, waiting for the model); peak is the run's high-water mark from ``wait4``.
- **app**: the installed app in a private tmux server at 120x36, as bench/tui_logs.py. Flood
  as headless; turn = Enter to the receipt line on screen. Key echo: one key every
  ``--echo-every`` s from Enter to the receipt, timed until the prompt box shows it, against
  the idle echo before. Idle RSS is VmRSS before Enter; peak is VmHWM after the receipt.

Every place checks what the model got: the true byte count and the command's last line. Speed
targets live here, never as timed assertions in tests (tests/test_bash_flood.py,
tests/test_tui_flood.py check the same flood for counts and content).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import tui_stream as ts  # noqa: E402  (puts the repository root on sys.path too)

#: what on screen suggests something went wrong (printed after the table)
PROBLEM = re.compile(r"✗|Traceback|Exception|Error")
from tui_logs import output_pane  # noqa: E402
from tests.fakes.openai_server import Call, ScriptedLLMServer, Text, ToolCalls  # noqa: E402

PROMPT = "Print a lot of output and tell me when it is done."
ANSWER = "It printed a lot."


def flood_command(mb: int) -> str:
    return f"yes | head -c {mb}M; echo THE-END"


def flood_bytes(mb: int) -> int:
    return mb * 1024 * 1024 + len("THE-END\n")


def told_the_truth(result: str, mb: int) -> bool:
    """The model read the true byte count and the command's last line."""
    return f"printed {flood_bytes(mb):,} bytes" in result and result.rstrip().endswith("THE-END")


def vm(pid: int, field: str) -> float | None:
    try:
        return ts.memory_mb(pid, field)
    except (OSError, RuntimeError):
        return None


# --------------------------------------------------------------------------- raw and in-process


def raw_pipe(mb: int) -> dict:
    started = time.perf_counter()
    subprocess.run(f"yes | head -c {mb}M > /dev/null; echo THE-END > /dev/null", shell=True, check=True)
    return {"flood_s": time.perf_counter() - started}


async def _asyncio_reader(mb: int) -> dict:
    """The pipe read the way the tool reads it (a StreamReader on a pipe we own, 64 KiB reads)
    and thrown away: the floor for any asyncio reader in Python."""
    read_fd, write_fd = os.pipe()
    try:
        proc = await asyncio.create_subprocess_exec("/bin/bash", "-c", flood_command(mb), stdout=write_fd)
    finally:
        os.close(write_fd)
    stream = asyncio.StreamReader(limit=1 << 20)
    transport, _ = await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(read_fd, "rb", buffering=0))
    started = time.perf_counter()
    total = 0
    while chunk := await stream.read(65_536):
        total += len(chunk)
    await proc.wait()
    elapsed = time.perf_counter() - started
    transport.close()
    assert total == flood_bytes(mb), total
    return {"flood_s": elapsed}


def asyncio_reader(mb: int) -> dict:
    return asyncio.run(_asyncio_reader(mb))


async def _through_the_tool(mb: int) -> dict:
    from agent.tools.base import SessionToolState, ToolContext
    from agent.tools.shell import BashParams, BashTool

    logs: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-flood-") as tmp:
        work = Path(tmp)
        ctx = ToolContext(session_id="bench", cwd=work, spill_dir=work / "spill", state=SessionToolState(),
                          log=logs.append)
        started = time.perf_counter()
        result = await BashTool().run(BashParams(command=flood_command(mb), timeout=3600), ctx)
        elapsed = time.perf_counter() - started
    return {"flood_s": elapsed, "live_lines": len(logs), "result_chars": len(result.output),
            "truthful": result.success and told_the_truth(result.output, mb)}


def in_process(mb: int, baseline_mb: float) -> dict:
    out = asyncio.run(_through_the_tool(mb))
    out["peak_over_idle_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - baseline_mb
    return out


# --------------------------------------------------------------------------- the loopback model


def flood_model(mb: int, pid_of) -> tuple[ScriptedLLMServer, list[float], dict]:
    """A model that asks for the flood and then answers; it notes when each request arrived and
    the app's memory at that moment (``pid_of()`` names the process)."""
    arrivals: list[float] = []
    memory: dict[str, tuple[float | None, float | None]] = {}

    def ask(body: dict):
        arrivals.append(time.perf_counter())
        pid = pid_of()
        memory["first_request"] = (vm(pid, "VmRSS"), vm(pid, "VmHWM"))
        return ToolCalls([Call("flood", "bash", json.dumps({"command": flood_command(mb), "timeout": 600}))],
                         content="Flooding.")

    def answer(body: dict):
        arrivals.append(time.perf_counter())
        pid = pid_of()
        memory["second_request"] = (vm(pid, "VmRSS"), vm(pid, "VmHWM"))
        return Text(ANSWER)

    server = ScriptedLLMServer(model_name=ts.MODEL.split("/", 1)[1]).start()
    server.script(ask, answer)
    return server, arrivals, memory


def sent_result(server: ScriptedLLMServer) -> str:
    if len(server.requests) < 2:
        return ""
    for m in server.requests[1].get("messages", []):
        if m.get("role") == "tool":
            content = m["content"]
            return content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
    return ""


# --------------------------------------------------------------------------- headless


def headless(mb: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-flood-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        holder: dict[str, int] = {}
        server, arrivals, memory = flood_model(mb, lambda: holder["pid"])
        env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "HF_TOKEN"}
        env.update({"MLINTERN_HOME": str(home), "OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-bench",
                    "VLLM_BASE_URL": server.base_url, "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1"})
        out_path = work / "events.jsonl"
        try:
            with out_path.open("w") as out, (work / "stderr.txt").open("w") as err:
                started = time.perf_counter()
                proc = subprocess.Popen([str(ts.APP), "-p", PROMPT, "-m", ts.MODEL, "--output-format", "stream-json"],
                                        env=env, stdout=out, stderr=err, cwd=work)
                holder["pid"] = proc.pid
                _, status, usage = os.wait4(proc.pid, 0)  # the run's own high-water mark, to its last byte
                ended = time.perf_counter()
            proc.returncode = os.waitstatus_to_exitcode(status)
            if proc.returncode != 0 or len(arrivals) < 2:
                raise RuntimeError(f"mlintern -p exited {proc.returncode}:\n{(work / 'stderr.txt').read_text()[-2000:]}")
            events = [json.loads(line) for line in out_path.read_text().splitlines()]
            result = sent_result(server)
        finally:
            server.stop()
    call = [e for e in events if e.get("tool_call_id") == "flood"]
    start = next(e["ts"] for e in call if e["type"] == "tool_call")
    end = next(e["ts"] for e in call if e["type"] == "tool_output")
    idle_rss = memory["first_request"][0]
    return {
        "flood_s": arrivals[1] - arrivals[0], "tool_s": end - start, "turn_s": ended - started,
        "live_lines": sum(1 for e in call if e["type"] == "tool_log"),
        "idle_rss_mb": idle_rss, "hwm_at_idle_mb": memory["first_request"][1],
        "peak_mb": usage.ru_maxrss / 1024, "peak_over_idle_mb": usage.ru_maxrss / 1024 - idle_rss,
        "result_chars": len(result), "truthful": told_the_truth(result, mb),
    }


# --------------------------------------------------------------------------- the app in tmux


def card_state(lines: list[str], mb: int) -> str:
    for i, line in enumerate(lines):
        if f"head -c {mb}M" in line and "──" not in line:  # the card, not the Output pane's header
            text = line + " " + (lines[i + 1] if i + 1 < len(lines) else "")
            for state in ("completed", "failed", "running", "cancelled", "waiting"):
                if state in text:
                    return state
    return "?"


def in_the_app(mb: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="mlintern-bench-flood-app-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        cwd = work / "cwd"
        cwd.mkdir()
        holder: dict[str, int] = {}
        server, arrivals, memory = flood_model(mb, lambda: holder["pid"])
        tm = ts.Tmux(work)
        run = ts.Run(tm, args.poll_ms / 1000, args.timeout)
        try:
            out = run.startup(ts.app_command(work / "home", server.base_url, ts.MODEL), cwd)
            pid = holder["pid"] = ts.app_pid(tm.pane_pid())
            out["idle_echo_ms"] = [x * 1000 for x in (run.key(c) for c in "abcdefghijkl") if x is not None]
            run.clear()
            out.update(_flood_in_the_app(run, pid, server, arrivals, mb, args))
            out["second_request_mb"] = memory.get("second_request", (None, None))
            out["clean_exit"] = run.quit(pid)
            out["result"] = sent_result(server)
            out.update(stored_call(work / "home"))
        finally:
            tm.close()
            server.stop()
    out["truthful"] = told_the_truth(out.pop("result"), mb)
    return out


def stored_call(home: Path) -> dict:
    """The flood's live lines and the engine's time for the call, from the session store the
    app kept (``tool_log`` events are stored; the screen only shows the newest)."""
    import sqlite3

    from agent.store import db_path

    conn = sqlite3.connect(f"file:{db_path(home)}?mode=ro", uri=True)
    try:
        rows = [(kind, ts, json.loads(body)) for kind, ts, body in
                conn.execute("SELECT type, ts, body FROM events ORDER BY session_id, seq")]
    finally:
        conn.close()
    call = [(kind, ts) for kind, ts, body in rows if body.get("tool_call_id") == "flood"]
    times = {kind: ts for kind, ts in reversed(call)}  # the first of each kind
    return {"live_lines": sum(1 for kind, _ in call if kind == "tool_log"),
            "tool_s": times["tool_output"] - times["tool_call"]}


def _flood_in_the_app(run: ts.Run, pid: int, server: ScriptedLLMServer, arrivals: list[float], mb: int,
                      args: argparse.Namespace) -> dict:
    tm = run.tm
    tm.keys(ts._quote(PROMPT), literal=True)
    if run.wait_prompt(PROMPT, time.perf_counter()) is None:
        raise RuntimeError("the prompt did not show in the prompt box:\n" + "\n".join(tm.screen()))
    idle_rss = ts.memory_mb(pid, "VmRSS")
    cpu0 = ts.cpu_seconds(pid, tree=False)
    t_enter = time.perf_counter()
    tm.keys("Enter")
    probe = ts.EchoProbe(run, args.echo_every, t_enter)
    rss_max = idle_rss
    pane_rows: list[str] = []
    problems: list[str] = []
    watch = ts.UntilReceipt(tm, run, probe, t_enter, args.timeout)
    for lines, _now in watch:
        rss_max = max(rss_max, vm(pid, "VmRSS") or 0.0)
        rows = output_pane(lines)
        if rows:
            pane_rows = rows
        ts.note_problems(lines, problems, PROBLEM)
    receipt = watch.receipt
    cpu1 = ts.cpu_seconds(pid, tree=False)
    hwm = ts.memory_mb(pid)
    final = tm.screen()
    a0, a1 = (arrivals + [float("nan")] * 2)[:2]
    in_flood = [ms * 1000 for ms, sent in zip(probe.echo, probe.echo_at) if a0 <= t_enter + sent <= a1]
    return {
        "flood_s": a1 - a0, "turn_s": receipt - t_enter, "app_cpu_s": cpu1 - cpu0,
        "idle_rss_mb": idle_rss, "rss_max_mb": rss_max, "peak_mb": hwm, "peak_over_idle_mb": hwm - idle_rss,
        "echo_flood_ms": in_flood, "echo_all_ms": [x * 1000 for x in probe.echo], "echo_lost": len(probe.pending),
        # the pane cuts long lines at its width: "... N more lines (B bytes) not sh"
        "coalesced_line_shown": any("more lines" in row for row in pane_rows),
        "pane_rows": pane_rows, "card": card_state(final, mb),
        "answer_shown": any(ANSWER in row for row in final), "problems": problems, "final_screen": final,
    }


# --------------------------------------------------------------------------- report


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    med = statistics.median(values)
    return fmt.format(med) + (f" ({fmt.format(min(values))}–{fmt.format(max(values))})" if len(values) > 1 else "")


def report(mb: int, results: dict[str, list[dict]]) -> None:
    raw = statistics.median(r["flood_s"] for r in results["raw pipe"])
    print(f"\n{mb} MB flood (`{flood_command(mb)}`), median of {len(results['raw pipe'])} run(s) (min–max)")
    print(f"{'':22}{'flood s':>20}{'MB/s':>8}{'x raw':>7}{'turn s':>20}{'peak-idle MB':>20}{'live lines':>12}  model told")
    for where, runs in results.items():
        if not runs:
            continue
        flood = [r["flood_s"] for r in runs]
        med = statistics.median(flood)
        turn = _spread([r["turn_s"] for r in runs]) if "turn_s" in runs[0] else "-"
        peak = _spread([r["peak_over_idle_mb"] for r in runs], "{:+.0f}") if "peak_over_idle_mb" in runs[0] else "-"
        lines = _spread([r["live_lines"] for r in runs], "{:.0f}") if "live_lines" in runs[0] else "-"
        told = "-" if "truthful" not in runs[0] else ("yes" if all(r["truthful"] for r in runs) else "NO")
        print(f"{where:22}{_spread(flood):>20}{mb / med:>8.0f}{med / raw:>7.1f}{turn:>20}{peak:>20}{lines:>12}  {told}")
    for r in results.get("headless", []):
        print(f"  headless: tool {r['tool_s']:.2f} s by the engine's clock; VmRSS {r['idle_rss_mb']:.0f} MB waiting for "
              f"the model (VmHWM {r['hwm_at_idle_mb']:.0f}), peak {r['peak_mb']:.0f} MB; {r['result_chars']:,} chars to the model")
    for r in results.get("app", []):
        echo = r["echo_flood_ms"]
        print(f"  app: key echo during the flood {_spread(echo, '{:.0f}') if echo else 'n/a'} ms (n={len(echo)}"
              f"{', ' + str(r['echo_lost']) + ' never shown' if r['echo_lost'] else ''}), idle "
              f"{_spread(r['idle_echo_ms'], '{:.0f}')} ms; tool {r['tool_s']:.2f} s by the engine's clock; app CPU {r['app_cpu_s']:.1f} s; VmRSS {r['idle_rss_mb']:.0f} "
              f"before Enter, max {r['rss_max_mb']:.0f}, VmHWM {r['peak_mb']:.0f} MB; card {r['card']}; "
              f"'more lines' in the pane: {'yes' if r['coalesced_line_shown'] else 'NO'}; "
              f"answer shown: {'yes' if r['answer_shown'] else 'NO'}; clean quit: {'yes' if r['clean_exit'] else 'NO'}")
        if r["problems"]:
            print(f"  app: suspicious lines on screen: {r['problems'][:5]}")
    last = (results.get("app") or [{}])[-1].get("pane_rows")
    if last:
        print("  app: the Output pane at the end:\n    " + "\n    ".join(last[-8:]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mb", nargs="?", type=int, default=500, help="megabytes (MiB) the command prints")
    ts.add_run_args(p)
    p.set_defaults(runs=3, echo_every=0.1)
    p.add_argument("--no-headless", action="store_true")
    p.add_argument("--no-app", action="store_true")
    args = p.parse_args()
    if not args.no_app and not ts.preflight():
        return 2
    mb = args.mb
    importlib.import_module("agent.tools.shell")  # what it imports is the process's idle, not the flood's cost

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    places = [("raw pipe", lambda: raw_pipe(mb)), ("asyncio reader", lambda: asyncio_reader(mb)),
              ("tool, in-process", lambda: in_process(mb, baseline))]
    if not args.no_headless:
        places.append(("headless", lambda: headless(mb)))
    if not args.no_app:
        places.append(("app", lambda: in_the_app(mb, args)))
    results: dict[str, list[dict]] = {name: [] for name, _ in places}
    for i in range(args.runs):
        for name, one in places:
            busy = ts.wait_for_quiet(args.quiet_wait)
            print(f"run {i + 1}/{args.runs}, {name} (machine {busy:.0f}% busy before it) …", file=sys.stderr, flush=True)
            results[name].append(one())
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    report(mb, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
