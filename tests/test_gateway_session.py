"""The Hub gateway in a session: a script the agent runs with bash reaches the Hub only
through it, and what it spends is decided by the session's policy like a tool call.

The real huggingface_hub client runs in the bash subprocess against the Hub emulator; the
scripted model asks for the bash call."""

from __future__ import annotations

import asyncio
import json
import sys

from agent.config import Config, LLMSettings
from agent.protocol import ExecApproval, Shutdown, ToolDecision, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

RUN_JOB = (
    "import os\n"
    "from huggingface_hub import run_job\n"
    "print('ENV', os.environ['HF_TOKEN'][:11], os.environ['HF_ENDPOINT'][:17])\n"
    "try:\n"
    "    job = run_job(image='python:3.12', command=['python', '-c', 'print(1)'], flavor='a10g-large', timeout='2h')\n"
    "    print('JOB', job.id)\n"
    "except Exception as exc:\n"
    "    print('REFUSED', exc)\n"
)


def bash_call(tmp_path) -> ToolCalls:
    script = tmp_path / "work" / "launch.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text(RUN_JOB)
    return ToolCalls([Call("b1", "bash", json.dumps({"command": f"{sys.executable} launch.py"}))])


def hub_session(llm_server, monkeypatch, tmp_path, hub, **config):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    cfg = Config(llm=LLMSettings(max_attempts=1), **config)
    return make_session(llm_server, monkeypatch, tmp_path, config=cfg)


async def test_a_job_launched_from_bash_asks_first_and_a_refusal_reaches_the_script(llm_server, monkeypatch,
                                                                                   tmp_path, hub):
    session = hub_session(llm_server, monkeypatch, tmp_path, hub)
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    ask = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}, timeout=60))[-1]
    assert ask.type == "approval_required" and ask.parent_call_id == "b1"
    [item] = ask.items
    assert item.tool == "hf_jobs" and item.arguments["hardware_flavor"] == "a10g-large"
    assert "bash:" in item.reason and "a10g-large" in item.reason and "launch.py" in item.reason
    assert item.estimated_cost_usd and item.estimated_cost_usd > 0  # price x timeout, like the tool's card
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=item.tool_call_id, approved=False,
                                                        feedback="too expensive")]))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    output = of_type(events, "tool_output")[0].output
    assert "ENV hf_gateway_ http://127.0.0.1" in output  # a stand-in token and the gateway, never the real ones
    assert "REFUSED" in output and "too expensive" in output
    assert hub.job_ids() == []  # nothing reached the Hub
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_in_yolo_a_job_within_the_budget_runs_and_joins_the_monitor(llm_server, monkeypatch, tmp_path, hub):
    session = hub_session(llm_server, monkeypatch, tmp_path, hub, approval_mode="yolo", yolo_cap_usd=100.0,
                          model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    hub.script_job(lines=["epoch 1 loss 0.5"], line_delay=0.05)
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    output = of_type(events, "tool_output")[0].output
    assert "JOB " in output, output
    job_id = output.split("JOB ", 1)[1].split()[0]
    assert hub.job_ids() == [job_id]
    assert hub.job_spec(job_id)["flavor"] == "a10g-large"
    assert job_id in session.jobs.monitor.jobs  # log, cost and the end note like an hf_jobs job
    watched = session.jobs.monitor.jobs[job_id]
    # the job ends on the emulator's clock; its follower stops once the end is noted and priced
    await asyncio.wait_for(watched.task, 20)
    assert watched.info.finished and watched.info.stage == "COMPLETED"
    assert watched.cost_usd is not None  # priced by the Hub's hardware list: counted in the receipt
    assert all(r.token in (None, "hf_test") for r in hub.requests)  # the stand-in never reached the Hub
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_headless_style_refusal_and_reads_pass_through(llm_server, monkeypatch, tmp_path, hub):
    """Reads need no answer; the only question is the job, refused as headless refuses."""
    session = hub_session(llm_server, monkeypatch, tmp_path, hub)
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    asks = 0
    while True:
        event = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}, timeout=60))[-1]
        if event.type != "approval_required":
            break
        asks += 1
        session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=i.tool_call_id, approved=False)
                                               for i in event.items]))
    assert event.type == "turn_complete" and asks == 1
    assert any(r.path == "/api/whoami-v2" and r.token == "hf_test" for r in hub.requests)
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


UPLOAD = (
    "from huggingface_hub import HfApi\n"
    "try:\n"
    "    info = HfApi().upload_folder(repo_id='ada/run', folder_path='out', commit_message='weights')\n"
    "    print('UPLOADED', info.oid)\n"
    "except Exception as exc:\n"
    "    print('REFUSED', exc)\n"
)


