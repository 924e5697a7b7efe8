"""The resume picker (``/resume``, ``mlintern --resume``): the stored sessions, newest first,
with a search box that filters as you type.

The store is SQLite and its reads block, so every query runs in a thread; typing restarts a
short debounce, and a newer query cancels the one in flight (its rows are never shown), so
keys stay responsive on a store of thousands of sessions. The screen dismisses with the
chosen session's id (None on escape); the app sends the ``Resume`` op.

The session opens its store just after it says it is ready (the first frame never waits for
SQLite), so a picker opened at start (``mlintern --resume``) may come before the store: it
waits for it, briefly, before saying that sessions are not being saved.
"""

from __future__ import annotations

import asyncio
import os
import time
from functools import partial
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from agent.terminal_text import visible

if TYPE_CHECKING:
    from agent.store import SessionStore, SessionSummary

#: wait this long after the last key before querying the store again
DEBOUNCE_S = 0.15
#: how long a picker opened before the store waits for it to open
STORE_WAIT_S = 10.0
LIMIT = 200
MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
#: a stored session's status, as the picker says it (idle says nothing)
STATUS_TEXT = {
    "running": "cut off",  # saved mid-turn and nothing runs it now: the app was closed or killed
    "waiting": "waiting approval",
    "interrupted": "interrupted",
}


def format_age(seconds: float) -> str:
    """How long ago, in one unit: "just now", "3 min ago", "5 h ago", "2 d ago"."""
    s = max(0, int(seconds))
    if s < 45:
        return "just now"
    if s < 3600:
        return f"{max(1, round(s / 60))} min ago"
    if s < 86400:
        return f"{s // 3600} h ago"
    days = s // 86400
    if days < 60:
        return f"{days} d ago"
    if days < 730:
        return f"{days // 30} mo ago"
    return f"{days // 365} y ago"


def format_spend(usd: float, unknown: int = 0) -> str:
    """Known spend; with calls or jobs at an unknown price it is a lower bound ("$0.40+?"),
    or "cost unknown" when nothing is known (never "$0")."""
    if unknown and usd <= 0:
        return "cost unknown"
    text = "$0" if usd <= 0 else "<$0.01" if usd < 0.01 else f"${usd:.2f}"
    return text + "+?" if unknown else text


def shorten_path(path: str, home: str, limit: int = 40) -> str:
    """``~`` for the home directory, and the tail of a long path ("…/proj/sft")."""
    home = home.rstrip("/")
    if home and (path == home or path.startswith(home + "/")):
        path = "~" + path[len(home):]
    if len(path) > limit:
        path = "…" + path[-(limit - 1):]
    return path


def _cut(text: str, limit: int) -> str:
    text = visible(" ".join(text.split()))  # stored titles and prompts came from a model or a paste
    return text if len(text) <= limit else text[: limit - 1] + "…"


def session_row(summary: SessionSummary, *, now: float, home: str, current: bool = False) -> Content:
    """Two lines: the title (or first prompt) with its status; model, directory, spend and age."""
    status = STATUS_TEXT.get(summary.status, "")
    head = Content.from_markup("[b]$label[/]", label=_cut(summary.label, 72))
    if status:
        head += Content.from_markup("  [$warning]$status[/]", status=status)
    if current:
        head += Content.from_markup("  [$accent]this session[/]")
    turns = f"{summary.turns} turn{'s' if summary.turns != 1 else ''}"
    details = " · ".join((visible(summary.model or "unknown model"), visible(shorten_path(summary.cwd, home)),
                          format_spend(summary.spend_usd, summary.unknown_costs), turns, format_age(now - summary.updated)))
    return Content("\n").join([head, Content("  " + details).stylize(MUTED)])


