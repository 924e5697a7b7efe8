"""The model picker on screen (``/model`` with no id) and the served model name in the status bar.

The app runs a real Session on the built-in demo model. The ops the app sends are recorded and
``ListModels`` and ``SetModel`` are kept from the session (answering them would ask local
ports and the router); the session's answers are published on its own bus (``session.emit``),
the path the engine's ``model_list`` events take to the bridge.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from agent.protocol import ListModels, ModelChoice, ModelList, SetModel, SettingsChanged
from mlintern_tui.screens.model_picker import ModelPicker
from tests.engine_support import make_session
from tests.test_tui_snapshots import QWEN_CODER, SIZE, model_list, ready
from tests.tui_support import AppUnderTest, feed, palette_highlights, press_at_once, record_ops, wait_for
from widgets.model_table import ModelTable, format_context, format_price, layout_for, middle_cut
from widgets.status import StatusBar, model_text

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers

async def start(pilot, app, llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, model_id="demo")
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session, record_ops(monkeypatch, session, held=(ListModels, SetModel))


def picker(app) -> ModelPicker | None:
    return app.screen if isinstance(app.screen, ModelPicker) else None


async def command(pilot, text: str) -> None:
    pilot.app.prompt.text = text
    pilot.app.prompt.action_submit()
    await pilot.pause()


async def open_picker(pilot, session, sent, models: ModelList | None = None) -> ModelPicker:
    """/model, the session asked once, then its answer shown."""
    app = pilot.app
    await command(pilot, "/model")
    await wait_for(pilot, lambda: picker(app) is not None, what="picker")
    await wait_for(pilot, lambda: any(isinstance(op, ListModels) for op in sent), what="list_models")
    screen = picker(app)
    session.emit(models or model_list())
    await wait_for(pilot, lambda: screen.table.loaded, what="the list shown")
    return screen


async def type_filter(pilot, screen: ModelPicker, text: str) -> None:
    """Type ``text`` at the filter's cursor (after what is there)."""
    before = screen.filter_text
    await press_at_once(pilot, *text)
    # the table filtered for all of it (Input.Changed is handled after the Input took the keys)
    await wait_for(pilot, lambda: screen.filter_text == before + text
                   and screen.table._words == tuple((before + text).lower().split()), what="filter typed")


def set_models(sent) -> list[str]:
    return [op.model for op in sent if isinstance(op, SetModel)]


# --------------------------------------------------------------------------- formatting

def test_prices_contexts_and_ids_read_short():
    assert [format_price(0.6, 2.5), format_price(0, 0), format_price(None, None), format_price(3, None),
            format_price(0.005, 0.01), format_price(15, 75)] == \
        ["$0.60 / $2.50", "free", "?", "$3.00 / ?", "$0.005 / $0.01", "$15.00 / $75.00"]
    assert [format_context(c) for c in (131_072, 1_000_000, 1_500_000, 512, None)] == ["131k", "1M", "1.5M", "512", "?"]
    assert middle_cut("Qwen/Qwen3-Coder-480B-A35B-Instruct", 20) == "Qwen/Qwen…B-Instruct"
    assert len(middle_cut("x" * 50, 20)) == 20 and middle_cut("short", 20) == "short"
    layout = layout_for(110)
    assert layout.id_width <= 46 and layout.detail_width >= 20


