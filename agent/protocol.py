"""The one contract between the engine and every front end.

Operations flow front end -> engine through the session's submission queue; events flow
engine -> every subscriber through the event bus. Both are pydantic models discriminated by
their ``type`` literal, so a front end, the store or a test can parse any line of
``--output-format stream-json`` back into the exact model with ``parse_event``.
"""

# No "from __future__ import annotations" here: with it every field's annotation is a string
# that pydantic evaluates when it makes the class, ~5 ms of the ~20 this module took on the
# way to the first frame.

import time
import typing
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticSerializationError

# --------------------------------------------------------------------------- shared data
#
# Every model here is built with ``defer_build``: pydantic then makes a class's validator on
# its first use instead of at import, and the app imports this module before its first
# frame (32 -> 11 ms measured).


class Envelope(BaseModel):
    """Fields every op and event carries. The session stamps them on events."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    seq: int = 0
    ts: float = Field(default_factory=time.time)
    session_id: str = ""
    turn: int = 0

    def model_dump_json(self, **kwargs: Any) -> str:
        """The op or event as one JSON line, always. The engine cleans text where it comes in
        (agent/encodable.py); a string UTF-8 cannot encode that got past it (a lone surrogate)
        is shown as U+FFFD here instead of failing the line, the store or ``stream-json``."""
        try:
            return super().model_dump_json(**kwargs)
        except PydanticSerializationError:
            from agent.encodable import encodable_value

            clean = type(self).model_validate(encodable_value(self.model_dump()))
            return super(Envelope, clean).model_dump_json(**kwargs)


ApprovalMode = Literal["ask", "auto", "yolo"]
RuleScope = Literal["project", "user"]


class ApprovalRule(BaseModel):
    """A standing "always allow" / "always deny" answer with an exact scope: one tool, one
    operation (None: any) and one argument pattern (None: any). What the pattern is matched
    against depends on the tool (``agent.rules``): a bash command prefix, a hardware flavour,
    a path or a repo id glob. ``label`` is that scope in words, filled in by the engine."""

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    effect: Literal["allow", "deny"]
    tool: str
    operation: str | None = None
    pattern: str | None = None
    #: where the rule is kept (None: not saved yet)
    scope: RuleScope | None = None
    label: str = ""


class ToolDecision(BaseModel):
    """The user's answer to one call of an ``approval_required`` batch.

    ``remember`` also saves the answer as a rule (allow when approved, deny when not) for
    this project or for every project of this user; the rule is the item's
    ``suggested_rule`` unless ``rule`` gives another scope."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    tool_call_id: str
    approved: bool
    feedback: str | None = None
    edited_args: dict[str, Any] | None = None
    remember: RuleScope | None = None
    rule: ApprovalRule | None = None


class PlanItem(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    id: str
    content: str
    status: Literal["pending", "in_progress", "completed"]


class HubWriteFile(BaseModel):
    """One file a Hub write adds, replaces or deletes."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    path: str
    change: Literal["add", "update", "delete"] = "add"
    #: bytes that will be uploaded (None: unknown, e.g. a delete or an unreadable file)
    size: int | None = None
    #: where the bytes come from: inline ``content`` or a local path
    source: str = ""


class HubWriteReview(BaseModel):
    """What a Hub write will do, for the approval card: shown before anything is sent."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    repo_id: str
    repo_type: Literal["model", "dataset", "space"] = "model"
    operation: str
    #: "public" is flagged in the warning colour; "new" repos take ``private`` from the call
    visibility: Literal["public", "private", "unknown"] = "unknown"
    #: the repo does not exist yet (a create, or an upload that will create it)
    creates_repo: bool = False
    revision: str | None = None
    create_pr: bool = False
    files: list[HubWriteFile] = Field(default_factory=list)
    total_bytes: int = 0
    #: unified diff of README.md (the model card) when the write changes it
    card_diff: str | None = None
    #: anything the reviewer should know (e.g. "the visibility could not be checked: ...")
    notes: list[str] = Field(default_factory=list)


class ApprovalItem(BaseModel):
    """One call waiting for a human: what it is, and why it could not run on its own."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    reason: str = ""
    estimated_cost_usd: float | None = None
    #: the scope "always" would save for this call; None when "always" is not offered
    #: (scheduled jobs, budget pauses, compound shell commands)
    suggested_rule: ApprovalRule | None = None
    #: a call a human must look at on its own (scheduled jobs): "approve all" stops at it
    always_ask: bool = False
    #: a Hub write's target, files, sizes and card diff (hf_repo_files / hf_repo_git writes)
    review: HubWriteReview | None = None


class Usage(BaseModel):
    """Token usage normalised across providers."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
        )


