"""``hf_inspect_dataset``: what a Hub dataset looks like before any code touches it.

Everything comes from the dataset viewer API (datasets-server): validity, configs and
splits with row counts and sizes, the schema, a few sample rows and the parquet files. The
first four calls (``/is-valid``, ``/splits``, ``/parquet``, ``/size``) go out together, then
``/info`` and ``/first-rows`` for the chosen config and split. One failing section is
reported in its place; only a dataset the viewer cannot see at all (missing, gated,
private) fails the call. The HF token goes to the dataset viewer only (``Net`` decides).
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from pydantic import Field

from agent.net import Net, NetError
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.knowledge import budgeted, failed, net_of
from agent.tools.output import human_size

#: a Hub repo id: namespace/name, letters, digits, '-', '_', '.'
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[A-Za-z0-9][\w.-]{0,95}$")
_HUB_URL = re.compile(r"^https?://[^/]+/datasets/([^/?#]+/[^/?#]+)")
CELL_CHARS = 150
CACHE_TTL_S = 600.0
MAX_PARQUET_LINES = 12


class InspectDatasetParams(ToolParams):
    dataset: str = Field(description="Hub dataset id, 'org/name' (e.g. 'HuggingFaceH4/ultrachat_200k').")
    config: str | None = Field(None, description="Config (subset) to show schema and rows of; default: the first.")
    split: str | None = Field(None, description="Split to sample; default: 'train' if present, else the first.")
    sample_rows: int = Field(3, ge=0, le=10, description="Sample rows to show (0-10, default 3).")


def normalise_dataset_id(raw: str) -> str | None:
    """'org/name' from an id or a Hub dataset URL; None when it cannot be one."""
    text = raw.strip()
    url = _HUB_URL.match(text)
    if url:
        text = url.group(1)
    text = text.removeprefix("datasets/").strip("/")
    if not _REPO_ID.match(text) or "--" in text or ".." in text or text.endswith((".", "-")):
        return None
    return text


def _count(n: Any) -> str:
    return f"{n:,}" if isinstance(n, int) else "?"


def feature_type(t: Any) -> str:
    """A datasets feature type (as the viewer serialises it) in one short line."""
    if isinstance(t, list):  # legacy list-of-feature notation
        return f"list<{feature_type(t[0]) if t else '?'}>"
    if not isinstance(t, dict):
        return str(t)
    kind = t.get("_type")
    if kind == "Value":
        return str(t.get("dtype", "?"))
    if kind == "ClassLabel":
        names = t.get("names") or []
        shown = ", ".join(map(str, names[:8])) + (", ..." if len(names) > 8 else "")
        return f"class_label[{shown}]"
    if kind in ("Sequence", "List", "LargeList"):
        inner = t.get("feature")
        length = t.get("length", -1)
        size = f", length={length}" if isinstance(length, int) and length >= 0 else ""
        return f"list<{feature_type(inner)}{size}>"
    if kind in ("Translation", "TranslationVariableLanguages"):
        return f"{kind.lower()}[{', '.join(t.get('languages') or [])}]"
    if kind:
        dtype = t.get("dtype")
        return f"{kind}<{dtype}>" if dtype else kind
    return "{" + ", ".join(f"{k}: {feature_type(v)}" for k, v in t.items()) + "}"


def _cut(text: str, limit: int = CELL_CHARS) -> str:
    text = text.replace("\r", "")
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()}… ({len(text):,} chars)"


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # multimodal parts: [{"type": "text", "text": ...}, {"type": "image"}]
        parts = []
        for part in content:
            if isinstance(part, dict):
                parts.append(str(part.get("text") or f"[{part.get('type', 'part')}]"))
            else:
                parts.append(str(part))
        return " ".join(parts)
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def is_chat(value: Any) -> bool:
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "role" in m and ("content" in m or "tool_calls" in m) for m in value))


def summarise_chat(messages: list[dict[str, Any]], per_message: int = 100, shown: int = 4) -> str:
    roles = ", ".join(str(m.get("role")) for m in messages)
    lines = [f"{len(messages)} messages: {roles}"]
    for message in messages[:shown]:
        first = _message_text(message.get("content")).strip().splitlines()
        text = first[0] if first else ("[tool calls]" if message.get("tool_calls") else "")
        lines.append(f"    {message.get('role')}: {_cut(text, per_message)}")
    if len(messages) > shown:
        lines.append(f"    ... {len(messages) - shown} more")
    return "\n".join(lines)


def render_cell(value: Any) -> str:
    if is_chat(value):
        return summarise_chat(value)
    if isinstance(value, dict) and "src" in value:  # Image: {"src", "height", "width"}
        size = f" {value.get('width')}x{value.get('height')}" if value.get("width") else ""
        return f"[image{size}] {value['src']}"
    if isinstance(value, list) and value and isinstance(value[0], dict) and "src" in value[0]:  # Audio
        return f"[{value[0].get('type') or 'media'}] {value[0]['src']}"
    if isinstance(value, str):
        return _cut(value)
    return _cut(json.dumps(value, ensure_ascii=False))


class HfInspectDatasetTool(Tool):
    name = "hf_inspect_dataset"
    description = (
        "Inspect a Hugging Face Hub dataset through the dataset viewer before using it: "
        "whether the viewer works, configs and splits with row counts and sizes, the schema "
        "(column types), sample rows (chat 'messages' columns summarised) and the parquet "
        "files. Use it to check column names and formats before writing training code."
    )
    Params = InspectDatasetParams

    async def run(self, params: InspectDatasetParams, ctx: ToolContext) -> ToolResult:
        dataset = normalise_dataset_id(params.dataset)
        if dataset is None:
            return ToolResult(
                f"ERROR: {params.dataset!r} is not a Hub dataset id; give it as 'org/name' "
                "(e.g. 'HuggingFaceH4/ultrachat_200k').", success=False)
        net = net_of(ctx)
        base = net.endpoints.datasets_server

        async def call(route: str, **query: Any) -> Any:
            r = await net.get(f"{base}/{route}", params={"dataset": dataset, **query}, auth="hf",
                              cache_ttl=CACHE_TTL_S)
            return r.json()

        first = await asyncio.gather(call("is-valid"), call("splits"), call("parquet"), call("size"),
                                     return_exceptions=True)
        for outcome in first:
            if isinstance(outcome, BaseException) and not isinstance(outcome, NetError):
                raise outcome
        valid, splits, parquet, size = first
        fatal = _fatal(first[:2])
        if fatal is not None:
            return self._refusal(fatal, dataset, net)

        pairs = [(s.get("config"), s.get("split")) for s in (splits.get("splits") or [])] \
            if isinstance(splits, dict) else []
        configs = list(dict.fromkeys(c for c, _ in pairs))
        if isinstance(splits, dict) and not pairs:
            return ToolResult(f"ERROR: the dataset viewer lists no splits for {dataset} "
                              f"({_splits_problem(splits)}).", success=False)
        config, split = params.config, params.split
        if pairs:
            if config is None:
                config = configs[0]
            elif config not in configs:
                return ToolResult(f"ERROR: {dataset} has no config {config!r}; its configs are: "
                                  f"{', '.join(configs)}.", success=False)
            in_config = [s for c, s in pairs if c == config]
            if split is None:
                split = "train" if "train" in in_config else in_config[0]
            elif split not in in_config:
                return ToolResult(f"ERROR: config {config!r} of {dataset} has no split {split!r}; its splits "
                                  f"are: {', '.join(in_config)}.", success=False)

        info: Any = None
        rows: Any = None
        if config is not None and split is not None:
            info, rows = await asyncio.gather(
                call("info", config=config),
                call("first-rows", config=config, split=split),  # also the schema, so even with 0 rows
                return_exceptions=True)
            for outcome in (info, rows):
                if isinstance(outcome, BaseException) and not isinstance(outcome, NetError):
                    raise outcome

        hub = net.endpoints.hub.rstrip("/")
        parts = [f"# Dataset {dataset}", f"{hub}/datasets/{dataset}", ""]
        parts += _validity(valid)
        parts += _description(info)
        parts += _splits_table(pairs, size, info, splits)
        parts += _schema(info, rows, config)
        parts += _samples(rows, params.sample_rows, config, split)
        parts += _parquet(parquet)
        if config is not None and split is not None:
            cfg = "" if config == "default" else f", {json.dumps(config)}"
            parts += [f"Load: `load_dataset({json.dumps(dataset)}{cfg}, split={json.dumps(split)})`"]
        return budgeted("\n".join(parts).rstrip() + "\n", ctx, "hf_inspect_dataset")

    def _refusal(self, exc: NetError, dataset: str, net: Net) -> ToolResult:
        hub = net.endpoints.hub.rstrip("/")
        page = f"{hub}/datasets/{dataset}"
        token = bool(net.token_for(net.endpoints.datasets_server, "hf"))
        if exc.status == 401 or exc.kind in ("gated", "auth"):
            if token:
                text = (f"The dataset viewer refused {dataset} with this HF token: it is gated or private. "
                        f"If it is gated, accept the terms at {page} with the token's account and try again.")
            else:
                text = (f"The dataset viewer cannot open {dataset} without a token: it is gated, private, or "
                        f"does not exist. Check the id; if it is gated, set HF_TOKEN and accept the terms at {page}.")
            return ToolResult(f"ERROR: {text}", success=False)
        if exc.status == 404:
            detail = _detail_of(exc)
            who = " with the current HF token" if token else ""
            text = (f"The dataset viewer does not know {dataset}{who}: check the spelling (search the Hub if "
                    f"unsure); if it is gated or private, accept the terms at {page} with the token's account.")
            if detail and "credentials" not in detail and "authentication" not in detail:
                text += f" Viewer said: {detail}"
            return ToolResult(f"ERROR: {text}", success=False)
        return failed(exc, f"hf_inspect_dataset {dataset}")


def _detail_of(exc: NetError) -> str:
    m = re.search(r"\((.+)\)\. Check the id", exc.message)
    return m.group(1) if m else ""


def _fatal(outcomes: list[Any]) -> NetError | None:
    """The error that means the viewer cannot see the dataset at all (or cannot be reached)."""
    for outcome in outcomes:
        if isinstance(outcome, NetError) and (
            outcome.status in (401, 403, 404) or outcome.kind in ("offline", "refused", "timeout", "rate_limited",
                                                                    "gated", "auth", "network")):
            return outcome
    for outcome in outcomes:  # both failed for another reason (5xx, ...): nothing to show
        if not isinstance(outcome, NetError):
            return None
    return outcomes[-1]


def _splits_problem(splits: dict[str, Any]) -> str:
    failed_ = splits.get("failed") or []
    pending = splits.get("pending") or []
    if pending:
        return "the viewer is still processing it; try again in a few minutes"
    if failed_:
        return f"the viewer failed on it: {_cut(json.dumps(failed_[0], ensure_ascii=False), 200)}"
    return "it may be empty or in an unsupported format"


def _failed_section(title: str, outcome: NetError) -> list[str]:
    return [f"## {title}", f"(not available: {outcome.message})", ""]


def _validity(valid: Any) -> list[str]:
    if isinstance(valid, NetError):
        return [f"Viewer status: unknown ({valid.message})", ""]
    if not isinstance(valid, dict):
        return []
    flags = ["viewer", "preview", "search", "filter", "statistics"]
    shown = " · ".join(f"{f}: {'yes' if valid.get(f) else 'no'}" for f in flags if f in valid)
    lines = [f"Dataset viewer: {shown}"]
    if not valid.get("viewer") and not valid.get("preview"):
        lines.append("The viewer cannot read this dataset (unsupported format, loading script, or still "
                     "processing); inspect its files with hf_repo_files instead.")
    return lines + [""]


def _description(info: Any) -> list[str]:
    data = info.get("dataset_info") if isinstance(info, dict) else None
    if not isinstance(data, dict):
        return []
    lines = []
    if data.get("license"):
        lines.append(f"License: {data['license']}")
    description = (data.get("description") or "").strip()
    if description:
        lines.append(f"Description: {_cut(' '.join(description.split()), 400)}")
    return lines + ([""] if lines else [])


def _splits_table(pairs: list[tuple[str, str]], size: Any, info: Any, splits: Any) -> list[str]:
    if isinstance(splits, NetError):
        return _failed_section("Configs and splits", splits)
    by_split: dict[tuple[str, str], dict[str, Any]] = {}
    totals: dict[str, Any] = {}
    if isinstance(size, dict):
        body = size.get("size") or {}
        for s in body.get("splits") or []:
            by_split[(s.get("config"), s.get("split"))] = s
        totals = body.get("dataset") or {}
    if not by_split and isinstance(info, dict) and isinstance(info.get("dataset_info"), dict):
        data = info["dataset_info"]
        for name, s in (data.get("splits") or {}).items():
            by_split[(data.get("config_name"), name)] = {"num_rows": s.get("num_examples"),
                                                          "num_bytes_memory": s.get("num_bytes")}
    lines = ["## Configs and splits", "| config | split | rows | parquet | in memory |", "|---|---|---|---|---|"]
    shown = pairs[:60]
    for config, split in shown:
        s = by_split.get((config, split), {})
        parquet_size, memory = s.get("num_bytes_parquet_files"), s.get("num_bytes_memory")
        lines.append(f"| {config} | {split} | {_count(s.get('num_rows'))} | "
                     f"{human_size(parquet_size) if parquet_size is not None else '?'} | "
                     f"{human_size(memory) if memory is not None else '?'} |")
    if len(pairs) > len(shown):
        lines.append(f"... {len(pairs) - len(shown)} more config/split pairs")
    if totals:
        lines.append(f"Total: {_count(totals.get('num_rows'))} rows, "
                     f"{human_size(totals.get('num_bytes_parquet_files'))} of parquet, "
                     f"{human_size(totals.get('num_bytes_original_files'))} of original files")
    if isinstance(size, NetError):
        lines.append(f"(sizes not available: {size.message})")
    elif isinstance(size, dict) and size.get("partial"):
        lines.append("(sizes are partial: the viewer converted only part of this dataset)")
    return lines + [""]


def _schema(info: Any, rows: Any, config: str | None) -> list[str]:
    features: list[tuple[str, Any]] = []
    if isinstance(rows, dict) and rows.get("features"):
        features = [(f.get("name"), f.get("type")) for f in rows["features"]]
    elif isinstance(info, dict) and isinstance((info.get("dataset_info") or {}).get("features"), dict):
        features = list(info["dataset_info"]["features"].items())
    if not features:
        if isinstance(info, NetError) and isinstance(rows, NetError):
            return _failed_section("Schema", rows)
        return []
    lines = [f"## Schema ({config}, {len(features)} columns)"]
    lines += [f"- {name}: {feature_type(t)}" for name, t in features]
    return lines + [""]


def _samples(rows: Any, n: int, config: str | None, split: str | None) -> list[str]:
    if n == 0 or rows is None:
        return []
    if isinstance(rows, NetError):
        return _failed_section("Sample rows", rows)
    items = (rows.get("rows") or [])[:n] if isinstance(rows, dict) else []
    if not items:
        return ["## Sample rows", "(the viewer returned no rows for this split)", ""]
    lines = [f"## Sample rows ({config}/{split}, first {len(items)})"]
    for item in items:
        row = item.get("row") or {}
        cut = set(item.get("truncated_cells") or [])
        lines.append(f"### Row {item.get('row_idx', '?')}")
        for key, value in row.items():
            note = " (cut by the viewer)" if key in cut else ""
            lines.append(f"- {key}{note}: {render_cell(value)}")
    return lines + [""]


def _parquet(parquet: Any) -> list[str]:
    if isinstance(parquet, NetError):
        return _failed_section("Parquet files", parquet)
    files = parquet.get("parquet_files") if isinstance(parquet, dict) else None
    if not files:
        return ["## Parquet files", "(none: the viewer has not converted this dataset to parquet)", ""]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in files:
        groups.setdefault((f.get("config"), f.get("split")), []).append(f)
    lines = [f"## Parquet files ({len(files)})"]
    for i, ((config, split), group) in enumerate(groups.items()):
        if i == MAX_PARQUET_LINES:
            lines.append(f"... {len(groups) - i} more config/split groups")
            break
        total = sum(f.get("size") or 0 for f in group)
        more = f" (+{len(group) - 1} more)" if len(group) > 1 else ""
        lines.append(f"- {config}/{split}: {len(group)} file(s), {human_size(total)}: {group[0].get('url')}{more}")
    if parquet.get("partial"):
        lines.append("(partial: only the first part of a large split was converted)")
    return lines + [""]
