"""Tools the agent can call. ``default_tools()`` is the built-in local set."""

from __future__ import annotations

from agent.tools.base import Tool


def default_tools(*, sandbox: bool = False) -> list[Tool]:
    """Fresh instances of the built-in tools, in the order the model sees them. The sandbox
    tools are offered only when a sandbox can exist (an HF token, online): five tools the
    model cannot use would only cost prompt tokens."""
    # imported here so that importing agent.tools.base never drags in every tool module
    from agent.tools.edit import EditTool
    from agent.tools.files import ReadTool, WriteTool
    from agent.tools.jobs import HfJobsTool
    from agent.tools.plan import PlanTool
    from agent.tools.research import ResearchTool
    from agent.tools.shell import BashTool

    tools: list[Tool] = [BashTool(), ReadTool(), WriteTool(), EditTool(), ResearchTool(), PlanTool(), HfJobsTool()]
    if sandbox:
        from agent.tools.sandbox import sandbox_tools

        tools += sandbox_tools()
    return tools


__all__ = ["Tool", "default_tools"]