class Receipt(BaseModel):
    """What one turn cost. Costs are the sum of the calls whose price is known; calls with
    an unknown price are counted separately so a front end can say "+ unknown", never $0."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    usage: Usage = Field(default_factory=Usage)
    llm_calls: int = 0
    llm_cost_usd: float = 0.0
    unknown_cost_calls: int = 0
    #: the part of the above made by research sub-agents (``llm_call`` kind "research")
    research_llm_calls: int = 0
    research_cost_usd: float = 0.0
    #: jobs and sandboxes launched in this turn: final cost, or cost so far while running
    compute_cost_usd: float = 0.0
    #: jobs of this turn whose hardware has no known price (not in the sum)
    unknown_compute_jobs: int = 0
    #: everything spent in the session: model calls and compute
    session_cost_usd: float = 0.0
    session_unknown_cost_calls: int = 0
    budget_left_usd: float | None = None
    #: False while some spend has no known price: ``budget_left_usd`` is an upper bound
    budget_exact: bool = True


# --------------------------------------------------------------------------- operations


class UserInput(Envelope):
    type: Literal["user_input"] = "user_input"
    text: str


class ExecApproval(Envelope):
    type: Literal["exec_approval"] = "exec_approval"
    decisions: list[ToolDecision]


class Interrupt(Envelope):
    type: Literal["interrupt"] = "interrupt"


class Pin(Envelope):
    """Keep a fact or a message through every compaction (``/pin TEXT``); ``remove`` unpins it."""

    type: Literal["pin"] = "pin"
    text: str
    remove: bool = False


class Compact(Envelope):
    type: Literal["compact"] = "compact"
    focus: str | None = None
    #: only show what it would summarise and keep (``compaction_preview``); nothing changes
    preview: bool = False


class Undo(Envelope):
    type: Literal["undo"] = "undo"


class New(Envelope):
    type: Literal["new"] = "new"


class Resume(Envelope):
    """Load a stored session (agent/store.py) into this one: its conversation, plan, mode,
    spend, pending approvals and jobs. ``target_session_id`` may be a unique prefix."""

    type: Literal["resume"] = "resume"
    target_session_id: str


class Rename(Envelope):
    """Give the current session a title (shown in the resume picker)."""

    type: Literal["rename"] = "rename"
    title: str


class Shutdown(Envelope):
    type: Literal["shutdown"] = "shutdown"


class SetModel(Envelope):
    type: Literal["set_model"] = "set_model"
    model: str


class Continue(Envelope):
    """Go on with the conversation without a new prompt (after a repetition guard paused the
    turn: "let it continue"); ``hint`` is sent with the guard's note when given."""

    type: Literal["continue"] = "continue"
    hint: str = ""


class ListRuns(Envelope):
    """The experiment board: this project's runs (every session of this directory), the running
    ones included; answered with ``run_list``."""

    type: Literal["list_runs"] = "list_runs"


class Steer(Envelope):
    """A message for the agent while it works: it reaches the model at the next step of the
    running turn (after the tool calls in flight finish, never cutting one). When no turn runs it
    is an ordinary prompt."""

    type: Literal["steer"] = "steer"
    text: str


class ListModels(Envelope):
    """What the model picker offers: answered at once with what is known (``model_list``),
    then again as the router's catalog and the local servers answer. Handled beside a running
    turn, never queued behind it. ``refresh`` asks the router even when its catalog is fresh."""

    type: Literal["list_models"] = "list_models"
    refresh: bool = False


class McpAction(Envelope):
    """Reconnect, enable or disable an MCP server (for this session), trust the project's
    ``.mcp.json`` as it is now, or just ask for the servers' states (``status``). Answered with
    ``mcp_status``; handled beside a running turn."""

    type: Literal["mcp_action"] = "mcp_action"
    action: Literal["status", "reconnect", "enable", "disable", "trust_project"]
    server: str = ""


class Feedback(Envelope):
    """The user's verdict on the session so far (``/feedback good|bad [comment]``), kept with it."""

    type: Literal["feedback"] = "feedback"
    rating: Literal["good", "bad"]
    comment: str = ""


