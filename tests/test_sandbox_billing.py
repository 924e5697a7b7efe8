"""A paid sandbox's hours against the YOLO budget: a real session whose scripted model calls
sandbox_create, the Space made in the Hub emulator and served by a sandbox server on loopback,
and an hour shortened to a fraction of a second (``SandboxManager(hour_s=...)``)."""

from __future__ import annotations

import asyncio
import json
import re
import time

import pytest

from agent.budget import Budget
from agent.protocol import (ExecApproval, SetApprovalMode, SetYolo, Shutdown, ToolDecision, UserInput)
from agent.sandbox.manager import SandboxManager
from tests.engine_support import collect_until, make_session, priced_config
from tests.fakes import Call, Text, ToolCalls
from tests.test_sandbox import Servers

HOUR_S = 0.3  # one billed hour; marks at 95% of it
T4_PRICE = 0.60  # t4-small in the offline price table


@pytest.fixture
def servers(tmp_path):
    pool = Servers(tmp_path / "servers")
    yield pool
    pool.stop()


@pytest.fixture
def start_session(hub, servers, llm_server, monkeypatch, tmp_path):
    """A session (mode and cap given) whose model creates a t4-small sandbox in its first turn."""
    made = []

    def boot(repo_id: str, default_url: str) -> str:
        return servers.start(hub.space_secrets(repo_id)["SANDBOX_API_TOKEN"], repo_id.replace("/", "-"))[0]

    def start(mode: str, cap: float):
        monkeypatch.setenv("HF_TOKEN", "hf_test")
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        llm_server.script(ToolCalls([Call("s1", "sandbox_create", json.dumps({"hardware": "t4-small"}))]),
                          Text("The sandbox is up."))
        s = make_session(llm_server, monkeypatch, tmp_path, config=priced_config(), approval_mode=mode,
                         yolo_cap_usd=cap, jobs_backend="local")
        s.sandbox = SandboxManager("hf_test", endpoint=hub.endpoint, base_url_for=boot, poll_interval_s=0.01,
                                   start_timeout_s=5, health_timeout_s=5, delete_backoff_s=0.01, hour_s=HOUR_S)
        sub = s.subscribe("test")
        s.start()
        s.submit(UserInput(text="make a GPU sandbox"))
        made.append(s)
        return s, sub

    yield start
    for s in made:  # a failed test must not leave a runner behind
        if s._runner is not None and not s._runner.done():
            s.submit(Shutdown())


async def events_until(sub, condition, timeout: float = 10.0) -> list:
    """Events until one meets ``condition`` (that one included)."""
    events: list = []

    async def pump() -> None:
        while True:
            event = await sub.get()
            events.append(event)
            if condition(event):
                return

    await asyncio.wait_for(pump(), timeout)
    return events


def notice(event) -> bool:
    return event.type == "tool_log" and event.tool == "sandbox" and "YOLO" in event.log


async def hours_pass(sandbox, hours: float) -> None:
    deadline = time.monotonic() + 10 * hours * HOUR_S
    while sandbox.hours() < hours:
        assert sandbox.ended_at is None, f"the sandbox was torn down after {sandbox.hours():.2f} hours"
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def stop(s) -> None:
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 10)


