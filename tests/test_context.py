"""Compaction edge cases on real History objects (chars/4 token counting, no model)."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.context import ContextManager, render_transcript
from agent.history import STUB_RESULT, History


def build_run(n_rounds: int, result_chars: int = 2000, prompt: str = "Fine-tune a model on my dataset") -> History:
    """A one-prompt autonomous run: system, one user prompt, then tool rounds only."""
    h = History()
    h.append({"role": "system", "content": "You are an agent."}, "system")
    h.append({"role": "user", "content": prompt}, "user")
    for i in range(n_rounds):
        h.append({"role": "assistant", "content": f"step {i}", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "bash", "arguments": json.dumps({"command": f"echo {i}"})}}]},
            "assistant")
        h.append({"role": "tool", "tool_call_id": f"c{i}", "name": "bash", "content": f"result {i} " + "x" * result_chars}, "tool")
    return h


def pairs_intact(h: History) -> bool:
    msgs = h.messages()
    for i, m in enumerate(msgs):
        if m["role"] == "tool":
            j = i - 1
            while j >= 0 and msgs[j]["role"] == "tool":
                j -= 1
            ids = {c["id"] for c in msgs[j].get("tool_calls") or []}
            if msgs[j]["role"] != "assistant" or m["tool_call_id"] not in ids:
                return False
        for call in m.get("tool_calls") or []:
            following = []
            for n in msgs[i + 1:]:
                if n["role"] != "tool":
                    break
                following.append(n["tool_call_id"])
            if call["id"] not in following:
                return False
    return True


class FakeSummariser:
    def __init__(self, text="Summary: tried echo 0..n, all fine."):
        self.text = text
        self.calls: list[list[dict]] = []

    async def __call__(self, middle):
        self.calls.append(middle)
        if isinstance(self.text, Exception):
            raise self.text
        return self.text


async def test_single_prompt_run_of_300_messages_shrinks():
    h = build_run(150)  # 302 messages, ~150k chars, one user prompt
    assert len(h) == 302
    cm = ContextManager(h, window=40_000, threshold_ratio=0.9)
    assert cm.needs_compaction()
    summarise = FakeSummariser()
    report = await cm.compact(summarise)
    assert report.method == "summary"
    assert report.tokens_after < cm.threshold < report.tokens_before
    msgs = h.messages()
    assert msgs[0]["role"] == "system" and msgs[1]["content"] == "Fine-tune a model on my dataset"
    assert "CONTEXT SUMMARY" in msgs[2]["content"] and "Summary: tried echo" in msgs[2]["content"]
    assert msgs[-1]["content"].startswith("result 149")  # the newest round is kept verbatim
    assert pairs_intact(h)
    assert len(summarise.calls) == 1 and len(summarise.calls[0]) > 200


async def test_under_threshold_is_a_no_op_unless_forced():
    h = build_run(3, result_chars=100)
    cm = ContextManager(h, window=100_000)
    report = await cm.compact(FakeSummariser())
    assert report.method == "none" and len(h) == 8
    forced = await cm.compact(FakeSummariser(), force=True)  # /compact works at any usage
    assert forced.method in ("summary", "none")
    assert pairs_intact(h)


async def test_forced_compaction_with_short_tail_summarises_the_middle():
    h = build_run(10, result_chars=400)
    cm = ContextManager(h, window=100_000, tail_ratio=0.005)
    summarise = FakeSummariser()
    report = await cm.compact(summarise, force=True)
    assert report.method == "summary" and report.messages_after < report.messages_before
    assert pairs_intact(h)


async def test_tail_never_splits_a_call_from_its_results():
    h = History()
    h.append({"role": "system", "content": "sys"}, "system")
    h.append({"role": "user", "content": "go"}, "user")
    for i in range(20):
        calls = [{"id": f"c{i}_{k}", "type": "function", "function": {"name": "read", "arguments": "{}"}} for k in range(3)]
        h.append({"role": "assistant", "content": "", "tool_calls": calls}, "assistant")
        for k in range(3):
            h.append({"role": "tool", "tool_call_id": f"c{i}_{k}", "content": "y" * 900}, "tool")
    for ratio in (0.01, 0.05, 0.1, 0.2):
        hh = History(entries=list(h.entries))
        cm = ContextManager(hh, window=60_000, tail_ratio=ratio)
        await cm.compact(FakeSummariser(), force=True)
        assert pairs_intact(hh), ratio


async def test_oversized_message_becomes_a_placeholder():
    h = build_run(2, result_chars=100)
    h.append({"role": "user", "content": "look at this: " + "z" * 400_000}, "user")  # ~100k tokens
    cm = ContextManager(h, window=200_000, oversize_tokens=40_000)
    report = await cm.compact(FakeSummariser(), force=True)
    big = [m for m in h.messages() if "content removed during compaction" in (m.get("content") or "")]
    assert len(big) == 1 and "100,00" in big[0]["content"]
    assert report.tokens_after < 60_000


async def test_summary_failure_falls_back_to_truncation_and_never_raises():
    h = build_run(150)
    cm = ContextManager(h, window=40_000)
    report = await cm.compact(FakeSummariser(RuntimeError("provider down")))
    assert report.method == "truncation" and "summary failed" in report.detail
    assert report.tokens_after <= cm.threshold
    note = h.messages()[2]["content"]
    assert "could not be made" in note and "provider down" in note
    assert pairs_intact(h)


async def test_huge_summary_triggers_harder_truncation():
    h = build_run(150)
    cm = ContextManager(h, window=40_000)
    report = await cm.compact(FakeSummariser("S" * 200_000))  # the summary alone is ~50k tokens
    assert report.tokens_after <= cm.threshold
    assert "truncation" in report.method or "cut" in report.detail
    assert pairs_intact(h)


async def test_last_unit_bigger_than_the_window_is_cut_not_fatal():
    h = History()
    h.append({"role": "system", "content": "sys"}, "system")
    h.append({"role": "user", "content": "q" * 50_000}, "user")
    h.append({"role": "assistant", "content": "", "tool_calls": [{"id": "z", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}, "assistant")
    h.append({"role": "tool", "tool_call_id": "z", "content": "r" * 200_000}, "tool")
    cm = ContextManager(h, window=8_000)
    report = await cm.compact(FakeSummariser())
    assert report.tokens_after <= cm.threshold
    assert pairs_intact(h) and h.messages()[0]["content"] == "sys"


async def test_cancellation_propagates_out_of_compaction():
    h = build_run(150)
    cm = ContextManager(h, window=40_000)

    async def slow(_):
        await asyncio.sleep(10)
        return "never"

    task = asyncio.ensure_future(cm.compact(slow))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(h) == 302  # nothing half-applied


def test_repair_inserts_stub_results_for_dangling_calls():
    h = History()
    h.append({"role": "user", "content": "go"}, "user")
    h.append({"role": "assistant", "content": "", "tool_calls": [
        {"id": "a", "type": "function", "function": {"name": "bash", "arguments": "{}"}},
        {"id": "b", "type": "function", "function": {"name": "read", "arguments": "{}"}}]}, "assistant")
    h.append({"role": "tool", "tool_call_id": "a", "content": "ok"}, "tool")
    h.append({"role": "user", "content": "next"}, "user")
    assert h.repair_dangling_tool_calls() == 1
    msgs = h.messages()
    assert msgs[3] == {"role": "tool", "tool_call_id": "b", "name": "read", "content": STUB_RESULT}
    assert h.repair_dangling_tool_calls() == 0


def test_undo_walks_past_injected_guard_messages():
    h = History()
    h.append({"role": "system", "content": "s"}, "system")
    h.append({"role": "user", "content": "first"}, "user")
    h.append({"role": "assistant", "content": "a"}, "assistant")
    h.append({"role": "user", "content": "second"}, "user")
    h.append({"role": "assistant", "content": "b"}, "assistant")
    h.append({"role": "user", "content": "[SYSTEM: CONTINUATION GUARD] ..."}, "guard")
    h.append({"role": "assistant", "content": "c"}, "assistant")
    assert h.undo_last_turn() == 4
    assert [m["content"] for m in h.messages()] == ["s", "first", "a"]


def test_transcript_clips_long_messages():
    text = render_transcript([{"role": "tool", "name": "bash", "content": "k" * 10_000}], per_message_chars=1000)
    assert "chars omitted" in text and len(text) < 1500


def test_the_tokenizer_loads_before_the_first_prompt(tmp_path):
    """A fresh process: once the session is running, the model's tokenizer is already
    loaded (it used to load inside the first turn, ~90 ms before the first request)."""
    import os
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    script = textwrap.dedent("""
        import asyncio, os, sys
        from pathlib import Path
        from agent.config import Config
        from agent.llm.runtime import get_litellm
        from agent.protocol import Shutdown
        from agent.session import Session

        async def main():
            get_litellm()
            import tiktoken.registry as registry
            assert not registry.ENCODINGS, registry.ENCODINGS
            s = Session(Config(), model_id="openai/some-model", cwd=Path(sys.argv[1]))
            s.start()
            for _ in range(500):
                await asyncio.sleep(0.01)
                if s._warm_task is not None and s._warm_task.done():
                    break
            print(sorted(registry.ENCODINGS))
            s.submit(Shutdown())
            await asyncio.wait_for(s._runner, 30)

        asyncio.run(main())
    """)
    env = {**os.environ, "MLINTERN_HOME": str(tmp_path / "home"), "OPENAI_API_KEY": "sk-test",
           "LITELLM_OFFLINE_MODE": "true"}
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env=env, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "cl100k_base" in proc.stdout or "o200k_base" in proc.stdout, proc.stdout
