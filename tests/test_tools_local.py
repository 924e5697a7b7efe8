"""The local tools against a real filesystem and real subprocesses."""

from __future__ import annotations

import asyncio
import errno
import json
import os
import stat
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.tools import default_tools
from agent.tools.base import ApprovalSettings, SessionToolState, ToolContext
from agent.tools.edit import EditParams, EditTool
from agent.tools.files import ReadParams, ReadTool, WriteParams, WriteTool
from agent.tools.router import ToolRouter
from agent.tools.shell import BashParams, BashTool


@pytest.fixture
def logs() -> list[str]:
    return []


@pytest.fixture
def ctx(tmp_path: Path, logs: list[str]) -> ToolContext:
    work = tmp_path / "work"
    work.mkdir()
    return ToolContext(
        session_id="test",
        cwd=work,
        spill_dir=tmp_path / "spill",
        state=SessionToolState(),
        log=logs.append,
    )


def alive(pid: int) -> bool:
    """Running, as opposed to gone or a zombie nobody reaped (PID 1 here may never reap)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):  # gone, or going while it is read (ESRCH)
        return False
    return stat_line[stat_line.rfind(")") + 2] not in "ZX"


async def wait_for_file(path: Path, timeout: float = 5.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text()
        await asyncio.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


async def bash(ctx: ToolContext, command: str, **kw):
    return await BashTool().run(BashParams(command=command, **kw), ctx)


async def read(ctx: ToolContext, path, **kw):
    return await ReadTool().run(ReadParams(path=str(path), **kw), ctx)


async def write(ctx: ToolContext, path, content: str):
    return await WriteTool().run(WriteParams(path=str(path), content=content), ctx)


async def edit(ctx: ToolContext, path, old: str, new: str, **kw):
    return await EditTool().run(EditParams(path=str(path), old_str=old, new_str=new, **kw), ctx)


# --------------------------------------------------------------------------- schemas


def _objects(node):
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_every_default_tool_has_a_closed_schema_without_refs():
    specs = ToolRouter(default_tools()).specs()
    assert [s["function"]["name"] for s in specs] == [
        "bash", "read", "write", "edit", "research", "explore_hf_docs", "fetch_hf_docs", "hf_papers", "web_search",
        "fetch_url", "hf_inspect_dataset", "plan_tool", "hf_jobs", "hf_repo_files", "hf_repo_git",
        "github_find_examples", "github_list_repos", "github_read_file", "find_hf_api"]
    for spec in specs:
        params = spec["function"]["parameters"]
        assert "$ref" not in repr(params) and "$defs" not in params
        objects = list(_objects(params))
        assert objects, spec
        for obj in objects:
            # records are closed; maps (e.g. hf_jobs env) are open only to typed values
            extra = obj.get("additionalProperties")
            assert extra is False or (isinstance(extra, dict) and extra.get("type")), spec["function"]["name"]
        for prop in params["properties"].values():
            assert prop.get("description"), spec["function"]["name"]
    by_name = {s["function"]["name"]: s["function"]["parameters"] for s in specs}
    assert by_name["bash"]["required"] == ["command"]
    assert by_name["bash"]["properties"]["timeout"]["maximum"] == 36000
    assert set(by_name["edit"]["required"]) == {"path", "old_str", "new_str"}
    todo = by_name["plan_tool"]["properties"]["todos"]["items"]
    assert todo["additionalProperties"] is False
    assert todo["properties"]["status"]["enum"] == ["pending", "in_progress", "completed"]


def test_unknown_argument_and_out_of_range_timeout_are_rejected_before_running():
    router = ToolRouter(default_tools())
    call = router.parse("c1", "bash", '{"command": "ls", "timeout": 36001}')
    assert call.error and "NOT executed" in call.error and "timeout" in call.error
    call = router.parse("c2", "read", '{"path": "x", "bogus": 1}')
    assert call.error and "bogus" in call.error
    with pytest.raises(ValidationError):
        BashParams(command="ls", timeout=0)


# --------------------------------------------------------------------------- bash


async def test_bash_returns_output_and_marks_failures_with_the_exit_code(ctx):
    ok = await bash(ctx, "echo hello; echo oops >&2")
    assert ok.success and ok.output == "hello\noops"
    empty = await bash(ctx, "true")
    assert empty.success and empty.output == "(no output)"
    failed = await bash(ctx, "echo partial; exit 3")
    assert not failed.success
    assert "partial" in failed.output and "exit code 3" in failed.output


async def test_bash_strips_ansi_and_collapses_progress_redraws(ctx):
    result = await bash(
        ctx,
        r"printf '\033[1;31mred\033(B\033[m \033]0;title\007plain\n'; printf '10%%\r50%%\r100%%\n'",
    )
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert result.output == "red plain\n100%"


async def test_bash_streams_lines_to_the_log_while_running(ctx, logs):
    stamps: list[tuple[float, str]] = []
    ctx.log = lambda line: stamps.append((time.monotonic(), line))
    started = time.monotonic()
    result = await bash(ctx, "echo first; sleep 0.6; echo second")
    finished = time.monotonic()
    assert result.success
    assert [line for _, line in stamps] == ["first", "second"]
    first_at = stamps[0][0]
    assert first_at - started < 0.4, "the first line was not delivered promptly"
    assert finished - first_at > 0.4, "the first line arrived only at the end"


async def test_bash_runs_in_work_dir_and_refuses_a_missing_one(ctx):
    (ctx.cwd / "sub").mkdir()
    result = await bash(ctx, "pwd", work_dir="sub")
    assert result.output == str(ctx.cwd / "sub")
    missing = await bash(ctx, "touch should_not_exist", work_dir="nope")
    assert not missing.success and "does not exist" in missing.output
    assert not list(ctx.cwd.rglob("should_not_exist"))


async def test_bash_timeout_kills_the_whole_process_group(ctx):
    started = time.monotonic()
    result = await bash(ctx, "sleep 100 & echo $! > child.pid; sleep 100", timeout=1)
    assert time.monotonic() - started < 4
    assert not result.success
    assert "timed out after 1s" in result.output and "nohup" in result.output
    child = int((ctx.cwd / "child.pid").read_text())
    assert not alive(child)


async def test_bash_cancellation_kills_children_and_returns_quickly(ctx):
    task = asyncio.create_task(
        bash(ctx, "echo $$ > shell.pid; sleep 100 & echo $! > child.pid; sleep 100")
    )
    shell = int(await wait_for_file(ctx.cwd / "shell.pid"))
    child = int(await wait_for_file(ctx.cwd / "child.pid"))
    assert alive(shell) and alive(child)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    # SIGTERM went out before the cancel returned; the group dies right after
    deadline = time.monotonic() + 1.5
    while (alive(shell) or alive(child)) and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert not alive(shell)
    assert not alive(child)


async def test_bash_cancel_returns_at_once_even_if_the_command_ignores_sigterm(ctx):
    from agent.tools import shell as shell_module

    task = asyncio.create_task(bash(ctx, "trap '' TERM; echo $$ > stubborn.pid; while true; do sleep 0.1; done"))
    pid = int(await wait_for_file(ctx.cwd / "stubborn.pid"))
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5  # the interrupt does not wait for the kill grace
    assert pid in shell_module._LIVE_GROUPS  # still tracked until it is really gone
    deadline = time.monotonic() + shell_module.KILL_GRACE_S + 2
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert not alive(pid), "the background reaper did not SIGKILL the stubborn group"
    await asyncio.sleep(0.1)
    assert pid not in shell_module._LIVE_GROUPS


async def test_bash_does_not_wait_for_a_detached_background_child(ctx):
    started = time.monotonic()
    result = await bash(ctx, "sleep 30 > /dev/null 2>&1 & echo $! > bg.pid; echo launched")
    try:
        assert result.success and result.output == "launched"
        assert time.monotonic() - started < 2
        # a deliberately backgrounded job must survive the call that launched it
        assert alive(int((ctx.cwd / "bg.pid").read_text()))
    finally:
        os.kill(int((ctx.cwd / "bg.pid").read_text()), 9)


async def test_bash_large_output_keeps_head_and_tail_and_spills_everything(ctx):
    result = await bash(ctx, "seq 1 30000")
    full = "\n".join(str(i) for i in range(1, 30001))
    assert result.success and result.spill_path
    assert result.output.startswith("1\n2\n3\n")
    assert result.output.endswith("29999\n30000")
    assert "characters omitted" in result.output and result.spill_path in result.output
    assert Path(result.spill_path).read_text() == full
    assert len(result.output) < 26_000


async def test_bash_live_log_is_throttled_for_floods(ctx, logs):
    result = await bash(ctx, "seq 1 50000")
    assert result.success
    assert logs[-1] == "50000"
    assert len(logs) < 5_000  # the full text is in the result, not 50k events
    assert any("not shown live" in line for line in logs)


def test_bash_needs_approval_only_in_ask_mode(tmp_path):
    tool, params = BashTool(), BashParams(command="rm -rf build")
    assert "ask mode" in tool.approval_reason(params, ApprovalSettings(mode="ask", cwd=tmp_path))
    assert tool.approval_reason(params, ApprovalSettings(mode="auto", cwd=tmp_path)) is None
    assert tool.approval_reason(params, ApprovalSettings(mode="yolo", cwd=tmp_path)) is None


# --------------------------------------------------------------------------- read


async def test_read_numbers_lines_like_cat_n_and_records_the_file(ctx):
    path = ctx.cwd / "notes.txt"
    path.write_text("alpha\nbeta\n")
    result = await read(ctx, "notes.txt")
    assert result.success
    assert result.output == "     1\talpha\n     2\tbeta"
    st = path.stat()
    import hashlib

    assert ctx.state.read_files[str(path.resolve())] == (st.st_mtime_ns, st.st_size,
                                                        hashlib.sha256(b"alpha\nbeta\n").hexdigest())


async def test_read_pages_with_offset_and_limit(ctx):
    path = ctx.cwd / "long.txt"
    path.write_text("".join(f"line {i}\n" for i in range(1, 101)))
    result = await read(ctx, path, offset=10, limit=5)
    assert result.output.splitlines()[0] == "    10\tline 10"
    assert result.output.splitlines()[4] == "    14\tline 14"
    assert "86 more lines; use offset=15" in result.output
    tail = await read(ctx, path, offset=99)
    assert tail.output == "    99\tline 99\n   100\tline 100"
    past = await read(ctx, path, offset=500)
    assert not past.success and "100 lines" in past.output


async def test_read_truncates_very_long_lines(ctx):
    path = ctx.cwd / "wide.txt"
    path.write_text("x" * 10_000 + "\nshort")
    result = await read(ctx, path)
    first, second = result.output.splitlines()
    assert len(first) < 4_100 and "truncated" in first and "10,000" in first
    assert second == "     2\tshort"
    # a huge single line (minified JSON) is never held whole in memory, only measured
    path.write_text("y" * 3_000_000 + "\nnext\n")
    result = await read(ctx, path)
    first, second = result.output.splitlines()
    assert len(first) < 4_100 and "3,000,000 bytes" in first
    assert second == "     2\tnext"


async def test_read_refuses_a_fifo_instead_of_blocking(ctx):
    fifo = ctx.cwd / "pipe"
    os.mkfifo(fifo)
    result = await asyncio.wait_for(read(ctx, fifo), timeout=2)
    assert not result.success and "not a regular file" in result.output


async def test_read_refuses_directories_missing_and_binary_files_helpfully(ctx):
    (ctx.cwd / "data").mkdir()
    (ctx.cwd / "data" / "train.csv").write_text("a,b\n")
    (ctx.cwd / "data" / "splits").mkdir()
    directory = await read(ctx, "data")
    assert not directory.success
    assert "is a directory" in directory.output
    assert "train.csv" in directory.output and "splits/" in directory.output

    (ctx.cwd / "config.yaml").write_text("lr: 1\n")
    missing = await read(ctx, "config.yml")
    assert not missing.success and "does not exist" in missing.output
    assert "config.yaml" in missing.output

    blob = ctx.cwd / "model.bin"
    blob.write_bytes(b"\x00\x01\x02" * 100)
    binary = await read(ctx, blob)
    assert not binary.success and "binary" in binary.output and "300 bytes" in binary.output
    assert str(blob) not in ctx.state.read_files


# --------------------------------------------------------------------------- write


async def test_write_creates_parents_and_a_follow_up_edit_needs_no_read(ctx):
    result = await write(ctx, "src/pkg/mod.py", "x = 1\n")
    assert result.success and "Created" in result.output
    path = ctx.cwd / "src/pkg/mod.py"
    assert path.read_text() == "x = 1\n"
    umask = os.umask(0o022)
    os.umask(umask)
    # a new file gets the usual permissions, not mkstemp's private 0600
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    again = await edit(ctx, path, "x = 1", "x = 2")
    assert again.success, again.output
    assert path.read_text() == "x = 2\n"


async def test_write_refuses_to_overwrite_an_unread_file(ctx):
    path = ctx.cwd / "train.py"
    path.write_text("original\n")
    result = await write(ctx, path, "clobbered\n")
    assert not result.success and "has not been read" in result.output
    assert path.read_text() == "original\n"
    await read(ctx, path)
    assert (await write(ctx, path, "replaced\n")).success
    assert path.read_text() == "replaced\n"


async def test_write_and_edit_refuse_a_file_changed_on_disk_since_it_was_read(ctx):
    path = ctx.cwd / "config.json"
    path.write_text('{"lr": 1}\n')
    await read(ctx, path)
    path.write_text('{"lr": 2, "user": "edited this"}\n')
    result = await write(ctx, path, '{"lr": 3}\n')
    assert not result.success and "changed on disk" in result.output
    edited = await edit(ctx, path, '"lr": 2', '"lr": 3')
    assert not edited.success and "changed on disk" in edited.output
    assert "edited this" in path.read_text()
    # same size, new mtime: still caught
    await read(ctx, path)
    before = path.stat()
    path.write_text('{"lr": 9, "user": "edited this"}\n')
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    assert not (await write(ctx, path, "x")).success


async def test_write_keeps_the_file_mode(ctx):
    path = ctx.cwd / "run.sh"
    path.write_text("#!/bin/sh\n")
    path.chmod(0o750)
    await read(ctx, path)
    assert (await write(ctx, path, "#!/bin/sh\necho hi\n")).success
    assert stat.S_IMODE(path.stat().st_mode) == 0o750


async def test_failed_write_reports_clearly_and_leaves_the_original_intact(ctx, monkeypatch):
    path = ctx.cwd / "keep.txt"
    path.write_text("precious\n")
    await read(ctx, path)

    def no_space(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    result = await write(ctx, path, "new content\n")
    assert not result.success
    assert "could not write" in result.output and "No space left on device" in result.output
    assert "unchanged" in result.output
    edited = await edit(ctx, path, "precious", "cheap")
    assert not edited.success and "unchanged" in edited.output
    assert path.read_text() == "precious\n"
    assert [p.name for p in ctx.cwd.iterdir()] == ["keep.txt"], "temp file left behind"


async def test_write_warns_about_python_syntax_errors_and_unpushed_training(ctx):
    bad = await write(ctx, "broken.py", "def f(:\n    pass\n")
    assert bad.success
    assert "syntax error at line 1" in bad.output
    train = await write(
        ctx, "train.py", "from trl import SFTConfig\ncfg = SFTConfig(output_dir='out')\n"
    )
    assert "SFTConfig" in train.output and "push_to_hub" in train.output
    pushed = await write(
        ctx, "train2.py", "from trl import SFTConfig\ncfg = SFTConfig(push_to_hub=True)\n"
    )
    assert "WARNING" not in pushed.output
    plain = await write(ctx, "notes.md", "TrainingArguments are nice\n")
    assert "WARNING" not in plain.output


def test_write_and_edit_need_approval_only_outside_cwd_in_ask_mode(tmp_path):
    ask = ApprovalSettings(mode="ask", cwd=tmp_path)
    auto = ApprovalSettings(mode="auto", cwd=tmp_path)
    for tool, params in [
        (WriteTool(), lambda p: WriteParams(path=p, content="x")),
        (EditTool(), lambda p: EditParams(path=p, old_str="a", new_str="b")),
    ]:
        assert tool.approval_reason(params("inside/file.txt"), ask) is None
        assert tool.approval_reason(params(str(tmp_path / "f.txt")), ask) is None
        reason = tool.approval_reason(params("../elsewhere.txt"), ask)
        assert reason and "outside the working directory" in reason
        assert tool.approval_reason(params("/etc/hosts"), ask)
        assert tool.approval_reason(params("/etc/hosts"), auto) is None


# --------------------------------------------------------------------------- edit


async def test_edit_replaces_an_exact_match_and_shows_the_changed_lines(ctx):
    path = ctx.cwd / "app.py"
    path.write_text("import os\n\n\ndef main():\n    return 1\n")
    await read(ctx, path)
    result = await edit(ctx, path, "    return 1", "    value = 2\n    return value")
    assert result.success
    assert path.read_text() == "import os\n\n\ndef main():\n    value = 2\n    return value\n"
    assert "lines 5-6" in result.output and "matched using" not in result.output
    assert "     5\t    value = 2" in result.output and "     4\tdef main():" in result.output


async def test_edit_requires_a_prior_read_and_a_real_change(ctx):
    path = ctx.cwd / "a.txt"
    path.write_text("one\n")
    unread = await edit(ctx, path, "one", "two")
    assert not unread.success and "has not been read" in unread.output
    await read(ctx, path)
    same = await edit(ctx, path, "one", "one")
    assert not same.success and "identical" in same.output
    missing = await edit(ctx, ctx.cwd / "nope.txt", "a", "b")
    assert not missing.success and "does not exist" in missing.output and "write" in missing.output
    assert path.read_text() == "one\n"


async def test_edit_with_several_matches_needs_replace_all(ctx):
    path = ctx.cwd / "cfg.py"
    path.write_text("lr = 1\nbatch = 8\nlr = 1\n\nlr = 1\n")
    await read(ctx, path)
    result = await edit(ctx, path, "lr = 1", "lr = 2")
    assert not result.success
    assert "3 places" in result.output and "lines 1, 3, 5" in result.output
    assert path.read_text().count("lr = 1") == 3
    result = await edit(ctx, path, "lr = 1", "lr = 2", replace_all=True)
    assert result.success and "3 occurrences" in result.output
    assert path.read_text() == "lr = 2\nbatch = 8\nlr = 2\n\nlr = 2\n"


async def test_edit_tolerates_trailing_whitespace(ctx):
    path = ctx.cwd / "t.py"
    path.write_text("a = 1   \nb = 2\t\nc = 3\n")
    await read(ctx, path)
    result = await edit(ctx, path, "a = 1\nb = 2", "a = 10\nb = 20")
    assert result.success, result.output
    assert "trailing-whitespace-insensitive" in result.output
    assert path.read_text() == "a = 10\nb = 20\nc = 3\n"


async def test_edit_tolerates_wrong_indentation_and_reindents_the_replacement(ctx):
    path = ctx.cwd / "f.py"
    path.write_text("def f():\n    if x:\n        y = 1\n    return y\n")
    await read(ctx, path)
    result = await edit(ctx, path, "if x:\n    y = 1", "if x:\n    y = 2\n    z = 3")
    assert result.success, result.output
    assert "whitespace-trimmed" in result.output
    assert path.read_text() == "def f():\n    if x:\n        y = 2\n        z = 3\n    return y\n"


async def test_edit_tolerates_typographic_unicode(ctx):
    path = ctx.cwd / "msg.py"
    path.write_text("print(\u201chello\u201d)  # a \u2014 b\u00a0\u200bc\nother = 1\n")
    await read(ctx, path)
    result = await edit(ctx, path, 'print("hello")  # a - b c', 'print("bye")')
    assert result.success, result.output
    assert "unicode-normalised" in result.output
    assert path.read_text() == 'print("bye")\nother = 1\n'


async def test_edit_without_a_match_points_at_the_closest_lines(ctx):
    path = ctx.cwd / "m.py"
    path.write_text("import torch\n\nmodel = build_model(hidden=256)\nmodel.train()\n")
    await read(ctx, path)
    result = await edit(
        ctx, path, "model = build_model(hidden=512)", "model = build_model(hidden=1024)"
    )
    assert not result.success and "not found" in result.output
    assert "     3\tmodel = build_model(hidden=256)" in result.output
    assert "256" in path.read_text()


async def test_edit_keeps_crlf_line_endings(ctx):
    path = ctx.cwd / "win.txt"
    path.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await read(ctx, path)
    result = await edit(ctx, path, "two\nthree", "2\n3")
    assert result.success, result.output
    assert path.read_bytes() == b"one\r\n2\r\n3\r\n"


async def test_edit_warns_when_it_breaks_python(ctx):
    path = ctx.cwd / "ok.py"
    path.write_text("x = (1,\n     2)\n")
    await read(ctx, path)
    result = await edit(ctx, path, "     2)", "     2")
    assert result.success and "syntax error" in result.output


async def test_a_change_made_through_bash_is_noticed_before_editing(ctx):
    path = ctx.cwd / "params.yaml"
    path.write_text("epochs: 3\n")
    await read(ctx, path)
    await bash(ctx, "sed -i 's/epochs: 3/epochs: 30/' params.yaml")
    result = await edit(ctx, path, "epochs: 3", "epochs: 5")
    assert not result.success and "changed on disk" in result.output
    assert path.read_text() == "epochs: 30\n"


def test_optional_parameters_are_sent_without_their_null_branch():
    """An optional parameter is offered as its own type (leaving it out means none); the
    router still takes an explicit null from a model that sends one."""
    specs = {s["function"]["name"]: s["function"]["parameters"] for s in ToolRouter(default_tools()).specs()}
    text = json.dumps(specs)
    assert '{"type": "null"}' not in text
    assert specs["hf_papers"]["properties"]["arxiv_id"]["type"] == "string"
    call = ToolRouter(default_tools(), ungoverned=True).parse("c", "hf_papers", '{"operation": "trending", "query": null}')
    assert call.error is None


async def test_a_latin1_file_is_read_and_edited_in_its_own_encoding(ctx):
    path = ctx.cwd / "legacy.txt"
    path.write_bytes("café au lait\nnaïve\n".encode("latin-1"))
    shown = await read(ctx, "legacy.txt")
    assert "café au lait" in shown.output and "not valid UTF-8; it is shown as Latin-1" in shown.output
    from agent.tools.edit import EditParams, EditTool

    done = await EditTool().run(EditParams(path="legacy.txt", old_str="café", new_str="thé"), ctx)
    assert done.success and "Latin-1" in done.output
    assert path.read_bytes() == "thé au lait\nnaïve\n".encode("latin-1")
    refused = await EditTool().run(EditParams(path="legacy.txt", old_str="thé", new_str="茶"), ctx)
    assert not refused.success and "Latin-1 cannot hold" in refused.output
    assert path.read_bytes() == "thé au lait\nnaïve\n".encode("latin-1")


async def test_a_same_size_change_with_its_mtime_put_back_is_caught(ctx):
    import os

    path = ctx.cwd / "config.yaml"
    path.write_text("lr: 0.001\n")
    await read(ctx, "config.yaml")
    st = path.stat()
    path.write_text("lr: 0.999\n")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime
    from agent.tools.edit import EditParams, EditTool

    refused = await EditTool().run(EditParams(path="config.yaml", old_str="lr: 0.999", new_str="lr: 0.01"), ctx)
    assert not refused.success and "changed on disk since you last read it" in refused.output
    assert path.read_text() == "lr: 0.999\n"
