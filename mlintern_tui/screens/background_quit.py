"""Quitting while the agent's commands left processes running in the background (``&``,
``nohup``, ``setsid``; issue 18): the app lists them and asks whether to stop them or leave
them running, and says that work meant to outlive the app is what jobs are for. Headless runs
stop them unless ``--keep-background``; a SIGTERM or a closed terminal stops them too.

``s`` stops them, ``l`` leaves them running, escape goes back to the app without quitting.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.process_tracker import Leftover, leftovers, process_group
from agent.terminal_text import visible

#: processes listed by pid and command; the rest are counted
SHOWN = 8
MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)


def left_in_background(tag: str) -> list[Leftover]:
    """What the session's commands left running, minus the processes of a ``bash`` call that
    is still running: those belong to the turn and stop with it (their whole process group)."""
    from agent.tools import shell

    running_calls = set(shell._LIVE_GROUPS)
    return [p for p in leftovers(tag) if process_group(p.pid) not in running_calls]


class BackgroundQuitScreen(ModalScreen[str | None]):
    """Dismissed with "stop", "keep", or None (not quitting after all)."""

    BINDINGS = [
        Binding("s", "answer('stop')", "Stop them and quit"),
        Binding("l", "answer('keep')", "Leave them running and quit"),
        Binding("escape", "answer(None)", "Back to the app"),
    ]
    DEFAULT_CSS = """
    BackgroundQuitScreen { align: center middle; background: $background 50%; }
    BackgroundQuitScreen > Vertical {
        width: 80; max-width: 95%; height: auto; border: thick $warning; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold;
    }
    BackgroundQuitScreen .bg-question { text-style: bold; }
    BackgroundQuitScreen .bg-list { margin: 1 0 0 0; }
    BackgroundQuitScreen .bg-detail { color: $foreground-muted; margin: 1 0 0 0; }
    BackgroundQuitScreen .bg-keys { margin: 1 0 0 0; }
    """

    def __init__(self, processes: list[Leftover]):
        super().__init__()
        self.processes = list(processes)

    def compose(self) -> ComposeResult:
        n = len(self.processes)
        with Vertical() as box:
            box.border_title = "Quit: processes still running"
            yield Static(Content(f"The agent's commands left {n} process{'es' if n != 1 else ''} running in the "
                                 "background. Stop them, or leave them running after mlintern quits?"),
                         classes="bg-question")
            yield Static(self._listing(), classes="bg-list")
            yield Static(Content("Work meant to outlive the app is what jobs are for (hf_jobs): they are watched, "
                                 "logged, costed and found again by --continue. What is left running here is on "
                                 "its own: no log, no watcher."), classes="bg-detail")
            yield Static(Content.from_markup("[b $accent]s[/] stop them and quit · [b $accent]l[/] leave them "
                                             "running and quit · [b $accent]esc[/] back to the app"),
                         classes="bg-keys")

    def _listing(self) -> Content:
        lines = [Content.assemble((f"{p.pid:>8}", MUTED), "  ", visible(_cut(p.command, 64)))
                 for p in self.processes[:SHOWN]]
        if len(self.processes) > SHOWN:
            lines.append(Content.styled(f"{'':>8}  and {len(self.processes) - SHOWN} more", MUTED))
        return Content("\n").join(lines)

    def action_answer(self, answer: str | None) -> None:
        self.dismiss(answer)


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