class ShareTraces(Envelope):
    """``/share-traces``: set where the session's traces go (``off``, ``private``, ``public``), or
    with None just ask; answered with ``trace_status``."""

    type: Literal["share_traces"] = "share_traces"
    visibility: Literal["off", "private", "public"] | None = None


class TraceConsent(Envelope):
    """The user's answer to a ``trace_preview``: accept (uploads may start), refuse (nothing is
    uploaded for this session), or ``mask`` more (regular expressions; ``save`` keeps them in the
    config), which sends a new preview."""

    type: Literal["trace_consent"] = "trace_consent"
    accept: bool = False
    mask: list[str] = Field(default_factory=list)
    save: bool = False


class SetEffort(Envelope):
    type: Literal["set_effort"] = "set_effort"
    effort: str | None


class SetYolo(Envelope):
    type: Literal["set_yolo"] = "set_yolo"
    enabled: bool
    cap_usd: float | None = None


class SetApprovalMode(Envelope):
    """Switch between ask / auto / yolo (the mode key cycles through them)."""

    type: Literal["set_approval_mode"] = "set_approval_mode"
    mode: ApprovalMode


Op = Annotated[
    Union[
        UserInput,
        ExecApproval,
        Interrupt,
        Compact,
        Pin,
        Undo,
        New,
        Resume,
        Rename,
        Shutdown,
        SetModel,
        Steer,
        Continue,
        ListRuns,
        ListModels,
        McpAction,
        ShareTraces,
        TraceConsent,
        Feedback,
        SetEffort,
        SetYolo,
        SetApprovalMode,
    ],
    Field(discriminator="type"),
]

# --------------------------------------------------------------------------- events


class Ready(Envelope):
    type: Literal["ready"] = "ready"
    model: str
    model_label: str
    tool_count: int
    cwd: str
    is_demo: bool = False


class Processing(Envelope):
    type: Literal["processing"] = "processing"
    message: str = "Processing user input"
    #: a turn the agent started by itself because these jobs ended (``wake_on_job_end``)
    woke_for: list[str] = Field(default_factory=list)


class UserMessage(Envelope):
    """The user's prompt, as the turn that answers it starts (kept for traces and exports), or a
    message sent while the agent worked, as it reaches the model (``steered``)."""

    type: Literal["user_message"] = "user_message"
    text: str
    #: sent while a turn ran: it joins that turn at its next model step
    steered: bool = False


class AssistantChunk(Envelope):
    """One streamed text delta. ``reset`` tells renderers to drop the partial answer
    (the stream broke and is being retried from the start)."""

    type: Literal["assistant_chunk"] = "assistant_chunk"
    content: str
    reset: bool = False


class AssistantMessage(Envelope):
    """The complete text of one assistant response (after streaming ended)."""

    type: Literal["assistant_message"] = "assistant_message"
    content: str
    final: bool = False
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


class ToolCallEvent(Envelope):
    type: Literal["tool_call"] = "tool_call"
    tool_call_id: str
    tool: str
    arguments: dict[str, Any]
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


class ToolOutput(Envelope):
    type: Literal["tool_output"] = "tool_output"
    tool_call_id: str
    tool: str
    output: str
    success: bool
    spill_path: str | None = None
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


class ToolLog(Envelope):
    """Progress from a running tool (``tool_call_id`` set) or a system notice."""

    type: Literal["tool_log"] = "tool_log"
    tool: str
    log: str
    tool_call_id: str | None = None
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


ToolStateName = Literal[
    "approved", "rejected", "running", "cancelled", "abandoned", "completed", "failed"
]


class ToolState(Envelope):
    type: Literal["tool_state"] = "tool_state"
    tool_call_id: str
    tool: str
    state: ToolStateName
    detail: str = ""
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


class ApprovalRequired(Envelope):
    type: Literal["approval_required"] = "approval_required"
    items: list[ApprovalItem]
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None


class PlanUpdate(Envelope):
    type: Literal["plan_update"] = "plan_update"
    plan: list[PlanItem]


LLMCallKind = Literal["main", "research", "compaction", "effort_probe", "title"]


class LLMCall(Envelope):
    """One request to a model, successful or not. ``cost_usd`` None means unknown."""

    type: Literal["llm_call"] = "llm_call"
    model: str
    kind: LLMCallKind
    latency_ms: int
    usage: Usage = Field(default_factory=Usage)
    cost_usd: float | None = None
    cost_source: str = "unknown"
    finish_reason: str | None = None
    attempt: int = 1
    error: str | None = None
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None
    #: the model named in the server's answer, when it is not the id asked for
    served_model: str | None = None


