"""One snapshot per meaningful state of the screen.

Each state is reached by feeding protocol events into the app's bridge (the same path the
engine's events take), so the pictures are deterministic: fixed size, no cursor blink, no
clock, no paths from the machine. Update with ``pytest --snapshot-update`` only after
reading snapshot_report.html.
"""

from __future__ import annotations

from pathlib import Path

from agent.protocol import (
    ApprovalItem,
    ApprovalRule,
    ApprovalRequired,
    AssistantChunk,
    AssistantMessage,
    Compacted,
    ContextUsage,
    ErrorEvent,
    Guard,
    LLMCall,
    McpServerInfo,
    McpStatus,
    ModelChoice,
    ModelList,
    ModelOffer,
    PlanItem,
    PlanUpdate,
    Processing,
    Ready,
    Receipt,
    SettingsChanged,
    ToolCallEvent,
    ToolLog,
    ToolOutput,
    TraceFinding,
    TracePreview,
    TraceStatus,
    TurnComplete,
    Usage,
)
from tests.tui_support import AppUnderTest, feed

SIZE = (120, 36)


def ready(demo: bool = False) -> Ready:
    return Ready(model="demo" if demo else "anthropic/claude-sonnet-4-5",
                 model_label="demo (scripted, no API key)" if demo else "anthropic/claude-sonnet-4-5",
                 tool_count=5, cwd="/work", is_demo=demo)


def turn(prompt: str) -> list:
    return [Processing(), ContextUsage(tokens=48_000, window=200_000, threshold=180_000)]


PLAN = [
    PlanItem(id="1", content="Inspect the dataset columns and a few rows", status="completed"),
    PlanItem(id="2", content="Write the SFT training script", status="completed"),
    PlanItem(id="3", content="Smoke-test on 64 examples on cpu-basic", status="in_progress"),
    PlanItem(id="4", content="Launch the full run on a10g-large", status="pending"),
    PlanItem(id="5", content="Evaluate and push to the Hub", status="pending"),
]


