"""The trace preview's list of what was masked: the findings grouped by kind (a header line with
the kind and its count, then each finding: the record and field it is in, and the text around
it with the masked part, shortened between ⟦ ⟧, in the warning colour).

Also the small pieces of text the preview needs: a size in bytes, and the pattern that masks
what stands before a finding (enter on it pre-fills the mask box with it).
"""

from __future__ import annotations

import re
import unicodedata

from textual import events
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from agent.protocol import TraceFinding

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
MASKED = "bold $warning"
OPEN, CLOSE = "⟦", "⟧"
#: how far before its span the engine starts a finding's context (agent/redaction.py)
CONTEXT_BEFORE = 60
#: the longest pattern a finding pre-fills
PREFILL_MAX = 40
#: what needs a backslash outside a character class (``re.escape`` also escapes "-", " ", "#" …,
#: which makes a pattern harder to read and edit)
_SPECIAL = re.compile(r"([.^$*+?{}\[\]\\|()])")


def size_text(n: int) -> str:
    if n < 1024:
        return f"{n} byte{'s' if n != 1 else ''}"
    if n < 1024 * 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n / (1024 * 1024):.1f} MB"


def masked_parts(context: str) -> list[tuple[str, bool]]:
    """``context`` cut into (text, masked) pieces; a masked piece keeps its ⟦ ⟧."""
    parts: list[tuple[str, bool]] = []
    at = 0
    for m in re.finditer(f"{OPEN}[^{CLOSE}]*{CLOSE}", context):
        if m.start() > at:
            parts.append((context[at:m.start()], False))
        parts.append((m.group(0), True))
        at = m.end()
    if at < len(context):
        parts.append((context[at:], False))
    return parts


def own_span(context: str) -> int:
    """Where the finding's own ⟦ is (other secrets on its line are shortened too): the engine
    starts the context 60 characters before it, or at the start of its line."""
    if context[CONTEXT_BEFORE:CONTEXT_BEFORE + 1] == OPEN:
        return CONTEXT_BEFORE
    return context.find(OPEN)


def mask_prefill(context: str) -> str:
    """A regular expression for the visible text just before the finding's ⟦ (since the last
    masked span, at most 40 characters from the start of a word), e.g. ``--out /data/x(1).bin key=``
    → ``--out /data/x\\(1\\)\\.bin key=``; "" when nothing stands there."""
    start = own_span(context)
    if start < 0:
        start = len(context)
    before = context[:start]
    after_last = before.rfind(CLOSE)
    visible = before[after_last + 1:].lstrip()
    if len(visible) > PREFILL_MAX:
        visible = visible[-PREFILL_MAX:]
        space = visible.find(" ")
        if 0 <= space < len(visible) - 1:
            visible = visible[space + 1:]  # from the start of a word
    return _SPECIAL.sub(r"\\\1", visible)


def context_content(context: str) -> Content:
    """The context on one line, its masked parts in the warning colour."""
    # a trace holds tool output: an ESC in it must reach the terminal as text, not as a sequence
    flat = "".join("\ufffd" if unicodedata.category(ch) == "Cc" else ch for ch in " ".join(context.split()))
    return Content.assemble(*((text, MASKED) if masked else text for text, masked in masked_parts(flat)))


def by_kind(findings: list[TraceFinding]) -> list[tuple[str, list[int]]]:
    """(kind, indexes of its findings), the most frequent kind first, then in the trace's order."""
    groups: dict[str, list[int]] = {}
    for index, finding in enumerate(findings):
        groups.setdefault(finding.kind, []).append(index)
    return sorted(groups.items(), key=lambda item: -len(item[1]))


def kind_counts(findings: list[TraceFinding]) -> str:
    """"3 Hugging Face token · 1 home directory"."""
    return " · ".join(f"{len(indexes)} {kind}" for kind, indexes in by_kind(findings))


class TraceFindings(OptionList):
    """Every finding, by kind; ``highlighted_finding`` is the one under the cursor."""

    DEFAULT_CSS = """
    TraceFindings { height: 1fr; border: none; padding: 0; background: $surface; }
    TraceFindings:focus { border: none; background-tint: $foreground 0%; }
    TraceFindings > .option-list--option-disabled { color: $foreground; text-style: bold; }
    TraceFindings > .option-list--option-highlighted,
    TraceFindings:focus > .option-list--option-highlighted { color: $foreground; background: $accent 25%; }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None):
        super().__init__(id=id, classes=classes)
        self.findings: tuple[TraceFinding, ...] = ()

    @property
    def highlighted_finding(self) -> TraceFinding | None:
        index = self.highlighted
        if index is None:
            return None
        option_id = self.get_option_at_index(index).id or ""
        return self.findings[int(option_id[1:])] if option_id.startswith("f") else None

    def show(self, findings: list[TraceFinding]) -> None:
        """A new preview: its findings replace the lines; the cursor and the scroll stay where
        they were as far as the new list reaches."""
        keep, scroll = self.highlighted, self.scroll_y
        self.findings = tuple(findings)
        options: list[Option] = []
        for kind, indexes in by_kind(list(findings)):
            options.append(Option(Content.assemble((kind, "bold"), (f" · {len(indexes)}", MUTED)),
                                  id=f"k{len(options)}", disabled=True))
            for index in indexes:
                finding = findings[index]
                where = Content.styled(f"  record {finding.record} · {finding.field}", MUTED)
                options.append(Option(Content("\n").join([where, Content("  ") + context_content(finding.context)]),
                                      id=f"f{index}"))
        self.clear_options()
        self.add_options(options)
        if not options:
            return
        if keep is not None:
            self.highlighted = min(keep, len(options) - 1)
            if self.highlighted_finding is None:  # landed on a kind's header
                self.action_cursor_down()
            self.scroll_to(y=scroll, animate=False, immediate=True)
        else:
            self.highlighted = 1  # the first finding, under the first header

    def on_resize(self, event: events.Resize) -> None:
        # shorter (the mask box opened below): the highlighted finding stays in sight
        self.scroll_to_highlight()
