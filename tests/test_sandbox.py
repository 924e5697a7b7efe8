"""The remote sandbox: its control server for real on 127.0.0.1, the Space lifecycle against the
Hub emulator, and the sandbox_* tools end to end with the manager pointed at a loopback server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from agent.sandbox.client import SandboxClient, SandboxError
from agent.sandbox.manager import DEFAULT_TEMPLATE, SandboxManager
from agent.sandbox.server import SOURCE_FILES, make_server
from agent.tools.base import ApprovalSettings, SessionToolState, ToolContext
from agent.tools.output import apply_output_budget
from agent.tools.router import tool_spec
from agent.tools.sandbox import (
    TOKEN_SENTENCE, SandboxBashParams, SandboxBashTool, SandboxCreateParams, SandboxCreateTool, SandboxEditParams,
    SandboxEditTool, SandboxReadParams, SandboxReadTool, SandboxWriteParams, SandboxWriteTool, sandbox_tools,
)

TOKEN = "sandbox-test-token-0123456789"
SANDBOX_DIR = Path(__file__).resolve().parent.parent / "agent" / "sandbox"


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):  # ESRCH: going while it is read
        return False
    return state not in ("Z", "X")


async def until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


class Servers:
    """Sandbox servers in threads of this process, stopped (with their commands) at the end."""

    def __init__(self, root: Path) -> None:
        self.root, self.running = root, []

    def start(self, token: str = TOKEN, name: str = "box") -> tuple[str, Path]:
        workdir = self.root / name
        workdir.mkdir(parents=True, exist_ok=True)
        server = make_server("127.0.0.1", 0, token, str(workdir), spill_dir=str(self.root / f"{name}-spill"))
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.running.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", workdir

    def stop_one(self, url: str) -> None:
        server = next(s for s in self.running if url.endswith(f":{s.server_address[1]}"))
        server.shutdown()
        server.server_close()
        self.running.remove(server)

    def stop(self) -> None:
        for server in self.running:
            server.app.kill_all()
            server.shutdown()
            server.server_close()


@pytest.fixture
def servers(tmp_path):
    pool = Servers(tmp_path / "servers")
    yield pool
    pool.stop()


@pytest.fixture
def box(servers):
    return servers.start()


@pytest.fixture
async def client(box):
    c = SandboxClient(box[0], TOKEN, "hf_test")
    yield c
    await c.aclose()


# ---- the server ------------------------------------------------------------------------------


async def test_only_the_sandbox_token_opens_the_routes(box):
    url, workdir = box
    body = {"command": "touch ran"}
    async with httpx.AsyncClient(base_url=url) as raw:
        health = await raw.get("/api/health")
        assert health.status_code == 200 and health.json()["workdir"] == str(workdir.resolve())
        for headers in ({}, {"X-Sandbox-Authorization": "Bearer wrong-token-0123456789"},
                        {"Authorization": f"Bearer {TOKEN}"}, {"X-Sandbox-Authorization": TOKEN}):
            answer = await raw.post("/api/bash", json=body, headers=headers)
            assert answer.status_code == 401 and answer.json()["code"] == "unauthorized", headers
        assert (await raw.get("/api/bash")).status_code == 405
    assert not (workdir / "ran").exists()
    wrong = SandboxClient(url, "wrong-token-0123456789")
    with pytest.raises(SandboxError, match="rejected its control token") as caught:
        await wrong.bash("touch ran")
    await wrong.aclose()
    assert caught.value.code == "unauthorized" and not (workdir / "ran").exists()


async def test_bash_merges_output_reports_exit_codes_and_cleans_terminal_codes(client, box):
    (box[1] / "sub").mkdir()
    out = await client.bash("echo out; echo err >&2; pwd; printf '\\033[31mred\\033[0m\\n'; "
                            "printf '10%%\\r50%%\\r100%%\\n'; exit 3", cwd="sub")
    assert out.output == f"out\nerr\n{(box[1] / 'sub').resolve()}\nred\n100%"
    assert out.exit_code == 3 and not out.timed_out and not out.truncated
    assert (await client.bash("true")).output == "(no output)"
    with pytest.raises(SandboxError, match="does not exist or is not a directory"):
        await client.bash("true", cwd="missing")


async def test_bash_timeout_kills_everything_the_command_started(client, box):
    start = time.monotonic()
    out = await client.bash("sleep 60 & echo $! > child.pid; echo started; sleep 60", timeout=1)
    assert out.timed_out and "started" in out.output and time.monotonic() - start < 5
    child = int((box[1] / "child.pid").read_text())
    await until(lambda: not alive(child))


async def test_a_background_child_does_not_hold_the_answer(client):
    start = time.monotonic()
    out = await client.bash("sleep 3 & echo done")
    assert time.monotonic() - start < 2.5 and out.exit_code == 0
    assert out.output.startswith("done") and "no longer captured" in out.output


async def test_kill_stops_running_commands_and_a_cancelled_call_kills_its_command(client, box):
    running = asyncio.create_task(client.bash("sleep 60", timeout=120))
    while await client.kill() == 0:  # until the command is registered, then it is killed
        await asyncio.sleep(0.02)
    out = await asyncio.wait_for(running, 10)
    assert out.killed and out.exit_code is not None and out.exit_code < 0

    cancelled = asyncio.create_task(client.bash("echo $$ > shell.pid; sleep 60", timeout=120))
    await until(lambda: (box[1] / "shell.pid").exists() and (box[1] / "shell.pid").read_text().strip())
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    shell = int((box[1] / "shell.pid").read_text())
    await until(lambda: not alive(shell))


async def test_long_output_keeps_head_and_tail_and_spills_the_rest(client):
    out = await client.bash("seq 1 100000")
    assert out.truncated and out.output.startswith("1\n2\n3\n") and out.output.endswith("99999\n100000")
    assert "output truncated" in out.output and out.spill_path in out.output and len(out.output) < 24_500
    assert Path(out.spill_path).read_text().split() == [str(n) for n in range(1, 100001)]


async def test_read_pages_numbered_lines_and_explains_what_it_cannot_read(client, box):
    workdir = box[1]
    (workdir / "notes.txt").write_text("a\nb\nc\nd\ne\n")
    text = await client.read("notes.txt", offset=2, limit=2)
    assert text.content == "     2\tb\n     3\tc" and (text.last_line, text.total_lines) == (3, 5)
    assert text.state.size == 10 and text.path == str((workdir / "notes.txt").resolve())
    (workdir / "data").mkdir()
    (workdir / "data" / "x.csv").write_text("1")
    (workdir / "blob.bin").write_bytes(b"\0\1\2")
    expected = [("note.txt", "not_found", "Did you mean: notes.txt"), ("data", "is_directory", "x.csv"),
                ("blob.bin", "binary", "binary file"), ("nowhere/x", "not_found", "neither does its directory")]
    for path, code, words in expected:
        with pytest.raises(SandboxError, match=words) as caught:
            await client.read(path)
        assert caught.value.code == code
    with pytest.raises(SandboxError, match="past the end of .* which has 5 lines"):
        await client.read("notes.txt", offset=9)


async def test_write_is_atomic_and_keeps_the_read_before_write_rule(client, box):
    workdir = box[1]
    created = await client.write("pkg/run.sh", "echo 1\n", create_only=True)
    assert created.created and (workdir / "pkg" / "run.sh").read_text() == "echo 1\n"
    with pytest.raises(SandboxError, match="has not been read") as unread:
        await client.write("pkg/run.sh", "echo 2\n", create_only=True)
    assert unread.value.code == "unread" and unread.value.status == 409
    os.chmod(workdir / "pkg" / "run.sh", 0o755)
    seen = (await client.read("pkg/run.sh")).state
    (workdir / "pkg" / "run.sh").write_text("echo changed elsewhere\n")
    with pytest.raises(SandboxError, match="changed since you last read it") as stale:
        await client.write("pkg/run.sh", "echo 2\n", expect=seen)
    assert stale.value.code == "stale"
    seen = (await client.read("pkg/run.sh")).state
    await client.write("pkg/run.sh", "echo 2\n", expect=seen)
    assert (workdir / "pkg" / "run.sh").read_text() == "echo 2\n"
    assert os.stat(workdir / "pkg" / "run.sh").st_mode & 0o777 == 0o755
    assert sorted(p.name for p in (workdir / "pkg").iterdir()) == ["run.sh"]  # no temp file left
    bad = await client.write("bad.py", "def f(:\n", create_only=True)
    assert bad.warnings and "syntax error at line 1" in bad.warnings[0]


async def test_edit_replaces_exact_text_and_says_why_it_did_not(client, box):
    path = box[1] / "train.py"
    path.write_text("lr = 1e-3\nepochs = 3\nprint(lr)\nprint(lr)\n")
    state = (await client.read("train.py")).state
    change = await client.edit("train.py", "epochs = 3", "epochs = 5", expect=state)
    assert change.first_line == 2 and "     2\tepochs = 5" in change.snippet
    with pytest.raises(SandboxError, match="matches 2 places in .* \\(lines 3, 4\\)") as ambiguous:
        await client.edit("train.py", "print(lr)", "print(lr * 2)", expect=change.state)
    assert ambiguous.value.code == "ambiguous"
    with pytest.raises(SandboxError, match="not found(.|\n)*closest text(.|\n)*epochs = 5") as missing:
        await client.edit("train.py", "epochs = 50", "epochs = 6", expect=change.state)
    assert missing.value.code == "no_match"
    with pytest.raises(SandboxError, match="identical"):
        await client.edit("train.py", "lr", "lr", expect=change.state)
    every = await client.edit("train.py", "print(lr)", "print(lr * 2)", replace_all=True, expect=change.state)
    assert every.replacements == 2
    assert path.read_text() == "lr = 1e-3\nepochs = 5\nprint(lr * 2)\nprint(lr * 2)\n"


async def test_the_server_files_run_alone_on_a_bare_python_and_refuse_to_start_without_a_token(tmp_path):
    for name in SOURCE_FILES:
        shutil.copy(SANDBOX_DIR / name, tmp_path / name)
    (tmp_path / "app").mkdir()
    argv = [sys.executable, "-I", str(tmp_path / "server.py"), "--host", "127.0.0.1", "--port", "0",
            "--workdir", str(tmp_path / "app")]
    env = {"PATH": os.environ["PATH"], "SANDBOX_API_TOKEN": TOKEN}
    refused = subprocess.run(argv, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "refusing to start without SANDBOX_API_TOKEN" in refused.stderr
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = await asyncio.to_thread(proc.stdout.readline)
        port = int(re.search(r"127\.0\.0\.1:(\d+)", banner).group(1))
        c = SandboxClient(f"http://127.0.0.1:{port}", TOKEN)
        out = await c.bash("echo ${SANDBOX_API_TOKEN:-not visible}; pwd")
        await c.aclose()
        assert out.output == f"not visible\n{tmp_path / 'app'}"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "POST /api/bash" in stderr and TOKEN not in stderr
    loaded = subprocess.run([sys.executable, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                             "import server; print(sorted(m for m in sys.modules if m.startswith('agent')))",
                             str(tmp_path)], capture_output=True, text=True, timeout=30)
    assert loaded.stdout.strip() == "[]", loaded.stderr


# ---- client errors -------------------------------------------------------------------------


class _Edge(BaseHTTPRequestHandler):
    """Stands in for the Space edge: answers without our server's header."""

    def do_POST(self) -> None:  # noqa: N802
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@contextmanager
def edge(status: int):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Edge)
    server.status = status
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_client_errors_say_what_happened():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    refused = SandboxClient(f"http://127.0.0.1:{free_port}", TOKEN)
    with pytest.raises(SandboxError, match=r"Cannot connect .* \(connection refused\)") as caught:
        await refused.kill()
    assert caught.value.code == "unreachable"
    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        slow = SandboxClient(f"http://127.0.0.1:{silent.getsockname()[1]}", TOKEN, timeout=0.3)
        with pytest.raises(SandboxError, match="did not answer kill within 0s") as caught:
            await slow.kill()
        assert caught.value.code == "timeout"
    for status, words in ((401, "refused the Hugging Face token"), (503, "building, restarting or asleep")):
        with edge(status) as url:
            c = SandboxClient(url, TOKEN, "hf_test")
            with pytest.raises(SandboxError, match=words):
                await c.kill()
            await c.aclose()


