"""Keeping Python's garbage collector from freezing the screen.

Measured while a 20,000-token answer streams (in-process, 120x36): with the default
thresholds the collector ran ~2,000 young and 6 full collections in 10 s; the full ones
walk every object alive - about a million of them once litellm is imported - and took up
to 324 ms each, 1.8 s in all. Rendering makes a lot of short-lived reference cycles
(Textual strips that cache themselves), so collections cannot simply be turned off.

- ``tune``: a young generation big enough to hold a frame's temporaries, so they are
  garbage by the time it is collected and are not promoted (11 young collections per 10 s,
  none older; 0.15 s in all, the longest 30 ms);
- ``hold_until_built``: no collection at all while the app imports and builds its first
  screen and its session (one young collection there cost 9-20 ms on the way to the first
  frame); ``freeze_long_lived`` or the first frame (``startup_over``) turns it back on;
- ``freeze_long_lived``: once the session is built (and litellm loaded, if its model needs
  it), the objects so far leave the collector's sight (they live as long as the process);
- ``collect_when_idle``: a full collection once a turn has ended and no key has come for two
  seconds, at most once every two minutes, so the long-lived part does not grow until a full
  collection lands mid-stream. It holds everything while it runs: ~366 ms after a turn of 800
  back-to-back rounds (bench/README.md), which is why it waits for a pause in the typing.
"""

from __future__ import annotations

import gc
import time

YOUNG_THRESHOLD = 50_000
IDLE_COLLECT_EVERY_S = 120.0

_last_full = time.monotonic()


def tune() -> None:
    gc.set_threshold(YOUNG_THRESHOLD, 20, 100)


LOADER = "pydantic.plugin._loader"


def no_pydantic_plugins() -> None:
    """Our own models (the protocol, the config) are validated without third-party pydantic
    plugins: pydantic looks for them by reading the entry points of every installed package
    the first time it builds a validator (~10 ms on the way to the first frame, in a
    virtualenv of ~120 packages). A user's scripts and jobs run in their own processes, where
    their plugins still load. ``PYDANTIC_DISABLE_PLUGINS`` set by the user is left to pydantic."""
    import os
    import sys

    if os.environ.get("PYDANTIC_DISABLE_PLUGINS") is not None:
        return
    _loader = sys.modules.get(LOADER)
    if _loader is None:
        # not imported yet: pydantic imports it on the first validator it builds, and with it
        # importlib.metadata (~10 ms). It asks it for ``get_plugins`` only (private names: if
        # they change, pydantic imports its own module and this costs only time)
        import types

        stub = types.ModuleType(LOADER, "No pydantic plugins in the app's process (mlintern_tui/heap.py).")
        stub.get_plugins = lambda: ()  # type: ignore[attr-defined]
        sys.modules[LOADER] = stub
    elif getattr(_loader, "_plugins", ...) is None:  # imported, not looked for yet
        _loader._plugins = {}


def hold_until_built() -> None:
    gc.disable()


def startup_over() -> None:
    """The first frame is out: collections go on even if the session is not built yet (a
    model litellm serves loads in a thread, a broken config waits for the user)."""
    gc.enable()


def freeze_long_lived(collect: bool = True) -> None:
    """``collect=False`` skips the full collection first (~35 ms on the way to "ready"): after
    imports without litellm there is little cyclic garbage to leave behind. Measured with the
    OpenAI-compatible transport: 985 objects (functions, classes made on the fly, argparse's
    help formatters, Textual's style scratch nodes; no file or socket), kept for good."""
    if collect:
        gc.collect()
    gc.freeze()
    gc.enable()


def full_collection_due(now: float | None = None) -> bool:
    """Whether the last full collection was long enough ago for ``collect_when_idle`` to run."""
    return (time.monotonic() if now is None else now) - _last_full >= IDLE_COLLECT_EVERY_S


def collect_when_idle(now: float | None = None) -> bool:
    """Run a full collection if the last one was long enough ago; True if it ran."""
    global _last_full
    now = time.monotonic() if now is None else now
    if not full_collection_due(now):
        return False
    _last_full = now
    gc.collect()
    return True
