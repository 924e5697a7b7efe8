"""Shared traces: the redaction corpus (every key kind in tool outputs, arguments and file
contents: zero leaks in the uploaded bytes), the preview before the first upload, uploads to
the Hub emulator (path, card, private on creation, visibility change, only when changed) and a
failed upload retried at the next start."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.config import Config, LLMSettings
from agent.redaction import Redactor, leaked
from agent.protocol import ShareTraces, Shutdown, TraceConsent, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

# every kind of secret the redactor knows (made-up values of the right shapes)
CORPUS = {
    "hf": "hf_" + "aB3dE5fG7hI9jK1lM3nO5pQ7rS9tU1vW3x",
    "openai": "sk-proj-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34",
    "anthropic": "sk-ant-api03-" + "Zy98Xw76Vu54Ts32Rq10Po98",
    "github": "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
    "github_pat": "github_pat_" + "11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
    "slack": "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOp",
    "aws_id": "AKIA" + "IOSFODNN7EXAMPLE",
    "aws_secret": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "bearer": "eyJhbGciOiJIUzI1NiJ9.payload.signature123",
    "assigned": "p4ssw0rd-very-secret",
    "own": "my-own-wandb-value-1234",
}
FILE_TEXT = (f"HF_TOKEN={CORPUS['hf']}\nOPENAI_API_KEY={CORPUS['openai']}\nkey: {CORPUS['anthropic']}\n"
             f"gh {CORPUS['github']} {CORPUS['github_pat']}\nslack {CORPUS['slack']}\n"
             f"aws_access_key_id = {CORPUS['aws_id']}\naws_secret_access_key = {CORPUS['aws_secret']}\n"
             f"Authorization: Bearer {CORPUS['bearer']}\nDB_PASSWORD={CORPUS['assigned']}\n"
             f"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n")


def test_the_redactor_finds_every_kind_and_leaves_placeholders():
    r = Redactor({CORPUS["own"]: "WANDB_API_KEY"}, patterns=[r"project-x-\d+"], home="/home/ada")
    text = FILE_TEXT + f"wandb {CORPUS['own']} in /home/ada/work, codename project-x-42\nAPI_KEY=${{OPENAI_API_KEY}}\n"
    out = r.redact(text)
    assert leaked(out, list(CORPUS.values())) == []
    assert "MIIEowIBAAKCAQEA" not in out and "project-x-42" not in out and "/home/ada" not in out and "~/work" in out
    assert "API_KEY=${OPENAI_API_KEY}" in out  # a placeholder is not a secret
    kinds = {s.kind for s in r.find(text)}
    assert {"Hugging Face token", "OpenAI key", "Anthropic key", "GitHub token", "Slack token", "AWS access key",
            "AWS secret key", "bearer token", "secret assignment", "private key", "your WANDB_API_KEY",
            "your pattern", "home directory"} <= kinds


def sharing_config(**kw) -> Config:
    return Config(llm=LLMSettings(max_attempts=1), share_traces="private", heartbeat_s=3600, **kw)


async def _run_turn(s, sub, llm_server, work):
    (work / "creds.env").write_text(FILE_TEXT)
    llm_server.script(
        ToolCalls([Call("c1", "read", json.dumps({"path": "creds.env"})),
                   Call("c2", "bash", json.dumps({"command": f"echo token {CORPUS['hf']} and {CORPUS['own']}"}))]),
        Text(f"I saw {CORPUS['openai']} in the file."))
    s.submit(UserInput(text=f"check creds, my key is {CORPUS['github']}"))
    return await collect_until(sub)


@pytest.fixture
def hub_token(hub, monkeypatch):
    from tests.fakes.hub_server import DEFAULT_TOKEN

    monkeypatch.setenv("HF_TOKEN", DEFAULT_TOKEN)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("WANDB_API_KEY", CORPUS["own"])
    return hub


async def until(sub, kind: str, timeout: float = 30):
    return (await collect_until(sub, stop={kind}, timeout=timeout))[-1]


async def test_nothing_leaves_before_the_preview_is_accepted_and_nothing_secret_after(
        hub_token, llm_server, monkeypatch, tmp_path):
    hub = hub_token
    s = make_session(llm_server, monkeypatch, tmp_path, config=sharing_config())
    sub = s.subscribe("t")
    s.start()
    await _run_turn(s, sub, llm_server, s.cwd)
    s.submit(ShareTraces(visibility="private"))  # uploads soon: first the preview
    preview = await until(sub, "trace_preview")
    assert preview.records > 4 and preview.files[0].startswith("sessions/") and preview.files[0].endswith(f"{s.id}.jsonl")
    kinds = {f.kind for f in preview.findings}
    assert {"Hugging Face token", "OpenAI key", "GitHub token", "your WANDB_API_KEY", "private key"} <= kinds
    assert all(CORPUS["hf"] not in f.context for f in preview.findings)  # the preview shortens them too
    assert not hub.repo_exists("ada/mlintern-sessions", "dataset")  # nothing uploaded yet
    s.submit(TraceConsent(mask=[r"check creds"]))  # mask more: a new preview
    again = await until(sub, "trace_preview")
    assert "your pattern" in {f.kind for f in again.findings}
    s.submit(TraceConsent(accept=True))
    status = None
    while status is None or status.url is None:
        status = await until(sub, "trace_status")
        assert status.error is None, status.error
    files = hub.repo_files("ada/mlintern-sessions", "dataset")
    [path] = [p for p in files if p.endswith(".jsonl")]
    assert path == preview.files[0] and "README.md" in files
    assert hub.repo_settings("ada/mlintern-sessions", "dataset")["private"] is True
    blob = b"".join(files.values())
    assert leaked(blob, list(CORPUS.values())) == [] and b"check creds" not in blob
    assert b"[REDACTED" in blob and json.loads(files[path].splitlines()[0])["sessionId"] == s.id
    # unchanged: no new commit; public: the dataset's visibility changes
    commits = len(hub.commits("ada/mlintern-sessions", "dataset"))
    assert (await s._trace_uploader().upload(s.id, private=True)).status == "unchanged"
    assert len(hub.commits("ada/mlintern-sessions", "dataset")) == commits
    s.submit(ShareTraces(visibility="public"))
    await until(sub, "trace_status")
    assert hub.repo_settings("ada/mlintern-sessions", "dataset")["private"] is False
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 30)


async def test_a_failed_upload_is_retried_at_the_next_start(hub_token, llm_server, monkeypatch, tmp_path):
    hub = hub_token
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the Hub cannot be reached this time
    s = make_session(llm_server, monkeypatch, tmp_path, config=sharing_config(share_traces_preaccepted=True))
    s._trace_uploader().sleep = lambda seconds: asyncio.sleep(0)
    sub = s.subscribe("t")
    s.start()
    await _run_turn(s, sub, llm_server, s.cwd)
    first_id = s.id
    s.submit(ShareTraces())
    status = None
    while status is None or status.error is None:
        status = await until(sub, "trace_status")
    assert status.visibility == "private" and status.url is None and "127.0.0.1:9" in status.error, status.error
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 60)
    assert s._trace_uploader().pending() == [first_id]
    # the next session, with the Hub back, uploads it
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    s2 = make_session(llm_server, monkeypatch, tmp_path, config=sharing_config(share_traces_preaccepted=True))
    sub2 = s2.subscribe("t")
    s2.start()
    logs: list[str] = []
    while not any("failed last time" in line for line in logs):
        logs += [e.log for e in of_type(await collect_until(sub2, stop={"tool_log"}, timeout=60), "tool_log")]
    assert any(p.endswith(f"{first_id}.jsonl") for p in hub.repo_files("ada/mlintern-sessions", "dataset"))
    assert s2._trace_uploader().pending() == []
    s2.submit(Shutdown())
    await asyncio.wait_for(s2._runner, 30)


async def test_no_token_says_why_and_off_uploads_nothing(llm_server, monkeypatch, tmp_path):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    s = make_session(llm_server, monkeypatch, tmp_path, config=Config(llm=LLMSettings(max_attempts=1)))
    sub = s.subscribe("t")
    s.start()
    llm_server.script(Text("hi"))
    s.submit(UserInput(text="hello"))
    await collect_until(sub)
    s.submit(ShareTraces())
    status = await until(sub, "trace_status")
    assert status.visibility == "off" and "no Hugging Face token" in (status.unavailable or "")
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 30)
