"""plan_tool: the checklist the agent keeps and the user watches."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.protocol import PlanItem
from agent.tools.base import SessionToolState, ToolContext
from agent.tools.plan import PlanParams, PlanTool
from agent.tools.router import ToolRouter


@pytest.fixture
def published() -> list[list[PlanItem]]:
    return []


@pytest.fixture
def ctx(tmp_path: Path, published) -> ToolContext:
    return ToolContext(
        session_id="test",
        cwd=tmp_path,
        spill_dir=tmp_path / "spill",
        state=SessionToolState(),
        on_plan=published.append,
    )


def todos(*items: tuple[str, str, str]) -> PlanParams:
    return PlanParams.model_validate(
        {"todos": [{"id": i, "content": c, "status": s} for i, c, s in items]}
    )


async def test_plan_is_stored_published_and_rendered_as_a_checklist(ctx, published):
    result = await PlanTool().run(
        todos(
            ("1", "Inspect the dataset", "completed"),
            ("2", "Write train.py", "in_progress"),
            ("3", "Launch the job", "pending"),
        ),
        ctx,
    )
    assert result.success
    assert result.output == (
        "[x] Inspect the dataset\n[~] Write train.py\n[ ] Launch the job\n1/3 done"
    )
    expected = [
        PlanItem(id="1", content="Inspect the dataset", status="completed"),
        PlanItem(id="2", content="Write train.py", status="in_progress"),
        PlanItem(id="3", content="Launch the job", status="pending"),
    ]
    assert ctx.state.plan == expected
    assert published == [expected]


async def test_a_new_plan_replaces_the_old_one(ctx, published):
    tool = PlanTool()
    await tool.run(todos(("1", "a", "pending"), ("2", "b", "pending")), ctx)
    result = await tool.run(todos(("1", "a", "completed")), ctx)
    assert result.output.endswith("1/1 done")
    assert [item.id for item in ctx.state.plan] == ["1"]
    assert len(published) == 2
    cleared = await tool.run(todos(), ctx)
    assert cleared.success and ctx.state.plan == [] and published[-1] == []


async def test_several_steps_may_be_in_progress(ctx):
    result = await PlanTool().run(
        todos(("a", "download", "in_progress"), ("b", "tokenize", "in_progress")), ctx
    )
    assert result.success and result.output.count("[~]") == 2


@pytest.mark.parametrize(
    "items, message",
    [
        ((("1", "a", "pending"), ("1", "b", "pending")), "duplicate ids '1'"),
        ((("1", "a", "pending"), ("2", "   ", "pending")), "empty content for id(s) '2'"),
        ((("", "a", "pending"),), "empty id"),
    ],
)
async def test_invalid_plans_are_rejected_and_change_nothing(ctx, published, items, message):
    previous = [PlanItem(id="0", content="keep me", status="pending")]
    ctx.state.plan = list(previous)
    result = await PlanTool().run(todos(*items), ctx)
    assert not result.success
    assert message in result.output and "not changed" in result.output
    assert ctx.state.plan == previous
    assert published == []


def test_unknown_status_and_extra_keys_are_refused_by_the_router():
    router = ToolRouter([PlanTool()])
    bad_status = router.parse(
        "c1", "plan_tool", '{"todos": [{"id": "1", "content": "x", "status": "done"}]}'
    )
    assert bad_status.error and "todos.0.status" in bad_status.error
    extra = router.parse(
        "c2", "plan_tool", '{"todos": [{"id": "1", "content": "x", "status": "pending", "p": 1}]}'
    )
    assert extra.error and "NOT executed" in extra.error
    schema = router.specs()[0]["function"]["parameters"]
    item = schema["properties"]["todos"]["items"]
    assert schema["additionalProperties"] is False and item["additionalProperties"] is False
    assert item["required"] == ["id", "content", "status"]
