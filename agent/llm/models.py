"""Turning what the user typed after ``-m`` into a concrete litellm request target.

Resolution never imports litellm (start-up must not wait for it), so the set of litellm
provider prefixes we route directly is kept here.

- ``demo`` - the built-in scripted model (no key, $0, clearly labelled).
- ``ollama/x``, ``vllm/x``, ``lm_studio/x``, ``llamacpp/x`` - a local OpenAI-compatible
  server at ``<PROVIDER>_BASE_URL`` (then ``LOCAL_LLM_BASE_URL``, then the usual port).
- ``openai/x`` - OpenAI, or any compatible server named by ``OPENAI_BASE_URL`` /
  ``OPENAI_API_BASE``.
- ``anthropic/x``, ``gemini/x``, bare ``gpt-5`` ... - litellm ids with their usual env keys.
- anything else shaped ``org/model[:provider]`` (or prefixed ``huggingface/``) - the Hugging
  Face router's OpenAI-compatible endpoint, authenticated with the HF token.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from typing import Mapping

DEMO_ALIASES = frozenset({"demo", "mlintern_demo/ml-task"})
DEMO_LITELLM_MODEL = "mlintern_demo/ml-task"

HF_ROUTER_BASE_URL = "https://router.huggingface.co/v1"

# litellm providers we pass through untouched, with the env var that holds their key
# (None: credentials come from elsewhere, e.g. cloud SDK config, so we do not pre-check).
LITELLM_PROVIDER_KEYS: dict[str, str | None] = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "cerebras": "CEREBRAS_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "bedrock": None,
    "vertex_ai": None,
    "sagemaker": None,
}

# bare model names litellm knows without a prefix, by the provider whose key they need
BARE_MODEL_PROVIDERS: tuple[tuple[str, str], ...] = (
    ("claude", "anthropic"),
    ("gpt-", "openai"),
    ("o1", "openai"),
    ("o3", "openai"),
    ("o4", "openai"),
    ("gemini", "gemini"),
)

LOCAL_PROVIDERS: dict[str, tuple[tuple[str, ...], str, str]] = {
    # prefix: (base-url env vars, default base url, api-key env var)
    "ollama": (("OLLAMA_BASE_URL",), "http://localhost:11434", "OLLAMA_API_KEY"),
    "vllm": (("VLLM_BASE_URL",), "http://localhost:8000", "VLLM_API_KEY"),
    "lm_studio": (("LMSTUDIO_BASE_URL", "LM_STUDIO_BASE_URL"), "http://127.0.0.1:1234", "LMSTUDIO_API_KEY"),
    "llamacpp": (("LLAMACPP_BASE_URL",), "http://localhost:8080", "LLAMACPP_API_KEY"),
}

HF_TOKEN_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


class ModelIdError(ValueError):
    """The model id cannot be used; the message says why."""


@dataclass(frozen=True)
class ResolvedModel:
    id: str  # what the user chose, as shown in the UI
    litellm_model: str
    route: str  # "demo" | "local" | "openai_compatible" | "litellm" | "hf_router"
    label: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    key_env: str | None = None  # env var that should hold the key (for the friendly error)
    pricing_key: str = ""  # name looked up in price/window tables

    @property
    def is_demo(self) -> bool:
        return self.route == "demo"

    @property
    def is_local(self) -> bool:
        return self.route == "local"

    def missing_credentials(self) -> str | None:
        """A sentence telling the user which key to set, or None when we have one."""
        if self.route in ("demo", "local", "openai_compatible"):
            return None
        if self.route == "hf_router" and not self.api_key:
            return (
                f"No Hugging Face token for {self.id}: set HF_TOKEN (or run `hf auth login`), "
                "or pick another model with -m / /model."
            )
        if self.route == "litellm" and self.key_env and not self.api_key:
            return f"No API key for {self.id}: set {self.key_env}, or pick another model with -m / /model."
        return None


def vendor_api(base: str | None) -> bool:
    """OpenAI's or Azure's own API (not a server that copies its wire format)."""
    host = (base or "").split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return host == "api.openai.com" or host.endswith(".openai.azure.com")


def uses_direct_stream(model: ResolvedModel, transport: str = "auto") -> bool:
    """Whether requests to ``model`` go over the project's own OpenAI-wire transport
    (``llm.transport`` in the config: "auto", "litellm" or "direct")."""
    if transport == "litellm":
        return False
    if transport == "direct" or model.route in ("local", "hf_router"):
        return model.route in ("openai_compatible", "local", "hf_router")
    # auto: a server at OPENAI_BASE_URL speaks the wire format as written; OpenAI's own API
    # (and Azure's) gets litellm, which knows their model-specific parameters
    return model.route == "openai_compatible" and not vendor_api(model.api_base)


def needs_litellm(model: ResolvedModel, transport: str = "auto") -> bool:
    """Whether requests to ``model`` go through litellm; the others (the demo model, servers
    that speak the OpenAI wire format) never import it. Decided without building a client:
    the app knows before its first frame whether the model is ready at once."""
    return not model.is_demo and not uses_direct_stream(model, transport)


def _ensure_v1(url: str) -> str:
    url = url.rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


def hf_token(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    for var in HF_TOKEN_VARS:
        if env.get(var):
            return env[var]
    if env is os.environ:
        return _stored_hf_token(env)
    return None


def _stored_hf_token(env: Mapping[str, str]) -> str | None:
    """The token `hf auth login` saved (where huggingface_hub keeps it: ``HF_TOKEN_PATH``, else
    ``HF_HOME/token``, else ``$XDG_CACHE_HOME/huggingface/token``), read without importing
    huggingface_hub (a tenth of a second and ~10 MB on the way to the first prompt)."""
    path = env.get("HF_TOKEN_PATH")
    if not path:
        home = env.get("HF_HOME") or os.path.join(
            env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "huggingface")
        path = os.path.join(os.path.expanduser(home), "token")
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            token = handle.read(4096).strip()
    except (OSError, ValueError):
        return None
    return token or None


def resolve_model(model_id: str, env: Mapping[str, str] | None = None, *,
                  router_base: str | None = None) -> ResolvedModel:
    """``router_base``: the configured router endpoint (``endpoints.hf_router``); the
    environment's ``HF_ROUTER_BASE_URL`` wins over it, as for every endpoint."""
    env = os.environ if env is None else env
    mid = model_id.strip()
    if not mid or any(ch.isspace() for ch in mid):
        raise ModelIdError(f"invalid model id {model_id!r}: it must be non-empty and contain no spaces")
    if mid in DEMO_ALIASES:
        return ResolvedModel(
            id="demo", litellm_model=DEMO_LITELLM_MODEL, route="demo",
            label="demo (scripted, no API key)", pricing_key="demo",
        )

    prefix, _, rest = mid.partition("/")
    if prefix in LOCAL_PROVIDERS and rest:
        url_vars, default_url, key_var = LOCAL_PROVIDERS[prefix]
        base = next((env[v] for v in url_vars if env.get(v)), None) or env.get("LOCAL_LLM_BASE_URL") or default_url
        key = env.get(key_var) or env.get("LOCAL_LLM_API_KEY") or "sk-local-no-key-required"
        return ResolvedModel(
            id=mid, litellm_model=f"openai/{rest}", route="local", label=mid,
            api_base=_ensure_v1(base), api_key=key, pricing_key=rest,
        )

    if prefix == "openai" and rest:
        base = env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")
        if base:
            return ResolvedModel(
                id=mid, litellm_model=mid, route="openai_compatible", label=mid,
                api_base=base.rstrip("/"), api_key=env.get("OPENAI_API_KEY") or "sk-no-key-required",
                key_env="OPENAI_API_KEY", pricing_key=mid,
            )

    if prefix == "huggingface" and rest:
        # the prefix stays in the id where it is needed to come back here: "openai/gpt-oss-120b"
        # alone is OpenAI's own API, "huggingface/openai/gpt-oss-120b" the router's
        routed = _router(rest, env, router_base)
        try:
            plain = resolve_model(rest, env, router_base=router_base).route == "hf_router"
        except ModelIdError:
            plain = False
        return routed if plain else replace(routed, id=mid, label=mid)

    # "org/model:provider" is the HF router's syntax - except where a colon is part of the
    # provider's own ids (bedrock "…-v1:0", sagemaker endpoints)
    if prefix in LITELLM_PROVIDER_KEYS and rest and (":" not in rest or prefix in ("bedrock", "sagemaker")):
        key_env = LITELLM_PROVIDER_KEYS[prefix]
        return ResolvedModel(
            id=mid, litellm_model=mid, route="litellm", label=mid,
            api_key=env.get(key_env) if key_env else None, key_env=key_env, pricing_key=mid,
        )

    if "/" not in mid:
        for start, provider in BARE_MODEL_PROVIDERS:
            if mid.startswith(start):
                key_env = LITELLM_PROVIDER_KEYS[provider]
                return ResolvedModel(
                    id=mid, litellm_model=mid, route="litellm", label=mid,
                    api_key=env.get(key_env) if key_env else None, key_env=key_env, pricing_key=mid,
                )
        raise ModelIdError(
            f"unknown model {mid!r}: use a litellm id such as anthropic/claude-sonnet-4-5, "
            "a Hugging Face router id such as moonshotai/Kimi-K2-Instruct, a local one such as "
            "ollama/qwen3, or demo"
        )
    return _router(mid, env, router_base)