# ---- the manager against the Hub emulator ---------------------------------------------------


@pytest.fixture
async def make_manager(hub, servers):
    """Managers whose 'Space host' is a real sandbox server started with the Space's own secret."""
    made: list[SandboxManager] = []
    default_urls: list[str] = []

    def boot(repo_id: str, default_url: str) -> str:
        default_urls.append(default_url)
        return servers.start(hub.space_secrets(repo_id)["SANDBOX_API_TOKEN"], repo_id.replace("/", "-"))[0]

    def factory(**kw) -> SandboxManager:
        options = dict(endpoint=hub.endpoint, base_url_for=boot, poll_interval_s=0.01, start_timeout_s=5,
                       health_timeout_s=5, delete_backoff_s=0.01)
        manager = SandboxManager("hf_test", **{**options, **kw})
        manager.default_urls = default_urls
        manager.servers = servers
        made.append(manager)
        return manager

    yield factory
    for manager in made:
        await manager.teardown()


def duplicated_ids(hub) -> list[str]:
    return [r.body["repository"] for r in hub.requests if r.method == "POST" and r.path.endswith("/duplicate")]


async def test_create_polls_the_runtime_until_running_and_teardown_deletes_the_space(hub, make_manager):
    hub.script_space(stages=["BUILDING", "BUILDING", "APP_STARTING", "RUNNING"])
    manager, logs = make_manager(), []
    sandbox = await manager.create(log=logs.append)
    repo_id = sandbox.repo_id
    assert re.fullmatch(r"ada/sandbox-[0-9a-f]{8}", repo_id) and manager.active is sandbox
    assert hub.space_info(repo_id) == {"sdk": None, "hardware": "cpu-basic", "sleep_time": None,
                                       "duplicated_from": DEFAULT_TEMPLATE}
    duplicate = next(r for r in hub.requests if r.path.endswith("/duplicate"))
    assert duplicate.body.get("visibility") == "private" or duplicate.body.get("private") is True
    secrets = hub.space_secrets(repo_id)
    assert set(secrets) == {"SANDBOX_API_TOKEN"} and len(secrets["SANDBOX_API_TOKEN"]) >= 40
    files = hub.space_files(repo_id)
    assert {f"sandbox/{n}" for n in SOURCE_FILES} | {"Dockerfile", "README.md"} == set(files)
    assert files["sandbox/server.py"] == (SANDBOX_DIR / "server.py").read_bytes()
    assert b"sdk: docker" in files["README.md"] and b"/home/user/sandbox/server.py" in files["Dockerfile"]
    polls = [r for r in hub.requests if r.path.endswith(f"{repo_id}/runtime")]
    assert len(polls) == 4 and [line for line in logs if line.startswith("Space ")] == [
        f"Space {repo_id}: BUILDING", f"Space {repo_id}: APP_STARTING", f"Space {repo_id}: RUNNING"]
    assert manager.default_urls == [f"https://{repo_id.replace('/', '-')}.hf.space"]
    assert (await sandbox.client.bash("echo hello")).output == "hello"

    assert await manager.teardown(log=logs.append) is True
    assert not hub.repo_exists(repo_id) and manager.active is None and logs[-1] == f"Deleted sandbox Space {repo_id}."


