"""Loopback fakes that stand in for the network edge in tests (see each module)."""

from tests.fakes.anthropic_server import AnthropicUsage, ScriptedAnthropicServer, Thinking
from tests.fakes.openai_server import (
    Call,
    Disconnect,
    EmptyStream,
    Hang,
    HTTPError,
    Reply,
    ScriptedLLMServer,
    Text,
    ToolCalls,
    Usage,
)

__all__ = [
    "AnthropicUsage",
    "ScriptedAnthropicServer",
    "Thinking",
    "Call",
    "Disconnect",
    "EmptyStream",
    "Hang",
    "HTTPError",
    "Reply",
    "ScriptedLLMServer",
    "Text",
    "ToolCalls",
    "Usage",
]
