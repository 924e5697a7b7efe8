"""Holes found reviewing issue 5's approval policy, each pinned by a test: ways a gated call
could have run without a human, a rule or a YOLO decision within budget, and ways the
budget could have been promised past what is known to be spent."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import pytest

from agent.budget import Budget
from agent.config import Config, LLMSettings
from agent.policy import Policy
from agent.protocol import ApprovalRule, Interrupt, Shutdown, UserInput
from agent.rules import command_matches
from agent.tools import default_tools
from agent.tools.base import ApprovalSettings, SessionToolState, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.jobs import HfJobsTool
from agent.tools.router import ToolRouter
from tests.engine_support import collect_until, last_approval, make_session, of_type
from tests.fakes import Call, Text, ToolCalls

H200_HALF_SECOND = {"operation": "run", "script": "x", "hardware_flavor": "h200", "timeout": "0.5s"}


def ctx(cwd: Path = Path("/srv/project"), call_id: str = "c") -> ToolContext:
    return ToolContext(session_id="t", cwd=cwd, spill_dir=Path("/nonexistent-spill"), state=SessionToolState(),
                       tool_call_id=call_id)


class Ran:
    """Tools that only record that they ran."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def tools(self, base: list[Tool] | None = None) -> list[Tool]:
        out = []
        for tool in base or default_tools(sandbox=True):
            async def run(_self, params, c, _ran=self.calls):
                _ran.append(c.tool_call_id)
                return ToolResult("ok")
            out.append(type(type(tool).__name__, (type(tool),), {"run": run})())
        return out


def policy(mode: str = "auto", cap: float | None = 5.0, cwd: Path = Path("/srv/project"), **kw) -> Policy:
    unpriced = kw.pop("unpriced", lambda: 0)
    rules = kw.pop("rules", ())
    return Policy(ApprovalSettings(mode=mode, cwd=cwd, **kw), cap_usd=cap, rules=rules, persist=False,
                  unpriced=unpriced)


# --------------------------------------------------------------------------- the router


async def test_a_router_without_a_policy_runs_nothing_unless_built_ungoverned_on_purpose():
    ran = Ran()
    bare = ToolRouter(ran.tools())
    call = bare.parse("b1", "bash", '{"command": "echo hi"}')
    out = await bare.execute(call, ctx(call_id="b1"))
    assert not out.success and "has no approval policy" in out.output and ran.calls == []
    harness = ToolRouter(ran.tools(), ungoverned=True)  # a test playing engine and user says so
    assert (await harness.execute(harness.parse("b2", "bash", '{"command": "x"}'), ctx(call_id="b2"))).success
    assert ran.calls == ["b2"]
    with pytest.raises(ValueError, match="not both"):
        ToolRouter([], policy=policy(), ungoverned=True)


async def test_a_decision_is_void_once_the_parsed_params_change():
    ran = Ran()
    p = policy("auto")
    router = ToolRouter(ran.tools(), policy=p)
    call = router.parse("g1", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "t4-small"}))
    approved = p.approve(call)
    call.params = call.params.model_copy(update={"hardware_flavor": "h200"})  # arguments untouched, params swapped
    out = await router.execute(call, ctx(call_id="g1"), approved)
    assert "no approval decision for these exact arguments" in out.output and ran.calls == []


async def test_a_call_parsed_elsewhere_does_not_run_under_this_routers_name():
    ran = Ran()
    router = ToolRouter(ran.tools(), policy=policy("auto"))
    other = ToolRouter(Ran().tools(), ungoverned=True)
    foreign = other.parse("r1", "read", '{"path": "x"}')  # a harmless name, another router's tool object
    out = await router.execute(foreign, ctx(call_id="r1"))
    assert "not parsed by this router" in out.output and ran.calls == []


async def test_calls_sharing_an_id_are_all_denied_and_reserve_nothing():
    ran = Ran()
    p = policy("yolo", cap=100.0)
    router = ToolRouter(ran.tools(), policy=p)
    cheap = router.parse("dup", "read", '{"path": "notes.txt"}')
    gpu = router.parse("dup", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "a10g-large"}))
    decisions = p.decide_batch([gpu, cheap])
    assert decisions["dup"].verdict == "deny" and "sharing the id 'dup'" in decisions["dup"].reason
    assert p.budget.open_ids() == [] and p.budget.left() == 100.0
    for call in (gpu, cheap):  # whichever call brings the surviving decision, nothing runs
        assert not (await router.execute(call, ctx(call_id="dup"), decisions["dup"])).success
    assert ran.calls == []


# --------------------------------------------------------------------------- ask mode


def local_jobs_router(backend: str | None) -> ToolRouter:
    tools = default_tools()
    for tool in tools:
        if isinstance(tool, HfJobsTool):
            tool.backend_name = backend
    return ToolRouter(tools, ungoverned=True)


