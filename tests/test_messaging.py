"""Notifications: the messaging config checked at start, Slack payloads on a loopback endpoint
(mrkdwn, 429 with Retry-After, a bad token, 5xx), the notify tool through the policy, and
automatic news for approvals, errors, finished turns and ended jobs."""

from __future__ import annotations

import asyncio
import json

import pytest

from agent.config import Config, LLMSettings
from agent.messaging import Destination, SlackClient, compose, parse_messaging, to_mrkdwn
from agent.protocol import Shutdown, UserInput
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls
from tests.fakes._loopback import RawResponse
from tests.fakes.sink_server import SinkServer


def ok(_request=None) -> RawResponse:
    return RawResponse(200, b'{"ok": true, "ts": "1.2"}', "application/json")


@pytest.fixture
def slack():
    with SinkServer() as sink:
        sink.route("/api/chat.postMessage", ok)
        yield sink


def posted(sink) -> list[dict]:
    return [json.loads(r.body) for r in sink.requests if r.path == "/api/chat.postMessage"]


def test_the_config_is_checked_and_every_problem_said():
    cfg = parse_messaging({
        "enabled": True, "auto_event_types": ["turn_complete", "lunch"], "colour": "red",
        "destinations": {
            "team": {"provider": "slack", "token": "xoxb-1", "channel": "C1", "allow_agent_tool": True},
            "Bad Name": {"token": "x", "channel": "y"},
            "notoken": {"provider": "slack", "channel": "C2"},
            "email": {"provider": "email", "token": "x", "channel": "y"},
            "typo": {"token": "x", "channel": "y", "alow_agent_tool": True},
        }}, env={})
    assert list(cfg.destinations) == ["team", "typo"] and cfg.tool_destinations == ["team"]
    assert cfg.auto_events == ("turn_complete",)
    text = "\n".join(cfg.problems)
    for words in ("colour", "lunch", "Bad Name", "notoken: needs both a token and a channel", "email",
                  "alow_agent_tool"):
        assert words in text, words
    off = parse_messaging({"enabled": False, "destinations": {"team": {"token": "x", "channel": "C"}}}, env={})
    assert not off.destinations and "enabled is false" in off.problems[0]
    assert "no destination" in parse_messaging({"enabled": True}, env={}).problems[0]


def test_the_environment_shortcut():
    env = {"SLACK_BOT_TOKEN": "xoxb-env", "SLACK_CHANNEL_ID": "C9", "MLINTERN_SLACK_AUTO_EVENTS": "error,job_ended"}
    cfg = parse_messaging({}, env=env)
    dest = cfg.destinations["slack.default"]
    assert (dest.token, dest.channel, dest.allow_agent_tool, dest.allow_auto_events) == ("xoxb-env", "C9", True, True)
    assert cfg.auto_events == ("error", "job_ended")
    assert not parse_messaging({}, env={**env, "MLINTERN_SLACK_NOTIFICATIONS": "0"}).destinations
    assert "without SLACK_CHANNEL_ID" in parse_messaging({}, env={"SLACK_BOT_TOKEN": "x"}).problems[0]


def test_markdown_becomes_mrkdwn_with_code_kept():
    text = to_mrkdwn("# Result\n**loss** 0.12 < 0.2 & see [the run](https://hf.co/x)\n```\na **b** <c>\n```\n`x<y`")
    assert text == "*Result*\n*loss* 0.12 &lt; 0.2 &amp; see <https://hf.co/x|the run>\n```\na **b** <c>\n```\n`x<y`"
    assert compose("Done", "all good", "success", {"session_id": "s1"}).startswith("[SUCCESS] Done\n\nall good\n\nsession_id: s1")


