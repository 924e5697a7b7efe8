"""Issue 5 in the app: the mode key, "always" rules from the approval card, the YOLO budget
pause, expandable receipts and /cost.

Driven with keys on a real Session talking to the scripted loopback model; what a key did
is read where it matters: the engine's policy, the config file under MLINTERN_HOME, and the
tool results the model receives on its next request.
"""

from __future__ import annotations

import json

from agent.config import Config, LLMSettings
from agent.protocol import JobUpdate, LLMCall, Usage as ProtoUsage
from tests.fakes import Call, Text, ToolCalls, Usage
from tests.tui_support import AppUnderTest, approval_screen, feed, wait_for
from tests.test_tui_pilot import open_card, send, start_app, tool_results, until_idle
from widgets.approval_card import BUDGET_TOOL
from widgets.conversation import Notice
from widgets.receipt import CostReport
from widgets.status import StatusBar


def notices(app) -> list[str]:
    return [str(n.render()) for n in app.conversation.query(Notice)]


def priced(cap: float = 5.0) -> Config:
    """The scripted model at $1 per million input tokens, so spend is real and known."""
    return Config(llm=LLMSettings(max_attempts=2, backoff_base_s=0.01), yolo_cap_usd=cap,
                  model_prices={"openai/scripted-model": {"input_per_mtok": 1.0, "output_per_mtok": 0.0}})


def no_rules_saved(home) -> bool:
    path = home / "config.json"  # the app keeps the theme there too
    raw = json.loads(path.read_text()) if path.exists() else {}
    return not raw.get("approval_rules") and not raw.get("project_approval_rules")


def count_cards(app) -> list:
    """Every approval request the app receives, recorded before it is shown."""
    seen: list = []
    original = app.request_approval

    def record(event):
        seen.append(event)
        original(event)

    app.request_approval = record
    return seen


def test_the_budget_tool_name_matches_the_engine():
    from agent.loop import BUDGET_TOOL as ENGINE_BUDGET_TOOL

    assert BUDGET_TOOL == ENGINE_BUDGET_TOOL


# --------------------------------------------------------------------------- modes


async def test_ctrl_t_cycles_the_engine_through_ask_auto_yolo(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, config=priced(4.0))
        assert "ctrl+t" in {b.binding.key for b in app.active_bindings.values() if b.binding.show}  # in the footer
        app.prompt.text = "half-typed"
        for expected in ("yolo", "ask", "auto", "yolo"):
            await pilot.press("ctrl+t")
            await wait_for(pilot, lambda: app.status_info.mode == expected and session.policy.mode == expected,
                           what=f"mode {expected}")
        assert app.prompt.text == "half-typed"  # the prompt never saw the key
        assert app.status_info.budget_left_usd == 4.0
        status = str(app.query_one(StatusBar).render())
        assert "YOLO" in status and "$4.00 left" in status
        assert any("Approval mode ask: also asks before shell commands" in n for n in notices(app))
        assert any("YOLO budget: $4.00 left of the $4.00 cap" in n for n in notices(app))


