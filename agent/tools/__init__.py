"""Tools the agent can call. ``default_tools()`` is the built-in local set, built now;
a session uses ``agent.tools.lazy.builtin_tools()``, which imports a tool's module only
when the tool is first needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package is imported before the app's first frame (agent.tools.lazy): no pydantic
    from agent.tools.base import Tool


def default_tools(*, sandbox: bool = False) -> list[Tool]:
    """Fresh instances of the built-in tools, in the order the model sees them. The sandbox
    tools are offered only when a sandbox can exist (an HF token, online): five tools the
    model cannot use would only cost prompt tokens."""
    # the list lives in agent.tools.lazy; the tool modules themselves import their heavy
    # helpers (httpx, bs4, markdownify, huggingface_hub) inside the calls that need them
    from agent.tools.lazy import BUILTIN, SANDBOX, LazyTool

    return [LazyTool(*entry).build() for entry in BUILTIN + (SANDBOX if sandbox else ())]


__all__ = ["Tool", "default_tools"]
