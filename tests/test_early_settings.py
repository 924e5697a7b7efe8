"""The first frame's settings kept from the last start (issue 17): the app draws its first frame
without pydantic when the config file and everything it depends on are as they were, reads the
file for real just after, and that reading is what counts - a stale or forged record never
skips the broken-config dialog or the permission check, and never holds a secret."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from agent import config as config_module
from agent.config import (
    BUDGET_ENV,
    EARLY_FIELDS,
    Config,
    EarlySettings,
    config_path,
    data_dir,
    early_settings,
    load_config,
    remember_early_settings,
)
from agent.permissions import review_permissions
from agent.tools import lazy
from mlintern_tui import app as app_module
from mlintern_tui.screens.approval import GRACE_S
from mlintern_tui.screens.broken_config import BrokenConfigScreen
from mlintern_tui.screens.permission_change import PermissionChangeScreen
from tests.fakes import Text
from tests.tui_support import AppUnderTest, type_keys, wait_for
from widgets.conversation import Notice

SIZE = (120, 36)
ROOT = Path(__file__).resolve().parents[1]


def write_config(values: dict) -> None:
    config_path().write_text(json.dumps(values))


def early_file() -> Path:
    return data_dir() / "cache" / config_module.EARLY_FILE


def forge(settings: dict) -> None:
    """A record that matches the file as it is now but holds other settings (stale, or written
    by someone else): what the app does with it must not depend on its being right."""
    path = config_path()
    text = path.read_text() if path.exists() else None
    record = {"key": config_module._early_key(path, text), "settings": settings}
    early_file().parent.mkdir(parents=True, exist_ok=True)
    early_file().write_text(json.dumps(record))


def settings(**changes) -> dict:
    values = config_module._early_values(Config())
    values.update(changes)
    return values


# ------------------------------------------------------------------ the record


def test_a_record_is_used_only_while_the_file_and_what_it_refers_to_are_unchanged(monkeypatch):
    monkeypatch.setenv("MY_MODEL", "openai/one")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    write_config({"model": "${MY_MODEL}", "theme": "mlintern-light", "approval_mode": "ask"})
    assert early_settings() is None  # nothing kept yet: the app reads the file before its first frame
    assert remember_early_settings(load_config())
    early = early_settings()
    assert isinstance(early, EarlySettings)
    assert (early.model, early.theme, early.approval_mode, early.llm.transport) == ("openai/one", "mlintern-light",
                                                                                   "ask", "auto")

    monkeypatch.setenv("UNRELATED", "x")  # a variable the file does not name changes nothing
    assert early_settings() is not None
    monkeypatch.setenv("MY_MODEL", "openai/two")  # one it names does
    assert early_settings() is None
    monkeypatch.setenv("MY_MODEL", "openai/one")
    assert early_settings() is not None
    monkeypatch.setenv(BUDGET_ENV, "2.5")  # --budget
    assert early_settings() is None
    monkeypatch.delenv(BUDGET_ENV)
    assert early_settings() is not None
    write_config({"model": "${MY_MODEL}", "theme": "mlintern-light", "approval_mode": "auto"})
    assert early_settings() is None


def test_a_change_to_the_permission_record_or_the_package_makes_it_miss(monkeypatch):
    write_config({"approval_mode": "ask"})
    config = load_config()
    review_permissions(config)  # the first start writes the permission record
    remember_early_settings(config)
    assert early_settings() is not None
    record = data_dir() / "permissions.json"
    os.utime(record, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    assert early_settings() is None
    remember_early_settings(config)
    assert early_settings() is not None
    # an edited or upgraded package (the schema, its validators, the protocol) or another pydantic
    before = lazy.fingerprint_once()
    monkeypatch.setattr(lazy, "_fingerprint", "another version of the agent package")
    assert early_settings() is None
    monkeypatch.setattr(lazy, "_fingerprint", before)
    assert early_settings() is not None


@pytest.mark.parametrize("bad", [
    {"approval_mode": "root"}, {"yolo_cap_usd": "5"}, {"yolo_cap_usd": True}, {"cursor_blink": 1},
    {"theme": 3}, {"llm_transport": "carrier pigeon"},
])
def test_a_malformed_record_is_not_used(bad):
    write_config({})
    forge(settings(**bad))
    assert early_settings() is None
    forge({k: v for k, v in settings().items() if k != "frame_pacing"})
    assert early_settings() is None
    early_file().write_text("{not json")
    assert early_settings() is None
    forge(settings())
    assert early_settings() is not None


def test_the_record_holds_only_the_first_frames_settings_and_only_the_user_reads_it(monkeypatch):
    monkeypatch.setenv("SLACK_HOOK", "https://hooks.example/T000/B000/very-secret")
    monkeypatch.setenv("MY_KEY", "sk-very-secret")
    write_config({"messaging": {"destinations": {"team": {"webhook_url": "${SLACK_HOOK}"}}},
                  "pass_env": ["MY_KEY"], "endpoints": {"hub": "https://hub.example"}})
    assert remember_early_settings(load_config())
    text = early_file().read_text()
    assert "very-secret" not in text and "hub.example" not in text
    assert set(json.loads(text)["settings"]) == set(EARLY_FIELDS)
    assert stat.S_IMODE(early_file().stat().st_mode) == 0o600


def test_early_settings_refuse_any_other_setting():
    write_config({})
    remember_early_settings(load_config())
    early = early_settings()
    with pytest.raises(AttributeError, match="'pass_env' is not known before the config file is read"):
        early.pass_env  # noqa: B018
    with pytest.raises(AttributeError):
        early.hf_router  # noqa: B018 - kept for router_base, read as endpoints["hf_router"]


def test_an_unreadable_or_missing_cache_dir_only_costs_the_early_frame(monkeypatch, tmp_path):
    write_config({})
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("MLINTERN_HOME", str(blocker))  # the data dir is a file: nothing can be kept there
    monkeypatch.setenv("MLINTERN_CONFIG", str(tmp_path / "config.json"))
    (tmp_path / "config.json").write_text("{}")
    assert remember_early_settings(load_config()) is False
    assert early_settings() is None


# ------------------------------------------------------------------ the app


def notices(app) -> str:
    return "\n".join(str(n.render()) for n in app.query(Notice))


async def test_a_forged_record_never_skips_the_permission_check(mlintern_home):
    write_config({"approval_mode": "ask"})
    review_permissions(load_config())  # what the user agreed to at an earlier start
    write_config({"approval_mode": "yolo", "yolo_cap_usd": 1000})  # widened outside the app
    forge(settings(approval_mode="yolo", yolo_cap_usd=1000))  # and a record that says all is well
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    assert app.config_pending  # the first frame is drawn from the record...
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, PermissionChangeScreen),
                       what="the permission-change screen")
        # ...but the file is read and compared with what the user agreed to before anything starts
        assert app.session is None and app.config.approval_mode == "ask" and app.status_info.mode == "ask"
        await pilot.pause(GRACE_S + 0.1)
        await pilot.press("k")
        await wait_for(pilot, lambda: app.session is not None, what="the session, on what the user agreed to")
        assert app.session.policy.mode == "ask"


async def test_a_record_for_a_file_that_no_longer_validates_still_opens_the_broken_config_dialog(mlintern_home):
    write_config({"approval_mode": "sometimes"})  # invalid, and a record forged to match it
    forge(settings())
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    assert app.config_pending
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrokenConfigScreen), what="the broken-config screen")
        assert app.session is None and not app.status_info.model_ready
        await pilot.pause(0.3)
        assert app.session is None  # nothing started on the record's settings


async def test_settings_the_file_gives_differently_from_the_record_win(mlintern_home):
    write_config({"theme": "mlintern-light", "approval_mode": "ask", "cursor_blink": False, "frame_pacing": False})
    review_permissions(load_config())
    forge(settings(theme="mlintern-hf", approval_mode="auto", frame_pacing=True))
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    assert app.config_pending
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.session is not None, what="the session")
        assert app.theme == "mlintern-light" and app.status_info.mode == "ask"
        assert app.screen_stack[0].paced is False and app.prompt.cursor_blink is False
    # the session's start keeps what it ran with for the next one
    assert early_settings().theme == "mlintern-light"


async def test_no_record_is_kept_while_the_file_is_broken_and_skipped(mlintern_home):
    write_config({"approval_mode": "sometimes"})
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, BrokenConfigScreen), what="the broken-config screen")
        await pilot.press("s")  # start without it, on defaults for this run
        await wait_for(pilot, lambda: app.session is not None, what="the session on defaults")
    assert not early_file().exists()


@pytest.fixture
def slow_read(monkeypatch):
    """The file read after the first frame takes half a second (a slow disk, a loaded machine):
    long enough to type into the prompt meanwhile."""
    read = app_module._config_or_error

    def slowly():
        time.sleep(0.5)
        return read()

    monkeypatch.setattr(app_module, "_config_or_error", slowly)


async def type_through(pilot, text: str, dialog: type, keys_after: int = 15) -> str:
    """Type ``text`` (over again if need be) as a terminal delivers it, from the first frame on,
    until the dialog has opened and ``keys_after`` more keys came (1.2 s, three times its grace
    period), however long a loaded machine takes to open it. Returns what was typed."""
    typed = ""
    after = 0
    while after < keys_after:
        assert len(typed) < 400, "the dialog never opened"
        char = text[len(typed) % len(text)]
        await type_keys(pilot, char, gap=0.08)
        typed += char
        if isinstance(pilot.app.screen, dialog):
            after += 1
        elif after:
            break  # it opened, and a typed key closed it: the caller's check says so
    return typed


async def test_keys_typed_for_the_prompt_do_not_answer_the_permission_question(mlintern_home, slow_read):
    write_config({"approval_mode": "ask"})
    review_permissions(load_config())
    write_config({"approval_mode": "yolo", "yolo_cap_usd": 1000})
    forge(settings(approval_mode="yolo", yolo_cap_usd=1000))
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        # typing from the first frame on; the question opens mid-word (~0.5 s in), and the "a"s
        # and "k"s that follow go on for well over its grace period
        sent = await type_through(pilot, "take a look, ask, keep a backup ", PermissionChangeScreen)
        assert isinstance(app.screen, PermissionChangeScreen), "the typing answered the question"
        assert app.session is None and app.config.approval_mode == "ask"
        await pilot.pause(GRACE_S + 0.1)  # the user stops, reads, answers
        await pilot.press("k")
        await wait_for(pilot, lambda: app.session is not None, what="the session, on what the user agreed to")
        assert app.session.policy.mode == "ask"
        typed = app.prompt.text  # what came before the question stayed the prompt's
        assert typed and sent.startswith(typed), typed


async def test_keys_typed_for_the_prompt_do_not_answer_the_broken_config_dialog(mlintern_home, slow_read):
    write_config({"approval_mode": "sometimes"})
    forge(settings())
    written = config_path().read_text()
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await type_through(pilot, "this is it: sort, then rerun, quit, edit ", BrokenConfigScreen)
        assert isinstance(app.screen, BrokenConfigScreen), "the typing answered the dialog"
        assert app.session is None  # no "s" started it on defaults, no "q" quit
        await pilot.pause(0.5)
        await pilot.press("s")  # after a pause, a key is an answer
        await wait_for(pilot, lambda: app.session is not None, what="the session on defaults")
    assert config_path().read_text() == written


async def test_a_theme_picked_before_the_file_is_read_is_kept_and_saved_after(mlintern_home, slow_read):
    write_config({"theme": "mlintern-light"})
    review_permissions(load_config())
    forge(settings(theme="mlintern-light"))
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        assert app.config_pending
        app.theme = "mlintern-hf"  # the palette's theme picker, while the file is being read
        assert json.loads(config_path().read_text()) == {"theme": "mlintern-light"}  # not yet
        await wait_for(pilot, lambda: app.session is not None, what="the session")
        assert app.theme == "mlintern-hf" and app.config.theme == "mlintern-hf"
    assert json.loads(config_path().read_text()) == {"theme": "mlintern-hf"}


async def test_a_theme_picked_while_a_broken_file_is_read_is_not_written_into_it(mlintern_home, slow_read):
    write_config({"theme": "mlintern-light", "approval_mode": "sometimes"})
    forge(settings(theme="mlintern-light"))
    written = config_path().read_text()
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        app.theme = "mlintern-hf"
        await wait_for(pilot, lambda: isinstance(app.screen, BrokenConfigScreen), what="the broken-config screen")
        assert app.theme == "mlintern-hf"
    assert config_path().read_text() == written


async def test_a_failure_reading_the_settings_is_said_and_nothing_starts(mlintern_home, monkeypatch):
    write_config({})
    forge(settings())

    def broken_install(path=None):
        raise RuntimeError("pydantic_core could not be imported")

    monkeypatch.setattr(app_module, "load_config", broken_install)
    app = AppUnderTest(config=None, start_engine=True, model="demo")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "reading the settings failed" in notices(app), what="the error notice")
        assert "RuntimeError: pydantic_core could not be imported" in notices(app)
        assert app.status_info.model_label == "no model" and not app.status_info.model_ready
        await pilot.pause(0.3)
        assert app.session is None


# ------------------------------------------------------------------ a real start, fresh interpreter

PROBE = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path

    from mlintern_tui.app import MLInternApp

    report = {}

    class Probe(MLInternApp):
        def on_ready(self):
            report["first_frame"] = dict(pydantic="pydantic" in sys.modules, protocol="agent.protocol" in sys.modules,
                                         pending=self.config_pending, label=self.status_info.model_label,
                                         ready=self.status_info.model_ready, theme=self.theme)
            self.prompt.text = "hi"  # sent at once: it waits for the file, the check and the session
            self.prompt.action_submit()

    async def main():
        app = Probe(model="openai/scripted-model", cwd=Path.cwd())
        async with app.run_test(size=(120, 36)) as pilot:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            await pilot.pause(0.2)
            while app.session is None or app.queued or app.status_info.busy or app.session.busy:
                assert loop.time() < deadline, "the turn never ended"
                await pilot.pause(0.05)
            report["after"] = dict(config=type(app.config).__name__, theme=app.theme)
        print("REPORT " + json.dumps(report))

    asyncio.run(main())
""")


