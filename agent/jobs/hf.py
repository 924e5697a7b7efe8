"""Hugging Face Jobs through huggingface_hub (blocking calls run in threads).

Inline code travels inside the command (base64 piped into ``uv run``), because
``run_uv_job`` treats any string that is not a local file or URL as a command and uploads
local files to a bucket. The HF token is passed only as a job secret, never printed.
"""

from __future__ import annotations

import asyncio
import base64
import shlex
import threading
from datetime import datetime
from typing import Any, AsyncIterator

from agent.jobs.base import JobBackend, JobError, JobInfo, JobSpec

UV_IMAGE = "ghcr.io/astral-sh/uv:python3.12-bookworm"
CREDIT_MARKERS = ("credit", "payment required", "billing", "insufficient")


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


class HFJobsBackend(JobBackend):
    name = "hf"

    def __init__(self, token: str, endpoint: str | None = None):
        from huggingface_hub import HfApi

        self.token = token
        self.api = HfApi(endpoint=endpoint, token=token)
        self._whoami: dict[str, Any] | None = None
        self._namespaces: dict[str, str] = {}  # job id -> namespace

    async def _call(self, fn, *args, **kwargs):
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except JobError:
            raise
        except Exception as exc:
            raise _friendly(exc) from exc

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
            shell = f"echo {encoded} | base64 -d > /tmp/mlintern_job.py && uv run {with_deps} /tmp/mlintern_job.py {args}"
            return spec.image or UV_IMAGE, ["bash", "-c", " ".join(shell.split())]
        assert spec.command is not None
        return spec.image or "python:3.12", list(spec.command)

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
        secrets = {**spec.secrets, "HF_TOKEN": self.token}
        job = await self._call(self.api.run_job, image=image, command=command, env=dict(spec.env) or None,
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


def _friendly(exc: Exception) -> JobError:
    text = str(exc).strip() or type(exc).__name__
    status = getattr(getattr(exc, "response", None), "status_code", None)
    low = text.lower()
    if status == 402 or (status in (None, 400, 403) and any(m in low for m in CREDIT_MARKERS)):
        return JobError(
            "Hugging Face Jobs refused the job for billing: the account (or organisation) has no credits or payment "
            "method. Add one at https://huggingface.co/settings/billing, or run under an organisation that has "
            f"credits with namespace=... (the Hub said: {text.splitlines()[0][:200]})", kind="billing")
    if status == 401:
        return JobError("The Hugging Face token was rejected (401): check HF_TOKEN or run `hf auth login`.", kind="refused")
    if status == 403:
        return JobError(f"Hugging Face refused the request (403): {text.splitlines()[0][:200]}", kind="refused")
    if status == 404 or type(exc).__name__ in ("JobNotFoundError", "RepositoryNotFoundError"):
        return JobError(f"No such job on Hugging Face: {text.splitlines()[0][:200]}", kind="not_found")
    return JobError(f"Hugging Face Jobs error: {type(exc).__name__}: {text.splitlines()[0][:300] if text else ''}",
                    kind="unavailable")
