"""The YOLO budget: reservations (atomic, released on failure, reconciled with the observed
cost), the pause when spend reaches the cap, "always" answers, and the headless flags."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.budget import Budget
from agent.config import Config, LLMSettings
from agent.policy import Policy
from agent.protocol import ExecApproval, SetApprovalMode, SetYolo, Shutdown, ToolDecision, UserInput
from agent.tools.base import ApprovalSettings, SessionToolState, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.jobs import HfJobsTool
from agent.tools.router import ToolRouter
from tests.engine_support import collect_until, last_approval, make_session, of_type, priced_config
from tests.fakes import Call, Text, ToolCalls, Usage
from tests.test_headless_cli import run, server_env

GPU_2H = {"operation": "run", "script": "print(1)", "hardware_flavor": "a10g-large", "timeout": "2h"}


def test_reserve_refuses_what_does_not_fit_and_says_how_much_is_left():
    spent = [0.0]
    b = Budget(5.0, lambda: spent[0])
    assert b.reserve("a", 4.0) is None and b.left() == pytest.approx(1.0)
    assert b.reserve("b", 4.0) == "estimated $4.00 exceeds the $1.00 left of the $5.00 YOLO budget"
    assert "cannot be estimated" in b.reserve("c", None)
    spent[0] = 0.5  # LLM spend counts against the same cap
    assert b.left() == pytest.approx(0.5) and b.reserve("d", 0.6) is not None
    assert b.reserve("e", 9.0, force=True) is None and b.left() == 0.0  # a human's yes still counts
    assert b.reserve("free", 0.0) is None  # a cpu-basic sandbox fits even an exhausted budget
    assert not Budget(0.0).reached() and Budget(0.0, lambda: 0.01).reached()  # $0 cap: free work goes on
    b.release("a")
    b.release("e")
    assert b.left() == pytest.approx(4.5) and b.closed == {"a": None, "e": None}


def test_concurrent_reservations_never_overspend():
    b = Budget(10.0)
    start = threading.Barrier(40)
    won: list[str] = []

    def grab(i: int) -> None:
        start.wait()
        if b.reserve(f"t{i}", 1.0) is None:
            won.append(f"t{i}")

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 10 and b.committed() == pytest.approx(10.0)


def test_tracked_reservations_shrink_with_the_observed_cost_and_close_when_final():
    observed = {"cost": 0.0, "final": False}
    spent = [0.0]
    b = Budget(5.0, lambda: spent[0])
    b.reserve("job", 4.0)
    b.track("job", lambda: (observed["cost"], observed["final"]))
    observed["cost"] = spent[0] = 1.5  # the monitor's cost so far is part of the session's spend
    assert b.reserved() == pytest.approx(2.5) and b.committed() == pytest.approx(4.0)
    observed.update(cost=2.2, final=True)
    spent[0] = 2.2
    assert b.reserved() == 0 and b.committed() == pytest.approx(2.2) and b.closed == {"job": 2.2}
    b.reserve("unknown-price", 1.0)
    b.track("unknown-price", lambda: (None, False))
    assert b.reserved() == 1.0  # no price: the whole estimate stays, never counted as $0


JOB_FLAVORS = {"t4-small": 0.6, "a10g-small": 1.0, "a10g-large": 2.0, "cpu-basic": 0.05}


class RecordedJobs(HfJobsTool):
    """The real hf_jobs gates and estimates; running only records (and fails when told)."""

    def __init__(self, ran: list[str]):
        self.backend_name = "hf"
        self.ran = ran

    async def run(self, params, ctx):
        await asyncio.sleep(0)  # let the other calls of the batch start: they run concurrently
        if params.script == "fail":
            return ToolResult("ERROR: the backend refused it", success=False)
        self.ran.append(ctx.tool_call_id)
        return ToolResult("launched")


@settings(max_examples=200, deadline=None, database=None)
@given(
    cap=st.sampled_from([0.0, 1.0, 2.5, 4.0, 10.0]),
    prior=st.sampled_from([0.0, 0.7, 3.0]),
    batches=st.lists(st.lists(st.tuples(st.sampled_from(sorted(JOB_FLAVORS)), st.booleans()), min_size=1, max_size=5),
                     min_size=1, max_size=4),
    on_the_spot=st.booleans(),
)
def test_concurrent_reservations_never_promise_past_the_cap(cap, prior, batches, on_the_spot):
    """Batches of billed calls run concurrently, decided as a batch by the engine's path or
    one by one on the spot by the router (a sub-agent's path): what they were promised
    never exceeds the cap, failures give theirs back, and what runs keeps its reservation."""
    ran: list[str] = []
    p = Policy(ApprovalSettings(mode="yolo"), cap_usd=cap, spent=lambda: prior, persist=False)
    p.observers["hf_jobs"] = lambda call_id, since: (lambda: (0.0, False))  # billed until the session ends
    router = ToolRouter([RecordedJobs(ran)], policy=p)
    estimates: dict[str, float] = {}

    async def scenario():
        n = 0
        for batch in batches:
            calls = []
            for flavor, fails in batch:
                n += 1
                args = {"operation": "run", "script": "fail" if fails else "ok", "hardware_flavor": flavor, "timeout": "1h"}
                call = router.parse(f"c{n}", "hf_jobs", json.dumps(args))
                estimates[call.id] = JOB_FLAVORS[flavor]
                calls.append(call)
            decisions = {} if on_the_spot else p.decide_batch(calls)
            await asyncio.gather(*(router.execute(c, ToolContext(
                session_id="t", cwd=Path("."), spill_dir=Path("/nonexistent"), state=SessionToolState(), tool_call_id=c.id),
                decisions.get(c.id)) for c in calls))

    asyncio.run(scenario())
    promised = sum(estimates[i] for i in ran)
    assert promised <= max(0.0, cap - prior) + 1e-9
    assert p.budget.committed() == pytest.approx(prior + promised)  # failures released, runners hold theirs


class SlowParams(ToolParams):
    outcome: str = "ok"


class Billed(Tool):
    """A costed tool whose outcome the test picks: ok, fail, raise or hang."""

    name = "hf_jobs"
    description = "billed"
    Params = SlowParams

    def approval_reason(self, params, settings):
        return "billed work"

    def estimate(self, params):
        return 2.0

    async def run(self, params, ctx):
        if params.outcome == "raise":
            raise RuntimeError("backend down")
        if params.outcome == "hang":
            await asyncio.sleep(30)
        return ToolResult("done", success=params.outcome == "ok")


async def test_parallel_calls_reserve_as_one_batch_and_failures_release():
    p = Policy(ApprovalSettings(mode="yolo"), cap_usd=5.0, persist=False)
    router = ToolRouter([Billed()], policy=p)
    calls = [router.parse(f"c{i}", "hf_jobs", json.dumps({"outcome": o})) for i, o in enumerate(["fail", "raise", "hang"])]
    decisions = p.decide_batch(calls)
    assert [d.verdict for d in decisions.values()] == ["allow", "allow", "ask"]
    assert "estimated $2.00 exceeds the $1.00 left" in decisions["c2"].reason
    ctx = ToolContext(session_id="t", cwd=Path("."), spill_dir=Path("/nonexistent"), state=SessionToolState())
    results = await asyncio.gather(*(router.execute(c, ctx, decisions[c.id]) for c in calls))
    assert [r.success for r in results] == [False, False, False]
    assert "backend down" in results[1].output and "needs the user's approval" in results[2].output
    assert p.budget.left() == 5.0 and p.budget.open_ids() == []  # both failures released theirs
    hang = router.parse("h1", "hf_jobs", '{"outcome": "hang"}')
    task = asyncio.ensure_future(router.execute(hang, ctx, p.decide(hang)))
    await asyncio.sleep(0.05)
    assert p.budget.left() == 3.0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert p.budget.left() == 5.0  # cancelled before it started anything billed
    never_started = p.decide(router.parse("n1", "hf_jobs", "{}"))
    assert p.budget.left() == 3.0
    p.discard(never_started)  # its task was cancelled before it ran
    assert p.budget.left() == 5.0
    ok = router.parse("k1", "hf_jobs", "{}")
    p.observers["hf_jobs"] = lambda call_id, since: (lambda: (0.5, False))  # it launched a job that bills
    assert (await router.execute(ok, ctx, p.decide(ok))).success and p.budget.left() == 3.5


# --------------------------------------------------------------------------- in a session


async def _start(session, text):
    sub = session.subscribe("t")
    session.start()
    session.submit(UserInput(text=text))
    return sub


async def test_an_over_budget_gpu_job_asks_with_the_budget_reason(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("g1", "hf_jobs", json.dumps(GPU_2H))]), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo", yolo_cap_usd=1.0)
    sub = await _start(s, "train")
    events = await collect_until(sub)
    item = last_approval(events).items[0]
    assert "estimated $4.00 exceeds the $1.00 left" in item.reason and item.estimated_cost_usd == 4.0
    assert item.suggested_rule is None  # "always" cannot lift a budget
    assert not of_type(events, "tool_state")  # nothing ran, no backend was asked
    s.submit(Shutdown())


def priced(cap: float | None = None) -> Config:
    return Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01),
                  model_prices={"openai/scripted-model": {"input_per_mtok": 1.0, "output_per_mtok": 0.0}},
                  **({"yolo_cap_usd": cap} if cap is not None else {}))


@pytest.mark.parametrize("raise_it", [True, False])
async def test_reaching_the_cap_pauses_before_the_next_model_call(llm_server, monkeypatch, tmp_path, raise_it):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo hi"}')], usage=Usage(1_000_000, 10)),
                      Text("finished", usage=Usage(100_000, 10)))
    s = make_session(llm_server, monkeypatch, tmp_path, config=priced(1.0), approval_mode="yolo")
    sub = await _start(s, "go")
    events = await collect_until(sub)
    item = last_approval(events).items[0]
    assert item.tool == "yolo_budget" and "$1.00 spent of the $1.00 cap" in item.reason
    assert item.arguments["new_cap_usd"] == 2.0 and len(llm_server.requests) == 1
    assert "hi" in of_type(events, "tool_output")[0].output  # the bash call ran before the pause
    decision = ToolDecision(tool_call_id=item.tool_call_id, approved=raise_it, edited_args={"new_cap_usd": 3.0})
    s.submit(ExecApproval(decisions=[decision]))
    events = await collect_until(sub)
    s.submit(Shutdown())
    done = events[-1]
    if raise_it:
        assert of_type(events, "settings_changed")[0].yolo_cap_usd == 3.0
        assert done.final_response == "finished" and done.receipt.budget_left_usd == pytest.approx(3.0 - 1.1)
    else:
        guard = of_type(events, "guard")[0]
        assert guard.kind == "budget" and guard.ends_turn and "Raise it with /yolo" in guard.message
        assert done.reason == "budget" and len(llm_server.requests) == 1


async def test_always_allow_and_always_deny_are_saved_and_applied(llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.script(
        ToolCalls([Call("a1", "bash", '{"command": "echo first"}'), Call("d1", "bash", '{"command": "ls -la"}')]),
        Text("one"),
        ToolCalls([Call("a2", "bash", '{"command": "echo second"}'), Call("d2", "bash", '{"command": "ls"}')]),
        Text("two"),
    )
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="ask")
    sub = await _start(s, "go")
    req = last_approval(await collect_until(sub))
    assert [i.suggested_rule.pattern for i in req.items] == ["echo first", "ls"]
    assert req.items[1].suggested_rule.label == 'bash commands starting with "ls"'
    s.submit(ExecApproval(decisions=[
        ToolDecision(tool_call_id="a1", approved=True, remember="project",
                     rule=req.items[0].suggested_rule.model_copy(update={"pattern": "echo"})),
        ToolDecision(tool_call_id="d1", approved=False, remember="user"),
    ]))
    events = await collect_until(sub)
    notes = [e.log for e in of_type(events, "tool_log")]
    assert 'Rule: always allow bash commands starting with "echo" (project rule) (saved for this project).' in notes
    s.submit(UserInput(text="again"))
    events = await collect_until(sub)
    s.submit(Shutdown())
    assert not of_type(events, "approval_required") and events[-1].final_response == "two"
    outputs = {e.tool_call_id: e.output for e in of_type(events, "tool_output")}
    assert "second" in outputs["a2"] and "always deny bash" in outputs["d2"] and "NOT executed" in outputs["d2"]
    raw = json.loads((mlintern_home / "config.json").read_text())
    assert raw["approval_rules"] == [{"effect": "deny", "tool": "bash", "pattern": "ls"}]
    assert list(raw["project_approval_rules"].values()) == [[{"effect": "allow", "tool": "bash", "pattern": "echo"}]]


async def test_mode_and_cap_ops_report_the_budget(llm_server, monkeypatch, tmp_path):
    s = make_session(llm_server, monkeypatch, tmp_path)
    sub = s.subscribe("t")
    s.start()
    s.submit(SetApprovalMode(mode="ask"))
    s.submit(SetYolo(enabled=True, cap_usd=2.5))
    events: list = []
    while len(of_type(events, "settings_changed")) < 2:
        events += await collect_until(sub, stop={"settings_changed"})
    s.submit(Shutdown())
    ask, yolo = of_type(events, "settings_changed")
    assert (ask.approval_mode, ask.yolo, ask.budget_left_usd) == ("ask", False, None)
    assert (yolo.approval_mode, yolo.yolo_cap_usd, yolo.budget_left_usd) == ("yolo", 2.5, 2.5)
    assert s.policy.mode == "yolo" and s.policy.budget.cap_usd == 2.5


async def test_unpriced_model_spend_makes_the_budget_an_upper_bound(llm_server, monkeypatch, tmp_path):
    """The scripted model has no price: after one call of it, receipts and settings say the
    budget left is not exact (front ends show "at most"), and yolo is still on."""
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo")
    sub = s.subscribe("t")
    s.start()
    llm_server.script(Text("hello"))
    s.submit(UserInput(text="hi"))
    done = (await collect_until(sub))[-1]
    assert done.receipt.unknown_cost_calls == 1
    assert (done.receipt.budget_left_usd, done.receipt.budget_exact) == (5.0, False)
    s.submit(SetYolo(enabled=True, cap_usd=3.0))
    changed = (await collect_until(sub, stop={"settings_changed"}))[-1]
    assert (changed.budget_left_usd, changed.budget_exact, changed.model_priced) == (3.0, False, False)
    s.submit(Shutdown())

    priced = make_session(llm_server, monkeypatch, tmp_path, config=priced_config())
    sub = priced.subscribe("t")
    priced.start()
    priced.submit(SetYolo(enabled=True, cap_usd=3.0))
    changed = (await collect_until(sub, stop={"settings_changed"}))[-1]
    assert (changed.budget_exact, changed.model_priced) == (True, True)
    priced.submit(Shutdown())


async def test_an_hf_job_keeps_its_reservation_until_its_cost_is_final(hub, llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.script_job(lines=[f"step {i}" for i in range(10)], line_delay=0.1)
    run_args = {"operation": "run", "script": "print('hi')\n", "hardware_flavor": "a10g-small", "timeout": "10m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(run_args))]), Text("Launched."))
    # a model with a known price: with unpriced model spend YOLO would ask instead (see below)
    free_model = Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01),
                        model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    s = make_session(llm_server, monkeypatch, tmp_path, config=free_model, approval_mode="yolo", yolo_cap_usd=1.0)
    s.jobs.first_lines_wait_s = 0.2
    sub = await _start(s, "train")
    done = (await collect_until(sub))[-1]
    # 10 minutes of a10g-small (the offline table's $1/h, or the emulator's price once refreshed)
    assert done.receipt.budget_left_usd <= 1.0 - 0.15  # the running job's reservation is held
    [key] = s.policy.budget.open_ids()
    ended = []
    while not ended:
        ended = [e for e in await collect_until(sub, stop={"job_update"}) if e.type == "job_update" and e.status == "COMPLETED"]
    assert s.policy.budget.open_ids() == [] and s.policy.budget.closed[key] == ended[0].cost_usd
    assert s.policy.budget.left() == pytest.approx(1.0 - ended[0].cost_usd)  # observed replaced the estimate
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


# --------------------------------------------------------------------------- headless


def _events(proc):
    from agent.protocol import parse_event

    return [parse_event(line) for line in proc.stdout.splitlines()]


def test_headless_gpu_job_needs_yolo_and_must_fit_the_budget(llm_server, mlintern_home):
    llm_server.script(ToolCalls([Call("g1", "hf_jobs", json.dumps(GPU_2H))]), Text("Not run."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--output-format", "stream-json"],
               mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    out = next(e for e in _events(proc) if e.type == "tool_output")
    assert "headless without --yolo" in out.output and "GPU job on a10g-large" in out.output
    assert "running" not in [e.state for e in _events(proc) if e.type == "tool_state"]

    llm_server.script(ToolCalls([Call("g2", "hf_jobs", json.dumps(GPU_2H))]), Text("Over budget."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--budget", "1", "--output-format", "json"],
               mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    tool_msg = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"][-1]
    assert "estimated $4.00 exceeds the $1.00 left" in tool_msg["content"] and "NOT executed" in tool_msg["content"]
    assert json.loads(proc.stdout)["receipt"]["budget_left_usd"] == 1.0
    assert not json.loads(proc.stdout)["spent"]["jobs"]


def test_headless_cpu_job_within_the_budget_runs(llm_server, mlintern_home):
    job = {"operation": "run", "script": "print('cheap and done')", "timeout": "10m"}
    llm_server.script(ToolCalls([Call("c1", "hf_jobs", json.dumps(job))]), Text("Ran."))
    proc = run(["-p", "train", "-m", "openai/scripted-model", "--yolo", "--budget", "1", "--output-format", "json"],
               mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [j["status"] for j in result["spent"]["jobs"].values()] == ["COMPLETED"]


def test_headless_stops_when_model_spend_reaches_the_budget(llm_server, mlintern_home):
    (mlintern_home / "config.json").write_text(json.dumps(
        {"model_prices": {"openai/scripted-model": {"input_per_mtok": 1.0, "output_per_mtok": 0.0}}}))
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo hi"}')], usage=Usage(600_000, 10)), Text("never"))
    proc = run(["-p", "go", "-m", "openai/scripted-model", "--yolo", "--budget", "0.5"], mlintern_home, server_env(llm_server))
    assert proc.returncode == 0, proc.stderr
    assert "YOLO budget reached: $0.60 spent of the $0.50 cap" in proc.stderr
    assert "Stopped: the YOLO budget is spent" in proc.stderr and "turn complete (budget)" in proc.stderr
    assert len(llm_server.requests) == 1


async def test_a_deny_rule_beats_a_human_approving_edited_arguments(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("e1", "bash", '{"command": "echo fine"}')]), Text("ok"))
    config = Config(llm=LLMSettings(max_attempts=2), approval_rules=[{"effect": "deny", "tool": "bash", "pattern": "rm"}])
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, approval_mode="ask")
    (s.cwd / "keep").write_text("x")
    sub = await _start(s, "go")
    await collect_until(sub)
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="e1", approved=True, edited_args={"command": "rm keep"})]))
    events = await collect_until(sub)
    s.submit(Shutdown())
    out = of_type(events, "tool_output")[0].output
    assert "denied by the user's rule: always deny bash commands starting with \"rm\" (user rule)" in out
    assert (s.cwd / "keep").exists() and "running" not in [e.state for e in of_type(events, "tool_state")]


async def test_switching_to_ask_mid_turn_applies_to_the_next_call(llm_server, monkeypatch, tmp_path):
    """The mode changes while the model is still answering: the call it then makes is gated
    by the new mode, not the one the turn started with."""
    # the call streams for ~0.6 s (six pieces 0.1 s apart): the switch below lands within ~10 ms
    llm_server.script(ToolCalls([Call("m1", "bash", '{"command": "echo hi"}')], delay=0.1), Text("done"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="auto")
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="go"))
    while not s.busy:
        await asyncio.sleep(0.01)
    s.submit(SetApprovalMode(mode="ask"))
    assert s.policy.mode == "ask"  # at once, not after the turn
    events = await collect_until(sub)
    assert events[-1].type == "approval_required" and events[-1].items[0].tool == "bash"
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)
