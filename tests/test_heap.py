"""The collector at start (mlintern_tui/heap.py): held while the app imports and builds its
first screen and session, on again once the session is built (the objects so far frozen) or
once the first frame is out, whichever comes first."""

from __future__ import annotations

import gc

import pytest

from mlintern_tui import heap
from tests.tui_support import AppUnderTest


@pytest.fixture
def collector():
    yield
    gc.unfreeze()
    gc.enable()


def test_held_until_the_session_is_built_then_the_build_is_frozen(collector):
    heap.hold_until_built()
    assert not gc.isenabled()
    kept = [[] for _ in range(100)]  # what the build made: it lives as long as the process
    heap.freeze_long_lived(collect=False)
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(kept)


async def test_the_first_frame_turns_collection_on_when_no_session_is_built_yet(collector):
    """A model litellm serves loads in a thread after the first frame, and a broken config
    waits for the user: collections must not stay off meanwhile."""
    heap.hold_until_built()
    app = AppUnderTest()  # no engine: nothing freezes
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert gc.isenabled()


async def test_the_full_collection_at_a_turns_end_waits_for_a_pause_in_the_typing(llm_server, monkeypatch, tmp_path):
    """It holds every key while it runs (~0.4 s after hundreds of rounds): not right at the
    turn's end, not while the user types, once no key has come for ``COLLECT_QUIET_S``."""
    import time

    from mlintern_tui import engine_link
    from tests.fakes import Text
    from tests.test_tui_pilot import send, start_app, until_idle
    from tests.tui_support import wait_for

    monkeypatch.setattr(engine_link, "COLLECT_QUIET_S", 1.0)  # ten times the typing's gaps
    monkeypatch.setattr(heap, "_last_full", time.monotonic() - 2 * heap.IDLE_COLLECT_EVERY_S)  # due
    ran: list[tuple[float, bool]] = []
    real = heap.collect_when_idle
    monkeypatch.setattr(heap, "collect_when_idle", lambda now=None: ran.append((time.perf_counter(), real(now))))
    llm_server.script(Text("done"), Text("again"))
    app = AppUnderTest()
    async with app.run_test(size=(120, 36)) as pilot:
        await start_app(pilot, app, llm_server, monkeypatch, tmp_path)
        await send(pilot, "go")
        await until_idle(pilot, app)
        for key in "abcdefgh":  # typing the next message: a key every 0.1 s
            await pilot.press(key)
            await pilot.pause(0.1)
        assert ran == []
        last_key = app.last_input_at
        await wait_for(pilot, lambda: ran, what="the collection", timeout=5)
        assert ran[0][1] is True and ran[0][0] - last_key >= 1.0
        await pilot.press("enter")  # the next turn's end: not due again for two minutes
        await until_idle(pilot, app)
        await pilot.pause(0.6)
        assert len(ran) == 1 and app._collect_timer is None
