"""Counting the context before every call, and compacting it when it gets too big.

Compaction is role-agnostic (reference §12.1): it keeps the system prompt and the first user
message, keeps a recent tail chosen by token budget (an assistant tool call and its results
are one unit, never split), asks the model to summarise the middle, and replaces any single
message over ``oversize_tokens`` with a placeholder. A long autonomous run with one prompt
shrinks like any other. When the summary is not enough - or cannot be made - it falls back
to harder truncation; it never ends the session.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from agent.history import Entry, History, approx_tokens, message_text

Summariser = Callable[[list[dict[str, Any]]], Awaitable[str]]


class TokenCounter:
    """litellm's tokenizer for the model, per message, falling back to chars/4.

    ``tokenizer=False`` (a model litellm does not serve: local and OpenAI-compatible servers,
    the Hugging Face router) counts chars/4 and never loads litellm: its tokenizer would
    guess the server's anyway (a Llama or Qwen model is not counted with tiktoken's table),
    and loading it costs seconds and ~150 MB. The server's own usage report is what costs
    and the context meter show after each call."""

    def __init__(self, litellm_model: str, *, tokenizer: bool = True):
        self.litellm_model = litellm_model
        self.tokenizer = tokenizer
        self._tools_cache: tuple[int, int] | None = None
        self.warm = not tokenizer

    def __call__(self, message: dict[str, Any]) -> int:
        if not self.tokenizer:
            return approx_tokens(message)
        try:
            from agent.llm.runtime import get_litellm

            return int(get_litellm().token_counter(model=self.litellm_model, messages=[message]))
        except Exception:
            return approx_tokens(message)

    def warm_up(self) -> None:
        """Count once, so the tokenizer (tiktoken's encoding: ~90 ms, tens of MB) loads now -
        in a background thread at start-up - rather than at the start of the first turn.
        The model's own tokenizer: loading another would only cost memory."""
        if not self.warm:
            self({"role": "user", "content": "warm up"})
            self.warm = True

    def tools(self, specs: list[dict[str, Any]]) -> int:
        key = id(specs)
        if self._tools_cache and self._tools_cache[0] == key:
            return self._tools_cache[1]
        text = json.dumps(specs)
        n = len(text) // 4
        if self.tokenizer:
            try:
                from agent.llm.runtime import get_litellm

                n = int(get_litellm().token_counter(model=self.litellm_model, text=text))
            except Exception:
                pass
        self._tools_cache = (key, n)
        return n


@dataclass
class CompactionReport:
    tokens_before: int
    tokens_after: int
    messages_before: int
    messages_after: int
    method: str  # "summary" | "truncation" | "none"
    detail: str
    #: the summary that replaced the middle of the conversation ("" when none was made)
    summary: str = ""
    #: the messages that were summarised or dropped, one line each
    dropped: list[str] | None = None


def _head_end(entries: list[Entry]) -> int:
    """The end of what every compaction keeps at the start: the system prompt and the first
    user message when it comes right after it."""
    head_end = 1 if entries and entries[0].kind == "system" else 0
    first_user = next((i for i in range(head_end, len(entries)) if entries[i].kind == "user"), None)
    if first_user is not None and first_user == head_end:
        head_end = first_user + 1
    return head_end


def describe(entry: Entry, chars: int = 100) -> str:
    """One line for a message, for the compaction ledger and its preview."""
    msg = entry.message
    role = msg.get("role", "?")
    if msg.get("tool_calls"):
        calls = ", ".join(f"{(c.get('function') or {}).get('name', '?')} {str((c.get('function') or {}).get('arguments', ''))[:40]}"
                          for c in msg["tool_calls"])
        return f"assistant → {calls}"[:chars]
    text = " ".join(message_text({"content": msg.get("content")}).split())
    who = {"tool": f"result of {msg.get('name') or 'a tool'}", "user": "user" if entry.kind == "user" else entry.kind}.get(role, role)
    return f"{who}: {text}"[:chars]


@dataclass
class CompactionPlan:
    """What a compaction would do now: the messages it would summarise and the ones it keeps."""

    summarise: list[str]
    keep: list[str]
    tokens: int
    threshold: int


SUMMARY_SYSTEM = (
    "You condense the working log of an autonomous ML-engineering agent so it can continue "
    "its task with less context. Write a faithful, dense summary in Markdown. Keep: the goal "
    "and constraints the user gave; decisions taken and why; what was tried and failed (so it "
    "is not retried); facts learned (dataset columns, model ids, versions, hyper-parameters, "
    "metrics with their numbers); files created or changed with their paths; jobs launched "
    "with their ids and status; open problems and the next steps. Omit chit-chat. Do not call "
    "tools. Do not invent anything that is not in the log."
)


def _units(entries: list[Entry], start: int) -> list[tuple[int, int]]:
    """Split entries[start:] into (begin, end) ranges; an assistant tool call and the tool
    results that follow it form one range."""
    units = []
    i = start
    n = len(entries)
    while i < n:
        j = i + 1
        if entries[i].message.get("role") == "assistant" and entries[i].message.get("tool_calls"):
            while j < n and entries[j].message.get("role") == "tool":
                j += 1
        units.append((i, j))
        i = j
    return units


def _placeholder(entry: Entry, tokens: int, limit: int) -> Entry:
    """Shrink one message to about half of ``limit`` tokens, saying what was removed.

    Text content keeps its head; tool-call arguments that are too big (a 400 KB ``write``)
    are replaced by a small valid JSON note, so the call/result pairing stays intact."""
    msg = dict(entry.message)
    keep_chars = limit * 2  # about half the token limit, at ~4 chars a token
    text = message_text({"content": msg.get("content")})
    if len(text) > keep_chars:
        note = (
            f"[content removed during compaction: the message was {tokens:,} tokens, over the "
            f"{limit:,}-token limit for one message]"
        )
        msg["content"] = f"{text[:keep_chars]}\n{note}" if keep_chars else note
    if msg.get("tool_calls"):
        calls = []
        for call in msg["tool_calls"]:
            fn = dict(call.get("function", {}))
            args = str(fn.get("arguments", ""))
            if len(args) > keep_chars:
                fn["arguments"] = json.dumps({"_removed_during_compaction": f"{len(args):,} characters of arguments"})
            calls.append({**call, "function": fn})
        msg["tool_calls"] = calls
    return Entry(msg, entry.kind, None, entry.cost_usd, entry.llm_tokens, entry.turn)


def render_transcript(messages: list[dict[str, Any]], per_message_chars: int = 4000) -> str:
    lines = []
    for m in messages:
        role = m.get("role", "?")
        text = message_text({"content": m.get("content")})
        if len(text) > per_message_chars:
            half = per_message_chars // 2
            text = f"{text[:half]}\n[... {len(text) - per_message_chars:,} chars omitted ...]\n{text[-half:]}"
        if role == "tool":
            lines.append(f"TOOL RESULT ({m.get('name') or m.get('tool_call_id')}):\n{text}")
        else:
            lines.append(f"{role.upper()}:\n{text}")
        for call in m.get("tool_calls") or []:
            fn = call.get("function", {})
            args = str(fn.get("arguments", ""))
            if len(args) > per_message_chars:
                args = args[:per_message_chars] + " [...]"
            lines.append(f"  -> called {fn.get('name')}({args})")
    return "\n\n".join(lines)


class ContextManager:
    def __init__(
        self,
        history: History,
        window: int,
        *,
        threshold_ratio: float = 0.9,
        tail_ratio: float = 0.25,
        oversize_tokens: int = 40_000,
        tools_tokens: Callable[[], int] = lambda: 0,
    ):
        self.history = history
        self.window = window
        self.threshold_ratio = threshold_ratio
        self.tail_ratio = tail_ratio
        self.oversize_tokens = oversize_tokens
        self.tools_tokens = tools_tokens

    @property
    def threshold(self) -> int:
        return int(self.window * self.threshold_ratio)

    def usage(self) -> int:
        return self.history.total_tokens() + self.tools_tokens()

    def needs_compaction(self) -> bool:
        return self.usage() > self.threshold

    # ------------------------------------------------------------------ compaction

    async def compact(self, summarise: Summariser, *, force: bool = False) -> CompactionReport:
        h = self.history
        before_tokens, before_count = self.usage(), len(h)
        if not force and before_tokens <= self.threshold:
            return CompactionReport(before_tokens, before_tokens, before_count, before_count, "none", "under threshold")
        entries = h.entries
        head_end = _head_end(entries)
        # 1. oversize messages become placeholders (system prompt excepted)
        limit = self._oversize_limit()
        replaced = 0
        for i in range(1 if entries and entries[0].kind == "system" else 0, len(entries)):
            t = h.tokens_of(entries[i])
            if t > limit:
                entries[i] = _placeholder(entries[i], t, limit)
                replaced += 1
        # 2. the recent tail, by token budget, whole units only
        tail_start = self._tail_start(entries, head_end, h.tokens_of)
        middle = entries[head_end:tail_start]
        dropped = [describe(e) for e in middle]
        summary_text = ""
        method, detail = ("truncation", f"{replaced} oversized message(s) replaced") if replaced else ("none", "")
        if middle:
            summary_entry: Entry
            try:
                summary = (await summarise([e.message for e in middle])).strip()
                if not summary:
                    raise ValueError("the model returned an empty summary")
                summary_text = summary
                summary_entry = Entry(
                    {"role": "user", "content": f"[CONTEXT SUMMARY: {len(middle)} earlier messages were compacted into this summary]\n\n{summary}"},
                    "summary",
                )
                method, detail = "summary", f"{len(middle)} messages summarised" + (f", {replaced} oversized replaced" if replaced else "")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # no summary: drop the middle but say so, never die
                summary_entry = Entry(
                    {"role": "user", "content": (
                        f"[CONTEXT NOTE: {len(middle)} earlier messages were removed to fit the context window; "
                        f"a summary could not be made ({type(exc).__name__}: {str(exc)[:200]}). Re-check files and "
                        "job status before relying on earlier results.]"
                    )},
                    "summary",
                )
                method, detail = "truncation", f"{len(middle)} messages dropped (summary failed: {str(exc)[:120]})"
            entries[head_end:tail_start] = [summary_entry]
        # 3. still too big: cut tool outputs, then drop the oldest tail units
        if self.usage() > self.threshold:
            detail += "; " + self._harder_truncation(head_end)
            method = "truncation" if method == "none" else method + "+truncation"
        after = self.usage()
        return CompactionReport(before_tokens, after, before_count, len(h),
                                method if method in ("summary", "truncation", "none") else "truncation",
                                detail.strip("; "), summary_text, dropped)

    def plan(self) -> CompactionPlan:
        """What ``compact`` would summarise and keep if it ran now (nothing is changed)."""
        h = self.history
        entries = h.entries
        head_end = _head_end(entries)
        limit = self._oversize_limit()
        # an oversize message would be a placeholder of ``limit`` tokens by then
        tail_start = self._tail_start(entries, head_end, lambda e: min(h.tokens_of(e), limit))
        skip = 1 if entries and entries[0].kind == "system" else 0
        return CompactionPlan(
            summarise=[describe(e) for e in entries[head_end:tail_start]],
            keep=[describe(e) for e in entries[skip:head_end] + entries[tail_start:]],
            tokens=self.usage(), threshold=self.threshold)

    def _oversize_limit(self) -> int:
        """A single message above this many tokens becomes a placeholder."""
        return min(self.oversize_tokens, max(1_000, self.window // 4))

    def _tail_start(self, entries: list[Entry], head_end: int, size_of: Callable[[Entry], int]) -> int:
        """Where the recent tail kept through a compaction starts: whole units from the end
        while they fit the tail budget (the last unit always)."""
        budget = int(self.window * self.tail_ratio)
        tail_start, used = len(entries), 0
        for begin, end in reversed(_units(entries, head_end)):
            size = sum(size_of(e) for e in entries[begin:end])
            if used + size > budget and tail_start < len(entries):
                break
            used += size
            tail_start = begin
        return tail_start

    def _harder_truncation(self, head_end: int) -> str:
        h = self.history
        entries = h.entries
        steps = []
        for cap in (2_000, 500):
            if self.usage() <= self.threshold:
                break
            cut = 0
            for i in range(head_end, len(entries)):
                t = h.tokens_of(entries[i])
                if t > cap and entries[i].kind in ("tool", "assistant", "note", "summary"):
                    entries[i] = _placeholder(entries[i], t, cap)
                    cut += 1
            if cut:
                steps.append(f"{cut} message(s) cut to {cap} tokens")
        dropped = 0
        while self.usage() > self.threshold:
            units = _units(entries, head_end)
            # keep the last unit and any summary entry; drop the oldest other unit
            candidates = [u for u in units[:-1] if entries[u[0]].kind != "summary"]
            if not candidates:
                break
            begin, end = candidates[0]
            dropped += end - begin
            del entries[begin:end]
        if dropped:
            steps.append(f"{dropped} oldest message(s) dropped")
        if self.usage() > self.threshold:
            # last resort: the first prompt and the final unit themselves are too big
            for i in range(1 if entries and entries[0].kind == "system" else 0, len(entries)):
                t = h.tokens_of(entries[i])
                cap = max(200, self.threshold // (4 * max(1, len(entries))))
                if t > cap:
                    entries[i] = _placeholder(entries[i], t, cap)
            steps.append("every message cut to fit")
        return ", ".join(steps)