@pytest.mark.parametrize("backend,ask_verdict", [("local", "ask"), (None, "ask"), ("hf", "allow")])
def test_ask_mode_asks_before_a_local_job_runs_code_here(backend, ask_verdict):
    router = local_jobs_router(backend)
    job = router.parse("j", "hf_jobs", json.dumps({"operation": "run", "script": "import os; os.remove('x')"}))
    d = policy("ask", confirm_cpu_jobs=False).decide(job)
    assert d.verdict == ask_verdict, d.reason
    if ask_verdict == "ask":
        assert "runs its code on this machine" in d.reason and d.suggested_rule is not None
    assert policy("auto", confirm_cpu_jobs=False).decide(job).verdict == "allow"  # auto: the reference's rule


def test_ask_mode_sees_through_dotdot_symlinks_absolute_and_home_paths(tmp_path):
    project, outside = tmp_path / "project", tmp_path / "outside"
    (project / "src").mkdir(parents=True)
    outside.mkdir()
    (project / "link").symlink_to(outside, target_is_directory=True)
    (project / "src" / "file-link").symlink_to(outside / "secret.txt")
    router = ToolRouter(default_tools(), ungoverned=True)
    p = policy("ask", cwd=project)

    def verdict(tool: str, path: str) -> str:
        args = {"path": path, "content": "x"} if tool == "write" else {"path": path, "old_str": "a", "new_str": "b"}
        return p.decide(router.parse("w", tool, json.dumps(args))).verdict

    for tool in ("write", "edit"):
        assert verdict(tool, "src/a.py") == "allow"
        assert verdict(tool, str(project / "src" / "a.py")) == "allow"
        assert verdict(tool, "src/../../outside/a.py") == "ask"
        assert verdict(tool, "link/a.py") == "ask"  # a directory symlink leading out
        assert verdict(tool, "src/file-link") == "ask"  # a file symlink leading out
        assert verdict(tool, str(outside / "a.py")) == "ask"
        assert verdict(tool, "~/a.py") == "ask"
    assert policy("auto", cwd=project).decide(router.parse("w", "write", json.dumps(
        {"path": "link/a.py", "content": "x"}))).verdict == "allow"  # auto mode: the reference's gates only


# --------------------------------------------------------------------------- rules


COMPOUNDS = [
    "git status; rm -rf /",
    "git status\nrm -rf /",
    "git status && rm -rf /",
    "git status || rm -rf /",
    "git status & rm -rf /",
    "git status | sh",
    "git status `rm -rf /`",
    "git status $(rm -rf /)",
    "git status > ~/.bashrc",
    "git status <(rm -rf /)",
    "git status 'unbalanced",
]


@pytest.mark.parametrize("command", COMPOUNDS)
def test_an_allowed_prefix_never_vouches_for_a_compound_command(command):
    assert command_matches("allow", command, "git status") is False
    allow = [ApprovalRule(effect="allow", tool="bash", pattern="git status")]
    router = ToolRouter(default_tools(), ungoverned=True)
    d = policy("ask", rules=allow).decide(router.parse("b", "bash", json.dumps({"command": command})))
    assert d.verdict == "ask" and d.source == ""
    assert policy("ask", rules=allow).decide(router.parse("b", "bash", '{"command": "git status -s"}')).verdict == "allow"


@pytest.mark.parametrize("command,hit", [
    ("/bin/rm -rf build", True),
    ("bash -c 'rm -rf build'", True),
    ("sudo sh -c \"cd / && rm -rf build\"", True),
    ("python -c \"import os; os.system('rm -rf build')\"", True),
    ("eval rm -rf build", True),
    ("find . -name '*.o' -exec rm {} +", True),
    ("/usr/bin/env rm x", True),
    ("if true; then rm x; fi", True),
    ("timeout 5 rm x", True),
    ("nice -n 10 rm x", True),
    ("echo $(rm x)", True),
    ("git commit -m \"rm old files\"", False),  # words in a message are not a command
    ("grep -r rm .", False),
    ("echo firm", False),
    ("bash -c rm", True),
    ("grep -e rm notes.txt", False),  # grep's -e is a pattern, not code
])
def test_a_deny_rule_finds_the_command_behind_paths_wrappers_and_nested_shells(command, hit):
    assert command_matches("deny", command, "rm") is hit


