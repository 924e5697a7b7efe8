"""The Hub's documentation pages (``/docs/...``) and its OpenAPI spec, served by ``HubEmulator`` (tests/fakes/hub_server.py).

``ROUTES`` are (method, path regex, handler name) entries the emulator adds to its own; the
handlers are methods of the mixin below and run under the emulator's lock, returning a JSON
payload, ``(status, payload)``, or a ``RawResponse`` (tests/fakes/_loopback.py). Raise the
``Fail(status, message, headers)`` (tests/fakes/_loopback.py) for errors; the emulator's
helpers (``self._user(call)``, ``self._repo(type, id)``, ``self._repos``) are available on ``self``.

What the live Hub does and this copies:

* ``GET /docs/{section}`` redirects (302) to its first page (``/docs/{section}/index``); every HTML page carries
  the docs sidebar: a ``<nav class="... flex-auto ...">`` with group headings and one
  ``<a href="/docs/{section}/{page}">`` per page, in reading order.
* ``GET /docs/{section}/{page}.md`` is the page as Markdown (``text/markdown``); an unknown
  page or section is a 404.
* ``GET /.well-known/openapi.json`` is an OpenAPI 3.1 spec (tags, paths, parameters with
  ``$ref``s to ``components``, request bodies, responses).
* The docs are public: no token is fine, a token the Hub does not know is a 401.

The corpus is ``DEFAULT_DOCS`` (a few hand-written pages whose words tests rank on, plus
template pages) unless a test or the bench replaces it with ``hub.set_docs(...)`` or
``hub.generate_docs(...)``. ``hub.fail_docs(pattern, status, ...)`` makes matching docs
requests fail (401/404/429 with Retry-After ...) the next ``times`` times.
"""

from __future__ import annotations

import html
import random
import re
from dataclasses import dataclass

from tests.fakes._loopback import Fail, RawResponse

ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/\.well-known/openapi\.json", "_openapi_spec"),
    ("GET", r"/docs/(?P<section>[^/]+)/?", "_docs_root"),
    ("GET", r"/docs/(?P<section>[^/]+)/(?P<page>.+)", "_docs_page"),
]


@dataclass(frozen=True)
class DocPage:
    group: str  # the sidebar heading the page sits under
    slug: str  # the path under /docs/{section}/
    title: str  # the sidebar link text
    markdown: str


# ---- the hand-written pages tests rank on -------------------------------------------------

_TRL_PAGES = [
    DocPage("Get started", "index", "TRL - Transformer Reinforcement Learning",
            "# TRL - Transformer Reinforcement Learning\n\nTRL is a full stack library to post-train "
            "transformer language models with supervised fine-tuning, preference optimisation and "
            "reinforcement learning.\n"),
    DocPage("Get started", "installation", "Installation",
            "# Installation\n\nInstall the library with pip:\n\n```bash\npip install trl\n```\n"),
    DocPage("Get started", "quickstart", "Quickstart",
            "# Quickstart\n\nYou can train a small chat model in a few lines. Load a dataset, pick a "
            "model, call the trainer.\n\n## Next steps\n\nRead the guides.\n"),
    DocPage("Trainers", "sft_trainer", "SFT Trainer",
            "# SFT Trainer\n\nSupervised fine-tuning with `SFTTrainer` and `SFTConfig`.\n\n"
            "## Packing\n\nSet `packing=True` in `SFTConfig` to pack short examples into one sequence.\n\n"
            "```python\nfrom trl import SFTConfig, SFTTrainer\nconfig = SFTConfig(output_dir=\"out\", "
            "packing=True, max_length=2048)\n```\n\n## Chat templates\n\nConversational datasets are "
            "formatted with the tokenizer's chat template.\n"),
    DocPage("Trainers", "dpo_trainer", "DPO Trainer",
            "# DPO Trainer\n\nDirect Preference Optimization (DPO) trains on pairs of chosen and "
            "rejected answers. `DPOConfig` holds the DPO hyperparameters such as `beta`.\n\n"
            "## Expected dataset type\n\nA DPO dataset has `prompt`, `chosen` and `rejected` columns.\n"),
    DocPage("Trainers", "grpo_trainer", "GRPO Trainer",
            "# GRPO Trainer\n\nGroup Relative Policy Optimization samples several completions per "
            "prompt and scores them with reward functions. Configure it with `GRPOConfig`.\n"),
    DocPage("Guides", "logging", "Logging",
            "# Logging\n\nEvery trainer reports its metrics to Trackio, Weights & Biases or TensorBoard "
            "through `report_to`. The reward margins that the DPO trainer logs are described on its "
            "page.\n"),
    DocPage("Guides", "reducing_memory_usage", "Reducing memory usage",
            "# Reducing memory usage\n\nGradient checkpointing, smaller batches and PEFT adapters cut "
            "memory. Truncation with `max_length` keeps sequences short.\n"),
]


