"""The Hugging Face router's live model catalog: who serves a model, at what price, with what
context window and whether with tool calls.

``GET <router>/models`` lists every routed model with its providers (reference §7.5)::

    {"data": [{"id": "org/model", "providers": [{"provider": "novita", "status": "live",
      "context_length": 131072, "pricing": {"input": 0.6, "output": 2.5},
      "supports_tools": true, "supports_structured_output": false}, ...]}, ...]}

Prices are dollars per million tokens. The answer is kept in ``<data dir>/router_catalog.json``
so a later session prices its calls and fills the picker before the network answers; it is
refreshed in the background when older than ``FRESH_S``.

What a call costs depends on the provider that serves it. A pinned provider (``org/model:groq``)
is priced at its own rates; ``:cheapest`` at the cheapest live provider; anything else (no tag,
``:fastest``, ``:preferred``) at the dearest live provider, because the router may pick any of
them and a budget must not be spent on a guess that is too low. Its context window is the
smallest live one for the same reason.

This module never touches the network itself: ``refresh`` is handed the session's ``Net``.
"""

from __future__ import annotations

import difflib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.cache_files import write_json
from agent.llm.models import ResolvedModel
from agent.llm.pricing import Price

log = logging.getLogger(__name__)

FILE = "router_catalog.json"
#: a catalog younger than this is used without asking the router again
FRESH_S = 300.0
#: after a failed fetch, the next attempt waits at least this long
RETRY_AFTER_FAILURE_S = 15.0
#: tags the router takes after the colon that are policies, not provider names
POLICY_TAGS = frozenset({"fastest", "cheapest", "preferred"})
MAX_CATALOG_BYTES = 20_000_000


@dataclass(frozen=True)
class Offer:
    """One provider's terms for a model."""

    provider: str
    status: str
    context_length: int | None
    input_per_mtok: float | None
    output_per_mtok: float | None
    supports_tools: bool
    supports_structured_output: bool

    @property
    def live(self) -> bool:
        return self.status == "live"

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None


@dataclass(frozen=True)
class CatalogModel:
    id: str
    offers: tuple[Offer, ...]

    @property
    def live(self) -> tuple[Offer, ...]:
        return tuple(o for o in self.offers if o.live)

    def offer(self, provider: str) -> Offer | None:
        provider = provider.lower()
        return next((o for o in self.offers if o.provider.lower() == provider), None)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value >= 0 else None


