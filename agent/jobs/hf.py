"""Hugging Face Jobs through huggingface_hub (blocking calls run in threads).

Inline code travels inside the command (base64 piped into ``uv run``), because
``run_uv_job`` treats any string that is not a local file or URL as a command and uploads
local files to a bucket. A script URL goes to ``uv run`` as is (uv fetches it remotely).
The HF token is passed only as a job secret - never in env, which the Hub echoes back on
inspect - and is scrubbed from every error message.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import threading
from datetime import datetime
from typing import Any, AsyncIterator

from agent.jobs.base import JobBackend, JobError, JobInfo, JobSpec, ScheduledJobInfo, ScheduledJobs

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
CREDIT_MARKERS = ("credit", "payment required", "billing", "insufficient")
TOKEN_ENV_NAMES = frozenset({"HF_TOKEN", "HUGGINGFACE_HUB_TOKEN", "HUGGING_FACE_HUB_TOKEN"})
INLINE_SCRIPT = "/tmp/mlintern_job.py"


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def _plain(value: Any) -> str:
    return str(getattr(value, "value", value) or "")  # JobHardware is a str enum


class HFJobsBackend(JobBackend, ScheduledJobs):
    name = "hf"
    accepts_script_urls = True

    def __init__(self, token: str, endpoint: str | None = None):
        from huggingface_hub import HfApi

        self.token = token
        self.api = HfApi(endpoint=endpoint, token=token)
        self._whoami: dict[str, Any] | None = None
        self._namespaces: dict[str, str] = {}  # job id -> namespace
        self._scheduled_namespaces: dict[str, str] = {}  # scheduled job id -> namespace

    async def _call(self, fn, *args, **kwargs):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except JobError as exc:
            raise self._scrubbed(exc) from exc
        except Exception as exc:
            raise self._scrubbed(_friendly(exc)) from exc

    def _scrubbed(self, error: JobError) -> JobError:
        text = str(error)
        if self.token and self.token in text:
            return JobError(text.replace(self.token, "***"), kind=error.kind)
        return error

    async def refresh_prices(self, force: bool = False):
        """Refresh the data dir's price table from this endpoint (see ``pricing.refresh_prices``)."""
        from agent.jobs.pricing import refresh_prices

        return await refresh_prices(self.api.endpoint, self.token, force=force)

    async def namespaces(self) -> tuple[str, list[str]]:
        """(user, orgs) from whoami, cached: the Hub rate-limits whoami."""
        if self._whoami is None:
            self._whoami = await self._call(self.api.whoami)
        user = self._whoami.get("name", "")
        orgs = [o.get("name", "") for o in self._whoami.get("orgs", []) if isinstance(o, dict)]
        return user, orgs

    async def _namespace(self, requested: str | None) -> str:
        user, orgs = await self.namespaces()
        if not requested:
            return user
        if requested != user and requested not in orgs:
            raise JobError(
                f"You cannot run jobs under {requested!r}: it is neither your user ({user}) nor one of your "
                f"organisations ({', '.join(orgs) or 'none'}).", kind="refused")
        return requested

    @staticmethod
    def command_for(spec: JobSpec) -> tuple[str, list[str]]:
        """The image and argv that run ``spec`` remotely."""
        if spec.script is not None:
            encoded = base64.b64encode(spec.script.encode("utf-8")).decode("ascii")
            with_deps = " ".join(f"--with {shlex.quote(dep)}" for dep in spec.dependencies)
            args = " ".join(shlex.quote(a) for a in spec.script_args)
            shell = f"echo {encoded} | base64 -d > {INLINE_SCRIPT} && uv run {with_deps} {INLINE_SCRIPT} {args}"
            return spec.image or UV_IMAGE, ["bash", "-c", " ".join(shell.split())]
        if spec.script_url is not None:
            # the argv run_uv_job builds for a URL, assembled here so that a script argument
            # naming a file on this machine is never uploaded to a bucket behind the user's back
            with_deps = [part for dep in spec.dependencies for part in ("--with", dep)]
            return spec.image or UV_IMAGE, ["uv", "run", *with_deps, spec.script_url, *spec.script_args]
        assert spec.command is not None
        return spec.image or "python:3.12", list(spec.command)

    def env_and_secrets(self, spec: JobSpec) -> tuple[dict[str, str], dict[str, str]]:
        """The job's env and secrets: the token only ever as the ``HF_TOKEN`` secret. Env
        entries that name a token are dropped (the secret supplies it) and any other entry
        whose value carries the token moves to the secrets."""
        env: dict[str, str] = {}
        secrets = dict(spec.secrets)
        for name, value in spec.env.items():
            if name.upper() in TOKEN_ENV_NAMES:
                continue
            if self.token and self.token in str(value):
                secrets[name] = value
                continue
            env[name] = value
        secrets["HF_TOKEN"] = self.token
        return env, secrets

    def _info(self, job: Any, namespace: str) -> JobInfo:
        status = getattr(job, "status", None)
        info = JobInfo(
            id=job.id, backend=self.name, stage=str(getattr(status, "stage", "UNKNOWN") or "UNKNOWN"),
            flavor=str(getattr(job, "flavor", "") or ""), namespace=namespace,
            url=getattr(job, "url", None) or f"https://huggingface.co/jobs/{namespace}/{job.id}",
            created_at=_ts(getattr(job, "created_at", None)), started_at=_ts(getattr(job, "started_at", None)),
            finished_at=_ts(getattr(job, "finished_at", None)), message=str(getattr(status, "message", "") or ""),
        )
        if info.stage == "SCHEDULING":
            info.stage = "QUEUED"
        if info.stage == "RUNNING" and info.started_at is None:
            info.started_at = info.created_at
        return info

    async def run(self, spec: JobSpec) -> JobInfo:
        namespace = await self._namespace(spec.namespace)
        image, command = self.command_for(spec)
        env, secrets = self.env_and_secrets(spec)
        job = await self._call(self.api.run_job, image=image, command=command, env=env or None,
                               secrets=secrets, flavor=spec.flavor, timeout=spec.timeout_s, namespace=namespace,
                               labels=dict(spec.labels) or None)
        self._namespaces[job.id] = namespace
        return self._info(job, namespace)

    async def _ns_for(self, job_id: str) -> str:
        return self._namespaces.get(job_id) or (await self.namespaces())[0]

    async def inspect(self, job_id: str) -> JobInfo:
        ns = await self._ns_for(job_id)
        return self._info(await self._call(self.api.inspect_job, job_id=job_id, namespace=ns), ns)

    async def cancel(self, job_id: str) -> JobInfo:
        ns = await self._ns_for(job_id)
        await self._call(self.api.cancel_job, job_id=job_id, namespace=ns)
        return await self.inspect(job_id)

    async def list(self, include_finished: bool = False) -> list[JobInfo]:
        ns = (await self.namespaces())[0]
        jobs = await self._call(self.api.list_jobs, namespace=ns)
        infos = [self._info(j, ns) for j in jobs]
        return [i for i in infos if include_finished or not i.finished]

    async def follow_logs(self, job_id: str) -> AsyncIterator[str]:
        """The client's follow stream, read in a thread and handed over through a queue."""
        ns = await self._ns_for(job_id)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        done = object()
        stop = threading.Event()

        def reader() -> None:
            try:
                for line in self.api.fetch_job_logs(job_id=job_id, namespace=ns, follow=True):
                    if stop.is_set():
                        break
                    loop.call_soon_threadsafe(queue.put_nowait, line)
            except Exception as exc:  # the monitor treats any end as "reconnect or finished"
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, done)

        thread = threading.Thread(target=reader, name=f"hf-logs-{job_id}", daemon=True)
        thread.start()
        try:
            while True:
                item = await queue.get()
                if item is done:
                    return
                if isinstance(item, Exception):
                    return
                yield item
        finally:
            stop.set()

    async def fetch_logs(self, job_id: str) -> list[str]:
        ns = await self._ns_for(job_id)
        return await self._call(lambda: list(self.api.fetch_job_logs(job_id=job_id, namespace=ns, follow=False)))

    # ------------------------------------------------------------------ scheduled jobs

    def _scheduled_info(self, job: Any, namespace: str) -> ScheduledJobInfo:
        spec = getattr(job, "job_spec", None)
        status = getattr(job, "status", None)
        last = getattr(status, "last_job", None)
        if last is not None:
            self._namespaces[last.id] = namespace  # so `inspect`/`logs` of that run find it
        self._scheduled_namespaces[job.id] = namespace
        return ScheduledJobInfo(
            id=job.id, backend=self.name, schedule=str(getattr(job, "schedule", "") or ""),
            suspended=bool(getattr(job, "suspend", False)), namespace=namespace,
            flavor=_plain(getattr(spec, "flavor", None)), command=_summary(getattr(spec, "command", None)),
            timeout_s=getattr(spec, "timeout", None), created_at=_ts(getattr(job, "created_at", None)),
            next_run_at=_ts(getattr(status, "next_job_run_at", None)),
            last_job_id=last.id if last is not None else None,
            last_job_at=_ts(last.at) if last is not None else None,
        )

    async def _scheduled_ns(self, scheduled_job_id: str, requested: str | None) -> str:
        if requested:
            return await self._namespace(requested)
        return self._scheduled_namespaces.get(scheduled_job_id) or (await self.namespaces())[0]

    async def _scheduled_call(self, scheduled_job_id: str, namespace: str, fn) -> Any:
        try:
            return await self._call(fn, scheduled_job_id=scheduled_job_id, namespace=namespace)
        except JobError as exc:
            if exc.kind == "not_found":
                raise JobError(f"No scheduled job {scheduled_job_id!r} under {namespace!r} "
                               "(see `scheduled ps`).", kind="not_found") from exc
            raise

    async def schedule(self, spec: JobSpec, schedule: str, *, suspend: bool = False) -> ScheduledJobInfo:
        namespace = await self._namespace(spec.namespace)
        image, command = self.command_for(spec)
        env, secrets = self.env_and_secrets(spec)
        job = await self._call(
            self.api.create_scheduled_job, image=image, command=command, schedule=schedule, suspend=suspend or None,
            env=env or None, secrets=secrets, flavor=spec.flavor, timeout=spec.timeout_s, namespace=namespace,
            labels=dict(spec.labels) or None)
        info = self._scheduled_info(job, namespace)
        info.timeout_s = info.timeout_s or spec.timeout_s
        return info

    async def list_scheduled(self, namespace: str | None = None) -> list[ScheduledJobInfo]:
        ns = await self._namespace(namespace)
        jobs = await self._call(self.api.list_scheduled_jobs, namespace=ns)
        return [self._scheduled_info(j, ns) for j in jobs]

    async def inspect_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo:
        ns = await self._scheduled_ns(scheduled_job_id, namespace)
        return self._scheduled_info(await self._scheduled_call(scheduled_job_id, ns, self.api.inspect_scheduled_job), ns)

    async def delete_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> None:
        ns = await self._scheduled_ns(scheduled_job_id, namespace)
        await self._scheduled_call(scheduled_job_id, ns, self.api.delete_scheduled_job)
        self._scheduled_namespaces.pop(scheduled_job_id, None)

    async def suspend_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo:
        ns = await self._scheduled_ns(scheduled_job_id, namespace)
        await self._scheduled_call(scheduled_job_id, ns, self.api.suspend_scheduled_job)
        return await self.inspect_scheduled(scheduled_job_id, ns)

    async def resume_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo:
        ns = await self._scheduled_ns(scheduled_job_id, namespace)
        await self._scheduled_call(scheduled_job_id, ns, self.api.resume_scheduled_job)
        return await self.inspect_scheduled(scheduled_job_id, ns)