# ---- template pages ------------------------------------------------------------------------

_TOPICS = [
    "tokenizer", "pipeline", "checkpoint", "quantization", "adapter", "scheduler", "optimizer",
    "gradient", "embedding", "attention", "inference", "streaming", "sharding", "dataloader",
    "augmentation", "evaluation", "metric", "callback", "export", "compilation", "kernel", "cache",
    "collator", "sampler", "precision", "offloading", "benchmark", "deployment", "endpoint",
    "webhook", "repository", "revision", "branch", "upload", "download", "storage", "parquet",
    "audio", "vision", "segmentation", "detection", "translation", "summarization", "diffusion",
    "scheduler", "lora", "prompt", "generation", "decoding", "beam", "sampling", "throughput",
    "latency", "accelerator", "cluster", "multinode", "spaces", "hardware", "container", "docker",
]
_VERBS = ["configure", "load", "save", "share", "evaluate", "optimize", "deploy", "debug", "monitor",
          "scale", "serialize", "convert", "profile", "stream", "cache", "inspect"]
_FILLER = (
    "This guide explains how the {a} works together with the {b}. You can {v} it from the "
    "command line or from Python, and the defaults are chosen for a single GPU. When the {a} "
    "is large, prefer lazy loading and keep an eye on memory. The {b} reads its settings from "
    "the configuration object, so most options can be changed without touching the code. "
    "Results are reproducible when the seed is fixed and the {c} is deterministic."
)
_CODE = "```python\nfrom library import {A}\n\n{a} = {A}.from_pretrained(\"org/model\")\n{a}.{v}(\"output\")\n```"


def _title_case(words: list[str]) -> str:
    return " ".join(w.capitalize() for w in words)