class Compacted(Envelope):
    type: Literal["compacted"] = "compacted"
    tokens_before: int
    tokens_after: int
    messages_before: int
    messages_after: int
    method: Literal["summary", "truncation", "none"]
    detail: str = ""
    #: the summary now standing for the earlier messages
    summary: str = ""
    #: the messages summarised or dropped, one line each (the ledger)
    dropped: list[str] = Field(default_factory=list)


class CompactionPreview(Envelope):
    """What a compaction summarises and keeps: before ``/compact`` runs (``preview``), or just
    before an automatic one (``automatic``). Pinned facts always survive (they are in the system prompt)."""

    type: Literal["compaction_preview"] = "compaction_preview"
    summarise: list[str] = Field(default_factory=list)
    keep: list[str] = Field(default_factory=list)
    pinned: list[str] = Field(default_factory=list)
    tokens: int = 0
    threshold: int = 0
    automatic: bool = False


class PinsChanged(Envelope):
    """What is pinned now: after a ``pin`` op, a resume (the resumed session's pins) and ``/new``
    (none). Front ends list them (``/pins``) and mark the messages whose text is pinned."""

    type: Literal["pins_changed"] = "pins_changed"
    pins: list[str] = Field(default_factory=list)


GuardKind = Literal[
    "doom_loop",
    "continuation",
    "truncation",
    "iteration_cap",
    "malformed_args",
    "budget",
]


class Guard(Envelope):
    """A guard fired. Always shown to the user; never a silent stop."""

    type: Literal["guard"] = "guard"
    kind: GuardKind
    message: str
    ends_turn: bool = False
    tokens_spent: int | None = None
    cost_usd: float | None = None
    #: set on a research sub-agent's events: the ``research`` call they belong to
    parent_call_id: str | None = None
    #: a repetition guard: the repeated calls ("bash {"command": "pytest"}"), newest last
    repeated: list[str] = Field(default_factory=list)
    #: what the user can do now (a paused turn): stop, hint, switch_model, continue
    remedies: list[str] = Field(default_factory=list)


class JobUpdate(Envelope):
    type: Literal["job_update"] = "job_update"
    job_id: str
    status: str
    flavor: str = ""
    url: str | None = None
    cost_usd: float | None = None
    detail: str = ""


class JobLog(Envelope):
    type: Literal["job_log"] = "job_log"
    job_id: str
    lines: list[str]


TurnEndReason = Literal["done", "iteration_cap", "approval_pending", "budget", "doom_loop"]


class TurnComplete(Envelope):
    type: Literal["turn_complete"] = "turn_complete"
    final_response: str | None
    reason: TurnEndReason = "done"
    history_size: int
    receipt: Receipt = Field(default_factory=Receipt)


class Interrupted(Envelope):
    type: Literal["interrupted"] = "interrupted"
    partial_text: str = ""


class ErrorEvent(Envelope):
    type: Literal["error"] = "error"
    message: str
    kind: str = "error"
    detail: str = ""
    fatal: bool = False


class UndoComplete(Envelope):
    type: Literal["undo_complete"] = "undo_complete"
    removed_messages: int


class NewComplete(Envelope):
    type: Literal["new_complete"] = "new_complete"
    previous_session_id: str


class TranscriptItem(BaseModel):
    """One thing a front end redraws for a resumed conversation (from the stored history)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    kind: Literal["user", "assistant", "tool_call", "tool_output", "note"]
    text: str = ""
    turn: int = 0
    tool: str | None = None
    tool_call_id: str | None = None
    arguments: dict[str, Any] | None = None
    success: bool = True


class AwayJob(BaseModel):
    """A job of a resumed session, as it stood when the session came back."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    job_id: str
    backend: str
    flavor: str = ""
    status: str
    #: what it cost (final when it ended; so far when it runs); None: unknown price
    cost_usd: float | None = None
    #: it ended (or failed, or was lost) while the app was closed
    ended_while_away: bool = False
    detail: str = ""


