"""``hf_jobs``: launch and manage compute jobs without holding the turn hostage.

``run`` returns once the job is accepted (with its first log lines); the job monitor follows
it in the background and the model gets a note when it ends. Scripts travel as content:
inline code, or a local file path whose text is sent - never a path that only exists here.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.jobs.base import JobError, JobSpec
from agent.jobs.pricing import estimate_cost, hourly_price, is_gpu, parse_timeout
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult

Operation = Literal[
    "run", "ps", "logs", "inspect", "cancel",
    "scheduled run", "scheduled ps", "scheduled inspect", "scheduled delete", "scheduled suspend", "scheduled resume",
]
FIRST_LINES_WAIT_S = 3.0
LOG_TAIL = 60


class HfJobsParams(ToolParams):
    operation: Operation = Field(description="What to do. `run` starts a job and returns once it is accepted; "
                                             "`logs`/`inspect` check on it; `ps` lists jobs; `cancel` stops one.")
    script: str | None = Field(None, description="Python code to run (inline source), or a path to a local .py file "
                                                 "whose content is sent. Exactly one of script / command for run.")
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
        "with a tiny subset before paying for a GPU; GPU runs always need the user's approval."
    )
    Params = HfJobsParams

    def approval_reason(self, params: HfJobsParams, settings: ApprovalSettings) -> str | None:
        op = params.operation
        if op.startswith("scheduled"):
            return "scheduled jobs repeat and their cost is unbounded: always asks"
        if op != "run":
            return None
        timeout = parse_timeout(params.timeout)
        estimate = estimate_cost(params.hardware_flavor, timeout)
        money = f"estimated up to ${estimate:.2f}" if estimate is not None else "cost cannot be estimated"
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
            return ToolResult(
                f"ERROR: `{op}` needs Hugging Face Jobs, and this session runs jobs locally "
                f"({jobs.backend.name} backend). Set HF_TOKEN and start with --jobs-backend hf.", success=False)
        except JobError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)

    async def _run(self, params: HfJobsParams, ctx: ToolContext) -> ToolResult:
        jobs = ctx.jobs
        if (params.script is None) == (params.command is None):
            return ToolResult("ERROR: `run` needs exactly one of `script` (Python code) or `command` (Docker mode). "
                              "NOT executed.", success=False)
        timeout_s = parse_timeout(params.timeout)
        if timeout_s is None:
            return ToolResult(f"ERROR: cannot read timeout {params.timeout!r}; use e.g. '30m' or '2h'. NOT executed.",
                              success=False)
        script = params.script
        if script is not None and "\n" not in script and script.strip().endswith(".py"):
            path = Path(script.strip()).expanduser()
            path = path if path.is_absolute() else ctx.cwd / path
            if not path.is_file():
                return ToolResult(f"ERROR: {script} is not a file here, and a remote job cannot see this machine's "
                                  "files. Pass the code itself as `script`. NOT executed.", success=False)
            script = path.read_text(encoding="utf-8")
        if script is not None and script.strip().startswith(("http://", "https://")) and "\n" not in script.strip():
            return ToolResult("ERROR: script URLs are not supported yet; pass the code itself as `script`. "
                              "NOT executed.", success=False)
        spec = JobSpec(
            script=script, script_args=tuple(params.script_args), command=tuple(params.command) if params.command else None,
            image=params.image, dependencies=tuple(params.dependencies), env=dict(params.env),
            flavor=params.hardware_flavor, timeout_s=timeout_s, namespace=params.namespace,
        )
        info = await jobs.backend.run(spec)
        watched = jobs.monitor.watch(jobs.backend, info, turn=jobs.turn())
        deadline = asyncio.get_running_loop().time() + jobs.first_lines_wait_s
        while watched.lines_seen < 5 and not watched.info.finished and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        price = hourly_price(info.flavor)
        estimate = estimate_cost(info.flavor, timeout_s)
        money = (f"${price:.2f}/h, at most ${estimate:.2f} for the {params.timeout} timeout" if price is not None
                 else "price unknown")
        if jobs.backend.name == "local":
            money = "local CPU, $0"
        lines = [f"Job {info.id} accepted on {info.flavor} ({jobs.backend.name} backend, {money}). Status: {watched.info.stage}.",
                 f"Log: {watched.log_path}"]
        if watched.tail:
            lines.append("First log lines:\n" + "\n".join(watched.tail))
        lines.append("It keeps running in the background: you will get a [JOB UPDATE] note when it ends. "
                     "Use hf_jobs logs / inspect with this job_id to check on it; do not wait in a loop.")
        return ToolResult("\n".join(lines))


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