async def test_the_hf_token_is_stored_only_when_asked_and_paid_hardware_sleeps(hub, make_manager):
    manager = make_manager(owner="ml-team")
    sandbox = await manager.create("t4-small", store_hf_token=True)
    assert sandbox.repo_id.startswith("ml-team/sandbox-") and sandbox.hf_token_stored
    assert hub.space_secrets(sandbox.repo_id)["HF_TOKEN"] == "hf_test"
    info = hub.space_info(sandbox.repo_id)
    assert (info["hardware"], info["sleep_time"]) == ("t4-small", 2700)
    with pytest.raises(SandboxError, match="already active"):
        await manager.create()
    await manager.teardown()


@pytest.mark.parametrize("stage", ["BUILD_ERROR", "RUNTIME_ERROR"])
async def test_a_failed_build_is_reported_and_the_half_made_space_deleted(hub, make_manager, stage):
    hub.script_space(stages=["BUILDING", stage], message="pip install failed")
    manager = make_manager()
    with pytest.raises(SandboxError, match=f"failed to start \\({stage}: pip install failed\\).*was deleted"):
        await manager.create()
    [repo_id] = duplicated_ids(hub)
    assert not hub.repo_exists(repo_id) and manager.active is None


async def test_a_space_that_never_runs_times_out_and_is_deleted(hub, make_manager):
    hub.script_space(stages=["BUILDING"])
    with pytest.raises(SandboxError, match="still BUILDING after 0s") as caught:
        await make_manager(start_timeout_s=0.05).create()
    assert caught.value.code == "timeout" and not hub.repo_exists(duplicated_ids(hub)[0])


