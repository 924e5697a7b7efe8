"""What the app shows never carries an escape sequence (issue 19).

Model text, tool names and arguments, plan items, error messages, MCP server names, job names
and titles all come from outside: a model, a web page, a README, a server. Textual draws
ESC, CSI (``\\x9b``) and most C0 controls as they are, so ``␛]52;c;…`` in an answer would
write the clipboard and ``␛]0;…`` retitle the window. Every event is made harmless once,
where it enters the app (the bridge), with the one sanitiser headless output uses too
(``agent.terminal_text.visible``: controls become visible signs such as ␛). Text the app
makes itself from outside data (notices, toasts, the resume picker's stored titles) goes
through ``visible`` where it is shown.

Only the changed parts of an event are copied: the event bus hands the same object to the
store and the other subscribers, which keep the raw text. A streamed chunk costs one regex
search of the chunk, never a scan of the whole answer.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agent.protocol import AssistantChunk, Event
from agent.terminal_text import has_controls, visible

__all__ = ["safe_event", "visible"]


def safe_event(event: Event) -> Event:
    """``event`` with every string in it shown safely (the same object when nothing changes)."""
    if type(event) is AssistantChunk:  # the hot path: one field, one search
        if not has_controls(event.content):
            return event
        return event.model_copy(update={"content": visible(event.content)})
    return _safe(event)


def _safe(value: Any) -> Any:
    if isinstance(value, str):
        return visible(value) if has_controls(value) else value
    if isinstance(value, BaseModel):
        changes = {}
        for name in type(value).model_fields:
            field = getattr(value, name, None)
            cleaned = _safe(field)
            if cleaned is not field:
                changes[name] = cleaned
        return value.model_copy(update=changes) if changes else value
    if type(value) in (list, tuple):
        items = [_safe(item) for item in value]
        if any(new is not old for new, old in zip(items, value)):
            return type(value)(items)
        return value
    if type(value) is dict:
        pairs = [(_safe(k), _safe(v)) for k, v in value.items()]
        if any(nk is not k or nv is not v for (nk, nv), (k, v) in zip(pairs, value.items())):
            return dict(pairs)
        return value
    return value
