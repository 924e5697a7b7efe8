"""``find_hf_api``: the Hub's REST API endpoints, found in its OpenAPI spec.

The spec (``/.well-known/openapi.json`` on the configured Hub, cached for a day) is parsed
into operations, indexed in the docs index's FTS5 API table (``agent.docs_index``) and
searched there; each hit is rendered with its parameters, a curl example and its responses.
The token is sent only to the Hub (``auth="hf"``) and never appears in the curl examples.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field

from agent.docs_index import ApiEndpoint, DocsIndexError
from agent.net import NetError
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.docs import _IndexUser
from agent.tools.knowledge import budgeted, failed, net_of

OPENAPI_TTL_S = 24 * 3600

_METHODS = ("get", "post", "put", "patch", "delete", "head", "options")


class FindHfApiParams(ToolParams):
    query: str | None = Field(None, description="What you want to do, in words, e.g. 'stream space logs', "
                              "'create repository', 'list organization members'.")
    tag: str | None = Field(None, description="An API category (e.g. 'models', 'spaces', 'repos') to browse, or to "
                            "search within together with a query. An unknown tag lists the known ones.")
    max_results: int = Field(8, ge=1, le=20, description="How many endpoints to describe in full (1-20).")


class FindHfApiTool(_IndexUser, Tool):
    name = "find_hf_api"
    description = (
        "Find Hugging Face Hub REST API endpoints (from the Hub's OpenAPI spec) for anything the other tools do "
        "not cover: Space logs and restarts, collections, discussions, webhooks, org members, repo settings... "
        "Each result has the method, path, parameters, a curl example and the responses. Give a query, a tag, "
        "or both."
    )
    Params = FindHfApiParams

    def __init__(self, index_path: Path | None = None) -> None:
        super().__init__(index_path)
        #: (digest, operations, {"components": ...}) of the spec last read
        self._spec: tuple[str, dict[tuple[str, str], dict[str, Any]], dict[str, Any]] | None = None

    async def run(self, params: FindHfApiParams, ctx: ToolContext) -> ToolResult:
        query, tag = (params.query or "").strip(), (params.tag or "").strip()
        if not query and not tag:
            return ToolResult("ERROR: give a query (what you want to do) or a tag (an API category), or both.",
                              success=False)
        net = net_of(ctx)
        hub = net.endpoints.hub
        url = f"{hub}/.well-known/openapi.json"
        try:
            response = await net.get(url, auth="hf", cache_ttl=OPENAPI_TTL_S, max_bytes=30_000_000)
        except NetError as exc:
            return failed(exc, "could not read the Hub's API spec")
        digest = hashlib.sha256(response.content).hexdigest()
        if self._spec is None or self._spec[0] != digest:
            try:
                ops, root = await asyncio.to_thread(_operations, response.content)
            except ValueError as exc:
                return ToolResult(f"ERROR: the Hub's API spec at {url} could not be read ({exc}).", success=False)
            self._spec = (digest, ops, root)
        _, ops, spec_root = self._spec
        tags: dict[str, int] = {}
        for op in ops.values():
            for t in op.get("tags") or ["(untagged)"]:
                tags[t] = tags.get(t, 0) + 1
        known = ", ".join(f"{t} ({n})" for t, n in sorted(tags.items()))
        wanted = None
        if tag:
            wanted = next((t for t in tags if t.lower() == tag.lower()), None)
            if wanted is None:
                return ToolResult(f"ERROR: the Hub API has no tag {tag!r}. Known tags: {known}.", success=False)
        note = ""
        if query:
            try:
                found = await self._search(ctx, digest, ops, query, 200 if wanted else params.max_results)
            except DocsIndexError as exc:
                return ToolResult(f"ERROR: {exc}", success=False)
            keys = [((m, p), s) for m, p, s in found if wanted is None or wanted in (ops[(m, p)].get("tags") or [])]
            keys = keys[:params.max_results]
            if not keys and wanted is None:
                return ToolResult(f"No Hub API endpoint matches {query!r}. Try other words, or browse a tag: {known}.")
            if not keys:
                note = f"No endpoint in '{wanted}' matches {query!r}; here is the whole tag."
        if not query or note:
            keys = [(k, None) for k, op in ops.items() if wanted in (op.get("tags") or [])]
        title = " and ".join(x for x in (f"matching {query!r}" if query and not note else "",
                                           f"tagged '{wanted}'" if wanted else "") if x)
        lines = [f"Hub API endpoints {title}: {len(keys)} found.", *([note] if note else []), ""]
        for n, (key, score) in enumerate(keys, 1):
            if n <= params.max_results:
                lines.append(_render_op(key, ops[key], score, hub, spec_root))
            else:
                lines.append(f"- {key[0]} {key[1]}: {ops[key].get('summary', '')}")
        if len(keys) > params.max_results:
            lines.append(f"\n({len(keys) - params.max_results} more listed in one line each; search with a query "
                         "for their details.)")
        return budgeted("\n".join(lines).rstrip() + "\n", ctx, "find_hf_api")

    async def _search(self, ctx: ToolContext, digest: str, ops: dict[tuple[str, str], dict[str, Any]], query: str,
                      limit: int) -> list[tuple[str, str, float]]:
        """Search the index, indexing this spec first when the file holds another one (or none: a new
        file, or a damaged one just rebuilt empty, even in the middle of this search)."""
        found: list[tuple[str, str, float]] = []
        for _ in range(2):
            if await self._indexed(ctx, "api_version") != digest:
                await self._indexed(ctx, "replace_api", digest, [_endpoint(k, op) for k, op in ops.items()])
            found = await self._indexed(ctx, "search_api", query, limit)
            if found or await self._indexed(ctx, "api_version") == digest:
                break
        return [f for f in found if (f[0], f[1]) in ops]


def _operations(content: bytes) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[str, Any]]:
    """(METHOD, path) -> the operation with its path-level parameters merged and local $refs
    in parameters resolved; and the spec's components (what other $refs point into)."""
    try:
        spec = json.loads(content)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise ValueError("no 'paths' in it")
    ops: dict[tuple[str, str], dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        if not isinstance(item, dict):
            continue
        shared = item.get("parameters") or []
        for method, op in item.items():
            if method not in _METHODS or not isinstance(op, dict):
                continue
            params = [_deref(spec, p) for p in [*shared, *(op.get("parameters") or [])]]
            ops[(method.upper(), path)] = {**op, "parameters": [p for p in params if isinstance(p, dict)]}
    return ops, {"components": spec.get("components") or {}}


def _deref(spec: dict[str, Any], node: Any, depth: int = 0) -> Any:
    if isinstance(node, dict) and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/") and depth < 8:
        target: Any = spec
        for part in node["$ref"][2:].split("/"):
            target = target.get(part) if isinstance(target, dict) else None
        return _deref(spec, target, depth + 1) if target is not None else node
    return node


def _endpoint(key: tuple[str, str], op: dict[str, Any]) -> ApiEndpoint:
    params = " ".join(f"{p.get('name', '')} {p.get('description', '')}" for p in op.get("parameters") or [])
    return ApiEndpoint(key[0], key[1], str(op.get("operationId") or ""), str(op.get("summary") or ""),
                       str(op.get("description") or ""), tuple(op.get("tags") or ()), params)


def _render_op(key: tuple[str, str], op: dict[str, Any], score: float | None, hub: str, root: dict[str, Any]) -> str:
    method, path = key
    out = [f"## {method} {path}" + (f"  (score {score:.2f})" if score is not None else "")]
    if op.get("summary"):
        out.append(str(op["summary"]))
    description = str(op.get("description") or "").strip()
    if description and description != op.get("summary"):
        out.append(description if len(description) <= 400 else description[:400].rsplit(" ", 1)[0] + "…")
    if op.get("tags"):
        out.append("Tags: " + ", ".join(op["tags"]))
    params = op.get("parameters") or []
    if params:
        out.append("Parameters:")
        for p in params:
            schema = _deref(root, p.get("schema") or {})
            kind = schema.get("type") or "string"
            if schema.get("enum"):
                kind += " " + "|".join(map(str, schema["enum"]))
            req = ", required" if p.get("required") else ""
            desc = f": {p['description']}" if p.get("description") else ""
            example = p.get("example", schema.get("example"))
            ex = f" (e.g. `{example}`)" if example is not None else ""
            out.append(f"- {p.get('in', '?')} `{p.get('name', '?')}` ({kind}{req}){desc}{ex}")
    body = _json_body(op, root)
    if body is not None:
        out.append("Request body (JSON): " + json.dumps(body))
    out += ["```bash", _curl(method, path, params, body, hub, root), "```"]
    responses = op.get("responses") or {}
    if responses:
        out.append("Responses: " + "; ".join(_response(code, r, root) for code, r in list(responses.items())[:4]))
    return "\n".join(out) + "\n"


def _json_body(op: dict[str, Any], root: dict[str, Any]) -> dict[str, Any] | None:
    content = (_deref(root, op.get("requestBody") or {}).get("content") or {})
    media = content.get("application/json")
    if not isinstance(media, dict):
        return None
    schema = _deref(root, media.get("schema") or {})
    if isinstance(schema.get("example"), dict):
        return schema["example"]
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    shown = {}
    for name, prop in list(props.items())[:12]:
        prop = _deref(root, prop)
        value = prop.get("example", (prop.get("enum") or [None])[0])
        shown[name] = value if value is not None else f"<{prop.get('type', 'value')}{', required' if name in required else ''}>"
    return shown


def _curl(method: str, path: str, params: list[dict[str, Any]], body: Any, hub: str, root: dict[str, Any]) -> str:
    url = path
    query = []
    for p in params:
        schema = _deref(root, p.get("schema") or {})
        example = p.get("example", schema.get("example", (schema.get("enum") or [None])[0]))
        if p.get("in") == "path":
            url = url.replace("{" + str(p.get("name")) + "}", str(example if example is not None else f"<{p.get('name')}>"))
        elif p.get("in") == "query" and (p.get("required") or example is not None):
            query.append(f"{p.get('name')}={example if example is not None else '<' + str(p.get('name')) + '>'}")
    full = f"{hub}{url}" + (f"?{'&'.join(query)}" if query else "")
    lines = [f'curl -X {method} "{full}"', '  -H "Authorization: Bearer $HF_TOKEN"']
    if body is not None:
        lines += ['  -H "Content-Type: application/json"', f"  -d '{json.dumps(body)}'"]
    return " \\\n".join(lines)


def _response(code: str, response: Any, root: dict[str, Any]) -> str:
    response = _deref(root, response) if isinstance(response, dict) else {}
    text = f"{code} {response.get('description', '')}".strip()
    content = response.get("content") or {}
    for media, spec in content.items():
        schema = (spec or {}).get("schema") or {}
        ref = schema.get("$ref") or (schema.get("items") or {}).get("$ref")
        name = ref.rsplit("/", 1)[-1] if isinstance(ref, str) else schema.get("type", "")
        shape = f"array of {name}" if schema.get("type") == "array" else name
        text += f" ({media}{': ' + shape if shape else ''})"
        break
    return text
