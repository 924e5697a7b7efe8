"""Local job backend and the job monitor, with real subprocesses."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from agent.jobs.base import JobError, JobSpec
from agent.jobs.local import LocalBackend
from agent.jobs.monitor import JobMonitor
from agent.protocol import JobLog, JobUpdate

TRAIN = """
import time, sys
for step in range(1, 6):
    print({'loss': round(1.0 / step, 4), 'step': step}, flush=True)
    time.sleep(0.05)
print("training done")
"""


def alive(pid: int) -> bool:
    """Running, not a zombie (this container's PID 1 does not reap orphans)."""
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (ProcessLookupError, FileNotFoundError):
        return False


def backend(tmp_path) -> LocalBackend:
    return LocalBackend(tmp_path / "jobs", uv=False)


async def follow_all(b: LocalBackend, job_id: str) -> list[str]:
    return [line async for line in b.follow_logs(job_id)]


async def test_a_script_runs_and_its_log_is_followed(tmp_path):
    b = backend(tmp_path)
    info = await b.run(JobSpec(script=TRAIN, dependencies=("trl",)))
    assert info.stage == "RUNNING" and info.id.startswith("local-")
    lines = await asyncio.wait_for(follow_all(b, info.id), 20)
    assert "uv is not installed" in lines[0] and "trl" in lines[0]  # said, not silently skipped
    assert lines[-1] == "training done" and "{'loss': 1.0, 'step': 1}" in lines
    done = await b.inspect(info.id)
    assert done.stage == "COMPLETED" and done.exit_code == 0 and done.finished_at >= done.started_at
    assert (tmp_path / "jobs" / info.id / "output.log").read_text().splitlines()[-1] == "training done"


async def test_gpu_flavors_and_docker_mode_are_refused_with_a_way_forward(tmp_path):
    b = backend(tmp_path)
    with pytest.raises(JobError, match="HF_TOKEN") as exc:
        await b.run(JobSpec(script="print(1)", flavor="a10g-large"))
    assert exc.value.kind == "refused"
    if not __import__("shutil").which("docker"):
        with pytest.raises(JobError, match="Docker engine"):
            await b.run(JobSpec(command=("python", "-c", "print(1)"), image="python:3.12"))


async def test_failure_timeout_and_cancel(tmp_path):
    b = backend(tmp_path)
    failing = await b.run(JobSpec(script="import sys\nprint('boom')\nsys.exit(3)"))
    await asyncio.wait_for(follow_all(b, failing.id), 20)
    assert (await b.inspect(failing.id)).stage == "ERROR" and "code 3" in (await b.inspect(failing.id)).message

    slow = await b.run(JobSpec(script="import time\nprint('start', flush=True)\ntime.sleep(60)", timeout_s=1))
    await asyncio.wait_for(follow_all(b, slow.id), 20)
    info = await b.inspect(slow.id)
    assert info.stage == "ERROR" and "timed out after 1 s" in info.message

    marker = tmp_path / "child.pid"
    script = f"import subprocess, time\np = subprocess.Popen(['sleep', '60'])\nopen({str(marker)!r}, 'w').write(str(p.pid))\ntime.sleep(60)"
    job = await b.run(JobSpec(script=script))
    for _ in range(200):
        if marker.exists() and marker.read_text():
            break
        await asyncio.sleep(0.05)
    child = int(marker.read_text())
    t0 = time.monotonic()
    info = await b.cancel(job.id)
    assert info.stage == "CANCELED" and time.monotonic() - t0 < 5
    await asyncio.sleep(0.2)
    assert not alive(child)  # the whole process group is gone, not just the script


class DroppingBackend(LocalBackend):
    """The first follow connection breaks after a few lines, as HF log streams do."""

    drops = 1

    async def follow_logs(self, job_id):
        count = 0
        async for line in super().follow_logs(job_id):
            yield line
            count += 1
            if self.drops and count == 2:
                self.drops -= 1
                raise ConnectionError("stream dropped")


async def test_monitor_emits_logs_and_updates_reconnects_and_leaves_a_note(tmp_path):
    events = []
    b = DroppingBackend(tmp_path / "jobs", uv=False)
    monitor = JobMonitor(events.append, tmp_path / "jobs", poll_s=0.2, reconnect_s=0.05)
    info = await b.run(JobSpec(script=TRAIN))
    watched = monitor.watch(b, info, turn=3)
    await asyncio.wait_for(watched.task, 20)
    logged = [line for e in events if isinstance(e, JobLog) for line in e.lines]
    assert logged[-1] == "training done" and len(logged) == len(set(logged)) == 6  # no line lost or repeated
    assert watched.reconnects == 1
    updates = [e for e in events if isinstance(e, JobUpdate)]
    assert updates[0].status == "RUNNING" and updates[-1].status == "COMPLETED"
    assert watched.log_path.read_text().splitlines() == logged
    notes = monitor.drain_notes()
    assert len(notes) == 1 and "[JOB UPDATE]" in notes[0] and "COMPLETED" in notes[0] and "training done" in notes[0]
    assert monitor.drain_notes() == []


async def test_cancel_also_kills_children_that_ignore_sigterm(tmp_path, monkeypatch):
    from agent.jobs import local

    monkeypatch.setattr(local, "KILL_GRACE_S", 0.5)
    b = backend(tmp_path)
    marker = tmp_path / "stubborn.pid"
    script = ("import signal, subprocess, time\n"
              "p = subprocess.Popen(['bash', '-c', 'trap \"\" TERM; echo $$ > " + str(marker) + "; while true; do sleep 0.1; done'])\n"
              "time.sleep(60)")
    job = await b.run(JobSpec(script=script))
    for _ in range(200):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.05)
    child = int(marker.read_text())
    info = await b.cancel(job.id)
    assert info.stage == "CANCELED"
    await asyncio.sleep(0.2)
    assert not alive(child)
    assert not local._LIVE_JOB_GROUPS


