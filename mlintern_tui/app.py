"""The full-screen app: the layout, the keys, and the wiring of the session, the bridge and
the widgets.

The first frame does not wait for litellm (4-7 s to import): the engine is built in a
background worker and the status bar says when the model is ready. What the app does with
the engine (``engine_link``), approvals (``approvals``), the clipboard (``clipboard``) and
the Jobs pane (``jobs_view``) lives in mixins beside this module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Footer, Static, Tab, Tabs

# Neither pydantic nor the protocol's models are imported on the way to the first frame (~0.1 s):
# ops are made where they are sent, and the config file is read through its schema just after
# that frame when it has not changed since the last start (agent.config.early_settings)
from agent.config import ConfigError, config_path, early_settings, load_config, save_config_value
from agent.terminal_text import visible
from mlintern_tui import hangup, heap
from mlintern_tui.approvals import GRACE_S, ApprovalsMixin
from mlintern_tui.clipboard import CopyMixin
from mlintern_tui.commands import MODES, REGISTRY, SlashCommandProvider
from mlintern_tui.engine_link import EngineLinkMixin
from mlintern_tui.jobs_view import JobsViewMixin
from mlintern_tui.pacing import PacedScreen
from themes import DEFAULT_THEME, THEME_VARIABLE_DEFAULTS, THEMES
from widgets.conversation import Conversation
from widgets.key_footer import KeyFooter
from widgets.pin_mark import quoted_start
from widgets.receipt import cost_report
from widgets.plan import PlanView
from widgets.prompt import PromptArea
from widgets.status import StatusBar, StatusInfo
from widgets.tool_log import ToolLogPane

if TYPE_CHECKING:
    from textual.worker import Worker

    from agent.config import Config, EarlySettings
    from agent.costs import CostLedger
    from agent.protocol import ApprovalRequired, Event, Guard, ToolDecision
    from mlintern_tui.bridge import Bridge
    from mlintern_tui.compaction_link import CompactionLink
    from mlintern_tui.frame_keeper import FrameKeeper
    from mlintern_tui.instant_frame import Start
    from mlintern_tui.remedies import RemedyLink
    from mlintern_tui.runs_link import RunsLink
    from mlintern_tui.screens.broken_config import ConfigChoice
    from mlintern_tui.screens.run_board import RunBoard
    from mlintern_tui.screens.trace_preview import TracePreviewScreen
    from mlintern_tui.term_notify import TerminalNotifier
    from mlintern_tui.trace_link import TraceLink
    from widgets.compaction_card import CompactionPreviewCard

NARROW_WIDTH = 100
DEMO_BANNER = (
    "Demo model: scripted, no API key; it runs a small real training job. For your own tasks set "
    "ANTHROPIC_API_KEY, OPENAI_API_KEY or HF_TOKEN, start with -m ollama/<model>, or /model <id>. (ctrl+b hides)"
)


def _config_or_error() -> tuple[Config, str | None]:
    """The user's config file read through its schema, or the defaults and why it cannot be used."""
    try:
        return load_config(), None
    except ConfigError as exc:
        from agent.config import Config

        return Config(), str(exc)


