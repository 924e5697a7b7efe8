"""The user's credentials out of the agent's reach: the environment of the processes it
starts, and secret values masked in everything a tool says (agent/secrets.py)."""

from __future__ import annotations

import json

import pytest

from agent.config import Config, LLMSettings
from agent.protocol import Shutdown, UserInput
from agent.secrets import SecretMasker, agent_environment, is_secret_name
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

HF = "hf_realUserToken1234567890"
OPENAI = "sk-proj-userKey-abcdefghijklmnop"


@pytest.mark.parametrize("name,secret", [
    ("HF_TOKEN", True), ("HUGGING_FACE_HUB_TOKEN", True), ("OPENAI_API_KEY", True), ("ANTHROPIC_API_KEY", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("AWS_ACCESS_KEY_ID", True), ("GITHUB_TOKEN", True), ("GH_TOKEN", True),
    ("WANDB_API_KEY", True), ("SSH_AUTH_SOCK", True), ("DATABASE_URL", True), ("PGPASSWORD", False),
    ("DB_PASSWORD", True), ("TOKENIZERS_PARALLELISM", False), ("PATH", False), ("HF_HUB_OFFLINE", False),
    ("CUDA_VISIBLE_DEVICES", False), ("XAUTHORITY", False), ("PYTHONHASHSEED", False),
])
def test_which_names_are_credentials(name, secret):
    assert is_secret_name(name) is secret


def test_the_agents_environment_keeps_everything_but_credentials():
    env = {"PATH": "/bin", "HF_TOKEN": HF, "OPENAI_API_KEY": OPENAI, "WANDB_API_KEY": "w" * 12, "LANG": "C"}
    assert agent_environment(env=env) == {"PATH": "/bin", "LANG": "C"}
    assert agent_environment(["WANDB_API_KEY"], env=env) == {"PATH": "/bin", "LANG": "C", "WANDB_API_KEY": "w" * 12}


def test_masking_replaces_every_secret_value_and_nothing_else():
    masker = SecretMasker.from_environment(
        {"OPENAI_API_KEY": OPENAI, "SHORT_TOKEN": "abc", "GOOGLE_APPLICATION_CREDENTIALS": "/home/me/key.json",
         "PATH": "/usr/bin"}, hf_token=HF)
    text = f"token={HF} key={OPENAI} again {HF}; path /home/me/key.json, short abc"
    assert masker.mask(text) == ("token=[redacted HF_TOKEN] key=[redacted OPENAI_API_KEY] again [redacted HF_TOKEN]; "
                                 "path /home/me/key.json, short abc")
    assert SecretMasker.from_environment({}, hf_token=None).mask(text) == text  # nothing to hide: unchanged
    assert masker.mask_lines([f"a {HF}", "b"]) == ["a [redacted HF_TOKEN]", "b"]


async def test_bash_sees_no_credentials_and_every_echo_of_one_is_masked(llm_server, monkeypatch, tmp_path):
    """The model's bash has no HF_TOKEN or provider key in its environment; a file holding
    the token (as ~/.cache/huggingface/token does), printed by bash, reaches the model, the
    screen's events and the live log only masked."""
    monkeypatch.setenv("HF_TOKEN", HF)
    monkeypatch.setenv("ANTHROPIC_API_KEY", OPENAI)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    session = make_session(llm_server, monkeypatch, tmp_path,
                           config=Config(llm=LLMSettings(max_attempts=1), jobs_backend="local"))
    (session.cwd / "token-file").write_text(HF + "\n")
    command = "env | sort; echo from-file: $(cat token-file)"
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": command}))]), Text("done"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    output = of_type(events, "tool_output")[0].output
    env_lines = output.split("from-file:")[0].splitlines()
    assert not [line for line in env_lines if line.startswith(("HF_TOKEN=", "ANTHROPIC_API_KEY="))]
    assert OPENAI not in output
    assert "TOKENIZERS_PARALLELISM=false" in output  # ordinary settings still there
    assert "from-file: [redacted HF_TOKEN]" in output and HF not in output
    sent_back = json.dumps(llm_server.requests[1]["messages"])  # what the model read
    assert HF not in sent_back and "[redacted HF_TOKEN]" in sent_back
    assert all(HF not in e.model_dump_json() for e in events)  # the screen and the store get the masked text
    session.submit(Shutdown())
    await session._runner


async def test_pass_env_lets_a_named_credential_through(llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value-1234")
    session = make_session(llm_server, monkeypatch, tmp_path,
                           config=Config(llm=LLMSettings(max_attempts=1), pass_env=["WANDB_API_KEY"]))
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": "echo ${WANDB_API_KEY:-missing}"}))]),
                      Text("done"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    # it reached the process (not "missing"), and is still masked in what the model reads
    assert of_type(events, "tool_output")[0].output.strip() == "[redacted WANDB_API_KEY]"
    session.submit(Shutdown())
    await session._runner
