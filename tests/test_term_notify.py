"""Terminal notifications: what is written for an approval waiting, a turn ending or a job
ending while the terminal is not focused, in every ``terminal_notifications`` mode, inside
tmux, with text that tries to smuggle escape sequences; and the app writing exactly that
when unfocused and nothing when focused."""

from __future__ import annotations

import pytest
from textual import events

from agent.config import Config
from agent.protocol import ApprovalItem, ApprovalRequired, JobUpdate, Receipt, TurnComplete
from mlintern_tui import term_notify
from mlintern_tui.term_notify import BEL, ESC, TerminalNotifier, choose, clean, describe, sequence, tmux_passthrough
from tests.test_tui_snapshots import SIZE, ready
from tests.tui_support import AppUnderTest, feed, wait_for

PLAIN = {"TERM": "xterm-256color"}


def approval(*tools: str) -> ApprovalRequired:
    return ApprovalRequired(items=[ApprovalItem(tool_call_id=f"c{n}", tool=tool, arguments={"command": "ls"})
                                   for n, tool in enumerate(tools)])


def turn_end(text: str | None = "Done: the model is on the Hub.", reason: str = "done") -> TurnComplete:
    return TurnComplete(final_response=text, reason=reason, history_size=4, receipt=Receipt())  # type: ignore[arg-type]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --------------------------------------------------------------------------- the policy

@pytest.mark.parametrize("env,expected", [
    ({"TERM": "foot"}, "osc777"),
    ({"TERM": "foot-extra"}, "osc777"),
    ({"TERM": "xterm-ghostty", "TERM_PROGRAM": "ghostty"}, "osc777"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, "osc777"),
    ({"TERM": "rxvt-unicode-256color"}, "osc777"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "iTerm.app"}, "osc9"),
    ({"TERM": "xterm-256color", "WT_SESSION": "7c1e…"}, "osc9"),
    ({"TERM": "xterm-256color", "ConEmuPID": "4242"}, "osc9"),
    ({"TERM": "xterm-kitty", "KITTY_WINDOW_ID": "1"}, "bell"),  # kitty documents only OSC 99
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "vscode"}, "bell"),
    ({"TERM": "xterm-256color"}, "bell"),
    ({}, "bell"),
    # inside tmux the outer terminal shows only in what it left in the environment
    ({"TERM": "tmux-256color", "TERM_PROGRAM": "tmux", "TMUX": "/tmp/tmux-1000/default,1,0",
      "GHOSTTY_RESOURCES_DIR": "/usr/share/ghostty"}, "osc777"),
    ({"TERM": "screen-256color", "TERM_PROGRAM": "tmux", "TMUX": "/tmp/t,1,0", "LC_TERMINAL": "iTerm2"}, "osc9"),
    ({"TERM": "tmux-256color", "TERM_PROGRAM": "tmux", "TMUX": "/tmp/t,1,0"}, "bell"),
])
def test_auto_picks_what_the_terminal_is_known_to_show(env, expected):
    assert choose("auto", env) == expected


@pytest.mark.parametrize("mode", ["bell", "osc9", "osc777", "off"])
def test_a_mode_set_in_the_config_is_used_whatever_the_terminal(mode):
    assert choose(mode, {"TERM": "foot", "TERM_PROGRAM": "iTerm.app"}) == mode


def test_every_mode_writes_its_sequence():
    assert sequence("bell", "mlintern", "Turn finished", PLAIN) == "\x07"
    assert sequence("osc9", "mlintern", "Turn finished", PLAIN) == "\x1b]9;mlintern: Turn finished\x07"
    assert sequence("osc777", "mlintern", "Turn finished", PLAIN) == "\x1b]777;notify;mlintern;Turn finished\x07"
    assert sequence("off", "mlintern", "Turn finished", PLAIN) == ""


