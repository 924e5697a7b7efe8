"""The ``github_read_file`` tool: a file from a GitHub repository, numbered, a window of lines.

Notebooks come as Markdown without outputs; a directory path lists its entries; a binary
file is named, not shown. Files over 1 MB are fetched as the raw media type.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from pydantic import Field

from agent.net import Net, NetError
from agent.tools.base import Tool, ToolContext, ToolParams, ToolResult
from agent.tools.github_common import fmt_size, gh_error, gh_get, split_repo
from agent.tools.knowledge import budgeted, net_of


class ReadFileParams(ToolParams):
    repo: str = Field(description="Repository as 'owner/name', e.g. 'huggingface/trl'.")
    path: str = Field(description="File (or directory) path in the repository, e.g. 'examples/scripts/sft.py'.")
    ref: str | None = Field(None, description="Branch, tag or commit; default: the default branch.")
    line_start: int | None = Field(None, ge=1, description="First line to show (1-based); default 1.")
    line_end: int | None = Field(None, ge=1, description="Last line to show; default line_start + 299.")


DEFAULT_LINES = 300
LINE_CHARS = 500


def render_notebook(raw: bytes) -> str:
    """A Jupyter notebook as Markdown: markdown cells as they are, code cells fenced in the
    kernel's language, outputs left out."""
    nb = json.loads(raw)
    meta = nb.get("metadata") or {}
    lang = ((meta.get("kernelspec") or {}).get("language") or (meta.get("language_info") or {}).get("name")
            or "python")
    cells = nb.get("cells")
    if cells is None:  # nbformat 3
        cells = [c for ws in nb.get("worksheets") or [] for c in ws.get("cells") or []]
    out: list[str] = []
    for cell in cells:
        source = cell.get("source", cell.get("input", ""))
        text = "".join(source) if isinstance(source, list) else str(source)
        kind = cell.get("cell_type")
        if kind == "code":
            out.append(f"```{lang}\n{text.rstrip()}\n```")
        elif kind == "heading":  # nbformat 3
            out.append("#" * int(cell.get("level") or 1) + " " + text.strip())
        else:
            out.append(text.strip())
    return "\n\n".join(out) + "\n"


