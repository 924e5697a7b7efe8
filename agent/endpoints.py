"""Where the agent's HTTP requests go: the Hub, the dataset viewer, GitHub, arXiv, the web search
and the HF router, from the environment, the config file's ``endpoints``, or the public
defaults. Apart from ``agent.net`` (httpx, caches, error sentences), so that resolving a model
on the way to the first frame does not import them."""

from __future__ import annotations

import os
from dataclasses import dataclass

#: endpoint name -> (environment variable, default)
ENDPOINT_DEFAULTS: dict[str, tuple[str, str]] = {
    "hub": ("HF_ENDPOINT", "https://huggingface.co"),
    "datasets_server": ("MLINTERN_DATASETS_SERVER_URL", "https://datasets-server.huggingface.co"),
    "github_api": ("GITHUB_API_URL", "https://api.github.com"),
    "arxiv": ("MLINTERN_ARXIV_URL", "https://arxiv.org"),
    "ar5iv": ("MLINTERN_AR5IV_URL", "https://ar5iv.labs.arxiv.org"),
    "semantic_scholar": ("MLINTERN_SEMANTIC_SCHOLAR_URL", "https://api.semanticscholar.org"),
    "web_search": ("MLINTERN_WEB_SEARCH_URL", "https://html.duckduckgo.com/html/"),
    # model requests to router models and the router's model catalog (<hf_router>/models)
    "hf_router": ("HF_ROUTER_BASE_URL", "https://router.huggingface.co/v1"),
}


@dataclass(frozen=True)
class Endpoints:
    hub: str
    datasets_server: str
    github_api: str
    arxiv: str
    ar5iv: str
    semantic_scholar: str
    web_search: str
    hf_router: str = "https://router.huggingface.co/v1"

    @classmethod
    def resolve(cls, configured: dict[str, str] | None = None, env: dict[str, str] | None = None) -> Endpoints:
        """Environment over the config file's ``endpoints`` over the public defaults."""
        env = os.environ if env is None else env
        configured = configured or {}
        values = {}
        for name, (var, default) in ENDPOINT_DEFAULTS.items():
            value = (env.get(var) or configured.get(name) or default).strip()
            values[name] = value if name == "web_search" else value.rstrip("/")
        return cls(**values)


def router_base(config: object) -> str:
    """The Hugging Face router's base URL for a config (its ``endpoints``, then the environment)."""
    return Endpoints.resolve(dict(getattr(config, "endpoints", None) or {})).hf_router