class MLInternApp(EngineLinkMixin, ApprovalsMixin, CopyMixin, JobsViewMixin, App):
    TITLE = "mlintern"
    CSS_PATH = Path(__file__).parent / "app.tcss"
    COMMANDS = App.COMMANDS | {SlashCommandProvider}
    AUTO_FOCUS = "PromptArea"
    _theme_saved_on_change = False
    #: a theme picked before the config file was read (``_read_config``): saved once it is
    _theme_chosen_early: str | None = None
    _signals_off: Callable[[], None] | None = None  # puts back the signal handlers on_mount replaced
    _echo = None  # LocalEcho, on a real terminal (mlintern_tui/local_echo.py)
    _quit_question: Worker | None = None
    _shutting_down = False
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
        # select mode: a message to pin, unpin or copy (the prompt's TextArea has ctrl+k); in the
        # footer where it fits, the same key without it in 80 columns or beside f4 Runs
        Binding("alt+up", "select_messages(True)", "Pin", key_display="alt+↑"),
        Binding("alt+up", "select_messages(False)", "Pin", show=False),
        # the experiment board: in the footer once a job of this session ended as a run (a
        # session that trains nothing keeps its footer), the same key without it before
        Binding("f4", "show_runs(True)", "Runs"),
        Binding("f4", "show_runs(False)", "Runs", show=False),
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
        config: Config | EarlySettings | None = None,
        cwd: Path | None = None,
        start_engine: bool = True,
        jobs_backend: str | None = None,
        open_resume_picker: bool = False,
        resume_session_id: str | None = None,
    ):
        """``open_resume_picker``: show the stored sessions once the session is ready
        (``--resume``); ``resume_session_id``: resume that one then (``--resume ID``, ``--continue``)."""
        super().__init__()
        self.config_error: str | None = None
        #: the user's own file: its permissions are compared with what they agreed to before the engine starts
        self.check_permissions = config is None
        #: the first frame is drawn with the settings the unchanged file gave at the last start;
        #: the file itself is read just after it (``_read_config``), and nothing starts before
        self.config_pending = False
        if config is None:
            config = early_settings()
            self.config_pending = config is not None
        if config is None:
            config = self._load_user_config()
        self.yolo_arg = yolo
        self.model_arg = model
        self.status_info = StatusInfo()
        self.use_config(config)
        self.max_iterations = max_iterations
        self.cwd = cwd
        self.start_engine = start_engine
        self.jobs_backend = jobs_backend
        self.session = None
        self._bridge: Bridge | None = None
        self._costs: CostLedger | None = None
        #: the mode asked for with ctrl+t or /mode that the engine has not confirmed yet
        self._mode_requested: str | None = None
        self.queued: list[tuple[str, Any]] = []
        #: messages typed while the agent works wait for the turn's end (the palette's toggle)
        #: instead of joining the running turn
        self.queue_while_working = False
        self._runs: RunsLink | None = None
        self._compaction: CompactionLink | None = None
        self._remedies: RemedyLink | None = None
        self.pending_approval: ApprovalRequired | None = None
        self._pending_answers: dict[str, ToolDecision] = {}
        self._approval_backlog: list[ApprovalRequired] = []
        self._last_ctrl_c = 0.0
        self._turn_in = self._turn_out = 0
        self._turn_cost = 0.0
        self._turn_unknown = 0
        self._approval_worker = None
        self.approval_grace_s = GRACE_S
        self._jobs_seen: set[str] = set()
        self.jobs_clock = time.monotonic  # the Jobs pane's elapsed-time clock (tests pin it)
        self.wall_clock = time.time  # the resume picker's "3 min ago" (tests pin it)
        self.session_title = ""
        self._picker_on_ready = open_resume_picker
        self._resume_on_ready = resume_session_id
        self._traces: TraceLink | None = None
        self._term_notifier: TerminalNotifier | None = None
        self.terminal_write = self._write_to_terminal  # where terminal notifications go (tests record them)
        self._first_frame_out = False
        #: the first frame kept for the next start (frame_keeper.py; None: not kept), and the last
        #: start's kept frame on screen until the driver takes its keys (instant_frame.py)
        self.frame_keeper: FrameKeeper | None = None
        #: when the last keys came, newest last (widgets/type_ahead.py)
        self.key_times: deque[float] = deque(maxlen=64)
        self.instant_gap = None
        self._blur_at_start = False  # the terminal said it is not focused before the first frame
        for theme in THEMES:
            self.register_theme(theme)
        self._first_theme()

    def _load_user_config(self) -> Config:
        """The config file read through its schema; on an error, the defaults (and
        ``config_error`` says why: nothing starts until the user decides, the file is never written)."""
        config, self.config_error = _config_or_error()
        return config

    @property
    def bridge(self) -> Bridge:
        """From the engine's events to the widgets: made (with the protocol's models) when the
        session attaches, or when a test hands it an event."""
        if self._bridge is None:
            from mlintern_tui.bridge import Bridge

            self._bridge = Bridge(self)
            self._bridge.start_timers()
        return self._bridge

    @property
    def costs(self) -> CostLedger:
        """The session's spend (what /cost shows)."""
        if self._costs is None:
            from agent.costs import CostLedger

            self._costs = CostLedger()
        return self._costs

    @costs.setter
    def costs(self, ledger: CostLedger) -> None:
        self._costs = ledger

    def use_config(self, config: Config | EarlySettings) -> None:
        """The settings this run goes by: at start, or once a broken config file was fixed or skipped."""
        self.config = config
        if getattr(self, "_traces", None) is not None:
            self._traces.config = config
        self.base_mode = "auto" if config.approval_mode == "yolo" else config.approval_mode
        self.start_mode = "yolo" if self.yolo_arg else config.approval_mode
        yolo_cap = config.yolo_cap_usd if self.start_mode == "yolo" else None
        # nothing is spent yet: the whole cap is left until the engine says otherwise
        self.status_info = dataclasses.replace(self.status_info, mode=self.start_mode, yolo_cap_usd=yolo_cap,
                                               budget_left_usd=yolo_cap, wake_on_job_end=config.wake_on_job_end)

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
        yield KeyFooter()

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
        self.prompt.cursor_blink = self.config.cursor_blink
        self.prompt.commands = REGISTRY.hints()
        self.query_one(StatusBar).info = self.status_info
        self._apply_width(self.size.width)
        if self.config_pending:  # the file is read once this frame is out; then the engine starts
            if self.start_engine:
                self.show_model()
            self.call_after_refresh(self._read_config)
        else:
            self._start_with_config()
        try:  # SIGTERM or a closed terminal: stop tools and local jobs like ctrl+q does, then exit for sure
            loop = asyncio.get_running_loop()
            self._signals_off = hangup.install(
                lambda signum: loop.call_soon_threadsafe(self.call_later, self.quit_on_signal, signum),
                driver=self._driver)
        except (RuntimeError, ValueError, AttributeError):  # not the main thread, or no SIGHUP
            pass

    def _start_with_config(self) -> None:
        if self.config_error:  # nothing starts on defaults behind the user's back: they decide first
            from mlintern_tui.screens.broken_config import BrokenConfigScreen

            self.push_screen(BrokenConfigScreen(config_path(), self.config_error), callback=self._config_decided)
        elif self.check_permissions:  # a widening is asked about, then the engine starts
            from mlintern_tui.permission_link import settle_then_boot

            settle_then_boot(self)
        elif self.start_engine:
            self.boot_engine()

    @work(group="config", exit_on_error=False)
    async def _read_config(self) -> None:
        """The config file through its schema, just after the first frame (drawn with what the
        unchanged file gave at the last start). It is what counts: a setting that differs from
        that frame's (a stale record) is applied now, an error opens the broken-config dialog as
        at any start, and only then are permissions checked and the engine started. Read in a
        thread: importing pydantic and the protocol's models takes ~0.1 s, and keys typed as
        soon as the prompt shows are drawn meanwhile."""
        try:
            config, error = await asyncio.to_thread(_config_or_error)
            if self._shutting_down:
                return
            self._settings_read(config, error)
        except Exception as exc:  # noqa: BLE001 - a broken install (pydantic), a bug: said, and nothing starts
            self.config_pending = False
            self.update_status(model_label="no model", model_ready=False, is_demo=False)
            await self.notice("error", f"Could not start the agent: reading the settings failed ({type(exc).__name__}: "
                                       f"{exc}).")

    def _settings_read(self, config: Config, error: str | None) -> None:
        early, chosen_theme = self.config, self._theme_chosen_early
        self.config_error = error
        self.config_pending = False
        self.use_config(config)
        self.update_status()
        if self.config_error:  # the model named in the first frame does not start until the user decides
            self.update_status(model_label="starting…", model_ready=False, is_demo=False)
            self.query_one("#banner").set_class(True, "-hidden")
        elif self.start_engine:
            self.show_model()  # the file's model, should the record have named another
        self.prompt.cursor_blink = config.cursor_blink
        if chosen_theme is not None:  # picked before the file was read: the user's choice stands
            self._theme_chosen_early = None
            self.watch_theme(chosen_theme)
        elif config.theme != early.theme:
            self._apply_theme()
        if isinstance(self.screen_stack[0], PacedScreen):
            self.screen_stack[0].paced = config.frame_pacing
        if not config.local_echo and self._echo is not None:
            self._echo.off()
        elif config.local_echo and self._echo is None and self._first_frame_out:
            self._start_local_echo()
        self._start_with_config()

    def on_ready(self) -> None:
        heap.startup_over()  # the first frame is out
        self._first_frame_out = True
        if self.frame_keeper is not None:
            self.frame_keeper.first_frame_out(self)
        self._start_local_echo()
        if self._blur_at_start:  # applied now, as Textual's own handler does: a focus report
            self._blur_at_start = False  # already queued behind it still comes after it
            self.app_focus = False
            self.screen.refresh_bindings()

    def keep_first_frame(self, next_ready: bool) -> None:
        """The session is built: the first frame is kept for the next start (frame_keeper.py) if
        that start's would name the model as ready (``next_ready``) or loading just as this one."""
        if self.frame_keeper is not None:
            self.frame_keeper.session_built(self, next_ready)

    def on_app_blur(self, event: events.AppBlur) -> None:
        # A terminal that is not in view when the app starts (a tmux pane in a window not
        # shown, a terminal behind another) says so as soon as focus reporting is on, before
        # the first frame. Textual's answer - the prompt lets go of the focus, the footer is
        # rebuilt and every widget restyled, ~8 ms - waits until that frame is out: the first
        # frame draws the prompt focused, the next one as the terminal really is.
        if not self._first_frame_out:
            event.prevent_default()
            self._blur_at_start = True

    def on_app_focus(self, event: events.AppFocus) -> None:
        self._blur_at_start = False  # focused again before the first frame: nothing to apply

    def _start_local_echo(self, driver=None) -> None:
        from mlintern_tui.driver import SteadyDriver

        driver = driver or self._driver
        if self.config.local_echo and isinstance(driver, SteadyDriver):
            from mlintern_tui.local_echo import LocalEcho

            self._echo = echo = LocalEcho(self, driver, self.prompt)
            self.prompt.local_echo = echo
            # the focus leaving the prompt (a click elsewhere, a card taking it) withdraws the
            # slot at once, not at the next frame
            self.watch(self.prompt.screen, "focused", lambda _focused: echo.withdraw(), init=False)

    def push_screen(self, *args, **kwargs):
        if self._echo is not None:
            self._echo.withdraw()  # the dialog takes the next key, not the prompt
        return super().push_screen(*args, **kwargs)

    def pop_screen(self):
        if self._echo is not None:
            self._echo.withdraw()
        return super().pop_screen()

    def switch_screen(self, screen):
        if self._echo is not None:
            self._echo.withdraw()
        return super().switch_screen(screen)

    @property
    def last_key_at(self) -> float:
        """When the last key came (widgets/type_ahead.py)."""
        return self.key_times[-1] if self.key_times else float("-inf")

    def get_default_screen(self) -> PacedScreen:
        return PacedScreen(id="_default", paced=self.config.frame_pacing)

    async def on_event(self, event) -> None:
        if isinstance(event, events.Key):
            # the key whose bindings run now (a binding of a screen or widget acts on the key as it
            # bubbles back up to the app): a question tells typing from answers by its time
            self.key_in_hand = event.time
        if isinstance(event, events.InputEvent) and not event.is_forwarded:
            self.last_input_at = now = time.perf_counter()
            if isinstance(event, events.Key):  # a dialog opened mid-typing tells keys from answers by them
                # when the key came (the driver made the event as it read it), not when the loop
                # got to it: keys that waited out a busy moment of the loop are still one burst
                self.key_times.append(event.time)
            if self._echo is not None:
                self._echo.arrived(event)
            screen = self.main_screen if self.screen_stack else None  # keys can come before the first screen
            # the user is acting (scrolling, clicking, a binding): frames at full rate for a
            # moment; a typed character needs none, the prompt draws it itself
            if isinstance(screen, PacedScreen) and not (isinstance(event, events.Key) and event.is_printable):
                screen.input_at = time.perf_counter()
        await super().on_event(event)

    def _display(self, screen, renderable) -> None:
        keeper = self.frame_keeper
        if keeper is not None and keeper.capturing:
            keeper.display(self, renderable, lambda: super(MLInternApp, self)._display(screen, renderable))
        else:
            super()._display(screen, renderable)
        if self._echo is not None:
            self._echo.publish()  # the frame is on its way: where the next typed key goes

    def on_unmount(self) -> None:
        if self._signals_off is not None:
            self._signals_off()

    def _first_theme(self) -> None:
        """The config's theme, before any style sheet is read. Set as ``_apply_theme`` does, its
        watcher re-parses every style sheet read so far (set on mount, all of them were parsed
        and applied twice: ~25 ms of the first frame). Here only the variables the sheets will
        be parsed with and the app's theme classes are set, which is all that watcher would
        change this early, except for a light theme's ANSI colour map: that one goes the
        ordinary way."""
        name = self.config.theme if self.config.theme in self.available_themes else DEFAULT_THEME
        theme = self.get_theme(name)
        if theme is None or not theme.dark or not self.current_theme.dark:
            self._apply_theme()
            return
        self.set_reactive(App.theme, name)
        self.stylesheet.set_variables(self.get_css_variables())
        self.update_classes({**{c: False for c in self.classes if c.startswith("-theme-")},
                             f"-theme-{name}": True, "-dark-mode": True, "-light-mode": False}, update=False)
        self._theme_saved_on_change = True  # from now on a theme is the user's choice, saved

    def _apply_theme(self) -> None:
        self._theme_saved_on_change = False  # the theme the config names (or the default) is no choice to save
        self.theme = self.config.theme if self.config.theme in self.available_themes else DEFAULT_THEME
        self._theme_saved_on_change = True

    async def _config_decided(self, choice: ConfigChoice | None) -> None:
        """The broken-config screen's answer: quit (None), the fixed file, or defaults for this run."""
        if choice is None:
            self.exit()
            return
        self.use_config(choice.config)
        self.update_status()
        if choice.skipped:  # config_error stays: nothing is written to the file this run could not read
            await self.notice("error", f"Started without {config_path()} for this run: built-in defaults, none of its "
                                       "settings, approval rules (deny rules included) or MCP servers. Fix it and "
                                       "start again to use it.")
        else:
            self.config_error = None
        self._apply_theme()
        if not choice.skipped and self.check_permissions:  # the fixed file may widen what the agent may do
            from mlintern_tui.permission_link import settle_then_boot

            settle_then_boot(self)
        elif self.start_engine:
            self.boot_engine()

    def notify(self, message: str, *, title: str = "", severity: Any = "information", timeout: float | None = None,
               markup: bool = False) -> None:
        # toasts carry exception texts and names from outside: no escape sequence, no markup
        super().notify(visible(message), title=visible(title), severity=severity, timeout=timeout, markup=markup)

    def watch_theme(self, theme: str) -> None:
        # only a theme the user picks is saved: the one on_mount applies is not a choice
        if not self._theme_saved_on_change:
            return
        if self.config_pending:  # saved once the file is read (a broken one is never written)
            self._theme_chosen_early = theme
            return
        if theme in {t.name for t in THEMES} and theme != self.config.theme and self.is_mounted and not self.config_error:
            try:
                save_config_value("theme", theme)
                self.config.theme = theme
            except ConfigError as exc:
                self.notify(str(exc), severity="error")

    def get_driver_class(self):
        driver = super().get_driver_class()
        from textual.drivers.linux_driver import LinuxDriver

        if driver is LinuxDriver:  # not a driver chosen with TEXTUAL_DRIVER, not Windows
            from mlintern_tui.driver import SteadyDriver

            return SteadyDriver
        return driver

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        self.main_screen.set_class(width < NARROW_WIDTH, "-narrow")
        self.query_one(Footer).compact = width < NARROW_WIDTH  # so f2 and ctrl+g fit in 80 columns
        self.refresh_bindings()  # the footer shows what fits (see check_action)

    # ------------------------------------------------------------------ prompt

    async def on_prompt_area_submitted(self, event: PromptArea.Submitted) -> None:
        text = event.text
        if text.startswith("/"):
            if not await REGISTRY.run(self, text):
                await self.notice("error", f"Unknown command: {text.split()[0]}. Type /help for the list.")
            return
        turn_running = self.session is not None and self.session.busy and self.status_info.busy
        if turn_running and not (event.queue or self.queue_while_working):
            # into the running turn: the engine adds it at the next model step, and its
            # user_message (steered) says where it landed. Not while the session does other work
            # (a model switch, /compact): a steer would wait there for the next turn
            await self.conversation.add_steer(text)
            from agent.protocol import Steer

            self.submit(Steer(text=text))
            return
        busy = self.session is None or self.status_info.busy or self.session.busy
        if not busy:
            self.clear_approvals()  # a new message abandons calls left pending
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
        from agent.protocol import UserInput

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

    # ------------------------------------------------------------------ actions

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # on a modal (approval card, palette, confirm) these keys belong to the modal
        if self.screen.is_modal and action in ("interrupt", "scroll_conversation", "scroll_conversation_to", "toggle_jobs",
                                               "cycle_mode", "toggle_last_receipt", "show_runs", "select_messages"):
            return False
        in_jobs = self.jobs_view_active or self.focus_in_jobs()
        if action == "interrupt":
            # escape goes to the jobs pane, then back to the prompt, and to a card that asks (/compact)
            return not in_jobs and not getattr(self.focused, "takes_escape", False)
        if action == "show_runs":
            return parameters[0] == (self._runs is not None and self._runs.recorded)
        if action == "leave_jobs":
            return in_jobs
        if self.jobs_view_active and action in ("toggle_last_output", "copy_answer", "toggle_side", "toggle_follow",
                                                "toggle_last_receipt", "select_messages"):
            return False  # about the conversation and the output pane, which the jobs view hides
        narrow = self.main_screen.has_class("-narrow")
        if action == "select_messages":  # in the mode its keys take the footer; the side panes may cover it
            # in the footer where it fits: not in 80 columns, nor beside f4 Runs
            fits = not narrow and not (self._runs is not None and self._runs.recorded)
            return (parameters[0] == fits and self.conversation.selected is None
                    and not (narrow and self.main_screen.has_class("-show-side")))
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
        """ctrl+q, /quit, ctrl+c twice: what the agent left running in the background is asked about first."""
        if self._quit_question is None or self._quit_question.is_finished:
            self._quit_question = self.quit_asking()

    @work(group="quit", exit_on_error=False)
    async def quit_asking(self) -> None:
        session = self.session
        if session is not None:
            from mlintern_tui.screens.background_quit import BackgroundQuitScreen, left_in_background

            left = await asyncio.to_thread(left_in_background, session.process_tag)
            if left:
                answer = await self.push_screen_wait(BackgroundQuitScreen(left))
                if answer is None:
                    return  # not quitting after all
                session.keep_background = answer == "keep"
        await self.shut_down()

    def quit_on_signal(self, signum: int) -> None:
        """SIGTERM or SIGHUP: ctrl+q without the question (what is left in the background is stopped)."""
        self.run_worker(self.shut_down(128 + signum), group="quit-on-signal", exit_on_error=False)

    async def shut_down(self, return_code: int = 0) -> None:
        if self._shutting_down:
            return
        self._shutting_down = True
        if self.session is not None:
            if self.session.busy:
                self.session.interrupt()  # a running turn ends with the app: its commands stop now
            from agent.protocol import Shutdown

            self.session.submit(Shutdown())
            runner = self.session._runner
            if runner is not None:
                try:
                    # long enough for local jobs to get SIGTERM, their grace, then SIGKILL
                    await asyncio.wait_for(asyncio.shield(runner), timeout=6)
                except (asyncio.TimeoutError, asyncio.CancelledError):
                    runner.cancel()
        self.exit(return_code=return_code)

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

    def action_select_messages(self, _footer: bool = True) -> None:
        if not self.conversation.start_selecting():
            self.notify("No message to select yet.", timeout=3)

    def on_conversation_pin_requested(self, message: Conversation.PinRequested) -> None:
        if not self.engine_ready():
            return
        kept = len(message.text.removesuffix(" …"))
        what = f"{message.what} (its first {kept:,} of {message.length:,} characters)" if kept < message.length \
            else message.what
        # ops wait for the running turn: the mark appears when the engine has done it
        when = " once the running turn ends" if self.session.busy else ""
        self.notify(f"{'Unpinning' if message.remove else 'Pinning'} {what}{when}: {quoted_start(message.text)}"
                    + ("" if message.remove else ". It survives every compaction; /pins lists what is pinned."))
        from agent.protocol import Pin

        self.submit(Pin(text=message.text, remove=message.remove))

    def on_conversation_selecting_stopped(self, message: Conversation.SelectingStopped) -> None:
        self.prompt.focus()

    def action_cycle_mode(self) -> None:
        current = self._mode_requested or self.status_info.mode
        self.request_mode(MODES[(MODES.index(current) + 1) % len(MODES)] if current in MODES else "auto")

    async def show_costs(self) -> None:
        i = self.status_info
        await self.conversation.add_cost_report(cost_report(self.costs, mode=i.mode, cap_usd=i.yolo_cap_usd,
                                                            budget_left_usd=i.budget_left_usd,
                                                            budget_exact=i.budget_exact))

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

    # ------------------------------------------------------------------ the run board, compaction, remedies

    @property
    def runs(self) -> RunsLink:
        """/runs and f4, and the session's runs while the board is open (made on first use)."""
        if self._runs is None:
            from mlintern_tui.runs_link import RunsLink

            self._runs = RunsLink(submit=self.submit, notice=self.notice, push_screen=self.push_screen,
                                  cwd=self._session_cwd, clock=lambda: self.wall_clock(),
                                  has_session=lambda: self.session is not None,
                                  refresh_bindings=self.refresh_bindings)
        return self._runs

    def action_show_runs(self, _footer: bool = True) -> None:
        self.runs.open()

    def on_run_board_runs_requested(self, message: RunBoard.RunsRequested) -> None:
        self.runs.request()

    async def on_run_board_exported(self, message: RunBoard.Exported) -> None:
        await self.runs.on_exported(message)

    @property
    def compaction(self) -> CompactionLink:
        """/compact's preview and confirmation, and the compaction cards (made on first use)."""
        if self._compaction is None:
            from mlintern_tui.compaction_link import CompactionLink

            self._compaction = CompactionLink(submit=self.submit, notice=self.notice,
                                              conversation=lambda: self.conversation, focus_prompt=self.prompt.focus)
        return self._compaction

    def on_compaction_preview_card_answered(self, message: CompactionPreviewCard.Answered) -> None:
        self.compaction.on_answer(message)

    def offer_remedies(self, guard: Guard) -> None:
        """A repetition guard paused the turn: the doom-loop card asks what to do."""
        if self._remedies is None:
            from mlintern_tui.remedies import RemedyLink

            self._remedies = RemedyLink(submit=self.submit, notice=self.notice, push_screen_wait=self.push_screen_wait,
                                        run_worker=self.run_worker, grace_s=lambda: self.approval_grace_s)
        self._remedies.offer(guard)

    # ------------------------------------------------------------------ shared traces

    @property
    def traces(self) -> TraceLink:
        """/share-traces, the trace preview and the statuses (made on first use)."""
        if self._traces is None:
            from mlintern_tui.trace_link import TraceLink

            self._traces = TraceLink(config=self.config, submit=self.submit, notice=self.notice,
                                     push_screen=self.push_screen, clock=lambda: self.wall_clock())
        return self._traces

    def on_trace_preview_screen_mask_requested(self, message: TracePreviewScreen.MaskRequested) -> None:
        self.traces.mask(message.patterns, message.save)

    # ------------------------------------------------------------------ terminal notifications

    def signal_terminal(self, event: Event) -> None:
        """An approval waiting, a turn or job ended: signalled only while the terminal is unfocused."""
        if self.app_focus or self.config.terminal_notifications == "off":
            return
        if self._term_notifier is None:
            from mlintern_tui.term_notify import TerminalNotifier

            self._term_notifier = TerminalNotifier()
        data = self._term_notifier.signal(event, self.config.terminal_notifications, os.environ)
        if data:
            self.terminal_write(data)

    def _write_to_terminal(self, data: str) -> None:
        # as App.bell() does: through the driver, never to a headless one
        if self._driver is not None and not self.is_headless:
            self._driver.write(data)


