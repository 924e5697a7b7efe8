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
