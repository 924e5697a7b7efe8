"""The Hub repos and collections linked to a paper, as Markdown sections (``hf_papers``
find_models / find_datasets / find_collections / find_all_resources)."""

from __future__ import annotations

from typing import Any

from agent.tools.papers_sources import Hub

_REPO_SORT = {"downloads": "downloads", "likes": "likes", "trending": "trendingScore"}
_COLLECTION_SORT = {"downloads": "upvotes", "likes": "upvotes", "trending": "trending"}


def _num(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _one_line(text: Any, limit: int = 200) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


async def repo_section(hub: Hub, kind: str, aid: str, sort: str, limit: int) -> str:
    """Models or datasets (``kind``) tagged with the paper, most ``sort`` first."""
    rows = await hub.repos(kind, aid, sort=_REPO_SORT[sort], limit=limit)
    noun = "Models" if kind == "models" else "Datasets"
    if not rows:
        return f"## {noun} citing arXiv {aid}: none on the Hub"
    prefix = "" if kind == "models" else "datasets/"
    lines = [f"## {noun} citing arXiv {aid}: {len(rows)} (by {sort})"]
    for i, row in enumerate(rows, 1):
        rid = str(row.get("id") or row.get("modelId") or "")
        meta = [f"{_num(row.get('downloads') or 0)} downloads", f"{_num(row.get('likes') or 0)} likes"]
        if row.get("pipeline_tag"):
            meta.append(str(row["pipeline_tag"]))
        if row.get("gated"):
            meta.append("gated")
        updated = str(row.get("lastModified") or row.get("createdAt") or "")[:10]
        if updated:
            meta.append(f"updated {updated}")
        lines.append(f"{i}. **{rid}** — " + " · ".join(meta) + f"\n   {hub.base}/{prefix}{rid}")
    return "\n".join(lines)


async def collection_section(hub: Hub, aid: str, sort: str, limit: int) -> str:
    rows = await hub.collections(aid, sort=_COLLECTION_SORT[sort], limit=limit)
    if not rows:
        return f"## Collections with arXiv {aid}: none on the Hub"
    lines = [f"## Collections with arXiv {aid}: {len(rows)}"]
    for i, row in enumerate(rows, 1):
        owner = row.get("owner") or {}
        owner_name = owner.get("name", "") if isinstance(owner, dict) else str(owner)
        items = [str(it.get("id") or "") for it in row.get("items") or [] if isinstance(it, dict)]
        meta = [f"by {owner_name}" if owner_name else "", f"▲ {_num(row.get('upvotes') or 0)}"]
        lines.append(f"{i}. **{_one_line(row.get('title'))}** — " + " · ".join(m for m in meta if m))
        if row.get("description"):
            lines.append(f"   {_one_line(row['description'])}")
        if items:
            lines.append("   items: " + ", ".join(x for x in items[:4] if x))
        lines.append(f"   {hub.base}/collections/{row.get('slug', '')}")
    return "\n".join(lines)
