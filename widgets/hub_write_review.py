"""What a Hub write will change, on its approval card: target, visibility, files, README diff.

Renders one ``agent.protocol.HubWriteReview`` (made by the tool's read-only ``review`` before
the card appears). A public repo is flagged in the warning colour: what is pushed there is
visible to everyone at once. Colours are theme variables only.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from agent.protocol import HubWriteReview

#: diff lines shown on the card; the rest is summarised (the card scrolls, but not forever)
DIFF_MAX_LINES = 60
_CHANGE_STYLE = {"add": "$success", "update": "$warning", "delete": "$error"}


def size_text(n: int | None) -> str:
    if n is None:
        return "—"
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB"):
        n /= 1000
        if n < 1000 or unit == "GB":
            return f"{n:.1f} {unit}"
    return ""


def target_line(review: HubWriteReview) -> Content:
    kind = {"model": "model", "dataset": "dataset", "space": "Space"}[review.repo_type]
    if review.create_pr:
        where = " · opens a pull request"
    elif review.revision:
        where = f" · on {review.revision}"
    else:
        where = ""
    new = " (new repo)" if review.creates_repo else ""
    return Content.from_markup("[b]$op[/] → $kind [b]$repo[/]$new$where", op=review.operation, kind=kind,
                               repo=review.repo_id, new=new, where=where)


def visibility_line(review: HubWriteReview) -> Content:
    if review.visibility == "public":
        return Content.from_markup("[b $warning]⚠ public[/] [$warning]— anyone can see what this writes[/]")
    if review.visibility == "private":
        return Content.from_markup("[b]private[/]")
    return Content.from_markup("[$text-muted]visibility unknown[/]")


def file_table(review: HubWriteReview) -> Content:
    width = max((len(f.path) for f in review.files), default=0)
    width = min(max(width, 4), 60)
    lines = []
    for f in review.files:
        path = f.path if len(f.path) <= width else "…" + f.path[-(width - 1):]
        lines.append(Content.from_markup(f"[{_CHANGE_STYLE[f.change]}]$change[/] $path $size",
                                         change=f"{f.change:<6}", path=path.ljust(width), size=size_text(f.size).rjust(9)))
    count = len(review.files)
    lines.append(Content.from_markup("[$text-muted]$total in $n[/]", total=size_text(review.total_bytes).rjust(9),
                                     n=f"{count} file{'s' if count != 1 else ''} listed"))
    return Content("\n").join(lines)


def diff_content(diff: str) -> Content:
    lines = diff.splitlines()
    shown, rest = lines[:DIFF_MAX_LINES], len(lines) - DIFF_MAX_LINES
    out = []
    for line in shown:
        if line.startswith(("+++", "---")):
            out.append(Content.from_markup("[b]$t[/]", t=line))
        elif line.startswith("@@"):
            out.append(Content.from_markup("[$accent]$t[/]", t=line))
        elif line.startswith("+"):
            out.append(Content.from_markup("[$success]$t[/]", t=line))
        elif line.startswith("-"):
            out.append(Content.from_markup("[$error]$t[/]", t=line))
        else:
            out.append(Content(line))
    if rest > 0:
        out.append(Content.from_markup("[$text-muted]… $n more diff lines[/]", n=str(rest)))
    return Content("\n").join(out)


class HubWriteReviewView(Widget):
    DEFAULT_CSS = """
    HubWriteReviewView { height: auto; margin: 0 0 1 0; }
    HubWriteReviewView > Static { height: auto; }
    HubWriteReviewView > .review-heading { color: $text-muted; text-style: bold; margin: 1 0 0 0; }
    HubWriteReviewView > .review-notes { color: $text-muted; }
    HubWriteReviewView > .review-diff { background: $boost; padding: 0 1; }
    """

    def __init__(self, review: HubWriteReview, **kwargs):
        super().__init__(**kwargs)
        self.review = review

    def compose(self) -> ComposeResult:
        r = self.review
        yield Static(target_line(r), classes="review-target")
        yield Static(visibility_line(r), classes="review-visibility" + (" -public" if r.visibility == "public" else ""))
        if r.files:
            yield Static("Files", classes="review-heading")
            yield Static(file_table(r), classes="review-files")
        if r.notes:
            yield Static(Content("\n").join(Content(f"• {n}") for n in r.notes), classes="review-notes")
        if r.card_diff:
            yield Static("Model card (README.md)", classes="review-heading")
            yield Static(diff_content(r.card_diff), classes="review-diff")