def _summary(command: Any) -> str:
    """What a job runs, in one readable line (inline scripts are base64: show the uv part)."""
    if not command:
        return ""
    argv = [str(part) for part in command]
    if argv[:2] == ["bash", "-c"] and len(argv) == 3 and f"base64 -d > {INLINE_SCRIPT} && " in argv[2]:
        return "inline script: " + argv[2].split(" && ", 1)[1]
    line = shlex.join(argv)
    return line if len(line) <= 200 else line[:199] + "…"


def _friendly(exc: Exception) -> JobError:
    text = str(exc).strip() or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    low = text.lower()
    # the Hub's own sentence ("Invalid schedule ...") beats the client's "400 Bad Request for url"
    detail = (getattr(exc, "server_message", None) or "").strip() or text.splitlines()[0]
    detail = detail.splitlines()[0][:300] if detail else ""
    if status == 402 or (status in (None, 400, 403) and any(m in low for m in CREDIT_MARKERS)):
        return JobError(
            "Hugging Face Jobs refused the job for billing: the account (or organisation) has no credits or payment "
            "method. Add one at https://huggingface.co/settings/billing, or run under an organisation that has "
            f"credits with namespace=... (the Hub said: {detail[:200]})", kind="billing")
    if status == 401:
        return JobError("The Hugging Face token was rejected (401): check HF_TOKEN or run `hf auth login`.", kind="refused")
    if status == 403:
        return JobError(f"Hugging Face refused the request (403): {detail[:200]}", kind="refused")
    if status == 404 or type(exc).__name__ in ("JobNotFoundError", "RepositoryNotFoundError"):
        return JobError(f"No such job on Hugging Face: {detail[:200]}", kind="not_found")
    if status == 400:
        return JobError(f"Hugging Face Jobs rejected the request (400): {detail}", kind="refused")
    return JobError(f"Hugging Face Jobs error: {type(exc).__name__}: {detail}", kind="unavailable")
