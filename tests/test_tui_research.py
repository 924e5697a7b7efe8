"""The research card on screen: a research call and its sub-agent's steps, fed through the
app's bridge as the engine sends them (events tagged with ``parent_call_id``)."""

from __future__ import annotations

from agent.protocol import (
    ApprovalItem,
    ApprovalRequired,
    LLMCall,
    Processing,
    ToolCallEvent,
    ToolLog,
    ToolOutput,
    ToolState,
    Usage,
)
from tests.test_tui_snapshots import SIZE, ready, turn
from tests.tui_support import AppUnderTest, approval_screen, feed, rendered_text, wait_for
from widgets.research_card import ResearchCard

PARENT = "call_research_1"
TASK = "Best recipe to fine-tune a 1B model for GSM8K on one A10G"


def sub(event, parent: str = PARENT):
    event.parent_call_id = parent
    return event


def research_run(steps: int = 5, finished: bool = False) -> list:
    tools = [("hf_papers", {"operation": "search", "query": "gsm8k sft small models"}),
             ("hf_papers", {"operation": "read_paper", "arxiv_id": "2406.12345", "section": "4"}),
             ("hf_inspect_dataset", {"dataset": "openai/gsm8k"}),
             ("github_find_examples", {"repo": "trl", "keyword": "sft"}),
             ("github_read_file", {"repo": "huggingface/trl", "path": "examples/scripts/sft.py"}),
             ("fetch_hf_docs", {"url": "https://huggingface.co/docs/trl/sft_trainer"})]
    events: list = [ready(), *turn("go"),
                    ToolCallEvent(tool_call_id=PARENT, tool="research", arguments={"task": TASK}),
                    ToolState(tool_call_id=PARENT, tool="research", state="running"),
                    sub(ToolLog(tool="research", log="Research sub-agent started on claude (11 read-only tools).",
                                tool_call_id=PARENT))]
    for n, (tool, args) in enumerate(tools[:steps]):
        cid = f"r{n}"
        events += [sub(LLMCall(model="m", kind="research", latency_ms=900,
                               usage=Usage(prompt_tokens=3000 + 1500 * n, completion_tokens=120), cost_usd=0.0101)),
                   sub(ToolCallEvent(tool_call_id=cid, tool=tool, arguments=args)),
                   sub(ToolState(tool_call_id=cid, tool=tool, state="running"))]
        if n < steps - 1 or finished:
            ok = n != 3
            output = "…" if ok else "ERROR: api.github.com is rate-limiting requests (429): it asks to wait 60 s."
            events += [sub(ToolOutput(tool_call_id=cid, tool=tool, output=output, success=ok)),
                       sub(ToolState(tool_call_id=cid, tool=tool, state="completed" if ok else "failed"))]
    if finished:
        events += [ToolOutput(tool_call_id=PARENT, tool="research", success=True,
                              output="## Report\n| rank | recipe | result |\n|---|---|---|\n| 1 | SFT + LoRA r16 | 61.2 |"),
                   ToolState(tool_call_id=PARENT, tool="research", state="completed")]
    return events


def test_research_card_streams_the_sub_agents_steps(snap_compare):
    """A research call mid-run: the card's header says research, the task, running, 5 tool
    calls with the tokens and cost so far; collapsed it lists the last 4 steps (one "earlier
    call" line above them), the failed GitHub lookup marked ✗ with its reason (rate limited, in
    italics under it), the running docs fetch ⋯, and
    the sub-agent's last progress line in italics. Nothing of the sub-agent is in the main
    conversation outside the card."""

    async def run_before(pilot):
        await feed(pilot.app, *research_run(steps=5))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


async def test_research_card_collects_steps_cost_and_report():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, *research_run(steps=6, finished=True))
        await pilot.pause()
        card = app.conversation.cards[PARENT]
        assert isinstance(card, ResearchCard)
        assert [s.tool for s in card.steps][:2] == ["hf_papers", "hf_papers"] and len(card.steps) == 6
        assert card.steps[3].state == "failed" and card.steps[5].state == "completed"
        assert card.steps[3].note.startswith("api.github.com is rate-limiting") and not card.steps[5].note
        assert card.llm_calls == 6 and abs(card.cost_usd - 0.0606) < 1e-9
        assert card.state == "completed"
        # sub-agent calls never became cards of their own
        assert set(app.conversation.cards) == {PARENT}
        # the research spend is in /cost, by kind
        assert app.costs.by_kind["research"].calls == 6
        card.focus()
        await pilot.press("enter")
        await pilot.pause()
        screen = "\n".join(rendered_text(app))
        assert "SFT + LoRA r16" in screen


async def test_a_sub_agents_approval_opens_the_card_and_keeps_the_turn_busy():
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, *research_run(steps=2, finished=False), Processing())
        item = ApprovalItem(tool_call_id="r9", tool="hf_repo_files",
                            arguments={"operation": "upload", "repo_id": "ada/notes", "path": "a.md", "content": "x"},
                            reason="research agent: hf_repo_files upload uploads files to the Hub repo ada/notes")
        await feed(app, sub(ApprovalRequired(items=[item])))
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="approval card")
        card = app.conversation.cards[PARENT]
        assert card.steps[-1].tool == "hf_repo_files" and card.steps[-1].state == "waiting"
        assert "r9" not in app.conversation.cards
        assert app.status_info.busy  # the turn still runs while the sub-agent waits


def test_the_receipt_says_what_research_cost():
    from agent.protocol import Receipt
    from widgets.receipt import receipt_rows

    rows = dict(receipt_rows(Receipt(llm_calls=5, llm_cost_usd=0.05, research_llm_calls=3, research_cost_usd=0.03)))
    assert rows["research"] == "$0.0300 of it over 3 calls"
    assert "research" not in dict(receipt_rows(Receipt(llm_calls=1)))


class _RecordingSession:
    """Stands in for the engine's session only to record what the app submits."""

    busy = True

    def __init__(self) -> None:
        from pathlib import Path

        self.ops: list = []
        self.cwd = Path("/work")

    def submit(self, op) -> None:
        self.ops.append(op)


async def test_two_sub_agents_asking_at_once_are_reviewed_one_after_the_other():
    """The second question waits for the first card to be answered (it used to replace it, and
    the first sub-agent then waited for ever)."""
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        app.approval_grace_s = 0.0
        recorder = _RecordingSession()
        app.session = recorder
        await feed(app, *research_run(steps=1, finished=False), Processing())
        card_b = ToolCallEvent(tool_call_id="call_research_2", tool="research", arguments={"task": "second"})
        await feed(app, card_b)

        def ask(parent: str, call_id: str):
            item = ApprovalItem(tool_call_id=call_id, tool="read", arguments={"path": "/etc/hosts"},
                                reason="research agent: reads /etc/hosts, outside the working directory")
            return sub(ApprovalRequired(items=[item]), parent)

        await feed(app, ask(PARENT, f"{PARENT}~r1"), ask("call_research_2", "call_research_2~r1"))
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="first card")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(recorder.ops) == 1, what="first answer")
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="second card")
        await pilot.press("n")
        await wait_for(pilot, lambda: len(recorder.ops) == 2, what="second answer")
        answered = [(op.decisions[0].tool_call_id, op.decisions[0].approved) for op in recorder.ops]
        assert answered == [(f"{PARENT}~r1", True), ("call_research_2~r1", False)]
