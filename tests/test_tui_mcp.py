"""MCP servers in the app: the ``/mcp`` screen, its keys, and what the conversation and
``/status`` say about the servers.

The app runs a real Session on the built-in demo model. Its ops are recorded, and the screen's
``McpAction``s are kept from the session (which would answer with its own servers); the
servers' states are published on the session's own bus (``session.emit``), the path the
engine's ``mcp_status`` events take to the bridge. One test at the end lets the actions
through to a real in-memory server.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.config import Config, LLMSettings
from agent.protocol import ErrorEvent, McpAction, McpStatus
from mlintern_tui.screens.mcp_screen import McpScreen
from tests.engine_support import make_session
from tests.test_tui_snapshots import PROJECT_MCP, SIZE, mcp_status
from tests.tui_support import AppUnderTest, palette_highlights, record_ops, wait_for
from widgets.conversation import Notice
from widgets.mcp_detail import McpServerDetail

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers

async def start(pilot, app, llm_server, monkeypatch, tmp_path, keep_mcp: bool = True, **session_kw):
    """A ready session whose own first ``mcp_status`` (the Hub's server, off in tests) is in."""
    session = make_session(llm_server, monkeypatch, tmp_path, model_id="demo", **session_kw)
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    await wait_for(pilot, lambda: app._mcp_watch is not None, what="the session's first mcp_status")
    return session, record_ops(monkeypatch, session, held=(McpAction,) if keep_mcp else ())


async def command(pilot, text: str) -> None:
    pilot.app.prompt.text = text
    pilot.app.prompt.action_submit()
    await pilot.pause()


def mcp_screen(app) -> McpScreen | None:
    return app.screen if isinstance(app.screen, McpScreen) else None


def actions(sent) -> list[tuple[str, str]]:
    return [(op.action, op.server) for op in sent if isinstance(op, McpAction)]


def rows(screen: McpScreen) -> list[str]:
    lst = screen.server_list
    return [lst.get_option_at_index(i).prompt.plain for i in range(lst.option_count)]


def detail(screen: McpScreen) -> str:
    return str(screen.query_one(McpServerDetail).render())


def notices(app) -> list[str]:
    return [str(n.render()) for n in app.conversation.query(Notice)]


def mcp_notices(app) -> list[str]:
    return [n for n in notices(app) if "MCP" in n or ".mcp.json" in n]


async def open_screen(pilot, session, sent, status: McpStatus | None = None) -> McpScreen:
    """/mcp, the session asked for the states, then ``status`` (every state) shown."""
    app = pilot.app
    await command(pilot, "/mcp")
    await wait_for(pilot, lambda: mcp_screen(app) is not None, what="the /mcp screen")
    await wait_for(pilot, lambda: ("status", "") in actions(sent), what="mcp_action status")
    screen = mcp_screen(app)
    status = status or mcp_status()
    session.emit(status)
    await wait_for(pilot, lambda: len(rows(screen)) == len(status.servers), what="the servers listed")
    return screen


async def select(pilot, screen: McpScreen, name: str) -> None:
    names = [s.name for s in screen.server_list.servers]
    current = screen.highlighted.name if screen.highlighted else names[0]
    steps = names.index(name) - names.index(current)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps))
    await wait_for(pilot, lambda: screen.highlighted is not None and screen.highlighted.name == name, what=f"{name} highlighted")


# --------------------------------------------------------------------------- the screen

