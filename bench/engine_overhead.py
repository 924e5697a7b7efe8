"""Engine overhead per iteration (model time excluded) and compaction time.

    python bench/engine_overhead.py

What is measured:
- ``iteration``: one pass of the real TurnEngine loop - history repair, guards (doom loop,
  malformed args), pre-flight token count and compaction check, assistant message append,
  argument parsing, tool dispatch of a no-op tool, result append - with a model that answers
  instantly (an LLMClient whose ``stream`` returns a ready result), at 30 and 300 messages of
  history. Token counts use litellm's real tokenizer with our per-message cache.
- ``compaction``: ContextManager.compact on a ~150k-token single-prompt history, with an
  instant summariser (model time excluded), token counting cold (first count) and warm.
Target from the issue: under 5 ms per iteration at 300 messages.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")

from agent.config import Config  # noqa: E402
from agent.context import ContextManager, TokenCounter  # noqa: E402
from agent.history import History  # noqa: E402
from agent.llm.client import AssembledToolCall, LLMResult  # noqa: E402
from agent.protocol import Usage  # noqa: E402
from agent.session import Session  # noqa: E402
from agent.tools.base import Tool, ToolParams, ToolResult  # noqa: E402


class NoopParams(ToolParams):
    n: int = 0


class Noop(Tool):
    name = "noop"
    description = "does nothing"
    Params = NoopParams

    async def run(self, params, ctx):
        return ToolResult(f"ok {params.n}")


class InstantClient:
    """Answers every request at once: tool calls until ``calls`` run out, then text."""

    def __init__(self, calls: int):
        self.left = calls
        self.n = 0

    async def stream(self, model, messages, tools=None, **kw) -> LLMResult:
        self.n += 1
        if self.left > 0:
            self.left -= 1
            tc = [AssembledToolCall(f"b{self.n}", "noop", json.dumps({"n": self.n}))]
            return LLMResult("", tc, "tool_calls", Usage(prompt_tokens=100, completion_tokens=10), 0.0, "bench", model.id, 0)
        return LLMResult("done", [], "stop", Usage(prompt_tokens=100, completion_tokens=10), 0.0, "bench", model.id, 0)


def prefill(history: History, messages: int) -> None:
    history.append({"role": "user", "content": "Fine-tune a model on the dataset"}, "user", turn=1)
    i = 0
    while len(history) < messages:
        history.append({"role": "assistant", "content": f"step {i}", "tool_calls": [
            {"id": f"p{i}", "type": "function", "function": {"name": "noop", "arguments": json.dumps({"n": i})}}]}, "assistant")
        history.append({"role": "tool", "tool_call_id": f"p{i}", "name": "noop", "content": f"result {i} " + "lorem ipsum " * 60}, "tool")
        i += 1


async def iteration_overhead(history_size: int, iterations: int = 200) -> list[float]:
    session = Session(Config(), model_id="openai/bench", tools=[Noop()], cwd=Path.cwd())
    engine = session.engine
    engine.set_model(engine.model)
    prefill(engine.history, history_size)
    engine.history.total_tokens()  # warm the per-message token cache, as a running session has
    sub = session.subscribe("drain")
    per_iteration: list[float] = []
    for _ in range(iterations):
        engine.client = InstantClient(calls=1)
        engine._iterations = 0  # each run is a turn of its own: the iteration cap never applies
        t0 = time.perf_counter()
        await engine._drive()  # one tool iteration + one final-answer iteration
        per_iteration.append((time.perf_counter() - t0) / 2)
        # keep the history at the requested size: drop what this run appended
        del engine.history.entries[history_size:]
        while not sub.queue.empty():
            sub.queue.get_nowait()
    return per_iteration


async def compaction_time() -> dict[str, float]:
    counter = TokenCounter("openai/gpt-4o")

    def build() -> History:
        h = History(counter=counter)
        h.append({"role": "system", "content": "You are an agent."}, "system")
        prefill(h, 2)
        i = 0
        while h.total_tokens() < 150_000:
            h.append({"role": "assistant", "content": f"step {i}", "tool_calls": [
                {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": f"python train.py --step {i}"})}}]}, "assistant")
            h.append({"role": "tool", "tool_call_id": f"c{i}", "content": ("epoch %d loss 0.%04d lr 3e-5\n" % (i, i)) * 120}, "tool")
            i += 1
        return h

    async def summarise(middle):
        return "Summary of the earlier work."

    h = build()
    size = len(h)
    tokens = h.total_tokens()
    h.recount()
    cm = ContextManager(h, window=160_000)
    t0 = time.perf_counter()
    report = await cm.compact(summarise, force=True)
    cold = time.perf_counter() - t0
    h2 = build()
    cm2 = ContextManager(h2, window=160_000)
    h2.total_tokens()
    t0 = time.perf_counter()
    await cm2.compact(summarise, force=True)
    warm = time.perf_counter() - t0
    return {"messages": size, "tokens_before": tokens, "tokens_after": report.tokens_after, "cold_s": cold, "warm_s": warm}


def fmt(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    return f"median {statistics.median(ms):.2f} ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms, max {ms[-1]:.2f} ms"


async def through_server(history_size: int, iterations: int = 60) -> list[float]:
    """The same loop with the real client against a loopback server that answers at once:
    engine + client + HTTP on 127.0.0.1, still no model time. ``openai/`` with
    OPENAI_BASE_URL takes the direct transport (no litellm), as a session does. The scripted
    server runs in this process: its parsing of each request body is counted too."""
    from tests.fakes import Call, ScriptedLLMServer, Text, ToolCalls

    with ScriptedLLMServer() as server:
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ["OPENAI_API_KEY"] = "sk-bench"
        # a stated window that holds the prefilled history: this measures iterations, and an
        # unknown model's default window would make the 300-message history compact instead
        config = Config(context_windows={"openai/bench": 1_000_000})
        session = Session(config, model_id="openai/bench", tools=[Noop()], cwd=Path.cwd())
        engine = session.engine
        prefill(engine.history, history_size)
        engine.history.total_tokens()
        sub = session.subscribe("drain")
        samples = []
        for i in range(iterations):
            server.script(ToolCalls([Call(f"l{i}", "noop", '{"n": 1}')]), Text("done"))
            engine._iterations = 0
            t0 = time.perf_counter()
            await engine._drive()
            samples.append((time.perf_counter() - t0) / 2)
            del engine.history.entries[history_size:]
            while not sub.queue.empty():
                sub.queue.get_nowait()
        return samples[5:]  # the first requests open the connection


async def main() -> None:
    from agent.llm.runtime import get_litellm

    get_litellm()
    for n in (30, 300):
        samples = await iteration_overhead(n)
        print(f"engine overhead per iteration at {n} messages: {fmt(samples)}")
    for n in (30, 300):
        samples = await through_server(n)
        print(f"engine + client + loopback HTTP (server in process) per iteration at {n} messages: {fmt(samples)}")
    c = await compaction_time()
    print(
        f"compaction of {c['messages']} messages / {c['tokens_before']:,} tokens -> {c['tokens_after']:,}: "
        f"{c['cold_s'] * 1000:.1f} ms with cold token counts, {c['warm_s'] * 1000:.1f} ms warm"
    )


if __name__ == "__main__":
    asyncio.run(main())