async def test_yolo_reserves_each_next_hour_while_it_fits_then_tears_the_sandbox_down(hub, start_session):
    s, sub = start_session("yolo", cap=2.0)
    budget = s.policy.budget
    events = await collect_until(sub)
    assert events[-1].type == "turn_complete"
    sandbox = s.sandbox.active
    assert sandbox is not None and sandbox.hardware == "t4-small" and hub.repo_exists(sandbox.repo_id)
    [key] = budget.open_ids()
    assert len(sandbox.tasks) == 1  # its billing timer

    events += await events_until(sub, notice)
    # each renewal raised the reservation by an hour: what is left drops by $0.60 an hour
    lefts = [e.budget_left_usd for e in events if e.type == "settings_changed"]
    assert lefts[-2:] == [pytest.approx(2.0 - 2 * T4_PRICE, abs=1e-3), pytest.approx(2.0 - 3 * T4_PRICE, abs=1e-3)]
    # the fourth hour did not fit: the sandbox went at 95% of the third, not before, nor a mark later
    assert 2.95 <= sandbox.hours() < 3.95
    cost = sandbox.cost_so_far()
    text = [e for e in events if notice(e)][-1].log
    assert text.startswith(f"YOLO cap reached: tore down the t4-small sandbox {sandbox.repo_id}")
    assert f"(${cost:.2f})" in text and "Its next hour ($0.60) could not be reserved" in text
    # $0.60 more, $0.20 left when on time (a late timer finds a little less of both)
    assert re.search(r"\$0\.[0-6]\d more exceeds the \$0\.[0-2]\d left of the \$2\.00 YOLO budget", text), text
    assert f"Deleted sandbox Space {sandbox.repo_id}." in text and "/yolo <dollars>" in text
    assert not hub.repo_exists(sandbox.repo_id) and s.sandbox.active is None and not sandbox.tasks
    # the observed cost replaced the estimate
    assert budget.open_ids() == [] and budget.closed[key] == pytest.approx(cost)
    assert budget.left() == pytest.approx(2.0 - cost, abs=1e-3)
    # telemetry: the sandbox's life, kept with the session's events
    records = {e.name: e.data for e in events if e.type == "telemetry"}
    assert records["sandbox_created"] == {"space_id": sandbox.repo_id, "hardware": "t4-small",
                                          "price_per_hour_usd": T4_PRICE}
    assert records["sandbox_destroyed"]["space_id"] == sandbox.repo_id
    assert records["sandbox_destroyed"]["cost_usd"] == pytest.approx(cost, abs=1e-3)
    await stop(s)


async def test_outside_yolo_the_hours_pass_unreserved_until_yolo_is_back(hub, start_session):
    s, sub = start_session("auto", cap=1.0)
    budget = s.policy.budget
    asked = await collect_until(sub)
    assert asked[-1].type == "approval_required"
    s.submit(ExecApproval(decisions=[ToolDecision(tool_call_id="s1", approved=True)]))
    await collect_until(sub)
    sandbox = s.sandbox.active
    assert sandbox is not None and len(sandbox.tasks) == 1  # the human's approval reserved its first hour

    await hours_pass(sandbox, 2.2)  # two 95% marks passed in auto mode, far past the $1 cap
    assert s.sandbox.active is sandbox and hub.repo_exists(sandbox.repo_id)
    assert budget.reserved() == 0.0  # nothing reserved past the first hour, which is over
    s.submit(SetYolo(enabled=True))
    events = await events_until(sub, notice)
    # the next mark after YOLO came back found the cap spent
    assert sandbox.hours() >= 2.95 and not hub.repo_exists(sandbox.repo_id)
    text = [e for e in events if notice(e)][-1].log
    assert "YOLO cap reached" in text and "exceeds the $0.00 left of the $1.00 YOLO budget" in text
    await stop(s)


async def test_switching_to_auto_stops_the_renewals_and_keeps_the_sandbox(hub, start_session):
    s, sub = start_session("yolo", cap=1.5)
    budget = s.policy.budget
    events = await events_until(sub, lambda e: e.type == "settings_changed"
                                and e.budget_left_usd == pytest.approx(1.5 - 2 * T4_PRICE, abs=1e-3))
    sandbox = s.sandbox.active
    assert sandbox is not None and sandbox.hours() >= 0.95  # renewed at its first mark
    s.submit(SetApprovalMode(mode="auto"))
    await hours_pass(sandbox, 3.2)  # in YOLO the second mark (1.8 > 1.5) would have torn it down
    assert s.sandbox.active is sandbox and hub.repo_exists(sandbox.repo_id) and len(sandbox.tasks) == 1
    assert budget.reserved() == 0.0  # reserved through hour 2 only
    await stop(s)
    events += await events_until(sub, lambda e: e.type == "shutdown")
    assert not any(notice(e) for e in events) and not hub.repo_exists(sandbox.repo_id)


