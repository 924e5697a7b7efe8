"""The conversation as the model sees it, plus what we know about each message.

Messages are plain OpenAI chat dicts (what litellm sends). Our own bookkeeping - what kind
of message it is (a real user prompt vs an injected guard), its token count, what the LLM
call that produced it cost - lives beside it in an ``Entry``, never inside the dict, so no
provider ever sees an unknown field.
"""

from __future__ import annotations

import json
import operator
from itertools import repeat
from dataclasses import dataclass, field
from typing import Any, Callable, Literal

from agent.llm.round_memo import RoundMemo

EntryKind = Literal["system", "user", "guard", "summary", "assistant", "tool", "note"]

STUB_RESULT = "Tool was not executed (interrupted or error)."

_MESSAGE = operator.attrgetter("message")
_ROLE = operator.methodcaller("get", "role")


@dataclass
class Entry:
    message: dict[str, Any]
    kind: EntryKind
    tokens: int | None = None
    #: for assistant entries: what the LLM call that produced them cost
    cost_usd: float | None = None
    llm_tokens: int = 0
    turn: int = 0


def message_text(message: dict[str, Any]) -> str:
    """All the text of a message (content blocks flattened), for counting and rendering."""
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                parts.append(str(block.get("text") or block.get("content") or ""))
            else:
                parts.append(str(block))
        text = "\n".join(parts)
    else:
        text = str(content)
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        text += f"\n{fn.get('name', '')}({fn.get('arguments', '')})"
    return text


@dataclass
class History:
    entries: list[Entry] = field(default_factory=list)
    counter: Callable[[dict[str, Any]], int] | None = None
    #: where the last repair saw the newest batch of tool calls, and its entry: everything before
    #: it had one result per call. The next repair starts there while that entry is still at that
    #: index (an entry added or removed above it moves it, and the scan starts over)
    _checked: tuple[int, Entry] | None = field(default=None, init=False, repr=False, compare=False)
    #: each entry's token count as the last ``total_tokens`` saw it: the next one counts only
    #: the entries that are new since (a request's history grows by a message or two a round)
    _token_memo: RoundMemo[int] | None = field(default=None, init=False, repr=False, compare=False)

    # ------------------------------------------------------------------ building

    def append(self, message: dict[str, Any], kind: EntryKind, **meta: Any) -> Entry:
        entry = Entry(message=message, kind=kind, **meta)
        self.entries.append(entry)
        return entry

    def messages(self) -> list[dict[str, Any]]:
        return list(map(_MESSAGE, self.entries))  # in C: every request reads the whole history

    def __len__(self) -> int:
        return len(self.entries)

    def set_system(self, text: str) -> None:
        if self.entries and self.entries[0].kind == "system":
            self.entries[0] = Entry({"role": "system", "content": text}, "system")
        else:
            self.entries.insert(0, Entry({"role": "system", "content": text}, "system"))

    # ------------------------------------------------------------------ tokens

    def tokens_of(self, entry: Entry) -> int:
        if entry.tokens is None:
            entry.tokens = self.counter(entry.message) if self.counter else approx_tokens(entry.message)
        return entry.tokens

    def total_tokens(self) -> int:
        if self._token_memo is None:
            self._token_memo = RoundMemo(self.tokens_of)
        return sum(self._token_memo.derive(self.entries))

    def recount(self) -> None:
        self._token_memo = None
        for e in self.entries:
            e.tokens = None

    # ------------------------------------------------------------------ repair

    def repair_dangling_tool_calls(self, skip_ids: set[str] | frozenset[str] = frozenset()) -> int:
        """Give every assistant tool call exactly one result, directly after its message.

        Providers reject a history where a call has no result (after an interrupt, a crash
        or an abandoned approval) or two results for one id. Calls in ``skip_ids`` (still
        waiting for the user's approval) are left alone. Returns how many stubs were
        inserted.
        """
        inserted = 0
        i = 0
        mark = self._checked
        if mark is not None and mark[0] < len(self.entries) and self.entries[mark[0]] is mark[1]:
            # the calls above it had their results; entries replaced in place since (compaction's
            # shrunk copies, a call's edited arguments) keep their call ids, so those pairs hold
            i = mark[0]
        while i < len(self.entries):
            msg = self.entries[i].message
            calls = msg.get("tool_calls") if msg.get("role") == "assistant" else None
            if not calls:
                i += 1
                continue
            self._checked = (i, self.entries[i])
            j = i + 1
            seen: set[str] = set()
            while j < len(self.entries) and self.entries[j].message.get("role") == "tool":
                call_id = self.entries[j].message.get("tool_call_id", "")
                if call_id in seen:  # a second result for one call: keep the first
                    del self.entries[j]
                    continue
                seen.add(call_id)
                j += 1
            if j == len(self.entries) and skip_ids & {c.get("id") for c in calls}:
                i = j  # the newest batch is waiting for approval; its results come later
                continue
            for call in calls:
                if call.get("id") not in seen and call.get("id") not in skip_ids:
                    self.entries.insert(j, Entry(
                        {"role": "tool", "tool_call_id": call.get("id"), "name": call.get("function", {}).get("name", ""),
                         "content": STUB_RESULT},
                        "tool", turn=self.entries[i].turn,
                    ))
                    j += 1
                    inserted += 1
            i = j
        return inserted

    # ------------------------------------------------------------------ undo

    def undo_last_turn(self) -> int:
        """Remove everything from the last real user prompt on. Injected guard and summary
        messages are not prompts, so undo walks past them (reference §12.17)."""
        for idx in range(len(self.entries) - 1, -1, -1):
            if self.entries[idx].kind == "user":
                removed = len(self.entries) - idx
                del self.entries[idx:]
                return removed
        return 0


def for_request(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages as sent to the provider: consecutive plain-text user messages (a prompt
    followed by an injected guard or a compaction summary) are joined into one, because
    chat templates that demand strict user/assistant alternation reject two in a row."""
    user = list(map(operator.eq, map(_ROLE, messages), repeat("user")))
    if not any(map(operator.and_, user, user[1:])):  # the usual history, found in C
        return list(messages)
    out: list[dict[str, Any]] = []
    for m in messages:
        prev = out[-1] if out else None
        if (prev is not None and m.get("role") == "user" and prev.get("role") == "user"
                and isinstance(m.get("content"), str) and isinstance(prev.get("content"), str)):
            out[-1] = {**prev, "content": prev["content"] + "\n\n" + m["content"]}
        else:
            out.append(m)
    return out


def approx_tokens(message: dict[str, Any]) -> int:
    return max(1, len(message_text(message)) // 4) + 4


def to_json(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages, ensure_ascii=False)
