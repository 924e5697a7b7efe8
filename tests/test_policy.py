"""The approval policy: every tool x operation x mode, rules, and the router's enforcement.

Hub repo tools and MCP tools do not exist in the tree yet; small stand-ins with the same
names and parameters show that their gates come from the policy, not from the tool.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.config import load_config
from agent.policy import Policy
from agent.protocol import ApprovalRule
from agent.rules import command_matches, rules_from_config, suggest
from agent.tools import default_tools
from agent.tools.base import ApprovalSettings, SessionToolState, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.jobs import HfJobsParams
from agent.tools.hub_git import HfRepoGitParams
from agent.tools.papers import HfPapersParams
from agent.tools.router import ToolRouter

CWD = Path("/srv/project")


class McpParams(ToolParams):
    query: str = ""


def _fake(name: str, params: type[ToolParams], origin: str = "") -> Tool:
    async def run(self, p, ctx):
        return ToolResult("ok")

    return type(name, (Tool,), {"name": name, "description": name, "Params": params, "origin": origin, "run": run})()


def all_tools() -> list[Tool]:
    return default_tools(sandbox=True) + [_fake("mcp_search", McpParams, origin="mcp")]


ROUTER = ToolRouter(all_tools())
JOB_OPS = get_args(HfJobsParams.model_fields["operation"].annotation)
GIT_OPS = get_args(HfRepoGitParams.model_fields["operation"].annotation)
PAPER_OPS = get_args(HfPapersParams.model_fields["operation"].annotation)
GATED_GIT = {"delete_branch", "delete_tag", "merge_pr", "create_repo", "update_repo"}

# (tool, arguments, verdict in ask / auto / yolo): A allow, Q ask
TABLE: list[tuple[str, dict, str]] = [
    ("bash", {"command": "echo hi"}, "QAA"),
    ("read", {"path": "/etc/hosts"}, "AAA"),
    ("write", {"path": "notes.txt", "content": "x"}, "AAA"),
    ("write", {"path": "/tmp/elsewhere.txt", "content": "x"}, "QAA"),
    ("edit", {"path": "src/a.py", "old_str": "a", "new_str": "b"}, "AAA"),
    ("edit", {"path": "../other/a.py", "old_str": "a", "new_str": "b"}, "QAA"),
    ("plan_tool", {"todos": []}, "AAA"),
    ("hf_jobs", {"operation": "run", "script": "print(1)"}, "QQA"),
    ("hf_jobs", {"operation": "run", "script": "print(1)", "hardware_flavor": "cpu-upgrade", "timeout": "1h"}, "QQA"),
    ("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "a10g-large", "timeout": "2h"}, "QQA"),
    ("hf_jobs", {"operation": "run", "command": ["nvidia-smi"], "image": "x", "hardware_flavor": "t4-small"}, "QQA"),
    ("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "quantum-large"}, "QQQ"),  # unestimable
    ("hf_jobs", {"operation": "run", "script": "x", "timeout": "soon"}, "QQQ"),  # unreadable timeout
    ("hf_jobs", {"operation": "ps"}, "AAA"),
    ("hf_jobs", {"operation": "logs", "job_id": "j"}, "AAA"),
    ("hf_jobs", {"operation": "inspect", "job_id": "j"}, "AAA"),
    ("hf_jobs", {"operation": "cancel", "job_id": "j"}, "AAA"),
    ("hf_jobs", {"operation": "scheduled run", "script": "x", "schedule": "@daily"}, "QQQ"),
    ("hf_jobs", {"operation": "scheduled ps"}, "QQQ"),
    ("hf_jobs", {"operation": "scheduled inspect", "scheduled_job_id": "s"}, "QQQ"),
    ("hf_jobs", {"operation": "scheduled delete", "scheduled_job_id": "s"}, "QQQ"),
    ("hf_jobs", {"operation": "scheduled suspend", "scheduled_job_id": "s"}, "QQQ"),
    ("hf_jobs", {"operation": "scheduled resume", "scheduled_job_id": "s"}, "QQQ"),
    ("sandbox_create", {}, "AAA"),
    ("sandbox_create", {"store_hf_token": True}, "QQA"),
    ("sandbox_create", {"hardware": "t4-small"}, "QQA"),
    ("sandbox_create", {"hardware": "zero-a10g"}, "QQQ"),  # no price: YOLO cannot budget it
    ("sandbox_bash", {"command": "rm -rf /app"}, "AAA"),
    ("sandbox_read", {"path": "/app/x"}, "AAA"),
    ("sandbox_write", {"path": "/app/x", "content": ""}, "AAA"),
    ("sandbox_edit", {"path": "/app/x", "old_str": "a", "new_str": "b"}, "AAA"),
    ("hf_repo_files", {"operation": "list"}, "AAA"),
    ("hf_repo_files", {"operation": "read", "path": "README.md"}, "AAA"),
    ("hf_repo_files", {"operation": "upload", "path": "model.bin"}, "QQA"),
    ("hf_repo_files", {"operation": "delete", "path": "model.bin"}, "QQA"),
    *[("hf_repo_git", {"operation": op}, "QQA" if op in GATED_GIT else "AAA") for op in GIT_OPS],
    ("mcp_search", {"query": "x"}, "QAA"),
    # reading never needs a human in any mode (the research sub-agent's own calls are decided
    # one by one by this same policy: tests/test_research.py)
    ("research", {"task": "find a recipe"}, "AAA"),
    ("explore_hf_docs", {"endpoint": "trl", "query": "sft"}, "AAA"),
    ("fetch_hf_docs", {"url": "https://huggingface.co/docs/trl/index"}, "AAA"),
    ("find_hf_api", {"query": "list models"}, "AAA"),
    *[("hf_papers", {"operation": op}, "AAA") for op in PAPER_OPS],
    ("web_search", {"query": "lora rank"}, "AAA"),
    ("fetch_url", {"url": "https://example.com/post"}, "AAA"),
    ("hf_inspect_dataset", {"dataset": "openai/gsm8k"}, "AAA"),
    ("github_find_examples", {"repo": "trl", "keyword": "sft"}, "AAA"),
    ("github_list_repos", {"owner": "huggingface"}, "AAA"),
    ("github_read_file", {"repo": "huggingface/trl", "path": "README.md"}, "AAA"),
]


def parsed(tool: str, args: dict, call_id: str = "c1"):
    if tool.startswith("hf_repo_"):
        args = {"repo_id": "me/model", **args}  # the Hub tools' one required argument besides the operation
    call = ROUTER.parse(call_id, tool, json.dumps(args))
    assert call.error is None, call.error
    return call


def policy(mode: str = "auto", cap: float | None = 1000.0, rules=(), spent: float = 0.0, **kw) -> Policy:
    return Policy(ApprovalSettings(mode=mode, cwd=CWD, **kw), cap_usd=cap, rules=rules, spent=lambda: spent, persist=False)


def test_the_table_covers_every_tool_and_every_operation():
    covered = {(t, a.get("operation")) for t, a, _ in TABLE}
    assert {t for t, _ in covered} == set(ROUTER.names)
    assert {("hf_jobs", op) for op in JOB_OPS} <= covered
    assert {("hf_repo_git", op) for op in GIT_OPS} <= covered
    assert {("hf_papers", op) for op in PAPER_OPS} <= covered


@pytest.mark.parametrize("mode_index,mode", list(enumerate(["ask", "auto", "yolo"])))
@pytest.mark.parametrize("tool,args,expected", TABLE, ids=lambda v: v if isinstance(v, str) else None)
def test_every_tool_operation_and_mode(tool, args, expected, mode_index, mode):
    d = policy(mode).decide(parsed(tool, args))
    assert d.verdict == {"A": "allow", "Q": "ask"}[expected[mode_index]], d.reason
    if d.verdict == "ask":
        assert d.reason  # a card never asks without saying why


def test_cpu_jobs_follow_confirm_cpu_jobs_and_yolo_budgets_them_anyway():
    call = parsed("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "cpu-basic", "timeout": "2h"})
    assert policy("auto", confirm_cpu_jobs=False).decide(call).verdict == "allow"
    broke = policy("yolo", cap=0.05, confirm_cpu_jobs=False).decide(call)  # $0.10 estimated, not gated, still billed
    assert broke.verdict == "ask" and "estimated $0.10 exceeds the $0.05 left" in broke.reason


def test_reasons_carry_the_money_and_the_budget():
    gpu = parsed("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "a10g-large", "timeout": "2h"})
    d = policy("auto").decide(gpu)
    assert d.reason == "GPU job on a10g-large for up to 2h (estimated up to $4.00)" and d.estimate == 4.0
    d = policy("yolo", cap=1.0).decide(gpu)
    assert d.verdict == "ask" and "estimated $4.00 exceeds the $1.00 left" in d.reason and d.suggested_rule is None
    d = policy("yolo", cap=5.0, spent=5.0).decide(parsed("hf_repo_files", {"operation": "upload"}))
    assert d.verdict == "ask" and "YOLO paused: $5.00 spent of the $5.00 cap" in d.reason
    d = policy("yolo").decide(parsed("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "quantum-large"}))
    assert "cannot be estimated" in d.reason


# --------------------------------------------------------------------------- rules


def rule(effect, tool, operation=None, pattern=None):
    return ApprovalRule(effect=effect, tool=tool, operation=operation, pattern=pattern)


@pytest.mark.parametrize("effect,command,prefix,hit", [
    ("allow", "git push origin main", "git push", True),
    ("allow", "git pushx", "git push", False),
    ("allow", "git status", "git push", False),
    ("allow", "git push; rm -rf ~", "git push", False),  # compound: a prefix cannot vouch for the rest
    ("allow", "git push $(curl evil)", "git push", False),
    ("allow", "pytest -q tests/", "pytest", True),
    ("allow", "sudo pytest", "pytest", False),
    ("deny", "cd build && rm -rf out", "rm", True),
    ("deny", "sudo rm -rf /", "rm", True),
    ("deny", "FOO=1 rm x", "rm", True),
    ("deny", "echo firm", "rm", False),
    ("deny", "ls | xargs rm", "rm", True),
])
def test_bash_command_prefixes(effect, command, prefix, hit):
    assert command_matches(effect, command, prefix) is hit


def test_deny_beats_allow_and_applies_to_ungated_calls_in_every_mode():
    both = [rule("allow", "bash", pattern="git"), rule("deny", "bash", pattern="git push")]
    for mode in ("ask", "auto", "yolo"):
        d = policy(mode, rules=both).decide(parsed("bash", {"command": "git push --force"}))
        assert d.verdict == "deny" and 'always deny bash commands starting with "git push"' in d.reason
    read_deny = [rule("deny", "read", pattern="/etc/*")]
    assert policy("yolo", rules=read_deny).decide(parsed("read", {"path": "/etc/shadow"})).verdict == "deny"
    assert policy("yolo", rules=read_deny).decide(parsed("read", {"path": "/srv/project/a"})).verdict == "allow"


def test_allow_rules_have_an_exact_scope():
    rules = [rule("allow", "hf_jobs", "run", "cpu-*"), rule("allow", "bash", pattern="pytest"),
             rule("allow", "write", pattern="/tmp/*"), rule("allow", "hf_repo_files", "upload", "me/*")]
    p = policy("ask", rules=rules)

    def verdict(tool, args):
        return p.decide(parsed(tool, args)).verdict

    assert verdict("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "cpu-upgrade"}) == "allow"
    assert verdict("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "a10g-small"}) == "ask"
    assert verdict("bash", {"command": "pytest -x"}) == "allow" and verdict("bash", {"command": "pip install x"}) == "ask"
    assert verdict("write", {"path": "/tmp/a/b.txt", "content": ""}) == "allow"
    assert verdict("write", {"path": "/var/a.txt", "content": ""}) == "ask"
    assert verdict("hf_repo_files", {"operation": "upload", "repo_id": "me/m"}) == "allow"
    assert verdict("hf_repo_files", {"operation": "delete", "repo_id": "me/m"}) == "ask"  # other operation
    assert verdict("hf_repo_files", {"operation": "upload", "repo_id": "org/m"}) == "ask"


def test_allow_rules_never_open_scheduled_jobs_nor_bypass_the_yolo_budget():
    everything = [rule("allow", "hf_jobs")]
    assert policy("auto", rules=everything).decide(parsed("hf_jobs", {"operation": "scheduled ps"})).verdict == "ask"
    gpu = parsed("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "a10g-large", "timeout": "2h"})
    assert policy("auto", cap=1.0, rules=everything).decide(gpu).verdict == "allow"  # budget is YOLO's
    d = policy("yolo", cap=1.0, rules=everything).decide(gpu)
    assert d.verdict == "ask" and "exceeds the $1.00 left" in d.reason


def test_the_card_suggests_a_narrow_visible_scope():
    s = suggest("bash", parsed("bash", {"command": "python train.py --lr 3"}).params, CWD)
    assert (s.tool, s.operation, s.pattern) == ("bash", None, "python train.py")
    assert s.label == 'bash commands starting with "python train.py"'
    assert suggest("bash", parsed("bash", {"command": "make && make install"}).params, CWD) is None
    job = policy("auto").decide(parsed("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": "t4-small"}))
    assert job.suggested_rule.label == "hf_jobs run on hardware t4-small"
    out = policy("ask").decide(parsed("write", {"path": "/tmp/x/y.txt", "content": ""}))
    assert out.suggested_rule.pattern == "/tmp/x/*"
    assert policy("ask").decide(parsed("hf_jobs", {"operation": "scheduled ps"})).suggested_rule is None


def test_rules_are_kept_per_user_and_per_project_in_the_config(mlintern_home, tmp_path):
    project = tmp_path / "proj"
    (project / "sub").mkdir(parents=True)
    (mlintern_home / "config.json").write_text(json.dumps({"model": "${NOPE:-demo}"}))
    p = Policy(ApprovalSettings(mode="ask", cwd=project), cap_usd=5.0)
    kept, error = p.add_rule(rule("allow", "bash", pattern="pytest"), "project")
    assert error is None and kept.scope == "project"
    p.add_rule(rule("deny", "bash", pattern="rm"), "user")
    p.add_rule(rule("allow", "bash", pattern="pytest"), "project")  # once only
    raw = json.loads((mlintern_home / "config.json").read_text())
    assert raw["model"] == "${NOPE:-demo}"  # the rest of the file is kept as written
    assert raw["project_approval_rules"] == {str(project): [{"effect": "allow", "tool": "bash", "pattern": "pytest"}]}
    assert raw["approval_rules"] == [{"effect": "deny", "tool": "bash", "pattern": "rm"}]
    config = load_config()
    inside = rules_from_config(config, project / "sub")
    assert [(r.effect, r.scope) for r in inside] == [("deny", "user"), ("allow", "project")]
    assert [r.scope for r in rules_from_config(config, tmp_path / "elsewhere")] == ["user"]


# --------------------------------------------------------------------------- enforcement


def ctx_for(call_id: str) -> ToolContext:
    return ToolContext(session_id="t", cwd=CWD, spill_dir=Path("/nonexistent-spill"), state=SessionToolState(),
                       tool_call_id=call_id)


def recording_router(p: Policy | None, ran: list[str]) -> ToolRouter:
    tools = []
    for tool in all_tools():
        async def run(self, params, ctx, _ran=ran):
            _ran.append(ctx.tool_call_id)
            return ToolResult("ok")
        tools.append(type(type(tool).__name__, (type(tool),), {"run": run})())
    return ToolRouter(tools, policy=p)


async def test_a_governed_router_runs_nothing_gated_without_a_decision_for_that_exact_call():
    ran: list[str] = []
    p = policy("auto")
    router = recording_router(p, ran)
    gpu = router.parse("g1", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "t4-small"}))
    out = await router.execute(gpu, ctx_for("g1"))  # a sub-agent bringing no decision
    assert not out.success and "needs the user's approval" in out.output and "GPU job" in out.output
    other = Policy(ApprovalSettings(mode="yolo"), cap_usd=100.0, persist=False).decide(gpu)
    assert "no approval decision" in (await router.execute(gpu, ctx_for("g1"), other)).output
    approved = p.approve(gpu)
    edited = router.parse("g1", "hf_jobs", json.dumps({"operation": "run", "script": "x", "hardware_flavor": "a100x8"}))
    assert "no approval decision" in (await router.execute(edited, ctx_for("g1"), approved)).output
    assert ran == []
    assert (await router.execute(gpu, ctx_for("g1"), approved)).success and ran == ["g1"]
    assert "already used" in (await router.execute(gpu, ctx_for("g1"), approved)).output and ran == ["g1"]
    ls = router.parse("b1", "bash", '{"command": "ls"}')
    assert (await router.execute(ls, ctx_for("b1"))).success  # ungated: the policy's own decision allows it


def test_the_session_router_is_governed_by_the_engine_policy(llm_server, monkeypatch, tmp_path):
    from agent.loop import TurnEngine
    from tests.engine_support import make_session

    s = make_session(llm_server, monkeypatch, tmp_path)
    assert s.router.policy is s.policy is s.engine.policy
    with pytest.raises(ValueError, match="share one approval policy"):
        TurnEngine(model=s.model, router=s.router, client=s.client, emit=lambda e: None, settings=s.engine_settings,
                   tool_context=s._tool_context, tool_state=s.tool_state, policy=policy())


# --------------------------------------------------------------------------- the property

POOL = [(t, a) for t, a, _ in TABLE] + [
    ("hf_jobs", {"operation": "run", "script": "x", "hardware_flavor": f, "timeout": t})
    for f in ("cpu-basic", "t4-small", "a10g-large") for t in ("10m", "1h", "3h")
]
BILLED = [i for i, (tool, args) in enumerate(POOL) if tool == "hf_jobs" and args["operation"] == "run"]
RULES = [rule("allow", "hf_jobs"), rule("allow", "hf_jobs", "run", "a10g-*"), rule("deny", "hf_jobs", "run", "t4-*"),
         rule("allow", "bash"), rule("deny", "bash", pattern="echo"), rule("allow", "hf_repo_git"),
         rule("allow", "sandbox_create"), rule("deny", "write"), rule("allow", "hf_repo_files", "upload")]


_PROPERTY_RAN: list[str] = []
PROPERTY_ROUTER = (recording_router(None, _PROPERTY_RAN), _PROPERTY_RAN)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    mode=st.sampled_from(["ask", "auto", "yolo"]),
    cap=st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]),
    prior=st.sampled_from([0.0, 0.4, 2.0]),
    rules=st.lists(st.sampled_from(RULES), max_size=4),
    batches=st.lists(st.lists(st.tuples(
        # half the calls are billed, so batches that together overrun the cap come up often
        st.one_of(st.sampled_from(BILLED), st.sampled_from(range(len(POOL)))),
        st.sampled_from(["decided", "none", "user_yes", "user_no", "forged"])), min_size=1, max_size=4),
        min_size=1, max_size=4),
)
def test_no_gated_call_runs_without_a_human_a_rule_or_yolo_within_budget(mode, cap, prior, rules, batches):
    p = policy(mode, cap=cap, rules=rules, spent=prior)
    p.observers = {name: (lambda call_id, since: (lambda: (0.0, False))) for name in ROUTER.names}  # bills forever
    # one router for every example, its policy attached per example as the engine attaches one
    # (building a router generates every tool's JSON schema: most of this test's time otherwise)
    router, ran = PROPERTY_ROUTER
    router.policy = p
    ran.clear()
    admitted = {}  # call id -> (call, the decision the router let it run with)
    real_admit = p.admit

    def spy(call, decision):
        refusal = real_admit(call, decision)
        if refusal is None:
            admitted[call.id] = (call, decision)
        return refusal

    p.admit = spy

    async def scenario():
        n = 0
        for batch in batches:
            calls = []
            for index, how in batch:
                n += 1
                tool, args = POOL[index]
                calls.append((router.parse(f"c{n}", tool, json.dumps(args)), how))
            decisions = p.decide_batch([c for c, _ in calls])
            for call, how in calls:
                d = decisions[call.id]
                if how == "user_yes" and d.verdict == "ask":
                    d = p.approve(call)
                elif how == "none":  # a caller with no decision: the router asks the policy itself
                    d = None
                elif how == "forged":  # a decision from somewhere else
                    d = policy("yolo", cap=None).decide(call)
                await router.execute(call, ctx_for(call.id), d)

    asyncio.run(scenario())
    assert sorted(ran) == sorted(admitted)
    auto_costed = 0.0
    for call, d in admitted.values():
        a = p.assess(call)
        assert p._match("deny", call) is None, call.arguments  # a deny rule always wins
        if a.always_ask:
            assert d.source == "user", call.arguments
        elif a.gated:
            assert d.source in ("user", "rule") or (mode == "yolo" and d.source == "yolo"), (call.arguments, d)
        if mode == "yolo" and a.costed and d.source != "user":
            assert d.reservation is not None and a.estimate is not None, call.arguments
            auto_costed += a.estimate
    if mode == "yolo":
        assert auto_costed <= max(0.0, cap - prior) + 1e-9  # never promised past the cap without a human
