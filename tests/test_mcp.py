"""MCP servers through fastmcp, for real: in-memory, stdio subprocesses and streamable HTTP on
loopback. Slow, killed, failing-at-start and colliding servers; the approval policy; the HF
token kept to the Hub's own endpoint; a project's .mcp.json waiting for trust."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agent.config import Config, LLMSettings
from agent.mcp.config import ProjectTrust, parse_entry, parse_servers
from agent.mcp.connection import flatten, headers_for
from agent.protocol import ExecApproval, McpAction, Shutdown, ToolDecision, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

REPO = Path(__file__).resolve().parent.parent


def stdio(mode: str, **extra) -> dict:
    return {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server", mode], "cwd": str(REPO), **extra}


def config_with(servers: dict, **kw) -> Config:
    return Config(llm=LLMSettings(max_attempts=1), mcpServers=servers, **kw)


async def until_servers(sub, want: dict[str, str], timeout: float = 30.0):
    """Wait for an mcp_status in which each named server has the wanted state."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        assert left > 0, f"servers never reached {want}"
        status = (await collect_until(sub, stop={"mcp_status"}, timeout=left))[-1]
        states = {s.name: s.state for s in status.servers}
        if all(states.get(k) == v for k, v in want.items()):
            return status


async def started(s):
    sub = s.subscribe("t")
    s.start()
    return sub


async def stop(s):
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)


# --------------------------------------------------------------------------- config


def test_entries_are_parsed_per_server_and_a_broken_one_says_why(monkeypatch):
    monkeypatch.setenv("NOTES_KEY", "k-123")
    entries = parse_servers({
        "notes": {"command": "python", "args": ["s.py"], "env": {"KEY": "${NOTES_KEY}"}, "timeout": 5, "approval": "auto",
                  "allow": ["add"]},
        "web": {"url": "https://example.test/mcp", "transport": "streamable-http", "headers": {"X-Team": "ml"}},
        "old": {"url": "https://example.test/sse", "type": "sse"},
        "missing": {"command": "x", "env": {"K": "${NOT_SET_ANYWHERE}"}},
        "both": {"command": "x", "url": "https://a.test/mcp"},
        "typo": {"comand": "x"},
        "slow": {"command": "x", "timeout": -1},
    }, "user", "config.json")
    by = {e.name: e for e in entries}
    assert by["notes"].env == {"KEY": "k-123"} and by["notes"].timeout_s == 5 and by["notes"].allow == ["add"]
    assert (by["web"].transport, by["web"].headers) == ("http", {"X-Team": "ml"}) and by["old"].transport == "sse"
    for name, words in (("missing", "NOT_SET_ANYWHERE"), ("both", "not both"), ("typo", "unknown key"),
                        ("slow", "positive")):
        assert by[name].error and words in by[name].error and not by[name].enabled, name
    assert by["notes"].error is None and by["web"].enabled
    assert parse_entry("a b", {"command": "x"}, "user").error  # names become tool prefixes


def test_the_hf_token_goes_only_to_the_hubs_own_mcp_endpoint():
    hub = "https://huggingface.co"
    own = parse_entry("hf", {"url": "https://huggingface.co/mcp"}, "user")
    assert headers_for(own, hub, "hf_secret") == {"Authorization": "Bearer hf_secret"}
    for url in ("https://evil.test/mcp", "https://huggingface.co.evil.test/mcp", "http://huggingface.co/mcp",
                "https://huggingface.co/other"):
        entry = parse_entry("x", {"url": url}, "user")
        assert "Authorization" not in headers_for(entry, hub, "hf_secret"), url
    mine = parse_entry("hf", {"url": "https://huggingface.co/mcp", "headers": {"authorization": "Bearer mine"}}, "user")
    assert headers_for(mine, hub, "hf_secret") == {"authorization": "Bearer mine"}  # never overwritten


def test_results_are_flattened_with_placeholders():
    from mcp.types import EmbeddedResource, ImageContent, TextContent, TextResourceContents

    class Result:
        content = [TextContent(type="text", text="hello"),
                   ImageContent(type="image", data="AAAA", mime_type="image/png"),
                   EmbeddedResource(type="resource", resource=TextResourceContents(uri="file:///a.txt", text="inside"))]
        structured_content = None
        is_error = False

    text, error = flatten(Result())
    assert text == "hello\n[image: image/png, 3 bytes]\n[resource file:///a.txt]\ninside" and not error


