"""``plan_tool``: the agent's visible checklist for the task at hand.

The plan is session state (the continuation guard reads the unfinished items) and is
published to every front end through ``ctx.on_plan``.
"""

from __future__ import annotations

from collections import Counter
from typing import Literal

from pydantic import Field

from agent.protocol import PlanItem
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult

_MARKS = {"completed": "[x]", "in_progress": "[~]", "pending": "[ ]"}


class TodoItem(ToolParams):
    id: str = Field(description="Stable identifier of the step, e.g. '1' or 'train'.")
    content: str = Field(description="What the step is, in a short imperative sentence.")
    status: Literal["pending", "in_progress", "completed"] = Field(
        description="pending, in_progress (what you are doing now) or completed."
    )


class PlanParams(ToolParams):
    todos: list[TodoItem] = Field(
        description="The whole plan, in order. It replaces the previous plan, so send every "
        "step each time, with its current status."
    )


def render_checklist(plan: list[PlanItem]) -> str:
    if not plan:
        return "Plan cleared (no steps)."
    lines = [f"{_MARKS[item.status]} {item.content}" for item in plan]
    done = sum(item.status == "completed" for item in plan)
    lines.append(f"{done}/{len(plan)} done")
    return "\n".join(lines)


class PlanTool(Tool):
    name = "plan_tool"
    description = (
        "Create or update your plan for the current task: a checklist of steps, each pending, "
        "in_progress or completed. Send the complete list every time (it replaces the old "
        "one). Use it for multi-step work, keep it current as you go, and mark steps "
        "completed as soon as they are done. The user sees it live."
    )
    Params = PlanParams

    async def run(self, params: PlanParams, ctx: ToolContext) -> ToolResult:
        problems = []
        duplicates = [i for i, n in Counter(t.id.strip() for t in params.todos).items() if n > 1]
        if duplicates:
            problems.append("duplicate ids " + ", ".join(repr(i) for i in duplicates))
        blank_ids = [n for n, t in enumerate(params.todos, 1) if not t.id.strip()]
        if blank_ids:
            problems.append("empty id in item(s) " + ", ".join(map(str, blank_ids)))
        blank = [repr(t.id) for t in params.todos if not t.content.strip()]
        if blank:
            problems.append("empty content for id(s) " + ", ".join(blank))
        if problems:
            return ToolResult(
                "ERROR: the plan was not changed: " + "; ".join(problems)
                + ". Every step needs a unique id and a description.",
                success=False,
            )
        plan = [
            PlanItem(id=t.id.strip(), content=t.content.strip(), status=t.status)
            for t in params.todos
        ]
        ctx.state.plan = plan
        ctx.on_plan(list(plan))
        return ToolResult(render_checklist(plan))