def template_pages(section: str, count: int, *, seed: int = 0, paragraphs: int = 6) -> list[DocPage]:
    """``count`` generated pages for ``section``: a title from the topic words, a few headings,
    filler paragraphs and a code block each (about 1 KB per paragraph)."""
    rng = random.Random(f"{section}:{seed}")
    groups = ["Get started", "Tutorials", "How-to guides", "Conceptual guides", "API reference"]
    pages: list[DocPage] = []
    seen: set[str] = set()
    for n in range(count):
        verb = rng.choice(_VERBS)
        a, b, c = rng.sample(_TOPICS, 3)
        slug = f"{verb}_{a}_{b}"
        if slug in seen:
            slug = f"{slug}_{n}"
        seen.add(slug)
        title = _title_case([verb, "the", a, "and", b])
        parts = [f"# {title}\n"]
        for p in range(paragraphs):
            if p % 2 == 1:
                parts.append(f"## {_title_case([rng.choice(_VERBS), rng.choice(_TOPICS)])}\n")
            x, y, z = rng.sample(_TOPICS, 3)
            parts.append(_FILLER.format(a=x, b=y, c=z, v=rng.choice(_VERBS)) + "\n")
            if p == 2:
                parts.append(_CODE.format(A=a.capitalize(), a=a, v=verb) + "\n")
        group = groups[min(len(groups) - 1, n * len(groups) // max(1, count))]
        pages.append(DocPage(group, slug, title, "<!--Copyright 2025 The HuggingFace Team.-->\n\n" + "\n".join(parts)))
    return pages


def default_docs() -> dict[str, list[DocPage]]:
    return {
        "trl": list(_TRL_PAGES),
        "transformers": template_pages("transformers", 12, paragraphs=3),
        "hub": template_pages("hub", 8, paragraphs=3),
    }


# ---- the OpenAPI spec ----------------------------------------------------------------------


def openapi_spec(server: str) -> dict:
    repo_id = {"$ref": "#/components/parameters/RepoId"}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Hub API Endpoints", "version": "0.0.1"},
        "servers": [{"url": server}],
        "tags": [
            {"name": "models", "description": "Model repositories"},
            {"name": "datasets", "description": "Dataset repositories"},
            {"name": "spaces", "description": "Spaces"},
            {"name": "repos", "description": "Any repository"},
            {"name": "collections", "description": "Collections"},
            {"name": "auth", "description": "Who am I"},
        ],
        "components": {
            "parameters": {
                "RepoId": {"name": "repo_id", "in": "path", "required": True,
                           "description": "The repository id, e.g. `org/name`.",
                           "schema": {"type": "string", "example": "openai-community/gpt2"}},
            },
            "schemas": {
                "ModelInfo": {"type": "object", "properties": {"id": {"type": "string"},
                                                               "downloads": {"type": "integer"}}},
            },
        },
        "paths": {
            "/api/models": {"get": {
                "operationId": "listModels", "tags": ["models"], "summary": "List models",
                "description": "Search and filter the models on the Hub, newest or most downloaded first.",
                "parameters": [
                    {"name": "search", "in": "query", "description": "Words the model id contains.",
                     "schema": {"type": "string", "example": "llama"}},
                    {"name": "limit", "in": "query", "description": "How many models to return.",
                     "schema": {"type": "integer"}},
                ],
                "responses": {"200": {"description": "The models", "content": {"application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/ModelInfo"}}}}}},
            }},
            "/api/models/{repo_id}": {"get": {
                "operationId": "getModel", "tags": ["models"], "summary": "Get model info",
                "description": "Metadata of one model: files, tags, card data, downloads.",
                "parameters": [repo_id],
                "responses": {"200": {"description": "The model", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/ModelInfo"}}}},
                    "404": {"description": "No such model"}},
            }},
            "/api/datasets": {"get": {
                "operationId": "listDatasets", "tags": ["datasets"], "summary": "List datasets",
                "description": "Search and filter the datasets on the Hub.",
                "parameters": [{"name": "search", "in": "query", "schema": {"type": "string"}}],
                "responses": {"200": {"description": "The datasets"}},
            }},
            "/api/spaces/{repo_id}/logs/{kind}": {"get": {
                "operationId": "streamSpaceLogs", "tags": ["spaces"], "summary": "Stream Space logs",
                "description": "Server-sent events with the build or run logs of a Space.",
                "parameters": [repo_id, {"name": "kind", "in": "path", "required": True,
                                         "schema": {"type": "string", "enum": ["build", "run"]}}],
                "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {}}}},
            }},
            "/api/spaces/{repo_id}/restart": {"post": {
                "operationId": "restartSpace", "tags": ["spaces"], "summary": "Restart a Space",
                "description": "Restart the Space, optionally rebuilding it from scratch.",
                "parameters": [repo_id, {"name": "factory", "in": "query", "schema": {"type": "boolean"}}],
                "responses": {"200": {"description": "Restarted"}},
            }},
            "/api/repos/create": {"post": {
                "operationId": "createRepo", "tags": ["repos"], "summary": "Create a repository",
                "description": "Create a model, dataset or Space repository.",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "type": {"type": "string", "enum": ["model", "dataset", "space"]},
                                   "private": {"type": "boolean"}}}}}},
                "responses": {"200": {"description": "The new repository's URL"}, "409": {"description": "Already exists"}},
            }},
            "/api/collections": {"post": {
                "operationId": "createCollection", "tags": ["collections"], "summary": "Create a collection",
                "description": "Group models, datasets, Spaces and papers into a collection.",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                    "title": {"type": "string"}, "namespace": {"type": "string"}}}}}},
                "responses": {"200": {"description": "The collection"}},
            }},
            "/api/whoami-v2": {"get": {
                "operationId": "whoami", "tags": ["auth"], "summary": "Get the user behind a token",
                "description": "The account, its organizations and the token's role.",
                "responses": {"200": {"description": "The user"}, "401": {"description": "Bad token"}},
            }},
        },
    }


# ---- routes ---------------------------------------------------------------------------------