def test_inside_tmux_an_osc_goes_through_the_passthrough_with_its_escs_doubled():
    env = {"TERM": "tmux-256color", "TMUX": "/tmp/tmux-1000/default,4242,0"}
    assert sequence("osc777", "mlintern", "Job j1 completed", env) == \
        "\x1bPtmux;\x1b\x1b]777;notify;mlintern;Job j1 completed\x07\x1b\\"
    assert sequence("osc9", "mlintern", "Turn finished", env) == "\x1bPtmux;\x1b\x1b]9;mlintern: Turn finished\x07\x1b\\"
    assert sequence("bell", "mlintern", "Turn finished", env) == BEL  # tmux passes a bell on by itself
    assert tmux_passthrough(f"{ESC}]9;a{ESC}\\") == f"{ESC}Ptmux;{ESC}{ESC}]9;a{ESC}{ESC}\\{ESC}\\"


def test_text_from_the_model_cannot_end_the_sequence_or_start_another():
    hostile = "ok\x07\x1b]777;notify;pwned;x\x07\x1b[2J\x9c\u202eevil\u200b;more\r\nnext line\tand\x00so on"
    cleaned = clean(hostile, 200)
    assert all(ch.isprintable() for ch in cleaned)
    assert ESC not in cleaned and BEL not in cleaned and ";" not in cleaned and "\x9c" not in cleaned
    assert "\u202e" not in cleaned and "\u200b" not in cleaned
    assert cleaned == "ok ]777,notify,pwned,x [2J evil ,more next line and so on"
    seq = sequence("osc777", "mlintern", hostile, PLAIN)
    assert seq.count(ESC) == 1 and seq.count(BEL) == 1 and seq.endswith(BEL)
    assert seq.split(";")[:3] == ["\x1b]777", "notify", "mlintern"] and len(seq.split(";")) == 4
    osc9 = sequence("osc9", "mlintern", "42;1 " + hostile, PLAIN)
    assert osc9.count(ESC) == 1 and osc9.count(BEL) == 1 and osc9.count(";") == 1  # never "9;4;…" (progress)


def test_long_text_is_capped():
    body = clean("word " * 100, term_notify.BODY_MAX)
    assert len(body) == term_notify.BODY_MAX and body.endswith("…")
    seq = sequence("osc777", "t" * 100, "x" * 500, PLAIN)
    assert len(seq) < 200


def test_what_each_event_says():
    assert describe(approval("hf_jobs")) == "Approval needed: hf_jobs"
    assert describe(approval("bash", "write", "edit")) == "Approval needed: bash and 2 more"
    assert describe(approval("yolo_budget")) == "YOLO paused at its budget cap: raise it or stop"
    assert describe(turn_end("All done.\nDetails below")) == "Turn finished: All done."
    assert describe(turn_end(None)) == "Turn finished"
    assert describe(turn_end(reason="iteration_cap")) == "Turn stopped at the iteration cap"
    assert describe(turn_end(reason="approval_pending")) is None  # its approval already signalled
    assert describe(JobUpdate(job_id="j1", status="COMPLETED")) == "Job j1 completed"
    assert describe(JobUpdate(job_id="j2", status="ERROR", detail="failed: CUDA out of memory")) == \
        "Job j2 failed: CUDA out of memory"
    assert describe(JobUpdate(job_id="j3", status="CANCELED")) == "Job j3 canceled"
    assert describe(JobUpdate(job_id="j4", status="RUNNING")) is None


def test_the_notifier_signals_once_per_job_and_not_twice_in_a_burst():
    clock = Clock()
    notifier = TerminalNotifier(clock=clock)
    first = notifier.signal(JobUpdate(job_id="j1", status="COMPLETED"), "osc777", PLAIN)
    assert first == "\x1b]777;notify;mlintern;Job j1 completed\x07"
    clock.now += 10
    assert notifier.signal(JobUpdate(job_id="j1", status="COMPLETED", cost_usd=0.4), "osc777", PLAIN) == ""
    assert notifier.signal(approval("bash"), "bell", PLAIN) == BEL
    clock.now += 0.5  # a research sub-agent's second question right after the first
    assert notifier.signal(approval("write"), "bell", PLAIN) == ""
    clock.now += term_notify.MIN_INTERVAL_S
    assert notifier.signal(turn_end(), "osc9", PLAIN) == "\x1b]9;mlintern: Turn finished: Done: the model is on the Hub.\x07"
    clock.now += 10
    assert notifier.signal(turn_end(), "off", PLAIN) == ""
    assert notifier.signal(JobUpdate(job_id="j5", status="RUNNING"), "bell", PLAIN) == ""