# --------------------------------------------------------------------------- in a session


async def test_a_stdio_server_s_tools_are_offered_and_called(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({"notes": stdio("notes", approval="auto")}))
    sub = await started(s)
    status = await until_servers(sub, {"notes": "ready"})
    notes = next(x for x in status.servers if x.name == "notes")
    hf = next(x for x in status.servers if x.name == "hf")
    assert hf.state == "disabled" and hf.origin == "default"  # tests turn the Hub's server off
    assert set(notes.tools) >= {"add", "read_note", "slow", "die"} and notes.transport == "stdio"
    assert "add" in s.router.names  # applied while idle
    spec = next(t for t in s.router.specs() if t["function"]["name"] == "add")
    assert spec["function"]["parameters"]["required"] == ["a", "b"] and "[MCP server notes]" in spec["function"]["description"]
    llm_server.script(ToolCalls([Call("m1", "add", '{"a": 2, "b": 3}'), Call("m2", "add", '{"a": "two"}'),
                                 Call("m3", "picture", "{}"), Call("m4", "fail", "{}")]), Text("Done."))
    s.submit(UserInput(text="add"))
    events = await collect_until(sub)
    outs = {e.tool_call_id: e for e in of_type(events, "tool_output")}
    assert outs["m1"].success and outs["m1"].output.strip() == "5"
    assert not outs["m2"].success and "NOT executed" in outs["m2"].output and "b: required" in outs["m2"].output
    assert "[image: image/png, 70 bytes]" in outs["m3"].output
    assert not outs["m4"].success and "the disk is on fire" in outs["m4"].output
    await stop(s)


async def test_a_slow_call_times_out_and_a_killed_server_restarts_on_the_next_call(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path,
                     config=config_with({"notes": stdio("notes", approval="auto", timeout=1)}))
    sub = await started(s)
    await until_servers(sub, {"notes": "ready"})
    llm_server.script(ToolCalls([Call("t1", "slow", '{"seconds": 5}')]), ToolCalls([Call("d1", "die", "{}")]),
                      ToolCalls([Call("a1", "add", '{"a": 1, "b": 1}')]), Text("ok"))
    s.submit(UserInput(text="go"))
    events = await collect_until(sub, timeout=60)
    outs = {e.tool_call_id: e for e in of_type(events, "tool_output")}
    assert not outs["t1"].success and "timed out after 1 s" in outs["t1"].output
    assert not outs["d1"].success and "stopped" in outs["d1"].output
    assert outs["a1"].success and outs["a1"].output.strip() == "2"  # started again for this call
    failed = [srv for st in of_type(events, "mcp_status") for srv in st.servers if srv.state == "failed"]
    assert failed and "about to die" in failed[0].error  # the tail of its stderr log
    await stop(s)


async def test_servers_that_fail_collide_or_claim_builtin_names(llm_server, monkeypatch, tmp_path):
    servers = {"notes": stdio("notes", approval="auto"), "shell": stdio("bash"), "broken": stdio("exit"),
               "nowhere": {"command": "/no/such/binary-mcp"}}
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with(servers))
    sub = await started(s)
    status = await until_servers(sub, {"notes": "ready", "shell": "ready", "broken": "failed", "nowhere": "failed"})
    by = {srv.name: srv for srv in status.servers}
    assert "missing API key for the widget service" in by["broken"].error  # its stderr, not our screen
    assert Path(by["broken"].log_path).read_text().startswith("fatal:")
    assert by["nowhere"].error
    assert by["shell"].tools == ["shell__bash", "shell__add"] and "notes__add" in by["notes"].tools
    assert s.router.get("bash").__class__.__name__ != "McpTool"  # the built-in keeps its name
    llm_server.script(ToolCalls([Call("b1", "shell__bash", '{"command": "ls"}'), Call("b2", "notes__add", '{"a": 1, "b": 2}')]),
                      Text("ok"))
    s.submit(UserInput(text="go"))
    first = await collect_until(sub)
    # shell has approval ask: a third-party server's tool needs the user
    approval = first[-1]
    assert approval.type == "approval_required"
    [item] = approval.items
    assert item.tool == "shell__bash" and "MCP server 'shell'" in item.reason
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="b1", approved=True)]))
    events = first + await collect_until(sub)
    outs = {e.tool_call_id: e.output.strip() for e in of_type(events, "tool_output")}
    assert outs == {"b1": "server bash: ls", "b2": "3"}
    await stop(s)


