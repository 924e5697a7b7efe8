"""Model resolution, prices/windows and error classification."""

from __future__ import annotations

import pytest

from agent.config import ConfigError, load_config
from agent.llm.errors import classify, retry_after_seconds
from agent.llm.models import ModelIdError, default_model_id, resolve_model
from agent.llm.pricing import context_window, cost_of, find_price, normalise_usage
from agent.protocol import Usage


def test_demo_is_the_default_without_credentials():
    assert default_model_id(None, env={}) == "demo"
    m = resolve_model("demo", env={})
    assert m.is_demo and "demo" in m.label and m.missing_credentials() is None


def test_defaults_follow_the_keys_the_user_has():
    assert default_model_id(None, {"ANTHROPIC_API_KEY": "k"}).startswith("anthropic/")
    assert default_model_id(None, {"OPENAI_API_KEY": "k"}) == "openai/gpt-5"
    assert default_model_id(None, {"HF_TOKEN": "hf_x"}).startswith("moonshotai/")
    assert default_model_id("ollama/qwen3", {"ANTHROPIC_API_KEY": "k"}) == "ollama/qwen3"
    assert default_model_id(None, {"MLINTERN_MODEL": "vllm/x"}) == "vllm/x"


@pytest.mark.parametrize("prefix,var,default", [
    ("ollama", "OLLAMA_BASE_URL", "http://localhost:11434/v1"),
    ("vllm", "VLLM_BASE_URL", "http://localhost:8000/v1"),
    ("lm_studio", "LMSTUDIO_BASE_URL", "http://127.0.0.1:1234/v1"),
    ("llamacpp", "LLAMACPP_BASE_URL", "http://localhost:8080/v1"),
])
def test_local_prefixes(prefix, var, default):
    m = resolve_model(f"{prefix}/qwen3:8b", env={})
    assert m.route == "local" and m.litellm_model == "openai/qwen3:8b" and m.api_base == default
    m = resolve_model(f"{prefix}/qwen3", env={var: "http://10.0.0.2:9999/"})
    assert m.api_base == "http://10.0.0.2:9999/v1"
    m = resolve_model(f"{prefix}/qwen3", env={"LOCAL_LLM_BASE_URL": "http://box:1/v1"})
    assert m.api_base == "http://box:1/v1" and m.api_key


def test_openai_prefix_honours_base_url():
    m = resolve_model("openai/my-model", env={"OPENAI_API_BASE": "http://127.0.0.1:5000/v1"})
    assert m.route == "openai_compatible" and m.api_base == "http://127.0.0.1:5000/v1"
    m = resolve_model("openai/gpt-5", env={"OPENAI_API_KEY": "sk"})
    assert m.route == "litellm" and m.api_base is None
    assert resolve_model("openai/gpt-5", env={}).missing_credentials().startswith("No API key for openai/gpt-5: set OPENAI_API_KEY")


def test_hf_router_ids():
    m = resolve_model("moonshotai/Kimi-K2-Instruct:novita", env={"HF_TOKEN": "hf_abc"})
    assert m.route == "hf_router" and m.litellm_model == "openai/moonshotai/Kimi-K2-Instruct:novita"
    assert m.api_base == "https://router.huggingface.co/v1" and m.api_key == "hf_abc"
    assert resolve_model("huggingface/Qwen/Qwen3-Coder-480B-A35B-Instruct", env={"HF_TOKEN": "t"}).route == "hf_router"
    # a litellm provider prefix with a :provider tag is a router id, not a direct call
    assert resolve_model("anthropic/claude-opus-4.8:fal-ai", env={"HF_TOKEN": "t"}).route == "hf_router"
    assert "HF_TOKEN" in resolve_model("moonshotai/Kimi-K2-Instruct", env={}).missing_credentials()


def test_litellm_ids_and_bad_ids():
    m = resolve_model("anthropic/claude-sonnet-4-5", env={"ANTHROPIC_API_KEY": "k"})
    assert m.route == "litellm" and m.api_key == "k" and m.missing_credentials() is None
    assert resolve_model("claude-sonnet-4-5", env={}).key_env == "ANTHROPIC_API_KEY"
    for bad in ("", "two words", "notamodel"):
        with pytest.raises(ModelIdError):
            resolve_model(bad, env={})


