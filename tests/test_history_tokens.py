"""The history's token total and the request's messages: worked out from what changed since
the last request (agent/history.py), and still right after any kind of change."""

from __future__ import annotations

from agent.history import Entry, History, approx_tokens, for_request


def msg(role: str, text: str) -> dict:
    return {"role": role, "content": text}


def fresh_total(history: History) -> int:
    return sum((history.counter or approx_tokens)(e.message) for e in history.entries)


def test_the_total_follows_appends_replacements_removals_and_a_new_counter():
    h = History()
    for i in range(40):
        h.append(msg("user" if i % 2 == 0 else "assistant", "word " * (i + 1)), "user" if i % 2 == 0 else "assistant")
    assert h.total_tokens() == fresh_total(h)
    h.append(msg("assistant", "a longer reply " * 30), "assistant")  # a round: one more message
    assert h.total_tokens() == fresh_total(h)
    h.entries[5] = Entry(msg("user", "shrunk"), "user")  # compaction's copy, in place
    assert h.total_tokens() == fresh_total(h)
    del h.entries[10:12]  # undo, a dropped duplicate result
    assert h.total_tokens() == fresh_total(h)
    h.entries.insert(3, Entry(msg("tool", "stub " * 50), "tool"))  # a repaired call's stub
    assert h.total_tokens() == fresh_total(h)
    h.entries = h.entries[:7]  # a new list altogether
    assert h.total_tokens() == fresh_total(h)
    h.counter = lambda message: 1000  # another model's tokenizer
    h.recount()
    assert h.total_tokens() == 1000 * len(h.entries) == fresh_total(h)


def test_only_consecutive_user_texts_are_joined_and_the_list_is_never_the_callers():
    plain = [msg("system", "s"), msg("user", "a"), msg("assistant", "b"), msg("user", "c")]
    out = for_request(plain)
    assert out == plain and out is not plain
    joined = for_request(plain + [msg("user", "guard note"), msg("assistant", "d")])
    assert [m["content"] for m in joined] == ["s", "a", "b", "c\n\nguard note", "d"]
    assert plain[-1]["content"] == "c"  # joined into a new dict
    blocks = [msg("user", "a"), {"role": "user", "content": [{"type": "text", "text": "b"}]}]
    assert for_request(blocks) == blocks  # only plain text is joined
    odd = [{"content": "no role"}, {"content": "none either"}, msg("user", "a")]
    assert for_request(odd) == odd  # a message without a role is never taken for a user's
