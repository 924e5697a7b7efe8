"""The model picker (``/model`` with no id): the current model, the recent ones, what local
servers serve and the Hugging Face router's catalog, each with the price the session would
charge, its context window and tool support, filtered as you type.

Opening it asks the session for the list (``ListModels``, sent by the app on the picker's
``ListRequested``); the session answers at once with what it knows and again as the router
and the local servers answer, and each answer replaces the list here (``show_models``) with
the filter, the open providers and the highlighted model kept. The screen dismisses with the
id to switch to (None on escape); the app sends ``SetModel``.
"""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from agent.protocol import ModelList
from widgets.model_detail import ModelDetail
from widgets.model_table import ModelTable

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
ROUTER_STATE = {"loading": ("loading…", "$accent"), "live": ("live", "$success"),
                "cached": ("cached", "$warning"), "unavailable": ("unavailable", MUTED)}


def router_line(models: ModelList | None) -> Content:
    """"Router catalog: live, fetched just now", "cached, kept from 3 h ago; …", "loading…"."""
    if models is None:
        return Content.from_markup("Router catalog: [$accent]loading…[/]")
    word, colour = ROUTER_STATE.get(models.router, (models.router, MUTED))
    note = models.router_note
    if models.router == "loading":
        note = ""  # "asking the router…" says what "loading…" says
    sep = ": " if models.router == "unavailable" else ", "
    return Content.from_markup(f"Router catalog: [{colour}]$word[/]" + ("$sep$note" if note else ""),
                               word=word, sep=sep, note=note)


def local_line(models: ModelList | None) -> Content:
    if models is None or models.local_pending:
        return Content.from_markup("Local servers: [$accent]asking…[/]")
    return Content("Local servers: " + (models.local_note or "none answered"))


class ModelPicker(ModalScreen[str | None]):
    """Dismisses with the model id to switch to (``org/model:provider`` for a pinned
    provider), or None."""

    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("tab", "providers", "Providers", show=False),
        # the filter box has focus: → and ← work the list only where they would do nothing in it
        Binding("right", "providers(True)", "Show providers", show=False, priority=True),
        Binding("left", "providers(False)", "Hide providers", show=False, priority=True),
        Binding("ctrl+r", "refresh", "Refresh", show=False),
    ]
    DEFAULT_CSS = """
    ModelPicker { align: center middle; background: $background 50%; }
    ModelPicker > Vertical {
        width: 96%; max-width: 132; height: 92%; border: thick $primary; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold;
    }
    ModelPicker Input { margin: 0; }
    ModelPicker #model-status { color: $foreground-muted; height: auto; max-height: 3; margin: 0 0 1 0; }
    ModelPicker ModelTable { height: 1fr; }
    ModelPicker ModelDetail { height: 6; border-top: solid $panel-lighten-2; }
    ModelPicker .picker-keys { color: $foreground-muted; height: 1; }
    ModelPicker.-short #model-status { max-height: 2; margin: 0; }
    ModelPicker.-short ModelDetail { height: 4; }
    """
    #: below this many lines the status and the detail area give lines to the list
    SHORT_HEIGHT = 30

    class ListRequested(Message):
        """Ask the session for the list (again: ``refresh`` asks the router even when fresh)."""

        def __init__(self, refresh: bool = False):
            super().__init__()
            self.refresh = refresh

    def __init__(self) -> None:
        super().__init__()
        self.models: ModelList | None = None

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Switch model"
            yield Input(placeholder="Filter: words from the model id, e.g. qwen coder", id="model-filter")
            yield Static(self._status(), id="model-status")
            yield ModelTable(id="model-table")
            yield ModelDetail(id="model-detail")
            yield Static("↑/↓ select · tab or →/← providers · enter switch · ctrl+r refresh · esc close",
                         classes="picker-keys")

    @property
    def table(self) -> ModelTable:
        return self.query_one(ModelTable)

    @property
    def filter_text(self) -> str:
        return self.query_one("#model-filter", Input).value

    def on_mount(self) -> None:
        self.query_one(Input).focus()
        self.set_class(self.app.size.height < self.SHORT_HEIGHT, "-short")
        self.post_message(self.ListRequested())

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < self.SHORT_HEIGHT, "-short")

    # ------------------------------------------------------------------ the session's answers

    def show_models(self, models: ModelList) -> None:
        """A ``model_list`` from the session: it replaces the list, the filter and cursor stay."""
        self.models = models
        self.table.set_choices(models.choices)
        self.query_one("#model-status", Static).update(self._status())

    def _status(self) -> Content:
        line = router_line(self.models)
        if self.models is not None:
            n = len(self.models.choices)
            line += Content.styled(f"  ·  {n} model{'s' if n != 1 else ''}", MUTED)
        return Content("\n").join([line, local_line(self.models)])

    # ------------------------------------------------------------------ filtering and moving

    @on(Input.Changed, "#model-filter")
    def _typed(self, event: Input.Changed) -> None:
        self.table.set_query(event.value)
        self._show_empty_text()

    def _show_empty_text(self) -> None:
        table = self.table
        text = self.filter_text.strip()
        if not table.loaded:
            table.empty_text = "Asking the session which models it can use…"
        elif text and len(text.split()) == 1:
            table.empty_text = f"No model matches “{text}”. enter switches to {text} as typed."
        elif text:
            table.empty_text = f"No model matches “{text}”."
        else:
            table.empty_text = "No models to offer."
        table.refresh()

    @on(ModelTable.Highlighted)
    def _highlighted(self, event: ModelTable.Highlighted) -> None:
        self.query_one(ModelDetail).line = self.table.highlighted

    def action_move(self, delta: int) -> None:
        self.table.move(delta)

    def action_page(self, direction: int) -> None:
        self.table.page(direction)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "providers" and parameters:
            field = self.query_one("#model-filter", Input)
            if field.cursor_position < len(field.value) or field.selection.start != field.selection.end:
                return False  # the arrow moves in the filter text
            return self.table.can_open() if parameters[0] else self.table.can_close()
        return True

    def action_providers(self, open_: bool | None = None) -> None:
        self.table.toggle_providers(open_)

    def action_refresh(self) -> None:
        self.post_message(self.ListRequested(refresh=True))

    # ------------------------------------------------------------------ choosing

    @on(Input.Submitted, "#model-filter")
    def _enter(self) -> None:
        line = self.table.highlighted
        if line is not None:
            self._choose(line.key)
            return
        typed = self.filter_text.strip()
        if self.table.loaded and typed and len(typed.split()) == 1:
            self._choose(typed)  # no match: the id as typed, like /model <id>

    @on(ModelTable.Chosen)
    def _clicked(self, event: ModelTable.Chosen) -> None:
        self._choose(event.key)

    def _choose(self, model_id: str) -> None:
        current = self.models.current if self.models is not None else None
        self.dismiss(None if model_id == current else model_id)

    def action_close(self) -> None:
        self.dismiss(None)