def test_a_deny_rule_on_a_remote_path_is_not_dodged_with_dotdot():
    router = ToolRouter(default_tools(sandbox=True), ungoverned=True)
    deny = [ApprovalRule(effect="deny", tool="sandbox_write", pattern="/etc/*")]
    for path in ("/app/../etc/passwd", "//etc/passwd", "/app/./../../etc/x", "../etc/passwd"):
        call = router.parse("s", "sandbox_write", json.dumps({"path": path, "content": ""}))
        assert policy("yolo", rules=deny).decide(call).verdict == "deny", path
    from agent.rules import REMOTE_WORKDIR
    from agent.sandbox.client import DEFAULT_WORKDIR

    assert REMOTE_WORKDIR == DEFAULT_WORKDIR  # relative paths start where the sandbox starts them
    fine = router.parse("s", "sandbox_write", json.dumps({"path": "data/etc.txt", "content": ""}))
    assert policy("yolo", rules=deny).decide(fine).verdict == "allow"


@pytest.mark.parametrize("text,message", [
    ("{ not json", "cannot be read as JSON"),
    (json.dumps({"approval_rules": "bash"}), "approval_rules in the config file must be a list"),
    (json.dumps({"project_approval_rules": ["x"]}), "project_approval_rules in the config file must map"),
])
def test_a_rule_is_never_saved_over_a_broken_config_and_still_applies(mlintern_home, tmp_path, text, message):
    path = mlintern_home / "config.json"
    path.write_text(text)
    p = Policy(ApprovalSettings(mode="ask", cwd=tmp_path), cap_usd=5.0)
    scope = "project" if "project" in text else "user"
    kept, error = p.add_rule(ApprovalRule(effect="allow", tool="bash", pattern="pytest"), scope)
    assert error is not None and message in error and kept.scope == scope
    assert path.read_text() == text  # nothing the user wrote is lost
    router = ToolRouter(default_tools(), ungoverned=True)
    assert p.decide(router.parse("b", "bash", '{"command": "pytest -q"}')).verdict == "allow"  # this session


# --------------------------------------------------------------------------- budget


def test_a_job_whose_timeout_rounds_to_zero_is_not_a_free_job():
    router = local_jobs_router("hf")
    job = router.parse("j", "hf_jobs", json.dumps(H200_HALF_SECOND))
    assert router.estimate(job) is None  # a sub-second timeout is no limit a job keeps: not understood
    d = policy("yolo", cap=0.0).decide(job)  # "$0" would fit even an empty budget, and run 30 min on the Hub's default
    assert d.verdict == "ask" and "cannot be estimated" in d.reason
    local = local_jobs_router("local")
    cpu = local.parse("j", "hf_jobs", json.dumps({**H200_HALF_SECOND, "hardware_flavor": "cpu-basic"}))
    assert policy("yolo", cap=0.0).decide(cpu).verdict == "allow"  # this machine's CPU is $0 however long


def test_reservations_stay_atomic_when_threads_interleave_inside_reserve():
    """The price counters are slow here and yield the GIL between reading the headroom and
    recording the reservation: without the lock every thread would see the same headroom
    and the cap would be promised many times over."""

    def slow(value):
        def read():
            time.sleep(0.002)
            return value
        return read

    b = Budget(5.0, slow(0.0), slow(0))
    start = threading.Barrier(24)
    won: list[int] = []

    def grab(i: int) -> None:
        start.wait()
        if b.reserve(f"t{i}", 1.0) is None:
            won.append(i)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 5 and b.committed() == pytest.approx(5.0)


def test_unpriced_spend_makes_the_budget_an_upper_bound_and_costed_calls_ask():
    unknown = [0]
    p = policy("yolo", cap=5.0, unpriced=lambda: unknown[0])
    router = local_jobs_router("hf")
    gpu = router.parse("g", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "a10g-large",
                                                   "timeout": "1h"}))
    assert p.decide(gpu).verdict == "allow" and p.budget_exact() and p.budget_note() == ""
    p.budget.release(p.budget.open_ids()[0])
    unknown[0] = 2  # two model calls whose price nobody knows
    d = p.decide(gpu)
    assert d.verdict == "ask" and d.reservation is None
    assert "estimated $2.00, but 2 of this session's model calls or jobs have no known price" in d.reason
    assert "model_prices" in d.reason
    assert not p.budget_exact() and "no known price" in p.budget_note() and p.budget_left() == 5.0  # at most
    too_big = router.parse("h", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "a100x8",
                                                       "timeout": "1h"}))
    assert "exceeds the $5.00 left" in p.decide(too_big).reason  # what is known to be too much says so first
    free = local_jobs_router("local").parse("f", "hf_jobs", json.dumps({"operation": "run", "script": "x"}))
    assert p.decide(free).verdict == "allow"  # $0 fits whatever was spent
    upload = ToolRouter([_repo_files()], ungoverned=True).parse("u", "hf_repo_files", '{"operation": "upload"}')
    assert p.decide(upload).verdict == "allow"  # gated but not billed: YOLO still approves it
    assert p.approve(gpu).allowed  # a human may always say yes


