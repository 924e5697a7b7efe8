"""A command that floods its output costs bounded events and memory, and the model is told the
true size: bytes printed, bytes kept, where (issue 18). Speed is measured in bench/bash_flood.py;
the same flood in the app is tests/test_tui_flood.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

from agent.protocol import parse_event
from agent.tools import shell
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.shell import BashParams, BashTool
from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import mlintern_cmd, server_env

FLOOD = "yes | head -c 500M; echo THE-END"
FLOOD_BYTES = 500 * 1024 * 1024 + len("THE-END\n")  # 524,288,008


def ctx_for(tmp_path: Path, logs: list[str]) -> ToolContext:
    return ToolContext(session_id="s", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(),
                       log=logs.append)


async def test_a_flood_is_a_few_events_and_its_true_size(tmp_path, monkeypatch):
    monkeypatch.setattr(shell, "SPILL_CAP_BYTES", 20_000_000)
    logs: list[str] = []
    result = await BashTool().run(BashParams(command="yes | head -c 60M; echo THE-END"), ctx_for(tmp_path, logs))
    assert result.success and len(logs) <= 60  # a flood is counted, not shown line by line
    assert any("more lines" in line and "not shown live" in line for line in logs)
    assert "the command printed 62,914,568 bytes" in result.output
    assert "the first 20,000,000 bytes are" in result.output and len(result.output) < 26_000
    assert Path(result.spill_path).stat().st_size == 20_000_000
    assert result.output.rstrip().endswith("THE-END")  # the end is shown


async def test_the_start_and_end_of_a_flood_are_shown_as_a_terminal_shows_them(tmp_path):
    """Only the lines that can show are cleaned (colours, progress redraws): the rest of the
    kept megabytes are never split into lines."""
    command = r"printf '\e[31mred\e[0m\n'; yes | head -c 3M; printf '10%%\r100%%\n'; echo END"
    result = await BashTool().run(BashParams(command=command), ctx_for(tmp_path, []))
    assert result.output.startswith("red\ny\ny\n") and result.output.endswith("y\ny\n100%\nEND")
    head = result.output.split("\n\n... [the command printed", 1)[0]
    assert len(head) == 6_000 and head.endswith("y\ny\n")  # the first 6,000 characters of those lines


async def test_a_flood_under_the_cap_is_kept_whole(tmp_path):
    logs: list[str] = []
    result = await BashTool().run(BashParams(command="seq 1 1000000"), ctx_for(tmp_path, logs))
    spilled = Path(result.spill_path).read_bytes()
    assert spilled.startswith(b"1\n2\n3\n") and spilled.endswith(b"999999\n1000000\n") and len(spilled) == 6_888_896
    assert re.search(r"printed 6,888,896 bytes; all of it is in", result.output)
    assert result.output.startswith("1\n2\n3") and result.output.endswith("1000000")


async def test_small_output_and_progress_bars_are_as_before(tmp_path):
    logs: list[str] = []
    out = await BashTool().run(BashParams(command="printf 'a\\r50%%\\r100%%\\nb\\n'; echo c"), ctx_for(tmp_path, logs))
    assert out.output == "100%\nb\nc" and out.spill_path is None
    assert logs[-2:] == ["b", "c"]


async def test_output_that_is_not_utf8_says_so(tmp_path):
    out = await BashTool().run(BashParams(command="printf 'caf\\xe9\\n'"), ctx_for(tmp_path, []))
    assert out.output.startswith("caf\ufffd") and "not valid UTF-8" in out.output
    clean = await BashTool().run(BashParams(command="printf 'caf\\xc3\\xa9 \\xef\\xbf\\xbd\\n'"), ctx_for(tmp_path, []))
    assert clean.output == "café \ufffd"  # a real U+FFFD in valid UTF-8 is not a decoding problem


def headless_turn(llm_server, home: Path, tmp_path: Path, command: str) -> tuple[list, float]:
    """The installed ``mlintern -p --output-format stream-json`` for one turn in which the model
    runs ``command`` with ``bash`` and then answers: its events and its peak RSS in MB (the
    rusage ``wait4`` returns, in KiB on Linux: the high-water mark of the whole run, to its last byte)."""
    llm_server.script(ToolCalls([Call("f1", "bash", json.dumps({"command": command}))]), Text("It printed a lot."))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN", "OPENAI_BASE_URL")}
    env.update({"MLINTERN_HOME": str(home), "LITELLM_OFFLINE_MODE": "true", "HF_HUB_OFFLINE": "1", **server_env(llm_server)})
    out_path, err_path = tmp_path / "stdout.jsonl", tmp_path / "stderr.txt"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(mlintern_cmd() + ["-p", "flood", "-m", "openai/scripted-model", "--output-format",
                                                  "stream-json"], env=env, stdout=out, stderr=err, cwd=home)
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if proc.returncode is None and proc.poll() is None:
                proc.kill()
                proc.wait()
    proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode == 0, err_path.read_text()[-2000:]
    return [parse_event(line) for line in out_path.read_text().splitlines()], usage.ru_maxrss / 1024


def test_a_500_mb_flood_headless_is_a_few_events_its_true_size_and_flat_memory(llm_server, mlintern_home, tmp_path):
    """The issue's flood end to end: the installed command, the real bus and printer, litellm's
    HTTP path. The live log stays a few dozen events, the result and the model's next request
    say the true byte count and show the end, and the run's peak RSS stays within 50 MB of the
    same turn with a one-line command."""
    events, flood_peak = headless_turn(llm_server, mlintern_home, tmp_path, FLOOD)
    logs = [e for e in events if e.type == "tool_log" and e.tool_call_id == "f1"]
    assert 1 <= len(logs) <= 36, f"{len(logs)} tool_log events"
    assert any("more lines" in e.log and "not shown live" in e.log for e in logs)
    out = next(e for e in events if e.type == "tool_output" and e.tool_call_id == "f1")
    assert out.success and f"the command printed {FLOOD_BYTES:,} bytes" in out.output
    assert out.output.rstrip().endswith("THE-END") and len(out.output) < 30_000
    sent = next(m["content"] for m in llm_server.requests[1]["messages"] if m["role"] == "tool")
    assert f"the command printed {FLOOD_BYTES:,} bytes" in sent and sent.rstrip().endswith("THE-END")
    assert Path(out.spill_path).stat().st_size == min(shell.SPILL_CAP_BYTES, FLOOD_BYTES)  # up to the cap
    assert [e.type for e in events][-2:] == ["turn_complete", "shutdown"]

    events, idle_peak = headless_turn(llm_server, mlintern_home, tmp_path, "echo THE-END")
    assert next(e for e in events if e.type == "tool_output").output == "THE-END"
    assert flood_peak - idle_peak < 50, f"peak RSS {flood_peak:.0f} MB with the flood, {idle_peak:.0f} MB without"