def test_empty_start_on_the_demo_model(snap_compare):
    """Fresh start with no keys: the demo banner says how to configure a real model, the status
    bar shows DEMO and the demo model as ready, the plan and output panes are empty, the prompt
    shows its placeholder."""

    async def run_before(pilot):
        await feed(pilot.app, ready(demo=True))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_answer_streaming_with_a_code_fence(snap_compare):
    """A Markdown answer mid-stream: heading, list and an open ```python fence whose first lines
    are already highlighted; the status bar says working… and shows context use and turn tokens."""

    text = ("## Plan for the fine-tune\n\nI'll use **TRL's SFTTrainer** with LoRA:\n\n- rank 16, alpha 32\n"
            "- 3 epochs, lr 2e-4\n\n```python\nfrom trl import SFTConfig, SFTTrainer\n\nconfig = SFTConfig(\n"
            "    output_dir=\"out\",\n    num_train_epochs=3,\n")

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Fine-tune Qwen2.5-0.5B on my support tickets")
        await feed(app, *turn(""), LLMCall(model="anthropic/claude-sonnet-4-5", kind="main", latency_ms=900,
                                            usage=Usage(prompt_tokens=48_000, completion_tokens=310), cost_usd=0.1487),
                   *[AssistantChunk(content=text[i:i + 7]) for i in range(0, len(text), 7)])
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_tool_card_expanded(snap_compare):
    """A finished bash card expanded with ctrl+o: the command in the header, ✓ completed with its
    line count, and the output below it; the output pane shows the same lines live."""

    output = "\n".join(f"{{'loss': {2.1 - i * 0.15:.4f}, 'learning_rate': 0.0002, 'epoch': {i / 10:.1f}}}" for i in range(8))

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Run the smoke test")
        await feed(app, *turn(""),
                   ToolCallEvent(tool_call_id="c1", tool="bash", arguments={"command": "python train.py --max-steps 8"}),
                   *[ToolLog(tool="bash", tool_call_id="c1", log=line) for line in output.splitlines()],
                   ToolOutput(tool_call_id="c1", tool="bash", output=output, success=True))
        await pilot.press("ctrl+o")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_plan_half_done(snap_compare):
    """The plan pane titled "Plan 2/5 done": two struck-through ✓ items, one ▸ in progress in bold,
    two ○ pending."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Fine-tune and publish")
        await feed(app, *turn(""), ToolCallEvent(tool_call_id="p", tool="plan_tool", arguments={"todos": [p.model_dump() for p in PLAN]}),
                   ToolOutput(tool_call_id="p", tool="plan_tool", output="[x] ...\n2/5 done", success=True),
                   PlanUpdate(plan=PLAN))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


GPU_JOB = ApprovalItem(
    tool_call_id="job1", tool="hf_jobs",
    arguments={"operation": "run", "hardware_flavor": "a10g-large", "timeout": "2h",
               "script": "from trl import SFTTrainer\n# ... 40 lines ...\ntrainer.train()\ntrainer.push_to_hub()",
               "dependencies": ["trl", "peft", "datasets"], "env": {"WANDB_MODE": "offline"}},
    reason="GPU job: a10g-large for up to 2h", estimated_cost_usd=3.0,
)


def test_approval_card_for_a_gpu_job(snap_compare):
    """The approval modal over the app: "Approval 1 of 1 · hf_jobs", the reason in warning colour,
    hardware a10g-large, timeout 2h, dependencies, env names, the script, the $3.00 estimate, and
    the key line (y/n/f/e/esc: "a approve all" is not listed for a batch of one, no "always": the engine
    offers no rule for this call)."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Launch the full run")
        await feed(app, *turn(""), ApprovalRequired(items=[GPU_JOB]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_approval_batch_of_three(snap_compare):
    """The first of three pending approvals ("1 of 3", a bash command in ask mode); behind the
    modal, three tool cards wait with ⏸."""

    items = [ApprovalItem(tool_call_id=f"b{i}", tool="bash", arguments={"command": cmd}, reason="ask mode: bash commands need approval")
             for i, cmd in enumerate(["pip install -U trl", "rm -rf out/checkpoint-*", "python eval.py --split test"])]

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Clean up and evaluate")
        await feed(app, *turn(""), ApprovalRequired(items=items))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_doom_loop_notice(snap_compare):
    """A repetition-guard notice in warning colour after three identical failing reads, with the
    tokens and dollars burned inside the loop."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Find the config")
        events = []
        for i in range(3):
            events += [ToolCallEvent(tool_call_id=f"r{i}", tool="read", arguments={"path": "configs/train.yaml"}),
                       ToolOutput(tool_call_id=f"r{i}", tool="read", output="ERROR: configs/train.yaml does not exist", success=False)]
        await feed(app, *turn(""), *events,
                   Guard(kind="doom_loop", message="Repetition guard: read called 3× with identical arguments and results. "
                         "Told the model to change approach.", tokens_spent=41_230, cost_usd=0.1269))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_compaction_notice(snap_compare):
    """A compaction notice: tokens and messages before → after, method summary; the context bar
    in the status line drops to the new size."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), ContextUsage(tokens=182_000, window=200_000, threshold=180_000))
        await app.conversation.add_user("Keep going with the sweep")
        await feed(app, Processing(), Compacted(tokens_before=182_400, tokens_after=41_800, messages_before=212,
                                                 messages_after=19, method="summary", detail="190 messages summarised"))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_error_notice(snap_compare):
    """A provider error after retries ran out, in error colour, with one sentence of what to do;
    the status bar is no longer working…"""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("hi")
        await feed(app, Processing(), ErrorEvent(
            kind="credits", message="The provider for anthropic/claude-sonnet-4-5 reports no credits left (402). "
            "Add credits or billing on the provider's account, or switch to another model with /model."))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_queued_message(snap_compare):
    """While the agent streams, a second prompt sits in the conversation marked "queued" (warning
    border) and the status bar counts "1 queued"."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Summarise the dataset")
        await feed(app, Processing(), AssistantChunk(content="The dataset has **12,400** rows and three columns: "))
        app.prompt.text = "Then plot the label distribution"
        app.prompt.action_submit()
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_small_terminal_80x24(snap_compare):
    """At 80×24 the side panes fold away (f2 shows them): the conversation, prompt, status and
    footer still fit, with a finished answer and its receipt line."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("What GPU do I need for a 7B LoRA?")
        await feed(app, Processing(), AssistantMessage(content="An **a10g-large** (24 GB) fits a 7B LoRA in bf16 "
                                                                "with gradient checkpointing.", final=True),
                   TurnComplete(final_response="An **a10g-large** (24 GB) fits a 7B LoRA in bf16 with gradient checkpointing.",
                                history_size=4, receipt=Receipt(usage=Usage(prompt_tokens=9_800, completion_tokens=60),
                                                                llm_calls=1, llm_cost_usd=0.0303)))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=(80, 24), run_before=run_before)


def test_light_theme(snap_compare):
    """The light theme: same answer and plan as the dark screens, dark text on a light background,
    theme colours only."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Fine-tune and publish")
        await feed(app, Processing(), PlanUpdate(plan=PLAN),
                   AssistantMessage(content="Smoke test passed: loss **2.10 → 1.05** in 8 steps.", final=True))
        await pilot.pause()

    assert snap_compare(AppUnderTest(theme="mlintern-light"), terminal_size=SIZE, run_before=run_before)


def test_hugging_face_theme_with_yolo_badge(snap_compare):
    """The Hugging Face yellow theme with YOLO on: the status bar shows the YOLO badge and its cap."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        app.update_status(mode="yolo", yolo_cap_usd=5.0)
        await pilot.pause()

    assert snap_compare(AppUnderTest(theme="mlintern-hf"), terminal_size=SIZE, run_before=run_before)


class PinnedClock:
    """The Jobs pane's monotonic clock, moved only by the test (elapsed time and cost so far)."""

    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def trainer_log(count: int) -> list[str]:
    return [f"{{'loss': {2.2 * 0.985 ** i + 0.05 * (i % 7) / 7:.4f}, 'learning_rate': 5e-05, 'epoch': {i / 100:.2f}}}"
            for i in range(1, count + 1)]


async def two_jobs(pilot) -> None:
    """A finished local data-prep job and a GPU training job 7m30s in, with 240 loss lines
    and an eval every 60 steps."""
    from agent.protocol import JobLog, JobUpdate

    app = pilot.app
    clock = PinnedClock()
    app.jobs_clock = clock
    lines = trainer_log(240)
    for step in (60, 120, 180, 240):
        lines.insert(lines.index(trainer_log(step)[-1]) + 1,
                     f"{{'eval_loss': {2.4 * 0.985 ** step + 0.05:.4f}, 'eval_runtime': 1.2, 'epoch': {step / 100:.2f}}}")
    await feed(app, ready())
    await app.conversation.add_user("Prepare the data, then train on an a10g-large")
    await feed(app, Processing(),
               ToolCallEvent(tool_call_id="j1", tool="hf_jobs", arguments={"operation": "run", "hardware_flavor": "cpu-basic"}),
               ToolOutput(tool_call_id="j1", tool="hf_jobs", output="Job local-1a2b3c4d5e accepted on cpu-basic", success=True),
               JobUpdate(job_id="local-1a2b3c4d5e", status="RUNNING", flavor="cpu-basic"),
               JobLog(job_id="local-1a2b3c4d5e", lines=["prepared 12,400 rows", "wrote data/train.jsonl"]),
               JobUpdate(job_id="local-1a2b3c4d5e", status="COMPLETED", flavor="cpu-basic",
                         detail="completed after 0m03s, $0.0000"),
               ToolCallEvent(tool_call_id="j2", tool="hf_jobs", arguments={"operation": "run", "hardware_flavor": "a10g-large"}),
               ToolOutput(tool_call_id="j2", tool="hf_jobs", output="Job 6890f1a2b3c4d5e6f7a8b9c0 accepted on a10g-large",
                          success=True),
               JobUpdate(job_id="6890f1a2b3c4d5e6f7a8b9c0", status="RUNNING", flavor="a10g-large"),
               JobLog(job_id="6890f1a2b3c4d5e6f7a8b9c0", lines=lines))
    clock.now += 450
    app.jobs_pane.tick()


def test_local_job_with_a_loss_curve(snap_compare):
    """A local training job streams its log: the side column has switched to its Jobs tab
    ("Jobs · 1 running"): the job's row (running, $0 (local)) above its live log, whose title
    carries the newest loss ("loss … @ 200") since the plot needs a wider pane; the output pane
    got none of the job's lines; the status bar counts "jobs 1"."""
    from agent.protocol import JobLog, JobUpdate

    async def run_before(pilot):
        app = pilot.app
        app.jobs_clock = PinnedClock()
        await feed(app, ready())
        await app.conversation.add_user("Train it as a background job")
        await feed(app, Processing(),
                   ToolCallEvent(tool_call_id="j", tool="hf_jobs", arguments={"operation": "run", "hardware_flavor": "cpu-basic"}),
                   ToolOutput(tool_call_id="j", tool="hf_jobs", output="Job local-7f3a accepted on cpu-basic", success=True),
                   JobUpdate(job_id="local-7f3a", status="RUNNING", flavor="cpu-basic"),
                   JobLog(job_id="local-7f3a", lines=trainer_log(200)))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_jobs_view_with_two_jobs_and_a_loss_curve(snap_compare):
    """ctrl+g: the Jobs pane across the whole screen, the table focused (accent border). Two
    rows: the finished local job (✓ completed, $0 (local)) and the selected GPU job (● running
    on a10g-large, 7m30s, $2.00/h, $0.2500 so far, its last line). Below, the GPU job's log
    (following) beside its loss curve falling from ~2.2 with four eval dots; the footer has the
    pane's keys (c cancel, f follow, / search) and esc Back, ctrl+g Jobs; no conversation."""

    async def run_before(pilot):
        await two_jobs(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_jobs_view_80x24(snap_compare):
    """The same two jobs at 80×24: the table drops flavour and $/h, the plot folds away and the
    log title carries the newest loss instead; status bar and footer still fit."""

    async def run_before(pilot):
        await two_jobs(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=(80, 24), run_before=run_before)


def test_cancel_asks_first(snap_compare):
    """c on the running GPU job: a small modal "Cancel job" asks "Cancel job 6890f1a2…?" with
    what it has run and cost so far, and the keys: y cancel the job · n or esc keep it running."""

    async def run_before(pilot):
        await two_jobs(pilot)
        await pilot.press("ctrl+g")
        await pilot.pause()
        await pilot.press("c")
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- issue 5: modes, rules, budget, costs

PROJECT = Path("/home/me/sft-project")


def test_receipt_expanded_under_a_turn(snap_compare):
    """f3 on a finished turn in YOLO mode: the dim receipt line ("turn: 52.4k in · 1.3k out ·
    $0.6073+? · 3 calls ▾", model calls and compute, +? for unknown prices)
    opens into rows, none wrapped: tokens, cache read/write, model ($0.1873 over 3 calls, "1 of
    them at unknown price, not in the sum"), compute ($0.4200, "+ 1 job at unknown price"),
    session ($1.8012, "+ 1 call at unknown price") and budget ($3.20 left of the YOLO cap), with
    a secondary-colour bar on its left; the status bar shows the YOLO badge with $3.20 left."""

    receipt = Receipt(usage=Usage(prompt_tokens=52_400, completion_tokens=1_310, cache_read_tokens=31_000,
                                  cache_write_tokens=4_200),
                      llm_calls=3, llm_cost_usd=0.1873, unknown_cost_calls=1, compute_cost_usd=0.42,
                      unknown_compute_jobs=1, session_cost_usd=1.8012, session_unknown_cost_calls=1,
                      budget_left_usd=3.2)

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        app.update_status(mode="yolo", yolo_cap_usd=5.0, budget_left_usd=3.2)
        await app.conversation.add_user("Run the smoke test on an a10g-small, then the eval")
        await feed(app, Processing(), AssistantMessage(content="Smoke test passed: loss **2.10 → 1.05** in 8 steps; "
                                                               "eval accuracy **0.81**.", final=True),
                   TurnComplete(final_response="done", history_size=9, receipt=receipt))
        await pilot.press("f3")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_cost_breakdown(snap_compare):
    """/cost: an accent-bordered block in the conversation. Session $0.8140 (model calls
    $0.5640 + compute $0.2500), "+ 1 call at unknown price, not counted", 4 model calls,
    tokens; then three aligned tables: By kind (compaction, main, research with cost
    "unknown" and 1 unpriced), By model (the long Qwen id cut in the middle), and Jobs (the
    a10g-large job running, $0.2500 so far; the local cpu-basic job completed, $0.0000).
    Nothing wraps or is cut at the right edge."""

    from agent.protocol import JobUpdate

    async def run_before(pilot):
        app = pilot.app
        app.jobs_clock = PinnedClock()
        await feed(app, ready(),
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="main", latency_ms=900,
                           usage=Usage(prompt_tokens=40_000, completion_tokens=900, cache_read_tokens=30_000), cost_usd=0.1335),
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="main", latency_ms=700,
                           usage=Usage(prompt_tokens=42_000, completion_tokens=300, cache_write_tokens=2_000), cost_usd=0.1305),
                   LLMCall(model="Qwen/Qwen3-Coder-480B-A35B-Instruct", kind="research", latency_ms=400,
                           usage=Usage(prompt_tokens=8_000, completion_tokens=500), cost_usd=None),
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="compaction", latency_ms=2000,
                           usage=Usage(prompt_tokens=90_000, completion_tokens=2_000), cost_usd=0.3))
        app.costs.job(JobUpdate(job_id="6890f1a2b3c4d5e6f7a8b9c0", status="RUNNING", flavor="a10g-large", cost_usd=0.25))
        app.costs.job(JobUpdate(job_id="local-1a2b3c4d5e", status="COMPLETED", flavor="cpu-basic", cost_usd=0.0))
        app.prompt.text = "/cost"
        app.prompt.action_submit()
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


