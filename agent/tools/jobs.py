"""``hf_jobs``: launch and manage compute jobs without holding the turn hostage.

``run`` returns once the job is accepted (with its first log lines); the job monitor follows
it in the background and the model gets a note when it ends. Scripts travel as content:
inline code, or a local file path whose text is sent - never a path that only exists here -
or, on HF Jobs, an http(s) URL that uv fetches remotely. The ``scheduled *`` operations
need a backend with schedules (HF Jobs); scheduled runs are not followed by the monitor.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.jobs.base import JobError, JobSpec, ScheduledJobInfo, ScheduledJobs
from agent.jobs.pricing import default_prices, estimate_cost, hourly_price, is_gpu, parse_timeout
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult

Operation = Literal[
    "run", "ps", "logs", "inspect", "cancel",
    "scheduled run", "scheduled ps", "scheduled inspect", "scheduled delete", "scheduled suspend", "scheduled resume",
]
FIRST_LINES_WAIT_S = 3.0
LOG_TAIL = 60


class HfJobsParams(ToolParams):
    operation: Operation = Field(description="What to do. `run` starts a job and returns once it is accepted; "
                                             "`logs`/`inspect` check on it; `ps` lists jobs; `cancel` stops one. "
                                             "`scheduled run` creates a recurring job (needs `schedule`); "
                                             "`scheduled ps/inspect/delete/suspend/resume` manage them (HF Jobs only).")
    script: str | None = Field(None, description="Python code to run (inline source), a path to a local .py file "
                                                 "whose content is sent, or (HF Jobs) an http(s) URL of a script. "
                                                 "Exactly one of script / command for run and scheduled run.")
    script_args: list[str] = Field(default_factory=list, description="Arguments passed to the script.")
    dependencies: list[str] = Field(default_factory=list, description="pip packages the script needs (installed with uv).")
    image: str | None = Field(None, description="Docker mode: the image to run `command` in.")
    command: list[str] | None = Field(None, description="Docker mode: the command (argv) to run in `image`.")
    hardware_flavor: str = Field("cpu-basic", description="cpu-basic, cpu-upgrade, t4-small, t4-medium, l4x1, a10g-small, "
                                                          "a10g-large, a10g-largex2, a100-large, h100, ...")
    timeout: str = Field("30m", description="Maximum run time, e.g. '30m', '2h'. The job is killed after it.")
    env: dict[str, str] = Field(default_factory=dict, description="Environment variables (not secret).")
    namespace: str | None = Field(None, description="User or org to run under (HF Jobs); default: your user.")
    job_id: str | None = Field(None, description="The job for logs / inspect / cancel.")
    scheduled_job_id: str | None = Field(None, description="The scheduled job for scheduled inspect/delete/suspend/resume.")
    schedule: str | None = Field(None, description="Cron expression or @hourly/@daily/@weekly/@monthly (scheduled run).")


class HfJobsTool(Tool):
    name = "hf_jobs"
    description = (
        "Run and manage compute jobs (Hugging Face Jobs, or local CPU processes when no HF account is configured). "
        "`run` returns as soon as the job is accepted, with its first log lines; the job keeps running in the "
        "background and you get a [JOB UPDATE] note when it ends. Check progress with `logs` (latest lines) or "
        "`inspect`. Send the training code itself as `script` (inline code or a local .py path whose content is "
        "sent); paths that exist only on this machine are meaningless to a remote job. Smoke-test on cpu-basic "
        "with a tiny subset before paying for a GPU; GPU runs always need the user's approval. On HF Jobs, "
        "`scheduled run` creates a recurring job (cron or @hourly/@daily/...; always needs approval) and the other "
        "`scheduled` operations list, inspect, suspend, resume or delete them."
    )
    Params = HfJobsParams
    #: set by the session once its backend is chosen: jobs on this machine's CPU cost $0
    backend_name: str | None = None

    def approval_reason(self, params: HfJobsParams, settings: ApprovalSettings) -> str | None:
        op = params.operation
        if op == "scheduled run":
            per_run = estimate_cost(params.hardware_flavor, parse_timeout(params.timeout))
            money = f"up to ${per_run:.2f} per run" if per_run is not None else "cost per run cannot be estimated"
            return (f"scheduled job on {params.hardware_flavor} ({params.schedule or 'no schedule'}, {money}): "
                    "it repeats and its cost is unbounded, so it always asks")
        if op.startswith("scheduled"):
            return "scheduled jobs repeat and their cost is unbounded: always asks"
        if op != "run":
            return None
        estimate = self.estimate(params)
        money = f"estimated up to ${estimate:.2f}" if estimate is not None else "cost cannot be estimated"
        if self.backend_name == "local" and not is_gpu(params.hardware_flavor):
            money = "on this machine's CPU, $0"
        if is_gpu(params.hardware_flavor):
            return f"GPU job on {params.hardware_flavor} for up to {params.timeout} ({money})"
        if settings.confirm_cpu_jobs:
            return f"CPU job on {params.hardware_flavor} for up to {params.timeout} ({money}; confirm_cpu_jobs is on)"
        return None

    def always_ask(self, params: HfJobsParams) -> bool:
        return params.operation.startswith("scheduled")

    def estimate(self, params: HfJobsParams) -> float | None:
        if params.operation != "run":
            return None
        if self.backend_name == "local" and not is_gpu(params.hardware_flavor):
            return 0.0  # GPU flavours are refused there: their estimate stays the HF price
        return estimate_cost(params.hardware_flavor, parse_timeout(params.timeout))

    async def run(self, params: HfJobsParams, ctx: ToolContext) -> ToolResult:
        jobs = ctx.jobs
        if jobs is None:
            return ToolResult("ERROR: no job backend is available in this session.", success=False)
        op = params.operation
        try:
            if op == "run":
                return await self._run(params, ctx)
            if op == "ps":
                infos = await jobs.backend.list(include_finished=True)
                if not infos:
                    return ToolResult("No jobs.")
                rows = [f"{i.id}  {i.stage:<10} {i.flavor:<12} {i.message}" for i in infos]
                return ToolResult("\n".join(rows))
            if op in ("logs", "inspect", "cancel"):
                if not params.job_id:
                    return ToolResult(f"ERROR: `{op}` needs job_id (see `ps`).", success=False)
                if op == "cancel":
                    info = await jobs.monitor.cancel(params.job_id) if params.job_id in jobs.monitor.jobs \
                        else await jobs.backend.cancel(params.job_id)
                    return ToolResult(f"Job {info.id}: {info.stage}. {info.message}")
                if op == "inspect":
                    info = await jobs.backend.inspect(params.job_id)
                    return ToolResult(_describe(info, jobs))
                lines = await jobs.backend.fetch_logs(params.job_id)
                info = await jobs.backend.inspect(params.job_id)
                tail = lines[-LOG_TAIL:]
                head = f"Job {info.id} is {info.stage}; {len(lines)} log lines"
                head += f", showing the last {len(tail)}:" if len(lines) > len(tail) else ":"
                return ToolResult(head + "\n" + "\n".join(tail))
            if not isinstance(jobs.backend, ScheduledJobs):
                return ToolResult(
                    f"ERROR: `{op}` needs Hugging Face Jobs, and this session runs jobs locally "
                    f"({jobs.backend.name} backend). Set HF_TOKEN and start with --jobs-backend hf.", success=False)
            return await self._scheduled(params, ctx)
        except JobError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)

    def _spec(self, params: HfJobsParams, ctx: ToolContext) -> JobSpec | ToolResult:
        """The JobSpec for `run` / `scheduled run`, or the refusal that explains what is wrong."""
        backend = ctx.jobs.backend
        if (params.script is None) == (params.command is None):
            return _refuse(f"`{params.operation}` needs exactly one of `script` (Python code, a .py path or an "
                           "http(s) URL) or `command` (Docker mode).")
        timeout_s = parse_timeout(params.timeout)
        if timeout_s is None:
            return _refuse(f"cannot read timeout {params.timeout!r}; use e.g. '30m' or '2h'.")
        script, script_url = params.script, None
        if script is not None and _is_url(script):
            if not getattr(backend, "accepts_script_urls", False):
                return _refuse("a script URL needs Hugging Face Jobs (uv fetches it on the remote machine), and this "
                               f"session runs jobs locally ({backend.name} backend). Pass the code itself as `script`.")
            script, script_url = None, script.strip()
        elif script is not None and "\n" not in script and script.strip().endswith(".py"):
            path = Path(script.strip()).expanduser()
            path = path if path.is_absolute() else ctx.cwd / path
            if not path.is_file():
                return _refuse(f"{script} is not a file here, and a remote job cannot see this machine's files. "
                               "Pass the code itself as `script`.")
            script = path.read_text(encoding="utf-8")
        return JobSpec(
            script=script, script_url=script_url, script_args=tuple(params.script_args),
            command=tuple(params.command) if params.command else None, image=params.image,
            dependencies=tuple(params.dependencies), env=dict(params.env), flavor=params.hardware_flavor,
            timeout_s=timeout_s, namespace=params.namespace,
        )

    async def _run(self, params: HfJobsParams, ctx: ToolContext) -> ToolResult:
        jobs = ctx.jobs
        spec = self._spec(params, ctx)
        if isinstance(spec, ToolResult):
            return spec
        await _refresh_prices(jobs.backend)
        try:
            info = await jobs.backend.run(spec)
        except JobError as exc:
            return ToolResult(f"ERROR: {exc} NOT executed.", success=False)
        watched = jobs.monitor.watch(jobs.backend, info, turn=jobs.turn(), call_id=ctx.tool_call_id)
        watched.spec = spec  # for its run on the experiment board
        deadline = asyncio.get_running_loop().time() + jobs.first_lines_wait_s
        while watched.lines_seen < 5 and not watched.info.finished and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        money = "local CPU, $0" if jobs.backend.name == "local" else _money(info.flavor, spec.timeout_s, params.timeout)
        lines = [f"Job {info.id} accepted on {info.flavor} ({jobs.backend.name} backend, {money}). Status: {watched.info.stage}.",
                 f"Log: {watched.log_path}"]
        if watched.tail:
            lines.append("First log lines:\n" + "\n".join(watched.tail))
        lines.append("It keeps running in the background: you will get a [JOB UPDATE] note when it ends. "
                     "Use hf_jobs logs / inspect with this job_id to check on it; do not wait in a loop.")
        return ToolResult("\n".join(lines))

    async def _scheduled(self, params: HfJobsParams, ctx: ToolContext) -> ToolResult:
        backend = ctx.jobs.backend
        op = params.operation
        if op == "scheduled run":
            if not params.schedule or not _valid_schedule(params.schedule):
                return ToolResult(f"ERROR: `scheduled run` needs `schedule`: a 5-field cron expression such as "
                                  f"'0 3 * * *' or one of {', '.join(SCHEDULE_ALIASES)} (got {params.schedule!r}). "
                                  "Nothing was scheduled.", success=False)
            spec = self._spec(params, ctx)
            if isinstance(spec, ToolResult):
                return spec
            await _refresh_prices(backend)
            try:
                info = await backend.schedule(spec, params.schedule.strip())
            except JobError as exc:
                return ToolResult(f"ERROR: {exc} Nothing was scheduled.", success=False)
            return ToolResult("\n".join([
                f"Scheduled job {info.id} created under {info.namespace}: runs {info.schedule} on {info.flavor}; "
                f"each run: {_money(info.flavor, spec.timeout_s, params.timeout)}.",
                _state_line(info),
                f"Each run executes: {info.command}",
                "Nothing runs now. Every run is a separate job billed on its own and is not followed here: "
                "`scheduled inspect` shows the last run's job id, then use `logs` / `inspect` with it. "
                "Stop the schedule with `scheduled suspend` or `scheduled delete`.",
            ]))
        if op == "scheduled ps":
            infos = await backend.list_scheduled(params.namespace)
            if not infos:
                return ToolResult("No scheduled jobs" + (f" under {params.namespace}." if params.namespace else "."))
            rows = [f"{len(infos)} scheduled job(s):"]
            rows += [f"{i.id}  {i.schedule:<12} {i.flavor:<12} {'SUSPENDED' if i.suspended else 'active':<9} "
                     f"next run: {_when(i.next_run_at)}; last job: {i.last_job_id or 'none yet'}" for i in infos]
            return ToolResult("\n".join(rows))
        if not params.scheduled_job_id:
            return ToolResult(f"ERROR: `{op}` needs scheduled_job_id (see `scheduled ps`).", success=False)
        sid = params.scheduled_job_id
        if op == "scheduled delete":
            await backend.delete_scheduled(sid, params.namespace)
            return ToolResult(f"Scheduled job {sid} deleted: no further runs will start. A run already started "
                              "keeps going; stop it with `cancel` and its job_id.")
        if op == "scheduled suspend":
            info = await backend.suspend_scheduled(sid, params.namespace)
            return ToolResult(f"Scheduled job {sid} suspended: no runs start until `scheduled resume`.\n"
                              + _state_line(info))
        if op == "scheduled resume":
            info = await backend.resume_scheduled(sid, params.namespace)
            return ToolResult(f"Scheduled job {sid} resumed.\n" + _state_line(info))
        info = await backend.inspect_scheduled(sid, params.namespace)
        lines = [f"Scheduled job {info.id} under {info.namespace}: {info.schedule} on {info.flavor}.",
                 _state_line(info), f"Each run executes: {info.command}"]
        if info.created_at:
            lines.append(f"Created: {_when(info.created_at, relative=False)}.")
        return ToolResult("\n".join(lines))


SCHEDULE_ALIASES = ("@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually")


def _valid_schedule(schedule: str) -> bool:
    """A shape check only (the Hub validates the fields): an alias, or five cron fields."""
    text = schedule.strip()
    return text in SCHEDULE_ALIASES or (len(text.split()) == 5 and not text.startswith("@"))


def _is_url(script: str) -> bool:
    text = script.strip()
    return text.startswith(("http://", "https://")) and not any(c.isspace() for c in text)


def _refuse(message: str) -> ToolResult:
    return ToolResult(f"ERROR: {message} NOT executed.", success=False)


async def _refresh_prices(backend) -> None:
    """Ask the Hub for current prices when the cached ones are stale (at most one quick try;
    failures leave the offline table in place)."""
    refresh = getattr(backend, "refresh_prices", None)
    if refresh is not None and default_prices().needs_refresh():
        await refresh()


def _money(flavor: str, timeout_s: int, timeout: str) -> str:
    price = hourly_price(flavor)
    if price is None:
        return "price unknown"
    source = "the Hub's price list" if default_prices().source == "hub" else "the offline price list"
    return f"${price:.2f}/h per {source}, at most ${estimate_cost(flavor, timeout_s):.2f} for the {timeout} timeout"


def _when(ts: float | None, relative: bool = True) -> str:
    if ts is None:
        return "none"
    moment = datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    if not relative:
        return moment
    minutes = int((ts - time.time()) // 60)
    if minutes < 0:
        return moment
    span = f"{minutes // 1440}d {minutes % 1440 // 60}h" if minutes >= 1440 else f"{minutes // 60}h {minutes % 60:02d}m"
    return f"{moment} (in {span})"


def _state_line(info: ScheduledJobInfo) -> str:
    last = "none yet" if not info.last_job_id else f"{info.last_job_id} at {_when(info.last_job_at, relative=False)}"
    nxt = "none while suspended" if info.suspended else _when(info.next_run_at)
    return f"Suspended: {'yes' if info.suspended else 'no'}. Next run: {nxt}. Last job: {last}."


def _describe(info, jobs) -> str:
    watched = jobs.monitor.jobs.get(info.id)
    cost = jobs.monitor.cost_so_far(watched) if watched else None
    parts = [f"Job {info.id}: {info.stage} on {info.flavor} ({info.backend})"]
    if info.message:
        parts.append(info.message)
    if cost is not None:
        parts.append(f"cost so far ${cost:.4f}")
    if watched and watched.last_line:
        parts.append(f"last line: {watched.last_line[:300]}")
    return "; ".join(parts)
