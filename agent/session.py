"""A session: the submission queue in, the event bus out, one engine in between.

Ops are handled strictly in order, one at a time, except ``interrupt``: ``submit`` handles
it on the spot by cancelling whatever the engine is doing, so it never waits behind the
turn it is meant to stop.

Events go out on an ``EventBus`` (agent/bus.py); /model and /effort live in
agent/model_settings.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from pathlib import Path

from agent.bus import EventBus, Subscription
from agent.config import Config, data_dir
from agent.encodable import encodable
from agent.llm.client import LLMClient
from agent.llm.effort import CACHE_FILE, EffortCache
from agent.llm.models import default_model_id, hf_token
from agent.budget import Observer
from agent.loop import EngineSettings, TurnEngine
from agent.mcp.session_mixin import McpSessionMixin
from agent.model_settings import ModelSettingsMixin
from agent.trace_share import TraceShareMixin
from agent.policy import Policy
from agent.prompts.system import render_system_prompt
from agent.protocol import (
    ApprovalRequired,
    Compact,
    ErrorEvent,
    Event,
    ExecApproval,
    JobLog,
    Interrupt,
    Interrupted,
    New,
    NewComplete,
    Op,
    PlanUpdate,
    Processing,
    Ready,
    Rename,
    Resume,
    SetEffort,
    SetApprovalMode,
    SetModel,
    Steer,
    Continue,
    Pin,
    PinsChanged,
    ListRuns,
    ListModels,
    McpAction,
    ShareTraces,
    TraceConsent,
    Feedback,
    SetYolo,
    Shutdown,
    ShutdownEvent,
    ToolLog,
    Undo,
    UndoComplete,
    UserInput,
)
from agent.tools.base import ApprovalSettings, SessionToolState, Tool, ToolContext
from agent.rules import rules_from_config
from agent.tools.router import ToolRouter

log = logging.getLogger(__name__)
#: events that may be news for the notification destinations (agent/messaging.py news_for)
_NEWS_EVENTS = frozenset({"approval_required", "error", "turn_complete", "job_update"})


class Session(ModelSettingsMixin, McpSessionMixin, TraceShareMixin):
    messenger = None  # set in __init__ when notification destinations are configured
    def __init__(
        self,
        config: Config | None = None,
        *,
        model_id: str | None = None,
        cwd: Path | None = None,
        tools: list[Tool] | None = None,
        approval_mode: str | None = None,
        max_iterations: int | None = None,
        jobs_backend: str | None = None,
        yolo_cap_usd: float | None = None,
        mcp_files: tuple[Path, ...] = (),
        mcp_in_memory: dict | None = None,
    ):
        self.config = config or Config()
        self.mcp_files = tuple(mcp_files)
        from agent.process_tracker import new_tag

        #: in the environment of every command this session runs: found again at exit
        self.process_tag = new_tag()
        #: what happens to processes the agent left running in the background when the session
        #: ends: stopped, unless this is True (headless --keep-background, or the user said so)
        self.keep_background = False
        self.mcp_in_memory = mcp_in_memory
        #: headless: how long the first model call waits for MCP servers still connecting
        self.mcp_wait_s = 0.0
        self._mcp_task: asyncio.Task | None = None
        self._trace_op: asyncio.Task | None = None
        self._runs_task: asyncio.Task | None = None
        self._run_tasks: set[asyncio.Task] = set()
        self.id = uuid.uuid4().hex
        self.cwd = (cwd or Path.cwd()).resolve()
        self.data_dir = data_dir()
        self.bus = EventBus()
        self._queue: asyncio.Queue[tuple[int, Op]] = asyncio.Queue()
        self._epoch = 0  # bumped by every interrupt
        self._seq = 0
        self._work: asyncio.Task | None = None
        self._runner: asyncio.Task | None = None
        self._username_task: asyncio.Task | None = None
        self.hf_username: str | None = None
        self.tool_state = SessionToolState()
        from agent.secrets import SecretMasker

        #: the user's secret values (environment, HF token file), masked in every tool output,
        #: progress line and job log before the model, the screen or a trace sees them
        self.masker = SecretMasker.from_environment(hf_token=hf_token())
        self._net = None
        self._research = None  # the ``research`` property: made on the first tool call
        self._research_model = None  # the configured research model, checked at start
        #: a sub-agent's calls waiting for the user (call id -> the answer's future): answered out
        #: of band, because the turn that waits for them holds the op queue
        self._side_approvals: dict[str, asyncio.Future] = {}
        #: things the user must hear about once the session is ready (a config value that cannot work)
        self._start_notes: list[str] = []
        self.sandbox = self._sandbox_manager()
        self._prices_task: asyncio.Task | None = None
        self._warm_task: asyncio.Task | None = None  # the tokenizer, loaded before the first prompt
        self._catalog_task: asyncio.Task | None = None
        from agent.messaging import parse_messaging

        self._telemetry = None  # the ``telemetry`` property: made on its first record
        #: Slack destinations for the notify tool and automatic news (None: none configured)
        self.messaging = parse_messaging(self.config.messaging)
        self._start_notes += [f"Notifications: {problem}." for problem in self.messaging.problems]
        self.messenger = None
        self._news_jobs: set[str] = set()
        if self.messaging.destinations:
            from agent.messaging import Messenger

            self.messenger = Messenger(
                self.messaging, meta=lambda: {"session_id": self.id, "model": self.model.id},
                on_failure=lambda line: self.engine.emit(ToolLog(tool="system", log=line)))
        if tools is None:
            from agent.tools.lazy import builtin_tools

            # by name and schema: a tool's module is imported when the model first calls it
            tools = builtin_tools(sandbox=self.sandbox is not None, cache_dir=self.data_dir / "cache")
            from agent.tools.experiments import ExperimentsTool

            tools.append(ExperimentsTool(self._runs))
            if self.messenger is not None and self.messaging.tool_destinations:
                from agent.tools.notify import NotifyTool

                tools.append(NotifyTool(self.messenger))
        mode = approval_mode or self.config.approval_mode
        # every call of this session, whoever makes it, is decided by this one policy
        self.policy = Policy(
            ApprovalSettings(mode=mode, confirm_cpu_jobs=self.config.confirm_cpu_jobs, cwd=self.cwd),
            cap_usd=self.config.yolo_cap_usd if yolo_cap_usd is None else yolo_cap_usd,
            rules=rules_from_config(self.config, self.cwd),
            spent=lambda: self.engine.spent_usd(),
            # model calls and jobs without a known price: the spend is then only a lower bound
            unpriced=lambda: self.engine.session_unknown_calls + self._compute_spent(None)[1],
        )
        self.policy.observers["hf_jobs"] = self._job_observer
        self.policy.observers["sandbox_create"] = self._sandbox_observer
        from agent.sandbox.billing import SandboxBilling

        # a paid sandbox's next hour, reserved at 95% of each hour while in YOLO mode
        self.billing = SandboxBilling(self.policy, lambda line: self.engine.emit(ToolLog(tool="sandbox", log=line)),
                                      changed=lambda: self._settings_changed(quiet=True))
        self.router = ToolRouter(tools, policy=self.policy)
        self.router.mask = self.masker.mask
        model = self._resolve(default_model_id(model_id or self.config.model))
        from agent.llm.learned_windows import FILE as WINDOWS_FILE, NO_STREAM_FILE as WINDOWS_NO_STREAM_FILE
        from agent.llm.learned_windows import LearnedWindows, merged as merged_windows

        self.learned_windows = LearnedWindows(self.data_dir / WINDOWS_FILE)
        self.engine_settings = EngineSettings(
            max_iterations=self.config.max_iterations if max_iterations is None else max_iterations,
            compaction_threshold=self.config.compaction_threshold,
            # the config's windows, except where a server said its window is smaller (remembered)
            context_windows=merged_windows(self.config.context_windows, self.learned_windows.all()),
            reasoning_effort=self.config.reasoning_effort,
            max_parallel_tools=self.config.max_parallel_tools,
        )
        self.client = LLMClient(
            # through the engine, so every llm_call lands in the turn's receipt
            self.config.llm, lambda event: self.engine.emit(event), price_overrides=self.config.model_prices,
            demo_workspace=self.data_dir / "demo-workspace",
            efforts=EffortCache(self.data_dir / CACHE_FILE),
            session_key=lambda: self.id,  # OpenAI prompt_cache_key: one per conversation
            no_stream_file=self.data_dir / WINDOWS_NO_STREAM_FILE,
        )
        self.client.on_effort_change = lambda model: self._settings_changed()
        self.client.on_served = self._model_served
        # made and read from its file on first use (a price, a window, the picker), refreshed after "ready"
        self.client.catalog_at = (self.data_dir, self._router_base().rstrip("/") + "/models")
        self.engine = TurnEngine(
            model=model, router=self.router, client=self.client, emit=self.emit,
            settings=self.engine_settings, tool_context=self._tool_context, tool_state=self.tool_state,
            policy=self.policy,
        )
        self.engine.on_settings_changed = self._settings_changed
        self.engine.learned_windows = self.learned_windows
        from agent.jobs.monitor import JobMonitor
        from agent.jobs.service import JobService

        jobs_dir = self.data_dir / "jobs"
        self.jobs = JobService(
            backend=self._job_backend(jobs_dir, jobs_backend or self.config.jobs_backend, tuple(self.config.pass_env)),
            monitor=JobMonitor(lambda event: self.engine.emit(event), jobs_dir),
            turn=lambda: self.engine.turn,
        )
        # a job's log may print a key: the model reads masked notes (agent/secrets.py)
        self.engine.notes_source = lambda: [self.masker.mask(note) for note in self.jobs.monitor.drain_notes()]
        backend_name = self.jobs.backend.name  # estimates say $0 for local jobs
        self.router.when_loaded("hf_jobs", lambda tool: setattr(tool, "backend_name", backend_name))
        self.engine.compute_source = self._compute_spent
        from agent.process_access import ProcessAccess

        #: what the processes the agent starts may reach: no credentials, the Hub through a gateway
        self.process_access = ProcessAccess(
            policy=self.policy, router=self.router, ask_user=self._ask_user, jobs=self.jobs,
            hub=lambda: self.net.endpoints.hub, pass_env=tuple(self.config.pass_env), turn=lambda: self.engine.turn)
        if getattr(self.jobs.backend, "name", "") == "local":
            self.jobs.backend.environment = self.process_access.environment  # type: ignore[attr-defined]
        self._check_research_model()
        self._render_system_prompt()
        from agent.persistence import SessionPersistence

        #: the session in the store (agent/store.py): saved as it goes, loaded by ``resume``
        self.persist = SessionPersistence(self)
        self.jobs.monitor.on_finished = self._job_ended
        self.jobs.monitor.on_started = lambda job: self.telemetry.record_job_submitted(
            job.info.id, job.info.backend, job.info.flavor)
        self._wake_queued = False

    @property
    def store(self):
        """The session store (agent/store.py), or None while it is not open or cannot be used."""
        return self.persist.store

    @property
    def store_error(self) -> str | None:
        """Why sessions are not being saved, if they are not."""
        return self.persist.error

    def _compute_spent(self, turn: int | None) -> tuple[float, int]:
        """Jobs by the turn that launched them; the sandbox (one per session, billed by
        the hour while it exists) counts in the session's total."""
        total, unknown = self.jobs.monitor.spent(turn)
        if turn is None and self.sandbox is not None:
            total += self.sandbox.retired_cost_usd
            sandbox = self.sandbox.active
            cost = sandbox.cost_so_far() if sandbox is not None else 0.0
            if cost is None:
                unknown += 1
            else:
                total += cost
        return round(total, 6), unknown

    def _job_observer(self, call_id: str, since: float) -> Observer | None:
        """The job a successful hf_jobs call launched: its cost so far, final once it ended
        (a local job costs $0, known from the start)."""
        monitor = self.jobs.monitor
        job = next((j for j in reversed(list(monitor.jobs.values())) if j.call_id == call_id), None)
        if job is None:
            return None

        def observe() -> tuple[float | None, bool]:
            if job.info.backend == "local":
                return 0.0, True
            if job.info.finished and job.cost_usd is not None:
                return job.cost_usd, True
            return monitor.cost_so_far(job), job.info.finished

        return observe

    def _sandbox_observer(self, call_id: str, since: float) -> Observer | None:
        """The sandbox a successful sandbox_create call made (not one that already existed):
        billed until it is torn down, its next hour renewed in YOLO mode (agent/sandbox/billing.py)."""
        observe = self.billing.observer(self.sandbox, since)
        sandbox = self.sandbox.active if self.sandbox is not None else None
        if observe is not None and sandbox is not None:
            self.telemetry.record_sandbox_created(sandbox.repo_id, sandbox.hardware, sandbox.hourly_usd)
            self.sandbox.on_ended = lambda box: self.telemetry.record_sandbox_destroyed(box.repo_id, box.cost_so_far())
        return observe

    @staticmethod
    def _sandbox_manager():
        token = hf_token()
        if not token or os.environ.get("HF_HUB_OFFLINE") == "1":
            return None
        from agent.sandbox.manager import SandboxManager

        return SandboxManager(token)

    @staticmethod
    def _job_backend(jobs_dir: Path, choice: str, pass_env: tuple[str, ...] = ()):
        from agent.jobs.local import LocalBackend

        token = hf_token()
        if choice == "hf" or (choice == "auto" and token and os.environ.get("HF_HUB_OFFLINE") != "1"):
            if not token:
                raise ValueError("--jobs-backend hf needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
            from agent.jobs.hf import HFJobsBackend

            return HFJobsBackend(token, endpoint=os.environ.get("HF_ENDPOINT") or None)
        return LocalBackend(jobs_dir / "local", pass_env=pass_env)

    # ------------------------------------------------------------------ plumbing

    @property
    def model(self):
        return self.engine.model

    def emit(self, event: Event) -> None:
        self._seq += 1
        event.seq = self._seq
        event.ts = time.time()
        event.session_id = self.id
        if not event.turn:
            event.turn = self.engine.turn if hasattr(self, "engine") else 0
        if isinstance(event, ToolLog):
            event.log = self.masker.mask(encodable(event.log))
        elif isinstance(event, JobLog):
            event.lines = self.masker.mask_lines([encodable(line) for line in event.lines])
        if self.messenger is not None and event.type in _NEWS_EVENTS:
            self._tell(event)
        persist = getattr(self, "persist", None)
        if persist is not None and persist.intercept(event):
            return  # held until the store has committed it (agent/persistence.py)
        self.bus.publish(event)

    # ------------------------------------------------------------------ the experiment board

    async def _record_run(self, job) -> None:
        from agent.experiments import build_run
        from agent.protocol import RunRecord

        try:
            run = await asyncio.to_thread(build_run, job, self.id, str(self.cwd))
        except Exception:  # a run the board cannot read is left out, never a crash
            log.exception("run of job %s not recorded", job.info.id)
            return
        self.engine.emit(RunRecord(run=run))

    async def _runs(self) -> list:
        """This project's runs: the ended ones kept in the store (every session of this
        directory), then this session's jobs still running, as they are now."""
        from agent.experiments import build_run
        from agent.protocol import ExperimentRun, parse_event

        ended: dict[str, ExperimentRun] = {}
        store = self.persist.store
        if store is not None:
            await asyncio.to_thread(store.flush, 5.0)
            for body in await asyncio.to_thread(store.runs, str(self.cwd)):
                try:
                    run = parse_event(body).run  # type: ignore[union-attr]
                except Exception:
                    continue
                ended[run.job_id] = run
        live = [j for j in self.jobs.monitor.jobs.values() if j.info.id not in ended]
        running = [await asyncio.to_thread(build_run, j, self.id, str(self.cwd)) for j in live]
        return [*ended.values(), *running]

    async def _send_runs(self) -> None:
        from agent.protocol import RunList

        try:
            runs = await self._runs()
        except Exception as exc:
            self.emit(ErrorEvent(message=f"The experiment board could not be read: {type(exc).__name__}: {exc}",
                                 kind="runs"))
            return
        self.engine.emit(RunList(runs=runs))

    async def _background_at_exit(self) -> None:
        """What the agent's commands left running (``&``, ``nohup``, ``setsid``): stopped, or kept and listed."""
        from agent.process_tracker import describe, leftovers, stop

        left = await asyncio.to_thread(leftovers, self.process_tag)
        if not left:
            return
        if self.keep_background:
            self.emit(ToolLog(tool="system", log=(
                f"Left running in the background as asked: {describe(left)}. Work that should outlive mlintern "
                "is what jobs are for (hf_jobs).")))
            return
        stubborn = await asyncio.to_thread(stop, left)
        stopped = [p for p in left if p not in stubborn]
        line = (f"Stopped {len(stopped)} process(es) the agent left running in the background: {describe(stopped)}. "
                "Work that should outlive mlintern belongs in a job (hf_jobs); headless, --keep-background keeps them.")
        if stubborn:
            line += f" Could not stop: {describe(stubborn)}."
        self.emit(ToolLog(tool="system", log=line))

    def _tell(self, event: Event) -> None:
        from agent.messaging import news_for

        try:
            news = news_for(event, self._news_jobs)
            if news is not None:
                self.messenger.auto(*news)
        except Exception:  # news never costs the session
            log.debug("notification skipped", exc_info=True)

    def subscribe(self, name: str = "") -> Subscription:
        return self.bus.subscribe(name)

    def submit(self, op: Op) -> None:
        if isinstance(op, Interrupt):
            self.interrupt()
            return
        if isinstance(op, ExecApproval):
            op = self._answer_side_approvals(op)
            if op is None:
                return
        if isinstance(op, Steer):
            if self.busy or self.engine.pending is not None:
                self.engine.steer(op.text)  # the running (or waiting) turn reads it at its next step
                return
            op = UserInput(text=op.text)  # nothing runs: an ordinary prompt
        if isinstance(op, ListRuns):  # the board opens mid-turn too
            self._runs_task = asyncio.create_task(self._send_runs())
            return
        if isinstance(op, ListModels):  # the picker opens mid-turn too: never queued behind the turn
            self._list_models(op.refresh)
            return
        if isinstance(op, McpAction):  # so does /mcp
            self._mcp_task = asyncio.create_task(self._mcp_action(op.action, op.server))
            return
        if isinstance(op, Feedback):
            self.telemetry.record_feedback(op.rating, op.comment, self.engine.turn)
            self.engine.emit(ToolLog(tool="system", log=f"Feedback ({op.rating}) kept with this session."))
            return
        if isinstance(op, (ShareTraces, TraceConsent)):  # and /share-traces
            work = self._share_traces(op.visibility) if isinstance(op, ShareTraces) else \
                self._trace_consent(op.accept, op.mask, op.save)
            self._trace_op = asyncio.create_task(work)
            return
        if isinstance(op, (SetYolo, SetApprovalMode)) and self.busy:
            # a user who switches to ask mid-run means the next call, not the next turn
            try:
                self._apply_approval_op(op)
            except Exception as exc:
                self.emit(ErrorEvent(message=f"Could not handle {op.type}: {type(exc).__name__}: {exc}",
                                     kind="internal"))
            return
        self._queue.put_nowait((self._epoch, op))

    def _apply_approval_op(self, op: SetYolo | SetApprovalMode) -> None:
        if isinstance(op, SetYolo):
            base = self.config.approval_mode if self.config.approval_mode != "yolo" else "auto"
            self.policy.set_mode("yolo" if op.enabled else base)
            if op.cap_usd is not None:
                self.config.yolo_cap_usd = op.cap_usd
                self.policy.budget.cap_usd = op.cap_usd
        else:
            self.policy.set_mode(op.mode)
        self._settings_changed()

    def interrupt(self) -> None:
        """Stop the running turn now (streaming, tools, retry sleeps, compaction). Turns
        submitted before the interrupt that have not started yet are dropped too."""
        self._epoch += 1
        if self._work is not None and not self._work.done():
            self._work.cancel()
        elif self.engine.pending:
            self.engine.cancel_pending()

    @property
    def busy(self) -> bool:
        return self._work is not None and not self._work.done()

    # ------------------------------------------------------------------ research sub-agents

    def _check_research_model(self) -> None:
        """The configured research model, resolved at start: a bad one is said then, not at the
        first research call."""
        if self.config.research_model:
            try:
                self._research_model = self._resolve(self.config.research_model)
            except Exception as exc:  # a bad research model must not cost the session: said at start
                self._start_notes.append(f"research_model {self.config.research_model!r} in the config cannot be "
                                         f"used ({exc}); the research sub-agent uses the main model instead.")

    @property
    def research(self):
        """Runs research sub-agents for the ``research`` tool; made (and its module imported) on
        the first tool call, not on the way to the first frame."""
        if self._research is None:
            self._research = self._research_runner()
        return self._research

    @property
    def telemetry(self):
        """Records of jobs, sandboxes and feedback, kept with the session's events; made on the
        first record."""
        if self._telemetry is None:
            from agent.telemetry import Telemetry

            self._telemetry = Telemetry(lambda event: self.engine.emit(event))
        return self._telemetry

    def _research_runner(self):
        from agent.research import ResearchLimits, ResearchRunner

        research_model = self._research_model
        return ResearchRunner(
            client=self.client,
            tools=lambda: [t for t in (self.router.get(n) for n in self.router.names) if t is not None],
            policy=self.policy,
            emit=lambda event: self.engine.emit(event),
            model=lambda: research_model or self.engine.model,
            tool_context=self._tool_context,
            ask_user=self._ask_user,
            limits=ResearchLimits(self.config.research_max_iterations, self.config.research_max_tokens),
            reasoning_effort=lambda: self.engine_settings.reasoning_effort,
            context_window=lambda model: self.client.window(model, self.engine_settings.context_windows).tokens,
            cwd=self.cwd,
            mask=self.masker.mask,
        )

    async def _ask_user(self, items: list, parent_call_id: str) -> list:
        """A sub-agent's calls that need a human: the same approval event as the main
        agent's (tagged with its parent call), answered through ``submit``."""
        loop = asyncio.get_running_loop()
        futures = {item.tool_call_id: loop.create_future() for item in items}
        self._side_approvals.update(futures)
        try:
            self.engine.emit(ApprovalRequired(items=items, parent_call_id=parent_call_id))
            return list(await asyncio.gather(*futures.values()))
        finally:
            for call_id in futures:
                self._side_approvals.pop(call_id, None)

    def _answer_side_approvals(self, op: ExecApproval) -> ExecApproval | None:
        """Hand a sub-agent's answers to it; what is left (the main turn's) goes on the queue.
        An answer for a sub-agent call nobody waits for any more (its run was interrupted)
        is dropped: it must never reach the main turn's approvals."""
        from agent.research import is_sub_agent_call

        rest = []
        for decision in op.decisions:
            future = self._side_approvals.get(decision.tool_call_id)
            if future is None:
                if not is_sub_agent_call(decision.tool_call_id):
                    rest.append(decision)
            elif not future.done():
                future.set_result(decision)
        return op.model_copy(update={"decisions": rest}) if rest else None

    def _tool_context(self, call_id: str, tool_name: str) -> ToolContext:
        return ToolContext(
            session_id=self.id,
            cwd=self.cwd,
            spill_dir=self.data_dir / "spill" / self.id,
            state=self.tool_state,
            tool_call_id=call_id,
            log=lambda line: self.engine.emit(ToolLog(tool=tool_name, log=line, tool_call_id=call_id)),
            on_plan=lambda plan: self.engine.emit(PlanUpdate(plan=list(plan))),
            jobs=self.jobs,
            sandbox=self.sandbox,
            net=self.net,
            research=self.research,
            environment=self.process_access.environment,
            process_tag=self.process_tag,
        )

    @property
    def net(self):
        """The knowledge tools' HTTP client, made on first use (never on the way to the first frame)."""
        if self._net is None:
            from agent.net import Net

            self._net = Net.for_config(self.config, cache_dir=self.data_dir / "cache" / "http")
        return self._net

    def _render_system_prompt(self) -> None:
        prompt = render_system_prompt(
            tool_names=self.router.names, cwd=self.cwd, hf_username=self.hf_username,
            model_label=self.engine.model.label,
        )
        if self.engine.pins:
            prompt += ("\n\n## Pinned by the user (true for the whole task; kept through every compaction)\n"
                       + "\n".join(f"- {pin}" for pin in self.engine.pins))
        self.engine.history.set_system(prompt)

    async def _lookup_username(self) -> None:
        """Who the HF token belongs to, for the prompt; never blocks start-up."""
        token = hf_token()
        if not token or os.environ.get("HF_HUB_OFFLINE") == "1":
            return
        try:
            from huggingface_hub import HfApi

            # endpoint read now, not at import, so HF_ENDPOINT can point at a mirror or emulator
            api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
            info = await asyncio.wait_for(asyncio.to_thread(api.whoami), timeout=10)
        except Exception:
            return
        name = info.get("name") if isinstance(info, dict) else None
        if name:
            self.hf_username = name
            self._render_system_prompt()

    # ------------------------------------------------------------------ running

    def warm_up(self) -> None:
        """Load what the first turn would otherwise load (the model's tokenizer: ~90 ms, and
        it holds the GIL). Blocking: call it in a thread. The app does so before it says the
        model is ready - done after, it delayed the first keys typed by ~60 ms."""
        warm = getattr(self.engine.history.counter, "warm_up", None)
        if warm is not None:
            warm()

    @property
    def warm(self) -> bool:
        """Whether ``warm_up`` has nothing left to load (always, for a model counted chars/4)."""
        return bool(getattr(self.engine.history.counter, "warm", True))

    def start(self) -> asyncio.Task:
        self._runner = asyncio.create_task(self.run(), name=f"session-{self.id[:8]}")
        return self._runner

    async def run(self) -> None:
        self._username_task = asyncio.create_task(self._lookup_username())
        # the tokenizer loads while the user types the first prompt, off the event loop
        # (the app has usually done it already: see warm_up)
        if not self.warm:
            self._warm_task = asyncio.create_task(asyncio.to_thread(self.warm_up))
        refresh = getattr(self.jobs.backend, "refresh_prices", None)
        if refresh is not None:
            # the first approval card's estimate should already use the Hub's prices
            self._prices_task = asyncio.create_task(refresh())
        self.emit(Ready(
            model=self.model.id, model_label=self.model.label, tool_count=len(self.router),
            cwd=str(self.cwd), is_demo=self.model.is_demo,
        ))
        for note in self._start_notes:
            self.emit(ToolLog(tool="system", log=note))
        if self.model.route == "hf_router":
            # the router's catalog prices this model's calls: fetched now if what is kept is old
            self._catalog_task = asyncio.create_task(self._catalog_at_start())
        self._remember_model()
        try:
            self._start_mcp()
        except Exception as exc:  # MCP must never cost the session
            log.exception("MCP start failed")
            self.emit(ToolLog(tool="system", log=f"MCP servers could not be started: {type(exc).__name__}: {exc}"))
        try:
            await self.persist.open()  # after "ready": the first frame never waits for SQLite
            try:
                self._start_traces()
            except Exception as exc:  # sharing must never cost the session
                log.exception("trace sharing could not start")
                self.emit(ToolLog(tool="system", log=f"Trace sharing could not start: {type(exc).__name__}: {exc}"))
            while True:
                epoch, op = await self._queue.get()
                if isinstance(op, Shutdown):
                    break
                if epoch != self._epoch and isinstance(op, (UserInput, ExecApproval, Compact)):
                    # submitted, then interrupted before it started: it never runs
                    if isinstance(op, UserInput):
                        self.emit(Interrupted(partial_text=""))
                    continue
                await self._handle(op)
        finally:
            for task in (self._username_task, self._prices_task, self._warm_task, self._catalog_task,
                         self._listing, self._catalog_fetch, self._mcp_task, self._trace_op, self._runs_task):
                if task and not task.done():
                    task.cancel()
            if self.sandbox is not None:
                # a sandbox is a Space that bills by the hour: never leave one behind
                try:
                    await asyncio.shield(self.sandbox.teardown(
                        log=lambda line: self.engine.emit(ToolLog(tool="sandbox", log=line))))
                except Exception:
                    pass
            try:
                await asyncio.shield(self._background_at_exit())
            except Exception:
                pass
            # local jobs are this process's children: stop them with it (HF jobs keep running)
            shutdown = getattr(self.jobs.backend, "shutdown", None)
            if shutdown is not None:
                try:
                    await asyncio.shield(shutdown())
                except Exception:
                    pass
            await self._close_mcp()
            if self.messenger is not None:
                try:
                    await asyncio.shield(self.messenger.close())
                except Exception:
                    pass
            await self.jobs.monitor.close()
            if self._net is not None:
                try:
                    await self._net.aclose()
                except Exception:
                    pass
            try:
                await self.process_access.stop()
            except Exception:
                pass
            try:
                await asyncio.shield(self._finish_traces())  # the last upload, before the store closes
            except Exception:
                pass
            try:
                await asyncio.shield(self.persist.close())
            except Exception:
                log.exception("session store: closing failed")
            self.emit(ShutdownEvent())

    async def _run_work(self, coro) -> None:
        self._work = asyncio.create_task(coro)
        try:
            await self._work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the session itself is being stopped
            # cancelled before the engine even started: still a visible interrupt
            self.engine._repair()
            self.emit(Interrupted())
        finally:
            self._work = None
        current = asyncio.current_task()
        if current is not None and current.cancelling():
            # the engine swallows the cancellation to report the interrupt; when it was the
            # session task itself being cancelled, keep unwinding instead of taking more ops
            raise asyncio.CancelledError

    async def _handle(self, op: Op) -> None:
        engine = self.engine
        try:
            if isinstance(op, (UserInput, _Wake, Continue)):
                if self.mcp_wait_s:
                    wait, self.mcp_wait_s = self.mcp_wait_s, 0.0
                    await self._wait_for_mcp(wait)
                self._apply_mcp_tools()  # servers that came or went since the last turn
            if isinstance(op, UserInput):
                self.persist.prompt_submitted(op.text)
                await self._run_work(engine.run_turn(op.text))
            elif isinstance(op, _Wake):
                await self._wake()
            elif isinstance(op, Continue):  # after a paused repetition guard: go on, with a hint if given
                await self._run_work(engine.run_turn(op.hint.strip() or None))
            elif isinstance(op, ExecApproval):
                await self._run_work(engine.resume(op.decisions))
            elif isinstance(op, Compact) and op.preview:
                from agent.protocol import CompactionPreview

                plan = engine.context.plan()
                self.emit(CompactionPreview(summarise=plan.summarise, keep=plan.keep, pinned=list(engine.pins),
                                            tokens=plan.tokens, threshold=plan.threshold))
            elif isinstance(op, Compact):
                await self._run_work(engine.compact(op.focus))
            elif isinstance(op, Pin):
                self._pin(op.text, op.remove)
            elif isinstance(op, Undo):
                if engine.pending:
                    engine.cancel_pending()
                removed = engine.history.undo_last_turn()
                engine.doom.reset()
                self.emit(UndoComplete(removed_messages=removed))
            elif isinstance(op, New):
                self._new_conversation()
            elif isinstance(op, Resume):
                await self.persist.resume(op.target_session_id)
            elif isinstance(op, Rename):
                self.persist.rename(op.title)
            elif isinstance(op, SetModel):
                await self._run_work(self._switch_model(op.model))
            elif isinstance(op, SetEffort):
                await self._run_work(self._set_effort(op.effort))
            elif isinstance(op, (SetYolo, SetApprovalMode)):
                self._apply_approval_op(op)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # an op must never take the session down
            self.emit(ErrorEvent(message=f"Could not handle {op.type}: {type(exc).__name__}: {exc}", kind="internal"))

    def _pin(self, text: str, remove: bool) -> None:
        text = " ".join(text.split())
        pins = self.engine.pins
        if remove:
            if text not in pins:
                self.emit(ErrorEvent(message=f"Nothing pinned reads {text!r}.", kind="pin"))
                return
            pins.remove(text)
        elif text and text not in pins:
            pins.append(text[:2000])
        self._render_system_prompt()
        # a pinned message can be long: the line says which, /pins lists them whole
        shown = text if len(text) <= 120 else text[:119] + "…"
        self.engine.emit(ToolLog(tool="system", log=(f"Unpinned: {shown}" if remove else f"Pinned (kept through "
                                                     f"every compaction): {shown}") + f" · {len(pins)} pinned"))
        self.emit(PinsChanged(pins=list(pins)))

    def _new_conversation(self) -> None:
        engine = self.engine
        if engine.pending:
            engine.cancel_pending()
        had_pins = bool(engine.pins)
        previous = self.id
        self.persist.checkpoint(status="idle")  # the old session stays in the store as it was
        self.id = uuid.uuid4().hex
        self._seq = 0
        self.persist.new_session()
        engine.history.entries.clear()
        engine.reset_conversation_state()
        engine.turn = 0
        engine.session_cost = 0.0
        engine.session_unknown_calls = 0
        self.tool_state.reset()
        self._render_system_prompt()
        self.emit(NewComplete(previous_session_id=previous))
        if had_pins:  # the pins went with the old conversation
            self.emit(PinsChanged(pins=[]))

    # ------------------------------------------------------------------ waking for jobs

    @property
    def wake_queued(self) -> bool:
        """A job ended and the turn that takes up its news has not started yet."""
        return self._wake_queued

    @property
    def settled(self) -> bool:
        """Nothing running, no turn about to start for a job's news, no event held back for
        the store: every event of the work so far has been published."""
        return not self.busy and not self._wake_queued and not self.persist.holding

    def _job_ended(self, job) -> None:
        """A job the agent started has ended (its note waits for the model). Idle, with
        ``wake_on_job_end``: a turn starts by itself to take the news."""
        info = job.info
        took = info.finished_at - info.started_at if info.finished_at and info.started_at else None
        self.telemetry.record_job_completed(info.id, info.stage, job.cost_usd, took)
        task = asyncio.get_running_loop().create_task(self._record_run(job))
        self._run_tasks.add(task)  # held until done: the run must not be lost to the garbage collector
        task.add_done_callback(self._run_tasks.discard)
        if not self.config.wake_on_job_end or self._wake_queued or self._runner is None or self._runner.done():
            return
        self._wake_queued = True
        self._queue.put_nowait((self._epoch, _Wake()))

    async def _wake(self) -> None:
        self._wake_queued = False
        engine = self.engine
        if engine.pending is not None or not self.jobs.monitor.has_notes():
            return  # the user is being asked something, or a turn already read the news
        ended = self.jobs.monitor.noted_jobs()
        self.emit(Processing(message=f"{_jobs_words(ended)} ended: the agent wakes to read the result",
                             woke_for=ended))
        await self._run_work(engine.run_turn(None))


def _jobs_words(ids: list[str]) -> str:
    if not ids:
        return "A job"
    if len(ids) == 1:
        return f"Job {ids[0]}"
    return f"{len(ids)} jobs ({', '.join(ids[:3])}{', …' if len(ids) > 3 else ''})"


class _Wake:
    """Queued when a job ends: a turn without a prompt, whose first step reads the job's note."""

    type = "wake"
