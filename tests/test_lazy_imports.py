"""What the way to the first prompt loads (issue 17): the app boots its own session, a turn
streams from an OpenAI-compatible server (the scripted loopback model) and a tool runs, and
none of litellm, tiktoken, huggingface_hub, fastmcp or openai is imported. Run in a fresh
interpreter: this test process has imported them all for other tests.

Speed itself lives in bench/ (bench/startup.py, bench/peers.md); this guards the imports that
cost it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from agent.tools import lazy
from tests.fakes import Call, Text, ToolCalls

HEAVY = ("litellm", "tiktoken", "huggingface_hub", "fastmcp", "openai", "aiohttp")

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path

    from agent.config import Config
    from mlintern_tui.app import MLInternApp

    HEAVY = {heavy!r}

    def loaded():
        return sorted(name for name in HEAVY if name in sys.modules)

    def tool_modules():
        return sorted(name for name in sys.modules if name.startswith("agent.tools.")
                      and name not in ("agent.tools.base", "agent.tools.lazy", "agent.tools.router",
                                       "agent.tools.output"))

    report = {{}}

    class Probe(MLInternApp):
        def on_ready(self):  # Textual calls MLInternApp.on_ready too: the first frame is out
            report["at_first_frame"] = dict(
                heavy=loaded(), session_module="agent.session" in sys.modules, session=self.session is not None,
                ready=self.status_info.model_ready, label=self.status_info.model_label)
            if {early!r}:  # sent before the session is built: it waits for it, then goes
                self.prompt.text = {early!r}
                self.prompt.action_submit()

    async def main():
        app = Probe(model={model!r}, config=Config(), cwd=Path({cwd!r}))
        async with app.run_test(size=(120, 36)) as pilot:
            report["first_frame"] = loaded()
            # ours and httpx: the knowledge tools' HTTP layer, the router's catalog, the research
            # sub-agent, telemetry records, the shell parsers of deny rules, the safeguards of
            # protected files and the cards of approvals and resumed sessions wait for use
            report["first_frame_later"] = sorted(
                name for name in ("agent.net", "agent.llm.router_catalog", "httpx", "agent.research",
                                  "agent.telemetry", "agent.bash_deny", "agent.shell_words", "agent.protected",
                                  "widgets.approval_card", "widgets.away_card", "widgets.job_record")
                if name in sys.modules)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30
            while not (app.status_info.model_ready and app.session is not None):
                assert loop.time() < deadline, "the engine never said ready"
                await pilot.pause(0.05)
            report["ready"] = loaded()
            report["tools_at_ready"] = tool_modules()
            if {prompt!r}:
                if not {early!r}:
                    app.prompt.text = {prompt!r}
                    app.prompt.action_submit()
                await pilot.pause(0.2)
                while app.status_info.busy or app.session.busy:
                    assert loop.time() < deadline, "the turn never ended"
                    await pilot.pause(0.05)
                report["after_turn"] = loaded()
                report["tools_after_turn"] = tool_modules()
        print("REPORT " + json.dumps(report))

    asyncio.run(main())
""")