def _router(mid: str, env: Mapping[str, str], router_base: str | None) -> ResolvedModel:
    org, _, name = mid.partition("/")
    if not org or not name:
        raise ModelIdError(f"invalid Hugging Face router id {mid!r}: expected org/model[:provider]")
    base = (env.get("HF_ROUTER_BASE_URL") or router_base or HF_ROUTER_BASE_URL).rstrip("/")
    return ResolvedModel(
        id=mid, litellm_model=f"openai/{mid}", route="hf_router", label=mid,
        api_base=base, api_key=hf_token(env), key_env="HF_TOKEN", pricing_key=mid.split(":")[0],
    )


def default_model_id(configured: str | None, env: Mapping[str, str] | None = None) -> str:
    """The model to start on: the configured one, else one the user has a key for, else demo."""
    env = os.environ if env is None else env
    if configured:
        return configured
    if env.get("MLINTERN_MODEL"):
        return env["MLINTERN_MODEL"]
    if env.get("ANTHROPIC_API_KEY"):
        return "anthropic/claude-sonnet-4-5"
    if env.get("OPENAI_API_KEY") and not (env.get("OPENAI_BASE_URL") or env.get("OPENAI_API_BASE")):
        return "openai/gpt-5"
    if any(env.get(v) for v in HF_TOKEN_VARS):
        return "moonshotai/Kimi-K2-Instruct"
    return "demo"