def test_provider_ids_with_a_colon_stay_with_their_provider():
    bedrock = resolve_model("bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0", env={})
    assert bedrock.route == "litellm" and bedrock.litellm_model == "bedrock/anthropic.claude-3-5-sonnet-20240620-v1:0"
    # the HF router's org/model:provider form still goes to the router
    routed = resolve_model("openai/gpt-oss-120b:cerebras", env={"HF_TOKEN": "hf_x"})
    assert routed.route == "hf_router"


def test_windows_and_prices_never_silently_zero():
    sonnet = resolve_model("anthropic/claude-sonnet-4-5", env={})
    assert context_window(sonnet).tokens == 200_000 and context_window(sonnet).source == "litellm"
    price, source = find_price(sonnet)
    assert source == "litellm" and price.input_per_mtok == pytest.approx(3.0)
    kimi = resolve_model("moonshotai/Kimi-K2-Instruct:groq", env={})
    assert context_window(kimi).source == "fallback"
    assert find_price(kimi)[1] == "fallback"
    mystery = resolve_model("someorg/brand-new-model", env={})
    assert find_price(mystery) == (None, "unknown")
    assert cost_of(None, Usage(prompt_tokens=10)) is None
    assert context_window(mystery).source == "assumed"
    assert context_window(mystery, {"someorg/brand-new-model": 1234}).tokens == 1234
    assert find_price(resolve_model("ollama/x", env={}))[0].input_per_mtok == 0.0


def test_usage_normalisation_across_shapes():
    anthropic_like = {"prompt_tokens": 100, "completion_tokens": 5, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 20}
    assert normalise_usage(anthropic_like) == Usage(prompt_tokens=100, completion_tokens=5, cache_read_tokens=60, cache_write_tokens=20)
    openai_like = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 30}}
    assert normalise_usage(openai_like).cache_read_tokens == 30
    assert normalise_usage(None) == Usage()


class FakeHTTPError(Exception):
    def __init__(self, msg, status, headers=None):
        super().__init__(msg)
        self.status_code = status
        self.response = type("R", (), {"headers": headers or {}, "status_code": status})()


@pytest.mark.parametrize("msg,status,kind,retryable", [
    ("Rate limit exceeded", 429, "rate_limit", True),
    ("upstream error", 503, "server", True),
    ("Incorrect API key", 401, "auth", False),
    ("Payment Required: insufficient credits", 402, "credits", False),
    ("The model `gpt-9` does not exist", 404, "unknown_model", False),
    ("This model's maximum context length is 8192 tokens", 400, "context_overflow", False),
    ("Connection reset by peer", None, "connection", True),
    ("field foo is not allowed", 400, "bad_request", False),
])
def test_error_classification(msg, status, kind, retryable):
    info = classify(FakeHTTPError(msg, status), resolve_model("openai/gpt-5", env={}))
    assert (info.kind, info.retryable) == (kind, retryable)
    assert info.message and info.message[0].isupper()