async def test_disable_enable_reconnect_change_the_tools_between_turns(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({"notes": stdio("notes", approval="auto")}))
    sub = await started(s)
    await until_servers(sub, {"notes": "ready"})
    s.submit(McpAction(action="disable", server="notes"))
    await until_servers(sub, {"notes": "disabled"})
    assert "add" not in s.router.names
    llm_server.script(ToolCalls([Call("x1", "add", '{"a": 1, "b": 1}')]), Text("gone"))
    s.submit(UserInput(text="add"))
    events = await collect_until(sub)
    assert "Unknown tool 'add'" in of_type(events, "tool_output")[0].output
    s.submit(McpAction(action="enable", server="notes"))
    await until_servers(sub, {"notes": "ready"})
    assert "add" in s.router.names
    s.submit(McpAction(action="reconnect", server="nope"))
    err = (await collect_until(sub, stop={"error"}))[-1]
    assert "no MCP server named 'nope'" in err.message
    await stop(s)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def http_mcp(tmp_path):
    port = free_port()
    headers = tmp_path / "headers.jsonl"
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.mcp_server", "notes", "--http", str(port),
                             "--headers", str(headers)], cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp", headers
    proc.terminate()
    proc.wait(10)


async def test_a_third_party_http_server_never_gets_the_hf_token(llm_server, monkeypatch, tmp_path, http_mcp):
    url, headers = http_mcp
    monkeypatch.setenv("HF_TOKEN", "hf_very_secret_token")
    monkeypatch.setenv("MLINTERN_MCP_DEFAULT", "1")  # the default Hub server is on (and fails: no Hub here)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    s = make_session(llm_server, monkeypatch, tmp_path,
                     config=config_with({"remote": {"url": url, "headers": {"X-Team": "ml"}}}))
    sub = await started(s)
    status = await until_servers(sub, {"remote": "ready", "hf": "failed"})
    by = {srv.name: srv for srv in status.servers}
    assert by["remote"].transport == "http" and "read_note" in by["remote"].tools and by["hf"].origin == "default"
    llm_server.script(ToolCalls([Call("r1", "read_note", '{"name": "todo"}')]), Text("read"))
    s.submit(UserInput(text="read"))
    events = await collect_until(sub)
    # read_note is a third-party server's tool: approval ask by default... in auto mode it asks too
    assert events[-1].type == "approval_required"
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="r1", approved=True)]))
    events = await collect_until(sub)
    assert of_type(events, "tool_output")[0].output.strip() == "buy GPUs"
    seen = [json.loads(line) for line in headers.read_text().splitlines()]
    assert seen and all(h.get("x-team") == "ml" for h in seen)
    assert not any("hf_very_secret_token" in json.dumps(h) for h in seen)
    await stop(s)


async def test_a_stdio_server_does_not_inherit_the_users_keys(llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_very_secret_token")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    s = make_session(llm_server, monkeypatch, tmp_path,
                     config=config_with({"notes": stdio("notes", approval="auto", env={"GIVEN": "yes"})}))
    sub = await started(s)
    await until_servers(sub, {"notes": "ready"})
    llm_server.script(ToolCalls([Call("e1", "env", '{"name": "HF_TOKEN"}'), Call("e2", "env", '{"name": "ANTHROPIC_API_KEY"}'),
                                 Call("e3", "env", '{"name": "GIVEN"}')]), Text("ok"))
    s.submit(UserInput(text="env"))
    outs = {e.tool_call_id: e.output.strip() for e in of_type(await collect_until(sub), "tool_output")}
    assert outs == {"e1": "<unset>", "e2": "<unset>", "e3": "yes"}
    await stop(s)


async def test_a_project_mcp_json_waits_for_trust(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({}))
    project = s.cwd / ".mcp.json"
    project.write_text(json.dumps({"mcpServers": {"proj": stdio("notes", approval="auto")}}))
    sub = await started(s)
    status = await until_servers(sub, {"proj": "untrusted"})
    assert status.untrusted_project == str(project) and "add" not in s.router.names
    s.submit(McpAction(action="trust_project"))
    await until_servers(sub, {"proj": "ready"})
    assert "add" in s.router.names and ProjectTrust(s.data_dir / "trusted_mcp.json").trusted(project)
    await stop(s)
    # the file changes (a pulled commit adds a server): asked again
    project.write_text(json.dumps({"mcpServers": {"proj": stdio("notes"), "more": stdio("bash")}}))
    assert not ProjectTrust(s.data_dir / "trusted_mcp.json").trusted(project)


