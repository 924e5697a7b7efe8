"""The app's side of the engine: starting the session, sending it ops, and keeping the
status bar in step with what it reports (model, mode, budget, the turn's tokens and cost).

The engine is built in a background worker: litellm takes seconds to import, and the first
frame does not wait for it. Mixed into ``MLInternApp``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING, Any

from textual import work
from textual.content import Content

from agent.terminal_text import visible
from mlintern_tui import __version__, heap
from mlintern_tui.commands import MODE_HELP
from widgets.status import StatusBar

#: how long no key must have come before the full collection a turn's end asks for runs
COLLECT_QUIET_S = 2.0

if TYPE_CHECKING:
    from agent.config import Config, EarlySettings
    from agent.costs import CostLedger
    from agent.protocol import LLMCall, McpStatus, ModelList, Op, Ready, Receipt, ResumeComplete, SettingsChanged
    from mlintern_tui.bridge import Bridge
    from mlintern_tui.mcp_watch import McpWatch
    from mlintern_tui.screens.mcp_screen import McpScreen
    from mlintern_tui.screens.model_picker import ModelPicker
    from widgets.status import StatusInfo


class EngineLinkMixin:
    # set by the app's __init__
    config: Config | EarlySettings
    session: Any
    bridge: Bridge
    costs: CostLedger
    status_info: StatusInfo
    queued: list[tuple[str, Any]]
    base_mode: str
    _mode_requested: str | None
    _turn_in: int
    _turn_out: int
    _turn_cost: float
    _turn_unknown: int
    #: what to do once the session is ready (``mlintern --resume [ID]`` / ``--continue``)
    _resume_on_ready: str | None
    _picker_on_ready: bool
    wall_clock: Any
    session_title: str
    cwd: Any
    _settings_after_resume = False
    #: the MCP servers' last status and what was said about it (made by the first status)
    _mcp_watch: McpWatch | None = None
    #: the /mcp screen while it is open
    _mcp_screen: McpScreen | None = None
    #: when the last key, click or scroll came (set by the app for every input event)
    last_input_at = 0.0
    #: the time of the key whose bindings run now (widgets/type_ahead.py; the app keeps the
    #: times of the last keys in ``key_times``)
    key_in_hand = float("-inf")
    #: the pending ``_collect_when_quiet``, if one is
    _collect_timer: Any = None

    def boot_engine(self) -> None:
        """Start the engine. The model is resolved first (a few ms, nothing heavy imported),
        so the first frame already names it; the session (~25 ms of imports and set-up) is
        built just after that frame. A model that needs no litellm (the demo, OpenAI-compatible
        and local servers, the HF router) is shown ready at once: a prompt sent before the
        session is there waits in the queue and goes when it is (``on_engine_ready``). A model
        litellm serves shows "(loading)" until litellm is loaded, in a thread."""
        tools_cached, cache_dir = self.show_model()
        if tools_cached:
            self.call_after_refresh(self._build_session)
        else:
            self.call_after_refresh(self._cache_tools_then_build, cache_dir)

    def show_model(self) -> tuple[bool, Any]:
        """The model in the status bar, ready unless litellm or the tools' schemas must load
        first; returns whether those schemas are cached, and where."""
        from agent.config import data_dir
        from agent.endpoints import router_base
        from agent.llm.models import default_model_id, needs_litellm, resolve_model
        from agent.tools.lazy import load_cached

        try:
            model = resolve_model(default_model_id(self.model_arg or self.config.model),
                                  router_base=router_base(self.config))
        except Exception:  # noqa: BLE001 - building the session says why, in the conversation
            model = None
        # the tools' schemas not cached yet (the first start of this version): building them
        # imports every tool, ~0.25 s, so it happens in a thread and the model shows loading
        try:
            cache_dir = data_dir() / "cache"
            tools_cached = load_cached(cache_dir)
        except Exception:  # noqa: BLE001 - an unreadable data dir: building the session says why
            cache_dir, tools_cached = None, False
        if model is not None and tools_cached and not needs_litellm(model, self.config.llm.transport):
            self.show_ready(model.label, model.is_demo)
        elif model is not None:
            self.update_status(model_label=model.label, is_demo=model.is_demo, model_ready=False)
        return tools_cached, cache_dir

    @work(group="tool-schemas", exit_on_error=False)
    async def _cache_tools_then_build(self, cache_dir) -> None:
        from agent.tools.lazy import cached_specs

        if cache_dir is not None:
            try:
                await asyncio.to_thread(cached_specs, cache_dir)
            except Exception:  # noqa: BLE001 - the session builds them again and says what failed
                pass
        self._build_session()

    def _build_session(self) -> None:
        if getattr(self, "_shutting_down", False):  # quit before the first frame: nothing to build
            return
        from agent.session import Session

        users_file = getattr(self, "check_permissions", False) and not getattr(self, "config_error", None)
        if users_file:
            from agent.config import remember_early_settings

            # what the next start's first frame is drawn with, if the file has not changed by then
            remember_early_settings(self.config)
        try:
            session = Session(self.config, model_id=self.model_arg, cwd=self.cwd,
                              approval_mode=self.start_mode, max_iterations=self.max_iterations,
                              jobs_backend=self.jobs_backend, mcp_files=getattr(self, "mcp_files", ()))
        except Exception as exc:  # bad model id, unreadable cwd ...
            self.update_status(model_label="no model", model_ready=False, is_demo=False)
            self.call_later(self.notice, "error", f"Could not start the agent: {exc}")
            return
        if users_file:  # and that frame itself (mlintern_tui/frame_keeper.py), if the next start's
            # would say the same: ready, unless litellm loads (a first start builds the tools'
            # schemas and says loading once)
            self.keep_first_frame(next_ready=not session.client.needs_litellm(session.model))
        if session.client.needs_litellm(session.model) or not session.warm:
            self.update_status(model_label=session.model.label, model_ready=False, is_demo=session.model.is_demo)
            self._load_then_attach(session)
            return
        # after imports without litellm there is next to no cyclic garbage to collect first
        heap.freeze_long_lived(collect=False)
        self.attach_session(session)

    @work(exclusive=True, group="engine", exit_on_error=False)
    async def _load_then_attach(self, session) -> None:
        litellm = session.client.needs_litellm(session.model)
        if litellm:
            # seconds of CPU: in a thread, and only for a model litellm serves (a server that
            # speaks the OpenAI wire format, local or the HF router, never loads it)
            from agent.llm.runtime import get_litellm

            await asyncio.to_thread(get_litellm)
        heap.freeze_long_lived(collect=litellm)
        await asyncio.to_thread(session.warm_up)  # before "ready": it would stall the first keys
        self.attach_session(session)

    def attach_session(self, session) -> None:
        self.session = session
        # a repetition guard pauses the turn and the doom-loop card offers remedies (headless runs
        # only tell the model to change approach)
        session.engine_settings.pause_on_doom_loop = self.config.doom_loop_pause
        policy = session.policy  # the Ready event does not carry the mode: start from the engine's
        self.update_status(mode=policy.mode, yolo_cap_usd=policy.budget.cap_usd, budget_left_usd=policy.budget_left(),
                           budget_exact=policy.budget_exact())
        sub = session.subscribe("ui")
        # the session's loop starts once the frame naming the model is out: what it does first
        # (its Ready event, the recent-models file, MCP servers, opening the session store in a
        # thread that holds the GIL while it imports sqlite3) is not on the way to that frame.
        # It takes prompts from now on: they wait in its queue for that frame, a few ms.
        self.call_after_refresh(self._start_session, session)
        self.show_ready(session.model.label, session.model.is_demo)
        self.run_worker(self.bridge.pump(sub), name="bridge", group="bridge", exit_on_error=False)

    def _start_session(self, session) -> None:
        if not getattr(self, "_shutting_down", False):  # quit before the first frame: nothing to start
            session.start()

    def engine_ready(self) -> bool:
        """Whether the session is there; when it is not, the user is told the model is loading."""
        if self.session is None:
            self.notify("The model is still loading.", severity="warning")
            return False
        return True

    def submit(self, op: Op) -> None:
        if self.engine_ready():
            self.session.submit(op)

    def show_ready(self, model_label: str, is_demo: bool) -> None:
        self.update_status(model_label=model_label, model_ready=True, is_demo=is_demo)
        self.query_one("#banner").set_class(not is_demo, "-hidden")

    def on_engine_ready(self, event: Ready) -> None:
        self.show_ready(event.model_label, event.is_demo)
        target, self._resume_on_ready = self._resume_on_ready, None
        picker, self._picker_on_ready = self._picker_on_ready, False
        if target:
            # queued prompts belong to the resumed session: they go once it is back (on_resumed),
            # or once the engine said why it could not come back (the error ends the "turn")
            self.call_later(self.resume_session, target)
            return
        if picker:
            self.show_resume_picker()
        if self.queued and not self.status_info.busy:
            self._deliver_next()

    # ------------------------------------------------------------------ stored sessions

    def show_resume_picker(self) -> None:
        """The stored sessions, newest first; the one picked is resumed."""
        from mlintern_tui.screens.resume_picker import ResumePicker

        if not self.engine_ready():
            return
        session = self.session
        # read when the picker needs it: the session opens its store just after it is ready
        picker = ResumePicker(lambda: (getattr(session, "store", None), getattr(session, "store_error", None)),
                              current_id=session.id, clock=self.wall_clock)

        async def picked(chosen: str | None) -> None:
            if chosen:
                await self.resume_session(chosen)

        self.push_screen(picker, callback=picked)

    # ------------------------------------------------------------------ the model picker

    def show_model_picker(self) -> None:
        """The models the session can switch to; the one picked is switched to."""
        from mlintern_tui.screens.model_picker import ModelPicker

        if not self.engine_ready():
            return

        def picked(chosen: str | None) -> None:
            if chosen:
                from agent.protocol import SetModel

                self.submit(SetModel(model=chosen))

        self.push_screen(ModelPicker(), callback=picked)  # type: ignore[attr-defined]

    def on_model_picker_list_requested(self, message: ModelPicker.ListRequested) -> None:
        if self.session is not None:  # no session: the picker keeps saying it is asking
            from agent.protocol import ListModels

            self.submit(ListModels(refresh=message.refresh))

    def on_model_list(self, event: ModelList) -> None:
        """The session's answer to ``ListModels`` (sent two or three times as the router and
        the local servers answer): to the open picker, if it is still open."""
        from mlintern_tui.screens.model_picker import ModelPicker  # loaded already: the picker asked

        for screen in self.screen_stack:  # type: ignore[attr-defined]
            if isinstance(screen, ModelPicker):
                screen.show_models(event)

    # ------------------------------------------------------------------ MCP servers

    def _session_cwd(self) -> Any:
        return self.session.cwd if self.session is not None else self.cwd

    def show_mcp_screen(self) -> None:
        """Every MCP server with its state; its keys ask the session to act."""
        from mlintern_tui.screens.mcp_screen import McpScreen

        # no session yet: the screen says it is asking, and shows the servers once it starts
        if self._mcp_screen is not None and self._mcp_screen in self.screen_stack:  # type: ignore[attr-defined]
            return
        watch = self._mcp_watch
        screen = McpScreen(watch.status if watch is not None else None, cwd=self._session_cwd())
        self._mcp_screen = screen

        def closed(_: None) -> None:
            self._mcp_screen = None

        self.push_screen(screen, callback=closed)  # type: ignore[attr-defined]

    def on_mcp_screen_action_requested(self, message: McpScreen.ActionRequested) -> None:
        if self.session is not None:
            from agent.protocol import McpAction

            self.submit(McpAction(action=message.action, server=message.server))  # type: ignore[arg-type]
        elif message.action != "status" and self._mcp_screen is not None:
            self._mcp_screen.show_error("The agent is still starting: try again in a moment.")

    async def on_mcp_status(self, event: McpStatus) -> None:
        """The servers' states (sent whenever one changes): notices for a project's servers
        waiting for trust and for a server that failed, and the open /mcp screen follows."""
        if self._mcp_watch is None:
            from mlintern_tui.mcp_watch import McpWatch

            self._mcp_watch = McpWatch()
        for kind, text in self._mcp_watch.update(event, self._session_cwd()):
            await self.notice(kind, text)
        if self._mcp_screen is not None:
            self._mcp_screen.show_status(event)

    async def on_mcp_error(self, message: str) -> None:
        """The session could not do what /mcp asked: said on the screen, and kept in the conversation."""
        if self._mcp_screen is not None:
            self._mcp_screen.show_error(message)
        await self.notice("error", message)

    async def resume_session(self, target: str) -> None:
        """Send ``Resume``; the engine answers with ``resume_complete`` or an error."""
        if not self.engine_ready():
            return
        if self.session.busy or self.status_info.busy:
            await self.notice("error", "A turn is running: interrupt it (esc) or let it finish, then resume.")
            return
        await self.notice("info", f"Resuming session {target[:12]}…")  # before the op: the answer clears the view
        self.update_status(busy=True)  # until resume_complete (or the error) arrives
        from agent.protocol import Resume

        self.submit(Resume(target_session_id=target))

    def show_title(self, title: str) -> None:
        """The session's title on the prompt's frame: the status line has no room left for it."""
        self.session_title = title
        # Content, not markup: a model's title "[red]…" is text
        self.query_one("#prompt").border_title = Content(title if len(title) <= 60 else title[:59] + "…")

    def on_resumed(self, event: ResumeComplete) -> None:
        self._settings_after_resume = True
        self._turn_in = self._turn_out = 0
        self._turn_cost = 0.0
        self._turn_unknown = 0
        self.show_title(event.title)
        self.update_status(busy=False, session_cost_usd=event.session_cost_usd,
                           session_unknown_calls=event.unknown_costs,
                           turn_tokens_in=0, turn_tokens_out=0, turn_cost_usd=0.0, turn_unknown_calls=0,
                           streamed_chars=0)
        from agent.costs import CostLedger

        # /cost is about the resumed session from now on: its stored calls and jobs, then the new ones
        self.costs = CostLedger()
        self.replay_costs(event.session_id, event.seq)
        if self.queued:
            self._deliver_next()

    @work(group="costs", exclusive=True, exit_on_error=False)
    async def replay_costs(self, session_id: str, before_seq: int) -> None:
        """The resumed session's model calls and job costs, read back from the store (in a
        thread) into /cost's ledger; what arrived since the resume is already in it."""
        from agent.protocol import JobUpdate as JobUpdateEvent
        from agent.protocol import LLMCall, parse_event

        store = getattr(self.session, "store", None)
        if store is None:
            return
        rows = await asyncio.to_thread(store.events, session_id, ("llm_call", "job_update"))
        ledger, latest_jobs = self.costs, {}
        for seq, _kind, body in rows:
            if seq >= before_seq:
                break
            try:
                stored = parse_event(body)
            except ValueError:
                continue
            if isinstance(stored, JobUpdateEvent):
                latest_jobs[stored.job_id] = stored
            elif isinstance(stored, LLMCall):
                ledger.add(stored)
        for job_id, update in latest_jobs.items():
            if job_id not in ledger.jobs:  # a live update since the resume is newer
                ledger.job(update)

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
                           session_unknown_calls=t.unknown_calls, budget_left_usd=left,
                           budget_exact=self.status_info.budget_exact and event.cost_usd is not None)

    def on_turn_end(self, receipt: Receipt | None) -> None:
        self.conversation.close_turn()  # a turn that ended without a receipt leaves no blank line
        self.clear_approvals()  # answered, abandoned or cancelled: nothing to reopen
        self._turn_in = self._turn_out = 0
        self._turn_cost = 0.0
        self._turn_unknown = 0
        changes: dict[str, Any] = {}
        if receipt is not None:
            changes["session_cost_usd"] = receipt.session_cost_usd  # compute included, sandboxes too
            changes["session_unknown_calls"] = receipt.session_unknown_cost_calls
            if self.status_info.mode == "yolo":
                changes["budget_left_usd"] = receipt.budget_left_usd
                changes["budget_exact"] = receipt.budget_exact
        self.update_status(busy=False, **changes)
        if heap.full_collection_due() and self._collect_timer is None:
            self._collect_timer = self.set_timer(COLLECT_QUIET_S, self._collect_when_quiet, name="idle collection")
        if self.queued:
            self._deliver_next()

    def _collect_when_quiet(self) -> None:
        """The full collection a turn's end asks for (``heap.collect_when_idle``), once the agent
        is not working and no key has come for ``COLLECT_QUIET_S``: it holds every key and
        frame while it runs, a few ms after a short turn, ~0.4 s after hundreds of rounds."""
        self._collect_timer = None
        if self.status_info.busy or (self.session is not None and self.session.busy):
            return  # a turn is running: its end asks again
        quiet = time.perf_counter() - self.last_input_at
        if quiet < COLLECT_QUIET_S:
            self._collect_timer = self.set_timer(COLLECT_QUIET_S - quiet, self._collect_when_quiet,
                                                 name="idle collection")
            return
        heap.collect_when_idle()

    def on_new_conversation(self) -> None:
        self.clear_approvals()

    async def on_settings_changed(self, event: SettingsChanged) -> None:
        """Model, effort, mode or cap changed: the status bar follows, and a notice says
        what changed (a mode change says what the new mode asks about)."""
        before = self.status_info
        mode = event.approval_mode or ("yolo" if event.yolo else self.base_mode)
        if self._mode_requested == mode:
            self._mode_requested = None
        self.update_status(model_label=event.model_label, effort=event.effort, mode=mode,
                           yolo_cap_usd=event.yolo_cap_usd, budget_left_usd=event.budget_left_usd if mode == "yolo" else None,
                           budget_exact=event.budget_exact,
                           context_window=event.context_window, is_demo=event.model == "demo",
                           served_model=event.served_model)
        just_resumed, self._settings_after_resume = self._settings_after_resume, False
        if event.quiet:
            return
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
            notes.append(self._budget_text(event.yolo_cap_usd, event.budget_left_usd, event.budget_exact))
            if not event.model_priced:
                notes.append(f"{event.model_label} has no known price: its calls cannot count against the cap, "
                             "and once one is made, calls that cost money ask first. Set its price under "
                             "model_prices in the config to let YOLO count them.")
        if not notes:
            if just_resumed:
                return  # the engine restating the settings a resumed session came back with: nothing new
            notes.append(f"Model {event.model_label} · effort {effort} · approval mode {mode}")
        await self.notice("info", "\n".join(notes))

    @staticmethod
    def _budget_text(cap: float | None, left: float | None, exact: bool = True) -> str:
        if cap is None:
            return "YOLO budget: no cap."
        if left is None:
            text = f"YOLO cap ${cap:.2f}"
        elif exact:
            text = f"YOLO budget: ${left:.2f} left of the ${cap:.2f} cap"
        else:
            text = (f"YOLO budget: at most ${left:.2f} left of the ${cap:.2f} cap (some spend has no known price, "
                    "so calls that cost money ask; set model_prices in the config)")
        return text + ". /yolo <dollars> changes it."

    def request_mode(self, mode: str) -> None:
        """Ask the engine for ``mode``; the status bar changes when the engine confirms."""
        if not self.engine_ready():
            return
        self._mode_requested = mode
        from agent.protocol import SetApprovalMode

        self.submit(SetApprovalMode(mode=mode))  # type: ignore[arg-type]  # applies to the next call, even mid-turn

    def update_status(self, **changes: Any) -> None:
        changes.setdefault("queued", len(self.queued))
        self.status_info = dataclasses.replace(self.status_info, **changes)
        if self.is_mounted:
            self.query_one(StatusBar).info = self.status_info

    async def notice(self, kind: str, text: str) -> None:
        await self.conversation.add_notice(kind, visible(text))  # exception texts and paths come from outside

    def status_text(self) -> str:
        i = self.status_info
        s = self.session
        lines = [f"Model: {i.model_label}" + ("" if i.model_ready else " (loading)")
                 + (f" (its server answers as {i.served_model})" if i.served_model else ""),
                 f"Effort: {i.effort or 'default'} · approval mode: {i.mode}"
                 + (" · " + self._budget_text(i.yolo_cap_usd, i.budget_left_usd, i.budget_exact) if i.mode == "yolo" else ""),
                 f"Context: {i.context_tokens:,} of {i.context_window:,} tokens"]
        if s is not None:
            lines += [f"Session {s.id[:8]} · turn {s.engine.turn} · {len(s.engine.history)} messages",
                      f"Working directory: {s.cwd}"]
        if self._mcp_watch is not None:
            mcp = self._mcp_watch.status_line(self._session_cwd())
            if mcp:
                lines.append(mcp)
        lines.append(f"mlintern {__version__}")
        return "\n".join(lines)
