"""The request as a provider should see it: prompt-cache hints and thinking blocks.

Prompt caching makes every step of an agent loop after the first cheaper and faster, since
each request repeats the previous one plus a little:

- Anthropic caches only up to blocks marked ``cache_control: {"type": "ephemeral"}`` (at
  most 4 marks). We mark the last tool spec (tools come first in Anthropic's prefix order),
  the system prompt, and the last user-side message (the prompt, or the newest tool result
  in a tool loop), so each step reads the prefix the step before wrote. That holds for
  Claude wherever it is served: Anthropic's API, Bedrock and Vertex AI (litellm's Anthropic
  adapters), OpenRouter, and the Hugging Face router (``anthropic/...`` ids, which also get
  the top-level ``cache_control`` that router's Anthropic provider reads).
- OpenAI caches long prefixes by itself; ``prompt_cache_key`` (stable per session) keeps
  one session's requests on the same cache shard. Sent to OpenAI models only (the API, a
  compatible server serving an OpenAI name, the HF router's ``openai/gpt-5...``), never
  to open-weights ``gpt-oss`` models, whose servers may reject unknown fields.

Assistant messages may carry Anthropic ``thinking_blocks`` (with signatures), which
Anthropic needs back within a tool loop. Other providers must not see them, and an
Anthropic request without thinking must not carry them either.

Everything here works on copies: the stored history is never changed, except by
``strip_thinking(..., in_place=True)``, used when the provider said those blocks are bad.
"""

from __future__ import annotations

from typing import Any

EPHEMERAL = {"type": "ephemeral"}
THINKING_KEYS = ("thinking_blocks", "reasoning_content")
THINKING_BLOCK_TYPES = ("thinking", "redacted_thinking")
OPENAI_NAME_PREFIXES = ("gpt-", "o1", "o3", "o4", "codex", "chatgpt")
#: open-weights models with OpenAI names, served by others
OPEN_WEIGHTS_PREFIXES = ("gpt-oss",)
#: litellm providers that serve Claude through litellm's Anthropic adapters (thinking blocks included)
CLAUDE_CLOUDS = ("bedrock", "vertex_ai")


def _claude(name: str) -> bool:
    return name.startswith(("claude", "anthropic.", "anthropic/")) or ".anthropic." in name or "/anthropic." in name


def is_anthropic(model) -> bool:
    """Requests that go through litellm's Anthropic Messages adapters: Anthropic's API, or
    Claude on Bedrock / Vertex AI (these keep thinking blocks and take cache marks)."""
    name = model.litellm_model.lower()
    if model.route not in ("litellm", "openai_compatible"):
        return False
    if name.startswith("anthropic/") or (model.route == "litellm" and name.startswith("claude")):
        return True
    provider, _, rest = name.partition("/")
    return model.route == "litellm" and provider in CLAUDE_CLOUDS and _claude(rest)


def takes_cache_marks(model) -> bool:
    """Claude, wherever it is served: the requests that read Anthropic cache marks."""
    if is_anthropic(model):
        return True
    if model.route == "litellm" and model.litellm_model.lower().startswith("openrouter/anthropic/"):
        return True
    return model.route == "hf_router" and (model.pricing_key or model.id).lower().startswith("anthropic/")


def is_openai(model) -> bool:
    """OpenAI models (the API, a compatible server serving an OpenAI model name, or the
    HF router's ``openai/...`` ids); never open-weights models with OpenAI names."""
    name = model.litellm_model.lower()
    if model.route == "hf_router":
        key = (model.pricing_key or model.id).lower()
        if not key.startswith("openai/"):
            return False
        name = key[len("openai/"):]
    elif model.route not in ("litellm", "openai_compatible"):
        return False
    elif name.startswith("openai/"):
        name = name[len("openai/"):]
    elif "/" in name:
        return False
    return name.startswith(OPENAI_NAME_PREFIXES) and not name.startswith(OPEN_WEIGHTS_PREFIXES)


def _with_mark(content: Any) -> Any:
    """``content`` as a block list whose last block carries the cache mark (a string becomes
    one text block: only blocks can carry it)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content, "cache_control": EPHEMERAL}] if content else content
    if isinstance(content, list) and content and isinstance(content[-1], dict):
        return [*content[:-1], {**content[-1], "cache_control": EPHEMERAL}]
    return content


def mark_anthropic(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None):
    """Copies of ``messages`` and ``tools`` with the three cache marks."""
    out = list(messages)
    for i, msg in enumerate(out):
        if msg.get("role") == "system":
            out[i] = {**msg, "content": _with_mark(msg.get("content"))}
            break
    for i in range(len(out) - 1, -1, -1):
        if out[i].get("role") in ("user", "tool"):
            out[i] = {**out[i], "content": _with_mark(out[i].get("content"))}
            break
    marked_tools = None
    if tools:
        marked_tools = list(tools)
        marked_tools[-1] = {**marked_tools[-1], "cache_control": EPHEMERAL}
    return out, marked_tools


def strip_thinking(messages: list[dict[str, Any]], *, in_place: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Messages without thinking blocks; the number of blocks removed.

    ``in_place`` edits the given dicts (the caller's history), for blocks the provider has
    rejected: sending them again would only fail again."""
    out = messages if in_place else list(messages)
    removed = 0
    for i, msg in enumerate(out):
        if msg.get("role") != "assistant":
            continue
        content = msg.get("content")
        blocks = [b for b in content if not (isinstance(b, dict) and b.get("type") in THINKING_BLOCK_TYPES)] \
            if isinstance(content, list) else None
        keys = [k for k in THINKING_KEYS if msg.get(k)]
        dropped = len(msg.get("thinking_blocks") or []) + (len(content) - len(blocks) if blocks is not None else 0)
        if not keys and not dropped:
            continue
        removed += dropped or 1
        clean = msg if in_place else dict(msg)
        for key in THINKING_KEYS:
            clean.pop(key, None)
        if blocks is not None:
            clean["content"] = blocks
        out[i] = clean
    return out, removed


def message_has_thinking(m: dict[str, Any]) -> bool:
    return m.get("role") == "assistant" and bool(m.get("thinking_blocks") or (
        isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") in THINKING_BLOCK_TYPES for b in m["content"])))


def has_thinking(messages: list[dict[str, Any]]) -> bool:
    return any(map(message_has_thinking, messages))


def prepare(model, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, *,
            effort: str | None, session_key: str | None,
            thinking: bool | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None, dict[str, Any]]:
    """(messages, tools, extra request fields) for one request to ``model``. ``thinking``:
    whether any message holds thinking blocks, when the caller knows (worked out here if not)."""
    extra: dict[str, Any] = {}
    anthropic = is_anthropic(model)
    if thinking is None:
        thinking = has_thinking(messages)
    if (not anthropic or effort is None) and thinking:
        # thinking blocks mean something only to Anthropic with thinking on; with it off,
        # Anthropic rejects them in the last assistant message
        messages, _ = strip_thinking(messages)
    if takes_cache_marks(model):
        messages, tools = mark_anthropic(messages, tools)
        if model.route == "hf_router":
            extra["cache_control"] = dict(EPHEMERAL)
    elif is_openai(model) and session_key:
        extra["prompt_cache_key"] = session_key[:64]
    return messages, tools, extra
