"""The scripted OpenAI-compatible server, exercised through litellm's real HTTP path.

These tests pin both the fake's behaviour and the litellm facts the engine relies on
(tests/fakes/LITELLM_NOTES.md); a litellm upgrade that changes one of them fails here.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request

import litellm
from litellm.exceptions import MidStreamFallbackError
import pytest

from tests.fakes import Call, Disconnect, Hang, HTTPError, ScriptedLLMServer, Text, ToolCalls, Usage

MESSAGES = [{"role": "user", "content": "list the files"}]
BASH_TOOL = {
    "type": "function",
    "function": {
        "name": "bash",
        "description": "Run a shell command",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}},
    },
}


@pytest.fixture(autouse=True)
def quiet_litellm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(litellm, "suppress_debug_info", True)


def call(server: ScriptedLLMServer, **overrides):
    kwargs = dict(
        model="openai/fake-model",
        api_base=server.base_url,
        api_key="sk-test",
        messages=MESSAGES,
        num_retries=0,
    )
    kwargs.update(overrides)
    return litellm.acompletion(**kwargs)


async def stream(server: ScriptedLLMServer, **overrides) -> list:
    response = await call(server, stream=True, stream_options={"include_usage": True}, **overrides)
    return [chunk async for chunk in response]


def choice_chunks(chunks: list) -> list:
    return [c for c in chunks if c.choices]


async def test_text_stream_reassembles_with_final_usage_chunk(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Text("hello **world**", chunk_chars=4, usage=Usage(100, 7, cached_tokens=40)))

    chunks = await stream(llm_server)

    with_choices = choice_chunks(chunks)
    texts = [c.choices[0].delta.content for c in with_choices if c.choices[0].delta.content]
    assert texts == ["hell", "o **", "worl", "d**"]
    assert with_choices[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in with_choices][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in with_choices[:-1])
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (100, 7)
    assert usage_chunk.usage.prompt_tokens_details.cached_tokens == 40
    assert llm_server.requests[0]["stream_options"] == {"include_usage": True}


async def test_tool_call_fragments_reassemble(llm_server: ScriptedLLMServer) -> None:
    calls = [Call("call_1", "bash", '{"command": "ls -la"}'), Call("call_2", "read", '{"path": "a.txt"}')]
    llm_server.script(ToolCalls(calls, content="Let me look.", fragment_chars=5))

    chunks = await stream(llm_server, tools=[BASH_TOOL])

    deltas = [tc for c in choice_chunks(chunks) for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(deltas) > 2 * len(calls), "arguments must arrive in several fragments"
    manual: dict[int, dict] = {}
    for delta in deltas:
        slot = manual.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
        slot["id"] = slot["id"] or delta.id
        slot["name"] = slot["name"] or delta.function.name
        slot["arguments"] += delta.function.arguments or ""
    assert manual == {
        0: {"id": "call_1", "name": "bash", "arguments": '{"command": "ls -la"}'},
        1: {"id": "call_2", "name": "read", "arguments": '{"path": "a.txt"}'},
    }

    built = litellm.stream_chunk_builder(chunks, messages=MESSAGES)
    message = built.choices[0].message
    assert built.choices[0].finish_reason == "tool_calls"
    assert message.content == "Let me look."
    assert [(t.id, t.function.name, json.loads(t.function.arguments)) for t in message.tool_calls] == [
        ("call_1", "bash", {"command": "ls -la"}),
        ("call_2", "read", {"path": "a.txt"}),
    ]
    assert built.usage.completion_tokens > 0
    assert llm_server.requests[0]["tools"] == [BASH_TOOL]


@pytest.mark.parametrize(
    "reply",
    [Text("cut off mid", finish_reason="length"), ToolCalls([Call("c", "bash", '{"comm')], finish_reason="length")],
    ids=["text", "tool_calls"],
)
async def test_length_finish_reason_survives(llm_server: ScriptedLLMServer, reply) -> None:
    llm_server.script(reply, reply)

    chunks = await stream(llm_server)
    complete = await call(llm_server)

    assert choice_chunks(chunks)[-1].choices[0].finish_reason == "length"
    assert complete.choices[0].finish_reason == "length"


async def test_non_streaming_completion_with_estimated_usage(llm_server: ScriptedLLMServer) -> None:
    long_prompt = [{"role": "user", "content": "x" * 4000}]
    llm_server.script(ToolCalls([Call("call_9", "bash", '{"command": "pwd"}')], content="Checking."), Text("done"))

    first = await call(llm_server, messages=long_prompt)
    second = await call(llm_server)

    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls"
    assert message.content == "Checking."
    assert [(t.id, t.function.name, t.function.arguments) for t in message.tool_calls] == [
        ("call_9", "bash", '{"command": "pwd"}')
    ]
    assert 1000 <= first.usage.prompt_tokens <= 1100
    assert first.usage.completion_tokens > 0
    assert second.choices[0].message.content == "done"
    assert second.choices[0].finish_reason == "stop"


async def test_callable_reply_sees_the_request(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(lambda body: Text(f"{len(body['messages'])} messages, last: {body['messages'][-1]['content']}"))

    response = await call(llm_server)

    assert response.choices[0].message.content == "1 messages, last: list the files"


async def test_chunk_delay_spreads_the_stream(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Text("abcdef", chunk_chars=2, delay=0.05))

    started = time.perf_counter()
    chunks = await stream(llm_server)

    assert time.perf_counter() - started >= 0.15
    assert "".join(c.choices[0].delta.content or "" for c in choice_chunks(chunks)) == "abcdef"


@pytest.mark.parametrize(
    ("reply", "exception", "retry_after"),
    [
        (HTTPError(429, "Rate limit reached", headers={"Retry-After": "3"}), litellm.RateLimitError, "3"),
        (HTTPError(500, "boom"), litellm.InternalServerError, None),
        (HTTPError(503, "overloaded", headers={"Retry-After": "5"}), litellm.ServiceUnavailableError, "5"),
        (HTTPError(401, "Incorrect API key provided", code="invalid_api_key"), litellm.AuthenticationError, None),
        (HTTPError(402, "Payment required"), litellm.APIError, None),
        (HTTPError(404, "The model `fake-model` does not exist", code="model_not_found"), litellm.NotFoundError, None),
        (
            HTTPError(400, "This model's maximum context length is 8192 tokens. However, you requested 9000 tokens."),
            litellm.ContextWindowExceededError,
            None,
        ),
    ],
    ids=lambda value: str(value.status) if isinstance(value, HTTPError) else None,
)
@pytest.mark.parametrize("streaming", [False, True], ids=["json", "sse"])
async def test_errors_map_to_litellm_exceptions(
    llm_server: ScriptedLLMServer, reply: HTTPError, exception: type, retry_after: str | None, streaming: bool
) -> None:
    llm_server.script(reply)

    with pytest.raises(exception) as caught:
        if streaming:
            await stream(llm_server)
        else:
            await call(llm_server)

    error = caught.value
    assert error.status_code == reply.status
    assert reply.message in str(error)
    assert error.response.headers.get("retry-after") == retry_after
    assert error.litellm_response_headers.get("retry-after") == retry_after
    assert len(llm_server.requests) == 1


async def test_context_length_code_alone_is_only_a_bad_request(llm_server: ScriptedLLMServer) -> None:
    # litellm maps by message text, so the engine must also check the error code.
    llm_server.script(HTTPError(400, "Input is too long", code="context_length_exceeded"))

    with pytest.raises(litellm.BadRequestError) as caught:
        await call(llm_server)

    assert not isinstance(caught.value, litellm.ContextWindowExceededError)
    assert caught.value.body["code"] == "context_length_exceeded"


async def test_num_retries_zero_disables_sdk_retries(llm_server: ScriptedLLMServer) -> None:
    # retry-after-ms keeps the SDK's own backoff short so the default case stays fast.
    fast_500 = HTTPError(500, "boom", headers={"retry-after-ms": "1"})
    llm_server.script(*[fast_500] * 4)

    with pytest.raises(litellm.InternalServerError):
        await call(llm_server)
    assert len(llm_server.requests) == 1

    with pytest.raises(litellm.InternalServerError):
        await call(llm_server, num_retries=None)
    assert len(llm_server.requests) == 4, "the openai SDK retries twice when not told otherwise"


async def test_exhausted_script_fails_loudly(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Text("only one"))
    await call(llm_server)

    with pytest.raises(litellm.InternalServerError, match="script exhausted: request #2"):
        await call(llm_server)


async def test_disconnect_mid_stream_raises_during_iteration(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Disconnect(after_text="partial answer"))
    received: list[str] = []

    response = await call(llm_server, stream=True)
    with pytest.raises(MidStreamFallbackError) as caught:
        async for chunk in response:
            received.append(chunk.choices[0].delta.content or "")

    assert "".join(received) == "partial answer"
    assert caught.value.generated_content == "partial answer"
    assert isinstance(caught.value.original_exception, litellm.APIConnectionError)
    # A retry policy keyed on ServiceUnavailableError would replay this turn.
    assert isinstance(caught.value, litellm.ServiceUnavailableError)


async def test_cancelling_a_hung_stream_is_immediate_and_stop_stays_prompt(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Hang(after_text="thinking ", seconds=30))
    first_text = asyncio.Event()

    async def consume() -> None:
        response = await call(llm_server, stream=True)
        async for chunk in response:
            if chunk.choices and chunk.choices[0].delta.content:
                first_text.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_text.wait(), timeout=5)
    cancelled_at = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - cancelled_at < 0.5

    stopped_at = time.perf_counter()
    llm_server.stop()
    assert time.perf_counter() - stopped_at < 1.0


async def test_stop_ends_a_hung_stream_with_an_error(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Hang(after_text="thinking ", seconds=30))

    async def consume() -> None:
        response = await call(llm_server, stream=True)
        async for _ in response:
            pass

    task = asyncio.create_task(consume())
    await asyncio.to_thread(llm_server.wait_for_request, 1)
    await asyncio.to_thread(llm_server.stop)

    with pytest.raises(MidStreamFallbackError):
        await asyncio.wait_for(task, timeout=2)


async def test_client_timeout_on_a_hung_stream(llm_server: ScriptedLLMServer) -> None:
    llm_server.script(Hang(after_text="thinking ", seconds=30))

    started = time.perf_counter()
    with pytest.raises(litellm.Timeout):
        await stream(llm_server, timeout=0.3)

    assert time.perf_counter() - started < 2


def test_plain_http_from_sync_code() -> None:
    with ScriptedLLMServer(model_name="tiny") as server:
        server.script(Text("sync works"))
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert json.load(response)["data"][0]["id"] == "tiny"
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions",
            data=json.dumps({"model": "tiny", "messages": MESSAGES}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["choices"][0]["message"]["content"] == "sync works"
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 500
        assert "script exhausted" in json.load(caught.value)["error"]["message"]
        assert server.remaining == 0


async def test_litellm_writes_nothing_to_the_terminal(
    llm_server: ScriptedLLMServer, capfd: pytest.CaptureFixture[str]
) -> None:
    # The TUI owns the terminal; any stray print from litellm would garble the screen.
    llm_server.script(Text("fine"), HTTPError(500, "boom"), Disconnect("x"))

    await stream(llm_server)
    with pytest.raises(litellm.InternalServerError):
        await call(llm_server)
    with pytest.raises(MidStreamFallbackError):
        await stream(llm_server)
    litellm.token_counter(model="openai/fake-model", messages=MESSAGES)

    captured = capfd.readouterr()
    assert (captured.out, captured.err) == ("", "")