def start(tmp_path: Path, llm_server) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_", "VLLM_"))}
    env.update(MLINTERN_HOME=str(tmp_path / "home"), MLINTERN_MCP_DEFAULT="0", MLINTERN_MODEL_TITLES="0",
               HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"), OPENAI_BASE_URL=llm_server.base_url,
               OPENAI_API_KEY="sk-test")
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("REPORT "):])


def test_an_unchanged_file_draws_the_first_frame_without_pydantic(llm_server, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"theme": "mlintern-light"}))
    lazy.forget_memo()
    lazy.cached_specs(home / "cache")  # the tool schemas an earlier start left
    llm_server.script(Text("one"), Text("two"))
    first = start(tmp_path, llm_server)
    # no record yet: the file is read through its schema before the first frame, as always
    assert first["first_frame"]["pydantic"] and not first["first_frame"]["pending"], first
    assert first["first_frame"]["theme"] == "mlintern-light" and first["after"]["config"] == "Config", first
    second = start(tmp_path, llm_server)
    assert second["first_frame"] == dict(pydantic=False, protocol=False, pending=True, label="openai/scripted-model",
                                         ready=True, theme="mlintern-light"), second
    assert second["after"] == dict(config="Config", theme="mlintern-light"), second
    assert len(llm_server.requests) == 2  # the prompt sent at the first frame ran, both times
