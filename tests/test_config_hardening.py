"""Config that cannot be lost or hang the app (issue 19): writers take turns and start from the
file as it is now; a FIFO, /dev/zero, non-UTF-8 or absurdly deep file is a clear error."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from agent.config import ConfigError, edit_config, load_config


def _add_rules(path: str, name: str, count: int) -> None:
    for i in range(count):
        edit_config("a rule", lambda raw, i=i: raw.setdefault("rules", []).append(f"{name}-{i}"), Path(path))


def test_two_processes_saving_at_once_lose_nothing(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"model": "demo", "rules": ["deny rm"]}))
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_add_rules, args=(str(path), name, 25)) for name in ("a", "b", "c")]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    raw = json.loads(path.read_text())
    assert raw["model"] == "demo" and raw["rules"][0] == "deny rm"
    assert sorted(raw["rules"][1:]) == sorted(f"{n}-{i}" for n in "abc" for i in range(25))
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


@pytest.mark.parametrize("kind", ["fifo", "zero", "latin1", "deep", "directory"])
def test_a_config_that_is_not_a_small_utf8_json_file_is_a_clear_error(tmp_path, kind):
    path = tmp_path / "config.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "zero":
        path.symlink_to("/dev/zero")
    elif kind == "latin1":
        path.write_bytes('{"model": "caf\xe9"}'.encode("latin-1"))
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.mkdir()
    with pytest.raises(ConfigError) as err:
        load_config(path)
    words = {"fifo": "not a regular file", "zero": "not a regular file", "latin1": "not UTF-8",
             "deep": "nests too deeply", "directory": "not a regular file"}[kind]
    assert words in str(err.value)
    with pytest.raises(ConfigError):  # and nothing is written over it
        edit_config("x", lambda raw: raw.__setitem__("a", 1), path)


def test_headless_text_never_prints_escape_sequences(llm_server, mlintern_home):
    from agent.terminal_text import visible
    from tests.fakes import Call, Text, ToolCalls
    from tests.test_headless_cli import run, server_env

    hostile = "\x1b]52;c;cm0gLXJmIH4=\x07\x1b]0;pwned\x07\x1b[2Jdone\r\x9b31m"
    llm_server.script(ToolCalls([Call("e\x1b[2J1", "no_such_tool\x1b]0;x\x07", "{}")]), Text(hostile))
    proc = run(["-p", "hi", "-m", "openai/scripted-model"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    for stream in (proc.stdout, proc.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\x9b" not in stream and "\r" not in stream
    assert "␛]52;c;cm0gLXJmIH4=␇" in proc.stdout and proc.stdout.strip().endswith("done␍\ufffd31m")
    assert visible("a\tb\nc") == "a\tb\nc"
