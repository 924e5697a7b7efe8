"""The full-screen app: wires the session, the bridge and the widgets together.

The first frame does not wait for litellm (4-7 s to import): the engine is built in a
background worker and the status bar says when the model is ready.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
from pathlib import Path
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static, Tab, Tabs

from agent.config import Config, ConfigError, load_config, save_config_value
from agent.costs import CostLedger
from agent.protocol import (
    ApprovalRequired,
    ExecApproval,
    LLMCall,
    Op,
    Ready,
    Receipt,
    SetApprovalMode,
    SettingsChanged,
    Shutdown,
    ToolDecision,
    UserInput,
)
from mlintern_tui import __version__
from mlintern_tui import hangup, heap
from mlintern_tui.bridge import LOG_FLUSH_S, TEXT_FLUSH_S, Bridge
from mlintern_tui.commands import MODE_HELP, MODES, REGISTRY, SlashCommandProvider
from mlintern_tui.jobs_view import JobsViewMixin
from mlintern_tui.screens.approval import GRACE_S, ApprovalAnswer, ApprovalScreen
from themes import DEFAULT_THEME, THEME_VARIABLE_DEFAULTS, THEMES
from widgets.conversation import AnswerBlock, Conversation
from widgets.receipt import cost_report
from widgets.plan import PlanView
from widgets.prompt import PromptArea
from widgets.status import StatusBar, StatusInfo
from widgets.tool_log import ToolLogPane

NARROW_WIDTH = 100
DEMO_BANNER = (
    "Demo model: scripted, no API key; it runs a small real training job. For your own tasks set "
    "ANTHROPIC_API_KEY, OPENAI_API_KEY or HF_TOKEN, start with -m ollama/<model>, or /model <id>. (ctrl+b hides)"
)


class MLInternApp(JobsViewMixin, App):
    TITLE = "mlintern"
    CSS_PATH = Path(__file__).parent / "app.tcss"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}
    AUTO_FOCUS = "PromptArea"
    BINDINGS = [
        Binding("escape", "interrupt", "Interrupt", priority=True),
        # with focus in the jobs pane escape backs out (search, then the pane) instead
        Binding("escape", "leave_jobs", "Back"),
        Binding("ctrl+c", "quit_twice", "Quit (twice)", show=False, priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        # before ctrl+o: what a narrow footer keeps
        Binding("f2", "toggle_side", "Panes"),
        Binding("ctrl+g", "toggle_jobs", "Jobs"),
        Binding("ctrl+t", "cycle_mode", "Mode"),  # ask -> auto -> yolo; the prompt has no ctrl+t
        Binding("ctrl+o", "toggle_last_output", "Expand"),
        Binding("ctrl+y", "copy_answer", "Copy", priority=True),  # over the prompt's redo
        Binding("ctrl+l", "toggle_follow", "Follow"),
        Binding("ctrl+r", "review_approvals", "Approvals", show=False),
        Binding("f3", "toggle_last_receipt", "Receipt"),
        Binding("ctrl+b", "hide_banner", "Hide banner", show=False, priority=True),
        # the prompt keeps focus; page keys scroll the conversation (a short prompt has no pages)
        Binding("pageup", "scroll_conversation(-1)", "Scroll up", show=False, priority=True),
        Binding("pagedown", "scroll_conversation(1)", "Scroll down", show=False, priority=True),
        Binding("ctrl+home", "scroll_conversation_to('home')", "Top", show=False, priority=True),
        Binding("ctrl+end", "scroll_conversation_to('end')", "Bottom", show=False, priority=True),
    ]

    def __init__(
        self,
        *,
        model: str | None = None,
        yolo: bool = False,
        max_iterations: int | None = None,
        config: Config | None = None,
        cwd: Path | None = None,
        start_engine: bool = True,
        jobs_backend: str | None = None,
    ):
        super().__init__()
        self.config_error: str | None = None
        if config is None:
            try:
                config = load_config()
            except ConfigError as exc:  # start on defaults, say why, never overwrite the file
                self.config_error = str(exc)
                config = Config()
        self.config = config
        self.model_arg = model
        self.base_mode = "auto" if config.approval_mode == "yolo" else config.approval_mode
        self.start_mode = "yolo" if yolo else config.approval_mode
        self.max_iterations = max_iterations
        self.cwd = cwd
        self.start_engine = start_engine
        self.jobs_backend = jobs_backend
        self.session = None
        self.bridge = Bridge(self)
        self.costs = CostLedger()
        yolo_cap = config.yolo_cap_usd if self.start_mode == "yolo" else None
        # nothing is spent yet: the whole cap is left until the engine says otherwise
        self.status_info = StatusInfo(mode=self.start_mode, yolo_cap_usd=yolo_cap, budget_left_usd=yolo_cap)
        #: the mode asked for with ctrl+t or /mode that the engine has not confirmed yet
        self._mode_requested: str | None = None
        self.queued: list[tuple[str, Any]] = []
        self.pending_approval: ApprovalRequired | None = None
        self._pending_answers: dict[str, ToolDecision] = {}
        self._last_ctrl_c = 0.0
        self._turn_in = self._turn_out = 0
        self._turn_cost = 0.0
        self._turn_unknown = 0
        self._approval_worker = None
        self.approval_grace_s = GRACE_S
        self._jobs_seen: set[str] = set()
        self.jobs_clock = time.monotonic  # the Jobs pane's elapsed-time clock (tests pin it)

    # ------------------------------------------------------------------ layout

    def get_theme_variable_defaults(self) -> dict[str, str]:
        return dict(THEME_VARIABLE_DEFAULTS)

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield Static(DEMO_BANNER, id="banner", classes="-hidden")
                yield Conversation(id="conversation")
                yield Static("", id="hints")
                yield PromptArea(id="prompt", placeholder="Ask the agent… (enter sends · ctrl+j new line · / commands)")
            with Vertical(id="side"):
                yield PlanView(id="plan")
                tabs = Tabs(Tab("Output", id="tab-output"), Tab("Jobs", id="tab-jobs"), id="side-tabs")
                tabs.can_focus = False  # a click on a tab must leave the prompt focused
                yield tabs
                yield ToolLogPane(id="tool-log")  # the Jobs pane joins it when a job starts
        yield StatusBar(id="status")
        yield Footer()

    @property
    def conversation(self) -> Conversation:
        return self.query_one(Conversation)

    @property
    def plan_view(self) -> PlanView:
        return self.query_one(PlanView)

    @property
    def tool_log(self) -> ToolLogPane:
        return self.query_one(ToolLogPane)

    @property
    def prompt(self) -> PromptArea:
        return self.query_one(PromptArea)

    def on_mount(self) -> None:
        for theme in THEMES:
            self.register_theme(theme)
        self.theme = self.config.theme if self.config.theme in self.available_themes else DEFAULT_THEME
        self.prompt.commands = REGISTRY.hints()
        self.query_one(StatusBar).info = self.status_info
        self._apply_width(self.size.width)
        self.set_interval(TEXT_FLUSH_S, self.bridge.flush_text, name="flush-text")
        self.set_interval(LOG_FLUSH_S, self.bridge.flush_logs, name="flush-logs")
        if self.config_error:
            self.call_later(self.notice, "error", f"{self.config_error}. Running with default settings.")
        if self.start_engine:
            self.boot_engine()
        try:  # a closed terminal: stop tools and local jobs like ctrl+q does, then exit for sure
            loop = asyncio.get_running_loop()
            hangup.install(lambda: loop.call_soon_threadsafe(self.call_later, self.action_quit))
        except (RuntimeError, ValueError, AttributeError):  # not the main thread (tests), or no SIGHUP
            pass

    def watch_theme(self, theme: str) -> None:
        if theme in {t.name for t in THEMES} and theme != self.config.theme and self.is_mounted and not self.config_error:
            try:
                save_config_value("theme", theme)
                self.config.theme = theme
            except ConfigError as exc:
                self.notify(str(exc), severity="error")

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.main_screen.set_class(width < NARROW_WIDTH, "-narrow")
        self.query_one(Footer).compact = width < NARROW_WIDTH  # so f2 and ctrl+g fit in 80 columns
        self.refresh_bindings()  # the footer shows what fits (see check_action)

    # ------------------------------------------------------------------ engine

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def boot_engine(self) -> None:
        from agent.llm.runtime import get_litellm
        from agent.session import Session

        await asyncio.to_thread(get_litellm)
        heap.freeze_long_lived()
        try:
            session = Session(self.config, model_id=self.model_arg, cwd=self.cwd,
                              approval_mode=self.start_mode, max_iterations=self.max_iterations,
                              jobs_backend=self.jobs_backend)
        except Exception as exc:  # bad model id, unreadable cwd ...
            await self.notice("error", f"Could not start the agent: {exc}")
            self.update_status(model_label="no model")
            return
        self.attach_session(session)

    def attach_session(self, session) -> None:
        self.session = session
        policy = session.policy  # the Ready event does not carry the mode: start from the engine's
        self.update_status(mode=policy.mode, yolo_cap_usd=policy.budget.cap_usd, budget_left_usd=policy.budget_left())
        sub = session.subscribe("ui")
        session.start()
        self.run_worker(self.bridge.pump(sub), name="bridge", group="bridge", exit_on_error=False)

    def submit(self, op: Op) -> None:
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return
        self.session.submit(op)

    def on_engine_ready(self, event: Ready) -> None:
        self.update_status(model_label=event.model_label, model_ready=True, is_demo=event.is_demo)
        self.query_one("#banner").set_class(not event.is_demo, "-hidden")
        if self.queued and not self.status_info.busy:
            self._deliver_next()

    def on_llm_call(self, event: LLMCall) -> None:
        self._turn_in += event.usage.prompt_tokens
        self._turn_out += event.usage.completion_tokens
        if event.cost_usd is None:
            self._turn_unknown += 1
        else:
            self._turn_cost += event.cost_usd
        t = self.costs.total
        left = self.status_info.budget_left_usd
        if left is not None and event.cost_usd:
            left = max(0.0, left - event.cost_usd)  # until the receipt brings the engine's figure
        self.update_status(turn_tokens_in=self._turn_in, turn_tokens_out=self._turn_out,
                           turn_cost_usd=self._turn_cost, turn_unknown_calls=self._turn_unknown,
                           session_cost_usd=t.cost_usd + self.costs.compute_cost_usd,
                           session_unknown_calls=t.unknown_calls, budget_left_usd=left)

    def on_turn_end(self, receipt: Receipt | None) -> None:
        self.pending_approval = None  # answered, abandoned or cancelled: nothing to reopen
        self._turn_in = self._turn_out = 0
        self._turn_cost = 0.0
        self._turn_unknown = 0
        changes: dict[str, Any] = {}
        if receipt is not None:
            changes["session_cost_usd"] = receipt.session_cost_usd  # compute included, sandboxes too
            changes["session_unknown_calls"] = receipt.session_unknown_cost_calls
            if self.status_info.mode == "yolo":
                changes["budget_left_usd"] = receipt.budget_left_usd
        self.update_status(busy=False, **changes)
        heap.collect_when_idle()
        if self.queued:
            self._deliver_next()

    def on_new_conversation(self) -> None:
        self.pending_approval = None

    async def on_settings_changed(self, event: SettingsChanged) -> None:
        """Model, effort, mode or cap changed: the status bar follows, and a notice says
        what changed (a mode change says what the new mode asks about)."""
        before = self.status_info
        mode = event.approval_mode or ("yolo" if event.yolo else self.base_mode)
        if self._mode_requested == mode:
            self._mode_requested = None
        self.update_status(model_label=event.model_label, effort=event.effort, mode=mode,
                           yolo_cap_usd=event.yolo_cap_usd, budget_left_usd=event.budget_left_usd if mode == "yolo" else None,
                           context_window=event.context_window, is_demo=event.model == "demo")
        notes = []
        effort = event.effort or "default"
        if event.effort_requested and event.effort_requested != event.effort:
            # the model refused the level asked for: say what it runs at, and what was asked
            effort = f"{event.effort or 'none (the model takes none)'} (asked {event.effort_requested})"
        if (event.model_label, event.effort) != (before.model_label, before.effort):
            notes.append(f"Model {event.model_label} · effort {effort}")
        if mode != before.mode:
            notes.append(f"Approval mode {mode}: {MODE_HELP.get(mode, '')}")
        if mode == "yolo" and (mode != before.mode or event.yolo_cap_usd != before.yolo_cap_usd):
            notes.append(self._budget_text(event.yolo_cap_usd, event.budget_left_usd))
        if not notes:
            notes.append(f"Model {event.model_label} · effort {effort} · approval mode {mode}")
        await self.notice("info", "\n".join(notes))

    @staticmethod
    def _budget_text(cap: float | None, left: float | None) -> str:
        if cap is None:
            return "YOLO budget: no cap."
        return (f"YOLO budget: ${left:.2f} left of the ${cap:.2f} cap" if left is not None else f"YOLO cap ${cap:.2f}") + \
            ". /yolo <dollars> changes it."

    def request_mode(self, mode: str) -> None:
        """Ask the engine for ``mode``; the status bar changes when the engine confirms."""
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return
        self._mode_requested = mode
        self.submit(SetApprovalMode(mode=mode))  # type: ignore[arg-type]  # applies to the next call, even mid-turn

    def update_status(self, **changes: Any) -> None:
        changes.setdefault("queued", len(self.queued))
        self.status_info = dataclasses.replace(self.status_info, **changes)
        if self.is_mounted:
            self.query_one(StatusBar).info = self.status_info

    async def notice(self, kind: str, text: str) -> None:
        await self.conversation.add_notice(kind, text)

    def status_text(self) -> str:
        i = self.status_info
        s = self.session
        lines = [f"Model: {i.model_label}" + ("" if i.model_ready else " (loading)"),
                 f"Effort: {i.effort or 'default'} · approval mode: {i.mode}"
                 + (" · " + self._budget_text(i.yolo_cap_usd, i.budget_left_usd) if i.mode == "yolo" else ""),
                 f"Context: {i.context_tokens:,} of {i.context_window:,} tokens"]
        if s is not None:
            lines += [f"Session {s.id[:8]} · turn {s.engine.turn} · {len(s.engine.history)} messages",
                      f"Working directory: {s.cwd}"]
        lines.append(f"mlintern {__version__}")
        return "\n".join(lines)

    # ------------------------------------------------------------------ prompt

    async def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        text = event.text
        if text.startswith("/"):
            if not await REGISTRY.run(self, text):
                await self.notice("error", f"Unknown command: {text.split()[0]}. Type /help for the list.")
            return
        busy = self.session is None or self.status_info.busy or self.session.busy
        if not busy:
            self.pending_approval = None  # a new message abandons calls left pending
        block = await self.conversation.add_user(text, queued=busy)
        if busy:
            self.queued.append((text, block))
            self.update_status()
        else:
            self._send(text)

    def on_prompt_area_completions_changed(self, event: PromptArea.CompletionsChanged) -> None:
        hints = self.query_one("#hints", Static)
        hints.set_class(bool(event.hints), "-visible")
        # Content, not markup: "/model [id]" would lose "[id]" as a style tag
        hints.update(Content("\n".join(f"{h.usage:<20} {h.help}" for h in event.hints[:6])))

    def _send(self, text: str) -> None:
        self.update_status(busy=True)
        self.submit(UserInput(text=text))

    def _deliver_next(self) -> None:
        if self.session is None or not self.queued:
            return
        text, block = self.queued.pop(0)
        block.mark_delivered()
        self._send(text)

    def prefill_prompt(self, text: str) -> None:
        self.prompt.text = text
        self.prompt.move_cursor(self.prompt.document.end)
        self.prompt.focus()

    # ------------------------------------------------------------------ approvals

    def request_approval(self, event: ApprovalRequired) -> None:
        # the turn now waits for the user: a typed message is sent (and abandons these
        # calls) rather than queued behind an approval nobody is looking at
        self.update_status(busy=False)
        self.pending_approval = event
        self._pending_answers = {}
        self._approval_worker = self.review_approvals()

    @work(exclusive=True, group="approvals", exit_on_error=False)
    async def review_approvals(self) -> None:
        """One modal per request, in arrival order; the batch is sent when all are decided."""
        event = self.pending_approval
        if event is None:
            return
        items = event.items
        for index, item in enumerate(items, 1):
            if item.tool_call_id in self._pending_answers:
                continue
            answer: ApprovalAnswer = await self.push_screen_wait(
                ApprovalScreen(item, index, len(items), self.approval_grace_s, project=self.project_dir()))
            if answer.kind == "defer":
                await self.notice("info", f"{len(items) - len(self._pending_answers)} approval(s) left pending; "
                                          "ctrl+r to review them, or type a message to move on without them.")
                return
            if answer.kind == "approve_batch":
                for rest in items:
                    self._pending_answers.setdefault(rest.tool_call_id, ToolDecision(tool_call_id=rest.tool_call_id, approved=True))
                break
            self._pending_answers[item.tool_call_id] = ToolDecision(
                tool_call_id=item.tool_call_id, approved=answer.kind == "approve",
                feedback=answer.feedback, edited_args=answer.edited_args, remember=answer.remember,
            )
        decisions = [self._pending_answers[i.tool_call_id] for i in items]
        self.pending_approval = None
        self._pending_answers = {}
        self.submit(ExecApproval(decisions=decisions))

    def project_dir(self) -> str | None:
        """Where a "this project" rule applies: the session's working directory."""
        if self.session is not None:
            return str(self.session.cwd)
        return str(self.cwd) if self.cwd is not None else None

    def action_review_approvals(self) -> None:
        if self.pending_approval is not None:
            self._approval_worker = self.review_approvals()

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # on a modal (approval card, palette, confirm) these keys belong to the modal
        if self.screen.is_modal and action in ("interrupt", "scroll_conversation", "scroll_conversation_to", "toggle_jobs",
                                               "cycle_mode", "toggle_last_receipt"):
            return False
        in_jobs = self.jobs_view_active or self.focus_in_jobs()
        if action == "interrupt":
            return not in_jobs  # escape goes to the jobs pane, then back to the prompt
        if action == "leave_jobs":
            return in_jobs
        if self.jobs_view_active and action in ("toggle_last_output", "copy_answer", "toggle_side", "toggle_follow",
                                                "toggle_last_receipt"):
            return False  # about the conversation and the output pane, which the jobs view hides
        narrow = self.main_screen.has_class("-narrow")
        if action == "toggle_follow":  # the output pane's key, while the output pane shows
            return self.main_screen.has_class("-show-side") if narrow else not self.query_one("#side").has_class("-hidden")
        if action == "toggle_last_output" and narrow and self.main_screen.has_class("-show-side"):
            return False  # the side panes cover the conversation there
        if action == "toggle_last_receipt" and narrow:
            return False  # no room in an 80-column footer; enter or a click on a receipt still opens it
        return True

    def action_interrupt(self) -> None:
        if self.session is not None and (self.session.busy or self.session.engine.pending):
            self.session.interrupt()
        elif self.query_one("#hints").has_class("-visible"):
            self.prompt.text = ""

    async def action_quit_twice(self) -> None:
        now = time.monotonic()
        if now - self._last_ctrl_c < 2.0:
            await self.action_quit()
            return
        self._last_ctrl_c = now
        if self.session is not None and self.session.busy:
            self.session.interrupt()
        self.notify("Press ctrl+c again to quit.", timeout=2)

    async def action_quit(self) -> None:
        if self.session is not None:
            self.session.submit(Shutdown())
            runner = self.session._runner
            if runner is not None:
                try:
                    # long enough for local jobs to get SIGTERM, their grace, then SIGKILL
                    await asyncio.wait_for(asyncio.shield(runner), timeout=6)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    runner.cancel()
        self.exit()

    def action_scroll_conversation(self, direction: int) -> None:
        conv = self.conversation
        if direction < 0:
            conv.scroll_page_up(animate=False)
        else:
            conv.scroll_page_down(animate=False)

    def action_scroll_conversation_to(self, where: str) -> None:
        conv = self.conversation
        if where == "home":
            conv.scroll_home(animate=False)
        else:
            conv.scroll_end(animate=False)  # back at the bottom: following again

    def action_toggle_last_output(self) -> None:
        card = self.conversation.latest_card()
        if card is not None:
            card.action_toggle()

    def action_toggle_last_receipt(self) -> None:
        receipt = self.conversation.latest_receipt()
        if receipt is not None:
            receipt.action_toggle()

    def action_cycle_mode(self) -> None:
        current = self._mode_requested or self.status_info.mode
        self.request_mode(MODES[(MODES.index(current) + 1) % len(MODES)] if current in MODES else "auto")

    async def show_costs(self) -> None:
        i = self.status_info
        await self.conversation.add_cost_report(cost_report(self.costs, mode=i.mode, cap_usd=i.yolo_cap_usd,
                                                            budget_left_usd=i.budget_left_usd))

    def action_toggle_side(self) -> None:
        if self.main_screen.has_class("-narrow"):
            self.main_screen.toggle_class("-show-side")
        else:
            self.query_one("#side").toggle_class("-hidden")
        self.refresh_bindings()
        self.call_after_refresh(self.tool_log.flush)

    def action_toggle_follow(self) -> None:
        self.tool_log.follow = not self.tool_log.follow

    def action_hide_banner(self) -> None:
        self.query_one("#banner").add_class("-hidden")

    def action_copy_answer(self) -> None:
        answers = list(self.conversation.query(AnswerBlock))
        text = answers[-1].text if answers else ""
        self.copy_text(text, "the last answer")

    def copy_text(self, text: str, what: str) -> None:
        if not text:
            self.notify(f"Nothing to copy: there is no {what} yet.", severity="warning")
            return
        self.copy_to_clipboard(text)
        # OSC 52 is fire-and-forget: the terminal never confirms, so we cannot know it worked
        self.notify(f"Sent {what} ({len(text):,} chars) to the clipboard with OSC 52. It arrives only if your "
                    "terminal allows clipboard writes (tmux: set -g set-clipboard on).", timeout=6)


_FENCE = re.compile(r"```[^\n]*\n(.*?)```", re.S)


@REGISTRY.add("/copy", "/copy [code]", "Copy the last answer, or its last code block")
async def _copy(app: MLInternApp, arg: str) -> None:
    answers = list(app.conversation.query(AnswerBlock))
    text = answers[-1].text if answers else ""
    if arg == "code":
        blocks = _FENCE.findall(text)
        app.copy_text(blocks[-1] if blocks else "", "code block")
    else:
        app.copy_text(text, "the last answer")


def run_app(*, model: str | None = None, yolo: bool = False, max_iterations: int | None = None,
            jobs_backend: str | None = None) -> int:
    heap.tune()
    app = MLInternApp(model=model, yolo=yolo, max_iterations=max_iterations, jobs_backend=jobs_backend)
    app.run()
    return app.return_code or 0
