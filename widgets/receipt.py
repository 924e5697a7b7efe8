"""What the session costs: the receipt under each turn (one line, expandable) and the /cost
breakdown.

Unknown prices are always said in words ("+ 1 call at unknown price"), never folded into
the sum as $0: a model or GPU without a price would otherwise look free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual.content import Content
from textual.widget import Widget

if TYPE_CHECKING:
    from agent.protocol import Receipt


def _k(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _money(value: float, unknown: int) -> str:
    """A sum of known prices; "+?" when some prices are unknown (the expanded receipt says
    how many), "unknown cost" when none is known: never a bare $0 for an unpriced call."""
    if unknown and not value:
        return "unknown cost"
    return f"${value:.4f}" + ("+?" if unknown else "")


def receipt_line(r: Receipt) -> str:
    """The collapsed receipt, one short line (it starts "turn:", which the tmux benches look
    for): tokens, the turn's cost (model calls and compute) and its number of model calls."""
    u = r.usage
    cost = _money(r.llm_cost_usd + r.compute_cost_usd, r.unknown_cost_calls + r.unknown_compute_jobs)
    # cache use is in the expanded receipt: this line has to fit a 60-cell column with its ▸
    parts = [f"{_k(u.prompt_tokens)} in", f"{_k(u.completion_tokens)} out", cost, _plural(r.llm_calls, "call")]
    return "turn: " + " · ".join(parts)


def receipt_rows(r: Receipt) -> list[tuple[str, str]]:
    """The expanded receipt: (label, value) rows, each short enough for the conversation
    column (a flag about unknown prices gets a row of its own, with no label)."""
    u = r.usage
    not_counted = ", not in the sum"
    rows = [("tokens", f"{u.prompt_tokens:,} in · {u.completion_tokens:,} out"),
            ("cache", f"{u.cache_read_tokens:,} read · {u.cache_write_tokens:,} write"),
            ("model", f"${r.llm_cost_usd:.4f} over {_plural(r.llm_calls, 'call')}")]
    if r.unknown_cost_calls:
        rows.append(("", f"{r.unknown_cost_calls} of them at unknown price{not_counted}"))
    if r.research_llm_calls:
        rows.append(("research", f"${r.research_cost_usd:.4f} of it over {_plural(r.research_llm_calls, 'call')}"))
    rows.append(("compute", f"${r.compute_cost_usd:.4f} for jobs and sandboxes of this turn"))
    if r.unknown_compute_jobs:
        rows.append(("", f"+ {_plural(r.unknown_compute_jobs, 'job')} at unknown price{not_counted}"))
    rows.append(("session", f"${r.session_cost_usd:.4f} so far, model calls and compute"))
    if r.session_unknown_cost_calls:
        rows.append(("", f"+ {_plural(r.session_unknown_cost_calls, 'call')} at unknown price{not_counted}"))
    if r.budget_left_usd is None:
        rows.append(("budget", "YOLO off: no cap applies"))
    elif r.budget_exact:
        rows.append(("budget", f"${r.budget_left_usd:.2f} left of the YOLO cap"))
    else:  # unpriced spend: what is left is at most this, and calls that cost money ask
        rows.append(("budget", f"at most ${r.budget_left_usd:.2f} left of the YOLO cap (unpriced spend)"))
    return rows


class ReceiptLine(Widget, can_focus=True):
    """The receipt under a turn: one dim line; enter, space or a click (or f3 for the
    latest) opens the full breakdown below it.

    A line without a receipt is the place a running turn keeps for it (``Conversation.open_turn``):
    blank, one line high, so the receipt lands at the end of the turn without moving anything
    on screen (``fill``): no layout pass, no scroll, one line drawn."""

    BINDINGS = [("enter,space", "toggle", "Expand receipt")]
    DEFAULT_CSS = """
    ReceiptLine { height: auto; min-height: 1; padding: 0 1; color: $text-muted; }
    ReceiptLine:focus { background: $boost; }
    ReceiptLine.-expanded { border-left: thick $secondary; }
    """

    def __init__(self, receipt: Receipt | None):
        super().__init__()
        self.receipt = receipt
        if receipt is None:
            self.can_focus = False  # nothing to open yet

    def fill(self, receipt: Receipt) -> None:
        """The turn ended: the kept line shows its receipt. It is laid out again only if the
        line does not fit the width it already has (a narrow terminal)."""
        self.receipt = receipt
        self.can_focus = True
        fits = bool(self.size.width) and self.render().cell_length <= self.content_size.width
        self.refresh(layout=not fits)

    @property
    def expanded(self) -> bool:
        return self.has_class("-expanded")

    @property
    def text(self) -> str:
        return str(self.render())

    def render(self) -> Content:
        if self.receipt is None:
            return Content("")
        line = Content(receipt_line(self.receipt) + (" ▾" if self.expanded else " ▸")).stylize("dim")
        if not self.expanded:
            return line
        rows = [Content.assemble((f"  {label:<9}", "bold $foreground-muted"), value) for label, value in receipt_rows(self.receipt)]
        return Content("\n").join([line, *rows])

    def action_toggle(self) -> None:
        if self.receipt is None:
            return
        self.toggle_class("-expanded")
        self.refresh(layout=True)

    def on_click(self) -> None:
        self.action_toggle()


