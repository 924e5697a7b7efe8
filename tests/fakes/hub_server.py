"""A Hugging Face Hub emulator on 127.0.0.1 for the Jobs and Spaces APIs.

Tests drive the real ``huggingface_hub`` 2.4 client (``HfApi(endpoint=hub.endpoint,
token="hf_test")``) against this server, so the wire format, error mapping and the
client's own retry and log-follow logic are what gets exercised. Standard library only:
a ThreadingHTTPServer in a daemon thread; all state lives in memory per emulator.

Usage::

    with HubEmulator() as hub:                       # or HubEmulator().start() / .stop()
        hub.script_job(lines=["epoch 1", "epoch 2"], line_delay=0.05, drop_after=1)
        hub.fail_next_run(402, "Insufficient credits")   # the next submission only
        hub.script_space(stages=("BUILDING", "RUNNING"))  # the next created/duplicated Space
        api = HfApi(endpoint=hub.endpoint, token="hf_test")
        ...
        hub.requests / hub.job_spec(job_id) / hub.space_secrets(repo_id) / hub.space_files(repo_id)

Behaviour worth knowing (details in the methods):

* Users: token ``hf_test`` is ``ada`` with org ``ml-team``; add more with ``add_user``.
  Unknown or missing tokens get 401, namespaces that are neither the user nor one of
  their orgs get 403.
* A job's life runs on the wall clock from submission: ``scheduling`` seconds in
  SCHEDULING, then RUNNING while its scripted lines appear ``line_delay`` apart, then
  ``final_stage`` one ``line_delay`` after the last line (``final_stage=None`` runs
  until ``cancel_job`` or ``hub.end_job``).
* ``GET /api/jobs/{ns}/{id}/logs`` is SSE: a ``===== Job started at ... =====`` event
  (the client filters it out) then one ``data: {"data": LINE, "timestamp": ISO}`` event
  per line as it is produced; the stream ends once the job is over and every line was
  sent. The server cannot tell ``follow=True`` from ``follow=False`` (the client sends
  the same request), so ``drop_after`` cuts the job's *first logs connection*, whatever
  the caller meant by it.
* Spaces: each ``get_space_runtime`` poll consumes the next scripted stage (the last one
  sticks); a commit to a Space restarts the sequence, as a push triggers a rebuild.
  Duplicating accepts any source id (it is treated as an outside public Space).

Not emulated: LFS/Xet uploads (so ``run_uv_job`` with a *local file*, which uploads it
to a jobs-artifacts bucket, and large ``upload_file`` payloads fail), job metrics,
pagination, rate limits.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from tests.fakes._loopback import Fail, LoopbackHandler, LoopbackLifecycle, RawResponse, StopAnswering, TrackingHTTPServer
from tests.fakes.hub_docs import ROUTES as _DOCS_ROUTES, DocsRoutes
from tests.fakes.hub_papers import ROUTES as _PAPERS_ROUTES, PapersRoutes
from tests.fakes.hub_repos import ROUTES as _REPO_ROUTES, RepoRoutes
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_TOKEN = "hf_test"

# Hourly USD. Where the behaviour reference (§3.3) names a price it is used; cpu-basic follows
# the client's own docstring (167 micro-USD a minute, about $0.01/h) because that is what the
# live Hub answers; the others are plausible list prices. The wire format is per minute.
HOURLY_PRICES_USD: dict[str, float] = {
    "cpu-basic": 0.01,
    "cpu-upgrade": 0.03,
    "t4-small": 0.60,
    "t4-medium": 0.90,
    "l4x1": 1.00,
    "a10g-small": 1.25,
    "a10g-large": 2.00,
    "a10g-largex2": 4.00,
    "a100-large": 4.00,
    "h100": 8.00,
    "h200": 10.00,
}

# name -> (pretty name, cpu, ram, accelerator model or None, accelerator count, vram)
_HARDWARE_SPECS: dict[str, tuple[str, str, str, str | None, int, str]] = {
    "cpu-basic": ("CPU Basic", "2 vCPU", "16 GB", None, 0, ""),
    "cpu-upgrade": ("CPU Upgrade", "8 vCPU", "32 GB", None, 0, ""),
    "t4-small": ("Nvidia T4 - small", "4 vCPU", "15 GB", "T4", 1, "16 GB"),
    "t4-medium": ("Nvidia T4 - medium", "8 vCPU", "30 GB", "T4", 1, "16 GB"),
    "l4x1": ("1x Nvidia L4", "8 vCPU", "30 GB", "L4", 1, "24 GB"),
    "a10g-small": ("Nvidia A10G - small", "4 vCPU", "15 GB", "A10G", 1, "24 GB"),
    "a10g-large": ("Nvidia A10G - large", "12 vCPU", "46 GB", "A10G", 1, "24 GB"),
    "a10g-largex2": ("2x Nvidia A10G - large", "24 vCPU", "92 GB", "A10G", 2, "48 GB"),
    "a100-large": ("Nvidia A100 - large", "12 vCPU", "142 GB", "A100", 1, "80 GB"),
    "h100": ("Nvidia H100", "23 vCPU", "240 GB", "H100", 1, "80 GB"),
    "h200": ("Nvidia H200", "23 vCPU", "256 GB", "H200", 1, "141 GB"),
}

_TERMINAL_STAGES = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
_URL_PREFIXES = {"model": "", "dataset": "datasets/", "space": "spaces/"}


@dataclass(frozen=True)
class HubUser:
    name: str
    orgs: tuple[str, ...] = ()
    can_pay: bool = True


@dataclass(frozen=True)
class JobScript:
    """How one submitted job behaves; see ``HubEmulator.script_job``."""

    lines: tuple[str, ...] = ("Starting job", "hello from the hub emulator", "done")
    line_delay: float = 0.01
    final_stage: str | None = "COMPLETED"
    message: str | None = None
    scheduling: float = 0.0
    drop_after: int | None = None
    drop_mode: str = "cut"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    token: str | None
    body: Any  # parsed JSON, a list of NDJSON objects, or raw bytes


_Fail = Fail  # the name the handlers here use


def _iso(ts: float) -> str:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _oid(*parts: object) -> str:
    return hashlib.sha1("\x00".join(map(str, parts)).encode()).hexdigest()[:24]


def _hardware_json(name: str, hourly_usd: float) -> dict[str, Any]:
    pretty, cpu, ram, model, count, vram = _HARDWARE_SPECS.get(name, (name, "4 vCPU", "16 GB", None, 0, ""))
    micro = round(hourly_usd * 1_000_000 / 60)
    accelerator = None
    if model:
        accelerator = {"type": "gpu", "model": model, "quantity": str(count), "vram": vram}
        accelerator["manufacturer"] = "Nvidia"
    return {
        "name": name,
        "prettyName": pretty,
        "cpu": cpu,
        "ram": ram,
        "ephemeralStorage": "50 GB",
        "accelerator": accelerator,
        "unitCostMicroUSD": micro,
        "unitCostUSD": micro / 1_000_000,
        "unitLabel": "minute",
    }


def _secret(entry: dict, stamp: str) -> dict[str, Any]:
    return {"value": entry["value"], "description": entry.get("description"), "updatedAt": stamp}


def _redacted(spec: dict) -> dict:
    # The Hub never echoes secret values back; only their names.
    return {**spec, "secrets": {name: None for name in spec.get("secrets") or {}}}


# ---- cron: enough to validate a schedule and tell when it next fires -----------------

_CRON_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def _parse_cron(schedule: str) -> tuple[list[set[int]], bool] | None:
    """Field value sets (minute, hour, day, month, weekday) and whether day and weekday are
    both restricted (then either may match, as in cron); None when the schedule is invalid."""
    fields = _CRON_ALIASES.get(schedule.strip(), schedule).split()
    if len(fields) != 5:
        return None
    sets: list[set[int]] = []
    for text, (low, high) in zip(fields, _CRON_RANGES):
        values: set[int] = set()
        for item in text.split(","):
            match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", item)
            if match is None:
                return None
            start, stop, step = match.groups()
            if start == "*" and stop is not None or step == "0":
                return None
            first, last = (low, high) if start == "*" else (int(start), int(stop or (high if step else start)))
            if not low <= first <= last <= high:
                return None
            values.update(range(first, last + 1, int(step or 1)))
        sets.append(values)
    if 7 in sets[4]:
        sets[4].add(0)
    return sets, fields[2] != "*" and fields[4] != "*"


def _next_run(schedule: str, now: float) -> float | None:
    parsed = _parse_cron(schedule)
    if parsed is None:
        return None
    (minutes, hours, days, months, weekdays), either_day = parsed
    moment = datetime.fromtimestamp(now, timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
    limit = moment + timedelta(days=800)
    while moment < limit:
        day_ok = moment.day in days, (moment.weekday() + 1) % 7 in weekdays
        if moment.month not in months or not (any(day_ok) if either_day else all(day_ok)):
            moment = moment.replace(hour=0, minute=0) + timedelta(days=1)
        elif moment.hour not in hours:
            moment = moment.replace(minute=0) + timedelta(hours=1)
        elif moment.minute not in minutes:
            moment += timedelta(minutes=1)
        else:
            return moment.timestamp()
    return None


# ---- state ------------------------------------------------------------------------------


@dataclass
class _Job:
    id: str
    namespace: str
    spec: dict
    owner: dict
    initiator: dict
    created: float
    script: JobScript
    forced_end: tuple[float, str, str | None] | None = None
    log_connections: int = 0

    @property
    def started(self) -> float:
        return self.created + self.script.scheduling

    def end(self) -> tuple[float, str, str | None] | None:
        """(time, stage, message) of the job's end, if it has or will have one."""
        natural = None
        if self.script.final_stage is not None:
            when = self.started + (len(self.script.lines) + 1) * self.script.line_delay
            natural = (when, self.script.final_stage, self.script.message)
        if self.forced_end is not None and (natural is None or self.forced_end[0] < natural[0]):
            return self.forced_end
        return natural

    def is_over(self, now: float) -> bool:
        end = self.end()
        return end is not None and now >= end[0]

    def stage(self, now: float) -> tuple[str, str | None]:
        end = self.end()
        if end is not None and now >= end[0]:
            return end[1], end[2]
        return ("SCHEDULING", None) if now < self.started else ("RUNNING", None)

    def events(self, now: float) -> list[tuple[float, str, bool]]:
        """(timestamp, text, is_script_line) of every log event produced by ``now``."""
        end = self.end()
        horizon = min(now, end[0]) if end is not None else now
        if horizon < self.started:
            return []
        events = [(self.started, f"===== Job started at {_iso(self.started)} =====", False)]
        for index, line in enumerate(self.script.lines):
            when = self.started + (index + 1) * self.script.line_delay
            if when > horizon:
                break
            events.append((when, line, True))
        return events

    def to_json(self, now: float) -> dict[str, Any]:
        stage, message = self.stage(now)
        end = self.end()
        finished = end[0] if end is not None and now >= end[0] else None
        started = self.started if now >= self.started and (finished is None or finished >= self.started) else None
        until = finished if finished is not None else now
        spec = self.spec
        data: dict[str, Any] = {
            "id": self.id,
            "createdAt": _iso(self.created),
            "startedAt": _iso(started) if started is not None else None,
            "finishedAt": _iso(finished) if finished is not None else None,
            "command": spec.get("command"),
            "arguments": spec.get("arguments", []),
            "environment": spec.get("environment", {}),
            "secrets": _redacted(spec)["secrets"],
            "flavor": spec.get("flavor"),
            "labels": spec.get("labels"),
            "volumes": spec.get("volumes"),
            "status": {"stage": stage, "message": message},
            "owner": self.owner,
            "initiator": self.initiator,
            "durations": {
                "schedulingSecs": int(started - self.created) if started is not None else None,
                "runningSecs": int(until - started) if started is not None else None,
                "totalSecs": int(until - self.created),
            },
            "retry": max(0, int(spec.get("attempts") or 1) - 1),
            "expose": spec.get("expose"),
            "network": spec.get("network"),
        }
        if "spaceId" in spec:
            data["spaceId"] = spec["spaceId"]
        else:
            data["dockerImage"] = spec.get("dockerImage")
        return data


