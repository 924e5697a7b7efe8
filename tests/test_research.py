"""The research sub-agent: its own history and tools, the session's one policy, tagged events.

Driven by the scripted loopback model: replies are chosen by which agent asks (the
sub-agent's requests carry its own system prompt), so the tests say which agent did what.
"""

from __future__ import annotations

import asyncio
import json

from agent.config import Config, LLMSettings
from agent.protocol import ExecApproval, ToolDecision, UserInput, parse_event
from agent.research import RESEARCH_SYSTEM, RESEARCH_TOOLS, WRAP_UP_NOTE
from tests.engine_support import collect_until, make_session
from tests.fakes import Call, Text, ToolCalls
from tests.test_headless_cli import run, server_env

RESEARCH_MARK = RESEARCH_SYSTEM.splitlines()[0]


def is_research(body: dict) -> bool:
    return RESEARCH_MARK in str(body["messages"][0].get("content"))


def by_agent(main: list, research: list):
    """One reply per request: the next of the asking agent's own script."""
    main, research = list(main), list(research)

    def reply(body: dict):
        queue = research if is_research(body) else main
        assert queue, f"no scripted reply left for the {'research' if queue is research else 'main'} agent"
        item = queue.pop(0)
        return item(body) if callable(item) else item

    return reply


def research_call(call_id: str, task: str) -> Call:
    return Call(call_id, "research", json.dumps({"task": task}))


def test_headless_research_runs_three_tools_and_the_gated_one_is_refused(llm_server, mlintern_home, tmp_path):
    """The sub-agent calls read (runs), hf_papers (runs, fails offline with a sentence) and an
    hf_repo_files upload (gated by the policy: refused headless like a main-agent call). Its
    events are in stream-json, tagged with the research call's id."""
    work = tmp_path / "proj"
    work.mkdir()
    (work / "notes.md").write_text("baseline: lr 2e-5 gave 61.2 on GSM8K\n")
    seen: list[dict] = []

    def final_report(body: dict) -> Text:
        seen.append(body)
        return Text("## Report\n| rank | recipe |\n|---|---|\n| 1 | SFT lr 2e-5 (notes.md) |")

    sub_calls = ToolCalls([
        Call("r1", "read", json.dumps({"path": "notes.md"})),
        Call("r2", "hf_papers", json.dumps({"operation": "search", "query": "gsm8k sft"})),
        Call("r3", "hf_repo_files", json.dumps({"operation": "upload", "repo_id": "ada/x", "path": "a.txt",
                                                 "content": "hi"})),
    ])
    llm_server.script(*[by_agent(
        main=[ToolCalls([research_call("m1", "best SFT recipe for GSM8K")]), Text("Plan ready.")],
        research=[sub_calls, final_report],
    )] * 4)
    proc = run(["-p", "research it", "-m", "openai/scripted-model", "--output-format", "stream-json"],
               mlintern_home, server_env(llm_server), cwd=work)
    assert proc.returncode == 0, proc.stderr
    events = [parse_event(line) for line in proc.stdout.splitlines()]
    tagged = [e for e in events if getattr(e, "parent_call_id", None) == "m1"]
    calls = [e.tool for e in tagged if e.type == "tool_call"]
    assert calls == ["read", "hf_papers", "hf_repo_files"]
    approvals = [e for e in tagged if e.type == "approval_required"]
    assert approvals and approvals[0].items[0].tool == "hf_repo_files"
    assert "research agent" in approvals[0].items[0].reason
    # the sub-agent's calls get ids of their own, unique per research run: <parent>~r<n>
    outputs = {e.tool_call_id: e for e in tagged if e.type == "tool_output"}
    assert set(outputs) == {"m1~r1", "m1~r2"}  # the refused upload never ran
    assert "61.2" in outputs["m1~r1"].output and outputs["m1~r1"].success
    assert not outputs["m1~r2"].success  # offline: a sentence, not a crash
    # what the sub-agent's model read back: the refusal, the file, the offline error
    tool_msgs = {m["tool_call_id"]: m["content"] for m in seen[0]["messages"] if m["role"] == "tool"}
    assert "rejected" in tool_msgs["m1~r3"] and "NOT executed" in tool_msgs["m1~r3"]
    assert "61.2" in tool_msgs["m1~r1"]
    # the sub-agent's model calls are tagged and counted as research
    research_llm = [e for e in tagged if e.type == "llm_call"]
    assert len(research_llm) == 2 and {e.kind for e in research_llm} == {"research"}
    main_out = next(e for e in events if e.type == "tool_output" and e.tool_call_id == "m1")
    assert "## Report" in main_out.output and "[research: 2 model call(s), 3 tool call(s)" in main_out.output
    receipt = next(e for e in events if e.type == "turn_complete").receipt
    assert receipt.llm_calls == 4  # two main + two research calls in the turn's receipt
    assert receipt.research_llm_calls == 2


