"""A command that floods its output costs bounded events and memory, and the model is told the
true size: bytes printed, bytes kept, where (issue 18). Speed is measured in bench/bash_flood.py."""

from __future__ import annotations

import re
from pathlib import Path

from agent.tools import shell
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.shell import BashParams, BashTool


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