async def test_an_interrupted_creation_deletes_the_space(hub, make_manager):
    hub.script_space(stages=["BUILDING"])
    manager = make_manager(start_timeout_s=60)
    creating = asyncio.create_task(manager.create())
    await asyncio.to_thread(hub.wait_for_request, "GET", r"/runtime$", 2)
    assert manager.creating
    creating.cancel()
    with pytest.raises(asyncio.CancelledError):
        await creating
    assert not hub.repo_exists(duplicated_ids(hub)[0]) and manager.active is None


async def test_a_preloaded_sandbox_is_waited_for_and_a_teardown_mid_creation_leaves_nothing(hub, make_manager):
    hub.script_space(stages=["BUILDING", "BUILDING", "RUNNING"])
    manager, logs = make_manager(), []
    manager.preload(log=logs.append)
    sandbox = await manager.current()  # called at once: it waits for the creation under way
    assert sandbox is not None and manager.active is sandbox and sandbox.cost_so_far() == 0.0
    await manager.teardown()

    hub.script_space(stages=["BUILDING"])
    slow = make_manager(start_timeout_s=60)
    polled = len([r for r in hub.requests if r.path.endswith("/runtime")])
    slow.preload(log=logs.append)
    await asyncio.to_thread(hub.wait_for_request, "GET", r"/runtime$", polled + 1)
    assert await slow.teardown() is True and slow.active is None and not slow.creating
    assert [hub.repo_exists(repo_id) for repo_id in duplicated_ids(hub)] == [False, False]

    hub.script_space(stages=["BUILD_ERROR"], message="no space left")
    failing = make_manager()
    await asyncio.wait([failing.preload(log=logs.append)])
    assert "The sandbox could not be prepared" in logs[-1] and "no space left" in logs[-1]