async def test_upload_folder_from_bash_shows_the_hub_write_review_and_lands_when_approved(llm_server, monkeypatch,
                                                                                          tmp_path, hub):
    session = hub_session(llm_server, monkeypatch, tmp_path, hub)
    hub.add_repo("ada/run", files={"README.md": "# run\n"})
    out = session.cwd / "out"
    out.mkdir()
    (out / "config.json").write_text('{"lr": 2e-5}')
    (out / "notes.txt").write_text("epoch 3 loss 0.41\n")
    (session.cwd / "push.py").write_text(UPLOAD)
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": f"{sys.executable} push.py"}))]), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    ask = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}, timeout=60))[-1]
    assert ask.type == "approval_required" and ask.parent_call_id == "b1"
    [item] = ask.items
    assert item.tool == "hf_repo_files" and "commit 2 file(s)" in item.reason and "ada/run" in item.reason
    review = item.review
    assert review is not None and review.repo_id == "ada/run"
    assert sorted((f.path, f.size) for f in review.files) == [("config.json", 12), ("notes.txt", 18)]
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=item.tool_call_id, approved=True)]))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    assert "UPLOADED" in of_type(events, "tool_output")[0].output
    assert hub.repo_files("ada/run", "model")["notes.txt"] == b"epoch 3 loss 0.41\n"
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_a_gateway_job_holds_its_reservation_until_the_monitor_prices_it(llm_server, monkeypatch, tmp_path,
                                                                               hub):
    """YOLO: the job's estimate is reserved when it is allowed, and the budget then follows
    the watched job (its observed cost), not a reservation released at once."""
    session = hub_session(llm_server, monkeypatch, tmp_path, hub, approval_mode="yolo", yolo_cap_usd=100.0,
                          model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    hub.script_job(lines=["step"], line_delay=0.05, final_stage=None)  # runs until cancelled
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    job_id = of_type(events, "tool_output")[0].output.split("JOB ", 1)[1].split()[0]
    watched = session.jobs.monitor.jobs[job_id]
    assert watched.call_id.startswith("b1~g")  # the decision's call: its reservation tracks this job
    budget = session.policy.budget
    # the reservation is still open, held by the job it launched (not released at once)
    held = [key for key in budget.open_ids() if key.startswith(watched.call_id)]
    assert len(held) == 1
    assert session.policy.budget_left() < 100.0 - 1.0  # a10g-large for up to 2 h is reserved
    hub.end_job(job_id)
    for _ in range(200):
        if watched.info.finished:
            break
        await asyncio.sleep(0.05)
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_a_launch_the_hub_refuses_releases_its_reservation(llm_server, monkeypatch, tmp_path, hub):
    """YOLO allowed it and reserved its estimate; the Hub then answered 402: the script sees the
    Hub's refusal and nothing stays reserved against the budget."""
    session = hub_session(llm_server, monkeypatch, tmp_path, hub, approval_mode="yolo", yolo_cap_usd=100.0,
                          model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    hub.fail_next_run(402, "Insufficient credits to run this job")
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    output = of_type(events, "tool_output")[0].output
    assert "REFUSED" in output and "Insufficient credits" in output, output
    assert hub.job_ids() == [] and session.jobs.monitor.jobs == {}
    assert [key for key in session.policy.budget.open_ids() if "~g" in key] == []
    assert session.policy.budget_left() == 100.0
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_a_session_on_local_jobs_still_watches_a_hub_job_its_script_launched(llm_server, monkeypatch,
                                                                                  tmp_path, hub):
    """The agent's own jobs run on this machine, but a script launched a paid one on the Hub:
    it is watched (log, stage, cost) all the same."""
    session = hub_session(llm_server, monkeypatch, tmp_path, hub, approval_mode="yolo", yolo_cap_usd=100.0,
                          jobs_backend="local",
                          model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    assert session.jobs.backend.name == "local"
    hub.script_job(lines=["epoch 1 loss 0.5"], line_delay=0.05)
    llm_server.script(bash_call(tmp_path), Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    job_id = of_type(events, "tool_output")[0].output.split("JOB ", 1)[1].split()[0]
    watched = session.jobs.monitor.jobs[job_id]
    assert watched.backend.name == "hf" and watched.info.backend == "hf"
    await asyncio.wait_for(watched.task, 20)  # the follower ends after the job's end is noted and priced
    assert watched.info.stage == "COMPLETED" and watched.cost_usd is not None
    assert "epoch 1 loss 0.5" in watched.log_path.read_text()
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)


async def test_space_hardware_from_bash_always_asks_and_names_the_hourly_price(llm_server, monkeypatch, tmp_path,
                                                                               hub):
    """Paid Space hardware bills until someone stops it: no budget can reserve that, so even
    YOLO asks, and the card says what an hour costs."""
    session = hub_session(llm_server, monkeypatch, tmp_path, hub, approval_mode="yolo", yolo_cap_usd=100.0)
    script = tmp_path / "work" / "space.py"
    script.parent.mkdir(exist_ok=True)
    script.write_text("from huggingface_hub import HfApi\n"
                      "try:\n"
                      "    HfApi().request_space_hardware('ada/demo-space', 'a10g-large')\n"
                      "except Exception as exc:\n"
                      "    print('REFUSED', exc)\n")
    llm_server.script(ToolCalls([Call("b1", "bash", json.dumps({"command": f"{sys.executable} space.py"}))]),
                      Text("ok"))
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    ask = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}, timeout=60))[-1]
    assert ask.type == "approval_required"
    [item] = ask.items
    assert item.always_ask and item.tool == "hub_request"
    assert "space repo ada/demo-space on a10g-large hardware, billed $" in item.reason and "/h while it runs" in item.reason
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=item.tool_call_id, approved=False)]))
    events = await collect_until(sub, stop={"turn_complete", "error"}, timeout=60)
    assert "REFUSED" in of_type(events, "tool_output")[0].output
    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 10)
