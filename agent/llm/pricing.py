"""Context windows and prices: litellm's bundled map first, then our fallback table.

litellm's map has no entries for Hugging Face router ids and some Anthropic names, and its
``cost_per_token`` then silently returns 0. We never report that as $0: a price we cannot
find is ``None`` ("unknown") and the UI says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.llm.models import ResolvedModel
from agent.llm import model_map
from agent.protocol import Usage

if TYPE_CHECKING:
    from agent.llm.router_catalog import RouterCatalog


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None


# Approximate public list prices (USD per million tokens) and context windows for models
# litellm does not know, keyed by lower-case id prefix; the longest matching prefix wins.
FALLBACK_WINDOWS: dict[str, int] = {
    "moonshotai/kimi-k2": 262_144,
    "moonshotai/kimi-k2-instruct": 131_072,
    "qwen/qwen3-coder": 262_144,
    "qwen/qwen3": 131_072,
    "openai/gpt-oss": 131_072,
    "deepseek-ai/deepseek-v3": 131_072,
    "deepseek-ai/deepseek-r1": 131_072,
    "zai-org/glm-4": 131_072,
    "minimaxai/minimax-m": 204_800,
    "meta-llama/llama-3.1": 131_072,
    "meta-llama/llama-3.3": 131_072,
    "anthropic/claude": 200_000,
    "claude": 200_000,
    "demo": 131_072,
}

FALLBACK_PRICES: dict[str, Price] = {
    "moonshotai/kimi-k2": Price(0.60, 2.50),
    "qwen/qwen3-coder": Price(0.40, 1.60),
    "openai/gpt-oss-120b": Price(0.15, 0.60),
    "openai/gpt-oss-20b": Price(0.05, 0.20),
    "deepseek-ai/deepseek-v3": Price(0.30, 1.00),
    "deepseek-ai/deepseek-r1": Price(0.55, 2.20),
    "zai-org/glm-4": Price(0.60, 2.20),
    "minimaxai/minimax-m": Price(0.30, 1.20),
    "anthropic/claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
    "claude-opus-4": Price(15.0, 75.0, 1.5, 18.75),
}

#: when nothing is known about a model's window we assume a small one: overestimating the
#: window makes compaction fire too late and the provider reject the request.
ASSUMED_WINDOW = 32_768


def _longest_prefix(table: dict, key: str):
    key = key.lower()
    best = None
    for prefix in table:
        if key.startswith(prefix) and (best is None or len(prefix) > len(best)):
            best = prefix
    return table[best] if best is not None else None


def _litellm_info(model: ResolvedModel) -> dict | None:
    if model.route in ("demo", "local"):
        return None
    key = model.pricing_key or ""
    return model_map.lookup(model.litellm_model, key, key.split("/", 1)[-1])


@dataclass(frozen=True)
class WindowInfo:
    tokens: int
    source: str  # "config" | "litellm" | "fallback" | "assumed"


def context_window(model: ResolvedModel, overrides: dict[str, int] | None = None,
                   catalog: RouterCatalog | None = None) -> WindowInfo:
    overrides = overrides or {}
    for key in (model.id, model.pricing_key):
        if key in overrides:
            return WindowInfo(int(overrides[key]), "config")
    if catalog is not None and model.route == "hf_router":
        terms = catalog.terms(model)
        if terms is not None and terms.window:
            return WindowInfo(terms.window, "router")
    if not model.is_demo:
        info = _litellm_info(model)
        if info and info.get("max_input_tokens"):
            return WindowInfo(int(info["max_input_tokens"]), "litellm")
    fallback = _longest_prefix(FALLBACK_WINDOWS, model.pricing_key or model.id)
    if fallback:
        return WindowInfo(fallback, "fallback")
    return WindowInfo(ASSUMED_WINDOW, "assumed")


def _price_from_litellm(entry: dict) -> Price | None:
    if entry.get("input_cost_per_token") is None or entry.get("output_cost_per_token") is None:
        return None
    mt = 1_000_000
    cr = entry.get("cache_read_input_token_cost")
    cw = entry.get("cache_creation_input_token_cost")
    return Price(
        entry["input_cost_per_token"] * mt,
        entry["output_cost_per_token"] * mt,
        cr * mt if cr is not None else None,
        cw * mt if cw is not None else None,
    )


def find_price(model: ResolvedModel, overrides: dict[str, dict] | None = None,
               catalog: RouterCatalog | None = None) -> tuple[Price | None, str]:
    """The model's price and where it came from; (None, "unknown") when nobody knows. For a
    Hugging Face router model the router's own catalog comes before litellm's map and our
    table (it is live and per provider; see ``agent.llm.router_catalog``)."""
    if model.is_demo:
        return Price(0.0, 0.0), "demo"
    if model.is_local:
        return Price(0.0, 0.0), "local"
    for key in (model.id, model.pricing_key):
        if overrides and key in overrides:
            p = overrides[key]
            return Price(float(p["input_per_mtok"]), float(p["output_per_mtok"]),
                         p.get("cache_read_per_mtok"), p.get("cache_write_per_mtok")), "config"
    if catalog is not None and model.route == "hf_router":
        terms = catalog.terms(model)
        if terms is not None and terms.price is not None:
            return terms.price, "router"
    entry = _litellm_info(model)
    if entry:
        price = _price_from_litellm(entry)
        if price is not None:
            return price, "litellm"
    fallback = _longest_prefix(FALLBACK_PRICES, model.pricing_key or model.id)
    if fallback:
        return fallback, "fallback"
    return None, "unknown"


def cost_of(price: Price | None, usage: Usage) -> float | None:
    """Dollars for one call. Cached prompt tokens are billed at the cache prices when known."""
    if price is None:
        return None
    cached = min(usage.cache_read_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, max(usage.prompt_tokens - cached, 0))
    plain = usage.prompt_tokens - cached - written
    read_rate = price.cache_read_per_mtok if price.cache_read_per_mtok is not None else price.input_per_mtok
    write_rate = price.cache_write_per_mtok if price.cache_write_per_mtok is not None else price.input_per_mtok
    dollars = (
        plain * price.input_per_mtok
        + cached * read_rate
        + written * write_rate
        + usage.completion_tokens * price.output_per_mtok
    ) / 1_000_000
    return round(dollars, 10)


def normalise_usage(raw) -> Usage:
    """Usage from any provider's shape (object or dict) into our four counters."""
    if raw is None:
        return Usage()

    def get(obj, name, default=None):
        if obj is None:
            return default
        if isinstance(obj, dict):
            return obj.get(name, default)
        return getattr(obj, name, default)

    completion = int(get(raw, "completion_tokens", 0) or get(raw, "output_tokens", 0) or 0)
    details = get(raw, "prompt_tokens_details")
    # Anthropic: cache_read_input_tokens / cache_creation_input_tokens; OpenAI (and litellm's
    # mapping of both): prompt_tokens_details.cached_tokens / cache_creation_tokens
    cache_read = int(get(raw, "cache_read_input_tokens", 0) or get(details, "cached_tokens", 0) or 0)
    cache_write = int(get(raw, "cache_creation_input_tokens", 0) or get(details, "cache_creation_tokens", 0) or 0)
    prompt = int(get(raw, "prompt_tokens", 0) or 0)
    if not prompt:
        # Anthropic's own shape counts only the uncached part as input_tokens; our prompt
        # count includes the cached parts, as OpenAI's and litellm's do
        prompt = int(get(raw, "input_tokens", 0) or 0)
        if prompt or cache_read or cache_write:
            prompt += cache_read + cache_write
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
    )
