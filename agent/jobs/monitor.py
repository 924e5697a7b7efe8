"""Follows every launched job in the background, whatever the turn is doing.

For each job: follow the log (reconnecting when the stream drops, skipping lines already
seen), write every line to ``<data_dir>/jobs/<backend>-<id>.log``, emit ``job_log`` in
batches and ``job_update`` on status changes, and when the job ends reconcile the log with
a full fetch (a dropped stream can lose lines silently), record the final cost, and leave
a short note the model reads at its next step.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent.jobs.base import JobBackend, JobError, JobInfo
from agent.jobs.pricing import hourly_price
from agent.protocol import Event, JobLog, JobUpdate

LOG_BATCH_S = 0.1
LOG_BATCH_LINES = 500
RECONNECT_S = 1.0
POLL_S = 5.0
#: at close, how long a job that has ended gets for its last lines to reach its log
DRAIN_S = 3.0


@dataclass
class WatchedJob:
    info: JobInfo
    backend: JobBackend
    turn: int
    log_path: Path
    lines_seen: int = 0
    last_line: str = ""
    cost_usd: float | None = None
    task: asyncio.Task | None = None
    reconnects: int = 0
    tail: list[str] = field(default_factory=list)
    #: the tool call that launched it (the approval policy settles that call's budget with it)
    call_id: str = ""
    #: what was asked to run (``agent.jobs.base.JobSpec``), when this session launched it
    spec: Any = None


def _complete_lines(path: Path) -> tuple[int, list[str]]:
    """How many whole lines a job's log file holds, and its last five. A line cut off by a
    killed process (no newline yet) is removed: it is written again, whole, when it comes."""
    try:
        with open(path, "rb+") as f:
            data = f.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                f.truncate(end)
                data = data[:end]
    except FileNotFoundError:
        return 0, []
    lines = data.decode("utf-8", errors="replace").split("\n")[:-1]
    return len(lines), lines[-5:]


def _log_name(backend: str, job_id: str) -> str:
    # local ids already say "local-"; HF ids do not say where they ran
    return f"{job_id}.log" if job_id.startswith(f"{backend}-") else f"{backend}-{job_id}.log"


class JobMonitor:
    def __init__(self, emit: Callable[[Event], None], jobs_dir: Path, prices: dict[str, float] | None = None,
                 poll_s: float = POLL_S, reconnect_s: float = RECONNECT_S):
        self.emit = emit
        self.jobs_dir = jobs_dir
        self.prices = prices
        self.poll_s = poll_s
        self.reconnect_s = reconnect_s
        self.jobs: dict[str, WatchedJob] = {}
        self._notes: list[str] = []
        self._noted: list[str] = []  # the ids behind _notes
        self.compute_cost_usd = 0.0
        #: called after a job's end was noted for the model (the session may wake the agent)
        self.on_finished: Callable[[WatchedJob], None] = lambda job: None
        #: called when a new job is first followed (not a resumed one)
        self.on_started: Callable[[WatchedJob], None] = lambda job: None

    # ------------------------------------------------------------------ public

    def watch(self, backend: JobBackend, info: JobInfo, turn: int = 0, call_id: str = "",
              resume_log: bool = False) -> WatchedJob:
        """Follow ``info``'s job from now on. ``resume_log``: a job followed before (a resumed
        session): the lines already in its log file are not written again, the rest follow."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        job = WatchedJob(info=info, backend=backend, turn=turn, call_id=call_id,
                         log_path=self.jobs_dir / _log_name(backend.name, info.id))
        if resume_log:
            job.lines_seen, job.tail = _complete_lines(job.log_path)
            job.last_line = job.tail[-1] if job.tail else ""
        self.jobs[info.id] = job
        if not resume_log:
            try:
                self.on_started(job)
            except Exception:  # a listener never stops a job from being followed
                pass
        self._update(job)
        job.task = asyncio.get_running_loop().create_task(self._follow(job), name=f"job-{info.id}")
        return job

    def restore(self, backend: JobBackend, info: JobInfo, turn: int = 0, call_id: str = "",
                cost_usd: float | None = None) -> WatchedJob:
        """A job that ended before this session was resumed: listed and counted, not followed."""
        job = WatchedJob(info=info, backend=backend, turn=turn, call_id=call_id, cost_usd=cost_usd,
                         log_path=self.jobs_dir / _log_name(backend.name, info.id))
        job.lines_seen, job.tail = _complete_lines(job.log_path)
        self.jobs[info.id] = job
        self._update(job, detail=info.message)
        return job

    def running(self) -> list[WatchedJob]:
        return [j for j in self.jobs.values() if not j.info.finished]

    def unsettled(self) -> list[WatchedJob]:
        """Jobs still running, or ended but not yet noted (their log reconciled, their cost
        and the model's note to come): what a process must wait for before it leaves."""
        return [j for j in self.jobs.values() if not j.info.finished or (j.task is not None and not j.task.done())]

    def has_notes(self) -> bool:
        return bool(self._notes)

    def noted_jobs(self) -> list[str]:
        """The jobs whose end notes wait for the model."""
        return list(self._noted)

    def drain_notes(self) -> list[str]:
        notes, self._notes = self._notes, []
        self._noted = []
        return notes

    def cost_so_far(self, job: WatchedJob) -> float | None:
        if job.info.backend == "local":
            return 0.0  # this machine's CPU: no bill
        price = hourly_price(job.info.flavor, self.prices)
        if price is None:
            return None
        if job.info.started_at is None:
            return 0.0  # queued, or failed before it started: nothing billed yet
        end = job.info.finished_at or time.time()
        return round(price * max(0.0, end - job.info.started_at) / 3600, 6)

    def spent(self, turn: int | None = None) -> tuple[float, int]:
        """Compute spent on the jobs launched in ``turn`` (all jobs when None): the final
        cost of finished jobs, the cost so far of running ones. Also how many jobs have no
        known price (not counted in the sum, never counted as $0)."""
        total, unknown = 0.0, 0
        for job in self.jobs.values():
            if turn is not None and job.turn != turn:
                continue
            cost = job.cost_usd if job.info.finished and job.cost_usd is not None else self.cost_so_far(job)
            if cost is None:
                unknown += 1
            else:
                total += cost
        return round(total, 6), unknown

    async def cancel(self, job_id: str) -> JobInfo:
        job = self.jobs.get(job_id)
        if job is None:
            raise JobError(f"No job {job_id!r} is being followed.", kind="not_found")
        job.info = await job.backend.cancel(job_id)
        return job.info

    async def close(self, drain_s: float = DRAIN_S) -> None:
        """Stop following. A job that has ended (a local one stopped with the app) is followed to
        its last line first, up to ``drain_s``: what it printed on its way out belongs in its
        log. Jobs still running elsewhere (HF) are let go at once; they are followed again on resume."""
        ended = {j.task for j in self.jobs.values() if j.task is not None and not j.task.done() and j.info.finished}
        if ended:
            await asyncio.wait(ended, timeout=drain_s)
        for job in self.jobs.values():
            if job.task is not None:
                job.task.cancel()
        await asyncio.gather(*(j.task for j in self.jobs.values() if j.task), return_exceptions=True)

    # ------------------------------------------------------------------ following

    def _update(self, job: WatchedJob, detail: str = "") -> None:
        self.emit(JobUpdate(job_id=job.info.id, status=job.info.stage, flavor=job.info.flavor, url=job.info.url,
                            cost_usd=self.cost_so_far(job), detail=detail or job.info.message))

    async def _follow(self, job: WatchedJob) -> None:
        try:
            await self._follow_inner(job)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never die silently: say it, and still tell the model
            job.info.message = f"the monitor stopped following this job: {type(exc).__name__}: {exc}"
            self._finished(job)

    async def _follow_inner(self, job: WatchedJob) -> None:
        poller = asyncio.ensure_future(self._poll(job))
        failures = 0
        try:
            with open(job.log_path, "a", encoding="utf-8", errors="replace") as log:
                while True:
                    seen = job.lines_seen
                    await self._stream_once(job, log)
                    job.info = await self._inspect(job)
                    if job.info.finished:
                        break
                    job.reconnects += 1  # the stream ended while the job runs: reconnect
                    failures = 0 if job.lines_seen > seen else failures + 1
                    # back off while the stream gives nothing (a revoked token, an outage)
                    await asyncio.sleep(min(60.0, self.reconnect_s * (2 ** min(failures, 6))))
                # a dropped stream can lose lines without a sign: reconcile with a full fetch
                try:
                    full = await job.backend.fetch_logs(job.info.id)
                except JobError:
                    full = []
                missing = full[job.lines_seen:]
                if missing:
                    self._write(job, log, missing)
                    self.emit(JobLog(job_id=job.info.id, lines=missing))
        finally:
            poller.cancel()
        self._finished(job)

    async def _stream_once(self, job: WatchedJob, log) -> None:
        skip = job.lines_seen  # every (re)connection replays from the first line
        batch: list[str] = []

        def flush() -> None:
            if batch:
                lines = list(batch)
                batch.clear()
                self._write(job, log, lines)
                self.emit(JobLog(job_id=job.info.id, lines=lines))

        async def read() -> None:
            index = 0
            async for line in job.backend.follow_logs(job.info.id):
                index += 1
                if index > skip:
                    batch.append(line)
                    if len(batch) >= LOG_BATCH_LINES:
                        flush()

        async def tick() -> None:
            # a line followed by silence (a model loading) must not wait for the next line
            while True:
                await asyncio.sleep(LOG_BATCH_S)
                flush()

        ticker = asyncio.ensure_future(tick())
        try:
            await read()
        except asyncio.CancelledError:
            raise
        except Exception:  # a broken stream is a reconnect, not a crash
            pass
        finally:
            ticker.cancel()
            flush()  # cancelled too (the app closing): lines already read belong in the log

    def _write(self, job: WatchedJob, log, lines: list[str]) -> None:
        log.write("\n".join(lines) + "\n")
        log.flush()
        job.lines_seen += len(lines)
        job.last_line = lines[-1]
        job.tail = (job.tail + lines)[-5:]

    async def _inspect(self, job: WatchedJob) -> JobInfo:
        try:
            return await job.backend.inspect(job.info.id)
        except JobError:
            return job.info

    async def _poll(self, job: WatchedJob) -> None:
        stage = job.info.stage
        while True:
            await asyncio.sleep(self.poll_s)
            info = await self._inspect(job)
            if info.stage != stage:
                job.info, stage = info, info.stage
                self._update(job)
            elif not info.finished:
                self._update(job)  # the cost so far keeps growing

    def _finished(self, job: WatchedJob) -> None:
        self._note_end(job)
        try:
            self.on_finished(job)
        except Exception:  # the job's end is noted whatever the listener does
            pass

    def _note_end(self, job: WatchedJob) -> None:
        job.cost_usd = self.cost_so_far(job)
        if job.cost_usd is not None:
            self.compute_cost_usd += job.cost_usd
        elapsed = ""
        if job.info.started_at and job.info.finished_at:
            seconds = int(job.info.finished_at - job.info.started_at)
            elapsed = f" after {seconds // 60}m{seconds % 60:02d}s"
        cost = "unknown cost" if job.cost_usd is None else f"${job.cost_usd:.4f}"
        self._update(job, detail=f"{job.info.stage.lower()}{elapsed}, {cost}")
        tail = "\n".join(job.tail[-3:])
        self._noted.append(job.info.id)
        self._notes.append(
            f"[JOB UPDATE] Job {job.info.id} ({job.info.backend}, {job.info.flavor}) finished: {job.info.stage}{elapsed}, "
            f"{cost}. {job.info.message}\nLast log lines:\n{tail}\nFull log: {job.log_path}"
        )