PIP = ApprovalItem(
    tool_call_id="b1", tool="bash", arguments={"command": "pip install -U trl peft"},
    reason="ask mode: bash commands need approval (what a shell command touches cannot be known from its text)",
    suggested_rule=ApprovalRule(effect="allow", tool="bash", pattern="pip install",
                                label='bash commands starting with "pip install"'),
)


def test_approval_card_with_always_scope(snap_compare):
    """A bash call in ask mode with an "always" offer: under the command, an accent line
    'Always (A allow · D deny) would cover: bash commands starting with "pip install"', and
    the key line lists "A always allow… · D always deny…" (no "a approve all": a batch of one);
    the status bar says mode ask."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        app.update_status(mode="ask")
        await app.conversation.add_user("Upgrade trl and peft")
        await feed(app, *turn(""), ApprovalRequired(items=[PIP]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(cwd=PROJECT), terminal_size=SIZE, run_before=run_before)


def test_approval_card_choosing_where_to_keep_the_rule(snap_compare):
    """The same card after A: the key line turns into the question 'Always allow bash commands
    starting with "pip install" (this call runs now), kept' over "p for this project
    (/home/me/sft-project) · u for all your projects · esc back", keys in accent colour."""

    async def run_before(pilot):
        app = pilot.app
        app.approval_grace_s = 0.0
        await feed(app, ready())
        app.update_status(mode="ask")
        await app.conversation.add_user("Upgrade trl and peft")
        await feed(app, *turn(""), ApprovalRequired(items=[PIP]))
        await pilot.pause(0.2)
        await pilot.press("A")
        await pilot.pause()

    assert snap_compare(AppUnderTest(cwd=PROJECT), terminal_size=SIZE, run_before=run_before)


