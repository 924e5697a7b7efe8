"""Output flood through the ``bash`` tool (issue 18): MB/s into the spill file against the raw
pipe, peak memory, and how many live ``tool_log`` lines the flood became.

    .venv-test/bin/python bench/bash_flood.py [MB]
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


async def through_the_tool(mb: int) -> tuple[float, int, int]:
    from agent.tools.base import SessionToolState, ToolContext
    from agent.tools.shell import BashParams, BashTool

    logs: list[str] = []
    work = Path(tempfile.mkdtemp())
    ctx = ToolContext(session_id="bench", cwd=work, spill_dir=work / "spill", state=SessionToolState(), log=logs.append)
    started = time.perf_counter()
    result = await BashTool().run(BashParams(command=f"yes | head -c {mb}M", timeout=3600), ctx)
    elapsed = time.perf_counter() - started
    assert result.success, result.output[-500:]
    return elapsed, len(logs), len(result.output)


def main() -> None:
    mb = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    started = time.perf_counter()
    subprocess.run(f"yes | head -c {mb}M > /dev/null", shell=True, check=True)
    raw = time.perf_counter() - started
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    elapsed, events, chars = asyncio.run(through_the_tool(mb))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{mb} MB flood: raw pipe {raw:.2f} s ({mb / raw:.0f} MB/s); bash tool {elapsed:.2f} s ({mb / elapsed:.0f} MB/s, "
          f"{elapsed / raw:.1f}x); peak RSS {peak:.0f} MB (+{peak - before:.0f} MB over the process before it); "
          f"{events} live lines; {chars:,} characters for the model")


if __name__ == "__main__":
    main()