@dataclass
class _ScheduledJob:
    id: str
    namespace: str
    spec: dict
    schedule: str
    suspend: bool
    concurrency: bool
    owner: dict
    created: float
    last_job: tuple[str, float] | None = None

    def to_json(self, now: float) -> dict[str, Any]:
        next_run = None if self.suspend else _next_run(self.schedule, now)
        return {
            "id": self.id,
            "createdAt": _iso(self.created),
            "jobSpec": _redacted(self.spec),
            "schedule": self.schedule,
            "suspend": self.suspend,
            "concurrency": self.concurrency,
            "status": {
                "lastJob": {"id": self.last_job[0], "at": _iso(self.last_job[1])} if self.last_job else None,
                "nextJobRunAt": _iso(next_run) if next_run is not None else None,
            },
            "owner": self.owner,
        }


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    sdk: str | None = None
    hardware: str | None = None
    sleep_time: int | None = None
    duplicated_from: str | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    secrets: dict[str, dict] = field(default_factory=dict)
    variables: dict[str, dict] = field(default_factory=dict)
    stages: tuple[str, ...] = ("BUILDING", "RUNNING")
    stage_message: str | None = None
    polls: int = 0
    commits: list[dict] = field(default_factory=list)

    def url(self, endpoint: str) -> str:
        return f"{endpoint}/{_URL_PREFIXES[self.repo_type]}{self.repo_id}"

    def runtime_json(self) -> dict[str, Any]:
        stage = self.stages[min(self.polls, len(self.stages) - 1)]
        self.polls += 1
        namespace, name = self.repo_id.split("/")
        hardware = self.hardware or "cpu-basic"
        return {
            "stage": stage,
            "hardware": {"current": hardware if stage.startswith("RUNNING") else None, "requested": hardware},
            "gcTimeout": self.sleep_time,
            "storage": None,
            "devMode": False,
            "replicas": {"current": 1, "requested": 1},
            "domains": [{"domain": f"{namespace}-{name}.hf.space".lower(), "stage": "READY"}],
            "errorMessage": self.stage_message if "ERROR" in stage else None,
        }


