"""The dangling-call repair starts where the last one saw the newest batch of calls
(``History._checked``): whatever happens to the history between two repairs, the result is the
one a repair from the first entry gives."""

from __future__ import annotations

import copy
import dataclasses
import random

from agent.history import STUB_RESULT, Entry, History


def _full_repair(entries: list[Entry], skip: set[str]) -> list[dict]:
    fresh = History(entries=copy.deepcopy(entries))
    fresh.repair_dangling_tool_calls(skip_ids=skip)
    return [e.message for e in fresh.entries]


def _step(h: History, rng: random.Random, ids: list[int]) -> None:
    """One thing a session does to its history between two repairs."""
    op = rng.choice(["batch", "batch", "results", "user", "undo", "compact", "shrink", "system", "duplicate"])
    entries = h.entries
    if op == "batch":
        calls = []
        for _ in range(rng.randint(1, 3)):
            ids[0] += 1
            calls.append({"id": f"c{ids[0]}", "type": "function", "function": {"name": "bash", "arguments": "{}"}})
        h.append({"role": "assistant", "content": "", "tool_calls": calls}, "assistant")
        for call in calls:
            if rng.random() < 0.7:  # some calls get their result, some never do (an interrupt)
                h.append({"role": "tool", "tool_call_id": call["id"], "name": "bash", "content": "ok"}, "tool")
    elif op == "results":
        batches = [e for e in entries if e.message.get("tool_calls")]
        if batches:  # a late result for the newest batch (an approval answered)
            call = rng.choice(batches[-1].message["tool_calls"])
            h.append({"role": "tool", "tool_call_id": call["id"], "name": "bash", "content": "late"}, "tool")
    elif op == "user":
        h.append({"role": "user", "content": "next"}, "user")
    elif op == "undo":
        h.undo_last_turn()
    elif op == "compact" and len(entries) > 4:
        # a unit (a message, or a call with its results) leaves from the middle, a summary comes
        start = rng.randrange(1, len(entries) - 2)
        end = start + 1
        while end < len(entries) and entries[end].message.get("role") == "tool":
            end += 1
        if entries[start].message.get("role") != "tool":
            entries[start:end] = [Entry({"role": "user", "content": "[summary]"}, "summary")]
    elif op == "shrink" and entries:
        i = rng.randrange(len(entries))  # compaction's shrunk copy: same calls, new content
        entries[i] = dataclasses.replace(entries[i], message={**entries[i].message, "content": "[shrunk]"})
    elif op == "system":
        h.set_system(f"system {rng.random()}")
    elif op == "duplicate":
        tools = [e for e in entries if e.message.get("role") == "tool"]
        if tools and entries[-1].message.get("role") == "tool":
            h.append(dict(tools[-1].message), "tool")  # a second result for one call


def test_repairs_from_the_mark_equal_repairs_from_the_top():
    rng = random.Random(7)
    for _ in range(60):
        h = History()
        h.append({"role": "user", "content": "go"}, "user")
        ids = [0]
        for _ in range(40):
            _step(h, rng, ids)
            batches = [e for e in h.entries if e.message.get("tool_calls")]
            waiting = {c["id"] for c in batches[-1].message["tool_calls"]} if batches and rng.random() < 0.3 else set()
            expected = _full_repair(h.entries, waiting)
            h.repair_dangling_tool_calls(skip_ids=waiting)
            assert [e.message for e in h.entries] == expected


def test_the_repair_starts_at_the_newest_batch():
    h = History()
    h.append({"role": "user", "content": "go"}, "user")
    for n in range(50):
        h.append({"role": "assistant", "content": "", "tool_calls": [
            {"id": f"c{n}", "type": "function", "function": {"name": "bash", "arguments": "{}"}}]}, "assistant")
        h.append({"role": "tool", "tool_call_id": f"c{n}", "name": "bash", "content": "ok"}, "tool")
    assert h.repair_dangling_tool_calls() == 0
    newest = h.entries[-2]
    assert h._checked == (len(h.entries) - 2, newest)
    # a call above the mark losing its result without the mark moving is not something the
    # session does; the repair does not look there again (that is the saving)
    h.entries[2] = dataclasses.replace(h.entries[2], message={"role": "user", "content": "not a result"})
    assert h.repair_dangling_tool_calls() == 0
    # an entry removed above the mark moves it: the whole history is checked again
    del h.entries[3]
    assert h.repair_dangling_tool_calls() == 1 and h.entries[2].message["content"] == STUB_RESULT