class GithubReadFileTool(Tool):
    name = "github_read_file"
    description = (
        "Read a file from a GitHub repository (first 300 lines by default, numbered; use "
        "line_start/line_end for more). Notebooks come as Markdown without outputs; a directory "
        "path lists its entries."
    )
    Params = ReadFileParams

    async def run(self, params: ReadFileParams, ctx: ToolContext) -> ToolResult:
        parsed = split_repo(params.repo)
        if parsed is None:
            return ToolResult(f"ERROR: {params.repo!r} is not a GitHub repository; give it as 'owner/name'.",
                              success=False)
        owner, name = parsed
        full = f"{owner}/{name}"
        path = params.path.strip().strip("/")
        if ".." in path.split("/"):
            return ToolResult(f"ERROR: {params.path!r} is not a path inside the repository.", success=False)
        if params.line_start and params.line_end and params.line_end < params.line_start:
            return ToolResult("ERROR: line_end is before line_start.", success=False)
        net = net_of(ctx)
        what = f"github_read_file {full}/{path}"
        route = f"/repos/{owner}/{name}/contents/{quote(path)}" if path else f"/repos/{owner}/{name}/contents"
        query = {"ref": params.ref} if params.ref else None
        at = params.ref or "the default branch"
        try:
            r = await gh_get(net, route, params=query, ok=(404,))
            if r.status == 404:
                repo = await gh_get(net, f"/repos/{owner}/{name}", ok=(404,))
                if repo.status == 404:
                    return ToolResult(f"ERROR: repository {full} was not found on GitHub (or it is private).",
                                      success=False)
                parent = path.rsplit("/", 1)[0] if "/" in path else ""
                return ToolResult(f"ERROR: {path!r} does not exist in {full} at {at}. List the directory with "
                                  f'github_read_file(repo="{full}", path="{parent}") or search with '
                                  f'github_find_examples(repo="{full}", keyword=...).', success=False)
            data = r.json()
            if isinstance(data, list):
                return self._directory(data, full, path, at, ctx)
            kind = data.get("type")
            if kind == "symlink":
                return ToolResult(f"{full}/{path} is a symlink to {data.get('target')!r}; read that path instead.")
            if kind == "submodule":
                return ToolResult(f"{full}/{path} is a git submodule pointing at {data.get('submodule_git_url')}.")
            raw, cut = await self._content(net, route, query, data)
        except NetError as exc:
            return gh_error(exc, net, what)
        except (binascii.Error, ValueError) as exc:
            return ToolResult(f"ERROR: {what}: GitHub sent content that could not be decoded ({exc}).", success=False)
        size = data.get("size") if isinstance(data.get("size"), int) else len(raw)
        if b"\x00" in raw[:8192]:
            return ToolResult(f"{full}/{path} is a binary file ({fmt_size(size)}); not shown. Download: "
                              f"{data.get('download_url') or data.get('html_url')}")
        if path.lower().endswith(".ipynb"):
            try:
                text = render_notebook(raw)
                kind_note = "notebook as Markdown, outputs omitted"
            except (ValueError, AttributeError, TypeError):
                text, kind_note = raw.decode("utf-8", errors="replace"), "notebook JSON (could not be rendered)"
        else:
            text, kind_note = raw.decode("utf-8", errors="replace"), ""
        lines = text.splitlines()
        total = len(lines)
        start = params.line_start or 1
        end = params.line_end or (start + DEFAULT_LINES - 1)
        if total and start > total:
            return ToolResult(f"ERROR: {full}/{path} has {total} lines; line_start {start} is past the end.",
                              success=False)
        end = min(end, total)
        width = len(str(max(end, 1)))
        body = []
        for n in range(start, end + 1):
            line = lines[n - 1]
            if len(line) > LINE_CHARS:
                line = line[:LINE_CHARS] + f"… [{len(line):,} chars]"
            body.append(f"{n:>{width}}| {line}")
        ref_shown = params.ref or "default branch"
        info = ", ".join(x for x in (f"{total:,} lines", fmt_size(size), kind_note) if x)
        head = [f"{full}/{path} @ {ref_shown} ({info})", str(data.get("html_url") or "")]
        if cut:
            head.append(f"(only the first {fmt_size(len(raw))} of this file were read)")
        foot = []
        if total == 0:
            foot.append("(empty file)")
        elif start > 1 or end < total:
            foot.append(f"[lines {start}-{end} of {total:,}"
                        + (f"; next: line_start={end + 1}]" if end < total else "]"))
        text_out = "\n".join([h for h in head if h] + [""] + body + ([""] + foot if foot else []))
        return budgeted(text_out, ctx, "github_read_file", max_chars=20_000)

    async def _content(self, net: Net, route: str, query: dict[str, Any] | None,
                       data: dict[str, Any]) -> tuple[bytes, bool]:
        """The file's bytes; files over 1 MB come without content, so ask for the raw media type."""
        content = data.get("content") or ""
        if data.get("encoding") == "base64" and (content or not data.get("size")):
            return base64.b64decode(content), False
        raw = await gh_get(net, route, params=query, accept="application/vnd.github.raw", max_bytes=20_000_000)
        return raw.content, raw.truncated

    def _directory(self, entries: list[dict[str, Any]], full: str, path: str, at: str, ctx: ToolContext) -> ToolResult:
        order = {"dir": 0, "file": 1}
        entries = sorted(entries, key=lambda e: (order.get(e.get("type"), 2), str(e.get("name")).lower()))
        lines = [f"{full}/{path or ''} is a directory at {at} ({len(entries)} entries):"]
        for e in entries:
            kind = e.get("type")
            suffix = "/" if kind == "dir" else " -> submodule" if kind == "submodule" else ""
            size = f"  {fmt_size(e.get('size'))}" if kind == "file" else ""
            lines.append(f"- {e.get('name')}{suffix}{size}")
        lines.append(f'Read a file with github_read_file(repo="{full}", path="{path + "/" if path else ""}NAME").')
        return budgeted("\n".join(lines), ctx, "github_read_file")


__all__ = ["GithubReadFileTool", "ReadFileParams", "render_notebook"]
