"""The HF Jobs backend and the job monitor against the Hub emulator on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64

import pytest

from agent.jobs.base import JobError, JobSpec
from agent.jobs.hf import HFJobsBackend
from agent.jobs.monitor import JobMonitor
from agent.protocol import JobLog, JobUpdate


def backend(hub) -> HFJobsBackend:
    return HFJobsBackend("hf_test", endpoint=hub.endpoint)


async def test_inline_script_travels_in_the_command_and_the_token_only_as_a_secret(hub):
    b = backend(hub)
    code = "print({'loss': 0.5, 'step': 1})\n" + "# padding\n" * 100  # long: no path-length trap
    info = await b.run(JobSpec(script=code, dependencies=("trl",), flavor="a10g-small", timeout_s=600))
    assert info.backend == "hf" and info.namespace == "ada" and info.flavor == "a10g-small"
    spec = hub.job_spec(info.id)
    shell = " ".join(spec["command"])
    encoded = shell.split("echo ")[1].split(" ")[0]
    assert base64.b64decode(encoded).decode() == code and "--with trl" in shell
    assert spec["secrets"] == {"HF_TOKEN": "hf_test"} and "hf_test" not in shell
    assert spec.get("timeoutSeconds") == 600


async def test_namespace_must_be_the_user_or_an_org(hub):
    b = backend(hub)
    with pytest.raises(JobError, match="neither your user"):
        await b.run(JobSpec(script="print(1)", namespace="someone-else"))
    info = await b.run(JobSpec(script="print(1)", namespace="ml-team"))
    assert info.namespace == "ml-team" and (await b.inspect(info.id)).namespace == "ml-team"


async def test_402_is_a_clear_billing_error(hub):
    hub.fail_next_run(402, "Insufficient credits to run this job")
    with pytest.raises(JobError) as exc:
        await backend(hub).run(JobSpec(script="print(1)", flavor="t4-small"))
    assert exc.value.kind == "billing" and "settings/billing" in str(exc.value)


async def test_monitor_reconnects_after_a_dropped_stream_and_loses_no_line(hub, tmp_path):
    lines = [f"{{'loss': {1 / (i + 1):.3f}, 'step': {i}}}" for i in range(12)] + ["done training"]
    hub.script_job(lines=lines, line_delay=0.05, drop_after=3)
    b = backend(hub)
    events = []
    monitor = JobMonitor(events.append, tmp_path / "jobs", poll_s=0.2, reconnect_s=0.1)
    info = await b.run(JobSpec(script="print(1)"))
    watched = monitor.watch(b, info)
    await asyncio.wait_for(watched.task, 30)
    got = [line for e in events if isinstance(e, JobLog) for line in e.lines]
    assert got == lines  # every line once, in order, despite the cut
    assert hub.log_connections(info.id) >= 2
    assert [e.status for e in events if isinstance(e, JobUpdate)][-1] == "COMPLETED"
    assert watched.log_path.read_text().splitlines() == lines
    note = monitor.drain_notes()[0]
    assert "COMPLETED" in note and "done training" in note


async def test_cancel_and_list(hub):
    hub.script_job(lines=["working"], line_delay=0.05, final_stage=None)
    b = backend(hub)
    info = await b.run(JobSpec(script="print(1)"))
    assert [j.id for j in await b.list()] == [info.id]
    cancelled = await b.cancel(info.id)
    assert cancelled.stage == "CANCELED" and await b.list() == []
    assert [j.id for j in await b.list(include_finished=True)] == [info.id]


async def test_session_picks_hf_jobs_with_a_token_and_local_without(hub, monkeypatch, tmp_path):
    from agent.config import Config
    from agent.session import Session

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    assert Session(Config(), model_id="demo", cwd=tmp_path).jobs.backend.name == "hf"
    assert Session(Config(), model_id="demo", cwd=tmp_path, jobs_backend="local").jobs.backend.name == "local"
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.setattr("agent.session.hf_token", lambda: None)
    assert Session(Config(), model_id="demo", cwd=tmp_path).jobs.backend.name == "local"
    with pytest.raises(ValueError, match="needs a Hugging Face token"):
        Session(Config(), model_id="demo", cwd=tmp_path, jobs_backend="hf")


async def test_a_jobs_cost_is_in_its_turns_receipt_and_the_session_total(hub, llm_server, monkeypatch, tmp_path):
    """An a10g-small job launched in turn 1 (YOLO) runs ~1.5 s on the emulator: turn 1's
    receipt carries its cost so far, and once it has ended the next turn's receipt counts
    its final cost in the session total (not in that turn's compute)."""
    import json

    from agent.jobs.pricing import hourly_price
    from agent.protocol import Shutdown, UserInput
    from tests.engine_support import collect_until, make_session, priced_config
    from tests.fakes.openai_server import Call, Text, ToolCalls

    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.script_job(lines=[f"step {i}" for i in range(15)], line_delay=0.1)
    run = {"operation": "run", "script": "print('hi')\n", "hardware_flavor": "a10g-small", "timeout": "10m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(run))]), Text("Launched."), Text("Still here."))
    session = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", config=priced_config())
    assert session.jobs.backend.name == "hf"
    session.jobs.first_lines_wait_s = 0.5
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text="train"))
    first = (await collect_until(sub))[-1]
    assert first.type == "turn_complete"
    assert first.receipt.compute_cost_usd >= 0 and first.receipt.unknown_compute_jobs == 0
    ended = []
    while not ended:  # the job ends in the background, after the turn
        ended = [e for e in await collect_until(sub, stop={"job_update"}) if e.type == "job_update" and e.status == "COMPLETED"]
    final = ended[0].cost_usd
    assert final is not None and 0 < final < hourly_price("a10g-small") * 10 / 3600
    session.submit(UserInput(text="anything new?"))
    second = (await collect_until(sub))[-1]
    assert second.receipt.compute_cost_usd == 0  # nothing launched in turn 2
    llm = second.receipt.session_cost_usd - session.jobs.monitor.spent(None)[0]
    assert session.jobs.monitor.spent(1) == (final, 0)
    assert abs(llm - session.engine.session_cost) < 1e-9  # session total = model calls + the job
    assert second.receipt.session_cost_usd >= final
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)
