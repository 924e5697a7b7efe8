"""``research``: hand a question to the research sub-agent (agent/research.py) and get its
report back. Several research calls in one response run at the same time."""

from __future__ import annotations

from pydantic import Field

from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult


class ResearchParams(ToolParams):
    task: str = Field(..., min_length=3, description=(
        "What to find out, as a self-contained brief: the goal (e.g. 'best recipe to fine-tune a 1B model "
        "for SQL generation on one A10G'), constraints, and what the answer should contain."))
    context: str | None = Field(None, description=(
        "What you already know that the researcher should use or avoid (datasets, models, failed attempts)."))


class ResearchTool(Tool):
    name = "research"
    description = (
        "Delegate literature and code research to an independent sub-agent with its own context. It reads "
        "papers (methods and results sections, citation graph), checks datasets, finds official example code "
        "and docs, and returns a ranked table of training recipes with sources. Use it before writing "
        "training code for an unfamiliar task; give it a precise brief. It cannot write files or launch jobs. "
        "Independent research questions can be asked in parallel (several calls in one response)."
    )
    Params = ResearchParams

    async def run(self, params: ResearchParams, ctx: ToolContext) -> ToolResult:
        runner = ctx.research
        if runner is None:
            return ToolResult("ERROR: the research sub-agent is not available in this session.", success=False)
        report, ok, stats = await runner.run(params.task, params.context, ctx.tool_call_id)
        return ToolResult(f"{report.rstrip()}\n\n{stats.footer()}", success=ok)
