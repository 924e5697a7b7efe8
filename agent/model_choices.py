"""What the model picker offers: the current model, the recent ones, the local servers that
answer on their usual ports, and the Hugging Face router's catalog, each with the price the
session would charge, its context window, tool support and what may stop it from working.

Recent models are kept in ``<data dir>/recent_models.json`` (newest first). Local servers are
asked for ``/v1/models`` at the base URL each local prefix resolves to (``<PROVIDER>_BASE_URL``,
then ``LOCAL_LLM_BASE_URL``, then its usual port), all at once, a second at most.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from agent.cache_files import write_json
from agent.llm.models import LOCAL_PROVIDERS, ResolvedModel, resolve_model
from agent.protocol import ModelChoice, ModelOffer
from agent.tools.output import ago

log = logging.getLogger(__name__)

RECENT_FILE = "recent_models.json"
MAX_RECENT = 12
LOCAL_PROBE_TIMEOUT_S = 1.0


class RecentModels:
    """Model ids the user worked with, newest first, with when they were last used."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> list[tuple[str, float]]:
        try:
            items = json.loads(self.path.read_text())
            return [(str(i), float(t)) for i, t in items if isinstance(i, str) and i][:MAX_RECENT]
        except (OSError, ValueError, TypeError):
            return []

    def touch(self, model_id: str, now: float | None = None) -> None:
        items = [(i, t) for i, t in self.load() if i != model_id]
        items.insert(0, (model_id, time.time() if now is None else now))
        if not write_json(self.path, items[:MAX_RECENT]):
            log.warning("could not remember %s as a recent model in %s", model_id, self.path)


@dataclass
class LocalServer:
    provider: str  # the id prefix: ollama, vllm, lm_studio, llamacpp
    base_url: str
    models: list[str] = field(default_factory=list)
    error: str | None = None  # why it did not answer as a model server


def local_bases(env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """(prefix, base URL) for each local prefix, one per distinct URL."""
    env = os.environ if env is None else env
    seen: set[str] = set()
    out = []
    for prefix in LOCAL_PROVIDERS:
        base = resolve_model(f"{prefix}/probe", env).api_base or ""
        if base and base not in seen:
            seen.add(base)
            out.append((prefix, base))
    return out


async def probe_local(net: Any, env: Mapping[str, str] | None = None) -> list[LocalServer]:
    """Ask every local base URL which models it serves, concurrently."""

    async def ask(prefix: str, base: str) -> LocalServer:
        server = LocalServer(prefix, base)
        try:
            response = await net.get(base + "/models", timeout_s=LOCAL_PROBE_TIMEOUT_S, max_bytes=2_000_000,
                                     headers={"Accept": "application/json"})
            body = response.json()
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                server.error = "its answer is not a model list"
                return server
            server.models = [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)
                             and m["id"] and not any(c.isspace() for c in m["id"])]
        except Exception as exc:  # not running, or not a model server: a line in the picker
            server.error = str(exc) or type(exc).__name__
        return server

    return list(await asyncio.gather(*(ask(p, b) for p, b in local_bases(env))))


class ChoiceBuilder:
    """Builds the picker's list from what the session knows. ``client`` prices and sizes a
    model as its calls would be (config, router catalog, litellm, our table)."""

    def __init__(self, client: Any, windows: dict[str, int], resolve=resolve_model):
        self.client = client
        self.windows = windows
        self.resolve = resolve

    def _priced(self, choice: ModelChoice, model: ResolvedModel) -> ModelChoice:
        from agent.llm.pricing import find_price

        price, source = find_price(model, self.client.price_overrides, self.client.catalog)
        if price is not None:
            choice.input_per_mtok, choice.output_per_mtok = price.input_per_mtok, price.output_per_mtok
        window = self.client.window(model, self.windows)
        if window.source != "assumed" and choice.context is None:
            choice.context = window.tokens
        if not choice.price_basis:
            choice.price_basis = {"router": "router catalog", "litellm": "litellm's price list",
                                  "fallback": "built-in table", "config": "your config", "local": "local, free",
                                  "demo": "demo, free", "unknown": "price unknown"}.get(source, source)
        return choice

    def router_choice(self, model_id: str, source: str = "router") -> ModelChoice:
        catalog = self.client.catalog
        choice = ModelChoice(id=model_id, source=source)  # type: ignore[arg-type]
        entry = catalog.lookup(model_id) if catalog is not None else None
        if entry is not None:
            choice.offers = [ModelOffer(provider=o.provider, live=o.live, input_per_mtok=o.input_per_mtok,
                                        output_per_mtok=o.output_per_mtok, context=o.context_length,
                                        tools=o.supports_tools) for o in entry.offers]
            live = entry.live
            choice.tools = any(o.supports_tools for o in live) if live else False
            terms = catalog.terms(model_id)
            if terms is not None:
                choice.price_basis = terms.basis
                choice.context = terms.window
            n = len(live)
            choice.detail = f"{n} live provider{'s' if n != 1 else ''}" if n else "no live provider"
        if catalog is not None:
            problems = catalog.problems(model_id)
            choice.warning = problems[0] if problems else None
        return choice

    def choice(self, model_id: str, source: str, detail: str = "") -> ModelChoice | None:
        try:
            model = self.resolve(model_id)
            if source == "router" and model.route != "hf_router":  # e.g. openai/gpt-oss-120b
                model = self.resolve("huggingface/" + model_id)
        except Exception:
            return None
        if model.route == "hf_router":
            choice = self.router_choice(model.id, source)
        else:
            choice = ModelChoice(id=model.id, source=source)  # type: ignore[arg-type]
            if model.is_demo:
                choice.tools = True
        if detail:
            choice.detail = f"{choice.detail} · {detail}" if choice.detail else detail
        return self._priced(choice, model)

    def build(self, current: ResolvedModel, recent: list[tuple[str, float]], local: list[LocalServer] | None,
              now: float | None = None) -> list[ModelChoice]:
        now = time.time() if now is None else now
        out: list[ModelChoice] = []
        seen: set[str] = set()

        def add(choice: ModelChoice | None) -> None:
            if choice is not None and choice.id.lower() not in seen:
                seen.add(choice.id.lower())
                out.append(choice)

        add(self.choice(current.id, "current", current.api_base if current.is_local else ""))
        for model_id, used in recent:
            add(self.choice(model_id, "recent", f"used {ago(now - used)}"))
        for server in local or []:
            for name in server.models:
                choice = self.choice(f"{server.provider}/{name}", "local", f"{server.provider} at {server.base_url}")
                add(choice)
        catalog = self.client.catalog
        if catalog is not None:
            for entry in sorted(catalog.models.values(), key=lambda m: m.id.lower()):
                add(self.choice(entry.id, "router"))
        return out


def local_note(servers: list[LocalServer] | None) -> str:
    """One line on the local servers: which answered, and which ports were tried."""
    if servers is None:
        return "asking local servers…"
    up = [s for s in servers if s.models]
    down = [s for s in servers if not s.models]
    parts = [f"{s.provider} at {s.base_url}: {len(s.models)} model{'s' if len(s.models) != 1 else ''}" for s in up]
    if down:
        parts.append("nothing at " + ", ".join(s.base_url for s in down))
    return "; ".join(parts)
