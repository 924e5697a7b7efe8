"""The model picker end to end: a real session whose router is a loopback server serving a
catalog, /model asking it for real, a router model found by typing, shown with the catalog's
price, and enter switching to it (the status bar then names it)."""

from __future__ import annotations

import socket

from mlintern_tui.screens.model_picker import ModelPicker
from tests.engine_support import make_session
from tests.fakes import Text
from tests.test_router_catalog import CATALOG
from tests.test_tui_model_picker import type_filter
from tests.test_tui_snapshots import SIZE
from tests.tui_support import AppUnderTest, wait_for


def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


async def test_the_picker_lists_the_loopback_catalog_and_switches_to_a_router_model(llm_server, monkeypatch, tmp_path):
    llm_server.catalog = CATALOG
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ROUTER_BASE_URL", llm_server.base_url)
    dead = closed_port()
    for var in ("OLLAMA_BASE_URL", "VLLM_BASE_URL", "LMSTUDIO_BASE_URL", "LLAMACPP_BASE_URL"):
        monkeypatch.setenv(var, dead)
    llm_server.script(Text("pong"), Text("pong"), Text("pong"))  # the effort check of the switch
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = make_session(llm_server, monkeypatch, tmp_path, model_id="demo")
        app.attach_session(session)
        await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
        app.prompt.text = "/model"
        app.prompt.action_submit()
        # pushed is not yet composed: wait for its table too
        await wait_for(pilot, lambda: isinstance(app.screen, ModelPicker) and app.screen.query("ModelTable"), what="picker")
        screen = app.screen
        await wait_for(pilot, lambda: any("acme/Coder-9B" in line.plain for line in screen.table.rendered_lines()),
                       timeout=20, what="the router's models")
        await type_filter(pilot, screen, "coder 9b")
        shown = "\n".join(line.plain for line in screen.table.rendered_lines())
        assert "acme/Coder-9B" in shown and "$0.30 / $1.20" in shown  # the dearest live provider's price
        assert "acme/Chat-1B" not in shown
        await pilot.press("enter")
        await wait_for(pilot, lambda: not isinstance(app.screen, ModelPicker), what="picker closed")
        await wait_for(pilot, lambda: session.model.id == "acme/Coder-9B", timeout=20, what="the switch")
        await wait_for(pilot, lambda: app.status_info.model_label == "acme/Coder-9B", what="status bar")
        assert session.client.price_known(session.model)
    assert llm_server.catalog_requests >= 1