class DocsRoutes:
    def _init_docs(self) -> None:
        """Per-emulator state (called from ``HubEmulator.__init__``)."""
        self._docs: dict[str, list[DocPage]] = default_docs()
        self._docs_extra_links: dict[str, list[tuple[str, str]]] = {}
        self._docs_failures: list[list] = []  # [pattern, status, message, headers, times left]
        self._openapi: dict | None = None

    # ---- scripting (test thread) ----

    def set_docs(self, docs: dict[str, list[DocPage]]) -> None:
        """Replace the whole docs corpus: section -> pages in sidebar order."""
        with self._lock:
            self._docs = {name: list(pages) for name, pages in docs.items()}

    def generate_docs(self, sections: dict[str, int], *, paragraphs: int = 6, keep: bool = False) -> None:
        """Template pages: ``{"transformers": 300, ...}`` (``keep`` adds them to the current ones)."""
        with self._lock:
            docs = dict(self._docs) if keep else {}
            for name, count in sections.items():
                docs[name] = docs.get(name, []) + template_pages(name, count, paragraphs=paragraphs)
            self._docs = docs

    def add_docs_link(self, section: str, url: str, title: str) -> None:
        """An extra sidebar link (e.g. to another host, which a client must not follow)."""
        with self._lock:
            self._docs_extra_links.setdefault(section, []).append((url, title))

    def fail_docs(self, pattern: str, status: int, message: str = "", headers: dict[str, str] | None = None,
                  times: int = 1) -> None:
        """The next ``times`` docs/OpenAPI requests whose path matches ``pattern`` (re.search) answer ``status``."""
        with self._lock:
            self._docs_failures.append([re.compile(pattern), status, message or f"error {status}", headers or {}, times])

    def set_openapi(self, spec: dict) -> None:
        with self._lock:
            self._openapi = spec

    # ---- handlers (under self._lock) ----

    def _docs_check(self, call) -> None:
        for failure in self._docs_failures:
            pattern, status, message, headers, left = failure
            if left > 0 and pattern.search(call.path):
                failure[4] -= 1
                raise Fail(status, message, headers)
        if call.token is not None and call.token not in self._users:
            raise Fail(401, "Invalid credentials in Authorization header")

    def _docs_root(self, call) -> RawResponse:
        self._docs_check(call)
        section = call.params["section"]
        if not self._docs.get(section):
            raise Fail(404, f"Documentation for '{section}' not found")
        first = self._docs[section][0].slug  # "index" in every real section
        return RawResponse(302, b"", headers={"Location": f"/docs/{section}/{first}"})

    def _docs_page(self, call) -> RawResponse:
        self._docs_check(call)
        section, slug = call.params["section"], call.params["page"]
        pages = self._docs.get(section)
        if pages is None:
            raise Fail(404, f"Documentation for '{section}' not found")
        markdown = slug.endswith(".md")
        slug = slug[:-3] if markdown else slug
        page = next((p for p in pages if p.slug == slug), None)
        if page is None:
            raise Fail(404, f"Page {section}/{slug} not found")
        if markdown:
            return RawResponse(200, page.markdown.encode(), "text/markdown; charset=utf-8")
        return RawResponse(200, self._docs_html(section, page).encode(), "text/html; charset=utf-8")

    def _docs_html(self, section: str, current: DocPage) -> str:
        nav: list[str] = []
        group = None
        for page in self._docs[section]:
            if page.group != group:
                if group is not None:
                    nav.append("</div></div>")
                group = page.group
                nav.append('<div class="group flex flex-col"><h3 class="flex items-center pl-2 text-[0.8rem] '
                           f'font-semibold text-gray-700"><span>{html.escape(group)}</span></h3>'
                           '<div class="flex flex-col">')
            active = " bg-gradient-to-r from-blue-50" if page is current else ""
            nav.append(f'<a class="transform py-1 pr-2 pl-4 text-gray-500 hover:text-black{active}" '
                       f'href="/docs/{section}/{page.slug}">{html.escape(page.title)}</a>')
        if group is not None:
            nav.append("</div></div>")
        for url, title in self._docs_extra_links.get(section, []):
            nav.append(f'<a class="transform py-1 pr-2 pl-4" href="{html.escape(url)}">{html.escape(title)}</a>')
        body = html.escape(current.markdown)
        return (
            "<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(current.title)}</title></head><body>"
            '<header class="border-b"><a href="/">Hugging Face</a> <a href="/models">Models</a> '
            '<a href="/docs">Docs</a></header>'
            '<div class="flex min-h-screen"><div class="sticky top-0 flex h-screen flex-col">'
            '<div class="px-4"><select><option>main</option><option>v1.0</option></select></div>'
            '<nav class="top-0 left-0 right-0 z-40 flex-auto overflow-y-auto px-2 pb-20 pt-6 text-[0.95rem]">'
            + "".join(nav)
            + "</nav></div>"
            f'<div class="prose"><pre>{body}</pre></div></div>'
            '<footer><a href="/docs/other/index">Other docs</a></footer></body></html>'
        )

    def _openapi_spec(self, call) -> dict:
        self._docs_check(call)
        return self._openapi if self._openapi is not None else openapi_spec(self.endpoint)
