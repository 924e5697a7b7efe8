"""Tools the agent can call. ``default_tools()`` is the built-in local set."""

from __future__ import annotations

from agent.tools.base import Tool


def default_tools() -> list[Tool]:
    """Fresh instances of the built-in local tools, in the order the model sees them."""
    # imported here so that importing agent.tools.base never drags in every tool module
    from agent.tools.edit import EditTool
    from agent.tools.files import ReadTool, WriteTool
    from agent.tools.jobs import HfJobsTool
    from agent.tools.plan import PlanTool
    from agent.tools.shell import BashTool

    return [BashTool(), ReadTool(), WriteTool(), EditTool(), PlanTool(), HfJobsTool()]


__all__ = ["Tool", "default_tools"]
