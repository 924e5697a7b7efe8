"""The job backend contract: what a job is, and what every backend can do with one.

A backend only talks to its compute (a local process group, the HF Jobs API). Following
logs, recording them, emitting events and telling the model when a job ends is the
monitor's job (``agent/jobs/monitor.py``), the same for every backend.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import AsyncIterator, Literal

JobStage = Literal["QUEUED", "RUNNING", "COMPLETED", "ERROR", "CANCELED", "DELETED", "UNKNOWN"]
FINAL_STAGES: frozenset[str] = frozenset({"COMPLETED", "ERROR", "CANCELED", "DELETED"})


class JobError(Exception):
    """A backend refused or failed an operation; the message is for people (and the model)."""

    def __init__(self, message: str, kind: str = "error"):
        super().__init__(message)
        self.kind = kind  # "billing" | "not_found" | "refused" | "unavailable" | "error"


@dataclass(frozen=True)
class JobSpec:
    """What to run. Exactly one of ``script`` (Python source, run with uv or python),
    ``script_url`` (an http(s) URL uv fetches and runs; only where ``accepts_script_urls``)
    and ``command`` (Docker mode: argv inside ``image``)."""

    script: str | None = None
    script_url: str | None = None
    script_args: tuple[str, ...] = ()
    command: tuple[str, ...] | None = None
    image: str | None = None
    dependencies: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # values never printed or logged
    flavor: str = "cpu-basic"
    timeout_s: int = 1800
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass
class JobInfo:
    id: str
    backend: str  # "local" | "hf"
    stage: str
    flavor: str
    url: str | None = None
    namespace: str | None = None
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    exit_code: int | None = None
    message: str = ""

    @property
    def finished(self) -> bool:
        return self.stage in FINAL_STAGES


class JobBackend(abc.ABC):
    name: str
    #: whether ``JobSpec.script_url`` can be run (uv on a remote machine fetches it)
    accepts_script_urls: bool = False

    @abc.abstractmethod
    async def run(self, spec: JobSpec) -> JobInfo:
        """Submit and return once the job is accepted (never wait for it to finish)."""

    @abc.abstractmethod
    async def inspect(self, job_id: str) -> JobInfo: ...

    @abc.abstractmethod
    async def cancel(self, job_id: str) -> JobInfo: ...

    @abc.abstractmethod
    async def list(self, include_finished: bool = False) -> list[JobInfo]: ...

    @abc.abstractmethod
    def follow_logs(self, job_id: str) -> AsyncIterator[str]:
        """Yield log lines from the start, following while the job runs. May stop early
        (a dropped stream); the monitor reconnects and skips lines it already has."""

    @abc.abstractmethod
    async def fetch_logs(self, job_id: str) -> list[str]:
        """All log lines so far, without following (used to reconcile after a drop)."""


@dataclass
class ScheduledJobInfo:
    """A recurring job: the spec it submits on each tick of ``schedule``."""

    id: str
    backend: str
    schedule: str
    suspended: bool
    namespace: str | None = None
    flavor: str = ""
    command: str = ""  # a one-line summary of what each run executes
    timeout_s: int | None = None
    created_at: float | None = None
    next_run_at: float | None = None
    last_job_id: str | None = None
    last_job_at: float | None = None
    url: str | None = None


class ScheduledJobs(abc.ABC):
    """Optional: backends that can run a job on a schedule (HF Jobs). The tool checks
    ``isinstance(backend, ScheduledJobs)`` and explains the limit to others."""

    @abc.abstractmethod
    async def schedule(self, spec: JobSpec, schedule: str, *, suspend: bool = False) -> ScheduledJobInfo:
        """Create the schedule (validating the namespace first); nothing runs now."""

    @abc.abstractmethod
    async def list_scheduled(self, namespace: str | None = None) -> list[ScheduledJobInfo]: ...

    @abc.abstractmethod
    async def inspect_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo: ...

    @abc.abstractmethod
    async def delete_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> None: ...

    @abc.abstractmethod
    async def suspend_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo: ...

    @abc.abstractmethod
    async def resume_scheduled(self, scheduled_job_id: str, namespace: str | None = None) -> ScheduledJobInfo: ...