async def test_teardown_retries_and_says_how_to_clean_up_by_hand(hub, make_manager):
    manager, logs = make_manager(), []
    sandbox = await manager.create()
    real_delete, calls = manager.api.delete_repo, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) < 3:
            raise ConnectionError("hub hiccup")
        return real_delete(*args, **kwargs)

    manager.api.delete_repo = flaky
    assert await manager.teardown() is True and len(calls) == 3 and not hub.repo_exists(sandbox.repo_id)

    sandbox = await manager.create()
    manager.api.delete_repo = lambda *a, **k: (_ for _ in ()).throw(ConnectionError("hub down"))
    assert await manager.teardown(log=logs.append) is False
    assert "after 3 attempts" in logs[-1] and f"huggingface.co/spaces/{sandbox.repo_id}/settings" in logs[-1]
    manager.api.delete_repo = real_delete
    real_delete(sandbox.repo_id, repo_type="space")


# ---- the tools -------------------------------------------------------------------------------


def test_sandbox_create_asks_for_paid_hardware_and_for_the_token_and_estimates_an_hour():
    tool, settings = SandboxCreateTool(), ApprovalSettings()
    assert tool.approval_reason(SandboxCreateParams(), settings) is None
    assert tool.estimate(SandboxCreateParams()) == 0.0
    token_only = tool.approval_reason(SandboxCreateParams(store_hf_token=True), settings)
    assert "free private cpu-basic" in token_only and TOKEN_SENTENCE in token_only
    gpu = tool.approval_reason(SandboxCreateParams(hardware="t4-small"), settings)
    assert "t4-small ($0.60/h, about $0.60 for the first hour)" in gpu and "stored as a secret (HF_TOKEN)" in gpu
    assert tool.estimate(SandboxCreateParams(hardware="a100-large")) == 4.0
    assert "price unknown" in tool.approval_reason(SandboxCreateParams(hardware="zero-a10g"), settings)
    assert tool.estimate(SandboxCreateParams(hardware="zero-a10g")) is None