class ResumeComplete(Envelope):
    type: Literal["resume_complete"] = "resume_complete"
    restored_messages: int
    #: the session that was open before (its store record is kept)
    previous_session_id: str = ""
    title: str = ""
    model: str = ""
    transcript: list[TranscriptItem] = Field(default_factory=list)
    plan: list[PlanItem] = Field(default_factory=list)
    #: the jobs of the session: those that ended while away, and those reattached and running
    jobs: list[AwayJob] = Field(default_factory=list)
    #: the last turn was cut off (the app was killed mid-turn): its dangling calls were repaired
    interrupted: bool = False
    #: seconds since the session was last saved
    away_s: float = 0.0
    #: spend restored (model calls and compute)
    session_cost_usd: float = 0.0
    #: calls and jobs at an unknown price: ``session_cost_usd`` is then what is known of it
    unknown_costs: int = 0


class SessionTitle(Envelope):
    """The session's title changed (``rename``, or the automatic one after the first prompt)."""

    type: Literal["session_title"] = "session_title"
    title: str
    automatic: bool = False


class ShutdownEvent(Envelope):
    type: Literal["shutdown"] = "shutdown"


class SettingsChanged(Envelope):
    """Model, effort or approval settings changed (answer to the settings ops)."""

    type: Literal["settings_changed"] = "settings_changed"
    model: str
    model_label: str
    #: the reasoning effort requests to this model send (None: none), after the cascade
    effort: str | None
    yolo: bool
    yolo_cap_usd: float | None
    context_window: int
    approval_mode: ApprovalMode | None = None
    #: YOLO cap minus spend and open reservations (yolo mode only)
    budget_left_usd: float | None = None
    #: False while some of the session's spend has no known price: ``budget_left_usd`` is
    #: then only an upper bound
    budget_exact: bool = True
    #: False when the model's calls have no known price: YOLO cannot count them against the cap
    model_priced: bool = True
    #: a figure changed on its own (a sandbox's next hour reserved), not an answer to the
    #: user: front ends update what they show without a notice
    quiet: bool = False
    #: the effort the user asked for (``effort`` is lower when the model takes less)
    effort_requested: str | None = None
    #: the model as its server names itself in its answers, when that is not the id asked for
    #: (a local server's weights file, a dated snapshot)
    served_model: str | None = None


class ModelOffer(BaseModel):
    """One router provider's terms for a model (prices in dollars per million tokens)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    provider: str
    live: bool
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    context: int | None = None
    tools: bool = False


ModelSource = Literal["current", "recent", "local", "router"]


class ModelChoice(BaseModel):
    """A model the picker offers; ``id`` is what ``set_model`` takes."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    id: str
    source: ModelSource
    #: the price the session would charge its calls at (None: unknown), and how it was chosen
    input_per_mtok: float | None = None
    output_per_mtok: float | None = None
    price_basis: str = ""
    context: int | None = None
    #: whether it takes tool calls (None: nobody says)
    tools: bool | None = None
    #: why it may not work (no live provider, no tool support, not in the catalog)
    warning: str | None = None
    #: where it runs or when it was last used ("vllm at http://127.0.0.1:8000/v1", "used 2 h ago")
    detail: str = ""
    #: the router's providers (router models only)
    offers: list[ModelOffer] = Field(default_factory=list)


class ModelList(Envelope):
    """The answer to ``list_models`` (sent again as more is known)."""

    type: Literal["model_list"] = "model_list"
    current: str
    choices: list[ModelChoice] = Field(default_factory=list)
    #: the router's catalog: being fetched, just fetched, from the file (the router did not
    #: answer or was not asked yet), or none at all
    router: Literal["loading", "live", "cached", "unavailable"] = "loading"
    #: its age or why it could not be fetched, in words
    router_note: str = ""
    #: local servers on their usual ports are still being asked
    local_pending: bool = True
    #: which local servers answered, and where nothing did
    local_note: str = ""


