"""The app's side of the experiment board: ``/runs`` and f4 open it, its request for the runs
goes to the session as ``list_runs``, and what the session sends (``run_list``, a
``run_record`` when a job ends, an error reading the store) reaches it while it is open.

Built by the app on first use; it gets the few things it uses, not the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent.protocol import ListRuns, Op, RunList, RunRecord

if TYPE_CHECKING:
    from mlintern_tui.screens.run_board import RunBoard


class RunsLink:
    def __init__(self, *, submit: Callable[[Op], None], notice: Callable[[str, str], Awaitable[None]],
                 push_screen: Callable[..., Any], cwd: Callable[[], Any], clock: Callable[[], float],
                 has_session: Callable[[], bool], refresh_bindings: Callable[[], Any]):
        self.submit = submit
        self.notice = notice
        self.push_screen = push_screen
        self.cwd = cwd
        self.clock = clock
        self.has_session = has_session
        self.refresh_bindings = refresh_bindings
        #: the board while it is open
        self.screen: RunBoard | None = None
        #: a job of this session ended as a run: the footer offers the board from now on
        self.recorded = False

    def open(self) -> None:
        from mlintern_tui.screens.run_board import RunBoard

        if self.screen is not None:
            return
        self.screen = RunBoard(cwd=self.cwd(), clock=self.clock)

        def closed(_: None) -> None:
            self.screen = None

        self.push_screen(self.screen, callback=closed)

    def request(self) -> None:
        """The board asks for the runs (no session yet: it keeps saying it is asking)."""
        if self.has_session():
            self.submit(ListRuns())

    def on_list(self, event: RunList) -> None:
        if self.screen is not None:
            self.screen.show_runs(event.runs)

    def on_record(self, event: RunRecord) -> None:
        if not self.recorded:
            self.recorded = True
            self.refresh_bindings()  # f4 joins the footer
        if self.screen is not None:
            self.screen.add_run(event.run)

    async def on_error(self, message: str) -> None:
        """The session could not read the runs: said on the board and kept in the conversation."""
        if self.screen is not None:
            self.screen.show_message(message, error=True)
        await self.notice("error", message)

    async def on_exported(self, message: RunBoard.Exported) -> None:
        await self.notice("info", f"Exported {message.count} run{'s' if message.count != 1 else ''} to "
                                  f"{message.csv_path} and {message.md_path}.")
