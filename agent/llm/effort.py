"""Reasoning effort: the cascade, what each model accepts, and what to send.

The user states a preference (``/effort``, ``reasoning_effort`` in the config). Models accept
different levels, and providers say so only by rejecting a request, so the preference maps
to a cascade of levels to try, strongest first (reference §7.3)::

    max -> xhigh -> high -> medium -> low        minimal -> low

What we learn about a model (levels accepted, levels rejected, "takes no effort at all") is
kept per model in memory and in ``<data dir>/effort-cache.json`` with a timestamp, so the
next session knows without asking. Knowledge expires after a week: providers add levels.

The effective effort walks the cascade and skips levels known to be rejected (or that
litellm's model map says the model cannot take, since litellm would silently drop them);
the first level not known to be rejected is sent. Only local servers are stricter: they get
an effort only once a probe the user asked for has seen them accept it.

``probe_effort`` asks the model directly (a tiny request per level, ``kind="effort_probe"``)
when the user switches model or sets an effort, so the status bar shows the truth before the
first turn; ``LLMClient`` heals the rest at run time (a rejection lowers the effort one step
and updates this cache).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Literal

from agent.llm.errors import LLMError, LLMErrorInfo
from agent.llm.models import ResolvedModel

LEVELS = ("minimal", "low", "medium", "high", "xhigh", "max")
OFF_WORDS = ("off", "none")
CASCADES: dict[str, tuple[str, ...]] = {
    "max": ("max", "xhigh", "high", "medium", "low"),
    "xhigh": ("xhigh", "high", "medium", "low"),
    "high": ("high", "medium", "low"),
    "medium": ("medium", "low"),
    "minimal": ("minimal", "low"),
    "low": ("low",),
}
#: the Hugging Face router takes only these (minimal is sent as low, see LLMClient._open)
ROUTER_LEVELS = frozenset({"minimal", "low", "medium", "high"})

CACHE_FILE = "effort-cache.json"
CACHE_TTL_S = 7 * 24 * 3600
PROBE_TIMEOUT_S = 15.0
#: enough for "ping"; Anthropic models get no cap (a thinking budget must fit under it)
PROBE_MAX_TOKENS = 16
PROBE_MESSAGES = ({"role": "user", "content": "ping"},)


def normalise_effort(value: str | None) -> str | None:
    """A level from LEVELS, or None for off; anything else raises ValueError with the choices."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if not text or text in OFF_WORDS:
        return None
    if text not in CASCADES:
        raise ValueError(f"unknown reasoning effort {value!r}: use one of {', '.join(LEVELS)} or off")
    return text


def cascade(preference: str | None) -> tuple[str, ...]:
    return CASCADES.get(preference or "", ())


def step_down(level: str) -> str | None:
    """The next weaker level to try after ``level`` was rejected; None: none left."""
    levels = cascade(level)
    return levels[1] if len(levels) > 1 else None


# --------------------------------------------------------------------------- knowledge


@dataclass
class ModelEfforts:
    accepted: set[str] = field(default_factory=set)
    rejected: set[str] = field(default_factory=set)
    no_effort: bool = False
    updated: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"accepted": sorted(self.accepted), "rejected": sorted(self.rejected),
                "no_effort": self.no_effort, "updated": self.updated}

    @classmethod
    def from_json(cls, data: Any) -> ModelEfforts | None:
        if not isinstance(data, dict):
            return None
        try:
            return cls(
                accepted={x for x in data.get("accepted", []) if x in CASCADES},
                rejected={x for x in data.get("rejected", []) if x in CASCADES},
                no_effort=bool(data.get("no_effort", False)),
                updated=float(data.get("updated", 0.0)),
            )
        except (TypeError, ValueError):
            return None


def cache_key(model: ResolvedModel) -> str:
    """One entry per model *and* server: the same id on another base URL may be another model."""
    if model.route in ("local", "openai_compatible") and model.api_base:
        return f"{model.id}@{model.api_base}"
    return model.id