def test_yolo_budget_pause_card(snap_compare):
    """The budget pause: a warning notice "YOLO paused: $5.02 spent of the $5.00 cap" in the
    conversation (no tool card), the YOLO badge at "$0.00 left" in red, and the modal titled
    "Raise the YOLO budget?" saying the agent is paused, with spent $5.02, cap $5.00, new cap
    $10.00 and the keys: y raise the cap to $10.00 · e another amount · n stop here · esc
    leave pending."""

    item = ApprovalItem(tool_call_id="yolo-budget-1", tool="yolo_budget",
                        arguments={"cap_usd": 5.0, "spent_usd": 5.0213, "new_cap_usd": 10.0},
                        reason="YOLO budget reached: $5.02 spent of the $5.00 cap (model calls and compute).")

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        app.update_status(mode="yolo", yolo_cap_usd=5.0, budget_left_usd=0.0)
        await app.conversation.add_user("Keep sweeping learning rates")
        await feed(app, *turn(""), ApprovalRequired(items=[item]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_yolo_badge_with_budget_left(snap_compare):
    """ctrl+t into YOLO as the engine confirms it: the status bar's red YOLO badge reads
    "$3.20 left", and a notice says what yolo approves and "YOLO budget: $3.20 left of the
    $5.00 cap"; the footer lists ^t Mode."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), SettingsChanged(model="anthropic/claude-sonnet-4-5", model_label="anthropic/claude-sonnet-4-5",
                                                 effort=None, yolo=True, yolo_cap_usd=5.0, context_window=200_000,
                                                 approval_mode="yolo", budget_left_usd=3.2))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_yolo_badge_80x24(snap_compare):
    """At 80×24 the YOLO badge keeps its budget ("YOLO $3.20 left") beside the model; the
    compact footer still shows ^t Mode."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        app.update_status(mode="yolo", yolo_cap_usd=5.0, budget_left_usd=3.2)
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=(80, 24), run_before=run_before)


# --------------------------------------------------------------------------- the model picker

def _offer(provider: str, price: tuple[float, float] | None, context: int = 262_144, live: bool = True,
           tools: bool = True) -> ModelOffer:
    return ModelOffer(provider=provider, live=live, input_per_mtok=price[0] if price else None,
                      output_per_mtok=price[1] if price else None, context=context, tools=tools)


def _router(model_id: str, price: tuple[float, float] | None, basis: str, context: int | None, tools: bool | None,
            offers: list[ModelOffer], warning: str | None = None) -> ModelChoice:
    live = sum(o.live for o in offers)
    return ModelChoice(id=model_id, source="router", input_per_mtok=price[0] if price else None,
                       output_per_mtok=price[1] if price else None, price_basis=basis, context=context, tools=tools,
                       warning=warning, offers=offers,
                       detail=f"{live} live provider{'s' if live != 1 else ''}" if live else "no live provider")


QWEN_CODER = "Qwen/Qwen3-Coder-480B-A35B-Instruct"
LOCAL_NOTE = ("vllm at http://127.0.0.1:8000/v1: 1 model; llamacpp at http://127.0.0.1:8080/v1: 1 model; "
              "nothing at http://localhost:11434/v1, http://localhost:1234/v1")


def model_list(**changes) -> ModelList:
    """What a session on the router's Qwen coder offers: itself (3 live providers, one pinned
    price each), two recent models, two local servers' models and the router's catalog."""
    choices = [
        _router(QWEN_CODER, (2.0, 2.0), "dearest of 3 live providers (together)", 262_144, True,
                [_offer("novita", (0.3, 1.3)), _offer("together", (2.0, 2.0)), _offer("hyperbolic", (2.0, 2.0)),
                 _offer("fireworks-ai", (0.45, 1.8), live=False)]).model_copy(update={"source": "current"}),
        ModelChoice(id="anthropic/claude-sonnet-4-5", source="recent", input_per_mtok=3.0, output_per_mtok=15.0,
                    price_basis="litellm's price list", context=200_000, tools=True, detail="used 2 h ago"),
        ModelChoice(id="openai/gpt-5", source="recent", input_per_mtok=1.25, output_per_mtok=10.0,
                    price_basis="litellm's price list", context=400_000, tools=True, detail="used 3 days ago"),
        ModelChoice(id="vllm/Qwen/Qwen2.5-7B-Instruct", source="local", input_per_mtok=0.0, output_per_mtok=0.0,
                    price_basis="local, free", context=32_768, detail="vllm at http://127.0.0.1:8000/v1"),
        ModelChoice(id="llamacpp/SmolLM2-135M-Instruct.Q4_1.gguf", source="local", input_per_mtok=0.0,
                    output_per_mtok=0.0, price_basis="local, free", detail="llamacpp at http://127.0.0.1:8080/v1"),
        _router("deepseek-ai/DeepSeek-V3.1", (0.27, 1.0), "dearest of 2 live providers (novita)", 131_072, True,
                [_offer("novita", (0.27, 1.0), 131_072), _offer("fireworks-ai", (0.56, 1.68), 163_840)]),
        _router("google/gemma-3-27b-it", (0.09, 0.16), "nebius's price", 131_072, False,
                [_offer("nebius", (0.09, 0.16), 131_072, tools=False)],
                warning="No live provider of google/gemma-3-27b-it supports tool calls: the agent could only "
                        "answer in text."),
        _router("meta-llama/Llama-3.3-70B-Instruct", (0.88, 0.88), "dearest of 4 live providers (together)", 131_072,
                True, [_offer(p, (0.6 + n * 0.1, 0.6 + n * 0.1), 131_072) for n, p in
                       enumerate(("cerebras", "groq", "nebius", "together"))]),
        _router("moonshotai/Kimi-K2-Instruct", (1.0, 3.0), "dearest of 2 live providers (groq)", 131_072, True,
                [_offer("novita", (0.57, 2.3), 131_072), _offer("groq", (1.0, 3.0), 131_072)]),
        _router("openai/gpt-oss-120b", (0.15, 0.6), "dearest of 3 live providers (fireworks-ai)", 131_072, True,
                [_offer(p, (0.1, 0.5), 131_072) for p in ("cerebras", "groq", "fireworks-ai")]),
        _router("Qwen/Qwen2.5-72B-Instruct", (0.38, 0.4), "novita's price", 32_768, True,
                [_offer("novita", (0.38, 0.4), 32_768)]),
        _router("Qwen/Qwen3-235B-A22B-Instruct-2507", None, "price unknown", 262_144, True,
                [_offer("nscale", None)]),
        _router("zai-org/GLM-4.5", (0.6, 2.2), "dearest of 2 live providers (novita)", 131_072, True,
                [_offer("novita", (0.6, 2.2), 131_072), _offer("zai-org", (0.6, 2.2), 131_072)]),
    ]
    fields = dict(current=QWEN_CODER, choices=choices, router="live", router_note="fetched just now",
                  local_pending=False, local_note=LOCAL_NOTE)
    fields.update(changes)
    return ModelList(**fields)


def test_model_picker_with_router_local_and_recent_models(snap_compare):
    """/model over a session on the router's Qwen coder: the "Switch model" modal with the filter
    box (placeholder), the status lines "Router catalog: live, fetched just now · 13 models" and
    the local servers that answered, then the list under its header (model, $/Mtok in / out,
    ctx, tools, detail) in groups: In use (the Qwen coder, bold, highlighted), Recent (Claude
    $3.00 / $15.00 used 2 h ago, GPT-5), Local servers (two models, "free", "?" for unknown
    tools), Hugging Face router · 8 (gemma marked ⚠ with ✗ tools, a "?" price for the Qwen3
    235B). Below, the detail area for the highlighted model: its price basis ("dearest of 3
    live providers (together)"), context 262,144 tokens and its providers (novita, together,
    hyperbolic live with prices; fireworks-ai ○ not live). Key line at the bottom."""

    async def run_before(pilot):
        from mlintern_tui.screens.model_picker import ModelPicker

        app = pilot.app
        await feed(app, ready())
        screen = ModelPicker()
        await app.push_screen(screen)
        screen.query_one("#model-filter").cursor_blink = False
        await feed(app, model_list())
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- MCP servers

USER_CONFIG = "/home/me/.config/mlintern/config.json"
PROJECT_MCP = "/home/me/sft-project/.mcp.json"
SHELL_LOG = "/home/me/.local/share/mlintern/mcp/shell.log"
HF_TOOLS = ["hf_whoami", "space_search", "model_search", "paper_search", "dataset_search", "hub_repo_details",
            "hf_doc_search", "hf_doc_fetch"]


def mcp_status(**states: str) -> McpStatus:
    """A session with a server in every state: papers ready (3 tools, 1 left out), github
    connecting, shell failed with its stderr's last lines, notes turned off, two project
    servers waiting for trust, and Hugging Face's own server ready. ``states`` changes one
    server's state by name (its error and tools follow)."""
    servers = [
        McpServerInfo(name="papers", state="ready", origin="user", transport="stdio", target="uvx arxiv-mcp-server",
                      tools=["search_papers", "download_paper", "read_paper"], hidden_tools=1, source=USER_CONFIG,
                      log_path="/home/me/.local/share/mlintern/mcp/papers.log"),
        McpServerInfo(name="github", state="connecting", origin="user", transport="stdio",
                      target="npx -y @modelcontextprotocol/server-github", source=USER_CONFIG,
                      log_path="/home/me/.local/share/mlintern/mcp/github.log"),
        McpServerInfo(name="shell", state="failed", origin="user", transport="stdio",
                      target="python -m shell_mcp --root /home/me/sft-project", source=USER_CONFIG, log_path=SHELL_LOG,
                      error=(f"McpError: Connection closed\nlast lines of its stderr ({SHELL_LOG}):\n"
                             "Traceback (most recent call last):\n"
                             '  File "/home/me/tools/shell_mcp/__main__.py", line 3, in <module>\n'
                             "    from fastmcp import FastMCP\n"
                             "ModuleNotFoundError: No module named 'fastmcp'")),
        McpServerInfo(name="notes", state="disabled", origin="user", transport="http",
                      target="https://notes.example.com/mcp", source=USER_CONFIG),
        McpServerInfo(name="scratch", state="untrusted", origin="project", transport="stdio",
                      target="uvx scratch-mcp --db ./scratch.db", source=PROJECT_MCP,
                      error=f"from {PROJECT_MCP}, which you have not trusted yet"),
        McpServerInfo(name="lint", state="untrusted", origin="project", transport="stdio",
                      target="node tools/lint-server.js", source=PROJECT_MCP,
                      error=f"from {PROJECT_MCP}, which you have not trusted yet"),
        McpServerInfo(name="hf", state="ready", origin="default", transport="http", target="https://huggingface.co/mcp",
                      approval="auto", tools=HF_TOOLS, source="built in"),
    ]
    for n, server in enumerate(servers):
        state = states.get(server.name)
        if state is None:
            continue
        change: dict = {"state": state}
        if state != "ready":
            change["tools"] = []
        if state in ("ready", "connecting", "disabled"):
            change["error"] = None
        if state == "failed" and not server.error:
            change["error"] = "timed out"
        servers[n] = server.model_copy(update=change)
    untrusted = any(s.state == "untrusted" for s in servers)
    return McpStatus(servers=servers, untrusted_project=PROJECT_MCP if untrusted else None)


def test_mcp_servers_in_every_state(snap_compare):
    """/mcp with a server in every state. At the top, in warning colour, "⚠ ./.mcp.json asks to
    run 2 servers: review them, T to trust"; the list: papers ✓ ready · 3 tools, github …
    connecting…, shell ✗ failed (red), notes ○ disabled, scratch and lint ⚠ untrusted, hf ✓
    ready · 8 tools, each with where it comes from (user · stdio, project · stdio, built-in ·
    http) and its command line or URL; the count "2 ready (11 tools), 1 connecting, 1 failed, 2
    untrusted, 1 disabled" on the bottom border. shell is highlighted: its detail says it comes
    from your config, asks before each call, what it runs, "Failed: McpError: Connection
    closed" in red and its stderr's last lines (the ModuleNotFoundError) muted below, and "r
    tries again · e turns it off for this session"; the key line offers T trust."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), mcp_status())
        app.show_mcp_screen()
        await pilot.pause()
        await pilot.press("down", "down")
        await pilot.pause()

    assert snap_compare(AppUnderTest(cwd=PROJECT), terminal_size=SIZE, run_before=run_before)


def test_mcp_tools_listed_80x24(snap_compare):
    """/mcp at 80×24 once the project is trusted (no trust line; scratch and lint connecting…):
    every server on one line (long command lines and URLs cut with "…"), hf highlighted (end)
    and its tool list unfolded with t ("8 tools: hf_whoami · space_search · …", wrapped) under
    "read-only tools run without asking, the rest ask"; the key line fits: ↑↓ select · r
    reconnect · e disable · t tools · esc close."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), mcp_status(scratch="connecting", lint="connecting"))
        app.show_mcp_screen()
        await pilot.pause()
        await pilot.press("end", "t")
        await pilot.pause()

    assert snap_compare(AppUnderTest(cwd=PROJECT), terminal_size=(80, 24), run_before=run_before)


def test_mcp_notices_in_the_conversation(snap_compare):
    """What the conversation says when the servers' first status arrives, with no modal: a
    warning notice "./.mcp.json asks to run 2 MCP servers: scratch (uvx scratch-mcp --db
    ./scratch.db); lint (node tools/lint-server.js). They run only once you trust the file: /mcp
    to review them, then T." and a red one "MCP server shell failed: McpError: Connection
    closed — /mcp for details". Nothing about hf, papers or github."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), mcp_status())
        await pilot.pause()

    assert snap_compare(AppUnderTest(cwd=PROJECT), terminal_size=SIZE, run_before=run_before)


SHELL_CALL = ApprovalItem(
    tool_call_id="m1", tool="shell__bash",
    arguments={"command": "pytest -x tests/test_data.py", "cwd": "/home/me/sft-project", "timeout_s": 120,
               "env": {"PYTHONHASHSEED": "0"}},
    reason="MCP server 'shell' (user config): bash runs there, and what it changes is not known here",
)


def test_approval_card_for_an_mcp_tool(snap_compare):
    """An MCP tool's call waiting: "Approval 1 of 1 · shell__bash", the reason naming the server
    and its config in warning colour ("MCP server 'shell' (user config): bash runs there, and
    what it changes is not known here"), then its JSON arguments (command, cwd, timeout_s,
    env) pretty-printed under "arguments", and the key line; behind it the tool card waits ⏸."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Run the data tests on the shell server")
        await feed(app, *turn(""), ApprovalRequired(items=[SHELL_CALL]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- shared traces

TRACE_BASE = "sessions/2025-06-02/3f2a9c1e-7b44-4c1d-9e0a-5d2f8b6c1a07"
TRACE_FILES = [f"{TRACE_BASE}.jsonl", f"{TRACE_BASE}/subagents/agent-r1.jsonl",
               f"{TRACE_BASE}/subagents/agent-r1.meta.json"]
TRACE_URL = "https://huggingface.co/datasets/alice/mlintern-sessions"
#: the wall clock of the trace tests (a status's upload time is three minutes before it)
TRACE_NOW = 1_750_000_000.0


def trace_findings() -> list[TraceFinding]:
    """Findings of several kinds, as agent/redaction.py words them: tokens in a command and in
    a tool's output, a secret assignment, a bearer token, the home directory, and a line with two
    secrets (both shortened)."""
    return [
        TraceFinding(record=3, field="message.content[0].input.command", kind="Hugging Face token",
                     context="export HF_TOKEN=⟦hf_a…⟧ && python train.py --push-to-hub alice/qwen-support"),
        TraceFinding(record=4, field="message.content[0].content", kind="Hugging Face token",
                     context="Token is valid (permission: write). HF_TOKEN=⟦hf_a…⟧ OPENAI_API_KEY=⟦sk-p…⟧"),
        TraceFinding(record=4, field="message.content[0].content", kind="OpenAI key",
                     context="Token is valid (permission: write). HF_TOKEN=⟦hf_a…⟧ OPENAI_API_KEY=⟦sk-p…⟧"),
        TraceFinding(record=7, field="message.content[1].input.command", kind="secret assignment",
                     context="WANDB_API_KEY=⟦9f3c…⟧ accelerate launch train.py --config configs/lora.yaml"),
        TraceFinding(record=9, field="message.content[0].content", kind="bearer token",
                     context='curl -s -H "Authorization: Bearer ⟦eyJh…⟧" https://api.example.com/v1/runs'),
        TraceFinding(record=12, field="cwd", kind="home directory", context="⟦/home/alice⟧/sft-project"),
        TraceFinding(record=12, field="message.content[0].input.path", kind="home directory",
                     context="⟦/home/alice⟧/sft-project/data/tickets.jsonl"),
    ]


def trace_preview(findings: list[TraceFinding] | None = None, **changes) -> TracePreview:
    fields = dict(records=42, bytes=18_734, files=TRACE_FILES,
                  findings=trace_findings() if findings is None else findings)
    fields.update(changes)
    return TracePreview(**fields)


def test_trace_preview_with_findings_of_several_kinds(snap_compare):
    """The trace preview after /share-traces private: "This session's trace, 42 records, 18.3 KB,
    will be uploaded to your private dataset." and a muted line saying nothing leaves until you
    accept and what ⟦ ⟧ mean; the three files; then the findings by kind, most frequent first
    and then in the trace's order (Hugging Face token · 2, home directory · 2, OpenAI key, secret
    assignment, bearer token), each with its record and field muted and the text around it with the ⟦…⟧ parts
    bold in the warning colour. The first finding is highlighted; the bottom border counts "7
    masked: 2 Hugging Face token · 2 home directory · 1 OpenAI key · …"; the key line on one line: a
    accept and upload · m mask a pattern · enter mask the text before the highlighted finding ·
    n/esc not now."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready(), TraceStatus(visibility="private"), trace_preview())
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_share_traces_status_notice(snap_compare):
    """What /share-traces says once the trace was uploaded: an info notice "Trace sharing:
    private (redacted, to your private dataset on the Hub)." then "Last upload 3 min ago:" and
    the dataset's URL; below it a red notice for a later failed upload, the same two lines and
    "Upload failed: 503 Service Unavailable (will retry)."."""

    async def run_before(pilot):
        app = pilot.app
        app.wall_clock = lambda: TRACE_NOW
        await feed(app, ready(),
                   TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 180, accepted=True),
                   TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 180, accepted=True,
                               error="503 Service Unavailable (will retry)"))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- the experiment board

#: when the board's runs started (a Monday morning)
RUNS_T0 = 1_750_060_800.0
RUN_A, RUN_B, RUN_C = "6890f1a2b3c4d5e6f7a8b9c0", "68a03c5d7e9f1a2b3c4d5e6f", "local-7e8f9a0b1c"


def run_log(start: float, floor: float, rate: float, steps: int = 300) -> list[str]:
    """A Trainer log: a train loss every 10 steps falling from ``start`` towards ``floor``, an
    eval every 100 steps, the last one with an accuracy."""
    lines = []
    for step in range(10, steps + 1, 10):
        loss = floor + (start - floor) * (1 - rate) ** step
        lines.append(f"{{'loss': {loss:.4f}, 'learning_rate': 5e-05, 'epoch': {step / 100:.2f}, 'step': {step}}}")
        if step % 100 == 0:
            lines.append(f"{{'eval_loss': {loss + 0.06:.4f}, 'eval_accuracy': {0.9 - loss / 4:.4f}, "
                         f"'eval_runtime': 4.2, 'epoch': {step / 100:.2f}, 'step': {step}}}")
    return lines


def experiment_runs(log_dir: Path | None = None) -> list:
    """Three runs of one SFT task that differ in learning rate, epochs, batch size and LoRA rank:
    two finished on an a10g-large, one on this machine that ended in an error. With ``log_dir``
    each run's Trainer log is written there (the compare view reads its curves)."""
    from agent.protocol import ExperimentRun

    common = {"model_name_or_path": "Qwen/Qwen2.5-0.5B", "dataset_name": "alice/support-tickets",
              "lr_scheduler_type": "cosine", "seed": "42", "output_dir": "out"}
    specs = [
        (RUN_A, "COMPLETED", "hf", "a10g-large", 0, 1843, 0.52,
         {"learning_rate": "2e-4", "num_train_epochs": "3", "per_device_train_batch_size": "8", "lora_r": "16"},
         (2.3, 0.85, 0.012), "alice/qwen-support-lr2e-4"),
        (RUN_B, "COMPLETED", "hf", "a10g-large", 2400, 2112, 0.60,
         {"learning_rate": "5e-5", "num_train_epochs": "3", "per_device_train_batch_size": "8", "lora_r": "32"},
         (2.3, 1.05, 0.006), "alice/qwen-support-lr5e-5"),
        (RUN_C, "ERROR", "local", "", 5100, 388, None,
         {"learning_rate": "1e-3", "num_train_epochs": "1", "per_device_train_batch_size": "16", "lora_r": "16"},
         (2.3, 1.6, 0.02), None),
    ]
    runs = []
    for job_id, status, backend, flavor, offset, duration, cost, params, curve, repo in specs:
        lines = run_log(*curve, steps=300 if status == "COMPLETED" else 120)
        log_path = None
        if log_dir is not None:
            log_path = log_dir / f"{job_id}.log"
            log_path.write_text("\n".join(lines) + "\n")
        losses = [float(line.split("'loss': ")[1].split(",")[0]) for line in lines if "'loss'" in line]
        evals = [float(line.split("'eval_loss': ")[1].split(",")[0]) for line in lines if "eval_loss" in line]
        metrics = {"final_loss": losses[-1], "best_loss": min(losses), "steps": float(len(losses) * 10)}
        if evals:
            metrics.update(final_eval_loss=evals[-1], best_eval_loss=min(evals),
                           eval_accuracy=round(0.9 - losses[-1] / 4, 4))
        command = "python train.py " + " ".join(f"--{k} {v}" for k, v in params.items())
        runs.append(ExperimentRun(
            job_id=job_id, session_id="s1", cwd="/home/alice/sft-project", status=status, backend=backend,
            flavor=flavor, started_at=RUNS_T0 + offset, finished_at=RUNS_T0 + offset + duration, duration_s=duration,
            cost_usd=cost, command=command, model_id="Qwen/Qwen2.5-0.5B", dataset_id="alice/support-tickets",
            hyperparameters={**common, **params}, metrics=metrics, output_repo=repo,
            log_path=str(log_path) if log_path else f"/home/alice/.local/share/mlintern/jobs/{job_id}/log.txt",
            turn=3 + len(runs)))
    return runs


async def open_board(pilot, runs: list) -> None:
    """/runs (no session: nothing is asked), then the runs as three run_record events."""
    from agent.protocol import RunRecord

    app = pilot.app
    app.cwd = Path("/home/alice/sft-project")
    await feed(app, ready())
    app.prompt.text = "/runs"
    app.prompt.action_submit()
    await pilot.pause()
    await feed(app, *[RunRecord(run=r) for r in runs])
    await pilot.pause()


def test_run_board_with_three_runs(snap_compare):
    """/runs over three runs sorted by best loss, lowest first (the "best▲" header in the accent
    colour, the border says "3 runs · 2 marked · by best, lowest first"): for each run its job id,
    status (✓ completed in green, ✗ error in red), hardware (a10g-large, local), the four
    hyper-parameters that differ (lr, epochs, batch, lora_r, in the secondary colour), final and best
    loss, best eval loss, accuracy, time and cost ($0 for the local one); the model and dataset, the
    same in every run, fold away at this width. The first and third rows are marked with ◆, the
    second highlighted. Under the table everything about it: command, model and dataset, output
    repo, every parameter and metric, its log; the key line at the bottom."""

    async def run_before(pilot):
        await open_board(pilot, experiment_runs())
        board = pilot.app.screen
        await pilot.press(*["s"] * board.table.sort_keys().index("best_loss"))
        await pilot.press("home", "space", "down", "down", "space", "up")
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_run_compare_view(snap_compare, tmp_path):
    """c on the board with two runs marked: "Compare 2 runs", a Markdown table with a column per
    run (status, model, dataset, hardware, duration, cost, then the parameters that differ -
    learning_rate, lora_r - and every metric), "Same in every run: …" under it; below, both runs'
    train loss curves on one pair of axes (the first in the accent colour, the second in the
    warning colour, falling from 2.3 and levelling off at different heights over 300 steps) and a
    legend with each job id and its best loss."""

    async def run_before(pilot):
        from widgets.run_curves import RunCurves

        await open_board(pilot, experiment_runs(tmp_path))
        await pilot.press("home", "down", "space", "down", "space", "c")  # newest first: the two a10g-large runs
        app = pilot.app
        for _ in range(200):
            if app.screen.query(RunCurves) and not app.screen.query_one(RunCurves).waiting:
                break
            await pilot.pause(0.02)
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


# --------------------------------------------------------------------------- compaction and the doom loop

LEDGER_SUMMARY = """## Goal
Fine-tune Qwen2.5-0.5B on alice/support-tickets with LoRA and push the best run.
## Done
- Inspected the dataset: 12,400 rows, columns text / label / lang; 3% empty texts dropped.
- Sweep of 3 runs: lr 2e-4 is best (best eval loss 0.91); lr 1e-3 diverged.
## Next
- Push run 6890f1a2 to alice/qwen-support; write the model card."""


def test_compaction_ledger_card(snap_compare):
    """A compaction's ledger card unfolded (enter on it, scrolled to its top): the one line the notice
    said (182,400 → 41,800 tokens, 212 → 19 messages, summary) with ▾, then "Summary now standing for
    them" and the summary rendered as Markdown (Goal / Done / Next with bullets), then "Summarised (6)"
    and a "·" line per message that went (user prompt, assistant tool calls, tool results), all inside
    the secondary colour's left border; the footer offers "⏎ Summary and what went"."""

    async def run_before(pilot):
        from widgets.compaction_card import CompactionLedgerCard

        app = pilot.app
        await feed(app, ready(), ContextUsage(tokens=182_000, window=200_000, threshold=180_000))
        await app.conversation.add_user("Keep going with the sweep")
        await feed(app, Processing(), Compacted(
            tokens_before=182_400, tokens_after=41_800, messages_before=212, messages_after=19, method="summary",
            detail="190 messages summarised", summary=LEDGER_SUMMARY,
            dropped=["user: Fine-tune Qwen2.5-0.5B on my support tickets and push the best model",
                     "assistant → hf_datasets {\"operation\": \"inspect\", \"repo_id\": \"alice/sup",
                     "result of hf_datasets: 12,400 rows · columns text, label, lang · 372 empty texts",
                     "assistant → hf_jobs {\"operation\": \"run\", \"hardware_flavor\": \"a10g-lar",
                     "result of hf_jobs: Job 6890f1a2b3c4d5e6f7a8b9c0 completed after 30m43s, $0.52",
                     "assistant: The sweep's best run is lr 2e-4 (best eval loss 0.91)."]))
        card = app.conversation.query(CompactionLedgerCard).last()
        card.focus()
        await pilot.press("enter")
        await pilot.pause()
        app.conversation.scroll_to_widget(card, top=True, animate=False)  # its head, not only its tail
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)


def test_doom_loop_card(snap_compare):
    """A paused repetition guard: the warning notice stays in the conversation, and over it the
    "Repetition guard" card (warning border): "The agent is going in circles: the turn is paused",
    the guard's sentence, the three repeated bash calls muted, "41,230 tokens and $0.1269 spent in
    the loop" in the warning colour, then the four remedies with their keys in the accent colour
    (s stop here, h continue with a hint, m switch model, c continue) and the key line."""

    async def run_before(pilot):
        app = pilot.app
        await feed(app, ready())
        await app.conversation.add_user("Make the tests pass")
        calls = []
        for i in range(3):
            calls += [ToolCallEvent(tool_call_id=f"t{i}", tool="bash", arguments={"command": "pytest -x tests/test_data.py"}),
                      ToolOutput(tool_call_id=f"t{i}", tool="bash", output="FAILED tests/test_data.py::test_split - "
                                 "KeyError: 'label'", success=False)]
        await feed(app, *turn(""), *calls, Guard(
            kind="doom_loop", ends_turn=True, tokens_spent=41_230, cost_usd=0.1269,
            message="Repetition guard: bash called 3× with identical arguments and results. The turn is paused: "
                    "continue, send a hint, or switch model.",
            repeated=['bash {"command": "pytest -x tests/test_data.py"}'] * 3,
            remedies=["stop", "hint", "switch_model", "continue"]))
        await pilot.pause(0.2)

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)
