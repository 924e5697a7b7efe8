"""Compaction you can see: the preview of what a compaction summarises and keeps, and the ledger
of one that happened.

``CompactionPreviewCard`` shows a ``compaction_preview``: counts on one line, the messages
listed when unfolded (space, or enter when it does not ask). Sent for ``/compact`` it waits for
an answer (enter or y compacts, esc or n cancels) and posts ``Answered``; just before an
automatic compaction it only says what is about to go. ``CompactionLedgerCard`` shows a
``compacted``: tokens and messages before → after on one line (the notice it replaces), and
unfolded the summary now standing for the earlier messages (as Markdown) and one line per
message summarised or dropped.

A header line over a body that is built when first unfolded: the body's lines wrap under its
own left edge, not under the card's.
"""

from __future__ import annotations

from collections.abc import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Static

from agent.protocol import Compacted, CompactionPreview
from widgets.markdown_view import StreamedMarkdown
from widgets.type_ahead import KeyGuard

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
#: lines of each list an unfolded card shows (the rest are counted)
SHOWN_LINES = 12
#: keys this soon after the question appears are ignored: someone typing a message when it
#: arrives (after a running turn) must not compact with the enter meant for the prompt
GRACE_S = 0.4


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def listed(title: str, lines: Sequence[str], limit: int = SHOWN_LINES) -> list[Content]:
    """A titled list, one "·" line per item, cut after ``limit`` items with a count of the rest."""
    if not lines:
        return []
    out = [Content.styled(f"{title} ({len(lines):,})", "bold")]
    out += [Content.styled(f"· {line}", MUTED) for line in lines[:limit]]
    if len(lines) > limit:
        out.append(Content.styled(f"… {len(lines) - limit:,} more", f"italic {MUTED}"))
    return out


class FoldingCard(Vertical, can_focus=True):
    """A header line; the body below it shows when unfolded (built the first time)."""

    DEFAULT_CSS = """
    FoldingCard { height: auto; margin: 1 0 0 0; padding: 0 1; color: $secondary; border-left: thick $secondary; }
    FoldingCard:focus { background: $boost; }
    FoldingCard > .card-head, FoldingCard > .card-foot { height: auto; }
    FoldingCard > .card-body { height: auto; padding: 0 0 0 2; display: none; }
    FoldingCard.-expanded > .card-body { display: block; }
    FoldingCard > .card-body > Static { height: auto; }
    FoldingCard > .card-body > StreamedMarkdown { color: $foreground-muted; }
    """

    def __init__(self, *, expanded: bool = False, classes: str = ""):
        super().__init__(classes=(classes + " -expanded" if expanded else classes).strip())
        self._built = False

    @property
    def expanded(self) -> bool:
        return self.has_class("-expanded")

    @property
    def foldable(self) -> bool:
        return True

    def head(self) -> Content:
        raise NotImplementedError

    def body(self) -> list[Static | StreamedMarkdown]:
        raise NotImplementedError

    def compose(self) -> ComposeResult:
        yield Static(self._head_line(), classes="card-head")
        yield Vertical(classes="card-body")

    def on_mount(self) -> None:
        if self.expanded:
            self._build()

    def _head_line(self) -> Content:
        hint = (" ▾" if self.expanded else " ▸") if self.foldable else ""
        return self.head() + hint

    def _build(self) -> None:
        if not self._built:
            self._built = True
            self.query_one(".card-body", Vertical).mount_all(self.body())

    def refresh_head(self) -> None:
        self.query_one(".card-head", Static).update(self._head_line())

    def action_toggle(self) -> None:
        if not self.foldable:
            return
        self.toggle_class("-expanded")
        if self.expanded:
            self._build()
        self.refresh_head()

    def on_click(self) -> None:
        self.action_toggle()


# --------------------------------------------------------------------------- the preview

def preview_line(preview: CompactionPreview) -> str:
    n, m, p = len(preview.summarise), len(preview.keep), len(preview.pinned)
    if preview.automatic:
        return (f"⇣ Compacting: {plural(n, 'message')} will be summarised, {m:,} kept, {p:,} pinned "
                f"({preview.tokens:,} tokens, the limit is {preview.threshold:,})")
    if not n:
        return f"⇣ Nothing to compact yet: {plural(m, 'message')}, all kept ({preview.tokens:,} tokens)."
    return (f"⇣ Compaction preview: {plural(n, 'message')} would be summarised, {m:,} kept, {p:,} pinned "
            f"({preview.tokens:,} tokens now; automatic at {preview.threshold:,})")