@dataclass(frozen=True)
class _Call:
    method: str
    path: str
    query: dict[str, list[str]]
    token: str | None
    body: Any
    params: dict[str, str]


@dataclass(frozen=True)
class _LogStream:
    job: _Job
    connection: int
    tail: int | None


_NS = r"(?P<ns>[^/]+)"
_REPO = r"(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", r"/api/whoami-v2", "_whoami"),
        ("GET", r"/api/agent-harnesses", "_agent_harnesses"),
        ("GET", r"/api/jobs/hardware", "_hardware_list"),
        ("POST", rf"/api/jobs/{_NS}", "_run_job"),
        ("GET", rf"/api/jobs/{_NS}", "_list_jobs"),
        ("GET", rf"/api/jobs/{_NS}/(?P<id>[^/]+)", "_inspect_job"),
        ("POST", rf"/api/jobs/{_NS}/(?P<id>[^/]+)/cancel", "_cancel_job"),
        ("POST", rf"/api/jobs/{_NS}/(?P<id>[^/]+)/duplicate", "_rerun_job"),
        ("PUT", rf"/api/jobs/{_NS}/(?P<id>[^/]+)/labels", "_job_labels"),
        ("GET", rf"/api/jobs/{_NS}/(?P<id>[^/]+)/logs", "_job_logs"),
        ("POST", rf"/api/scheduled-jobs/{_NS}", "_create_scheduled"),
        ("GET", rf"/api/scheduled-jobs/{_NS}", "_list_scheduled"),
        ("GET", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)", "_inspect_scheduled"),
        ("DELETE", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)", "_delete_scheduled"),
        ("POST", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)/(?P<action>suspend|resume)", "_suspend_scheduled"),
        ("POST", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)/run", "_trigger_scheduled"),
        ("POST", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)/schedule", "_reschedule"),
        ("PUT", rf"/api/scheduled-jobs/{_NS}/(?P<id>[^/]+)/labels", "_scheduled_labels"),
        ("POST", r"/api/repos/create", "_create_repo"),
        ("DELETE", r"/api/repos/delete", "_delete_repo"),
        ("POST", rf"/api/{_REPO}/duplicate", "_duplicate_repo"),
        ("POST", rf"/api/{_REPO}/preupload/(?P<rev>[^/]+)", "_preupload"),
        ("POST", rf"/api/{_REPO}/commit/(?P<rev>[^/]+)", "_commit"),
        ("GET", r"/api/spaces/(?P<repo>[^/]+/[^/]+)/secrets", "_list_secrets"),
        ("POST", r"/api/spaces/(?P<repo>[^/]+/[^/]+)/secrets", "_add_secret"),
        ("DELETE", r"/api/spaces/(?P<repo>[^/]+/[^/]+)/secrets", "_delete_secret"),
        ("GET", r"/api/spaces/(?P<repo>[^/]+/[^/]+)/runtime", "_space_runtime"),
        ("POST", r"/api/validate-yaml", "_validate_yaml"),
        # the knowledge and Hub-write routes live beside this file, one module per family
        *_PAPERS_ROUTES,
        *_DOCS_ROUTES,
        *_REPO_ROUTES,
    ]
]


