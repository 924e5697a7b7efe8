"""``read`` of the kernel's files (issue 20): procfs and sysfs are read as streams up to a
budget (their size is not their length), reads that wait for data are refused or given up
on, and a read the kernel holds never keeps the process from exiting."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from agent.tools.base import SessionToolState, ToolContext
from agent.tools.files import ReadParams, ReadTool
from agent.tools.special_files import DeadlineExceeded, read_pseudo, run_with_deadline


def context(tmp_path: Path) -> ToolContext:
    return ToolContext(session_id="s", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState())


async def test_proc_cpuinfo_and_maps_are_read_though_their_size_is_zero(tmp_path):
    assert Path("/proc/cpuinfo").stat().st_size == 0
    cpuinfo = await ReadTool().run(ReadParams(path="/proc/cpuinfo"), context(tmp_path))
    assert cpuinfo.success and "processor" in cpuinfo.output and "is empty" not in cpuinfo.output
    maps = await ReadTool().run(ReadParams(path="/proc/self/maps", limit=3), context(tmp_path))
    assert maps.success and "     1\t" in maps.output and "more lines; use offset=4" in maps.output


async def test_proc_kmsg_is_refused_at_once(tmp_path):
    started = time.monotonic()
    result = await ReadTool().run(ReadParams(path="/proc/kmsg"), context(tmp_path))
    assert not result.success and "waits for new data" in result.output and "dmesg" in result.output
    assert time.monotonic() - started < 1.0


def test_a_kernel_file_longer_than_the_budget_is_cut_and_says_so():
    data, more = read_pseudo(Path("/proc/self/maps"), limit=200)
    assert len(data) == 200 and more


async def test_an_empty_ordinary_file_is_still_empty(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    result = await ReadTool().run(ReadParams(path="empty.txt"), context(tmp_path))
    assert result.success and "is empty" in result.output


def test_a_read_that_never_returns_is_given_up_on_and_leaves_only_a_daemon_thread():
    never = threading.Event()
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        run_with_deadline(never.wait, 0.2, name="stuck-read")
    assert time.monotonic() - started < 2.0
    stuck = [t for t in threading.enumerate() if t.name == "stuck-read"]
    assert stuck and all(t.daemon for t in stuck)  # a daemon never holds up the interpreter's exit
    never.set()