class CompactionPreviewCard(FoldingCard):
    BINDINGS = [
        Binding("enter,y", "answer(True)", "Compact now"),
        Binding("escape,n", "answer(False)", "Cancel"),
        Binding("enter,space", "toggle", "List the messages"),
    ]
    DEFAULT_CSS = """
    CompactionPreviewCard.-asking { border-left: thick $accent; }
    """

    class Answered(Message):
        """The user's answer to a /compact preview: ``compact`` with ``focus``, or not."""

        def __init__(self, compact: bool, focus: str | None):
            super().__init__()
            self.compact = compact
            self.focus = focus

    def __init__(self, preview: CompactionPreview, *, confirm: bool = False, focus: str | None = None):
        asking = confirm and bool(preview.summarise)
        super().__init__(expanded=asking, classes="-asking" if asking else "")
        self.preview = preview
        self.focus_text = focus
        #: "asking" until answered, then "compacting" or "cancelled"; None: nothing to ask
        self.answer: str | None = "asking" if asking else None
        self._keys: KeyGuard | None = None

    @property
    def takes_escape(self) -> bool:
        """While it asks, escape cancels here (the app's escape interrupts otherwise)."""
        return self.answer == "asking"

    @property
    def foldable(self) -> bool:
        p = self.preview
        return bool(p.summarise or p.keep or p.pinned)

    def head(self) -> Content:
        return Content(preview_line(self.preview))

    def body(self) -> list[Static | StreamedMarkdown]:
        p = self.preview
        lines = listed("Summarised", p.summarise) + listed("Kept", p.keep) + listed("Pinned, in the system prompt", p.pinned)
        return [Static(Content("\n").join(lines))]

    def foot(self) -> Content:
        lines = []
        if self.focus_text:
            lines.append(Content.assemble(("Focus of the summary: ", "bold"), (self.focus_text, MUTED)))
        if self.answer == "asking":
            lines.append(Content.from_markup("[b $accent]enter[/] or [b $accent]y[/] compact now · [b $accent]esc[/] "
                                             "or [b $accent]n[/] cancel · [b $accent]space[/] list the messages"))
        elif self.answer == "compacting":
            lines.append(Content.styled("→ compacting…", f"italic {MUTED}"))
        elif self.answer == "cancelled":
            lines.append(Content.styled("→ cancelled: nothing changed", f"italic {MUTED}"))
        return Content("\n").join(lines)

    def compose(self) -> ComposeResult:
        yield from super().compose()
        yield Static(self.foot(), classes="card-foot")

    def on_mount(self) -> None:
        super().on_mount()
        # the preview comes a moment after /compact: typing under way then is not an answer
        self._keys = KeyGuard(self.app, GRACE_S, grace_s=GRACE_S)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "answer":
            return self.answer == "asking"
        return True

    def action_answer(self, compact: bool) -> None:
        if self._keys is None or not self._keys.is_answer():
            return
        self.answer = "compacting" if compact else "cancelled"
        self.remove_class("-asking", "-expanded")
        self.refresh_head()
        self.query_one(".card-foot", Static).update(self.foot())
        self.refresh_bindings()
        self.post_message(self.Answered(compact, self.focus_text))


# --------------------------------------------------------------------------- the ledger

def ledger_line(compacted: Compacted) -> str:
    """The one line the compaction notice said (kept word for word)."""
    return (f"⇣ Context compacted: {compacted.tokens_before:,} → {compacted.tokens_after:,} tokens, "
            f"{compacted.messages_before} → {compacted.messages_after} messages ({compacted.method}"
            + (f"; {compacted.detail}" if compacted.detail else "") + ")")


class CompactionLedgerCard(FoldingCard):
    BINDINGS = [Binding("enter,space", "toggle", "Summary and what went")]

    def __init__(self, compacted: Compacted):
        super().__init__()
        self.compacted = compacted

    @property
    def foldable(self) -> bool:
        return bool(self.compacted.summary.strip() or self.compacted.dropped)

    def head(self) -> Content:
        return Content(ledger_line(self.compacted))

    def body(self) -> list[Static | StreamedMarkdown]:
        c = self.compacted
        parts: list[Static | StreamedMarkdown] = []
        if c.summary.strip():
            parts.append(Static(Content.styled("Summary now standing for them", "bold")))
            summary = StreamedMarkdown()
            summary.append(c.summary.strip())
            parts.append(summary)
        if c.dropped:
            verb = "Summarised" if c.method == "summary" else "Dropped"
            parts.append(Static(Content("\n").join(listed(verb, c.dropped, limit=40))))
        return parts