class HubEmulator(PapersRoutes, DocsRoutes, RepoRoutes, LoopbackLifecycle):
    """Serves the Hub's Jobs and Spaces routes on a random loopback port."""

    # The live Hub's SSE keep-alive period. It is longer than the client's 5 s read timeout
    # for follow=False, which is how a no-follow fetch of a silent running job returns.
    keepalive_seconds = 30.0

    def __init__(self, users: dict[str, HubUser] | None = None, hardware: dict[str, float] | None = None) -> None:
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._users = dict(users) if users is not None else {DEFAULT_TOKEN: HubUser("ada", ("ml-team",))}
        self._prices = dict(hardware) if hardware is not None else dict(HOURLY_PRICES_USD)
        self._requests: list[RecordedRequest] = []
        self._job_scripts: deque[JobScript] = deque()
        self._run_failures: deque[tuple[int, str]] = deque()
        self._hardware_failures: deque[tuple[int, str]] = deque()
        self._space_scripts: deque[tuple[tuple[str, ...], str | None]] = deque()
        self._jobs: dict[str, _Job] = {}
        self._scheduled: dict[str, _ScheduledJob] = {}
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._pending_space_scripts: dict[str, tuple[tuple[str, ...], str | None]] = {}
        self._ids = itertools.count(1)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._init_papers()
        self._init_docs()
        self._init_repo_routes()

    # ---- lifecycle ----

    _thread_name = "hub-emulator"

    def _new_httpd(self) -> _HTTPServer:
        return _HTTPServer(self)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- scripting ----

    def add_user(self, token: str, name: str, orgs: tuple[str, ...] = (), can_pay: bool = True) -> None:
        with self._lock:
            self._users[token] = HubUser(name, tuple(orgs), can_pay)

    def script_job(
        self,
        lines: list[str] | tuple[str, ...] = JobScript.lines,
        line_delay: float = 0.01,
        final_stage: str | None = "COMPLETED",
        drop_after: int | None = None,
        *,
        message: str | None = None,
        scheduling: float = 0.0,
        drop_mode: str = "cut",
    ) -> None:
        """Queue the behaviour of the next submitted job (run, rerun or scheduled trigger).

        ``lines`` appear ``line_delay`` seconds apart once the job leaves SCHEDULING (after
        ``scheduling`` seconds); one ``line_delay`` after the last line the job reaches
        ``final_stage`` with status ``message`` (``None``: it runs until cancelled or
        ``end_job``). ``drop_after=N`` cuts the job's first logs connection right after its
        N-th line: ``drop_mode="cut"`` closes the socket mid-body (a network failure; the
        client sees a protocol error), ``"end"`` ends the body cleanly (the stream ending
        before the job does). Unscripted jobs print three lines and complete.
        """
        if final_stage is not None and final_stage not in _TERMINAL_STAGES:
            raise ValueError(f"final_stage must be one of {_TERMINAL_STAGES} or None, not {final_stage!r}")
        if drop_mode not in ("cut", "end"):
            raise ValueError(f"drop_mode must be 'cut' or 'end', not {drop_mode!r}")
        script = JobScript(tuple(lines), line_delay, final_stage, message, scheduling, drop_after, drop_mode)
        with self._lock:
            self._job_scripts.append(script)

    def fail_next_run(self, status: int = 402, message: str = "Insufficient credits to run this job") -> None:
        """Answer the next job submission (run_job, run_uv_job, rerun_job, trigger_scheduled_job,
        create_scheduled_job) with ``status`` and the Hub's error body ``{"error": message}``;
        queue several by calling again."""
        with self._lock:
            self._run_failures.append((status, message))

    def fail_hardware_list(self, times: int = 1, status: int = 500, message: str = "Internal Error") -> None:
        """Answer the next ``times`` ``GET /api/jobs/hardware`` requests with ``status``."""
        with self._lock:
            self._hardware_failures.extend([(status, message)] * times)

    def script_space(
        self,
        stages: list[str] | tuple[str, ...] = ("BUILDING", "RUNNING"),
        message: str | None = None,
        repo_id: str | None = None,
    ) -> None:
        """Stages the Space runtime reports, one per ``get_space_runtime`` poll (the last sticks).

        With ``repo_id`` it applies to that Space (now, or when it gets created); without, to
        the next Space created or duplicated. ``message`` is the ``errorMessage`` of error stages.
        """
        script = (tuple(stages), message)
        with self._lock:
            repo = self._repos.get(("space", repo_id)) if repo_id else None
            if repo is not None:
                repo.stages, repo.stage_message, repo.polls = script[0], script[1], 0
            elif repo_id:
                self._pending_space_scripts[repo_id] = script
            else:
                self._space_scripts.append(script)

    def end_job(self, job_id: str, stage: str = "COMPLETED", message: str | None = None) -> None:
        """End a running job now (for jobs scripted with ``final_stage=None``)."""
        with self._lock:
            job = self._jobs[job_id]
            if not job.is_over(time.time()):
                job.forced_end = (time.time(), stage, message)

    # ---- inspection ----

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def wait_for_request(
        self, method: str, path_pattern: str, count: int = 1, timeout: float = 5.0
    ) -> RecordedRequest:
        """Block until ``count`` requests matched (``re.search`` on the path); return the last one."""
        pattern = re.compile(path_pattern)

        def matching() -> list[RecordedRequest]:
            return [r for r in self._requests if r.method == method and pattern.search(r.path)]

        with self._arrived:
            if not self._arrived.wait_for(lambda: len(matching()) >= count, timeout):
                got = len(matching())
                raise TimeoutError(f"expected {count} x {method} {path_pattern} within {timeout}s, got {got}")
            return matching()[count - 1]

    def job(self, job_id: str) -> dict[str, Any]:
        """The job as ``inspect_job`` would see it now (server JSON)."""
        with self._lock:
            return self._jobs[job_id].to_json(time.time())

    def job_spec(self, job_id: str) -> dict[str, Any]:
        """The job spec exactly as the client posted it, secrets included."""
        with self._lock:
            return json.loads(json.dumps(self._jobs[job_id].spec))

    def job_ids(self, namespace: str | None = None) -> list[str]:
        with self._lock:
            return [j.id for j in self._jobs.values() if namespace is None or j.namespace == namespace]

    def log_connections(self, job_id: str) -> int:
        with self._lock:
            return self._jobs[job_id].log_connections

    def scheduled_job(self, scheduled_job_id: str) -> dict[str, Any]:
        with self._lock:
            return self._scheduled[scheduled_job_id].to_json(time.time())

    def repo_exists(self, repo_id: str, repo_type: str = "space") -> bool:
        with self._lock:
            return (repo_type, repo_id) in self._repos

    def space_secrets(self, repo_id: str) -> dict[str, str]:
        with self._lock:
            return {key: entry["value"] for key, entry in self._repo("space", repo_id).secrets.items()}

    def space_variables(self, repo_id: str) -> dict[str, str]:
        with self._lock:
            return {key: entry["value"] for key, entry in self._repo("space", repo_id).variables.items()}

    def repo_files(self, repo_id: str, repo_type: str = "space") -> dict[str, bytes]:
        with self._lock:
            return dict(self._repo(repo_type, repo_id).files)

    def space_files(self, repo_id: str) -> dict[str, bytes]:
        return self.repo_files(repo_id, "space")

    def commits(self, repo_id: str, repo_type: str = "space") -> list[dict]:
        """``{"oid", "summary", "operations"}`` per commit, oldest first."""
        with self._lock:
            return list(self._repo(repo_type, repo_id).commits)

    def space_info(self, repo_id: str) -> dict[str, Any]:
        """Sdk, hardware, sleep time and source of a Space, as the duplicate/create call set them."""
        with self._lock:
            repo = self._repo("space", repo_id)
            return {
                "sdk": repo.sdk,
                "hardware": repo.hardware,
                "sleep_time": repo.sleep_time,
                "duplicated_from": repo.duplicated_from,
            }

    # ---- request handling (handler threads) ----

    def _handle(
        self, method: str, raw_path: str, headers: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str]] | _LogStream | RawResponse:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        auth = headers.get("Authorization") or ""
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else None
        body: Any = raw
        if raw:
            content_type = headers.get("Content-Type") or ""
            try:
                if "ndjson" in content_type:
                    body = [json.loads(line) for line in raw.splitlines() if line.strip()]
                elif "json" in content_type:
                    body = json.loads(raw)
            except ValueError as exc:
                return 400, {"error": f"request body is not valid JSON: {exc}"}, {}
        with self._arrived:
            self._requests.append(RecordedRequest(method, parts.path, query, token, body))
            self._arrived.notify_all()
        for route_method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(parts.path)
            if match and route_method == method:
                call = _Call(method, parts.path, query, token, body, match.groupdict())
                try:
                    with self._lock:
                        result = getattr(self, handler)(call)
                except _Fail as failure:
                    return failure.status, {"error": failure.message}, failure.headers
                except Exception as exc:  # an emulator bug: fail loudly, never hang the client
                    crash = f"hub emulator crashed on {method} {parts.path}: {type(exc).__name__}: {exc}"
                    return 500, {"error": crash}, {}
                if isinstance(result, (_LogStream, RawResponse)):
                    return result
                status, payload = result if isinstance(result, tuple) else (200, result)
                return status, payload, {}
        return 404, {"error": f"hub emulator has no route {method} {parts.path}"}, {}

    # Route handlers run under self._lock and return a payload, (status, payload) or a _LogStream.

    def _user(self, call: _Call) -> HubUser:
        user = self._users.get(call.token or "")
        if user is None:
            raise _Fail(401, "Invalid credentials in Authorization header")
        return user

    def _member(self, call: _Call, namespace: str) -> HubUser:
        user = self._user(call)
        if namespace != user.name and namespace not in user.orgs:
            raise _Fail(403, f"You are not a member of namespace '{namespace}'")
        return user

    def _owner(self, namespace: str, user: HubUser) -> dict[str, str]:
        kind = "user" if namespace == user.name else "org"
        return {"id": _oid(kind, namespace), "name": namespace, "type": kind}

    def _repo(self, repo_type: str, repo_id: str) -> _Repo:
        repo = self._repos.get((repo_type, repo_id))
        if repo is None:
            raise _Fail(404, f"Repository {repo_id} not found", {"X-Error-Code": "RepoNotFound"})
        return repo

    def _whoami(self, call: _Call) -> dict:
        user = self._user(call)
        orgs = [
            {"type": "org", "id": _oid("org", org), "name": org, "fullname": org, "canPay": user.can_pay}
            for org in user.orgs
        ]
        return {
            "type": "user",
            "id": _oid("user", user.name),
            "name": user.name,
            "fullname": user.name.title(),
            "email": f"{user.name}@example.com",
            "emailVerified": True,
            "canPay": user.can_pay,
            "isPro": False,
            "orgs": orgs,
            "auth": {"type": "access_token", "accessToken": {"displayName": "emulator", "role": "write"}},
        }

    def _agent_harnesses(self, call: _Call) -> dict:
        return {"standardEnvVars": [], "harnesses": {}}

    def _hardware_list(self, call: _Call) -> list:
        if self._hardware_failures:
            raise _Fail(*self._hardware_failures.popleft())
        return [_hardware_json(name, price) for name, price in self._prices.items()]

    # ---- jobs ----

    def _check_spec(self, spec: Any) -> dict:
        if not isinstance(spec, dict) or not isinstance(spec.get("command"), list):
            raise _Fail(400, "job spec needs a 'command' list")
        if not (spec.get("dockerImage") or spec.get("spaceId")):
            raise _Fail(400, "job spec needs a 'dockerImage' or a 'spaceId'")
        if spec.get("flavor") not in self._prices:
            raise _Fail(400, f"Invalid flavor '{spec.get('flavor')}'. Available: {', '.join(self._prices)}")
        return spec

    def _submit(self, namespace: str, spec: dict, owner: dict, initiator: dict) -> _Job:
        if self._run_failures:
            raise _Fail(*self._run_failures.popleft())
        now = time.time()
        script = self._job_scripts.popleft() if self._job_scripts else JobScript()
        job_id = f"{int(now):08x}{next(self._ids):016x}"
        job = _Job(job_id, namespace, json.loads(json.dumps(spec)), owner, initiator, now, script)
        self._jobs[job_id] = job
        return job

    def _job(self, call: _Call) -> _Job:
        self._member(call, call.params["ns"])
        job = self._jobs.get(call.params["id"])
        if job is None or job.namespace != call.params["ns"]:
            raise _Fail(404, f"Job {call.params['id']} not found")
        return job

    def _run_job(self, call: _Call) -> dict:
        namespace = call.params["ns"]
        user = self._member(call, namespace)
        spec = self._check_spec(call.body)
        initiator = {"type": "user", "id": _oid("user", user.name), "name": user.name}
        return self._submit(namespace, spec, self._owner(namespace, user), initiator).to_json(time.time())

    def _list_jobs(self, call: _Call) -> list:
        self._member(call, call.params["ns"])
        now = time.time()
        stages = set(call.query.get("stage", []))
        labels = [item.split("=", 1) for item in call.query.get("label", [])]
        found = []
        for job in self._jobs.values():
            job_labels = job.spec.get("labels") or {}
            if job.namespace != call.params["ns"] or (stages and job.stage(now)[0] not in stages):
                continue
            if all(len(pair) == 2 and job_labels.get(pair[0]) == pair[1] for pair in labels):
                found.append(job.to_json(now))
        return found

    def _inspect_job(self, call: _Call) -> dict:
        return self._job(call).to_json(time.time())

    def _cancel_job(self, call: _Call) -> dict:
        job = self._job(call)
        now = time.time()
        if not job.is_over(now):
            job.forced_end = (now, "CANCELED", None)
        return job.to_json(now)

    def _rerun_job(self, call: _Call) -> dict:
        old = self._job(call)
        initiator = {"type": "duplicated-job", "id": old.id}
        return self._submit(old.namespace, old.spec, old.owner, initiator).to_json(time.time())

    def _job_labels(self, call: _Call) -> dict:
        job = self._job(call)
        job.spec["labels"] = dict((call.body or {}).get("labels") or {})
        return job.to_json(time.time())

    def _job_logs(self, call: _Call) -> _LogStream:
        job = self._job(call)
        job.log_connections += 1
        tail = call.query.get("tail", [None])[0]
        return _LogStream(job, job.log_connections, int(tail) if tail not in (None, "") else None)

    # ---- scheduled jobs ----

    def _scheduled_job(self, call: _Call) -> _ScheduledJob:
        self._member(call, call.params["ns"])
        scheduled = self._scheduled.get(call.params["id"])
        if scheduled is None or scheduled.namespace != call.params["ns"]:
            raise _Fail(404, f"Scheduled job {call.params['id']} not found")
        return scheduled

    def _valid_schedule(self, schedule: Any) -> str:
        if not isinstance(schedule, str) or _parse_cron(schedule) is None:
            expected = "a 5-field cron expression or @hourly/@daily/@weekly/@monthly/@yearly"
            raise _Fail(400, f"Invalid schedule {schedule!r}: expected {expected}")
        return schedule

    def _create_scheduled(self, call: _Call) -> dict:
        namespace = call.params["ns"]
        user = self._member(call, namespace)
        body = call.body if isinstance(call.body, dict) else {}
        spec = self._check_spec(body.get("jobSpec"))
        if self._run_failures:  # scripted billing refusals apply to creating a schedule too
            raise _Fail(*self._run_failures.popleft())
        now = time.time()
        scheduled = _ScheduledJob(
            f"{int(now):08x}{next(self._ids):016x}",
            namespace,
            json.loads(json.dumps(spec)),
            self._valid_schedule(body.get("schedule")),
            bool(body.get("suspend", False)),
            bool(body.get("concurrency", False)),
            self._owner(namespace, user),
            now,
        )
        self._scheduled[scheduled.id] = scheduled
        return scheduled.to_json(now)

    def _list_scheduled(self, call: _Call) -> list:
        self._member(call, call.params["ns"])
        wanted = [item.split("=", 1) for item in call.query.get("label", [])]
        found = []
        for scheduled in self._scheduled.values():
            labels = scheduled.spec.get("labels") or {}
            if scheduled.namespace == call.params["ns"] and all(labels.get(k) == v for k, v in wanted):
                found.append(scheduled.to_json(time.time()))
        return found

    def _inspect_scheduled(self, call: _Call) -> dict:
        return self._scheduled_job(call).to_json(time.time())

    def _delete_scheduled(self, call: _Call) -> dict:
        del self._scheduled[self._scheduled_job(call).id]
        return {}

    def _suspend_scheduled(self, call: _Call) -> dict:
        scheduled = self._scheduled_job(call)
        scheduled.suspend = call.params["action"] == "suspend"
        return scheduled.to_json(time.time())

    def _trigger_scheduled(self, call: _Call) -> dict:
        scheduled = self._scheduled_job(call)
        initiator = {"type": "scheduled-job", "id": scheduled.id}
        job = self._submit(scheduled.namespace, scheduled.spec, scheduled.owner, initiator)
        scheduled.last_job = (job.id, job.created)
        return job.to_json(time.time())

    def _reschedule(self, call: _Call) -> dict:
        scheduled = self._scheduled_job(call)
        scheduled.schedule = self._valid_schedule((call.body or {}).get("schedule"))
        return scheduled.to_json(time.time())

    def _scheduled_labels(self, call: _Call) -> dict:
        scheduled = self._scheduled_job(call)
        scheduled.spec["labels"] = dict((call.body or {}).get("labels") or {})
        return scheduled.to_json(time.time())

    # ---- repos and Spaces ----

    def _new_repo(self, call: _Call, repo_type: str, repo_id: str, settings: dict) -> _Repo | tuple[int, dict]:
        self._member(call, repo_id.split("/")[0])
        existing = self._repos.get((repo_type, repo_id))
        if existing is not None:
            return 409, {"error": f"You already created this {repo_type} repo", "url": existing.url(self.endpoint)}
        repo = _Repo(repo_type, repo_id, sdk=settings.get("sdk"), hardware=settings.get("hardware"))
        repo.sleep_time = settings.get("sleepTimeSeconds")
        stamp = _iso(time.time())
        for entry in settings.get("secrets") or []:
            repo.secrets[entry["key"]] = _secret(entry, stamp)
        for entry in settings.get("variables") or []:
            repo.variables[entry["key"]] = {"value": entry["value"], "description": entry.get("description")}
        if repo_type == "space":
            script = self._pending_space_scripts.pop(repo_id, None)
            if script is None and self._space_scripts:
                script = self._space_scripts.popleft()
            if script is not None:
                repo.stages, repo.stage_message = script
        self._repos[(repo_type, repo_id)] = repo
        self._init_repo_git(repo, settings)  # visibility, branches, tags, PRs: tests/fakes/hub_repos.py
        return repo

    def _create_repo(self, call: _Call) -> Any:
        body = call.body if isinstance(call.body, dict) else {}
        user = self._user(call)
        repo_id = f"{body.get('organization') or user.name}/{body.get('name')}"
        repo = self._new_repo(call, body.get("type") or "model", repo_id, body)
        if isinstance(repo, tuple):
            return repo
        return {"url": repo.url(self.endpoint), "name": repo_id, "id": _oid("repo", repo_id)}

    def _duplicate_repo(self, call: _Call) -> Any:
        body = call.body if isinstance(call.body, dict) else {}
        repo_type = call.params["type"][:-1]
        target = body.get("repository")
        if not isinstance(target, str) or target.count("/") != 1:
            raise _Fail(400, "'repository' must be 'namespace/name'")
        source = self._repos.get((repo_type, call.params["repo"]))
        repo = self._new_repo(call, repo_type, target, body)
        if isinstance(repo, tuple):
            return repo
        repo.duplicated_from = call.params["repo"]
        if source is not None:
            repo.files = dict(source.files)
            repo.sdk = repo.sdk or source.sdk
        return {"url": repo.url(self.endpoint), "filesCopyPending": False}

    def _delete_repo(self, call: _Call) -> dict:
        body = call.body if isinstance(call.body, dict) else {}
        user = self._user(call)
        repo_id = f"{body.get('organization') or user.name}/{body.get('name')}"
        repo = self._repo(body.get("type") or "model", repo_id)
        self._member(call, repo_id.split("/")[0])
        del self._repos[(repo.repo_type, repo_id)]
        return {}

    def _writable_repo(self, call: _Call) -> _Repo:
        repo = self._repo(call.params["type"][:-1], call.params["repo"])
        self._member(call, repo.repo_id.split("/")[0])
        return repo

    def _preupload(self, call: _Call) -> dict:
        self._writable_repo(call)
        files = (call.body or {}).get("files") or []
        # Everything is "regular" (inline base64 in the commit): LFS/Xet are not emulated.
        modes = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False, "oid": None} for f in files]
        return {"files": modes}

    def _commit(self, call: _Call) -> dict:
        repo = self._writable_repo(call)
        # main, another branch, a PR ref, or a new PR for create_pr=1 (tests/fakes/hub_repos.py)
        target = self._commit_target(repo, call)
        items = call.body if isinstance(call.body, list) else []
        header = next((item["value"] for item in items if item.get("key") == "header"), {})
        files = dict(target.files)
        for item in items:
            key, value = item.get("key"), item.get("value") or {}
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                files = {path: data for path, data in files.items() if not path.startswith(prefix)}
            elif key != "header":
                raise _Fail(400, f"commit operation {key!r} is not emulated (LFS/Xet uploads are not supported)")
        oid = hashlib.sha1(f"{repo.repo_id}:{len(repo.commits)}:{time.time()}".encode()).hexdigest()
        target.files, target.head = files, oid
        operations = [item for item in items if item.get("key") != "header"]
        repo.commits.append({"oid": oid, "summary": header.get("summary"), "operations": operations})
        if repo.repo_type == "space":
            repo.polls = 0  # a push rebuilds the Space
        return {"commitUrl": f"{repo.url(self.endpoint)}/commit/{oid}", "commitOid": oid, "pullRequestUrl": target.pr_url}

    def _list_secrets(self, call: _Call) -> dict:
        repo = self._writable_repo_by_id(call)
        return {k: {"description": v["description"], "updatedAt": v["updatedAt"]} for k, v in repo.secrets.items()}

    def _add_secret(self, call: _Call) -> dict:
        repo = self._writable_repo_by_id(call)
        body = call.body if isinstance(call.body, dict) else {}
        if not body.get("key") or not isinstance(body.get("value"), str):
            raise _Fail(400, "a secret needs a 'key' and a string 'value'")
        repo.secrets[body["key"]] = _secret(body, _iso(time.time()))
        return {}

    def _delete_secret(self, call: _Call) -> dict:
        self._writable_repo_by_id(call).secrets.pop((call.body or {}).get("key"), None)
        return {}

    def _space_runtime(self, call: _Call) -> dict:
        self._user(call)
        return self._repo("space", call.params["repo"]).runtime_json()

    def _validate_yaml(self, call: _Call) -> Any:
        """README front matter check that upload_file runs before pushing a README.md; a Space
        card must name its sdk."""
        self._user(call)
        body = call.body if isinstance(call.body, dict) else {}
        content = str(body.get("content") or "")
        if body.get("repoType") == "space" and not re.search(r"\A---\n(?:.*\n)*?sdk: *\S+\n(?:.*\n)*?---", content):
            return 400, {"errors": [{"message": "a Space README needs front matter with an 'sdk'"}], "warnings": []}
        return {"errors": [], "warnings": []}

    def _writable_repo_by_id(self, call: _Call) -> _Repo:
        repo = self._repo("space", call.params["repo"])
        self._member(call, repo.repo_id.split("/")[0])
        return repo