def run_app(*, model: str | None = None, yolo: bool = False, max_iterations: int | None = None,
            jobs_backend: str | None = None, open_resume_picker: bool = False,
            resume_session_id: str | None = None, mcp_files: tuple = (), instant: Start | None = None) -> int:
    """``instant``: what ``instant_frame.show`` found (the first frame's key, the kept frame on
    screen)."""
    heap.tune()
    # Textual reads keys and writes frames in threads of their own, which wait for the
    # interpreter lock while the loop renders: at the default 5 ms a keystroke could wait that
    # long twice. At 1 ms: key echo 16/16 -> 15/14 ms (median, two runs each of
    # ../shared/peers, mlintern alone) and the first frame out ~50 ms sooner; the main loop
    # also gets the lock back sooner from a busy thread (litellm's import, the store's writer).
    sys.setswitchinterval(0.001)
    app = MLInternApp(model=model, yolo=yolo, max_iterations=max_iterations, jobs_backend=jobs_backend,
                      open_resume_picker=open_resume_picker, resume_session_id=resume_session_id)
    app.mcp_files = tuple(mcp_files)
    if instant is not None:
        if instant.key is not None and not open_resume_picker:  # the picker covers the prompt
            from mlintern_tui.frame_keeper import FrameKeeper

            app.frame_keeper = FrameKeeper(instant.argv)
        app.instant_gap = instant.gap  # the driver takes its keys as it starts
    app.run()
    return app.return_code or 0