class McpServerInfo(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    name: str
    #: untrusted: a project's server the user has not agreed to run yet
    state: Literal["connecting", "ready", "failed", "disabled", "untrusted"]
    origin: Literal["user", "project", "default", "cli"]
    transport: str
    #: the command line or URL
    target: str
    approval: Literal["ask", "auto"] = "ask"
    #: the tool names the model sees for it
    tools: list[str] = Field(default_factory=list)
    #: its tools left out by the entry's allow/deny lists
    hidden_tools: int = 0
    #: why it failed or is disabled (with the tail of its stderr for a stdio server)
    error: str | None = None
    #: where its stderr is logged (stdio servers)
    log_path: str | None = None
    #: the file the entry comes from
    source: str = ""


class McpStatus(Envelope):
    """Every MCP server and its state; sent whenever one changes."""

    type: Literal["mcp_status"] = "mcp_status"
    servers: list[McpServerInfo] = Field(default_factory=list)
    #: a project .mcp.json waits for the user's trust (its path)
    untrusted_project: str | None = None


class ExperimentRun(BaseModel):
    """One training job as a run on the experiment board (agent/experiments.py)."""

    model_config = ConfigDict(defer_build=True, extra="forbid")

    job_id: str
    session_id: str = ""
    cwd: str = ""
    status: str
    backend: str
    flavor: str = ""
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    cost_usd: float | None = None
    command: str = ""
    model_id: str | None = None
    dataset_id: str | None = None
    hyperparameters: dict[str, str] = Field(default_factory=dict)
    #: final_loss, best_loss, final_eval_loss, best_eval_loss, eval_* of the last evaluation, steps
    metrics: dict[str, float] = Field(default_factory=dict)
    output_repo: str | None = None
    log_path: str | None = None
    turn: int = 0


class RunRecord(Envelope):
    """A job ended: its run, kept with the session (the board lists it in later sessions too)."""

    type: Literal["run_record"] = "run_record"
    run: ExperimentRun


class RunList(Envelope):
    type: Literal["run_list"] = "run_list"
    runs: list[ExperimentRun] = Field(default_factory=list)


class TelemetryRecord(Envelope):
    """A record of what the session did (agent/telemetry.py): stored with it, not shown."""

    type: Literal["telemetry"] = "telemetry"
    name: Literal["job_submitted", "job_completed", "sandbox_created", "sandbox_destroyed", "feedback"]
    data: dict[str, Any] = Field(default_factory=dict)


class TraceStatus(Envelope):
    """Where this session's trace goes and how its last upload went."""

    type: Literal["trace_status"] = "trace_status"
    visibility: Literal["off", "private", "public"]
    url: str | None = None
    uploaded_at: float | None = None
    error: str | None = None
    #: the user accepted this session's preview (or pre-accepted in the config)
    accepted: bool = False
    #: why nothing can be shared at all (no token, sessions not saved)
    unavailable: str | None = None


class TraceFinding(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    record: int
    field: str
    kind: str
    #: the text around the span, the secret shortened between ⟦ ⟧
    context: str


class TracePreview(Envelope):
    """What would leave the machine with this session's trace, before its first upload."""

    type: Literal["trace_preview"] = "trace_preview"
    records: int
    bytes: int
    files: list[str] = Field(default_factory=list)
    findings: list[TraceFinding] = Field(default_factory=list)


class ContextUsage(Envelope):
    """Pre-flight token count of the next request against the model's window."""

    type: Literal["context_usage"] = "context_usage"
    tokens: int
    window: int
    threshold: int


Event = Annotated[
    Union[
        Ready,
        Processing,
        UserMessage,
        AssistantChunk,
        AssistantMessage,
        ToolCallEvent,
        ToolOutput,
        ToolLog,
        ToolState,
        ApprovalRequired,
        PlanUpdate,
        LLMCall,
        Compacted,
        CompactionPreview,
        PinsChanged,
        Guard,
        JobUpdate,
        JobLog,
        TurnComplete,
        Interrupted,
        ErrorEvent,
        UndoComplete,
        NewComplete,
        ResumeComplete,
        SessionTitle,
        ShutdownEvent,
        SettingsChanged,
        ModelList,
        McpStatus,
        TraceStatus,
        TracePreview,
        TelemetryRecord,
        RunRecord,
        RunList,
        ContextUsage,
    ],
    Field(discriminator="type"),
]

_op_adapter: TypeAdapter[Op] = TypeAdapter(Op, config=ConfigDict(defer_build=True))
_event_adapter: TypeAdapter[Event] = TypeAdapter(Event, config=ConfigDict(defer_build=True))

#: Events after which a turn is over and a front end may take the next prompt.
TERMINAL_EVENTS = frozenset({"turn_complete", "interrupted", "error"})


def parse_op(data: str | bytes | dict[str, Any]) -> Op:
    if isinstance(data, dict):
        return _op_adapter.validate_python(data)
    return _op_adapter.validate_json(data)


def parse_event(data: str | bytes | dict[str, Any]) -> Event:
    if isinstance(data, dict):
        return _event_adapter.validate_python(data)
    return _event_adapter.validate_json(data)


OP_TYPES: tuple[type[Envelope], ...] = typing.get_args(typing.get_args(Op)[0])
EVENT_TYPES: tuple[type[Envelope], ...] = typing.get_args(typing.get_args(Event)[0])
