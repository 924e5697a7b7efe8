"""What the tools see of jobs: the session's backend, its monitor, and the current turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from agent.jobs.base import JobBackend
from agent.jobs.monitor import JobMonitor


@dataclass
class JobService:
    backend: JobBackend
    monitor: JobMonitor
    turn: Callable[[], int]
    #: how long `run` waits for the first log lines before returning
    first_lines_wait_s: float = 3.0