async def test_a_first_line_followed_by_silence_is_not_held_back(tmp_path):
    events = []
    b = backend(tmp_path)
    monitor = JobMonitor(events.append, tmp_path / "jobs", poll_s=0.2)
    info = await b.run(JobSpec(script="import time\nprint('loading model', flush=True)\ntime.sleep(3)\nprint('done')"))
    watched = monitor.watch(b, info)

    def delivered() -> bool:
        return watched.lines_seen == 1 and any(isinstance(e, JobLog) and e.lines == ["loading model"] for e in events)

    deadline = asyncio.get_running_loop().time() + 1.0  # within the same second as before, checked every 20 ms
    while not delivered() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.02)
    assert delivered()
    await b.cancel(info.id)
    await asyncio.wait_for(watched.task, 10)
    assert [e for e in events if isinstance(e, JobUpdate)][-1].cost_usd == 0.0  # local CPU costs nothing


async def test_jobs_do_not_inherit_credentials_unless_passed(tmp_path, monkeypatch):
    """Provider keys, cloud secrets and the HF token stay out of a local job's environment;
    a name in pass_env (the config) goes through; the job's own env does too."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("HF_TOKEN", "hf_not_for_jobs")
    monkeypatch.setenv("WANDB_API_KEY", "wandb-passed")
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # "TOKEN" inside a word is no credential
    b = LocalBackend(tmp_path / "jobs", uv=False, pass_env=("WANDB_API_KEY",))
    names = ('ANTHROPIC_API_KEY', 'AWS_SECRET_ACCESS_KEY', 'HF_TOKEN', 'WANDB_API_KEY', 'TOKENIZERS_PARALLELISM', 'MY_FLAG')
    script = f"import os\nfor k in {names!r}:\n    print(k, os.environ.get(k))"
    info = await b.run(JobSpec(script=script, env={"MY_FLAG": "1"}))
    lines = await asyncio.wait_for(follow_all(b, info.id), 20)
    assert lines == ["ANTHROPIC_API_KEY None", "AWS_SECRET_ACCESS_KEY None", "HF_TOKEN None",
                     "WANDB_API_KEY wandb-passed", "TOKENIZERS_PARALLELISM false", "MY_FLAG 1"]


async def test_memory_keeps_only_recent_lines_and_followers_still_get_every_line(tmp_path, monkeypatch):
    """A chatty job: the backend keeps a bounded window in memory; a follower reading as
    it runs, one that starts after the job ended, and fetch_logs all see every line, in
    order (older ones come back from output.log)."""
    import agent.jobs.local as local

    monkeypatch.setattr(local, "KEEP_LINES", 100)
    script = "import sys\nfor i in range(30000):\n    sys.stdout.write(f'line {i}\\n')\nprint('x' * 10, 'a\\nb', sep='')"
    b = backend(tmp_path)
    info = await b.run(JobSpec(script=script))
    live = asyncio.ensure_future(follow_all(b, info.id))
    await asyncio.sleep(0.05)
    lines = await asyncio.wait_for(live, 30)
    expected = [f"line {i}" for i in range(30000)] + ["x" * 10 + "a", "b"]
    assert [line for line in lines if not line.startswith("[local backend]")] == expected
    job = b._jobs[info.id]
    assert len(job.lines) <= 200 and job.total == len(lines)
    late = await asyncio.wait_for(follow_all(b, info.id), 30)
    assert late == lines and await b.fetch_logs(info.id) == lines