async def test_the_users_deny_rule_answers_the_sub_agent_too(llm_server, monkeypatch, tmp_path):
    """The session's rules decide the sub-agent's calls: a deny rule stops one read, the other
    runs, and both calls run concurrently in one batch."""
    config = Config(approval_mode="ask", llm=LLMSettings(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02))
    session = make_session(llm_server, monkeypatch, tmp_path, config=config)
    (session.cwd / "data.txt").write_text("rows: 1200\n")
    # read is never gated: a deny rule on it shows the policy answering the sub-agent too
    from agent.protocol import ApprovalRule

    session.policy.rules.append(ApprovalRule(effect="deny", tool="read", pattern="*secret*"))
    llm_server.script(*[by_agent(
        main=[ToolCalls([research_call("m1", "size of the data")]), Text("ok")],
        research=[ToolCalls([Call("r1", "read", json.dumps({"path": "data.txt"})),
                             Call("r2", "read", json.dumps({"path": "secret.txt"}))]),
                  Text("1200 rows.")],
    )] * 4)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    tagged = [e for e in events if getattr(e, "parent_call_id", None) == "m1"]
    states = {(e.tool_call_id, e.state) for e in tagged if e.type == "tool_state"}
    assert ("m1~r2", "rejected") in states and ("m1~r1", "completed") in states
    assert "1200 rows." in next(e for e in events if e.type == "tool_output" and e.tool_call_id == "m1").output
    session.submit(__import__("agent.protocol", fromlist=["Shutdown"]).Shutdown())
    await asyncio.wait_for(session._runner, 5)


def test_research_tool_subset_is_read_only():
    assert "bash" not in RESEARCH_TOOLS and "write" not in RESEARCH_TOOLS and "hf_jobs" not in RESEARCH_TOOLS
    assert "research" not in RESEARCH_TOOLS  # no research within research
    assert WRAP_UP_NOTE