class _Handler(LoopbackHandler):
    server: _HTTPServer

    def do_GET(self) -> None:  # noqa: N802
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch("DELETE")

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            result = self.server.owner._handle(method, self.path, self.headers, raw)
            if isinstance(result, _LogStream):
                self._stream_logs(result)
            elif isinstance(result, RawResponse):
                self._send_raw(result)
            else:
                self._send_json(*result)
        except (BrokenPipeError, ConnectionResetError, StopAnswering):
            self.close_connection = True

    def _stream_logs(self, stream: _LogStream) -> None:
        owner = self.server.owner
        job = stream.job
        cut_after = job.script.drop_after if stream.connection == 1 else None
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent: int | None = None
        lines_sent = 0
        last_write = time.monotonic()
        while True:
            now = time.time()
            with owner._lock:
                events, over = job.events(now), job.is_over(now)
            if sent is None:
                sent = max(0, len(events) - stream.tail) if stream.tail is not None else 0
            for stamp, text, is_line in events[sent:]:
                event = json.dumps({"data": text, "timestamp": _iso(stamp)})
                self._write_chunk(f"data: {event}\n\n".encode())
                sent += 1
                last_write = time.monotonic()
                lines_sent += is_line
                if cut_after is not None and lines_sent >= cut_after:
                    if job.script.drop_mode == "end":
                        self._write_chunk(b"")
                    else:
                        self._drop_connection()
                    return
            if over:  # `events` was taken at the same instant, so nothing is left to send
                break
            if owner._stopping.wait(0.02):
                raise StopAnswering
            if time.monotonic() - last_write >= owner.keepalive_seconds:
                self._write_chunk(b": keep-alive\n\n")
                last_write = time.monotonic()
        self._write_chunk(b"")


class _HTTPServer(TrackingHTTPServer):
    def __init__(self, owner: Any) -> None:
        super().__init__(owner, _Handler)
