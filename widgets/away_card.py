"""The "while you were away" card: what happened to a resumed session while the app was closed.

Shown once, under the redrawn conversation, when there is something to say: jobs that
ended while away (with their status, cost and detail), jobs still running and reattached,
and whether the last turn was cut off. A session that comes back to nothing new gets no card.
"""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from agent.protocol import AwayJob
from widgets.job_record import STAGES, UNKNOWN_STAGE  # stdlib only: not the Jobs pane, which loads later

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
CUT_OFF_TEXT = "The last turn was cut off; its unfinished tool calls were marked interrupted."


def format_away(seconds: float) -> str:
    """How long the session was closed, to the two largest units ("2 h 14 min", "3 d 4 h")."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total} s"
    minutes = total // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def short_id(job_id: str, width: int) -> str:
    return job_id if len(job_id) <= width else job_id[: width - 1] + "…"


def format_money(usd: float) -> str:
    return f"${usd:.4f}" if usd < 1 else f"${usd:.2f}"


def is_running(job: AwayJob) -> bool:
    return not job.ended_while_away and job.status.upper() in ("RUNNING", "QUEUED", "SCHEDULING")


def worth_showing(jobs: list[AwayJob] | tuple[AwayJob, ...], interrupted: bool) -> bool:
    """Whether a resume has anything to report (else no card at all)."""
    return interrupted or any(j.ended_while_away or is_running(j) for j in jobs)


def _cost(job: AwayJob, running: bool) -> str:
    if job.backend == "local":
        return "$0 (local)"
    if job.cost_usd is None:
        return "cost unknown"
    return format_money(job.cost_usd) + (" so far" if running else "")


class AwayCard(Widget):
    """One widget drawn by ``render``: a few lines, no children. Long lines wrap under their
    own text (a hanging indent), not under the marks, so a narrow pane stays readable."""

    DEFAULT_CSS = """
    AwayCard { height: auto; margin: 1 0 0 0; padding: 0 1; border-left: thick $accent; background: $boost; }
    """

    def __init__(self, jobs: list[AwayJob] | tuple[AwayJob, ...], away_s: float, interrupted: bool, **kwargs):
        super().__init__(**kwargs)
        self.jobs = tuple(j for j in jobs if j.ended_while_away or is_running(j))
        self.away_s = away_s
        self.interrupted = interrupted

    def _entries(self) -> list[tuple[Content, Content]]:
        """(prefix, body) per line: a wrapped body continues under its own first character."""
        entries = [(Content(""), Content.from_markup(f"[b $accent]While you were away[/] [{MUTED}]($away)[/]",
                                                     away=format_away(self.away_s)))]
        width = max((len(short_id(j.job_id, 14)) for j in self.jobs), default=0)
        flavors = max((len(j.flavor) for j in self.jobs), default=0)
        for job in self.jobs:
            running = is_running(job)
            if running:
                mark, _, style = STAGES["RUNNING"]
                label = "still running, reattached"
            else:
                mark, label, style = STAGES.get(job.status.upper(), UNKNOWN_STAGE)
                if label == "unknown":
                    label = job.status.lower() or "unknown"
                label = f"{label} while away"
            detail = f" · {job.detail}" if job.detail else ""
            entries.append((Content.from_markup(f"  [{style}]$mark[/] ", mark=mark), Content.from_markup(
                f"[b]$job[/] $flavor  [{style}]$label[/] [{MUTED}]· $cost$detail[/]",
                job=short_id(job.job_id, 14).ljust(width), flavor=job.flavor.ljust(flavors),
                label=label, cost=_cost(job, running), detail=detail)))
        if self.interrupted:
            entries.append((Content.from_markup("  [$warning]⚠[/] "), Content(CUT_OFF_TEXT).stylize("$warning")))
        return entries

    def _lines(self, width: int) -> list[Content]:
        lines: list[Content] = []
        for prefix, body in self._entries():
            room = width - prefix.cell_length
            if width <= 0 or body.cell_length <= room or room < 20:
                lines.append(prefix + body)
                continue
            first, *rest = body.wrap(room)
            lines.append(prefix + first)
            lines += [Content(" " * prefix.cell_length) + part for part in rest]
        return lines

    def get_content_height(self, container, viewport, width: int) -> int:
        return len(self._lines(width))

    def render(self) -> Content:
        return Content("\n").join(self._lines(self.size.width))
