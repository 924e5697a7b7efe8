"""Permissions in the app (issue 20): the agent's rewrite of the config waits on an approval card
that says what it widens, in auto and YOLO alike; a config widened outside the app is asked
about at the next start, before anything runs - ``a`` accepts, ``k``/esc keeps what the user
agreed to and puts the file back - and narrowing applies at once."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from agent.config import Config, config_path, load_config
from agent.permissions import PermissionReview, review_permissions, settings_of
from mlintern_tui.screens.approval import GRACE_S
from mlintern_tui.screens.permission_change import PermissionChangeScreen
from tests.engine_support import make_session
from tests.fakes import Call, Text, ToolCalls
from tests.tui_support import AppUnderTest, approval_screen, wait_for
from widgets.conversation import Notice

SIZE = (120, 36)
USER_CONFIG = {"approval_rules": [{"effect": "deny", "tool": "bash", "pattern": "rm"}]}
ROGUE_CONFIG = {"approval_mode": "yolo", "yolo_cap_usd": 100000,
                "approval_rules": [{"effect": "allow", "tool": "hf_jobs"}]}


def change_screen(app) -> PermissionChangeScreen | None:
    return app.screen if isinstance(app.screen, PermissionChangeScreen) else None


def notices(app) -> str:
    return "\n".join(str(n.render()) for n in app.query(Notice))


async def test_an_earlier_start_remembers_then_a_hand_widening_is_asked_about_and_kept_out(mlintern_home):
    config_path().write_text(json.dumps(USER_CONFIG))
    app = AppUnderTest(config=None)  # loads the user's file, as `mlintern` does
    async with app.run_test(size=SIZE) as pilot:  # the first start remembers the file as it is
        await pilot.pause()
        assert change_screen(app) is None
    config_path().write_text(json.dumps(ROGUE_CONFIG))  # widened outside the app

    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: change_screen(app) is not None, what="the permission-change screen")
        shown = "\n".join(str(s.render()) for s in change_screen(app).query("Static"))
        assert "+ YOLO cap $5.00 → $100,000.00" in shown
        assert '+ rule removed: always deny bash commands starting with "rm"' in shown
        # while it asks, the app holds what the user agreed to
        assert app.config.approval_mode == "auto" and app.status_info.mode == "auto"
        assert [r.tool for r in app.config.approval_rules] == ["bash"]
        change_screen(app)._keys.opened_at = time.monotonic()  # however slow the machine, the key lands in the grace period
        await pilot.press("a")  # inside the grace period: not an answer
        assert change_screen(app) is not None
        await pilot.pause(GRACE_S + 0.1)
        await pilot.press("k")
        await wait_for(pilot, lambda: "settings back as they were" in notices(app), what="the kept notice")
        assert app.config.approval_mode == "auto" and app.config.yolo_cap_usd == 5.0
    kept = json.loads(config_path().read_text())
    assert kept["approval_rules"] == USER_CONFIG["approval_rules"] and kept["approval_mode"] == "auto"
    assert not review_permissions(load_config()).widened


async def test_accepting_applies_the_file_and_is_remembered(mlintern_home):
    config_path().write_text(json.dumps(USER_CONFIG))
    review_permissions(load_config())  # an earlier start
    config_path().write_text(json.dumps(ROGUE_CONFIG))
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: change_screen(app) is not None, what="the permission-change screen")
        await pilot.pause(GRACE_S + 0.1)
        await pilot.press("a")
        await wait_for(pilot, lambda: "Accepted" in notices(app), what="the accepted notice")
        assert app.config.approval_mode == "yolo" and app.status_info.mode == "yolo"
        assert app.status_info.yolo_cap_usd == 100000
    assert not review_permissions(load_config()).widened
    assert json.loads(config_path().read_text()) == ROGUE_CONFIG  # the file as the user accepted it


async def test_narrowing_applies_at_start_without_a_question(mlintern_home):
    config_path().write_text(json.dumps({"approval_mode": "yolo"}))
    review_permissions(load_config())
    config_path().write_text(json.dumps(USER_CONFIG))
    app = AppUnderTest(config=None)
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "narrowed the agent's permissions" in notices(app), what="the narrowing notice")
        assert change_screen(app) is None and app.config.approval_mode == "auto"
        assert 'new rule: always deny bash commands starting with "rm"' in notices(app)


@pytest.mark.parametrize("mode", ["auto", "yolo"])
async def test_the_agents_rewrite_waits_on_a_card_that_says_what_it_widens(mode, llm_server, monkeypatch, tmp_path):
    path = config_path()
    path.write_text(json.dumps(USER_CONFIG))
    before = path.read_text()
    llm_server.script(
        ToolCalls([Call("w1", "write", json.dumps({"path": str(path), "content": json.dumps(ROGUE_CONFIG)}))]),
        Text("Left it as it was."),
    )
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session = make_session(llm_server, monkeypatch, tmp_path, approval_mode=mode)
        app.attach_session(session)
        await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
        app.prompt.text = "make yourself at home"
        app.prompt.action_submit()
        await wait_for(pilot, lambda: approval_screen(app) is not None, what="the approval card")
        card = approval_screen(app)
        assert card.item.tool == "write" and card.item.always_ask and card.item.suggested_rule is None
        assert "It WIDENS your permissions" in card.item.reason and "YOLO cap $5.00 → $100,000.00" in card.item.reason
        await pilot.pause(GRACE_S + 0.1)
        await pilot.press("n")
        # the session is idle while the card waits: the turn ends once the engine took the answer
        await wait_for(pilot, lambda: not app.status_info.busy and not session.busy and session.engine.pending is None,
                       what="turn end", timeout=20)
    assert path.read_text() == before
    results = {m["tool_call_id"]: m["content"] for m in llm_server.requests[1]["messages"] if m["role"] == "tool"}
    assert "rejected" in results["w1"]


# --------------------------------------------------------------------------- snapshot


def test_snapshot_permissions_widened_outside_the_app(snap_compare):
    """At a start after the config was widened outside the app: a modal with a warning-coloured
    border titled "Your permissions were changed outside mlintern", the config's path and "gives
    the agent more room than you last agreed to:", five + lines in the warning colour (approval
    mode auto → yolo, YOLO cap $5.00 → $100,000.00, a new allow rule for hf_jobs, the removed
    deny rule for rm, pass_env AWS_SECRET_ACCESS_KEY), a muted "Narrower, and already in force"
    line (pass_env HF_TOKEN), the sentence that nothing has started yet, and the keys: a accept ·
    k or esc keep what you agreed to."""
    agreed = settings_of(Config(approval_rules=[{"effect": "deny", "tool": "bash", "pattern": "rm"}],
                                pass_env=["HF_TOKEN"]))
    now = settings_of(Config(approval_mode="yolo", yolo_cap_usd=100000, pass_env=["AWS_SECRET_ACCESS_KEY"],
                             approval_rules=[{"effect": "allow", "tool": "hf_jobs"}]))
    review = PermissionReview(
        Path("/home/me/.config/mlintern/config.json"), now, agreed,
        wider=["approval mode auto → yolo (gated calls run without asking, within the YOLO cap)",
               "YOLO cap $5.00 → $100,000.00", "new rule: always allow hf_jobs (any arguments)",
               'rule removed: always deny bash commands starting with "rm"',
               "pass_env: AWS_SECRET_ACCESS_KEY now reaches bash and local jobs"],
        narrower=["pass_env: HF_TOKEN no longer reaches bash and local jobs"])

    async def run_before(pilot):
        await pilot.app.push_screen(PermissionChangeScreen(review))
        await pilot.pause()

    assert snap_compare(AppUnderTest(), terminal_size=SIZE, run_before=run_before)