async def test_a_sub_agents_gated_upload_waits_for_the_user_and_runs_with_the_yes(llm_server, monkeypatch, tmp_path, hub):
    """auto mode: the sub-agent's hf_repo_files upload is gated. The question reaches the
    bus as an approval_required tagged with the research call (with a Hub write review); the
    answer goes through submit() while the turn still runs, and the upload reaches the Hub
    emulator's commit route. A second, rejected upload never does."""
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_repo("ada/notes", files={"README.md": "# notes\n"})
    session = make_session(llm_server, monkeypatch, tmp_path)
    upload = {"operation": "upload", "repo_id": "ada/notes", "path": "findings.md", "content": "lr 2e-5\n"}
    other = {**upload, "path": "secret.md"}
    llm_server.script(*[by_agent(
        main=[ToolCalls([research_call("m1", "collect findings")]), Text("ok")],
        research=[ToolCalls([Call("u1", "hf_repo_files", json.dumps(upload)),
                             Call("u2", "hf_repo_files", json.dumps(other))]),
                  Text("Saved the findings.")],
    )] * 4)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"approval_required", "turn_complete", "error"})
    ask = events[-1]
    assert ask.type == "approval_required" and ask.parent_call_id == "m1"
    assert [i.tool_call_id for i in ask.items] == ["m1~r1", "m1~r2"]
    review = ask.items[0].review
    assert review is not None and review.repo_id == "ada/notes" and [f.path for f in review.files] == ["findings.md"]
    assert session.busy  # the main turn is still running: the answer cannot wait in the op queue
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="m1~r1", approved=True),
                                           ToolDecision(tool_call_id="m1~r2", approved=False, feedback="not that one")]))
    events += await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete", events[-1]
    states = {(e.tool_call_id, e.state) for e in events if e.type == "tool_state" and e.parent_call_id == "m1"}
    assert {("m1~r1", "approved"), ("m1~r1", "completed"), ("m1~r2", "rejected")} <= states
    assert "findings.md" in hub.repo_files("ada/notes", "model")
    assert "secret.md" not in hub.repo_files("ada/notes", "model")
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_two_research_calls_in_one_batch_run_at_the_same_time(llm_server, monkeypatch, tmp_path):
    """Each sub-agent's first reply waits until the other sub-agent has asked too: run one
    after the other, the first would wait alone and the barrier would break."""
    import threading

    barrier = threading.Barrier(2, timeout=10)

    def together(task_word: str):
        def reply(body: dict) -> Text:
            barrier.wait()  # raises BrokenBarrierError (a 500 for that request) if alone
            return Text(f"report on {task_word}")
        return reply

    def research_reply(body: dict):
        task = body["messages"][1]["content"]
        return together("alpha" if "alpha" in task else "beta")(body)

    main = iter([ToolCalls([research_call("m1", "alpha question"), research_call("m2", "beta question")]),
                 Text("both done")])
    llm_server.script(*[lambda body: research_reply(body) if is_research(body) else next(main)] * 4)
    session = make_session(llm_server, monkeypatch, tmp_path)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    outputs = {e.tool_call_id: e.output for e in events if e.type == "tool_output" and e.parent_call_id is None}
    assert "report on alpha" in outputs["m1"] and "report on beta" in outputs["m2"]
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_interrupt_stops_the_sub_agent_mid_request(llm_server, monkeypatch, tmp_path):
    from tests.fakes import Hang

    llm_server.script(*[by_agent(main=[ToolCalls([research_call("m1", "slow question")])],
                                 research=[Hang(seconds=30)])] * 2)
    session = make_session(llm_server, monkeypatch, tmp_path)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    await asyncio.wait_for(asyncio.to_thread(llm_server.wait_for_request, 2, 10), 15)  # the sub-agent is waiting
    session.interrupt()
    events = await collect_until(sub, stop={"interrupted", "turn_complete", "error"}, timeout=10)
    assert events[-1].type == "interrupted"
    assert ("m1", "cancelled") in {(e.tool_call_id, e.state) for e in events if e.type == "tool_state"}
    # the research call has its one result in the history: the model is told it was stopped
    results = [m for m in session.engine.history.messages() if m.get("role") == "tool" and m.get("tool_call_id") == "m1"]
    assert len(results) == 1 and "nterrupted" in results[0]["content"]
    assert len(llm_server.requests) == 2  # nothing more was asked after the interrupt
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_a_research_model_that_cannot_work_is_said_and_the_main_model_used(llm_server, monkeypatch, tmp_path):
    config = Config(research_model="not a model", llm=LLMSettings(max_attempts=1))
    session = make_session(llm_server, monkeypatch, tmp_path, config=config)
    sub = session.subscribe("test")
    session.start()
    events = await collect_until(sub, stop={"tool_log"}, timeout=10)
    assert "research_model 'not a model'" in events[-1].log and "main model" in events[-1].log
    assert session.research.model().id == session.engine.model.id
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_the_research_model_setting_is_used_by_the_sub_agent(llm_server, monkeypatch, tmp_path):
    config = Config(research_model="openai/cheap-model", llm=LLMSettings(max_attempts=1))
    llm_server.script(*[by_agent(main=[ToolCalls([research_call("m1", "quick question")]), Text("ok")],
                                 research=[Text("cheap report")])] * 3)
    session = make_session(llm_server, monkeypatch, tmp_path, config=config)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    models = [(e.kind, e.model) for e in events if e.type == "llm_call"]
    outputs = [e.output for e in events if e.type == "tool_output"]
    assert models == [("main", "openai/scripted-model"), ("research", "openai/cheap-model"),
                      ("main", "openai/scripted-model")], outputs
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def _shutdown(session) -> None:
    from agent.protocol import Shutdown

    session.submit(Shutdown())
    await asyncio.wait_for(session._runner, 5)


