"""Text that every serialiser takes: no lone surrogates.

A Python ``str`` can hold code points UTF-8 cannot encode: the surrogates U+D800-U+DFFF. They
arrive from a model's JSON (``"\\ud800"`` is valid JSON), from file names that are not UTF-8
(``os.listdir`` decodes them with surrogateescape) and from tools that do the same. One of them
in an event, a tool argument or a history message used to end a turn (``UnicodeEncodeError``
where a bash command or a file's content was encoded) or crash ``stream-json`` output
(``PydanticSerializationError``). Text is cleaned where it enters the engine - the model's
answer and arguments, tool output, progress lines - and the events keep a last net
(``agent.protocol.Envelope.model_dump_json``).

A surrogate pair that was split into two code points (``"\\ud83d\\ude00"`` from JSON) is joined
back into its character; a lone surrogate becomes U+FFFD (�), visibly, never silently dropped.
"""

from __future__ import annotations

from typing import Any

REPLACEMENT = "\ufffd"


def encodable(text: str) -> str:
    """``text`` with every code point UTF-8 cannot encode replaced by U+FFFD (pairs joined)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        # UTF-16 takes surrogates as such: a pair decodes to its character, a lone one to U+FFFD
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def encodable_value(value: Any) -> Any:
    """``value`` with every string in it (dict keys included) made encodable; other values as they are."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable_value(k): encodable_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [encodable_value(v) for v in value]
    if isinstance(value, tuple):
        return tuple(encodable_value(v) for v in value)
    return value