def run_app(tmp_path: Path, env_extra: dict[str, str], model: str, prompt: str, early: bool = False) -> dict:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "OPENAI_", "VLLM_"))}
    env.update(MLINTERN_HOME=str(tmp_path / "home"), MLINTERN_MCP_DEFAULT="0", HOME=str(tmp_path),
               HF_HOME=str(tmp_path / "hf"), **env_extra)
    code = SCRIPT.format(heavy=HEAVY, model=model, cwd=str(work), prompt=prompt, early=prompt if early else "")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    lines = [line for line in done.stdout.splitlines() if line.startswith("REPORT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-4000:]
    return json.loads(lines[-1][len("REPORT "):])


def test_an_openai_compatible_model_never_loads_litellm(llm_server, tmp_path):
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("lr 3e-4\n")
    # the tool schemas an earlier start left in the data directory (the first start writes them)
    lazy.forget_memo()
    lazy.cached_specs(tmp_path / "home" / "cache")
    llm_server.script(ToolCalls([Call("r1", "read", json.dumps({"path": "notes.txt"}))]), Text("The lr is 3e-4."))
    # the prompt is sent from the first frame, before the session is built: it waits for it
    report = run_app(tmp_path, {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test"},
                     "openai/scripted-model", "what is the lr?", early=True)
    assert report["first_frame"] == [] and report["ready"] == [] and report["after_turn"] == [], report
    assert report["first_frame_later"] == [], report
    # the first frame names the model, ready, and nothing of the session is built or imported yet
    assert report["at_first_frame"] == dict(heavy=[], session_module=False, session=False, ready=True,
                                            label="openai/scripted-model"), report
    # no tool module before the model calls a tool (but the experiment board's, built with the
    # session's run store); then the one it called (read: files.py)
    assert report["tools_at_ready"] == ["agent.tools.experiments"], report
    assert "agent.tools.files" in report["tools_after_turn"], report
    assert not {"agent.tools.github", "agent.tools.docs", "agent.tools.hub_repo", "agent.tools.jobs",
                "agent.tools.web"} & set(report["tools_after_turn"]), report
    # the turn really ran: the server got the read's result back
    assert len(llm_server.requests) == 2
    assert any("3e-4" in str(m.get("content")) for m in llm_server.requests[1]["messages"] if m["role"] == "tool")



def test_a_first_start_shows_the_model_loading_until_the_tool_schemas_are_built(llm_server, tmp_path):
    """No schema cache yet (a new install or version): building it imports every tool (~0.25 s),
    in a thread after the first frame, and the model is not called ready before. A prompt sent
    meanwhile still runs."""
    (tmp_path / "work").mkdir()
    lazy.forget_memo()
    llm_server.script(Text("Hello."))
    report = run_app(tmp_path, {"OPENAI_BASE_URL": llm_server.base_url, "OPENAI_API_KEY": "sk-test"},
                     "openai/scripted-model", "hi", early=True)
    assert report["at_first_frame"] == dict(heavy=[], session_module=False, session=False, ready=False,
                                            label="openai/scripted-model"), report
    assert report["after_turn"] == [] and len(llm_server.requests) == 1, report
    assert (tmp_path / "home" / "cache" / lazy.CACHE_FILE).exists()


PLUGIN_PROBE = textwrap.dedent("""
    import sys
    from pydantic.plugin import _loader

    def read_entry_points(**kwargs):
        sys.exit("pydantic read the entry points of every installed package")

    _loader.entry_points = read_entry_points
    if sys.argv[1] == "app":
        from mlintern_tui import heap

        heap.no_pydantic_plugins()
    from agent.config import Config

    Config(theme="mlintern-hf")  # the first model validated: pydantic looks for plugins now
    print("validated")
""")


FRESH_PLUGIN_PROBE = textwrap.dedent("""
    import sys
    from mlintern_tui import heap

    heap.no_pydantic_plugins()  # as the app does: before pydantic builds its first validator
    from agent.config import Config

    Config(theme="mlintern-hf")
    from pydantic import BaseModel

    class Late(BaseModel):  # a model defined later is validated the same way
        n: int

    assert Late(n="3").n == 3
    print("validated", "importlib.metadata" in sys.modules)
""")


def test_the_plugin_loader_and_importlib_metadata_are_not_imported(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    root = Path(__file__).resolve().parents[1]
    run = subprocess.run([sys.executable, "-c", FRESH_PLUGIN_PROBE], env=env, capture_output=True, text=True,
                         timeout=60, cwd=root)
    assert run.returncode == 0 and run.stdout.split() == ["validated", "False"], run.stderr[-2000:]


def test_our_models_are_validated_without_searching_for_pydantic_plugins(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PYDANTIC_DISABLE_PLUGINS"}
    root = Path(__file__).resolve().parents[1]
    ours = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, "app"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=root)
    assert ours.returncode == 0 and "validated" in ours.stdout, ours.stderr[-2000:]
    plain = subprocess.run([sys.executable, "-c", PLUGIN_PROBE, "plain"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=root)
    assert plain.returncode != 0 and "entry points" in plain.stderr  # what the app no longer pays for