async def test_the_users_edit_of_a_research_call_is_what_runs_and_always_saves_a_rule(llm_server, monkeypatch,
                                                                                      tmp_path, hub):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    hub.add_repo("ada/notes", files={"README.md": "# notes\n"})
    hub.add_repo("ada/private", files={"README.md": "# private\n"})
    session = make_session(llm_server, monkeypatch, tmp_path)
    session.policy.persist = False
    upload = {"operation": "upload", "repo_id": "ada/notes", "path": "findings.md", "content": "SECRET\n"}
    seen: list[dict] = []

    def report(body: dict) -> Text:
        seen.append(body)
        return Text("done")

    llm_server.script(*[by_agent(main=[ToolCalls([research_call("m1", "save the findings")]), Text("ok")],
                                 research=[ToolCalls([Call("0", "hf_repo_files", json.dumps(upload))]), report])] * 4)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    ask = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}))[-1]
    assert ask.type == "approval_required" and ask.items[0].suggested_rule is not None
    edited = {**upload, "repo_id": "ada/private", "content": "redacted\n"}
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=ask.items[0].tool_call_id, approved=True,
                                                        edited_args=edited, remember="user")]))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete"
    outputs = [e.output for e in events if e.type == "tool_output"]
    assert hub.repo_files("ada/private", "model").get("findings.md") == b"redacted\n", outputs
    assert "findings.md" not in hub.repo_files("ada/notes", "model")
    # the sub-agent's history shows the call as it ran, with a note
    call = next(c for m in seen[0]["messages"] for c in m.get("tool_calls") or [])
    assert json.loads(call["function"]["arguments"])["repo_id"] == "ada/private"
    assert any("edited the arguments" in (m.get("content") or "") for m in seen[0]["messages"] if m["role"] == "tool")
    assert any(r.effect == "allow" and r.tool == "hf_repo_files" for r in session.policy.rules)
    await _shutdown(session)


async def test_two_sub_agents_with_the_same_call_ids_each_get_their_own_answer(llm_server, monkeypatch, tmp_path):
    """Both sub-agents' models number their calls "0": their questions still have distinct
    ids, each answer reaches its own sub-agent, and nothing hangs or leaks to the main turn."""
    config = Config(approval_mode="ask", llm=LLMSettings(max_attempts=2, backoff_base_s=0.01, backoff_max_s=0.02))
    session = make_session(llm_server, monkeypatch, tmp_path, config=config)
    outside = tmp_path / "outside.txt"
    outside.write_text("elsewhere\n")
    read_outside = ToolCalls([Call("0", "read", json.dumps({"path": str(outside)}))])
    main = iter([ToolCalls([research_call("m1", "alpha"), research_call("m2", "beta")]), Text("both done")])
    research = {"alpha": iter([read_outside, Text("alpha report")]), "beta": iter([read_outside, Text("beta report")])}

    def reply(body: dict):
        if not is_research(body):
            return next(main)
        return next(research["alpha" if "alpha" in body["messages"][1]["content"] else "beta"])

    llm_server.script(*[reply] * 6)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    asked: list = []
    events: list = []
    while len(asked) < 2:
        got = await collect_until(sub, stop={"approval_required", "turn_complete", "error"})
        events += got
        assert got[-1].type == "approval_required", got[-1]
        asked.append(got[-1])
    ids = [a.items[0].tool_call_id for a in asked]
    assert len(set(ids)) == 2 and {a.parent_call_id for a in asked} == {"m1", "m2"}
    assert all("outside the working directory" in a.items[0].reason for a in asked)
    # answer the second question first: yes for m2's read, no for m1's
    by_parent = {a.parent_call_id: a.items[0].tool_call_id for a in asked}
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=by_parent["m2"], approved=True)]))
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=by_parent["m1"], approved=False)]))
    events += await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete", events[-1]
    outputs = {e.tool_call_id: e for e in events if e.type == "tool_output"}
    assert outputs[by_parent["m2"]].success and "elsewhere" in outputs[by_parent["m2"]].output
    assert by_parent["m1"] not in outputs  # refused: never ran
    # a late answer for a finished sub-agent's call is dropped, never queued for the main turn
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=by_parent["m1"], approved=True)]))
    assert session._queue.empty()
    await _shutdown(session)


