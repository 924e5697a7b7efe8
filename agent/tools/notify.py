"""``notify``: the agent tells people something through the configured destinations (Slack),
e.g. that a long run finished. Offered only when a destination allows it
(``allow_agent_tool``); in ask mode it asks first, since the message leaves the machine."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult


class NotifyParams(ToolParams):
    destinations: list[str] = Field(..., min_length=1, description="Destination names to send to.")
    message: str = Field(..., min_length=1, description="The message, in Markdown.")
    title: str | None = Field(None, description="A short title (default: 'Message from the agent').")
    severity: Literal["info", "success", "warning", "error"] = Field("info", description="How it is flagged.")


class NotifyTool(Tool):
    name = "notify"
    Params = NotifyParams

    def __init__(self, messenger: Any):
        self.messenger = messenger
        allowed = ", ".join(messenger.config.tool_destinations)
        self.description = (  # type: ignore[misc]
            "Send a short message to people through a configured destination (Slack), e.g. when a long "
            f"training run ends or you need a decision. Destinations you may use: {allowed}.")

    def approval_reason(self, params: Any, settings: ApprovalSettings) -> str | None:
        if settings.mode == "ask":
            return f"ask mode: sends a message to {', '.join(params.destinations)}"
        return None

    async def run(self, params: Any, ctx: ToolContext) -> ToolResult:
        allowed = self.messenger.config.tool_destinations
        refused = [d for d in params.destinations if d not in allowed]
        if refused:
            return ToolResult(f"ERROR: not a destination you may send to: {', '.join(refused)}; nothing was sent. "
                              f"Allowed: {', '.join(allowed) or 'none'}.", success=False)
        results = await self.messenger.send(params.destinations, params.title or "Message from the agent",
                                            params.message, params.severity)
        lines = [f"{name}: sent" if error is None else f"{name}: failed ({error})" for name, error in results]
        return ToolResult("\n".join(lines), success=all(error is None for _, error in results))
