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
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


class _Fail(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


class _StopAnswering(Exception):
    """The emulator is stopping mid-answer; end this response without a word."""


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
        accelerator = {"type": "gpu", "model": model, "quantity": str(count), "vram": vram, "manufacturer": "Nvidia"}
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
        ("GET", r"/api/jobs/hardware", "_hardware"),
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
    ]
]