# --------------------------------------------------------------------------- the app

async def blur(pilot) -> None:
    pilot.app.post_message(events.AppBlur())
    await wait_for(pilot, lambda: not pilot.app.app_focus, what="the terminal unfocused")


async def test_unfocused_the_app_signals_an_approval_a_turn_end_and_a_job_end(monkeypatch):
    for name in ("TMUX", "TERM_PROGRAM", "WT_SESSION", "ConEmuPID", "LC_TERMINAL", "ITERM_SESSION_ID",
                 "GHOSTTY_RESOURCES_DIR", "WEZTERM_EXECUTABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TERM", "foot")
    monkeypatch.setattr(term_notify, "MIN_INTERVAL_S", 0.0)
    app = AppUnderTest(config=Config(terminal_notifications="auto"))
    written: list[str] = []
    app.terminal_write = written.append
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready())
        await blur(pilot)
        await feed(app, approval("hf_jobs"))
        await wait_for(pilot, lambda: written, what="the approval signalled")
        assert written == ["\x1b]777;notify;mlintern;Approval needed: hf_jobs\x07"]
        await feed(app, turn_end("Launched: job j1 runs on a10g-large.\nMore"))
        await feed(app, JobUpdate(job_id="j1", status="RUNNING", flavor="a10g-large"),
                   JobUpdate(job_id="j1", status="COMPLETED", flavor="a10g-large"))
        assert written[1:] == ["\x1b]777;notify;mlintern;Turn finished: Launched: job j1 runs on a10g-large.\x07",
                               "\x1b]777;notify;mlintern;Job j1 completed\x07"]


async def test_inside_tmux_with_a_bell_configured(monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-1000/default,1,0")
    monkeypatch.setattr(term_notify, "MIN_INTERVAL_S", 0.0)
    app = AppUnderTest(config=Config(terminal_notifications="osc9"))
    written: list[str] = []
    app.terminal_write = written.append
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready())
        await blur(pilot)
        await feed(app, JobUpdate(job_id="j9", status="ERROR", detail="failed: exit code 1"))
        assert written == ["\x1bPtmux;\x1b\x1b]9;mlintern: Job j9 failed: exit code 1\x07\x1b\\"]


async def test_focused_or_off_nothing_is_written(monkeypatch):
    monkeypatch.setattr(term_notify, "MIN_INTERVAL_S", 0.0)
    app = AppUnderTest(config=Config(terminal_notifications="bell"))
    written: list[str] = []
    app.terminal_write = written.append
    async with app.run_test(size=SIZE) as pilot:
        await feed(app, ready())
        assert app.app_focus
        await feed(app, approval("bash"))
        await pilot.pause()
        await pilot.press("y")  # answered on the card
        await feed(app, turn_end(), JobUpdate(job_id="j1", status="COMPLETED"))
        assert written == []
        # back from another window: a key or a click says the terminal has focus again
        await blur(pilot)
        await feed(app, JobUpdate(job_id="j2", status="COMPLETED"))
        assert written == [BEL]
        app.post_message(events.AppFocus())
        await wait_for(pilot, lambda: app.app_focus, what="focused again")
        await feed(app, JobUpdate(job_id="j3", status="COMPLETED"))
        assert written == [BEL]
        app.config.terminal_notifications = "off"
        await blur(pilot)
        await feed(app, JobUpdate(job_id="j4", status="COMPLETED"))
        assert written == [BEL]
