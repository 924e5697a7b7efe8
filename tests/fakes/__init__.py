"""Loopback fakes that stand in for the network edge in tests (see each module)."""

from tests.fakes.openai_server import (
    Call,
    Disconnect,
    Hang,
    HTTPError,
    Reply,
    ScriptedLLMServer,
    Text,
    ToolCalls,
    Usage,
)

__all__ = [
    "Call",
    "Disconnect",
    "Hang",
    "HTTPError",
    "Reply",
    "ScriptedLLMServer",
    "Text",
    "ToolCalls",
    "Usage",
]
