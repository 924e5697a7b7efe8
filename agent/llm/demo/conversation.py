"""Reading the conversation: what the demo has already asked for and what came back.

The demo keeps no state of its own (one provider instance serves every session, and
resuming or undoing must need nothing special), so every step starts here: the messages
litellm hands the provider are read into the tool calls made so far, each with its result,
the last request a person typed and the job monitor's notes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from agent.llm.demo.outputs import JobNote, Launched, launched_job, parse_note
from agent.llm.demo.prose import DEMO_MARK, REPORT_PREFIX

CALL_ID_PREFIX = "call_demo_"  # how the demo's own calls, and so its earlier runs, are recognised

# How the engine, the router and the tools word a call that did not do its job. A rejection
# is only recognised in the first few words: a path such as .../test_rejected/ must not count.
_REJECTED = re.compile(
    r"^\W*(?:[\w'-]+\s+){0,6}?(?:cancell?ed by (?:the )?user|rejected|declined|denied)\b", re.I
)
_FAILED = re.compile(
    r"\bnot executed\b|\bnot run\b|\btimed out\b|\bkilled by signal\b"
    r"|Traceback \(most recent call last\)|\bexit (?:code|status)[:= ]*-?[1-9]",
    re.I,
)
#: user-role messages nobody typed: the engine's guards and the job monitor's notes
_INJECTED = ("[SYSTEM", "[JOB UPDATE]")


def field_value(obj: Any, key: str, default: Any = None) -> Any:
    """``key`` of a message, tool call or tool spec, which arrive as dicts or as litellm objects."""
    if isinstance(obj, dict):
        return obj.get(key, default)
    return getattr(obj, key, default)


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p if isinstance(p, str) else field_value(p, "text") for p in content]
        return "\n".join(p for p in parts if isinstance(p, str))
    return str(content)


def _is_request(message: Any) -> bool:
    """A message a person typed, not a guard's or the job monitor's note."""
    if field_value(message, "role") != "user":
        return False
    text = _text(field_value(message, "content")).strip()
    return bool(text) and not text.startswith(_INJECTED)


@dataclass
class Call:
    id: str
    name: str
    args: dict[str, Any]
    result: str | None = None  # None: no tool message answered this call
    at: int = 0  # index of the assistant message that made it

    @property
    def kind(self) -> str:
        if self.name == "bash":
            return "wait" if str(self.args.get("command", "")).lstrip().startswith("sleep ") else "env"
        if self.name == "read":
            return "read_script"
        if self.name == "hf_jobs":
            return {"run": "launch", "inspect": "inspect", "logs": "logs"}.get(self.args.get("operation"), "hf_jobs")
        return self.name

    @property
    def rejected(self) -> bool:
        return self.result is not None and bool(_REJECTED.match(self.result))

    @property
    def failed(self) -> bool:
        if self.result is None or self.rejected:
            return True
        head = self.result.lstrip()[:20].lower()
        if self.name == "hf_jobs":  # the rest is the job's own output: a job's failure is not the call's
            return head.startswith("error")
        return head.startswith(("error", "failed")) or bool(_FAILED.search(self.result))

    @property
    def job(self) -> Launched | None:
        """The job of a launch the backend accepted."""
        return launched_job(self.result) if self.kind == "launch" and not self.failed else None


def _calls(messages: list[Any], results: dict[str, str]) -> list[Call]:
    out = []
    for at, m in enumerate(messages):
        if field_value(m, "role") != "assistant":
            continue
        for tc in field_value(m, "tool_calls") or []:
            fn = field_value(tc, "function") or {}
            call_id = str(field_value(tc, "id") or "")
            try:
                args = json.loads(field_value(fn, "arguments") or "{}")
            except (TypeError, ValueError):
                args = {}
            out.append(Call(call_id, str(field_value(fn, "name") or ""),
                            args if isinstance(args, dict) else {}, results.get(call_id), at))
    return out


@dataclass
class Conversation:
    request: str | None  # the last real user message
    first_request: str
    anchor: int  # its index (-1: none)
    calls: list[Call]  # every tool call, with its result
    answered: bool  # a text-only assistant answer already followed the request
    earlier_demo_run: bool
    notes: dict[str, JobNote]  # job id -> the monitor's note that it ended
    reports: list[int]  # indices of the demo's closing reports (results or failure)

    @classmethod
    def read(cls, messages: list[Any]) -> Conversation:
        msgs = [m for m in messages if m is not None]
        anchors = [i for i, m in enumerate(msgs) if _is_request(m)]
        anchor = anchors[-1] if anchors else -1
        results = {
            str(field_value(m, "tool_call_id") or ""): _text(field_value(m, "content"))
            for m in msgs if field_value(m, "role") == "tool"
        }
        calls = _calls(msgs, results)
        texts = [(i, _text(field_value(m, "content")).strip()) for i, m in enumerate(msgs)
                 if field_value(m, "role") == "assistant" and not field_value(m, "tool_calls")]
        notes = {}
        for m in msgs:
            if field_value(m, "role") == "user" and (note := parse_note(_text(field_value(m, "content")))):
                notes[note.job_id] = note
        earlier_demo = any(c.id.startswith(CALL_ID_PREFIX) for c in calls if c.at < anchor) or any(
            i < anchor and DEMO_MARK in text for i, text in texts)
        return cls(
            request=_text(field_value(msgs[anchor], "content")).strip() if anchors else None,
            first_request=_text(field_value(msgs[anchors[0]], "content")).strip() if anchors else "",
            anchor=anchor,
            calls=calls,
            answered=anchors != [] and any(i > anchor for i, _ in texts),
            earlier_demo_run=earlier_demo,
            notes=notes,
            reports=[i for i, text in texts if text.startswith(REPORT_PREFIX)],
        )

    @property
    def turn(self) -> list[Call]:
        return [c for c in self.calls if c.at > self.anchor]

    @property
    def earlier(self) -> list[Call]:
        return [c for c in self.calls if c.at < self.anchor]

    @property
    def demo_call_count(self) -> int:
        return sum(c.id.startswith(CALL_ID_PREFIX) for c in self.calls)

    def last(self, kind: str) -> Call | None:
        return next((c for c in reversed(self.turn) if c.kind == kind), None)

    def open_job(self) -> Call | None:
        """The last accepted launch, unless a closing report already followed it."""
        launch = next((c for c in reversed(self.calls) if c.job is not None), None)
        if launch is None or any(i > launch.at for i in self.reports):
            return None
        return launch


def offered_tools(tools: Any) -> set[str]:
    names = set()
    for spec in tools or []:
        name = field_value(field_value(spec, "function") or {}, "name") or field_value(spec, "name")
        if isinstance(name, str):
            names.add(name)
    return names
