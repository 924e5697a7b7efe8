"""The status line: model, effort, approval mode, context use, turn and session cost."""

from __future__ import annotations

from dataclasses import dataclass

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from widgets.content_join import join_line


@dataclass(frozen=True)
class StatusInfo:
    model_label: str = "starting…"
    #: the name the model's server answers with, when it is not the id asked for
    served_model: str | None = None
    model_ready: bool = False
    is_demo: bool = False
    effort: str | None = None
    mode: str = "auto"  # ask | auto | yolo
    yolo_cap_usd: float | None = None
    context_tokens: int = 0
    context_window: int = 0
    turn_tokens_in: int = 0
    turn_tokens_out: int = 0
    turn_cost_usd: float = 0.0
    turn_unknown_calls: int = 0
    session_cost_usd: float = 0.0
    session_unknown_calls: int = 0
    #: YOLO cap minus spend and reservations, as the engine last reported it (yolo mode only)
    budget_left_usd: float | None = None
    #: False while some spend has no known price: what is left is at most budget_left_usd
    budget_exact: bool = True
    running_jobs: int = 0
    #: a job's end starts a turn by itself (the config's wake_on_job_end)
    wake_on_job_end: bool = False
    busy: bool = False
    queued: int = 0
    #: characters streamed by the call in flight (its usage arrives only at the end)
    streamed_chars: int = 0


def _k(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _money(value: float, unknown: int) -> str:
    text = f"${value:.4f}" if value < 1 else f"${value:.2f}"
    if unknown:
        return f"{text}+?" if value else "unknown"
    return text


def model_text(label: str, served: str | None, limit: int) -> str:
    """The model as the status line names it: ``llamacpp/smollm2 → SmolLM2-135M-Instruct.Q4_1.gguf``
    when its server answers under another name, cut to ``limit`` cells (the served name
    shortened first, then the id from its start: the end of an id says the most)."""
    if served and served != label:
        room = limit - len(label) - 3
        if room >= 8:
            return f"{label} → " + (served if len(served) <= room else served[: room - 1] + "…")
        served_room = min(len(served), max(12, limit // 2))
        served_text = served if len(served) <= served_room else served[: served_room - 1] + "…"
        label_room = max(1, limit - served_room - 3)
        short = label if len(label) <= label_room else "…" + label[-(label_room - 1):]
        return f"{short} → {served_text}"
    return label if len(label) <= limit else "…" + label[-(limit - 1):]


def context_bar(tokens: int, window: int, width: int = 10) -> tuple[str, int]:
    if window <= 0:
        return "·" * width, 0
    pct = min(100, round(100 * tokens / window))
    filled = min(width, round(width * tokens / window))
    return "█" * filled + "░" * (width - filled), pct


def mode_badge(i: StatusInfo, compact: bool = False) -> Content:
    """``mode auto``, or the YOLO badge with what is left of its budget (the cap until the
    engine reports spend); nothing left turns the money red: the agent pauses there."""
    if i.mode != "yolo":
        return Content.from_markup("[b]$m[/]" if compact else "mode [b]$m[/]", m=i.mode)
    if i.budget_left_usd is not None:
        colour = "$error" if i.budget_left_usd <= 0.005 else "$foreground"
        bound = "" if i.budget_exact else "≤"  # unpriced spend: at most this is left
        money = Content.from_markup(f" [b {colour}]$left[/] left", left=f"{bound}${i.budget_left_usd:.2f}")
    elif i.yolo_cap_usd is not None:
        money = Content.from_markup(" $cap cap", cap=f"${i.yolo_cap_usd:.2f}")
    else:
        money = Content(" no cap")
    return Content.from_markup("[b reverse $error] YOLO [/]") + money


class StatusBar(Widget):
    DEFAULT_CSS = """
    StatusBar { height: 1; background: $panel; color: $foreground; padding: 0 1; }
    """

    info: reactive[StatusInfo] = reactive(StatusInfo)

    def render(self) -> Content:
        i = self.info
        width = self.size.width  # inside the padding
        compact = width < 110  # 80x24 must still show model, mode, context and cost
        parts: list[tuple[int, Content]] = []  # (rank, part): the highest rank goes first when it does not fit
        ready = "" if i.model_ready else " [i $foreground-muted](loading)[/]"
        model = "[b $warning]DEMO[/] " if i.is_demo else ""
        # wide: the id whole as ever, the served name cut to fit beside it
        label = model_text(i.model_label, i.served_model, 28 if compact else max(64, len(i.model_label) + 15))
        parts.append((0, Content.from_markup(f"{model}[b]$label[/]{ready}", label=label)))
        if i.effort:
            parts.append((4, Content.from_markup("effort [b]$e[/]", e=i.effort)))
        parts.append((0, mode_badge(i, compact)))
        bar, pct = context_bar(i.context_tokens, i.context_window, 5 if compact else 10)
        colour = "$error" if pct >= 90 else "$warning" if pct >= 70 else "$success"
        parts.append((2, Content.from_markup(f"ctx [{colour}]$bar[/] $pct%", bar=bar, pct=str(pct))))
        turn_cost = _money(i.turn_cost_usd, i.turn_unknown_calls)
        if compact:
            parts.append((3, Content.from_markup("turn $tc", tc=turn_cost)))
        else:
            out = _k(i.turn_tokens_out + i.streamed_chars // 4)
            if i.streamed_chars:
                out = "~" + out  # estimated until the provider reports usage
            parts.append((3, Content.from_markup("turn $tin↑ $tout↓ $tc", tin=_k(i.turn_tokens_in),
                                                 tout=out, tc=turn_cost)))
        parts.append((1, Content.from_markup("session [b]$sc[/]", sc=_money(i.session_cost_usd, i.session_unknown_calls))))
        if i.running_jobs:
            # the Jobs pane's running count, the number its title and tab show
            parts.append((0, Content.from_markup("[b $accent]jobs $j[/]", j=str(i.running_jobs))))
            if i.wake_on_job_end:
                # said beside the count: the agent will start a turn by itself when one ends
                parts.append((3, Content.from_markup("[$text-muted]↻ wakes agent[/]")))
        if i.queued:
            parts.append((0, Content.from_markup("[$warning]$q queued[/]", q=str(i.queued))))
        if i.busy:
            parts.append((0, Content.from_markup("[$accent]working…[/]")))
        separator = Content(" │ ")
        # what matters now (jobs, queue, working…) beats the turn's tokens on a narrow screen
        while sum(part.cell_length for _, part in parts) + separator.cell_length * (len(parts) - 1) > width:
            rank = max(rank for rank, _ in parts)
            if rank == 0:
                break
            index = max(n for n, (r, _) in enumerate(parts) if r == rank)
            del parts[index]
        return join_line(separator, (part for _, part in parts))