def test_the_hardware_choices_are_the_hubs_and_the_schemas_are_closed():
    from typing import get_args

    from huggingface_hub import SpaceHardware

    from agent.tools.sandbox import Hardware

    assert set(get_args(Hardware)) == {h.value for h in SpaceHardware}
    spec = tool_spec(SandboxCreateTool())["function"]
    assert spec["parameters"]["additionalProperties"] is False
    assert spec["parameters"]["properties"]["hardware"]["enum"][0] == "cpu-basic"
    assert [tool_spec(t)["function"]["name"] for t in sandbox_tools()] == [
        "sandbox_create", "sandbox_bash", "sandbox_read", "sandbox_write", "sandbox_edit"]


def tool_ctx(tmp_path: Path, manager: SandboxManager | None, logs: list[str]) -> ToolContext:
    ctx = ToolContext(session_id="s", cwd=tmp_path, spill_dir=tmp_path / "spill", state=SessionToolState(),
                      log=logs.append)
    ctx.sandbox = manager  # the field the session provides (see agent.tools.sandbox.sandbox_manager)
    return ctx


async def test_the_tools_end_to_end(hub, make_manager, tmp_path):
    logs: list[str] = []
    ctx = tool_ctx(tmp_path, make_manager(), logs)
    create, bash = SandboxCreateTool(), SandboxBashTool()
    read, write, edit = SandboxReadTool(), SandboxWriteTool(), SandboxEditTool()

    early = await bash.run(SandboxBashParams(command="ls"), ctx)
    assert not early.success and "Call sandbox_create first" in early.output
    made = await create.run(SandboxCreateParams(), ctx)
    assert made.success and "Sandbox ready" in made.output and "does not hold your HF token" in made.output
    first = ctx.sandbox.active
    assert "already active" in (await create.run(SandboxCreateParams(), ctx)).output

    wrote = await write.run(SandboxWriteParams(path="train.py", content="from trl import SFTConfig\n"), ctx)
    assert wrote.success and "Created" in wrote.output and "push_to_hub" in wrote.output
    assert (await bash.run(SandboxBashParams(command="echo a > notes.txt"), ctx)).success
    refused = await write.run(SandboxWriteParams(path="notes.txt", content="b\n"), ctx)
    assert not refused.success and "has not been read" in refused.output
    unread_edit = await edit.run(SandboxEditParams(path="notes.txt", old_str="a", new_str="b"), ctx)
    assert not unread_edit.success and "Read it with sandbox_read first" in unread_edit.output
    assert (await read.run(SandboxReadParams(path="notes.txt"), ctx)).output == "     1\ta"
    assert (await write.run(SandboxWriteParams(path="notes.txt", content="a\nb\n"), ctx)).success
    await bash.run(SandboxBashParams(command="echo c >> notes.txt"), ctx)
    stale = await edit.run(SandboxEditParams(path="notes.txt", old_str="b", new_str="B"), ctx)
    assert not stale.success and "changed since you last read it" in stale.output
    await read.run(SandboxReadParams(path="notes.txt", limit=1), ctx)
    edited = await edit.run(SandboxEditParams(path="notes.txt", old_str="b", new_str="B"), ctx)
    assert edited.success and "replaced line 2" in edited.output
    shown = await bash.run(SandboxBashParams(command="cat notes.txt; exit 3"), ctx)
    assert not shown.success and shown.output == "a\nB\nc\n\nThe command failed with exit code 3."
    slow = await bash.run(SandboxBashParams(command="sleep 5", timeout=1), ctx)
    assert not slow.success and "timed out after 1s" in slow.output
    long = await bash.run(SandboxBashParams(command="seq 1 100000"), ctx)
    assert long.success and "output truncated" in long.output
    assert apply_output_budget(long.output, tmp_path / "spill")[1] is None, "cut once, remotely, not again here"

    gpu = await create.run(SandboxCreateParams(hardware="t4-small"), ctx)
    second = ctx.sandbox.active
    assert gpu.success and "t4-small ($0.60/h)" in gpu.output and "$HF_TOKEN" in gpu.output
    assert not hub.repo_exists(first.repo_id) and hub.space_secrets(second.repo_id)["HF_TOKEN"] == "hf_test"
    for hardware in ("a10g-large", "cpu-basic"):
        again = await create.run(SandboxCreateParams(hardware=hardware), ctx)
        assert not again.success and "cannot be changed" in again.output and ctx.sandbox.active is second
    gone = await read.run(SandboxReadParams(path="notes.txt"), ctx)
    assert not gone.success and "does not exist" in gone.output  # a new sandbox starts empty

    ctx.sandbox.servers.stop_one(second.url)  # the Space died under us
    dead = await bash.run(SandboxBashParams(command="true"), ctx)
    assert not dead.success and "Cannot connect to the sandbox" in dead.output
    revived = await create.run(SandboxCreateParams(hardware="t4-small"), ctx)
    assert revived.success and "Sandbox ready" in revived.output and ctx.sandbox.active is not second
    assert not hub.repo_exists(second.repo_id)
    assert (await bash.run(SandboxBashParams(command="echo back"), ctx)).output == "back"
    third = ctx.sandbox.active
    await ctx.sandbox.teardown()
    assert not hub.repo_exists(third.repo_id)