def parse(raw: Any) -> dict[str, CatalogModel]:
    """The catalog by lower-case model id. Raises ValueError when ``raw`` is not a model list;
    an entry or a provider that is malformed is skipped, not fatal."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, list):
        raise ValueError("the answer has no 'data' list of models")
    models: dict[str, CatalogModel] = {}
    for entry in data:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            continue
        offers = []
        for p in entry.get("providers") or []:
            if not isinstance(p, dict) or not isinstance(p.get("provider"), str):
                continue
            pricing = p.get("pricing") if isinstance(p.get("pricing"), dict) else {}
            context = p.get("context_length")
            offers.append(Offer(
                provider=p["provider"],
                status=str(p.get("status") or ""),
                context_length=int(context) if isinstance(context, int) and context > 0 else None,
                input_per_mtok=_number(pricing.get("input")),
                output_per_mtok=_number(pricing.get("output")),
                supports_tools=p.get("supports_tools") is True,
                supports_structured_output=p.get("supports_structured_output") is True,
            ))
        models[entry["id"].lower()] = CatalogModel(entry["id"], tuple(offers))
    return models


def split_tag(model_id: str) -> tuple[str, str | None]:
    """("org/model", "tag") for "org/model:tag"; the ``huggingface/`` prefix is dropped."""
    if model_id.startswith("huggingface/"):
        model_id = model_id[len("huggingface/"):]
    bare, _, tag = model_id.partition(":")
    return bare, (tag or None)


@dataclass(frozen=True)
class Terms:
    """What the session charges and assumes for one router model id."""

    price: Price | None
    window: int | None
    #: how the price was chosen, in words ("novita's price", "dearest of 3 live providers")
    basis: str


class RouterCatalog:
    """The catalog as last fetched, from memory or from its file. Reads are synchronous and
    never wait for the network."""

    def __init__(self, path: Path | None, url: str):
        self.path = path
        self.url = url
        self._models: dict[str, CatalogModel] | None = None
        self.fetched_at: float | None = None  # wall clock of the answer we hold
        self.error: str | None = None  # why the last fetch failed (None: it did not)
        self._failed_at = 0.0
        self._loaded = False

    # ------------------------------------------------------------------ holding

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.path is None:
            return
        try:
            stored = json.loads(self.path.read_text())
            if stored.get("url") != self.url:
                return  # the catalog of another router endpoint
            self._models = parse(stored.get("catalog"))
            self.fetched_at = float(stored["fetched_at"])
        except FileNotFoundError:
            return
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("ignoring the unreadable router catalog %s: %s", self.path, exc)

    @property
    def models(self) -> dict[str, CatalogModel]:
        self._load()
        return self._models or {}

    @property
    def known(self) -> bool:
        """A catalog is held (fetched now or read from the file)."""
        self._load()
        return self._models is not None

    def age_s(self) -> float | None:
        self._load()
        return None if self.fetched_at is None else max(0.0, time.time() - self.fetched_at)

    def fresh(self) -> bool:
        age = self.age_s()
        return age is not None and age < FRESH_S

    def due(self) -> bool:
        """Worth asking the router now: what we hold is old, and no fetch failed just now."""
        return not self.fresh() and time.monotonic() - self._failed_at >= RETRY_AFTER_FAILURE_S

    def accept(self, raw: Any, *, now: float | None = None) -> None:
        """A fetched answer: parsed (ValueError when it is not a catalog), held and written."""
        models = parse(raw)
        self._loaded = True
        self._models = models
        self.fetched_at = time.time() if now is None else now
        self.error = None
        if self.path is None:
            return
        if not write_json(self.path, {"url": self.url, "fetched_at": self.fetched_at, "catalog": raw}):
            log.warning("could not keep the router catalog in %s", self.path)

    async def refresh(self, net: Any, *, timeout_s: float = 5.0) -> bool:
        """Fetch the catalog with ``net`` (no token: the listing is public). False, with
        ``error`` set, when the router could not be asked or its answer was not a catalog."""
        from agent.net import NetError

        try:
            response = await net.get(self.url, timeout_s=timeout_s, max_bytes=MAX_CATALOG_BYTES,
                                     headers={"Accept": "application/json"})
            if response.truncated:
                raise ValueError(f"the catalog is larger than {MAX_CATALOG_BYTES // 1_000_000} MB")
            self.accept(response.json())
            return True
        except NetError as exc:
            self.error = str(exc)
        except ValueError as exc:
            self.error = f"the router's model list at {self.url} could not be read: {exc}"
        self._failed_at = time.monotonic()
        return False

    # ------------------------------------------------------------------ questions

    def lookup(self, model_id: str) -> CatalogModel | None:
        bare, _ = split_tag(model_id)
        return self.models.get(bare.lower())

    def suggest(self, model_id: str, limit: int = 3) -> list[str]:
        bare, _ = split_tag(model_id)
        ids = {m.id.lower(): m.id for m in self.models.values()}
        return [ids[i] for i in difflib.get_close_matches(bare.lower(), list(ids), n=limit, cutoff=0.5)]

    def terms(self, model: ResolvedModel | str) -> Terms | None:
        """Price and window for a router model id, or None when the catalog does not list it."""
        model_id = model if isinstance(model, str) else model.id
        entry = self.lookup(model_id)
        if entry is None:
            return None
        _, tag = split_tag(model_id)
        if tag and tag.lower() not in POLICY_TAGS:
            offer = entry.offer(tag)
            if offer is None:
                return Terms(None, None, f"{tag} does not serve it")
            price = Price(offer.input_per_mtok, offer.output_per_mtok) if offer.priced else None  # type: ignore[arg-type]
            return Terms(price, offer.context_length, f"{offer.provider}'s price")
        live = entry.live
        priced = [o for o in live if o.priced]
        windows = [o.context_length for o in live if o.context_length]
        window = min(windows) if windows else None
        if not priced:
            return Terms(None, window, "no live provider states a price")

        def total(o: Offer) -> float:
            return (o.input_per_mtok or 0.0) + 4 * (o.output_per_mtok or 0.0)

        if tag and tag.lower() == "cheapest":
            chosen, basis = min(priced, key=total), "cheapest live provider"
        else:
            chosen = max(priced, key=total)
            basis = (f"{chosen.provider}'s price" if len(priced) == 1
                     else f"dearest of {len(priced)} live providers ({chosen.provider})")
        if len(priced) < len(live):
            # a provider without a price could be picked: the price is only a guess then
            return Terms(None, window, f"{len(live) - len(priced)} live provider(s) state no price")
        return Terms(Price(chosen.input_per_mtok, chosen.output_per_mtok), window, basis)  # type: ignore[arg-type]

    def problems(self, model_id: str) -> list[str]:
        """Why ``model_id`` may not work through the router, in sentences ([] when it should).
        Empty too when no catalog is held (nothing can be said)."""
        if not self.known:
            return []
        bare, tag = split_tag(model_id)
        entry = self.lookup(model_id)
        if entry is None:
            close = self.suggest(model_id)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            return [f"{bare} is not in the Hugging Face router's catalog, so no provider may serve it.{hint}"]
        out = []
        live = entry.live
        if not live:
            out.append(f"{entry.id} has no live provider on the router right now.")
        if tag and tag.lower() not in POLICY_TAGS:
            offer = entry.offer(tag)
            if offer is None:
                names = ", ".join(o.provider for o in live) or "none"
                out.append(f"{tag} does not serve {entry.id} (live providers: {names}).")
            elif not offer.live:
                out.append(f"{tag} lists {entry.id} but is not live ({offer.status or 'no status'}).")
            elif not offer.supports_tools:
                out.append(f"{tag} does not support tool calls for {entry.id}: the agent cannot use its tools.")
        elif live and not any(o.supports_tools for o in live):
            out.append(f"No live provider of {entry.id} supports tool calls: the agent cannot use its tools.")
        return out
