"""The local job backend: the same interface as HF Jobs, running on this machine's CPU.

What the demo model and offline users get: real processes, real logs, at $0. A job is a
process group of its own (so cancel kills everything it started), its output goes to a
log file as it is produced, and it outlives the turn that launched it.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import shutil
import signal
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from agent.jobs.base import JobBackend, JobError, JobInfo, JobSpec
from agent.secrets import agent_environment

CPU_FLAVORS = frozenset({"cpu-basic", "cpu-upgrade"})
KILL_GRACE_S = 3.0
#: after a job ended, how long its last output may take to be read from the pipe
READ_OUT_S = 2.0

#: process groups of running local jobs; killed if the interpreter exits without a clean
#: shutdown (a crash, an unhandled signal) so no job keeps running unattended
_LIVE_JOB_GROUPS: set[int] = set()


def _kill_live_job_groups() -> None:
    for pgid in list(_LIVE_JOB_GROUPS):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    _LIVE_JOB_GROUPS.clear()


atexit.register(_kill_live_job_groups)


#: lines of a job's output kept in memory; older ones are read back from output.log (a job
#: printing 20,000 lines/s would otherwise hold ~34 MB more every 10 s, for as long as the app runs)
KEEP_LINES = 20_000


@dataclass
class _LocalJob:
    info: JobInfo
    dir: Path
    proc: asyncio.subprocess.Process | None = None
    lines: list[str] = field(default_factory=list)  # the newest lines; lines[0] is line number ``base``
    base: int = 0
    log: Any = None  # output.log while the job writes it
    waiters: set[asyncio.Event] = field(default_factory=set)  # one per follower
    task: asyncio.Task | None = None

    @property
    def total(self) -> int:
        return self.base + len(self.lines)

    def wake(self) -> None:
        for event in self.waiters:
            event.set()

    def read_back(self, start: int, stop: int) -> list[str]:
        """Lines [start, stop) from output.log (they left memory). Flush ``log`` first, on
        the loop's thread."""
        out: list[str] = []
        with open(self.dir / "output.log", encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f):
                if number >= stop:
                    break
                if number >= start:
                    out.append(line.rstrip("\n"))
        return out


