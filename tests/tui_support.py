"""Building the app for Pilot and snapshot tests: fixed size, no cursor blink, events fed
straight into the bridge (snapshots) or a real Session on the loopback model (Pilot)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.config import Config
from agent.protocol import Event
from mlintern_tui.app import MLInternApp
from mlintern_tui.screens.approval import ApprovalScreen
from widgets.prompt import PromptArea


class AppUnderTest(MLInternApp):
    """The real app, minus the things that make screenshots differ run to run."""

    def __init__(self, *, theme: str | None = None, **kwargs):
        kwargs.setdefault("config", Config(theme=theme))
        kwargs.setdefault("start_engine", False)
        super().__init__(**kwargs)

    def on_mount(self) -> None:
        super().on_mount()
        self.query_one(PromptArea).cursor_blink = False


async def feed(app: MLInternApp, *events: Event) -> None:
    for n, event in enumerate(events, 1):
        event.seq = n
        await app.bridge.handle(event)
    await app.bridge.flush_text()
    app.bridge.flush_logs()


async def wait_for(pilot, condition, timeout: float = 10.0, what: str = "condition") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.02)


def approval_screen(app: MLInternApp) -> ApprovalScreen | None:
    screen = app.screen
    return screen if isinstance(screen, ApprovalScreen) else None


def cwd_for(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return work