def test_retry_after_forms():
    assert retry_after_seconds(FakeHTTPError("x", 429, {"Retry-After": "7"})) == 7
    assert retry_after_seconds(FakeHTTPError("x", 429, {"retry-after-ms": "1500"})) == 1.5
    assert 0 <= retry_after_seconds(FakeHTTPError("x", 429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) < 1
    assert retry_after_seconds(FakeHTTPError("x", 429, {})) is None


def test_config_file_errors_are_one_clear_sentence(tmp_path, monkeypatch):
    path = tmp_path / "config.json"
    path.write_text('{"model": "demo",, }')
    with pytest.raises(ConfigError, match=r"not valid JSON \(line 1"):
        load_config(path)
    path.write_text('{"max_iteratons": 5}')
    with pytest.raises(ConfigError, match="max_iteratons"):
        load_config(path)
    path.write_text('{"model": "${MY_MODEL}"}')
    with pytest.raises(ConfigError, match="MY_MODEL"):
        load_config(path)
    monkeypatch.setenv("MY_MODEL", "ollama/qwen3")
    path.write_text('{"model": "${MY_MODEL}", "llm": {"max_attempts": 2}, "approval_mode": "${MODE:-ask}"}')
    cfg = load_config(path)
    assert cfg.model == "ollama/qwen3" and cfg.llm.max_attempts == 2 and cfg.llm.backoff_base_s == 2.0
    assert cfg.approval_mode == "ask"
    assert load_config(tmp_path / "absent.json").max_iterations == 300


def test_overflow_recognised_by_error_code_alone():
    exc = FakeHTTPError("Request too large", 400)
    exc.body = {"code": "context_length_exceeded", "message": "Request too large"}
    assert classify(exc).kind == "context_overflow"


def test_mid_stream_drop_is_retryable():
    from litellm.exceptions import MidStreamFallbackError

    exc = MidStreamFallbackError(message="Connection dropped", model="openai/x", llm_provider="openai", generated_content="par")
    assert classify(exc).retryable


def test_tool_calls_that_reuse_index_zero_are_kept_apart():
    from agent.llm.client import _StreamState

    st = _StreamState()
    deltas = [
        {"index": 0, "id": "a", "function": {"name": "bash", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"command": "ls"}'}},
        {"index": 0, "id": "b", "function": {"name": "read", "arguments": ""}},
        {"index": 0, "function": {"arguments": '{"path": "x.txt"}'}},
    ]
    for d in deltas:
        st.add_tool_delta(d, 0)
    calls = st.tool_calls()
    assert [(c.id, c.name, c.arguments) for c in calls] == [
        ("a", "bash", '{"command": "ls"}'), ("b", "read", '{"path": "x.txt"}')]


def test_quota_429_is_credits_and_400_with_transient_words_is_not_retried():
    exc = FakeHTTPError("You exceeded your current quota, please check your plan and billing details.", 429)
    exc.body = {"code": "insufficient_quota"}
    assert classify(exc).kind == "credits" and not classify(exc).retryable
    assert classify(FakeHTTPError("invalid value for 'timeout'", 400)).kind == "bad_request"


def test_a_parameter_named_title_survives_schema_building():
    from agent.tools.base import Tool, ToolParams, ToolResult
    from agent.tools.router import tool_spec

    class P(ToolParams):
        title: str
        body: str = ""

    class T(Tool):
        name = "t"
        description = "d"
        Params = P

        async def run(self, params, ctx):
            return ToolResult("")

    params = tool_spec(T())["function"]["parameters"]
    assert set(params["properties"]) == {"title", "body"} and params["required"] == ["title"]
    assert "title" not in params  # the schema's own title is still dropped


def test_only_a_refused_connection_on_this_machine_skips_the_backoff():
    from agent.llm.errors import local_server_down
    from agent.llm.models import resolve_model

    refused = ConnectionError("All connection attempts failed")
    refused.__cause__ = ConnectionRefusedError(111, "Connection refused")
    local = resolve_model("ollama/qwen3", env={"OLLAMA_BASE_URL": "http://localhost:11434"})
    info = local_server_down(refused, local)
    assert info is not None and not info.retryable
    assert "http://localhost:11434/v1" in info.message and "OLLAMA_BASE_URL" in info.message
    remote = resolve_model("ollama/qwen3", env={"OLLAMA_BASE_URL": "http://gpu-box.lan:11434"})
    assert local_server_down(refused, remote) is None  # another machine may be restarting: back off
    assert local_server_down(TimeoutError("timed out"), local) is None  # not refused: a slow server


def test_the_saved_hf_token_is_read_where_huggingface_hub_keeps_it(tmp_path, monkeypatch):
    """`hf auth login`'s token file, found without importing huggingface_hub: HF_TOKEN_PATH,
    else HF_HOME/token, else $XDG_CACHE_HOME/huggingface/token."""
    from agent.llm.models import hf_token

    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH", "HF_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert hf_token() is None
    (tmp_path / "cache" / "huggingface").mkdir(parents=True)
    (tmp_path / "cache" / "huggingface" / "token").write_text("hf_xdg\n")
    assert hf_token() == "hf_xdg"
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    assert hf_token() is None
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "token").write_text("hf_home")
    assert hf_token() == "hf_home"
    monkeypatch.setenv("HF_TOKEN_PATH", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").write_text("  hf_path  \n")
    assert hf_token() == "hf_path"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hf_token() == "hf_env"


def test_litellms_price_map_is_read_without_litellm():
    """The map file litellm ships, read directly, holds what litellm itself reads."""
    import json

    from agent.llm import model_map
    from agent.llm.runtime import get_litellm

    path = model_map._map_path()
    assert path is not None and path.name == model_map.MAP_FILE
    table = json.loads(path.read_text())
    litellm = get_litellm()
    for name in ("gpt-4o", "claude-sonnet-4-5", "anthropic/claude-sonnet-4-5"):
        if name in litellm.model_cost:
            assert table[name]["input_cost_per_token"] == litellm.model_cost[name]["input_cost_per_token"]
    assert model_map.lookup("no-such-model", "gpt-4o")["input_cost_per_token"] > 0
    assert model_map.lookup("no-such-model") is None