def test_the_served_name_is_cut_to_fit():
    assert model_text("llamacpp/smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 79) == \
        "llamacpp/smollm2 → SmolLM2-135M-Instruct.Q4_1.gguf"
    # 80 columns: the id whole, the served name's start
    assert model_text("llamacpp/smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 28) == "llamacpp/smollm2 → SmolLM2-…"
    long = model_text("Qwen/Qwen3-Coder-480B-A35B-Instruct", "qwen3-coder", 28)
    assert len(long) == 28 and long.endswith("Instruct → qwen3-coder")
    assert model_text("openai/gpt-5", None, 28) == "openai/gpt-5"
    assert model_text("openai/gpt-5", "openai/gpt-5", 28) == "openai/gpt-5"  # the same name says nothing new


# --------------------------------------------------------------------------- the picker

async def test_model_opens_the_picker_which_asks_the_session_and_shows_its_answer(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await command(pilot, "/model")
        await wait_for(pilot, lambda: picker(app) is not None, what="picker")
        await wait_for(pilot, lambda: sent, what="an op")
        assert [(type(op), op.refresh) for op in sent] == [(ListModels, False)]
        screen = picker(app)
        assert "Asking the session" in screen.table.rendered_lines()[1].plain
        session.emit(model_list(router="loading", router_note="asking the router…", local_pending=True,
                                local_note="asking local servers…"))
        await wait_for(pilot, lambda: screen.table.loaded, what="the first answer")
        status = str(screen.query_one("#model-status").render())
        assert "Router catalog: loading…" in status and "Local servers: asking…" in status
        # grouped: in use, recent, local, router; the current model highlighted
        keys = screen.table.keys
        assert keys[:5] == [QWEN_CODER, "anthropic/claude-sonnet-4-5", "openai/gpt-5", "vllm/Qwen/Qwen2.5-7B-Instruct",
                            "llamacpp/SmolLM2-135M-Instruct.Q4_1.gguf"]
        assert [line.title for line in screen.table.lines if not line.key] == \
            ["In use", "Recent", "Local servers", "Hugging Face router · 8"]
        assert screen.table.cursor_key == QWEN_CODER
        detail = str(screen.query_one("#model-detail").render())
        assert "dearest of 3 live providers (together)" in detail and "fireworks-ai ○ not live" in detail
        # the warning row is marked, and its warning is shown when it is highlighted
        rows = {line.plain.split()[0]: line.plain for line in screen.table.rendered_lines()[1:] if line.plain.strip()}
        assert rows["⚠"].startswith("⚠ google/gemma-3-27b-it")
        await type_filter(pilot, screen, "gemma")
        assert "⚠ No live provider of google/gemma-3-27b-it supports tool calls" in \
            str(screen.query_one("#model-detail").render())


async def test_typing_filters_by_every_word_of_the_id(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_picker(pilot, session, sent)
        await type_filter(pilot, screen, "QWEN instruct")
        assert screen.table.keys == [QWEN_CODER, "vllm/Qwen/Qwen2.5-7B-Instruct", "Qwen/Qwen2.5-72B-Instruct",
                                     "Qwen/Qwen3-235B-A22B-Instruct-2507"]
        await type_filter(pilot, screen, " 72b")
        assert screen.table.keys == ["Qwen/Qwen2.5-72B-Instruct"]
        assert screen.table.cursor_key == "Qwen/Qwen2.5-72B-Instruct"
        # a provider's name finds the models it serves, with its pinned row under them
        await press_at_once(pilot, *["backspace"] * len("QWEN instruct 72b"))
        await type_filter(pilot, screen, "kimi groq")
        assert screen.table.keys == ["moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2-Instruct:groq"]
        await type_filter(pilot, screen, "zz")
        assert screen.table.keys == [] and "No model matches “kimi groqzz”." in screen.table.rendered_lines()[1].plain


async def test_enter_switches_to_the_highlighted_model(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await open_picker(pilot, session, sent)
        await pilot.press("down", "down", "enter")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await wait_for(pilot, lambda: set_models(sent), what="set_model")
        assert set_models(sent) == ["openai/gpt-5"]
        assert app.focused is app.prompt


async def test_a_providers_row_switches_to_the_pinned_id(llm_server, monkeypatch, tmp_path):
    """→ on a router model lists its providers under it as ``id:provider`` with their own
    terms; enter on one pins it. ← folds them back, the cursor on the model."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_picker(pilot, session, sent)
        await type_filter(pilot, screen, "kimi")
        await pilot.press("right")
        assert screen.table.keys == ["moonshotai/Kimi-K2-Instruct", "moonshotai/Kimi-K2-Instruct:novita",
                                     "moonshotai/Kimi-K2-Instruct:groq"]
        assert screen.filter_text == "kimi"  # the arrow worked the list, not the filter text
        await pilot.press("down")
        novita = next(line.plain for line in screen.table.rendered_lines() if ":novita" in line.plain)
        assert "Kimi-K2-Instruct:novita" in novita and "$0.57 / $2.30" in novita and "● live" in novita
        assert "enter switches to moonshotai/Kimi-K2-Instruct:novita" in str(screen.query_one("#model-detail").render())
        await pilot.press("left")
        assert screen.table.keys == ["moonshotai/Kimi-K2-Instruct"]
        assert screen.table.cursor_key == "moonshotai/Kimi-K2-Instruct"
        await pilot.press("left")  # nothing left to fold: the arrow moves in the filter again
        await pilot.press("x")
        assert screen.filter_text == "kimxi"
        await pilot.press("backspace", "end", "tab", "down", "down", "enter")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await wait_for(pilot, lambda: set_models(sent), what="set_model")
        assert set_models(sent) == ["moonshotai/Kimi-K2-Instruct:groq"]


async def test_escape_closes_without_switching(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await open_picker(pilot, session, sent)
        await pilot.press("down", "escape")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await pilot.pause(0.1)
        assert set_models(sent) == [] and app.focused is app.prompt
        # enter on the model in use switches nothing either
        await open_picker(pilot, session, sent)
        await pilot.press("enter")
        await wait_for(pilot, lambda: picker(app) is None, what="picker closed")
        await pilot.pause(0.1)
        assert set_models(sent) == []


async def test_the_palette_opens_the_picker_too(llm_server, monkeypatch, tmp_path):
    """ctrl+p, /model: the picker, with the filter focused (no "/model " left in the prompt)."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await pilot.press("ctrl+p", *"/model")
        await palette_highlights(pilot, "/model")
        await pilot.press("enter")
        await wait_for(pilot, lambda: picker(app) is not None, what="picker")
        await wait_for(pilot, lambda: any(isinstance(op, ListModels) for op in sent), what="list_models")
        assert app.prompt.text == "" and picker(app).query_one("#model-filter").has_focus


async def test_a_later_answer_keeps_the_filter_and_the_highlighted_model(llm_server, monkeypatch, tmp_path):
    """The session answers again as the router and the local servers answer: the list and the
    status lines change, what was typed and highlighted stays."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        first = model_list(router="cached", router_note="kept from 3 h ago; the router did not answer: timed out",
                           local_pending=True, local_note="asking local servers…")
        screen = await open_picker(pilot, session, sent, first)
        assert "Router catalog: cached, kept from 3 h ago; the router did not answer: timed out" in \
            str(screen.query_one("#model-status").render())
        await type_filter(pilot, screen, "instruct")
        await pilot.press("down", "down")
        highlighted = screen.table.cursor_key
        assert highlighted == "llamacpp/SmolLM2-135M-Instruct.Q4_1.gguf"
        later = model_list()
        later.choices.insert(3, ModelChoice(id="ollama/qwen2.5-instruct", source="local", input_per_mtok=0,
                                            output_per_mtok=0, detail="ollama at http://localhost:11434/v1"))
        session.emit(later)
        await wait_for(pilot, lambda: "ollama/qwen2.5-instruct" in screen.table.keys, what="the second answer")
        assert screen.filter_text == "instruct"
        assert screen.table.cursor_key == highlighted
        assert all("instruct" in key.lower() for key in screen.table.keys)
        status = str(screen.query_one("#model-status").render())
        assert "Router catalog: live, fetched just now" in status and "vllm at http://127.0.0.1:8000/v1: 1 model" in status
        # ctrl+r asks the router again
        await pilot.press("ctrl+r")
        await wait_for(pilot, lambda: any(isinstance(op, ListModels) and op.refresh for op in sent), what="refresh")


async def test_enter_with_no_match_switches_to_the_id_as_typed(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_picker(pilot, session, sent)
        await type_filter(pilot, screen, "ollama/llama3.2")
        assert screen.table.keys == []
        assert "enter switches to ollama/llama3.2 as typed" in screen.table.rendered_lines()[1].plain
        await pilot.press("enter")
        await wait_for(pilot, lambda: set_models(sent), what="set_model")
        assert set_models(sent) == ["ollama/llama3.2"]


async def test_five_hundred_models_filter_per_key_without_rebuilding_the_screen(llm_server, monkeypatch, tmp_path):
    """The router's catalog is hundreds of models: a key typed narrows the list and draws one
    screenful, whatever the list's length."""
    choices = [ModelChoice(id=f"org{n % 37}/model-{n}-Instruct", source="router", input_per_mtok=0.1 * (n % 9),
                           output_per_mtok=0.2 * (n % 9), context=131_072, tools=n % 5 != 0,
                           detail=f"{n % 4} live providers") for n in range(500)]
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_picker(pilot, session, sent, ModelList(current="demo", choices=choices, router="live"))
        table = screen.query_one(ModelTable)
        assert len(table.keys) == 500 and len(table.rendered_lines()) < 40
        started = time.perf_counter()
        for text in ("o", "or", "org", "org1", "org12"):
            table.set_query(text)
            table.rendered_lines()
        assert time.perf_counter() - started < 0.5
        assert all(key.startswith("org12/") for key in table.keys)


# --------------------------------------------------------------------------- the status bar and start-up

async def test_the_status_bar_names_the_model_the_server_answers_as():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready(), SettingsChanged(model="llamacpp/smollm2", model_label="llamacpp/smollm2", effort=None,
                                                 yolo=False, yolo_cap_usd=None, context_window=8192, approval_mode="auto",
                                                 served_model="SmolLM2-135M-Instruct.Q4_1.gguf", quiet=True))
        await pilot.pause()
        bar = app.query_one(StatusBar)
        assert str(bar.render()).startswith("llamacpp/smollm2 → SmolLM2-135M-Instruct.Q4_1.gguf │")
        assert "its server answers as SmolLM2-135M-Instruct.Q4_1.gguf" in app.status_text()
        await feed(app, SettingsChanged(model="openai/gpt-5", model_label="openai/gpt-5", effort=None, yolo=False,
                                        yolo_cap_usd=None, context_window=400_000, approval_mode="auto", quiet=True))
        await pilot.pause()
        assert str(bar.render()).startswith("openai/gpt-5 │")  # a new model: no served name until it says one
        await pilot.resize_terminal(80, 24)
        await feed(app, SettingsChanged(model="llamacpp/smollm2", model_label="llamacpp/smollm2", effort=None,
                                        yolo=False, yolo_cap_usd=None, context_window=8192, approval_mode="auto",
                                        served_model="SmolLM2-135M-Instruct.Q4_1.gguf", quiet=True))
        await pilot.pause()
        assert str(bar.render()).startswith("llamacpp/smollm2 → SmolLM2-… │")


def test_the_app_starts_without_loading_the_picker():
    """The picker and its table load when /model opens them, not before the first frame."""
    code = ("import sys, mlintern_tui.app; "
            "print([m for m in ('mlintern_tui.screens.model_picker', 'widgets.model_table', 'widgets.model_detail') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