async def test_in_memory_server_and_no_fastmcp_without_servers(llm_server, monkeypatch, tmp_path):
    from tests.fakes.mcp_server import notes_server

    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({"mem": {"command": "in-memory", "approval": "auto"}}),
                     mcp_in_memory={"mem": notes_server("mem")})
    sub = await started(s)
    status = await until_servers(sub, {"mem": "ready"})
    assert "write_note" in next(x for x in status.servers if x.name == "mem").tools
    await stop(s)
    probe = subprocess.run([sys.executable, "-c", (
        "import asyncio, sys\n"
        "from agent.session import Session\n"
        "from agent.config import Config\n"
        "async def main():\n"
        "    s = Session(Config(), model_id='demo')\n"
        "    s.start(); await asyncio.sleep(0.5); s.submit(__import__('agent.protocol').protocol.Shutdown())\n"
        "    await s._runner\n"
        "asyncio.run(main())\n"
        "print('fastmcp' in sys.modules)\n")], capture_output=True, text=True, cwd=tmp_path, timeout=60,
        env={**__import__('os').environ, "MLINTERN_HOME": str(tmp_path / "h")})
    assert probe.stdout.strip().splitlines()[-1] == "False", probe.stderr


async def test_the_hubs_own_server_gets_the_token_and_runs_read_only_tools_on_its_own(
        llm_server, monkeypatch, tmp_path, http_mcp):
    url, headers = http_mcp
    monkeypatch.setenv("HF_TOKEN", "hf_hub_token")
    monkeypatch.setenv("MLINTERN_MCP_DEFAULT", "1")
    monkeypatch.setenv("HF_ENDPOINT", url.rsplit("/mcp", 1)[0])  # the emulated Hub serves /mcp
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({}))
    sub = await started(s)
    await until_servers(sub, {"hf": "ready"})
    llm_server.script(ToolCalls([Call("h1", "read_note", '{"name": "todo"}'), Call("h2", "write_note", '{"name": "a", "text": "b"}')]),
                      Text("ok"))
    s.submit(UserInput(text="notes"))
    first = await collect_until(sub)
    [item] = first[-1].items  # only the tool not marked read-only asks
    assert item.tool == "write_note" and "not marked read-only" in item.reason
    assert of_type(first, "tool_output")[0].output.strip() == "buy GPUs"
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="h2", approved=False)]))
    await collect_until(sub)
    seen = [json.loads(line) for line in headers.read_text().splitlines()]
    assert seen and all(h.get("authorization") == "Bearer hf_hub_token" for h in seen)
    await stop(s)


def test_a_server_naming_an_unset_variable_does_not_break_the_config(mlintern_home, monkeypatch):
    from agent.config import load_config

    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    (mlintern_home / "config.json").write_text(json.dumps({
        "model": "demo", "mcpServers": {"x": {"command": "s", "env": {"K": "${NOT_SET_ANYWHERE}"}}}}))
    config = load_config()
    assert config.model == "demo"
    [entry] = parse_servers(config.mcp_servers, "user")
    assert "NOT_SET_ANYWHERE" in entry.error


async def test_esc_cancels_a_running_mcp_call_and_the_server_stays_usable(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path, config=config_with({"notes": stdio("notes", approval="auto")}))
    sub = await started(s)
    await until_servers(sub, {"notes": "ready"})
    llm_server.script(ToolCalls([Call("s1", "slow", '{"seconds": 30}')]))
    s.submit(UserInput(text="sleep"))
    await collect_until(sub, stop={"tool_call"})
    await asyncio.sleep(0.5)
    began = time.monotonic()
    s.interrupt()
    events = await collect_until(sub, stop={"interrupted", "turn_complete", "error"}, timeout=10)
    assert events[-1].type == "interrupted" and time.monotonic() - began < 5
    llm_server.script(ToolCalls([Call("a1", "add", '{"a": 4, "b": 4}')]), Text("ok"))
    s.submit(UserInput(text="add"))
    outs = of_type(await collect_until(sub, timeout=30), "tool_output")
    assert outs[-1].tool_call_id == "a1" and outs[-1].output.strip() == "8"
    await stop(s)