async def test_the_tools_explain_a_missing_hf_token(tmp_path):
    ctx = tool_ctx(tmp_path, None, [])
    for tool, params in ((SandboxCreateTool(), SandboxCreateParams()),
                         (SandboxReadTool(), SandboxReadParams(path="x"))):
        result = await tool.run(params, ctx)
        assert not result.success and "HF_TOKEN" in result.output


# ---- the session -----------------------------------------------------------------------------


async def test_a_session_offers_the_sandbox_only_with_a_token_and_deletes_it_on_shutdown(
        hub, make_manager, mlintern_home, monkeypatch, tmp_path):
    from agent.config import Config
    from agent.protocol import Shutdown
    from agent.session import Session

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    without = Session(Config(), cwd=tmp_path, jobs_backend="local")
    assert without.sandbox is None and "sandbox_create" not in without.router.names

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    session = Session(Config(), cwd=tmp_path, jobs_backend="local")
    assert isinstance(session.sandbox, SandboxManager)
    assert {"sandbox_create", "sandbox_bash", "sandbox_read", "sandbox_write", "sandbox_edit"} <= set(session.router.names)
    assert session._tool_context("c1", "sandbox_bash").sandbox is session.sandbox
    session.sandbox = manager = make_manager()  # the same manager, its Space host on loopback
    sandbox = await manager.create()
    assert hub.repo_exists(sandbox.repo_id)
    runner = session.start()
    session.submit(Shutdown())
    await asyncio.wait_for(runner, 10)
    assert not hub.repo_exists(sandbox.repo_id) and manager.active is None
