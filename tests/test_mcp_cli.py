"""``mlintern mcp list|add|remove|trust`` and headless ``--mcp-config``, run as the user runs them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import run, server_env

REPO = Path(__file__).resolve().parent.parent


def test_add_list_remove_edit_the_config_and_keep_the_rest(mlintern_home, tmp_path):
    config = mlintern_home / "config.json"
    config.write_text(json.dumps({"model": "demo", "mcpServers": {"old": {"command": "old-server"}}}))
    added = run(["mcp", "add", "notes", "--env", "KEY=${NOTES_KEY}", "--timeout", "5", "--", "python", "-m", "notes_mcp"],
                mlintern_home)
    assert added.returncode == 0, added.stderr
    assert "Added MCP server 'notes'" in added.stdout
    remote = run(["mcp", "add", "web", "--url", "https://tools.example/mcp", "--header", "X-Team: ml", "--approval", "auto"],
                 mlintern_home)
    assert remote.returncode == 0, remote.stderr
    raw = json.loads(config.read_text())
    assert raw["model"] == "demo" and set(raw["mcpServers"]) == {"old", "notes", "web"}
    assert raw["mcpServers"]["notes"] == {"command": "python", "args": ["-m", "notes_mcp"], "env": {"KEY": "${NOTES_KEY}"},
                                          "timeout": 5.0}
    assert raw["mcpServers"]["web"] == {"url": "https://tools.example/mcp", "headers": {"X-Team": "ml"}, "approval": "auto"}
    listed = run(["mcp", "list"], mlintern_home, {"NOTES_KEY": "k"})
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert any(line.startswith("notes") and "python -m notes_mcp" in line for line in lines)
    assert any(line.startswith("web") and "runs without asking" in line for line in lines)
    assert any(line.startswith("hf") and "off" in line for line in lines)  # no token here
    unset = run(["mcp", "list"], mlintern_home)  # ${NOTES_KEY} unset: that server is broken, said so
    assert "NOTES_KEY" in unset.stdout and unset.returncode == 0
    gone = run(["mcp", "remove", "old"], mlintern_home)
    assert gone.returncode == 0 and "old" not in json.loads(config.read_text())["mcpServers"]
    missing = run(["mcp", "remove", "old"], mlintern_home)
    assert missing.returncode == 1 and "no server named 'old'" in missing.stderr


def test_add_refuses_what_cannot_work(mlintern_home):
    for args, words in ((["mcp", "add", "x"], "give the server's command"),
                        (["mcp", "add", "x", "--url", "ftp://a"], "http(s) URL"),
                        (["mcp", "add", "x", "--url", "https://a/mcp", "--env", "A=1"], "--env and --cwd are for stdio"),
                        (["mcp", "add", "x y", "--", "cmd"], "name"),
                        (["mcp", "add", "x", "--header", "nocolon", "--url", "https://a/mcp"], "NAME:VALUE")):
        proc = run(args, mlintern_home)
        assert proc.returncode == 2 and words in proc.stderr, (args, proc.stderr)
    assert not (mlintern_home / "config.json").exists()  # nothing half-written


def test_project_servers_are_added_listed_untrusted_then_trusted(mlintern_home, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    added = run(["mcp", "add", "local", "--project", "--", "node", "server.js"], mlintern_home, cwd=project)
    assert added.returncode == 0, added.stderr
    assert json.loads((project / ".mcp.json").read_text()) == {"mcpServers": {"local": {"command": "node", "args": ["server.js"]}}}
    listed = run(["mcp", "list"], mlintern_home, cwd=project)
    assert "not trusted yet" in listed.stdout and "project" in listed.stdout
    trusted = run(["mcp", "trust"], mlintern_home, cwd=project)
    assert trusted.returncode == 0 and "local: node server.js" in trusted.stdout
    assert "not trusted" not in run(["mcp", "list"], mlintern_home, cwd=project).stdout


def test_headless_mcp_config_adds_servers_for_one_run_and_waits_for_them(llm_server, mlintern_home, tmp_path):
    servers = tmp_path / "servers.json"
    servers.write_text(json.dumps({"mcpServers": {
        "notes": {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server", "notes"], "cwd": str(REPO),
                  "approval": "auto"},
        "broken": {"command": sys.executable, "args": ["-m", "tests.fakes.mcp_server", "exit"], "cwd": str(REPO)},
    }}))
    llm_server.script(ToolCalls([Call("a1", "add", '{"a": 20, "b": 22}')]), Text("The answer is 42."))
    proc = run(["-p", "add", "-m", "openai/scripted-model", "--mcp-config", str(servers)], mlintern_home,
               server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    assert "The answer is 42." in proc.stdout
    assert "MCP: notes ready (" in proc.stderr and "MCP: broken failed" in proc.stderr
    assert "missing API key for the widget service" in proc.stderr
    first = llm_server.requests[0]
    assert "add" in {t["function"]["name"] for t in first["tools"]}  # there before the first model call
    missing = run(["-p", "x", "-m", "demo", "--mcp-config", str(tmp_path / "nope.json")], mlintern_home)
    assert missing.returncode == 2 and "nope.json" in missing.stderr