async def test_slack_delivery_retries_429_and_5xx_and_says_a_bad_token(slack):
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    answers = iter([RawResponse(429, b"{}", "application/json", {"Retry-After": "7"}),
                    RawResponse(503, b"busy"), ok()])
    slack.route("/api/chat.postMessage", lambda r: next(answers))
    client = SlackClient(api_url=slack.url("/api"), sleep=sleep)
    dest = Destination("team", "xoxb-good", "C1", username="mlintern")
    assert await client.post(dest, "hello *there*") is None
    assert waits == [7.0, 2.0]  # Retry-After honoured, then the schedule
    sent = posted(slack)
    assert len(sent) == 3 and sent[-1] == {"channel": "C1", "text": "hello *there*", "mrkdwn": True, "unfurl_links": False,
                                           "unfurl_media": False, "username": "mlintern"}
    assert slack.requests[-1].headers["authorization"] == "Bearer xoxb-good"
    slack.route("/api/chat.postMessage", RawResponse(200, b'{"ok": false, "error": "invalid_auth"}', "application/json"))
    assert await client.post(dest, "x") == "Slack refused the token (invalid_auth)"
    slack.route("/api/chat.postMessage", RawResponse(500, b"down"))
    waits.clear()
    assert "gave up after 4 attempts" in await client.post(dest, "x") and waits == [1.0, 2.0, 4.0]
    await client.aclose()


def slack_config(slack, **dest) -> Config:
    return Config(llm=LLMSettings(max_attempts=1), messaging={
        "enabled": True, "destinations": {"team": {"provider": "slack", "token": "xoxb-t", "channel": "C1",
                                                   "allow_agent_tool": True, "allow_auto_events": True, **dest}}})


async def test_the_notify_tool_and_automatic_news(slack, llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLINTERN_SLACK_API_URL", slack.url("/api"))
    s = make_session(llm_server, monkeypatch, tmp_path, config=slack_config(slack))
    assert "notify" in s.router.names and "team" in s.router.get("notify").description
    sub = s.subscribe("t")
    s.start()
    llm_server.script(ToolCalls([Call("n1", "notify", json.dumps({"destinations": ["team"], "message": "**Run** done",
                                                                     "severity": "success", "title": "Training"})),
                                 Call("n2", "notify", json.dumps({"destinations": ["elsewhere"], "message": "x"}))]),
                      Text("Finished: accuracy 91%."))
    s.submit(UserInput(text="tell them"))
    events = await collect_until(sub)
    outs = {e.tool_call_id: e for e in of_type(events, "tool_output")}
    assert outs["n1"].success and outs["n1"].output == "team: sent"
    assert not outs["n2"].success and "not a destination you may send to: elsewhere" in outs["n2"].output
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)  # the queue is flushed on close
    texts = [p["text"] for p in posted(slack)]
    assert texts[0].startswith("[SUCCESS] Training\n\n*Run* done") and "event_type: notify" in texts[0]
    done = [t for t in texts if t.startswith("[SUCCESS] Agent task complete")]
    assert done and "Finished: accuracy 91%." in done[0] and "event_type: turn_complete" in done[0]


async def test_a_broken_destination_is_said_at_start_and_failures_are_said(slack, llm_server, monkeypatch, tmp_path):
    monkeypatch.setenv("MLINTERN_SLACK_API_URL", slack.url("/api"))
    slack.route("/api/chat.postMessage", RawResponse(200, b'{"ok": false, "error": "channel_not_found"}', "application/json"))
    config = slack_config(slack, allow_agent_tool=False)
    config.messaging["destinations"]["half"] = {"provider": "slack", "channel": "C2"}
    s = make_session(llm_server, monkeypatch, tmp_path, config=config)
    assert "notify" not in s.router.names  # no destination allows the agent to write
    sub = s.subscribe("t")
    s.start()
    llm_server.script(Text("done"))
    s.submit(UserInput(text="go"))
    events = await collect_until(sub)
    logs = [e.log for e in of_type(events, "tool_log")]
    assert any("half: needs both a token and a channel" in line for line in logs)
    more = []

    def said() -> list[str]:
        return [e.log for e in of_type(events + more, "tool_log")]

    # the failure is said after the turn: wait for it (up to the same 0.5 s as before), not a fixed 0.5 s
    deadline = asyncio.get_running_loop().time() + 0.5
    while True:
        while not sub.queue.empty():
            more.append(sub.get_nowait())
        if any("Could not notify team" in line for line in said()) or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.01)
    assert any("Could not notify team: Slack has no channel C1" in line for line in said())
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)
