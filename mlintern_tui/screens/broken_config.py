"""The config file cannot be used: a screen that blocks the start until the user decides
(issue 19). Falling back to the defaults silently would drop what the file says, deny rules
included, behind a toast that vanishes.

It says what is wrong (the path, and the line and column with the line itself for a JSON
error) and offers: ``e`` open the file in ``$VISUAL``/``$EDITOR`` (the app steps aside while
it runs, then checks the file again), ``r`` check again after fixing it elsewhere, ``s`` start
without it for this run (built-in defaults, said again in the conversation; nothing is written
to the file), ``q`` quit.

Dismisses with a ``ConfigChoice``, or None to quit.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from agent.config import Config, ConfigError, budget_override, load_config
from agent.terminal_text import visible
from widgets.type_ahead import KeyGuard

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
_WHERE = re.compile(r"line (\d+), column (\d+)")
#: characters of the offending line shown around the column
EXCERPT_CHARS = 80


@dataclass(frozen=True)
class ConfigChoice:
    config: Config
    #: True: the user chose to start without the file, for this run only
    skipped: bool = False


def excerpt(path: Path, error: str) -> Content:
    """The line a JSON error points at, numbered, with a caret under the column ("" when the
    error names no line, or the file cannot be read again)."""
    where = _WHERE.search(error)
    if where is None:
        return Content("")
    line_no, column = int(where.group(1)), int(where.group(2))
    try:
        with open(path, "rb") as f:
            lines = f.read(4_000_001).decode("utf-8", "replace").splitlines()
    except OSError:
        return Content("")
    if not 1 <= line_no <= len(lines):
        return Content("")
    text = lines[line_no - 1].expandtabs(1)
    start = max(0, min(column - 1 - EXCERPT_CHARS // 2, len(text) - EXCERPT_CHARS))
    shown = visible(text[start:start + EXCERPT_CHARS])
    if start > 0:
        shown = "…" + shown[1:]
    if start + EXCERPT_CHARS < len(text):
        shown = shown[:-1] + "…"
    gutter = f"{line_no:>5} │ "
    caret = " " * (len(gutter) + max(0, column - 1 - start)) + "^"
    return Content("\n").join([Content.styled(gutter, MUTED) + Content(shown), Content.styled(caret, "$error")])


class BrokenConfigScreen(ModalScreen[ConfigChoice | None]):
    BINDINGS = [
        Binding("e", "edit", "Open in editor"),
        Binding("r", "retry", "Retry"),
        Binding("s", "skip", "Start without it"),
        Binding("q", "quit", "Quit"),
    ]
    DEFAULT_CSS = """
    BrokenConfigScreen { align: center middle; background: $background 80%; }
    BrokenConfigScreen > Vertical {
        width: 96; max-width: 95%; height: auto; max-height: 95%; border: thick $error; background: $surface;
        padding: 0 1; border-title-color: $foreground; border-title-style: bold;
    }
    BrokenConfigScreen .config-error { text-style: bold; }
    BrokenConfigScreen .config-excerpt { margin: 1 0 0 0; }
    BrokenConfigScreen .config-detail { color: $foreground-muted; margin: 1 0 0 0; }
    BrokenConfigScreen .config-message { color: $warning; margin: 1 0 0 0; }
    BrokenConfigScreen .config-message.-empty { display: none; }
    BrokenConfigScreen .config-keys { margin: 1 0 0 0; }
    """

    def __init__(self, path: Path, error: str, *, load: Callable[[], Config] = load_config,
                 environ: Mapping[str, str] = os.environ):
        """``load``: what retry calls (the app's own loader); ``environ``: where the editor is named."""
        super().__init__()
        self.path = path
        self.error = error
        self._load = load
        self._environ = environ
        self.tries = 0
        self._keys: KeyGuard | None = None

    def on_mount(self) -> None:
        # it can open a moment after the first frame, as the user starts typing: those keys are not answers
        self._keys = KeyGuard(self.app)

    def _typed_ahead(self) -> bool:
        return self._keys is not None and not self._keys.is_answer()

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "The config file cannot be used"
            yield Static(Content(visible(self.error)), classes="config-error")
            yield Static(excerpt(self.path, self.error), classes="config-excerpt")
            yield Static(Content(
                "Nothing has started yet. The file holds your settings, approval rules (deny rules included) and "
                "MCP servers; mlintern does not run without them unless you say so. It never writes to "
                f"{visible(str(self.path))} while it cannot read it."), classes="config-detail")
            yield Static("", classes="config-message -empty", markup=False)
            editor = self.editor()
            open_key = f"open it in {visible(editor)}" if editor else "open it in $EDITOR (none is set)"
            yield Static(Content.from_markup(
                "[b $accent]e[/] $open · [b $accent]r[/] retry after fixing it · [b $accent]s[/] start without it "
                "(this run only: built-in defaults) · [b $accent]q[/] quit", open=open_key), classes="config-keys")

    def editor(self) -> str:
        return (self._environ.get("VISUAL") or self._environ.get("EDITOR") or "").strip()

    def say(self, text: str) -> None:
        message = self.query_one(".config-message", Static)
        message.update(Content(visible(text)))
        message.set_class(not text, "-empty")

    def show_error(self, error: str) -> None:
        self.error = error
        self.query_one(".config-error", Static).update(Content(visible(error)))
        self.query_one(".config-excerpt", Static).update(excerpt(self.path, error))

    def action_retry(self) -> None:
        if self._typed_ahead():
            return
        self.tries += 1
        self._check_again()

    def _check_again(self) -> None:
        try:
            config = self._load()
        except ConfigError as exc:
            self.show_error(str(exc))
            self.say(f"Checked again ({self.tries}×): the file still cannot be used.")
            return
        self.dismiss(ConfigChoice(config))

    def action_edit(self) -> None:
        if self._typed_ahead():
            return
        editor = self.editor()
        where = visible(str(self.path))
        if not editor:
            self.say(f"No editor is set ($VISUAL or $EDITOR): edit {where} in another terminal, then press r.")
            return
        try:
            with self.app.suspend():  # the editor gets the terminal; the app comes back when it exits
                subprocess.run([*shlex.split(editor), str(self.path)], check=False)
        except SuspendNotSupported:
            self.say(f"This terminal cannot hand over to an editor: edit {where} in another terminal, then press r.")
            return
        except (OSError, ValueError) as exc:  # not found, not executable, unbalanced quotes in $EDITOR
            self.say(f"Could not start the editor {editor!r}: {exc}. Edit {where} another way, then press r.")
            return
        self.tries += 1  # as retry does, without asking the type-ahead guard again
        self._check_again()

    def action_skip(self) -> None:
        if self._typed_ahead():
            return
        config = Config()
        try:
            cap = budget_override()  # --budget still holds: it is this run's, not the file's
        except ConfigError:
            cap = None
        if cap is not None:
            config.yolo_cap_usd = cap
        self.dismiss(ConfigChoice(config, skipped=True))

    def action_quit(self) -> None:
        if self._typed_ahead():
            return
        self.dismiss(None)