async def test_the_badge_says_at_most_once_spend_has_no_known_price(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("hello"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="yolo")  # no model_prices
        assert "≤" not in str(app.query_one(StatusBar).render())
        await send(pilot, "hi")
        await until_idle(pilot, app)
        status = str(app.query_one(StatusBar).render())
        assert "≤$5.00 left" in status and app.status_info.session_unknown_calls == 1
        await send(pilot, "/yolo 3")
        await wait_for(pilot, lambda: any("has no known price" in n for n in notices(app)), what="the price warning")
        assert "≤$3.00 left" in str(app.query_one(StatusBar).render())


async def test_mode_command_sets_shows_and_refuses(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "/mode ask")
        await wait_for(pilot, lambda: session.policy.mode == "ask" and app.status_info.mode == "ask", what="ask")
        await send(pilot, "/mode")
        await wait_for(pilot, lambda: any(n.startswith("ℹ Approval mode: ask\n▸ ask") for n in notices(app)), what="/mode")
        await send(pilot, "/mode reckless")
        await wait_for(pilot, lambda: any("Unknown approval mode 'reckless'" in n for n in notices(app)), what="error")
        await send(pilot, "/yolo 2.5")  # /yolo still turns YOLO on with a cap
        await wait_for(pilot, lambda: session.policy.mode == "yolo" and app.status_info.budget_left_usd == 2.5,
                       what="yolo with a cap")
        assert session.policy.budget.cap_usd == 2.5


# --------------------------------------------------------------------------- always rules


async def test_always_allow_for_this_project_saves_the_rule_and_the_next_call_asks_nothing(
        llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo one"}')]), Text("first"),
                      ToolCalls([Call("b2", "bash", '{"command": "echo one two"}')]), Text("second"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        asked = count_cards(app)
        await send(pilot, "run")
        card = await open_card(pilot, app)
        scope = str(card.query_one(".approval-always").render())
        assert 'bash commands starting with "echo one"' in scope
        assert "A always allow… · D always deny…" in str(card.query_one(".approval-keys").render())
        await pilot.press("A")
        hint = str(card.query_one(".approval-keys").render())
        assert (f'Always allow bash commands starting with "echo one" (this call runs now), kept\n'
                f'p for this project ({session.cwd})') in hint
        await pilot.press("y")  # the scope choice takes only p, u and esc
        assert approval_screen(app) is card
        await pilot.press("p")
        await until_idle(pilot, app)
        assert "one" in tool_results(llm_server.requests[1])["b1"]
        saved = json.loads((mlintern_home / "config.json").read_text())["project_approval_rules"]
        assert saved == {str(session.cwd): [{"effect": "allow", "tool": "bash", "pattern": "echo one"}]}
        await send(pilot, "again")
        await until_idle(pilot, app)
        assert len(asked) == 1  # the second call ran on the rule, no card
    assert "one two" in tool_results(llm_server.requests[3])["b2"]


async def test_always_deny_for_all_projects_rejects_now_and_later(llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.script(ToolCalls([Call("d1", "bash", '{"command": "ls -la"}')]), Text("ok"),
                      ToolCalls([Call("d2", "bash", '{"command": "ls /"}')]), Text("ok again"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        asked = count_cards(app)
        await send(pilot, "list")
        card = await open_card(pilot, app)
        await pilot.press("D")
        assert card.has_class("-always")
        await pilot.press("escape")  # back to the card's own keys, still open
        assert not card.has_class("-always") and approval_screen(app) is card
        assert "y approve" in str(card.query_one(".approval-keys").render())
        await pilot.press("D", "u")
        await until_idle(pilot, app)
        await send(pilot, "list again")
        await until_idle(pilot, app)
        assert len(asked) == 1
    assert "rejected" in tool_results(llm_server.requests[1])["d1"]
    later = tool_results(llm_server.requests[3])["d2"]
    assert "NOT executed" in later and 'always deny bash commands starting with "ls"' in later
    saved = json.loads((mlintern_home / "config.json").read_text())
    assert saved["approval_rules"] == [{"effect": "deny", "tool": "bash", "pattern": "ls"}]


async def test_no_always_when_the_engine_offers_no_rule(llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.script(ToolCalls([Call("c1", "bash", '{"command": "echo a; echo b"}')]), Text("ok"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        await send(pilot, "compound")
        card = await open_card(pilot, app)
        assert not card.query(".approval-always")
        assert "always" not in str(card.query_one(".approval-keys").render())
        await pilot.press("A", "p")
        assert approval_screen(app) is card and not card.has_class("-always")
        await pilot.press("y")
        await until_idle(pilot, app)
    assert no_rules_saved(mlintern_home)


async def test_always_keys_respect_the_grace_period(llm_server, monkeypatch, tmp_path, mlintern_home):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo one"}')]), Text("ok"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        app.approval_grace_s = 1.5
        await send(pilot, "run")
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="card")
        await pilot.press("A", "p")  # typed as the card appeared: nothing saved, nothing answered
        card = approval_screen(app)
        assert card is not None and not card.has_class("-always")
        await wait_for(pilot, lambda: not card._in_grace(), what="the end of the grace period", timeout=5)
        await pilot.press("n")
        await until_idle(pilot, app)
    assert no_rules_saved(mlintern_home)


# --------------------------------------------------------------------------- budget pause


async def test_budget_pause_card_raises_the_cap_to_a_typed_amount(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo hi"}')], usage=Usage(1_000_000, 10)),
                      Text("finished", usage=Usage(100_000, 10)))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, config=priced(1.0),
                                  approval_mode="yolo")
        await send(pilot, "go")
        card = await open_card(pilot, app)
        assert card.item.tool == BUDGET_TOOL
        assert "Raise the YOLO budget?" in str(card.query_one(".approval-title").render())
        assert "y raise the cap to $2.00" in str(card.query_one(".approval-keys").render())
        assert BUDGET_TOOL not in {c.tool for c in app.conversation.cards.values()}  # no tool card for it
        assert any("YOLO paused: $1.00 spent of the $1.00 cap" in n for n in notices(app))
        await pilot.press("e")
        await pilot.press(*"lots", "enter")  # typed over the proposed amount
        assert approval_screen(app) is card and "Not a dollar amount" in str(card.query_one(".approval-error").render())
        card.query_one("#new-cap").value = ""
        await pilot.press(*"3.5", "enter")
        await until_idle(pilot, app)
        assert session.policy.budget.cap_usd == 3.5
        assert app.status_info.yolo_cap_usd == 3.5
        assert abs(app.status_info.budget_left_usd - (3.5 - 1.1)) < 1e-6
        assert any("YOLO budget: $2.50 left of the $3.50 cap" in n for n in notices(app))
    assert llm_server.requests[-1]["messages"][-1]["role"] == "tool"  # the model was called again


async def test_budget_pause_y_raises_to_the_proposal_and_n_stops(llm_server, monkeypatch, tmp_path):
    llm_server.script(ToolCalls([Call("b1", "bash", '{"command": "echo hi"}')], usage=Usage(1_000_000, 10)),
                      Text("finished", usage=Usage(100_000, 10)))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, config=priced(1.0),
                                  approval_mode="yolo")
        await send(pilot, "go")
        await open_card(pilot, app)
        await pilot.press("a", "f")  # no batch, no feedback on a budget question
        assert approval_screen(app) is not None and not approval_screen(app).has_class("-feedback")
        await pilot.press("y")
        await until_idle(pilot, app)
        assert session.policy.budget.cap_usd == 2.0 and len(llm_server.requests) == 2


# --------------------------------------------------------------------------- receipts and /cost


async def test_receipt_expands_and_collapses(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("hello", usage=Usage(1_200, 30, cached_tokens=200)), Text("again"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path, config=priced(), approval_mode="yolo")
        await send(pilot, "hi")
        await until_idle(pilot, app)
        receipt = app.conversation.latest_receipt()
        assert receipt is not None and not receipt.expanded
        cost = receipt.text.split(" · ")[2]
        assert cost.startswith("$0.00") and cost != "$0.0000"
        assert receipt.text == f"turn: 1.2k in · 30 out · {cost} · 1 call ▸"
        await pilot.press("f3")
        await pilot.pause()
        assert receipt.expanded
        rows = [row.split() for row in receipt.text.splitlines()]
        assert rows[1:] == [["tokens", "1,200", "in", "·", "30", "out"], ["cache", "200", "read", "·", "0", "write"],
                            ["model", cost, "over", "1", "call"],
                            ["compute", "$0.0000", "for", "jobs", "and", "sandboxes", "of", "this", "turn"],
                            ["session", cost, "so", "far,", "model", "calls", "and", "compute"],
                            ["budget", f"${5 - float(cost[1:]):.2f}", "left", "of", "the", "YOLO", "cap"]]
        assert receipt.size.height == 7  # laid out again, not clipped to one line
        await pilot.press("f3")
        await pilot.pause()
        assert not receipt.expanded and receipt.size.height == 1
        await pilot.click(receipt)
        assert receipt.expanded
        await send(pilot, "/yolo")  # YOLO off: the next receipt says no cap applies
        await wait_for(pilot, lambda: app.status_info.mode == "auto", what="yolo off")
        await send(pilot, "more")
        await until_idle(pilot, app)
        second = app.conversation.latest_receipt()
        assert second is not receipt
        second.action_toggle()
        assert second.text.splitlines()[-1].split() == ["budget", "YOLO", "off:", "no", "cap", "applies"]


async def test_unknown_prices_are_flagged_not_zero(llm_server, monkeypatch, tmp_path):
    llm_server.script(Text("hello"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)  # no price for the scripted model
        await send(pilot, "hi")
        await until_idle(pilot, app)
        receipt = app.conversation.latest_receipt()
        assert receipt.text.startswith("turn: ") and " · unknown cost · 1 call ▸" in receipt.text
        receipt.action_toggle()
        lines = receipt.text.splitlines()
        assert lines[3].split() == ["model", "$0.0000", "over", "1", "call"]
        assert lines[4].strip() == "1 of them at unknown price, not in the sum"
        assert lines[7].strip() == "+ 1 call at unknown price, not in the sum"  # under the session total


async def test_cost_command_breaks_the_session_down_by_kind_model_and_job():
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app,
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="main", latency_ms=900,
                           usage=ProtoUsage(prompt_tokens=40_000, completion_tokens=900), cost_usd=0.1335),
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="main", latency_ms=700,
                           usage=ProtoUsage(prompt_tokens=42_000, completion_tokens=300), cost_usd=0.1305),
                   LLMCall(model="Qwen/Qwen3-Coder-480B-A35B-Instruct", kind="research", latency_ms=400,
                           usage=ProtoUsage(prompt_tokens=8_000, completion_tokens=500), cost_usd=None),
                   LLMCall(model="anthropic/claude-sonnet-4-5", kind="compaction", latency_ms=2000,
                           usage=ProtoUsage(prompt_tokens=90_000, completion_tokens=2_000), cost_usd=0.3),
                   JobUpdate(job_id="6890f1a2b3c4d5e6f7a8b9c0", status="RUNNING", flavor="a10g-large", cost_usd=0.25),
                   JobUpdate(job_id="local-1a2b3c4d5e", status="COMPLETED", flavor="cpu-basic", cost_usd=0.0))
        await pilot.press(*"/cost", "enter")
        await wait_for(pilot, lambda: app.conversation.query(CostReport), what="/cost")
        lines = app.conversation.query_one(CostReport).text.splitlines()
    assert lines[:5] == ["Session   $0.8140  (model calls $0.5640 + compute $0.2500)",
                         "          + 1 call at unknown price, not counted",
                         "Calls     4 model calls",
                         "Tokens    180,000 in · 3,700 out",
                         "          0 cache read · 0 cache write"]
    assert max(len(line) for line in lines) <= 60  # the conversation column at 120x36 with side panes

    def table(title: str) -> list[str]:
        start = next(i for i, line in enumerate(lines) if line.startswith(title))
        end = next((i for i in range(start, len(lines)) if not lines[i]), len(lines))
        return lines[start:end]

    kinds = table("By kind")
    assert [row.split() for row in kinds] == [["By", "kind", "calls", "cost", "unpriced"],
                                              ["compaction", "1", "$0.3000"], ["main", "2", "$0.2640"],
                                              ["research", "1", "unknown", "1"]]  # never "$0" for no price
    models = table("By model")
    assert [row.split() for row in models[1:]] == [["Qwen/Qwen3-Co…-A35B-Instruct", "1", "unknown", "1"],
                                                   ["anthropic/claude-sonnet-4-5", "3", "$0.5640"]]
    # right-aligned numbers: every row of a table ends its cost column in the same cell
    for rows in (kinds, models):
        edge = rows[0].index("cost") + len("cost")
        assert all(row.index(row.split()[2]) + len(row.split()[2]) == edge for row in rows[1:])
    jobs = table("Jobs")
    assert [row.split() for row in jobs[1:]] == [["6890f1a2b3c4d5e6f7a8b9c0", "a10g-large", "running", "$0.2500"],
                                                 ["local-1a2b3c4d5e", "cpu-basic", "completed", "$0.0000"],
                                                 "a job still running shows its cost so far".split()]


async def test_an_effort_the_model_refused_is_shown_with_what_was_asked():
    from agent.protocol import SettingsChanged
    from tests.tui_support import AppUnderTest, feed
    from widgets.conversation import Notice

    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await feed(app, SettingsChanged(model="openai/gpt-5", model_label="gpt-5", effort="high",
                                        effort_requested="xhigh", approval_mode="auto", yolo=False,
                                        yolo_cap_usd=5.0, context_window=400_000))
        await pilot.pause()
        assert app.status_info.effort == "high"
        texts = [str(n.render()) for n in app.conversation.query(Notice)]
        assert any("effort high (asked xhigh)" in t for t in texts)


async def test_always_deny_rm_says_what_else_it_stops_and_later_stops_find_delete(
        llm_server, monkeypatch, tmp_path, mlintern_home):
    """The deny on a deleting verb covers its indirect forms (agent/bash_deny.py): the card says
    so where the user chooses it, and a later `find -delete` is refused naming the form."""
    llm_server.script(ToolCalls([Call("r1", "bash", '{"command": "rm -rf build"}')]), Text("ok"),
                      ToolCalls([Call("r2", "bash", '{"command": "find build -name \\"*.o\\" -delete"}')]),
                      Text("ok again"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        session = await start_app(pilot, app, llm_server, monkeypatch, tmp_path, approval_mode="ask")
        (session.cwd / "build").mkdir()
        (session.cwd / "build" / "a.o").write_text("x")
        asked = count_cards(app)
        await send(pilot, "clean")
        card = await open_card(pilot, app)
        await pilot.press("D")
        hint = str(card.query_one(".approval-keys").render())
        assert 'Always deny bash commands starting with "rm"' in hint
        assert "also stops" in hint and "find -delete" in hint and "$(...)" in hint
        await pilot.press("u")
        await until_idle(pilot, app)
        await send(pilot, "clean differently")
        await until_idle(pilot, app)
        assert len(asked) == 1
    later = tool_results(llm_server.requests[3])["r2"]
    assert "NOT executed" in later and "a deny on rm also covers" in later and "find" in later
    assert (tmp_path / "work" / "build" / "a.o").exists()
