"""A stored session as a trace: Claude Code's JSONL (what the Hub's Agent Trace Viewer reads;
reference ``claude-code-jsonl.md``) or readable Markdown.

The trace is made from the session's stored events, which are append-only: prompts
(``user_message``), each model request (``llm_call``: model, usage, finish reason), its text
(``assistant_message``) and tool calls, and every tool result, across resumes and compactions
(the conversation table only holds what the model still sees).

JSONL: one chain of ``uuid``/``parentUuid`` records. Each content block of a response is its
own ``assistant`` record, all sharing the response's ``message.id``; the response's usage is on
the first of them and zero on the others, so a reader that sums usage per record and one that
de-duplicates by ``message.id`` both count it once. A ``tool_result`` record points to the
record holding its ``tool_use``. A research sub-agent's run is a sidechain of its own
(``isSidechain``, ``agentId``), starting from its task. Record ids are derived from the session
and event numbers, so exporting the same session twice gives the same lines.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from agent.protocol import parse_event

VERSION = "mlintern-0.1"
_STOP = {"stop": "end_turn", "tool_calls": "tool_use", "length": "max_tokens", "content_filter": "refusal"}
#: events a trace is made of
TRACE_EVENTS = ("user_message", "llm_call", "assistant_message", "tool_call", "tool_output", "compacted",
                "error", "interrupted", "turn_complete", "resume_complete")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ts * 1000) % 1000:03d}Z"


@dataclass
class _Response:
    id: str
    model: str
    usage: dict[str, int]
    stop_reason: str | None
    request_id: str
    records: int = 0


@dataclass
class _Chain:
    session_id: str
    cwd: str
    sidechain: bool = False
    agent_id: str | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    leaf: str | None = None
    response: _Response | None = None
    tool_use_record: dict[str, str] = field(default_factory=dict)
    prompt_id: str | None = None

    def _uid(self, *parts: Any) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, "mlintern:" + ":".join(str(p) for p in (self.session_id, *parts))))

    def _record(self, kind: str, message: dict[str, Any], ts: float, key: tuple, **extra: Any) -> str:
        uid = self._uid(*key)
        record: dict[str, Any] = {"parentUuid": self.leaf, "isSidechain": self.sidechain}
        if self.agent_id:
            record["agentId"] = self.agent_id
        record.update({"type": kind, "message": message, "uuid": uid, "timestamp": _iso(ts), "userType": "external",
                       "entrypoint": "cli", "cwd": self.cwd, "sessionId": self.session_id, "version": VERSION})
        record.update(extra)
        self.lines.append(record)
        self.leaf = uid
        return uid

    def user(self, text: str, ts: float, key: tuple) -> None:
        self.prompt_id = self._uid("prompt", *key)
        self._record("user", {"role": "user", "content": text}, ts, key, promptId=self.prompt_id)

    def open_response(self, event: Any) -> None:
        u = event.usage
        plain = max(0, u.prompt_tokens - u.cache_read_tokens - u.cache_write_tokens)
        self.response = _Response(
            id=f"msg_{self._uid('msg', event.seq).replace('-', '')[:24]}",
            model=event.served_model or event.model,
            usage={"input_tokens": plain, "cache_creation_input_tokens": u.cache_write_tokens,
                   "cache_read_input_tokens": u.cache_read_tokens, "output_tokens": u.completion_tokens},
            stop_reason=_STOP.get(event.finish_reason or "", event.finish_reason),
            request_id=f"req_{event.seq}",
        )

    def assistant(self, block: dict[str, Any], ts: float, key: tuple) -> str:
        r = self.response
        if r is None:  # an answer without a recorded request (a session older than the event)
            r = self.response = _Response(id=f"msg_{self._uid('msg', *key).replace('-', '')[:24]}", model="unknown",
                                          usage={}, stop_reason=None, request_id="")
        usage = r.usage if r.records == 0 else {k: 0 for k in r.usage}
        r.records += 1
        message = {"id": r.id, "type": "message", "role": "assistant", "model": r.model, "content": [block],
                   "stop_reason": r.stop_reason, "stop_sequence": None,
                   "usage": usage or {"input_tokens": 0, "output_tokens": 0}}
        extra = {"requestId": r.request_id} if r.request_id else {}
        return self._record("assistant", message, ts, key, **extra)

    def tool_result(self, call_id: str, output: str, success: bool, ts: float, key: tuple) -> None:
        source = self.tool_use_record.get(call_id)
        block = {"tool_use_id": call_id, "type": "tool_result", "content": output, "is_error": not success}
        extra: dict[str, Any] = {"promptId": self.prompt_id} if self.prompt_id else {}
        if source:
            extra["sourceToolAssistantUUID"] = source
        self._record("user", {"role": "user", "content": [block]}, ts, key, **extra)

    def take(self, event: Any) -> None:
        key = (event.seq,)
        if event.type == "user_message":
            self.response = None
            self.user(event.text, event.ts, key)
        elif event.type == "llm_call":
            if event.error is None and event.kind in ("main", "research"):
                self.open_response(event)
        elif event.type == "assistant_message":
            if event.content:
                self.assistant({"type": "text", "text": event.content}, event.ts, key)
        elif event.type == "tool_call":
            uid = self.assistant({"type": "tool_use", "id": event.tool_call_id, "name": event.tool,
                                  "input": event.arguments}, event.ts, key)
            self.tool_use_record[event.tool_call_id] = uid
        elif event.type == "tool_output":
            self.tool_result(event.tool_call_id, event.output, event.success, event.ts, key)


@dataclass
class Trace:
    session_id: str
    lines: list[dict[str, Any]]
    #: agent id -> (records, meta) of each research sub-agent run
    sidechains: dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]

    def jsonl(self) -> str:
        return "".join(json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n" for line in self.lines)

    @staticmethod
    def dump(records: list[dict[str, Any]]) -> str:
        return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)


def load_events(store: Any, session_id: str) -> list[Any]:
    out = []
    for _seq, _type, body in store.events(session_id, TRACE_EVENTS):
        try:
            out.append(parse_event(body))
        except Exception:  # an event of a newer or broken kind is left out, not fatal
            continue
    return out


def claude_trace(session_id: str, cwd: str, events: list[Any]) -> Trace:
    main = _Chain(session_id, cwd)
    side: dict[str, _Chain] = {}
    tasks: dict[str, dict[str, Any]] = {}
    reports: dict[str, Any] = {}
    for event in events:
        parent = getattr(event, "parent_call_id", None)
        if parent is None:
            if event.type == "tool_call" and event.tool == "research":
                tasks[event.tool_call_id] = {"args": event.arguments, "ts": event.ts, "seq": event.seq}
            if event.type == "tool_output" and event.tool_call_id in tasks:
                reports[event.tool_call_id] = event
            main.take(event)
            continue
        chain = side.get(parent)
        if chain is None:
            agent_id = "a" + uuid.uuid5(uuid.NAMESPACE_URL, f"{session_id}:{parent}").hex[:16]
            chain = side[parent] = _Chain(session_id, cwd, sidechain=True, agent_id=agent_id)
            task = tasks.get(parent, {})
            args = task.get("args") or {}
            prompt = str(args.get("task") or "(research task)")
            if args.get("context"):
                prompt += "\n\n" + str(args["context"])
            chain.user(prompt, task.get("ts", event.ts), ("task", parent))
        chain.take(event)
    sidechains = {}
    for call_id, chain in side.items():
        report = reports.get(call_id)
        if report is not None:
            chain.response = None
            chain.assistant({"type": "text", "text": report.output}, report.ts, ("report", call_id))
        args = (tasks.get(call_id) or {}).get("args") or {}
        meta = {"agentType": "research", "description": str(args.get("task") or "")[:120], "toolUseId": call_id,
                "spawnDepth": 1}
        sidechains[chain.agent_id or call_id] = (chain.lines, meta)
    return Trace(session_id, main.lines, sidechains)


# --------------------------------------------------------------------------- Markdown


def _fence(text: str, limit: int = 60) -> str:
    lines = text.rstrip("\n").splitlines() or [""]
    if len(lines) > limit:
        lines = lines[:limit] + [f"… {len(lines) - limit} more lines"]
    body = "\n".join(lines)
    ticks = "```"
    while ticks in body:
        ticks += "`"
    return f"{ticks}\n{body}\n{ticks}"


def markdown(summary: Any, events: list[Any]) -> str:
    """The session for people: prompts, answers, tool calls with their results, notes."""
    out = [f"# {summary.title or summary.first_prompt or summary.id}", "",
           f"- session `{summary.id}` · model `{summary.model}` · `{summary.cwd}`",
           f"- started {_iso(summary.created)} · {summary.turns} turn{'s' if summary.turns != 1 else ''}"
           f" · spent ${summary.spend_usd:.4f}" + (" (some calls unpriced)" if summary.unknown_costs else ""), ""]
    turn = 0
    for event in events:
        if getattr(event, "parent_call_id", None):
            if event.type == "tool_call":
                out.append(f"  - research step: `{event.tool}` {json.dumps(event.arguments, ensure_ascii=False)[:200]}")
            continue
        if event.type == "user_message":
            if event.turn != turn:
                turn = event.turn
                out += [f"## Turn {turn}", ""]
            out += ["**You:**", "", event.text, ""]
        elif event.type == "assistant_message" and event.content:
            out += ["**Agent:**", "", event.content, ""]
        elif event.type == "tool_call":
            out += [f"▸ `{event.tool}` `{json.dumps(event.arguments, ensure_ascii=False)}`", ""]
        elif event.type == "tool_output":
            mark = "" if event.success else " (failed)"
            out += [f"Result of `{event.tool}`{mark}:", "", _fence(event.output), ""]
        elif event.type == "compacted":
            out += [f"> context compacted: {event.tokens_before:,} → {event.tokens_after:,} tokens", ""]
        elif event.type == "error":
            out += [f"> error: {event.message}", ""]
        elif event.type == "interrupted":
            out += ["> interrupted by the user", ""]
        elif event.type == "resume_complete":
            out += ["> session resumed", ""]
        elif event.type == "turn_complete" and event.receipt is not None:
            r = event.receipt
            cost = f"${r.llm_cost_usd:.4f}" + (f" + {r.unknown_cost_calls} unpriced" if r.unknown_cost_calls else "")
            out += [f"*turn {event.turn}: {r.usage.prompt_tokens:,} in / {r.usage.completion_tokens:,} out tokens, "
                    f"{r.llm_calls} model call{'s' if r.llm_calls != 1 else ''}, {cost}*", ""]
    return "\n".join(out).rstrip() + "\n"
