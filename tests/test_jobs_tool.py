"""hf_jobs approval rules, estimates, and its behaviour on the local backend."""

from __future__ import annotations

import json

from agent.jobs.pricing import estimate_cost, parse_timeout
from agent.tools.base import ApprovalSettings
from agent.tools.jobs import HfJobsParams, HfJobsTool
from tests.engine_support import collect_until, make_session, priced_config, of_type
from tests.fakes import Call, Text, ToolCalls


def reason(**kw):
    settings = ApprovalSettings(confirm_cpu_jobs=kw.pop("confirm", True))
    return HfJobsTool().approval_reason(HfJobsParams(**kw), settings)


def test_approval_rules():
    assert "GPU job on a10g-large for up to 2h (estimated up to $4.00)" == reason(operation="run", script="x", hardware_flavor="a10g-large", timeout="2h")
    assert "confirm_cpu_jobs" in reason(operation="run", script="x")
    assert reason(operation="run", script="x", confirm=False) is None
    assert reason(operation="logs", job_id="j") is None and reason(operation="ps") is None
    assert "always asks" in reason(operation="scheduled ps")
    assert HfJobsTool().always_ask(HfJobsParams(operation="scheduled delete", scheduled_job_id="s"))
    assert "cannot be estimated" in reason(operation="run", script="x", hardware_flavor="quantum-large")


def test_a_session_on_the_local_backend_estimates_jobs_at_zero(tmp_path, monkeypatch):
    """Local jobs run on this machine's CPU: the card and the budget see $0, not the HF price."""
    from agent.config import Config
    from agent.session import Session

    monkeypatch.delenv("HF_TOKEN", raising=False)
    session = Session(Config(), model_id="demo", cwd=tmp_path, jobs_backend="local")
    tool = session.router.get("hf_jobs")
    params = HfJobsParams(operation="run", script="x", hardware_flavor="cpu-basic", timeout="10m")
    assert tool.backend_name == "local" and tool.estimate(params) == 0.0
    assert "$0" in tool.approval_reason(params, ApprovalSettings()) and "0.01" not in tool.approval_reason(params, ApprovalSettings())


def test_timeouts_and_estimates():
    assert parse_timeout("0.5s") is None and parse_timeout(0.2) is None  # no job keeps a sub-second limit
    assert [parse_timeout(v) for v in ("30m", "2h", "1.5h", "90s", "90", 3600, "", "soon", "-1h")] == \
        [1800, 7200, 5400, 90, 90, 3600, 1800, None, None]
    assert estimate_cost("a10g-large", 7200) == 4.0 and estimate_cost("a10g-large", None) is None


async def test_scheduled_jobs_ask_even_in_yolo_and_cards_carry_the_estimate(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([
        Call("s1", "hf_jobs", json.dumps({"operation": "scheduled run", "script": "print(1)", "schedule": "@daily"})),
        Call("g1", "hf_jobs", json.dumps({"operation": "run", "script": "print(1)", "hardware_flavor": "t4-small", "timeout": "1h"})),
    ]), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", config=priced_config())
    sub = s.subscribe("t")
    s.start()
    from agent.protocol import ExecApproval, Shutdown, ToolDecision, UserInput

    s.submit(UserInput(text="schedule it"))
    events = await collect_until(sub)
    req = of_type(events, "approval_required")[0]
    assert [i.tool_call_id for i in req.items] == ["s1"]  # the GPU run is auto-approved in YOLO, the schedule is not
    gpu_out = [e for e in of_type(events, "tool_output") if e.tool_call_id == "g1"][0]
    assert "t4-small" in gpu_out.output and "HF_TOKEN" in gpu_out.output  # local backend refuses GPUs, clearly
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="s1", approved=True)]))
    events = await collect_until(sub)
    s.submit(Shutdown())
    out = [e for e in of_type(events, "tool_output") if e.tool_call_id == "s1"][0]
    assert "needs Hugging Face Jobs" in out.output


async def test_a_path_that_does_not_exist_here_is_refused(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("p1", "hf_jobs", json.dumps({"operation": "run", "script": "train.py"}))]), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo")
    sub = s.subscribe("t")
    s.start()
    from agent.protocol import Shutdown, UserInput

    s.submit(UserInput(text="run train.py"))
    events = await collect_until(sub)
    s.submit(Shutdown())
    out = of_type(events, "tool_output")[0]
    assert "not a file here" in out.output and "NOT executed" in out.output
