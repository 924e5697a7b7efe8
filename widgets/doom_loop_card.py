"""What a paused repetition guard shows: the calls the agent kept repeating, what the loop burned
(tokens and dollars) and the remedies, one key each."""

from __future__ import annotations

from textual.content import Content
from textual.widget import Widget

from agent.protocol import Guard

MUTED = "$foreground-muted"  # not $text-muted: Content spans render it as pure white (8.2.8)
#: remedy -> (key, what it does), in the order the engine offers them
REMEDY_KEYS = {
    "stop": ("s", "stop here"),
    "hint": ("h", "continue with a hint you type"),
    "switch_model": ("m", "switch model, then continue"),
    "continue": ("c", "continue as is (the agent was told to change approach)"),
}


def burned(guard: Guard) -> str:
    """"41,230 tokens and $0.1269 spent in the loop" (the cost may be unknown, never $0)."""
    tokens = f"{guard.tokens_spent:,} tokens" if guard.tokens_spent else "tokens unknown"
    cost = "an unknown cost" if guard.cost_usd is None else f"${guard.cost_usd:.4f}"
    return f"{tokens} and {cost} spent in the loop"


class DoomLoopCard(Widget):
    DEFAULT_CSS = """
    DoomLoopCard { height: auto; }
    """

    def __init__(self, guard: Guard):
        super().__init__()
        self.guard = guard

    def render(self) -> Content:
        g = self.guard
        lines = [Content.styled("⚠ The agent is going in circles: the turn is paused", "bold $warning"),
                 Content(g.message),
                 Content(""),
                 Content.styled(f"Repeated calls ({len(g.repeated)}), newest last:", "bold")]
        lines += [Content.styled(f"  {call}", MUTED) for call in g.repeated] or [Content.styled("  (not listed)", MUTED)]
        lines += [Content(""), Content.styled(burned(g), "$warning"), Content("")]
        for remedy in g.remedies:
            key, text = REMEDY_KEYS.get(remedy, ("", remedy))
            if key:
                lines.append(Content.assemble((f"  {key}", "bold $accent"), f"  {text}"))
        return Content("\n").join(lines)
