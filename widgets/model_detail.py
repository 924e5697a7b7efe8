"""The model picker's detail area: what the list's highlighted line means. Its warning (in the
warning colour), the price the session will charge its calls at and where that price comes
from, context and tools, and a router model's providers with their own terms, or for a
pinned provider's line what enter would switch to."""

from __future__ import annotations

from textual.content import Content
from textual.reactive import reactive
from textual.widget import Widget

from agent.protocol import ModelOffer
from widgets.content_join import join_line
from widgets.model_table import MUTED, Line, format_context, format_price, ordered_offers


def _price_phrase(input_per_mtok: float | None, output_per_mtok: float | None, basis: str) -> str:
    price = format_price(input_per_mtok, output_per_mtok)
    if price == "?":
        return "Price unknown" + (f" · {basis}" if basis and basis != "price unknown" else "")
    if price == "free":
        return "Free" + (f" · {basis}" if basis and basis != "free" else "")
    return f"Price {price} per Mtok in / out" + (f" · {basis}" if basis else "")


def _tools_phrase(tools: bool | None) -> str:
    if tools is None:
        return "tool support unknown"
    return "takes tool calls" if tools else "no tool calls"


def _offer_phrase(offer: ModelOffer) -> Content:
    if not offer.live:
        return Content.assemble((offer.provider, MUTED), " ", ("○ not live", "$warning"))
    terms = f" {format_price(offer.input_per_mtok, offer.output_per_mtok)} {format_context(offer.context)}"
    return Content.assemble(offer.provider, " ", ("●", "$success"), terms, ("" if offer.tools else " no tools", "$warning"))


def describe(line: Line | None) -> Content:
    """What the detail area says about the highlighted line: its warning, the price the
    session will charge and why, context and tools, and a router model's providers."""
    if line is None or line.choice is None:
        return Content("")
    choice = line.choice
    parts: list[Content] = []
    if line.offer is not None:
        offer = line.offer
        facts = [f"context {format_context(offer.context)}", _tools_phrase(offer.tools),
                 "live" if offer.live else "not live"]
        parts.append(Content.from_markup("[b]$id[/] · $facts", id=line.key, facts=" · ".join(facts)))
        parts.append(Content(_price_phrase(offer.input_per_mtok, offer.output_per_mtok, f"{offer.provider}'s price")))
        if not offer.live:
            parts.append(Content.styled(f"⚠ {offer.provider} does not serve this model now: calls pinned to it fail "
                                        "until it is back.", "$warning"))
        elif not offer.tools:
            parts.append(Content.styled(f"⚠ {offer.provider} takes no tool calls for this model: the agent could "
                                        "only answer in text.", "$warning"))
        parts.append(Content.styled(f"enter switches to {line.key}: every call goes to {offer.provider}.", MUTED))
        return Content("\n").join(parts)
    if choice.warning:
        parts.append(Content.styled(f"⚠ {choice.warning}", "$warning"))
    facts = []
    if choice.context:
        facts.append(f"context {choice.context:,} tokens")
    facts.append(_tools_phrase(choice.tools))
    if choice.detail:
        facts.append(choice.detail)
    parts.append(Content.from_markup("[b]$id[/] · $facts", id=choice.id, facts=" · ".join(facts)))
    parts.append(Content(_price_phrase(choice.input_per_mtok, choice.output_per_mtok, choice.price_basis)))
    if choice.offers:
        parts.append(Content("Providers: ") + join_line("; ", (_offer_phrase(o) for o in ordered_offers(choice))))
    return Content("\n").join(parts)


class ModelDetail(Widget):
    DEFAULT_CSS = """
    ModelDetail { height: auto; }
    """

    line: reactive[Line | None] = reactive(None, layout=True)

    def render(self) -> Content:
        return describe(self.line)