async def test_mcp_asks_for_the_states_and_shows_every_server(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await command(pilot, "/mcp")
        await wait_for(pilot, lambda: mcp_screen(app) is not None, what="the /mcp screen")
        await wait_for(pilot, lambda: sent, what="an op")
        assert actions(sent) == [("status", "")]
        screen = mcp_screen(app)
        # the last status the app saw is shown at once: the Hub's server, off in tests
        assert [r.split()[:3] for r in rows(screen)] == [["○", "hf", "disabled"]]
        session.emit(mcp_status())
        await wait_for(pilot, lambda: len(rows(screen)) == 7, what="every server")
        by_name = {r.split()[1]: r for r in rows(screen)}
        assert by_name["papers"].startswith("✓ papers") and "ready · 3 tools" in by_name["papers"]
        assert by_name["github"].startswith("… github") and "connecting…" in by_name["github"]
        assert by_name["shell"].startswith("✗ shell") and "failed" in by_name["shell"]
        assert by_name["notes"].startswith("○ notes") and "disabled" in by_name["notes"]
        assert by_name["scratch"].startswith("⚠ scratch") and "untrusted" in by_name["scratch"]
        assert "project · stdio" in by_name["scratch"] and "uvx scratch-mcp --db ./scratch.db" in by_name["scratch"]
        assert "built-in · http" in by_name["hf"] and "https://huggingface.co/mcp" in by_name["hf"]
        assert str(screen.query_one("#mcp-trust").render()) == \
            "⚠ /home/me/sft-project/.mcp.json asks to run 2 servers: review them, T to trust"
        assert screen.query_one("#mcp-trust").display
        assert screen.query_one("Vertical").border_subtitle == \
            "2 ready (11 tools), 1 connecting, 1 failed, 2 untrusted, 1 disabled"

        # the detail follows the highlight, for every state
        expected = {
            "papers": ["From your config (/home/me/.config/mlintern/config.json) · stdio · each call asks first",
                       "Runs: uvx arxiv-mcp-server", "3 tools (t lists them)",
                       "1 more left out by the entry's allow/deny lists", "Log: /home/me/.local/share/mlintern/mcp/papers.log"],
            "github": ["github  … connecting…", "Runs: npx -y @modelcontextprotocol/server-github"],
            "shell": ["shell  ✗ failed", "Failed: McpError: Connection closed",
                      "  last lines of its stderr (/home/me/.local/share/mlintern/mcp/shell.log):",
                      "  ModuleNotFoundError: No module named 'fastmcp'", "r tries again"],
            "notes": ["notes  ○ disabled", "URL: https://notes.example.com/mcp", "e turns it on for this session"],
            "scratch": ["From the project's .mcp.json (/home/me/sft-project/.mcp.json)",
                        f"Waiting: from {PROJECT_MCP}, which you have not trusted yet", "T trusts the project's .mcp.json"],
            "hf": ["Hugging Face's own server, built in · http · read-only tools run without asking, the rest ask",
                   "8 tools (t lists them)"],
        }
        for name, phrases in expected.items():
            await select(pilot, screen, name)
            text = detail(screen)
            for phrase in phrases:
                assert phrase in text, (name, phrase, text)
        assert "Log:" not in detail(screen)  # the Hub's server logs nothing here
        await select(pilot, screen, "shell")
        assert detail(screen).count(".local/share/mlintern/mcp/shell.log") == 1  # in the error, not twice
        await pilot.press("escape")
        await wait_for(pilot, lambda: mcp_screen(app) is None, what="closed")
        assert app.focused is app.prompt


async def test_keys_ask_the_session_to_act_on_the_highlighted_server(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_screen(pilot, session, sent)
        assert screen.highlighted.name == "hf"  # highlighted in the status shown first, and kept
        await select(pilot, screen, "papers")
        sent.clear()
        await pilot.press("r")
        await pilot.press("e")  # ready: turned off
        await select(pilot, screen, "shell")
        await pilot.press("e")  # failed: turned off too
        await select(pilot, screen, "notes")
        await pilot.press("e")  # off: turned on
        await pilot.press("T")
        await wait_for(pilot, lambda: len(sent) == 5, what="five actions")
        assert actions(sent) == [("reconnect", "papers"), ("disable", "papers"), ("disable", "shell"),
                                 ("enable", "notes"), ("trust_project", "")]
        keys = str(screen.query_one(".mcp-keys").render())
        assert keys == "↑↓ select · r reconnect · e enable · T trust · esc close"

        # t and enter fold the highlighted server's tool list out and back
        await select(pilot, screen, "papers")
        assert "t tools" in str(screen.query_one(".mcp-keys").render())
        await pilot.press("t")
        assert "3 tools: search_papers · download_paper · read_paper" in detail(screen)
        await select(pilot, screen, "hf")
        assert "8 tools (t lists them)" in detail(screen)  # each server's list folds on its own
        await select(pilot, screen, "papers")
        assert "3 tools: search_papers" in detail(screen)
        await pilot.press("enter")
        assert "3 tools (t lists them)" in detail(screen)

        # nothing waits for trust: T says so and asks nothing
        session.emit(mcp_status(scratch="connecting", lint="connecting"))
        await wait_for(pilot, lambda: not screen.query_one("#mcp-trust").display, what="the trust line gone")
        sent.clear()
        await pilot.press("T")
        await pilot.pause()
        assert sent == []
        assert str(screen.query_one("#mcp-message").render()) == "✗ No project .mcp.json is waiting for your trust."
        assert "T trust" not in str(screen.query_one(".mcp-keys").render())
        await pilot.press("r")  # the next key clears the message
        await wait_for(pilot, lambda: not screen.query_one("#mcp-message").display, what="message cleared")


async def test_the_screen_follows_every_status_and_keeps_the_highlighted_server(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_screen(pilot, session, sent)
        await select(pilot, screen, "shell")
        await pilot.press("r")
        session.emit(mcp_status(shell="connecting"))
        await wait_for(pilot, lambda: "shell  … connecting…" in detail(screen), what="shell connecting")
        assert screen.highlighted.name == "shell"
        ready = mcp_status()
        ready.servers[2] = ready.servers[2].model_copy(update={"state": "ready", "error": None, "tools": ["bash", "ls"]})
        session.emit(ready)
        await wait_for(pilot, lambda: "shell  ✓ ready · 2 tools" in detail(screen), what="shell ready")
        assert "Failed" not in detail(screen) and screen.highlighted.name == "shell"
        assert next(r for r in rows(screen) if " shell " in r).startswith("✓ shell")
        assert screen.query_one("Vertical").border_subtitle.startswith("3 ready (13 tools)")
        # the project's servers trusted: the trust line goes, they connect
        session.emit(mcp_status(scratch="connecting", lint="connecting"))
        await wait_for(pilot, lambda: not screen.has_class("-untrusted"), what="the trust line gone")
        # a server gone from the config: the highlight moves to the first one
        gone = mcp_status()
        gone.servers = [s for s in gone.servers if s.name != "shell"]
        session.emit(gone)
        await wait_for(pilot, lambda: len(rows(screen)) == 6, what="six servers")
        assert screen.highlighted.name == "papers"


async def test_an_action_the_session_refuses_is_said_on_the_screen_and_the_turn_goes_on(
        llm_server, monkeypatch, tmp_path):
    """An ``error`` of kind "mcp" answers a key of /mcp, beside a turn that may be running: it is
    shown on the screen and kept in the conversation, and it does not end the turn."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_screen(pilot, session, sent)
        app.update_status(busy=True)  # as if a turn were running
        message = f"MCP: lint comes from {PROJECT_MCP}: trust that file first"
        session.emit(ErrorEvent(message=message, kind="mcp"))
        await wait_for(pilot, lambda: screen.has_class("-message"), what="the message")
        assert str(screen.query_one("#mcp-message").render()) == "✗ " + message
        assert any(message in n for n in notices(app))
        assert app.status_info.busy


async def test_the_palette_opens_the_screen(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await pilot.press("ctrl+p", *"/mcp")
        await palette_highlights(pilot, "/mcp")
        await pilot.press("enter")
        await wait_for(pilot, lambda: mcp_screen(app) is not None, what="the /mcp screen")
        await wait_for(pilot, lambda: ("status", "") in actions(sent), what="mcp_action status")
        assert app.prompt.text == ""


async def test_every_server_keeps_to_one_line_at_80_columns(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(80, 24)) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_screen(pilot, session, sent)
        width = screen.server_list.content_region.width
        assert width < 80 and all(len(r) <= width for r in rows(screen))
        assert next(r for r in rows(screen) if " github " in r).endswith("…")  # the command line cut
        assert len(str(screen.query_one(".mcp-keys").render())) <= width
        await pilot.resize_terminal(120, 36)
        await wait_for(pilot, lambda: screen.server_list.content_region.width > width, what="wider")
        await wait_for(pilot, lambda: any("npx -y @modelcontextprotocol/server-github" in r for r in rows(screen)),
                       what="rows drawn again at the new width")


# --------------------------------------------------------------------------- notices and /status

async def test_notices_trust_once_a_failure_once_per_change_and_the_hub_stays_quiet(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        assert mcp_notices(app) == []  # the Hub's server off: nothing to say
        session.emit(mcp_status())
        await wait_for(pilot, lambda: len(mcp_notices(app)) == 2, what="two notices")
        trust, failed = mcp_notices(app)
        assert trust == (f"⚠ {PROJECT_MCP} asks to run 2 MCP servers: scratch (uvx scratch-mcp --db ./scratch.db); "
                         "lint (node tools/lint-server.js). They run only once you trust the file: /mcp to review "
                         "them, then T.")
        assert failed == "✗ MCP server shell failed: McpError: Connection closed — /mcp for details"
        assert mcp_screen(app) is None  # nothing pops up while the user may be typing
        # the same states again (a /mcp status, another server's change): nothing new
        session.emit(mcp_status())
        session.emit(mcp_status(github="ready"))
        # shell tried again and failed again: said again; the Hub's server failing is not
        session.emit(mcp_status(shell="connecting"))
        session.emit(mcp_status())
        session.emit(mcp_status(hf="failed"))
        await wait_for(pilot, lambda: app._mcp_watch.status.servers[-1].state == "failed", what="the last status")
        await pilot.pause()
        assert mcp_notices(app) == [trust, failed, failed]
        assert not any("hf" in n.split() for n in mcp_notices(app))


async def test_status_counts_the_servers(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        session.emit(mcp_status())
        await wait_for(pilot, lambda: len(app._mcp_watch.status.servers) == 7, what="the status")
        lines = app.status_text().splitlines()
        assert (f"MCP: 2 ready (11 tools), 1 connecting, 1 failed, 2 untrusted, 1 disabled · {PROJECT_MCP} "
                "waits for your trust (/mcp, then T)") in lines
        session.emit(mcp_status(scratch="ready", lint="failed", github="ready"))
        await wait_for(pilot, lambda: app._mcp_watch.status.untrusted_project is None, what="trusted")
        assert "MCP: 4 ready (11 tools), 2 failed, 1 disabled" in app.status_text().splitlines()
        session.emit(McpStatus(servers=[]))
        await wait_for(pilot, lambda: not app._mcp_watch.status.servers, what="no servers")
        assert "MCP" not in app.status_text()


# --------------------------------------------------------------------------- a real server

async def test_a_real_server_is_turned_off_and_on_from_the_screen(llm_server, monkeypatch, tmp_path):
    from tests.fakes.mcp_server import notes_server

    config = Config(llm=LLMSettings(max_attempts=1), mcpServers={"mem": {"command": "in-memory", "approval": "auto"}})
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path, keep_mcp=False, config=config,
                                    mcp_in_memory={"mem": notes_server("mem")})
        await command(pilot, "/mcp")
        await wait_for(pilot, lambda: mcp_screen(app) is not None, what="the /mcp screen")
        screen = mcp_screen(app)

        def state(name: str) -> str | None:
            return next((s.state for s in screen.server_list.servers if s.name == name), None)

        await wait_for(pilot, lambda: state("mem") == "ready", what="mem ready")
        assert screen.highlighted.name == "mem" and "write_note" in screen.highlighted.tools
        await pilot.press("e")
        await wait_for(pilot, lambda: state("mem") == "disabled", what="mem off")
        assert "e turns it on" in detail(screen)
        await pilot.press("e")
        await wait_for(pilot, lambda: state("mem") == "ready", what="mem on again")
        assert actions(sent) == [("status", ""), ("disable", "mem"), ("enable", "mem")]
        assert "MCP: 1 ready" in app.status_text()


def test_the_app_starts_without_loading_the_mcp_screen():
    """The screen, its widgets and the notices' helper load with the first MCP status or /mcp,
    not before the first frame."""
    code = ("import sys, mlintern_tui.app; "
            "print([m for m in ('mlintern_tui.screens.mcp_screen', 'mlintern_tui.mcp_watch', 'widgets.mcp_servers', "
            "'widgets.mcp_detail') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
