"""Nothing from outside reaches the terminal as an escape sequence (issue 19): a model's answer
(streamed and final), an unknown tool's name, a ``bash`` command on its card and approval
modal, a ``plan_tool`` step, a ``write`` path, a provider's error, an MCP server's name and
stderr, a job's id, detail and log lines, a toast. Each arrives with an OSC 52 clipboard
write, an OSC 0 window title, a clear-screen CSI and a C1 CSI in it; what the app sends to its
terminal is recorded frame by frame and must hold the visible placeholders (␛ ␇ �) and no
control character. A real terminal (tmux with ``set-clipboard on``) checks the same from the
outside: no clipboard buffer, the window title unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from agent.config import Config, LLMSettings
from agent.protocol import JobLog, JobUpdate
from tests.engine_support import make_session
from tests.fakes import Call, HTTPError, Text, ToolCalls
from tests.test_tui_pilot import open_card, send, start_app, until_idle
from tests.tui_support import AppUnderTest, feed, rendered_text, wait_for
from widgets.conversation import Notice

OSC52 = "\x1b]52;c;aGVsbG8=\x07"  # put "hello" on the clipboard
TITLE = "\x1b]0;pwned\x07"  # retitle the window
CLEAR = "\x1b[2J"  # clear the screen
C1_CSI = "\x9b31m"  # a CSI in one byte (red, in terminals that take C1 controls)
SHOWN = {OSC52: "␛]52;c;aGVsbG8=␇", TITLE: "␛]0;pwned␇", CLEAR: "␛[2J", C1_CSI: "\ufffd31m"}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
SIZE = (140, 40)


class TerminalText:
    """The text of every frame the app sends to its terminal, with Textual's own control
    sequences (cursor moves, which Rich marks as control segments) left out: what remains is
    what widgets drew, where no ESC, BEL or C1 character may be."""

    def __init__(self, app, width: int, height: int):
        from rich.console import Console

        self._console = Console(width=width, height=height, file=None, force_terminal=True, color_system=None)
        self._original = app._display
        self.texts: list[str] = []
        app._display = self._display

    def _display(self, screen, renderable) -> None:
        if renderable is not None:
            self.texts.append("".join(s.text for s in self._console.render(renderable) if not s.control))
        return self._original(screen, renderable)

    def controls(self) -> list[str]:
        return sorted({repr(m.group()) for text in self.texts for m in CONTROL.finditer(text)})

    def seen(self, text: str) -> bool:
        return any(text in frame for frame in self.texts)


def screen_text(app) -> str:
    return "\n".join(rendered_text(app))


async def test_model_text_tool_calls_plan_paths_and_provider_errors_show_placeholders(llm_server, monkeypatch, tmp_path):
    answer = f"The answer {OSC52} then {TITLE} then {CLEAR} then {C1_CSI} end."
    plan = {"todos": [{"id": "1", "content": f"step one {TITLE}", "status": "completed"}]}
    calls = [Call("p1", "plan_tool", json.dumps(plan)),
             Call("u1", f"ghost_tool{CLEAR}", "{}"),
             Call("b1", "bash", json.dumps({"command": f"echo bash-ran {C1_CSI}"})),
             Call("w1", "write", json.dumps({"path": f"notes{OSC52}.txt", "content": "x"}))]
    llm_server.script(ToolCalls(calls), Text(answer, chunk_chars=3), HTTPError(400, f"Bad key {TITLE} for you"))
    app = AppUnderTest()
    terminal = TerminalText(app, *SIZE)
    async with app.run_test(size=SIZE) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "go")
        card = await open_card(pilot, app, 1)  # bash: its command on the approval modal
        assert card.item.tool == "bash"
        shown = screen_text(app)
        assert f"echo bash-ran {SHOWN[C1_CSI]}" in shown and C1_CSI not in shown
        await pilot.press("y")
        await until_idle(pilot, app)
        shown = screen_text(app)
        assert f"step one {SHOWN[TITLE]}" in shown  # the plan pane
        assert f"ghost_tool{SHOWN[CLEAR]}" in shown  # the unknown tool's card
        assert f"notes{SHOWN[OSC52]}.txt" in shown  # the write card
        assert f"echo bash-ran {SHOWN[C1_CSI]}" in shown  # the bash card
        answer_block = app.conversation.query("AnswerBlock").last()
        assert answer_block.text == "The answer ␛]52;c;aGVsbG8=␇ then ␛]0;pwned␇ then ␛[2J then \ufffd31m end."
        # the turn can end before the layout pass that gives the answer its height: wait for it
        await wait_for(pilot, lambda: "The answer ␛]52;c;aGVsbG8=␇ then ␛]0;pwned␇ then ␛[2J then" in screen_text(app),
                       what="the answer on screen", timeout=5)
        await send(pilot, "again")
        await until_idle(pilot, app)
        errors = [str(n.render()) for n in app.conversation.query(Notice) if n.kind == "error"]
        assert any(f"Bad key {SHOWN[TITLE]} for you" in e for e in errors), errors  # the provider's error
    assert terminal.controls() == []
    assert terminal.seen(SHOWN[OSC52]) and terminal.seen(SHOWN[TITLE]) and terminal.seen(SHOWN[CLEAR])
    # the engine keeps the raw text: only what is shown changes
    assert (tmp_path / "work" / f"notes{OSC52}.txt").exists()
    sent = [c["function"]["name"] for m in llm_server.requests[1]["messages"] for c in m.get("tool_calls") or []]
    assert f"ghost_tool{CLEAR}" in sent


async def test_an_mcp_server_name_and_its_stderr_show_placeholders(llm_server, monkeypatch, tmp_path):
    """A real stdio server that fails at start: its name (from the config) and the last lines
    of its stderr reach the conversation's notice and the /mcp screen."""
    script = f"import sys; sys.stderr.write('crashed {TITLE} here\\n'); sys.exit(3)"
    name = f"evil{CLEAR}"
    config = Config(llm=LLMSettings(max_attempts=1), mcpServers={name: {"command": sys.executable, "args": ["-c", script]}})
    app = AppUnderTest()
    terminal = TerminalText(app, *SIZE)
    async with app.run_test(size=SIZE) as pilot:
        session = make_session(llm_server, monkeypatch, tmp_path, config=config)
        app.attach_session(session)
        await wait_for(pilot, lambda: app._mcp_watch is not None and any(
            s.state == "failed" for s in app._mcp_watch.status.servers), what="the server's failure", timeout=30)
        await pilot.pause(0.2)
        assert f"evil{SHOWN[CLEAR]}" in screen_text(app)
        app.show_mcp_screen()
        await wait_for(pilot, lambda: f"crashed {SHOWN[TITLE]} here" in screen_text(app), what="the stderr on /mcp")
        assert f"evil{SHOWN[CLEAR]}" in screen_text(app)
    assert terminal.controls() == []