class ResumePicker(ModalScreen[str | None]):
    """Dismisses with the chosen session's id, or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move('cursor_down')", "Next", show=False),
        Binding("up", "move('cursor_up')", "Previous", show=False),
        Binding("pagedown", "move('page_down')", "Page down", show=False),
        Binding("pageup", "move('page_up')", "Page up", show=False),
    ]
    DEFAULT_CSS = """
    ResumePicker { align: center middle; background: $background 50%; }
    ResumePicker > Vertical {
        width: 90%; max-width: 110; height: 80%; border: thick $primary; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold;
    }
    ResumePicker Input { margin: 0 0 1 0; }
    ResumePicker OptionList { height: 1fr; border: none; padding: 0; background: $surface; }
    ResumePicker .picker-message { color: $foreground-muted; height: auto; }
    ResumePicker .picker-message.-error { color: $warning; }
    ResumePicker .picker-keys { color: $foreground-muted; margin: 1 0 0 0; height: 1; }
    """

    def __init__(self, store_source: Callable[[], tuple[SessionStore | None, str | None]], *, current_id: str = "",
                 clock: Callable[[], float] = time.time, home: str | None = None):
        """``store_source()``: the session's store and why there is none (both None: not open yet)."""
        super().__init__()
        self.store_source = store_source
        self.store, self.store_error = store_source()
        self.current_id = current_id
        self.clock = clock
        self.home = os.path.expanduser("~") if home is None else home
        #: the rows shown, and the search they answer (None until the first answer)
        self.rows: tuple[SessionSummary, ...] = ()
        self.loaded_query: str | None = None

    @property
    def waiting_for_store(self) -> bool:
        return self.store is None and self.store_error is None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Resume a session"
            if self.store is None:
                if self.waiting_for_store:
                    text = "Opening the session store…"
                else:
                    why = (self.store_error or "").rstrip(".")
                    text = f"Sessions are not being saved, so there is nothing to resume: {why}."
                yield Static(Content(text), classes="picker-message" + ("" if self.waiting_for_store else " -error"))
                yield Static("esc close", classes="picker-keys")
                return
            yield Input(placeholder="Search titles, prompts, models and directories", id="picker-search")
            yield Static("Loading saved sessions…", classes="picker-message", id="picker-message")
            options = OptionList(id="picker-list")
            options.can_focus = False  # the search box keeps the keys; ↑/↓ move the highlight
            yield options
            yield Static("type to search · ↑/↓ select · enter resume · esc close", classes="picker-keys")

    async def on_mount(self) -> None:
        if self.store is not None:
            self.query_one(Input).focus()
            self._search("", delay=0.0)
        elif self.waiting_for_store:
            self.run_worker(self._wait_for_store(), group="resume-store", exit_on_error=False)

    async def _wait_for_store(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STORE_WAIT_S
        while self.waiting_for_store:
            await asyncio.sleep(0.05)
            self.store, self.store_error = self.store_source()
            if self.waiting_for_store and loop.time() > deadline:
                self.store_error = "the session store did not open"
        await self.recompose()
        await self.on_mount()

    # ------------------------------------------------------------------ querying

    @on(Input.Changed, "#picker-search")
    def _typed(self, event: Input.Changed) -> None:
        self._search(event.value.strip(), delay=DEBOUNCE_S)

    def _search(self, query: str, delay: float) -> None:
        # exclusive: a newer query cancels the one waiting or in flight, whose rows are dropped;
        # the worker makes its coroutine when it starts (one cancelled before that made none)
        self.run_worker(partial(self._load, query, delay), group="resume-search", exclusive=True,
                        exit_on_error=False)

    async def _load(self, query: str, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        store = self.store
        assert store is not None
        try:
            rows = await asyncio.to_thread(store.list_sessions, search=query or None, limit=LIMIT)
        except Exception as exc:  # a locked or damaged file: say so, keep the picker usable
            self._message(f"Could not read the saved sessions: {exc}", error=True)
            return
        self._show(query, rows)

    def _show(self, query: str, rows: Sequence[SessionSummary]) -> None:
        self.rows = tuple(rows)
        self.loaded_query = query
        now = self.clock()
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([Option(session_row(s, now=now, home=self.home, current=s.id == self.current_id),
                                    id=s.id, disabled=s.id == self.current_id) for s in self.rows])
        first = next((n for n, s in enumerate(self.rows) if s.id != self.current_id), None)
        options.highlighted = first
        if not self.rows:
            self._message("No saved sessions yet. Sessions are saved as you work; quit and come back to resume one."
                          if not query else f"No saved session matches “{query}”.")
        else:
            more = " (the newest shown; search to narrow)" if len(self.rows) >= LIMIT else ""
            self._message(f"{len(self.rows)} session{'s' if len(self.rows) != 1 else ''}{more}")

    def _message(self, text: str, error: bool = False) -> None:
        message = self.query_one("#picker-message", Static)
        message.update(Content(text))
        message.set_class(error, "-error")

    # ------------------------------------------------------------------ choosing

    def action_move(self, action: str) -> None:
        if self.store is not None:
            getattr(self.query_one(OptionList), f"action_{action}")()

    @on(Input.Submitted, "#picker-search")
    def _enter(self) -> None:
        options = self.query_one(OptionList)
        index = options.highlighted
        if index is not None and not options.get_option_at_index(index).disabled:
            self.dismiss(options.get_option_at_index(index).id)

    @on(OptionList.OptionSelected, "#picker-list")
    def _clicked(self, event: OptionList.OptionSelected) -> None:
        if event.option.id != self.current_id:
            self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