class EffortCache:
    """Per-model effort knowledge, in memory and (when ``path`` is set) in a JSON file.

    The file is an optimisation: a missing, unreadable or corrupt file means "nothing known"
    and a failed write is ignored; neither may stop a session."""

    def __init__(self, path: Path | None = None, *, ttl_s: float = CACHE_TTL_S, clock=time.time):
        self.path = path
        self.ttl_s = ttl_s
        self.clock = clock
        self._models: dict[str, ModelEfforts] | None = None

    def _all(self) -> dict[str, ModelEfforts]:
        if self._models is None:
            self._models = {}
            if self.path is not None:
                try:
                    raw = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, ValueError):
                    raw = {}
                models = raw.get("models", {}) if isinstance(raw, dict) else {}
                for key, data in (models.items() if isinstance(models, dict) else []):
                    entry = ModelEfforts.from_json(data)
                    if entry is not None:
                        self._models[key] = entry
        return self._models

    def entry(self, model: ResolvedModel) -> ModelEfforts | None:
        entry = self._all().get(cache_key(model))
        if entry is not None and self.clock() - entry.updated > self.ttl_s:
            return None  # stale: the provider may have changed what it accepts
        return entry

    def state(self, model: ResolvedModel, level: str) -> Literal["accepted", "rejected"] | None:
        entry = self.entry(model)
        if entry is None:
            return None
        if level in entry.accepted:
            return "accepted"
        if level in entry.rejected:
            return "rejected"
        return None

    def no_effort(self, model: ResolvedModel) -> bool:
        entry = self.entry(model)
        return bool(entry and entry.no_effort)

    def record(self, model: ResolvedModel, *, accepted: str | None = None, rejected: str | None = None,
               no_effort: bool = False) -> None:
        entry = self.entry(model)
        if entry is None:
            entry = ModelEfforts()
        if accepted:
            entry.accepted.add(accepted)
            entry.rejected.discard(accepted)
            entry.no_effort = False
        if rejected:
            entry.rejected.add(rejected)
            entry.accepted.discard(rejected)
        if no_effort:
            entry.no_effort = True
        entry.updated = self.clock()
        self._all()[cache_key(model)] = entry
        self._save()

    def forget(self, model: ResolvedModel) -> None:
        if self._all().pop(cache_key(model), None) is not None:
            self._save()

    def _save(self) -> None:
        if self.path is None:
            return
        data = {"version": 1, "models": {k: v.to_json() for k, v in sorted(self._all().items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass


# --------------------------------------------------------------------------- deciding


def preflight(model: ResolvedModel, level: str) -> bool | None:
    """Whether ``level`` can be sent to ``model`` at all, without asking it: False when it
    cannot (litellm would silently drop it, or the route does not carry it), None when
    nobody knows before trying. Never imports litellm (that is for the caller to do off the
    UI thread); without it loaded the answer is None."""
    if model.is_demo:
        return False
    if model.route == "hf_router":
        return level in ROUTER_LEVELS
    if model.route == "local":
        return None
    from agent.llm.runtime import is_loaded

    if not is_loaded():
        return None
    from agent.llm.runtime import get_litellm

    litellm = get_litellm()
    try:
        name, provider, _, _ = litellm.get_llm_provider(model.litellm_model)
        params = litellm.get_supported_openai_params(model=name, custom_llm_provider=provider) or []
    except Exception:
        return None
    if "reasoning_effort" not in params:
        return False
    try:
        info = litellm.get_model_info(model.litellm_model)
    except Exception:
        return None  # not in litellm's map: it forwards the level and the server decides
    declared = info.get("reasoning_effort_levels")
    if isinstance(declared, (list, tuple)):
        return level in declared
    if info.get("supports_reasoning") is False:
        return False
    flag = info.get(f"supports_{level}_reasoning_effort")
    if flag is False:
        return False
    if level in ("xhigh", "max") and info.get("supports_reasoning"):
        # opt-in levels: litellm drops them for a mapped model unless its entry says yes
        return True if flag else False
    return None


def effective_effort(model: ResolvedModel, preference: str | None, cache: EffortCache | None) -> str | None:
    """The level to send to ``model`` for ``preference`` (None: send none)."""
    levels = cascade(preference)
    if not levels or model.is_demo:
        return None
    if cache is not None and cache.no_effort(model):
        return None
    for level in levels:
        state = cache.state(model, level) if cache is not None else None
        if model.is_local:
            if state == "accepted":  # a local server gets effort only once seen to take it
                return level
            continue
        if state == "rejected" or preflight(model, level) is False:
            continue
        return level
    return None


# --------------------------------------------------------------------------- probing

ProbeStatus = Literal["skipped", "cached", "accepted", "no_effort", "exhausted", "inconclusive", "failed"]


@dataclass
class ProbeResult:
    requested: str | None
    effort: str | None
    status: ProbeStatus
    requests: int = 0
    error: LLMErrorInfo | None = None

    def describe(self, model: ResolvedModel) -> str:
        """One sentence for the system log ("" when there is nothing worth saying)."""
        who = model.label
        if self.status == "accepted" and self.effort != self.requested:
            return f"{who} does not take reasoning effort '{self.requested}'; using '{self.effort}'."
        if self.status == "cached" and self.effort != self.requested:
            return f"Reasoning effort for {who}: '{self.effort}' (it does not take '{self.requested}', checked earlier)."
        if self.status in ("no_effort", "exhausted"):
            return f"{who} takes no reasoning effort setting; sending none (asked for '{self.requested}')."
        if self.status == "inconclusive":
            reason = self.error.message if self.error else "no answer"
            return (f"Could not check which reasoning effort {who} accepts ({reason}); "
                    f"using '{self.effort}' unverified.")
        if self.status == "skipped" and model.is_local and self.requested:
            return f"{who} is a local server: no reasoning effort is sent unless you set one with /effort."
        return ""


async def probe_effort(client: Any, model: ResolvedModel, preference: str | None, *,
                       explicit: bool = False, on_ask: Callable[[str], None] | None = None) -> ProbeResult:
    """Find the strongest level of ``preference``'s cascade that ``model`` accepts.

    Known answers come from the cache; unknown levels are asked with a tiny request each.
    The demo model is never probed, nor a local server unless ``explicit`` (the user asked
    for an effort). Transient failures leave the question open ("inconclusive"); errors
    that say the model cannot be used at all (credentials, unknown model, credits) are
    "failed" with the error. ``on_ask(level)`` is called before each request (a probe of a
    slow provider takes seconds: the user is told it is running)."""
    if preference is None or model.is_demo or (model.is_local and not explicit):
        return ProbeResult(preference, None, "skipped")
    cache: EffortCache | None = getattr(client, "efforts", None)
    result = ProbeResult(preference, None, "exhausted")
    for level in cascade(preference):
        if cache is not None and cache.no_effort(model):
            result.status = "no_effort"
            return result
        state = cache.state(model, level) if cache is not None else None
        if state == "accepted":
            result.effort, result.status = level, ("cached" if not result.requests else "accepted")
            return result
        if state == "rejected" or preflight(model, level) is False:
            continue
        result.requests += 1
        if on_ask is not None:
            on_ask(level)
        try:
            await client.stream(
                model, [dict(m) for m in PROBE_MESSAGES], None, kind="effort_probe", reasoning_effort=level,
                max_tokens=None if _is_anthropic_thinking(model) else PROBE_MAX_TOKENS,
                strict_effort=True, max_attempts=1, timeout_s=PROBE_TIMEOUT_S,
            )
        except LLMError as exc:
            kind = exc.info.kind
            if kind == "effort_rejected":
                if cache is not None:
                    cache.record(model, rejected=level)
                continue
            if kind in ("effort_unsupported", "thinking_unsupported"):
                if cache is not None:
                    cache.record(model, no_effort=True)
                result.status = "no_effort"
                return result
            result.error = exc.info
            if kind in ("auth", "credits", "unknown_model"):
                result.status = "failed"
            else:  # busy, timed out, or an answer we cannot read: decide at run time
                result.status, result.effort = "inconclusive", level
            return result
        if cache is not None:
            cache.record(model, accepted=level)
        result.effort, result.status = level, "accepted"
        return result
    if cache is not None and result.requests:
        cache.record(model, no_effort=True)  # every level refused: the model takes none
    return result


def _is_anthropic_thinking(model: ResolvedModel) -> bool:
    """Claude, wherever it is served: an effort becomes a thinking budget, which must fit
    under max_tokens, so the probe sets no cap."""
    from agent.llm.prompt_cache import takes_cache_marks

    return takes_cache_marks(model)