async def test_job_ids_details_log_lines_and_toasts_show_placeholders():
    """Jobs come from a backend (the Hub, or a process's output): their events pass the same
    gate. A toast (which would parse markup) shows the text as it is."""
    app = AppUnderTest()
    terminal = TerminalText(app, *SIZE)
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        job = f"job{TITLE}"
        await feed(app, JobUpdate(job_id=job, status="RUNNING", flavor="cpu-basic"),
                   JobLog(job_id=job, lines=[f"step 1 loss 0.5 {C1_CSI}", f"bare {chr(0x1b)}x and {chr(7)} bell"]),
                   JobUpdate(job_id=job, status="ERROR", flavor="cpu-basic", detail=f"failed: {OSC52}"))
        app.notify(f"[b]toast[/b] {TITLE}")
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert f"job{SHOWN[TITLE]}" in shown
        assert SHOWN[C1_CSI] in shown and "bare ␛x and ␇ bell" in shown
    assert terminal.controls() == []
    assert terminal.seen(f"[b]toast[/b] {SHOWN[TITLE]}")
    assert terminal.seen(f"failed: {SHOWN[OSC52]}")  # the notice when the job ended


async def test_markup_in_outside_text_stays_text(llm_server, monkeypatch, tmp_path):
    """Square brackets in a tool's name and a session title are text, not Rich markup: the
    Output pane's and the prompt's frame titles show them as they are."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        app.show_title("[red]not red[/red] title")
        app.tool_log.source = "[b]tool[/b]"
        await pilot.pause()
        shown = screen_text(app)
        assert "[red]not red[/red] title" in shown and "Output · [b]tool[/b]" in shown


def test_mcp_list_prints_a_project_servers_names_as_text(tmp_path, monkeypatch):
    """``mlintern mcp list`` prints names and commands from a project's .mcp.json, which comes
    with a cloned repository: as text, never as escape sequences."""
    import io

    from mlintern_tui.mcp_cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".mcp.json").write_text(json.dumps({"mcpServers": {f"lint{TITLE}": {"command": f"node {OSC52}x.js"}}}))
    out = io.StringIO()
    assert main(["list"], out=out, err=io.StringIO()) == 0
    printed = out.getvalue()
    assert f"lint{SHOWN[TITLE]}" in printed and f"node {SHOWN[OSC52]}x.js" in printed
    assert CONTROL.search(printed.replace("\n", "")) is None


TMUX = shutil.which("tmux")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed")
def test_in_tmux_no_clipboard_write_and_no_window_title(llm_server, mlintern_home, tmp_path):
    """The installed app in tmux with ``set-clipboard on``: an answer carrying OSC 52 and OSC 0
    (and an unknown tool named with them) leaves tmux's paste buffers empty and the pane's
    title as it was, and shows the placeholders. (Before the fix: three "hello" buffers.)"""
    from tests.test_headless_cli import mlintern_cmd
    from tests.test_tmux_smoke import alive, capture, send as send_keys, wait_screen

    llm_server.script(ToolCalls([Call("u1", f"ghost{OSC52}{TITLE}", "{}")]),
                      Text(f"Answer {OSC52}{TITLE}{CLEAR} done."))
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("HF_TOKEN",)}
    env.update({"MLINTERN_HOME": str(mlintern_home), "TERM": "xterm-256color", "OPENAI_BASE_URL": llm_server.base_url,
                "OPENAI_API_KEY": "sk-test"})
    exe = Path(mlintern_cmd()[0])
    session = f"mlintern-osc-{uuid.uuid4().hex[:8]}"
    tmux = [TMUX, "-L", session]
    # the server is started first so its options hold before the app writes anything
    subprocess.run([*tmux, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "140", "-y", "40"],
                   env=env, check=True)
    try:
        subprocess.run([*tmux, "set-option", "-g", "set-clipboard", "on"], check=True)
        subprocess.run([*tmux, "set-option", "-g", "allow-rename", "on"], check=True)
        subprocess.run([*tmux, "select-pane", "-t", session, "-T", "before"], check=True)
        subprocess.run([*tmux, "respawn-pane", "-k", "-t", session,
                        f"cd {tmp_path} && exec {exe} -m openai/scripted-model --yolo"], env=env, check=True)
        wait_screen(session, lambda s: "scripted-model" in s and "(loading)" not in s, 60, "the model to be ready")
        send_keys(session, "go", literal=True)
        send_keys(session, "Enter")
        screen = wait_screen(session, lambda s: "done." in s and "working…" not in s, 60, "the answer")
        buffers = subprocess.run([*tmux, "list-buffers"], capture_output=True, text=True).stdout
        title = subprocess.run([*tmux, "display-message", "-p", "-t", session, "#{pane_title}"],
                               capture_output=True, text=True).stdout.strip()
        assert buffers == "", buffers
        assert title == "before", title
        assert "␛]52;c;aGVsbG8=␇" in screen.replace("\n", "")
        send_keys(session, "C-q")
        deadline = time.monotonic() + 15
        while "scripted-model" in capture(session) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        if alive(session):
            subprocess.run([*tmux, "kill-server"], capture_output=True)