class RepoParams(ToolParams):
    operation: str
    repo_id: str = "me/model"


def _repo_files() -> Tool:
    async def run(self, params, c):
        return ToolResult("ok")

    return type("RepoFiles", (Tool,), {"name": "hf_repo_files", "description": "x", "Params": RepoParams, "run": run})()


@pytest.mark.parametrize("operation", ["upload", " Upload", "DELETE"])
def test_hub_gates_read_the_operation_as_the_reference_does(operation):
    call = ToolRouter([_repo_files()], ungoverned=True).parse("u", "hf_repo_files", json.dumps({"operation": operation}))
    assert policy("auto").decide(call).verdict == "ask"


async def test_a_broken_observer_keeps_the_whole_reservation():
    ran = Ran()
    p = policy("yolo", cap=10.0)
    router = ToolRouter(ran.tools(base=[local_jobs_router("hf").get("hf_jobs")]), policy=p)

    def broken(call_id, since):
        raise RuntimeError("monitor gone")

    p.observers["hf_jobs"] = broken
    job = router.parse("j", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "a10g-large",
                                                   "timeout": "1h"}))
    assert (await router.execute(job, ctx(call_id="j"), p.decide(job))).success
    assert p.budget.left() == pytest.approx(8.0)  # unknown is not $0


# --------------------------------------------------------------------------- in a session


class Billed(Tool):
    """A gated, billed tool standing in for a GPU job: $2 per call, hangs when asked to."""

    name = "gpu_job"
    description = "a billed job"

    class Params(ToolParams):
        hang: bool = False

    def approval_reason(self, params, settings):
        return "GPU work"

    def estimate(self, params):
        return 2.0

    async def run(self, params, c):
        if params.hang:
            await asyncio.sleep(30)
        return ToolResult("launched")


def priced_config() -> Config:
    return Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01),
                  model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})


async def test_an_interrupt_gives_a_running_calls_reservation_back(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("h1", "gpu_job", '{"hang": true}')]), Text("never"))
    s = make_session(llm_server, monkeypatch, tmp_path, config=priced_config(), tools=[Billed()],
                     approval_mode="yolo", yolo_cap_usd=5.0)
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="go"))
    await collect_until(sub, stop={"tool_state"})
    while s.policy.budget.left() == 5.0:  # the call is running with its $2 reserved
        await asyncio.sleep(0.01)
    assert s.policy.budget.left() == pytest.approx(3.0)
    s.submit(Interrupt())
    events = await collect_until(sub)
    assert events[-1].type == "interrupted"
    assert s.policy.budget.open_ids() == [] and s.policy.budget.left() == 5.0
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


@pytest.mark.parametrize("priced", [True, False])
async def test_yolo_does_not_assume_unpriced_model_spend_is_zero(llm_server, monkeypatch, tmp_path, priced):
    llm_server.script(ToolCalls([Call("g1", "gpu_job", "{}")]), Text("done"))
    config = priced_config() if priced else Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01))
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, tools=[Billed()],
                     approval_mode="yolo", yolo_cap_usd=5.0)
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="go"))
    events = await collect_until(sub)
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)
    if priced:
        assert events[-1].type == "turn_complete" and "launched" in of_type(events, "tool_output")[0].output
    else:
        item = last_approval(events).items[0]
        assert item.tool == "gpu_job" and "1 of this session's model calls or jobs has no known price" in item.reason
        assert not of_type(events, "tool_output")


def test_no_production_code_builds_a_router_that_is_not_governed():
    """Every router outside the tests gets a policy (the engine attaches its own to a bare
    one); ``ungoverned=True`` is for test harnesses only."""
    root = Path(__file__).resolve().parents[1]
    offenders = []
    for folder in ("agent", "mlintern_tui", "widgets"):
        for path in (root / folder).rglob("*.py"):
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if "ToolRouter(" in line and "class ToolRouter" not in line and (
                        "policy=" not in line or "ungoverned=True" in line):
                    offenders.append(f"{path.relative_to(root)}:{n}")
    assert offenders == []


async def test_the_engine_answers_calls_sharing_an_id_without_running_either(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("same", "bash", '{"command": "touch one"}'),
                                 Call("same", "bash", '{"command": "touch two"}')]), Text("ok"))
    s = make_session(llm_server, monkeypatch, tmp_path, approval_mode="yolo")
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="go"))
    events = await collect_until(sub)
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)
    assert events[-1].type == "turn_complete"
    assert not (s.cwd / "one").exists() and not (s.cwd / "two").exists()
    tool_msgs = [m for m in llm_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and all("sharing the id 'same'" in m["content"] for m in tool_msgs)