async def test_yolo_budget_stops_the_sub_agent_before_its_next_call(llm_server, monkeypatch, tmp_path):
    from tests.fakes.openai_server import Usage as WireUsage

    config = Config(approval_mode="yolo", yolo_cap_usd=0.01, llm=LLMSettings(max_attempts=1),
                    model_prices={"openai/scripted-model": {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}})
    (tmp_path / "work").mkdir(exist_ok=True)
    (tmp_path / "work" / "a.txt").write_text("a\n")
    expensive = WireUsage(prompt_tokens=1000, completion_tokens=100)  # $1.10 a call at these prices
    looping = ToolCalls([Call("x", "read", json.dumps({"path": "a.txt"}))], usage=expensive)
    cheap = WireUsage(prompt_tokens=1, completion_tokens=1)
    llm_server.script(*[by_agent(main=[ToolCalls([research_call("m1", "spend it")], usage=cheap), Text("stopped")],
                                 research=[looping] * 5)] * 8)
    session = make_session(llm_server, monkeypatch, tmp_path, config=config)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error", "approval_required"})
    research_calls = [e for e in events if e.type == "llm_call" and e.kind == "research"]
    assert len(research_calls) == 1  # the first call spent the cap: no second one
    out = next(e for e in events if e.type == "tool_output" and e.tool_call_id == "m1")
    assert not out.success and "YOLO budget is spent" in out.output
    await _shutdown(session)


async def test_the_sub_agent_asks_before_fetching_from_a_private_address(llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path)
    fetch = ToolCalls([Call("0", "fetch_url", json.dumps({"url": "http://169.254.169.254/latest/meta-data/"}))])
    llm_server.script(*[by_agent(main=[ToolCalls([research_call("m1", "look around")]), Text("ok")],
                                 research=[fetch, Text("nothing")])] * 4)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    ask = (await collect_until(sub, stop={"approval_required", "turn_complete", "error"}))[-1]
    assert ask.type == "approval_required" and "private address" in ask.items[0].reason
    session.submit(ExecApproval(decisions=[ToolDecision(tool_call_id=ask.items[0].tool_call_id, approved=False)]))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete"
    await _shutdown(session)


async def test_a_refused_context_is_sent_again_shrunk(llm_server, monkeypatch, tmp_path):
    """The provider refuses the sub-agent's context: its final request carries every result cut
    to its head (a new message each, so what the client encoded before is not reused)."""
    from tests.fakes import HTTPError

    session = make_session(llm_server, monkeypatch, tmp_path)
    (tmp_path / "work" / "notes.txt").write_text("a long line of notes\n" * 400)
    seen: list[dict] = []

    def final(body: dict):
        seen.append(body)
        return Text("short report")

    llm_server.script(*[by_agent(
        main=[ToolCalls([research_call("m1", "read the notes")]), Text("done")],
        research=[ToolCalls([Call("r1", "read", json.dumps({"path": "notes.txt"}))]),
                  HTTPError(400, "This model's maximum context length is 8192 tokens.", code="context_length_exceeded"),
                  final])] * 5)
    sub = session.subscribe("test")
    session.start()
    session.submit(UserInput(text="go"))
    events = await collect_until(sub, stop={"turn_complete", "error"})
    assert events[-1].type == "turn_complete"
    results = [m for m in seen[0]["messages"] if m.get("role") == "tool"]
    assert len(results) == 1 and results[0]["content"].endswith("[... cut to fit the context window]")
    assert len(results[0]["content"]) < 1600
    await _shutdown(session)
