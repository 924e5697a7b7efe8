"""What the knowledge tools (papers, docs, datasets, web, GitHub) share: the session's HTTP
client, the output budget they answer within, and turning a ``NetError`` into a result."""

from __future__ import annotations

from agent.net import Net, NetError
from agent.tools.base import ToolContext, ToolResult
from agent.tools.output import apply_output_budget

#: what one knowledge answer may put into the model's context (the rest is spilled)
KNOWLEDGE_MAX_CHARS = 12_000


def net_of(ctx: ToolContext) -> Net:
    """The session's client; a harness without one gets a fresh one kept on the context."""
    if ctx.net is None:
        ctx.net = Net.for_config(None, cache_dir=ctx.spill_dir.parent / "cache" / "http")
    return ctx.net


def budgeted(text: str, ctx: ToolContext, label: str, *, max_chars: int = KNOWLEDGE_MAX_CHARS,
             success: bool = True) -> ToolResult:
    """``text`` cut to the budget (head and tail), the whole of it spilled to a file."""
    cut, spill = apply_output_budget(text, ctx.spill_dir, max_chars=max_chars, label=label)
    return ToolResult(cut, success=success, spill_path=spill)


def failed(exc: NetError, what: str = "") -> ToolResult:
    prefix = f"{what}: " if what else ""
    return ToolResult(f"ERROR: {prefix}{exc.message}", success=False)