# --------------------------------------------------------------------------- /cost
#
# The conversation column is ~62 cells wide at 120 columns with the side panes open: every
# line below fits in 60, so nothing wraps or gets cut.


FINAL_JOB_STATES = frozenset({"COMPLETED", "ERROR", "CANCELED", "CANCELLED", "DELETED"})


def _middle_cut(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: keep // 2] + "…" + text[len(text) - (keep - keep // 2):]


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], *, name_width: int = 28,
           align: str = "") -> list[Content]:
    """A fixed-width table with a bold header: the first column left-aligned (long names
    cut in the middle, where model ids and job ids differ least), the others right-aligned
    unless ``align`` says "l" for them."""
    while len(head) > 2 and not any(r[len(head) - 1] for r in rows):  # a last column with nothing in it
        head, rows = head[:-1], [r[:-1] for r in rows]
    first = min(name_width, max(len(head[0]), *(len(r[0]) for r in rows)))
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(1, len(head))]

    def line(cells: tuple[str, ...]) -> str:
        out = _middle_cut(cells[0], first).ljust(first)
        for n, (value, width) in enumerate(zip(cells[1:], widths)):
            out += "  " + (value.ljust(width) if align[n:n + 1] == "l" else value.rjust(width))
        return out.rstrip()

    return [Content(line(head)).stylize("bold"), *(Content(line(row)) for row in rows)]


def _bucket_row(name: str, b: Any) -> tuple[str, ...]:
    # all of a bucket's calls unpriced: its cost is unknown, not $0
    cost = "unknown" if b.calls and b.unknown_calls == b.calls else f"${b.cost_usd:.4f}"
    return (name, str(b.calls), cost, str(b.unknown_calls) if b.unknown_calls else "")


def cost_report(ledger: Any, *, mode: str = "auto", cap_usd: float | None = None,
                budget_left_usd: float | None = None, budget_exact: bool = True) -> Content:
    """``/cost``: the session by kind of call, by model and by job, in aligned columns.
    ``ledger`` is the app's ``agent.costs.CostLedger``, read as data (widgets import only
    the protocol from the engine)."""
    t = ledger.total
    compute = ledger.compute_cost_usd
    unknown_jobs = ledger.unknown_compute_jobs
    u = t.usage
    head: list[tuple[str, str]] = [
        ("Session", f"${t.cost_usd + compute:.4f}  (model calls ${t.cost_usd:.4f} + compute ${compute:.4f})")]
    if t.unknown_calls or unknown_jobs:
        flags = ([_plural(t.unknown_calls, "call")] if t.unknown_calls else []) + \
            ([_plural(unknown_jobs, "job")] if unknown_jobs else [])
        head.append(("", f"+ {' and '.join(flags)} at unknown price, not counted"))
    head += [
        ("Calls", _plural(t.calls, "model call") + (f" ({ledger.failed_calls} failed)" if ledger.failed_calls else "")),
        ("Tokens", f"{u.prompt_tokens:,} in · {u.completion_tokens:,} out"),
        ("", f"{u.cache_read_tokens:,} cache read · {u.cache_write_tokens:,} cache write"),
    ]
    if mode == "yolo" and cap_usd is not None:
        left = ""
        if budget_left_usd is not None:
            left = f"{'' if budget_exact else 'at most '}${budget_left_usd:.2f} left of "
        head.append(("YOLO", f"{left}the ${cap_usd:.2f} cap"))
    lines = [Content.assemble((f"{label:<10}", "bold"), value) for label, value in head]
    for title, buckets in (("By kind", ledger.by_kind), ("By model", ledger.by_model)):
        if buckets:
            rows = [_bucket_row(name, b) for name, b in sorted(buckets.items())]
            lines += [Content(""), *_table((title, "calls", "cost", "unpriced"), rows)]
    lines.append(Content(""))
    if not ledger.jobs:
        lines.append(Content.assemble(("Jobs", "bold"), "  none launched"))
        return Content("\n").join(lines)
    rows = [(job_id, flavor or "?", status.lower(), "unknown" if cost is None else f"${cost:.4f}")
            for job_id, (flavor, status, cost) in ledger.jobs.items()]
    lines += _table(("Jobs", "hardware", "status", "cost"), rows, name_width=24, align="ll")
    if any(status.upper() not in FINAL_JOB_STATES for _, status, _ in ledger.jobs.values()):
        lines.append(Content("a job still running shows its cost so far").stylize("$foreground-muted"))
    return Content("\n").join(lines)


class CostReport(Widget):
    """The /cost breakdown in the conversation (a snapshot: it does not update)."""

    DEFAULT_CSS = """
    CostReport { height: auto; margin: 1 0 0 0; padding: 0 1; border-left: thick $accent; }
    """

    def __init__(self, report: Content):
        super().__init__()
        self.report = report

    @property
    def text(self) -> str:
        return self.report.plain

    def render(self) -> Content:
        return self.report
