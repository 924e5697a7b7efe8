"""The trace preview: what would leave the machine with this session's trace, before its first
upload. It opens when the session sends a ``trace_preview`` (once sharing is on and this
session's trace was not accepted yet), and nothing is uploaded until the user answers.

It shows the size, where it goes (the private or public dataset), the files, and every span
that was masked, grouped by kind. Keys: ``a`` accepts (uploads start), ``m`` masks more with a
regular expression (``ctrl+s`` also keeps it in the config), enter on a finding pre-fills that
box with the text before it, ``n`` or escape refuses for this session. The screen dismisses
with True (accept) or False (not now); a pattern goes up as ``MaskRequested`` and the screen
stays open for the new preview (``show_preview``) or an error sentence (``show_error``).
"""

from __future__ import annotations

import re

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Checkbox, Input, OptionList, Static

from agent.protocol import TracePreview
from widgets.trace_findings import MUTED, TraceFindings, kind_counts, mask_prefill, size_text

#: files listed by name; the rest are counted
FILES_SHOWN = 4
KEYS = "a accept and upload · m mask a pattern · enter mask the text before the highlighted finding · n/esc not now"
MASK_KEYS = "enter mask · ctrl+s also keep it in the config · esc back"
NOTHING_FOUND = ("Nothing was masked: no keys, tokens, secret values or home directory were found. Read what "
                 "the files hold before you accept: all of it leaves this machine.")


def header(preview: TracePreview, visibility: str) -> Content:
    """"This session's trace, 42 records, 18.3 KB, will be uploaded to your private dataset." and
    what the ⟦ ⟧ mean."""
    records = f"{preview.records} record{'s' if preview.records != 1 else ''}"
    where = (Content.styled("your public dataset: anyone can read it", "bold $warning") if visibility == "public"
             else Content("your private dataset"))
    first = Content.assemble(f"This session's trace, {records}, {size_text(preview.bytes)}, will be uploaded to ",
                             where, ".")
    second = Content.styled("Nothing is uploaded until you accept. Masked text shows shortened between ⟦ ⟧; "
                            "the upload holds [REDACTED kind] in its place (~ for your home directory).", MUTED)
    return Content("\n").join([first, second])


def files_text(files: list[str]) -> Content:
    if not files:
        return Content.styled("Files: none", MUTED)
    shown = [Content.assemble(("  ", ""), (path, "")) for path in files[:FILES_SHOWN]]
    if len(files) > FILES_SHOWN:
        shown.append(Content.styled(f"  … and {len(files) - FILES_SHOWN} more", MUTED))
    return Content("\n").join([Content.styled(f"Files ({len(files)}):", "bold"), *shown])


class TracePreviewScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("a", "accept", "Accept"),
        Binding("m", "mask", "Mask a pattern"),
        Binding("n,escape", "not_now", "Not now"),
        Binding("ctrl+s", "toggle_save", "Save the pattern", show=False),
    ]
    DEFAULT_CSS = """
    TracePreviewScreen { align: center middle; background: $background 50%; }
    TracePreviewScreen > Vertical {
        width: 96%; max-width: 132; height: 92%; border: thick $primary; background: $surface; padding: 0 1;
        border-title-color: $foreground; border-title-style: bold; border-subtitle-color: $foreground-muted;
    }
    TracePreviewScreen #trace-header { height: auto; margin: 0 0 1 0; }
    TracePreviewScreen #trace-files { height: auto; margin: 0 0 1 0; }
    TracePreviewScreen #trace-none { height: auto; color: $foreground-muted; text-style: italic; display: none; }
    TracePreviewScreen.-empty #trace-none { display: block; }
    TracePreviewScreen.-empty TraceFindings { display: none; }
    TracePreviewScreen TraceFindings { border-top: solid $panel-lighten-2; }
    TracePreviewScreen #trace-mask { height: auto; display: none; }
    TracePreviewScreen.-masking #trace-mask { display: block; }
    TracePreviewScreen #mask-input { width: 1fr; margin: 0; }
    TracePreviewScreen #mask-save { width: auto; margin: 0; }
    TracePreviewScreen #trace-message { height: auto; color: $foreground-muted; display: none; }
    TracePreviewScreen.-message #trace-message { display: block; }
    TracePreviewScreen.-error #trace-message { color: $error; }
    TracePreviewScreen .trace-keys { color: $foreground-muted; height: auto; }
    TracePreviewScreen.-short #trace-header { margin: 0; }
    TracePreviewScreen.-short #trace-files { max-height: 2; margin: 0; }
    """
    #: below this many lines the header and the files give lines to the findings
    SHORT_HEIGHT = 30

    class MaskRequested(Message):
        """Mask more with ``patterns`` (regular expressions); ``save`` keeps them in the config."""

        def __init__(self, patterns: list[str], save: bool = False):
            super().__init__()
            self.patterns = patterns
            self.save = save

    def __init__(self, preview: TracePreview, visibility: str = "private"):
        super().__init__()
        self.preview = preview
        self.visibility = visibility
        self._mounted = False

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "Trace preview"
            yield Static("", id="trace-header")
            yield Static("", id="trace-files")
            yield Static(Content(NOTHING_FOUND), id="trace-none")
            yield TraceFindings(id="trace-findings")
            with Horizontal(id="trace-mask"):
                yield Input(placeholder=r"a regular expression, e.g. my-lab\.internal", id="mask-input")
                yield Checkbox("keep in config", id="mask-save")
            yield Static("", id="trace-message")
            yield Static(Content(KEYS), classes="trace-keys")

    @property
    def findings_list(self) -> TraceFindings:
        return self.query_one(TraceFindings)

    @property
    def masking(self) -> bool:
        return self.has_class("-masking")

    def on_mount(self) -> None:
        self._mounted = True
        self.set_class(self.app.size.height < self.SHORT_HEIGHT, "-short")
        self.show_preview(self.preview, self.visibility)
        self.findings_list.focus()

    def on_resize(self, event: events.Resize) -> None:
        self.set_class(event.size.height < self.SHORT_HEIGHT, "-short")

    # ------------------------------------------------------------------ the session's answers

    def show_preview(self, preview: TracePreview, visibility: str | None = None) -> None:
        """A (new) preview: everything follows it; the cursor stays where it was."""
        changed = preview is not self.preview
        self.preview = preview
        if visibility is not None:
            self.visibility = visibility
        if not self._mounted:
            return
        self.query_one("#trace-header", Static).update(header(preview, self.visibility))
        self.query_one("#trace-files", Static).update(files_text(preview.files))
        self.set_class(not preview.findings, "-empty")
        self.findings_list.show(preview.findings)
        n = len(preview.findings)
        counted = f"{n} masked: {kind_counts(preview.findings)}" if n else "nothing masked"
        self.query_one(Vertical).border_subtitle = counted
        if changed:
            self._say(f"Preview updated: {counted}.")

    def show_error(self, message: str) -> None:
        """The session could not do what was asked (a pattern it could not compile …)."""
        if self._mounted:
            self._say("✗ " + message, error=True)

    def _say(self, text: str, error: bool = False) -> None:
        self.query_one("#trace-message", Static).update(Content(text))
        self.add_class("-message")
        self.set_class(error, "-error")

    # ------------------------------------------------------------------ keys

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("accept", "mask") and self.masking:
            return False  # "a" on the save box must not accept what the pattern was meant to mask
        return True

    def action_accept(self) -> None:
        self.dismiss(True)

    def action_not_now(self) -> None:
        if self.masking:
            self._close_mask()
            return
        self.dismiss(False)

    def action_mask(self, prefill: str = "") -> None:
        field = self.query_one("#mask-input", Input)
        field.value = prefill
        field.cursor_position = len(prefill)
        self.add_class("-masking")
        self.query_one(".trace-keys", Static).update(Content(MASK_KEYS))
        field.focus()

    def action_toggle_save(self) -> None:
        if self.masking:
            box = self.query_one("#mask-save", Checkbox)
            box.value = not box.value

    def _close_mask(self) -> None:
        self.remove_class("-masking")
        self.query_one(".trace-keys", Static).update(Content(KEYS))
        self.findings_list.focus()

    @on(OptionList.OptionSelected, "#trace-findings")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        finding = self.findings_list.highlighted_finding
        if finding is not None:
            self.action_mask(mask_prefill(finding.context))

    @on(Input.Submitted, "#mask-input")
    def _submitted(self, event: Input.Submitted) -> None:
        pattern = event.value  # a pre-filled pattern can end in a space that matters
        if not pattern.strip():
            self._close_mask()
            return
        try:
            re.compile(pattern)
        except re.error as exc:
            self._say(f"✗ Not a regular expression: {exc}", error=True)
            return
        save = self.query_one("#mask-save", Checkbox).value
        self.post_message(self.MaskRequested([pattern], save))
        self._close_mask()
        kept = " and keeping it in your config" if save else " for this session"
        self._say(f"Masking {pattern}{kept}: a new preview follows…")
