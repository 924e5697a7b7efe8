"""Shared traces and feedback in the app: ``/share-traces`` and the statuses it brings, the
trace preview screen and every answer to it, ``/feedback``.

The app runs a real Session on the built-in demo model. Its ops are recorded, and the trace ops
(``share_traces``, ``trace_consent``) are kept from the session, which would go to the Hub; the
session's answers are published on its own bus (``session.emit``), the path the engine's
``trace_status`` and ``trace_preview`` events take to the bridge. ``feedback`` goes through to
the session, which answers with its own notice.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agent.protocol import ErrorEvent, Feedback, ShareTraces, TraceConsent, TraceFinding, TraceStatus
from mlintern_tui.screens.trace_preview import TracePreviewScreen
from mlintern_tui.trace_link import REFUSED, status_notice
from tests.engine_support import make_session
from tests.test_tui_snapshots import SIZE, TRACE_FILES, TRACE_NOW, TRACE_URL, trace_findings, trace_preview
from tests.tui_support import AppUnderTest, palette_highlights, press_at_once, record_ops, wait_for
from widgets.conversation import Notice
from widgets.trace_findings import by_kind, mask_prefill, masked_parts, own_span, size_text

ROOT = Path(__file__).resolve().parent.parent


# --------------------------------------------------------------------------- helpers

async def start(pilot, app, llm_server, monkeypatch, tmp_path):
    session = make_session(llm_server, monkeypatch, tmp_path, model_id="demo")
    app.wall_clock = lambda: TRACE_NOW
    app.attach_session(session)
    await wait_for(pilot, lambda: app.status_info.model_ready, what="engine ready")
    return session, record_ops(monkeypatch, session, held=(ShareTraces, TraceConsent))


async def command(pilot, text: str) -> None:
    pilot.app.prompt.text = text
    pilot.app.prompt.action_submit()
    await pilot.pause()


def notices(app) -> list[str]:
    return [str(n.render()) for n in app.conversation.query(Notice)]


def of_type(sent, kind) -> list:
    return [op for op in sent if isinstance(op, kind)]


def consents(sent) -> list[tuple[bool, list[str], bool]]:
    return [(op.accept, op.mask, op.save) for op in of_type(sent, TraceConsent)]


def preview_screen(app) -> TracePreviewScreen | None:
    return app.screen if isinstance(app.screen, TracePreviewScreen) else None


async def open_preview(pilot, session, preview=None) -> TracePreviewScreen:
    session.emit(preview or trace_preview())
    await wait_for(pilot, lambda: preview_screen(pilot.app) is not None, what="the trace preview")
    screen = preview_screen(pilot.app)
    await wait_for(pilot, lambda: screen.findings_list.option_count > 0 or screen.has_class("-empty"),
                   what="the findings listed")
    return screen


def text_of(screen: TracePreviewScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


def rows(screen: TracePreviewScreen) -> list[str]:
    lst = screen.findings_list
    return [lst.get_option_at_index(i).prompt.plain for i in range(lst.option_count)]


# --------------------------------------------------------------------------- /share-traces

async def test_share_traces_sends_the_op_and_each_status_becomes_a_notice(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await command(pilot, "/share-traces")
        await command(pilot, "/share-traces Private")
        await command(pilot, "/share-traces everyone")
        assert [op.visibility for op in of_type(sent, ShareTraces)] == [None, "private"]
        assert notices(app)[-1] == ("✗ Unknown place 'everyone': use /share-traces private, public or off "
                                    "(or no argument to see where traces go).")

        before = len(notices(app))
        session.emit(TraceStatus(visibility="off"))
        await wait_for(pilot, lambda: len(notices(app)) == before + 1, what="the status notice")
        assert notices(app)[-1] == ("ℹ Trace sharing: off (nothing of this session is uploaded). "
                                    "/share-traces private or public turns it on.")
        session.emit(TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 180, accepted=True))
        await wait_for(pilot, lambda: len(notices(app)) == before + 2, what="the second status notice")
        assert notices(app)[-1] == ("ℹ Trace sharing: private (redacted, to your private dataset on the Hub).\n"
                                    f"Last upload 3 min ago: {TRACE_URL}")

        # the heartbeat's next upload, a minute later, with nothing new: not said again
        session.emit(TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 60, accepted=True))
        session.emit(TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 60, accepted=True,
                                 error="503 Service Unavailable"))
        await wait_for(pilot, lambda: len(notices(app)) == before + 3, what="the failed upload")
        assert notices(app)[-1].startswith("✗ Trace sharing: private")
        assert notices(app)[-1].endswith("Upload failed: 503 Service Unavailable.")
        # asked again: said again, even with nothing new
        await command(pilot, "/share-traces")
        session.emit(TraceStatus(visibility="private", url=TRACE_URL, uploaded_at=TRACE_NOW - 60, accepted=True,
                                 error="503 Service Unavailable"))
        await wait_for(pilot, lambda: len(notices(app)) == before + 4, what="the answer to /share-traces")
        # the palette runs the same command
        await pilot.press("ctrl+p")
        await press_at_once(pilot, *"share-traces")
        await palette_highlights(pilot, "/share-traces")
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(of_type(sent, ShareTraces)) == 4, what="the palette's /share-traces")
        assert of_type(sent, ShareTraces)[-1].visibility is None


def test_status_notices_in_every_state():
    now = TRACE_NOW
    kind, text = status_notice(TraceStatus(visibility="private", unavailable=(
        "no Hugging Face token: set HF_TOKEN or run `hf auth login`")), now)
    assert kind == "guard"
    assert text.splitlines()[1] == "Nothing can be shared: no Hugging Face token: set HF_TOKEN or run `hf auth login`."
    kind, text = status_notice(TraceStatus(visibility="public"), now)
    assert kind == "guard" and "(redacted, to your public dataset on the Hub: anyone can read it)." in text
    assert text.splitlines()[1] == "Nothing is uploaded until you accept this session's preview."
    kind, text = status_notice(TraceStatus(visibility="private", accepted=True), now)
    assert (kind, text.splitlines()[1]) == ("info", "Accepted: the first upload is on its way.")
    kind, text = status_notice(TraceStatus(visibility="off", url=TRACE_URL, uploaded_at=now - 7200, accepted=True), now)
    assert text.splitlines()[1] == f"Earlier uploads stay in {TRACE_URL}"
    kind, text = status_notice(TraceStatus(visibility="private", url=TRACE_URL, accepted=True), now)
    assert text.splitlines()[1] == f"Dataset: {TRACE_URL}"
    kind, text = status_notice(TraceStatus(visibility="private", accepted=True, error="visibility not changed: 403"), now)
    assert kind == "error" and len(text.splitlines()) == 3


# --------------------------------------------------------------------------- the preview

async def test_a_preview_opens_the_screen_and_a_accepts(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await command(pilot, "/share-traces public")
        session.emit(TraceStatus(visibility="public"))
        screen = await open_preview(pilot, session)
        head = text_of(screen, "#trace-header")
        assert head.startswith("This session's trace, 42 records, 18.3 KB, will be uploaded to your public dataset: "
                               "anyone can read it.\nNothing is uploaded until you accept.")
        files = text_of(screen, "#trace-files")
        assert files.splitlines() == ["Files (3):", *(f"  {f}" for f in TRACE_FILES)]
        assert rows(screen)[0] == "Hugging Face token · 2"
        assert rows(screen)[1] == ("  record 3 · message.content[0].input.command\n"
                                   "  export HF_TOKEN=⟦hf_a…⟧ && python train.py --push-to-hub alice/qwen-support")
        assert [r for r in rows(screen) if " · " in r and "\n" not in r] == [
            "Hugging Face token · 2", "home directory · 2", "OpenAI key · 1", "secret assignment · 1",
            "bearer token · 1"]
        assert screen.query_one("Vertical").border_subtitle == (
            "7 masked: 2 Hugging Face token · 2 home directory · 1 OpenAI key · 1 secret assignment · 1 bearer token")
        assert screen.findings_list.highlighted_finding == trace_findings()[0]
        assert consents(sent) == []  # nothing leaves until the user answers

        await pilot.press("a")
        await wait_for(pilot, lambda: preview_screen(app) is None, what="the preview closed")
        assert consents(sent) == [(True, [], False)]
        assert app.focused is app.prompt
        before = len(notices(app))
        session.emit(TraceStatus(visibility="public", accepted=True))
        await wait_for(pilot, lambda: len(notices(app)) == before + 1, what="the accepted status")
        assert notices(app)[-1].endswith("Accepted: the first upload is on its way.")


async def test_m_masks_a_pattern_and_the_next_preview_updates_the_open_screen(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_preview(pilot, session)
        await pilot.press("down")  # the second Hugging Face token
        assert screen.findings_list.highlighted_finding == trace_findings()[1]
        await pilot.press("m")
        assert screen.masking and app.focused is screen.query_one("#mask-input")
        await press_at_once(pilot, *"alice/qwen-[a-z]+")
        await pilot.press("tab", "a", "shift+tab")  # a on the save box: not accept
        assert preview_screen(app) is screen and consents(sent) == []
        await pilot.press("ctrl+s", "enter")
        await wait_for(pilot, lambda: consents(sent), what="the mask sent")
        assert consents(sent) == [(False, ["alice/qwen-[a-z]+"], True)]
        assert not screen.masking and app.focused is screen.findings_list
        assert text_of(screen, "#trace-message") == ("Masking alice/qwen-[a-z]+ and keeping it in your config: "
                                                     "a new preview follows…")
        assert preview_screen(app) is screen  # it stays open for the answer

        # the session's new preview: the same screen, one more finding, the cursor kept
        more = [*trace_findings(), TraceFinding(record=3, field="message.content[0].input.command",
                                                kind="your pattern",
                                                context="&& python train.py --push-to-hub ⟦alic…⟧")]
        session.emit(trace_preview(more, bytes=18_790))
        await wait_for(pilot, lambda: "8 masked" in (screen.query_one("Vertical").border_subtitle or ""),
                       what="the new preview shown")
        assert preview_screen(app) is screen
        assert screen.findings_list.highlighted_finding == trace_findings()[1]
        assert "18.3 KB" in text_of(screen, "#trace-header")
        assert text_of(screen, "#trace-message").startswith("Preview updated: 8 masked:")
        assert "your pattern · 1" in rows(screen)

        # a pattern that does not compile never leaves the screen; one the session refuses comes back
        await pilot.press("m", *"([", "enter")
        assert screen.has_class("-error") and text_of(screen, "#trace-message").startswith(
            "✗ Not a regular expression: unterminated character set")
        assert len(consents(sent)) == 1
        await pilot.press("escape")  # leaves the mask box, not the preview
        assert not screen.masking and preview_screen(app) is screen
        app.update_status(busy=True)  # as if a turn were running beside it
        session.emit(ErrorEvent(message="Not a pattern: '(?<x': missing group name", kind="traces"))
        await wait_for(pilot, lambda: "missing group name" in text_of(screen, "#trace-message"), what="the error")
        assert any("Not a pattern" in n for n in notices(app))
        assert app.status_info.busy  # an answer about traces does not end the turn


async def test_enter_on_a_finding_prefills_a_pattern_for_what_stands_before_it(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        screen = await open_preview(pilot, session)
        target = next(i for i, f in enumerate(trace_findings()) if f.kind == "bearer token")
        while screen.findings_list.highlighted_finding != trace_findings()[target]:
            await pilot.press("down")
        await pilot.press("enter")
        field = screen.query_one("#mask-input")
        assert screen.masking and field.value == 'curl -s -H "Authorization: Bearer '
        await pilot.press("enter")
        await wait_for(pilot, lambda: consents(sent), what="the mask sent")
        assert consents(sent) == [(False, ['curl -s -H "Authorization: Bearer '], False)]


async def test_n_or_escape_says_not_now_and_nothing_is_uploaded(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await open_preview(pilot, session)
        before = len(notices(app))
        await pilot.press("n")
        await wait_for(pilot, lambda: preview_screen(app) is None, what="the preview closed")
        assert consents(sent) == [(False, [], False)]
        await wait_for(pilot, lambda: len(notices(app)) == before + 1, what="the refusal said")
        assert notices(app)[-1] == "ℹ " + REFUSED
        # the session's answer (sharing off for this session) is not said twice
        session.emit(TraceStatus(visibility="off"))
        await pilot.pause(0.2)
        assert len(notices(app)) == before + 1

        # escape: the same; a preview with nothing masked still asks
        screen = await open_preview(pilot, session, trace_preview([]))
        assert screen.has_class("-empty") and text_of(screen, "#trace-none").startswith("Nothing was masked")
        assert screen.query_one("Vertical").border_subtitle == "nothing masked"
        await pilot.press("escape")
        await wait_for(pilot, lambda: preview_screen(app) is None, what="the preview closed")
        assert consents(sent) == [(False, [], False), (False, [], False)]


def test_finding_helpers():
    context = "Token is valid (permission: write). HF_TOKEN=⟦hf_a…⟧ OPENAI_API_KEY=⟦sk-p…⟧"
    assert masked_parts(context) == [("Token is valid (permission: write). HF_TOKEN=", False), ("⟦hf_a…⟧", True),
                                     (" OPENAI_API_KEY=", False), ("⟦sk-p…⟧", True)]
    assert own_span(context) == context.index("⟦")
    # cut 60 characters before its own span: that one, not an earlier one on the line
    long = "x" * 20 + "⟦a…⟧" + "y" * 30 + "TOKEN=" + "⟦b…⟧" + " and more"
    assert own_span(long) == 60 and mask_prefill(long) == "y" * 30 + "TOKEN="
    assert mask_prefill("z" * 50 + "=" + "⟦b…⟧") == "z" * 39 + "="  # the last 40 characters
    assert mask_prefill("⟦/home/alice⟧/sft-project") == ""
    assert mask_prefill("run: python3 train.py --out /data/x(1).bin key=⟦abcd…⟧") == r"train\.py --out /data/x\(1\)\.bin key="
    assert size_text(812) == "812 bytes" and size_text(18_734) == "18.3 KB" and size_text(3_500_000) == "3.3 MB"
    assert [kind for kind, _ in by_kind(trace_findings())][:2] == ["Hugging Face token", "home directory"]


# --------------------------------------------------------------------------- /feedback

async def test_feedback_goes_to_the_session(llm_server, monkeypatch, tmp_path):
    app = AppUnderTest()
    async with app.run_test(size=SIZE) as pilot:
        session, sent = await start(pilot, app, llm_server, monkeypatch, tmp_path)
        await command(pilot, "/feedback good  found the bug   in my collator")
        assert [(op.rating, op.comment) for op in of_type(sent, Feedback)] == [("good", "found the bug in my collator")]
        await wait_for(pilot, lambda: any("Feedback (good) kept with this session." in n for n in notices(app)),
                       what="the session's answer")
        await command(pilot, "/feedback BAD")
        assert [(op.rating, op.comment) for op in of_type(sent, Feedback)][-1] == ("bad", "")
        await command(pilot, "/feedback meh")
        assert notices(app)[-1].startswith("✗ Usage: /feedback good|bad [comment]")
        assert len(of_type(sent, Feedback)) == 2


# --------------------------------------------------------------------------- start-up cost

def test_the_app_loads_nothing_of_traces_or_notifications_until_they_are_used():
    code = ("import sys, mlintern_tui.app; "
            "print([m for m in ('mlintern_tui.screens.trace_preview', 'mlintern_tui.trace_link', "
            "'mlintern_tui.term_notify', 'widgets.trace_findings') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
