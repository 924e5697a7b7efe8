"""Per-message work of a request done once per message (agent/llm/round_memo.py), and the
request body built from it: the same JSON as encoding the whole body, whatever the history
went through between two requests."""

from __future__ import annotations

import json

from agent.llm.client import _wire_message
from agent.llm.direct import DirectStreamer
from agent.llm.round_memo import RoundMemo


def _history(n: int) -> list[dict]:
    out: list[dict] = [{"role": "system", "content": "You are an ML engineer."},
                       {"role": "user", "content": "Check every note — ünïcode too."}]
    for i in range(n):
        out.append({"role": "assistant", "content": f"step {i}", "tool_calls": [
            {"id": f"c{i}", "type": "function", "function": {"name": "read", "arguments": json.dumps({"path": f"n{i}"})}}]})
        out.append({"role": "tool", "tool_call_id": f"c{i}", "name": "read", "content": f"note {i}\n" * 3})
    return out


def _body(messages: list[dict]) -> dict:
    return {"model": "m", "messages": messages, "stream": True, "stream_options": {"include_usage": True},
            "tools": [{"type": "function", "function": {"name": "read", "parameters": {"type": "object"}}}]}


def test_derive_makes_each_message_once_while_it_stays():
    made: list[dict] = []
    memo = RoundMemo(lambda m: made.append(m) or len(made))
    history = _history(3)
    first = memo.derive(history)
    assert len(made) == len(history)
    history.append({"role": "user", "content": "and one more"})
    second = memo.derive(history)
    assert second[:-1] == first and len(made) == len(history)  # only the new message was made


def test_derive_follows_replaced_and_removed_messages():
    memo = RoundMemo(json.dumps)
    history = _history(4)
    memo.derive(history)
    # compaction style: a message replaced by a changed copy, and the tail undone
    history[3] = {**history[3], "content": "[shrunk]"}
    del history[6:]
    out = memo.derive(history)
    assert out == [json.dumps(m) for m in history]
    assert len(memo) == len(history)  # the undone messages are not kept


def test_an_equal_but_different_object_is_derived_again():
    calls = []
    memo = RoundMemo(lambda m: calls.append(1) or dict(m))
    message = {"role": "user", "content": "x"}
    memo.derive([message])
    memo.derive([dict(message)])
    assert len(calls) == 2


def test_encoded_body_is_the_body_across_rounds():
    streamer = DirectStreamer(pace_s=0)
    history = _history(5)
    for round_ in range(4):
        payload = streamer.encode(_body(history))
        assert json.loads(payload) == _body(history)
        if round_ == 1:
            history[4] = {**history[4], "content": "[content removed during compaction]"}
        history.append({"role": "assistant", "content": f"round {round_} — done"})
    assert json.loads(streamer.encode({"model": "m"})) == {"model": "m"}
    assert json.loads(streamer.encode({"messages": history[:2]})) == {"messages": history[:2]}


def test_wire_tool_messages_keep_their_identity_between_requests():
    # the body encoder recognises a message by identity: a tool result's wire form (a new dict
    # without "name") must be the same object in the next request, or it is encoded again
    memo = RoundMemo(_wire_message)
    history = _history(2)
    first, second = memo.derive(history), memo.derive(history + [{"role": "user", "content": "next"}])
    tool = [i for i, m in enumerate(history) if m["role"] == "tool"]
    assert all(first[i] is second[i] and "name" not in first[i] for i in tool)


def test_an_insertion_above_keeps_the_values_below():
    made: list[dict] = []
    memo = RoundMemo(lambda m: made.append(m) or json.dumps(m))
    history = _history(5)
    memo.derive(history)
    made.clear()
    history.insert(1, {"role": "system", "content": "a pinned note"})  # everything below moves down
    assert memo.derive(history) == [json.dumps(m) for m in history]
    assert made == [history[1]]  # only the inserted message was made
    out = memo.derive(history)
    out.append("a caller's own change")  # the list handed out is the caller's
    assert memo.derive(history) == [json.dumps(m) for m in history]


def test_forget_after_an_edit_in_place():
    """A heal that strips refused blocks from the history's own dicts makes the memo forget."""
    memo = RoundMemo(json.dumps)
    history = _history(2)
    memo.derive(history)
    history[2].pop("tool_calls")  # edited in place: the same object, different JSON
    assert memo.derive(history)[2] != json.dumps(history[2])  # why the edit must be followed by forget()
    memo.forget()
    assert memo.derive(history) == [json.dumps(m) for m in history]
