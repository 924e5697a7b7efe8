"""``mlintern export``: a saved session (text, tool calls, a failed tool, a research sub-agent, a
resumed second turn) as Claude Code JSONL, checked record by record against the format
reference (``claude-code-jsonl.md``), and as Markdown."""

from __future__ import annotations

import json
import re

from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import run, server_env
from tests.test_research import by_agent, research_call

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _session(llm_server, mlintern_home, tmp_path):
    work = tmp_path / "proj"
    work.mkdir()
    (work / "notes.md").write_text("lr 2e-5 worked\n")
    sub = ToolCalls([Call("r1", "read", json.dumps({"path": "notes.md"}))])
    llm_server.script(*[by_agent(
        main=[ToolCalls([Call("c1", "bash", json.dumps({"command": "echo hello-from-tool"})),
                         Call("c2", "read", json.dumps({"path": "missing.txt"}))], content="Checking two things."),
              ToolCalls([research_call("m1", "best SFT recipe")]),
              Text("All done: hello.")],
        research=[sub, Text("## Report\nUse lr 2e-5 (notes.md).")],
    )] * 5)
    first = run(["-p", "look around", "-m", "openai/scripted-model"], mlintern_home, server_env(llm_server), cwd=work)
    assert first.returncode == 0, first.stderr
    llm_server.script(Text("Second answer."))
    second = run(["-p", "and again", "-m", "openai/scripted-model", "--continue"], mlintern_home, server_env(llm_server),
                 cwd=work)
    assert second.returncode == 0, second.stderr
    return work


def test_claude_jsonl_and_markdown_exports(llm_server, mlintern_home, tmp_path):
    work = _session(llm_server, mlintern_home, tmp_path)
    out = tmp_path / "trace" / "session.jsonl"
    proc = run(["export", "--last", "-o", str(out)], mlintern_home, cwd=work)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    session_ids = {r["sessionId"] for r in records}
    assert len(session_ids) == 1
    # one chain: every parentUuid is the uuid of the record before it
    assert records[0]["parentUuid"] is None
    for before, record in zip(records, records[1:]):
        assert record["parentUuid"] == before["uuid"]
    for r in records:
        assert r["type"] in ("user", "assistant") and ISO.match(r["timestamp"]) and r["isSidechain"] is False
        assert r["cwd"] == str(work) and r["userType"] == "external"
    prompts = [r["message"]["content"] for r in records if r["type"] == "user" and isinstance(r["message"]["content"], str)]
    assert prompts == ["look around", "and again"]  # the resumed turn continues the same chain
    assistants = [r for r in records if r["type"] == "assistant"]
    for r in assistants:
        m = r["message"]
        assert m["role"] == "assistant" and m["model"] == "openai/scripted-model" and len(m["content"]) == 1
        assert m["id"].startswith("msg_") and {"input_tokens", "output_tokens"} <= set(m["usage"])
    first_response = [r for r in assistants if r["message"]["id"] == assistants[0]["message"]["id"]]
    assert [b["message"]["content"][0]["type"] for b in first_response] == ["text", "tool_use", "tool_use"]
    assert all(r["message"]["stop_reason"] == "tool_use" for r in first_response)
    # usage once per response: on its first record, zero on the others
    assert first_response[0]["message"]["usage"]["output_tokens"] > 0
    assert all(v == 0 for r in first_response[1:] for v in r["message"]["usage"].values())
    assert assistants[-1]["message"]["stop_reason"] == "end_turn"
    # tool results pair with their tool_use, and point at the record that holds it
    uses = {r["message"]["content"][0]["id"]: r["uuid"] for r in assistants if r["message"]["content"][0]["type"] == "tool_use"}
    results = [r for r in records if r["type"] == "user" and isinstance(r["message"]["content"], list)]
    by_id = {r["message"]["content"][0]["tool_use_id"]: r for r in results}
    assert set(by_id) == {"c1", "c2", "m1"} == set(uses)
    for call_id, r in by_id.items():
        block = r["message"]["content"][0]
        assert block["type"] == "tool_result" and r["sourceToolAssistantUUID"] == uses[call_id]
    assert "hello-from-tool" in by_id["c1"]["message"]["content"][0]["content"] and not by_id["c1"]["message"]["content"][0]["is_error"]
    assert by_id["c2"]["message"]["content"][0]["is_error"] is True  # the failed read
    # the research run is a sidechain file of its own, linked through its meta
    folder = out.with_suffix("") / "subagents"
    [side_file] = folder.glob("agent-*.jsonl")
    meta = json.loads(side_file.with_suffix(".meta.json").read_text())
    assert meta["toolUseId"] == "m1" and meta["agentType"] == "research"
    side = [json.loads(line) for line in side_file.read_text().splitlines()]
    assert side[0]["parentUuid"] is None and side[0]["message"]["content"] == "best SFT recipe"
    assert all(r["isSidechain"] and r["agentId"] == side_file.stem.removeprefix("agent-") for r in side)
    assert all(r["sessionId"] in session_ids for r in side)
    assert [r["message"]["content"][0]["type"] for r in side[1:] if r["type"] == "assistant"] == ["tool_use", "text"]
    assert "Use lr 2e-5" in side[-1]["message"]["content"][0]["text"]
    # the same session exported again is the same file
    again = run(["export", "--last"], mlintern_home, cwd=work)
    assert again.stdout == out.read_text()

    # as Markdown (one saved session serves both formats: each costs two headless runs)
    md = run(["export", "--last", "--format", "markdown"], mlintern_home, cwd=work)
    assert md.returncode == 0, md.stderr
    text = md.stdout
    assert text.startswith("# ") and "## Turn 1" in text and "## Turn 2" in text
    assert "**You:**\n\nlook around" in text and "All done: hello." in text and "(failed)" in text
    assert "research step: `read`" in text and "hello-from-tool" in text
    assert run(["export"], mlintern_home, cwd=work).returncode == 2
    missing = run(["export", "zzzz"], mlintern_home, cwd=work)
    assert missing.returncode == 1 and "zzzz" in missing.stderr