class LocalBackend(JobBackend):
    name = "local"

    def __init__(self, jobs_dir: Path, *, python: str | None = None, uv: str | None | bool = None,
                 pass_env: tuple[str, ...] = ()):
        #: credentials the user lets jobs see (config pass_env)
        self.pass_env = tuple(pass_env)
        #: the session's environment for processes (credentials out, the Hub through its gateway)
        self.environment: Callable[[str, str], Awaitable[dict[str, str]]] | None = None
        self.jobs_dir = jobs_dir
        self.python = python or sys.executable
        # uv=False forces plain Python (tests); None looks it up on PATH
        self.uv = None if uv is False else (uv or shutil.which("uv"))
        self._jobs: dict[str, _LocalJob] = {}

    # ------------------------------------------------------------------ submit

    async def run(self, spec: JobSpec) -> JobInfo:
        if spec.flavor not in CPU_FLAVORS:
            raise JobError(
                f"The local backend runs jobs on this machine's CPU only, so '{spec.flavor}' is not available. "
                "For GPUs use Hugging Face Jobs: set HF_TOKEN (an account with credits) and start with "
                "--jobs-backend hf, or pick hardware_flavor='cpu-basic' to run it here.",
                kind="refused",
            )
        if spec.command is not None:
            if not await _docker_engine_available():
                raise JobError(
                    "Docker mode (image + command) needs a Docker engine, and none is running on this machine. "
                    "Send the code as `script` instead: it runs with uv (or Python) here.",
                    kind="refused",
                )
            argv = ["docker", "run", "--rm", *(f"-e{k}" for k in {**spec.env, **spec.secrets}),
                    spec.image or "python:3.12", *spec.command]
        elif spec.script is not None:
            argv = []
        else:
            raise JobError("A job needs either `script` (Python code) or `command` (Docker mode).", kind="refused")
        job_id = f"local-{uuid.uuid4().hex[:10]}"
        job_dir = self.jobs_dir / job_id
        job_dir.mkdir(parents=True, exist_ok=True)
        notes: list[str] = []
        if spec.script is not None:
            script_path = job_dir / "script.py"
            script_path.write_text(spec.script, encoding="utf-8")
            if self.uv:
                argv = [self.uv, "run", "--quiet", "--no-project"]
                for dep in spec.dependencies:
                    argv += ["--with", dep]
                argv += [str(script_path), *spec.script_args]
            else:
                if spec.dependencies:
                    notes.append(f"[local backend] uv is not installed, so dependencies were not installed: "
                                 f"{', '.join(spec.dependencies)}; running with {self.python}")
                argv = [self.python, "-u", str(script_path), *spec.script_args]
        # ours minus the user's credentials (agent/secrets.py): the model's code has no business
        # reading them; the HF token too, unless pass_env lets it through
        base = await self.environment(job_id, f"local job {job_id}") if self.environment else \
            agent_environment(self.pass_env)
        env = {**base, **spec.env, **spec.secrets, "PYTHONUNBUFFERED": "1"}
        now = time.time()
        info = JobInfo(id=job_id, backend=self.name, stage="QUEUED", flavor=spec.flavor, created_at=now,
                       url=str(job_dir / "output.log"))
        job = _LocalJob(info=info, dir=job_dir)
        self._jobs[job_id] = job
        for note in notes:
            self._append(job, note)
        try:
            job.proc = await asyncio.create_subprocess_exec(
                *argv, cwd=str(job_dir), env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                limit=4 << 20,  # a training log line can be long (a dict of metrics, a progress bar)
            )
        except OSError as exc:
            info.stage, info.finished_at, info.message = "ERROR", time.time(), f"could not start: {exc}"
            raise JobError(f"The local job could not start: {exc}") from exc
        info.stage, info.started_at = "RUNNING", time.time()
        _LIVE_JOB_GROUPS.add(job.proc.pid)
        job.task = asyncio.get_running_loop().create_task(self._supervise(job, spec.timeout_s))
        job.task.add_done_callback(lambda _t, pgid=job.proc.pid: _LIVE_JOB_GROUPS.discard(pgid))
        job.task.add_done_callback(lambda _t: job.wake())  # followers wait for the output's end
        return info

    def _append(self, job: _LocalJob, line: str) -> None:
        job.lines.append(line)
        if len(job.lines) > 2 * KEEP_LINES:  # trim in bulk: amortised O(1) per line
            drop = len(job.lines) - KEEP_LINES
            del job.lines[:drop]
            job.base += drop
        job.wake()

    async def _supervise(self, job: _LocalJob, timeout_s: int) -> None:
        proc = job.proc
        assert proc is not None and proc.stdout is not None
        log_path = job.dir / "output.log"

        async def pump() -> None:
            with open(log_path, "a", encoding="utf-8", errors="replace") as log:
                job.log = log
                try:
                    while True:
                        try:
                            raw = await proc.stdout.readline()
                        except ValueError:  # a line over the limit: take it in pieces
                            raw = await proc.stdout.read(4 << 20)
                        if not raw:
                            return
                        # one entry per line, in memory and in the file alike (a piece read
                        # past the limit may hold several)
                        for line in raw.decode("utf-8", "replace").rstrip("\r\n").split("\n"):
                            log.write(line + "\n")
                            if job.total % 200 == 0:
                                log.flush()
                            self._append(job, line)
                finally:
                    job.log = None

        reader = asyncio.ensure_future(pump())
        timed_out = False
        try:
            await asyncio.wait_for(proc.wait(), timeout=timeout_s)
        except asyncio.TimeoutError:
            timed_out = True
            await _kill_group(proc)
        except asyncio.CancelledError:
            await _kill_group(proc)
            raise
        await asyncio.wait({reader}, timeout=READ_OUT_S)
        info = job.info
        info.finished_at = time.time()
        info.exit_code = proc.returncode
        if info.stage == "CANCELED":
            pass
        elif timed_out:
            info.stage, info.message = "ERROR", f"timed out after {timeout_s} s and was killed"
        elif proc.returncode == 0:
            info.stage = "COMPLETED"
        else:
            info.stage, info.message = "ERROR", f"exited with code {proc.returncode}"
        job.wake()

    # ------------------------------------------------------------------ queries

    def _get(self, job_id: str) -> _LocalJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobError(f"No local job with id {job_id!r}.", kind="not_found")
        return job

    async def inspect(self, job_id: str) -> JobInfo:
        return self._get(job_id).info

    async def cancel(self, job_id: str) -> JobInfo:
        job = self._get(job_id)
        if not job.info.finished and job.proc is not None:
            job.info.stage = "CANCELED"
            job.info.message = "cancelled by the user"
            await _kill_group(job.proc)
            if job.task is not None:
                await asyncio.wait({job.task}, timeout=KILL_GRACE_S + 2)
        return job.info

    async def list(self, include_finished: bool = False) -> list[JobInfo]:
        return [j.info for j in self._jobs.values() if include_finished or not j.info.finished]

    async def follow_logs(self, job_id: str) -> AsyncIterator[str]:
        job = self._get(job_id)
        sent = 0
        event = asyncio.Event()
        job.waiters.add(event)
        try:
            while True:
                event.clear()
                if sent < job.base:  # fell behind what memory keeps: catch up from the file
                    if job.log is not None:
                        job.log.flush()
                    for line in job.read_back(sent, job.base):
                        yield line
                    sent = job.base
                while sent < job.total:
                    if sent < job.base:
                        break  # trimmed while we were yielding: back to the file
                    yield job.lines[sent - job.base]
                    sent += 1
                # ended, and its output read to the end: a job stopped with the app is marked
                # ended before it prints its last lines (a SIGTERM handler's "checkpoint saved")
                if job.info.finished and sent >= job.total and (job.task is None or job.task.done()):
                    return
                if sent < job.base:
                    continue
                await event.wait()
        finally:
            job.waiters.discard(event)

    async def fetch_logs(self, job_id: str) -> list[str]:
        job = self._get(job_id)
        if job.base == 0:
            return list(job.lines)
        if job.log is not None:
            job.log.flush()
        return await asyncio.to_thread(job.read_back, 0, job.total)

    async def shutdown(self) -> None:
        """Kill every running job (app exit), all at once, and take in what each printed on its
        way out ("checkpoint saved" in a SIGTERM handler): their logs are whole when this returns."""
        running = [j for j in self._jobs.values() if j.proc is not None and not j.info.finished]
        for job in running:
            job.info.stage, job.info.message = "CANCELED", "the app exited"
        await asyncio.gather(*(_kill_group(j.proc) for j in running), return_exceptions=True)
        supervisors = {j.task for j in running if j.task is not None and not j.task.done()}
        if supervisors:
            await asyncio.wait(supervisors, timeout=READ_OUT_S)




async def _kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the job's group, give it the grace period, then SIGKILL whatever is left of
    the group - children that ignore SIGTERM included, even after the leader exited."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    try:
        await asyncio.wait_for(proc.wait(), timeout=KILL_GRACE_S)
    except asyncio.TimeoutError:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


async def _docker_engine_available() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        proc = await asyncio.create_subprocess_exec(
            "docker", "info", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
        return await asyncio.wait_for(proc.wait(), timeout=10) == 0
    except (OSError, asyncio.TimeoutError):
        return False