async def test_session_shutdown_cancels_the_timer_and_deletes_the_sandbox(hub, start_session):
    s, sub = start_session("yolo", cap=5.0)
    await collect_until(sub)
    sandbox = s.sandbox.active
    [timer] = sandbox.tasks
    assert not timer.done()
    await stop(s)
    assert timer.cancelled() and not sandbox.tasks and not hub.repo_exists(sandbox.repo_id)


async def test_a_shutdown_during_the_billing_teardown_waits_for_it(hub, start_session):
    s, sub = start_session("yolo", cap=1.0)  # the first hour fits; the second does not
    manager = s.sandbox
    real_delete, deletes = manager.api.delete_repo, []

    def slow_delete(*args, **kwargs):
        deletes.append(args)
        time.sleep(0.3)
        return real_delete(*args, **kwargs)

    manager.api.delete_repo = slow_delete  # before the session even made the sandbox
    await collect_until(sub)
    sandbox = manager.active
    deadline = time.monotonic() + 5
    while not manager.tearing_down:  # the billing timer's teardown, at 95% of the first hour
        assert time.monotonic() < deadline, "the sandbox was never torn down"
        await asyncio.sleep(0.005)
    s.submit(Shutdown())  # its own teardown must wait for the one under way, not race it
    await asyncio.wait_for(s._runner, 10)
    assert len(deletes) == 1 and not hub.repo_exists(sandbox.repo_id)  # deleted before the session ended
    events = await events_until(sub, notice)
    assert "YOLO cap reached" in events[-1].log and sandbox.hours() == pytest.approx(0.95, abs=0.3)


# ---- the budget's side ----------------------------------------------------------------------


def test_extend_raises_a_tracked_reservation_only_by_what_fits():
    spent, cost = [0.0], [0.0]
    budget = Budget(2.0, spent=lambda: spent[0])

    def observe():
        return cost[0], False

    assert budget.reserve("sb", 0.6) is None
    budget.track("sb", observe)
    assert budget.tracking(observe) == "sb" and budget.tracking(lambda: (0.0, False)) is None
    cost[0] = spent[0] = 0.57  # 95% of the first hour, counted in the spend
    assert budget.extend("sb", 1.2) is None and budget.committed() == pytest.approx(1.2)
    assert budget.extend("sb", 1.0) is None and budget.committed() == pytest.approx(1.2)  # never lowers
    cost[0] = spent[0] = 1.17
    assert budget.extend("sb", 1.8) is None
    cost[0] = spent[0] = 1.77
    why = budget.extend("sb", 2.4)
    assert why == "$0.60 more exceeds the $0.20 left of the $2.00 YOLO budget"
    assert budget.committed() == pytest.approx(1.8)  # unchanged when refused
    # an hour skipped (outside YOLO) leaves the estimate behind the cost: only the rest is new
    cost[0] = spent[0] = 1.9
    assert budget.extend("sb", 2.5) == "$0.60 more exceeds the $0.10 left of the $2.00 YOLO budget"
    assert budget.extend("gone", 1.0) == "nothing is reserved for it any more"


def test_extend_refuses_while_some_spend_has_no_price():
    unpriced = [0]
    budget = Budget(10.0, unpriced=lambda: unpriced[0])
    budget.reserve("sb", 0.6)
    unpriced[0] = 1
    why = budget.extend("sb", 1.2)
    assert why.startswith("$0.60 more, but 1 of this session's model calls or jobs has no known price")
    assert Budget(None, unpriced=lambda: 1).reserve("x", 1.0) is None  # no cap: nothing to promise
