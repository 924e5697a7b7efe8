"""The ``edit`` tool, and finding the text it means even when the model copied it imperfectly.

Passes go from strict to tolerant and the first pass that finds anything wins, so a
tolerant pass can never override an exact match elsewhere in the file. Tolerant passes
compare whole lines; the span they return covers the file's own text, so what is replaced
is exactly what is on disk.
"""

from __future__ import annotations

import asyncio
import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pydantic import Field

from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.files import (
    BINARY_SNIFF_BYTES,
    cat_n,
    clip_line,
    directory_error,
    missing_file_error,
    outside_cwd_reason,
    atomic_write,
    python_warnings,
    remember,
    resolve_path,
    unread_or_stale,
)

EXACT = "exact"
TRAILING_WS = "trailing-whitespace-insensitive"
TRIMMED = "whitespace-trimmed"
UNICODE = "unicode-normalised"

# Characters models (and word processors) swap for their plain ASCII look-alikes.
_UNICODE_MAP = {
    ord("\u2018"): "'", ord("\u2019"): "'", ord("\u201a"): "'", ord("\u201b"): "'",
    ord("\u2032"): "'",
    ord("\u201c"): '"', ord("\u201d"): '"', ord("\u201e"): '"', ord("\u201f"): '"',
    ord("\u2033"): '"',
    ord("\u2010"): "-", ord("\u2011"): "-", ord("\u2012"): "-", ord("\u2013"): "-",
    ord("\u2014"): "-", ord("\u2015"): "-", ord("\u2212"): "-",
    ord("\u00a0"): " ", ord("\u2007"): " ", ord("\u202f"): " ",
    ord("\u200b"): None, ord("\u200c"): None, ord("\u200d"): None, ord("\u2060"): None,
    ord("\ufeff"): None,
}


def normalise_unicode(text: str) -> str:
    return text.translate(_UNICODE_MAP)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    #: what to put there (new_str, possibly re-indented to the file's indentation)
    replacement: str


@dataclass(frozen=True)
class MatchResult:
    pass_name: str
    spans: list[Span]


def line_number(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _exact(text: str, old: str, new: str) -> list[Span]:
    spans, pos = [], text.find(old)
    while pos >= 0:
        spans.append(Span(pos, pos + len(old), new))
        pos = text.find(old, pos + len(old))
    return spans


def _unicode_substring(text: str, old: str, new: str) -> list[Span]:
    """Substring search on normalised text, mapped back to offsets in the original."""
    norm_chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        mapped = normalise_unicode(ch)
        if mapped:
            norm_chars.append(mapped)
            origin.append(i)
    norm_text, norm_old = "".join(norm_chars), normalise_unicode(old)
    if not norm_old:
        return []
    spans, pos = [], norm_text.find(norm_old)
    while pos >= 0:
        last = pos + len(norm_old) - 1
        spans.append(Span(origin[pos], origin[last] + 1, new))
        pos = norm_text.find(norm_old, pos + len(norm_old))
    return spans


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(new: str, old_lines: list[str], file_lines: list[str]) -> str:
    """Shift new_str by the same indentation difference as old_str vs the file.

    Only done when old_str is consistently indented relative to its first line; otherwise
    new_str is used as given rather than guessing.
    """
    pairs = [(o, f) for o, f in zip(old_lines, file_lines) if o.strip()]
    if not pairs:
        return new
    old_ind, file_ind = _indent(pairs[0][0]), _indent(pairs[0][1])
    if old_ind == file_ind:
        return new
    for o, f in pairs:
        if not o.startswith(old_ind) or not f.startswith(file_ind):
            return new
        if _indent(o)[len(old_ind):] != _indent(f)[len(file_ind):]:
            return new
    out = []
    for line in new.split("\n"):
        if line.strip() and line.startswith(old_ind):
            line = file_ind + line[len(old_ind):]
        out.append(line)
    return "\n".join(out)


def _line_pass(
    text: str, old: str, new: str, norm: Callable[[str], str], reindent: bool
) -> list[Span]:
    old_lines = old.split("\n")
    ends_with_newline = old_lines[-1] == "" and len(old_lines) > 1
    if ends_with_newline:
        old_lines.pop()
    wanted = [norm(line) for line in old_lines]
    lines = text.split("\n")
    starts, pos = [], 0
    for line in lines:
        starts.append(pos)
        pos += len(line) + 1
    normed = [norm(line) for line in lines]
    n = len(wanted)
    spans: list[Span] = []
    i = 0
    while i + n <= len(lines):
        if normed[i : i + n] == wanted:
            last = i + n - 1
            end = starts[last] + len(lines[last])
            if ends_with_newline and last < len(lines) - 1:
                end += 1
            replacement = _reindent(new, old_lines, lines[i : i + n]) if reindent else new
            spans.append(Span(starts[i], end, replacement))
            i += n
        else:
            i += 1
    return spans


def find_matches(text: str, old: str, new: str) -> MatchResult | None:
    """The spans of ``old`` in ``text`` from the first pass that finds any, else None."""
    spans = _exact(text, old, new)
    if spans:
        return MatchResult(EXACT, spans)
    if not old.strip():
        return None  # whitespace-only text is too ambiguous to match loosely
    spans = _line_pass(text, old, new, lambda s: s.rstrip(), reindent=False)
    if spans:
        return MatchResult(TRAILING_WS, spans)
    spans = _line_pass(text, old, new, lambda s: s.strip(), reindent=True)
    if spans:
        return MatchResult(TRIMMED, spans)
    spans = _unicode_substring(text, old, new) or _line_pass(
        text, old, new, lambda s: normalise_unicode(s).strip(), reindent=True
    )
    if spans:
        return MatchResult(UNICODE, spans)
    return None


def apply_spans(text: str, spans: list[Span]) -> tuple[str, list[tuple[int, int]]]:
    """Replace the spans; return the new text and each replacement's (start, end) in it."""
    pieces, placed, cursor, shift = [], [], 0, 0
    for span in spans:
        pieces.append(text[cursor : span.start])
        pieces.append(span.replacement)
        new_start = span.start + shift
        placed.append((new_start, new_start + len(span.replacement)))
        shift += len(span.replacement) - (span.end - span.start)
        cursor = span.end
    pieces.append(text[cursor:])
    return "".join(pieces), placed


def closest_lines(text: str, old: str, limit: int = 2) -> list[tuple[int, list[str]]]:
    """Where the file looks most like ``old``: (first line number, lines) pairs."""
    old_lines = [line for line in old.split("\n") if line.strip()]
    if not old_lines:
        return []
    probe = normalise_unicode(old_lines[0]).strip()
    lines = text.split("\n")
    scored = []
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    for i, line in enumerate(lines):
        candidate = normalise_unicode(line).strip()
        if not candidate:
            continue
        matcher.set_seq1(candidate)
        if matcher.real_quick_ratio() < 0.5 or matcher.quick_ratio() < 0.5:
            continue
        ratio = matcher.ratio()
        if ratio >= 0.5:
            scored.append((ratio, i))
    scored.sort(key=lambda item: (-item[0], item[1]))
    window = min(max(len(old.split("\n")), 1), 6)
    return [(i + 1, lines[i : i + window]) for _, i in scored[:limit]]


# --------------------------------------------------------------------------- the tool


class EditParams(ToolParams):
    path: str = Field(description="File to edit, absolute or relative to the working directory.")
    old_str: str = Field(
        description="The text to replace, copied from the file (without the line-number "
        "prefix read shows). Include enough surrounding lines to make it unique."
    )
    new_str: str = Field(description="The text to put in its place (may be empty to delete).")
    replace_all: bool = Field(
        False, description="Replace every occurrence instead of requiring exactly one."
    )


def _snippet(text: str, first: int, last: int, context: int = 2, max_lines: int = 20) -> str:
    lines = text.split("\n")
    start = max(first - context, 1)
    end = min(last + context, len(lines), start + max_lines - 1)
    return cat_n([clip_line(line) for line in lines[start - 1 : end]], start)


class EditTool(Tool):
    name = "edit"
    description = (
        "Replace text in an existing file that you have read. old_str must match exactly one "
        "place unless replace_all is true. Exact matching is tried first; if that fails, "
        "matching tolerates differences in trailing whitespace, indentation, and look-alike "
        "unicode (curly quotes, dashes, non-breaking spaces), and says which applied."
    )
    Params = EditParams

    def approval_reason(self, params: EditParams, settings: ApprovalSettings) -> str | None:
        return outside_cwd_reason(params.path, settings, "editing")

    async def run(self, params: EditParams, ctx: ToolContext) -> ToolResult:
        return await asyncio.to_thread(self._edit, params, ctx)

    def _edit(self, params: EditParams, ctx: ToolContext) -> ToolResult:
        path = resolve_path(params.path, ctx.cwd)
        if params.old_str == params.new_str:
            return ToolResult("ERROR: old_str and new_str are identical; nothing to change.", False)
        if not params.old_str:
            return ToolResult(
                "ERROR: old_str is empty. Give the text to replace, or use write to create or "
                "replace a whole file.",
                success=False,
            )
        if path.is_dir():
            return ToolResult(directory_error(path), success=False)
        if not path.exists():
            return ToolResult(
                missing_file_error(path) + " Use write to create a new file.", success=False
            )
        refusal = unread_or_stale(path, ctx)
        if refusal:
            return ToolResult(refusal, success=False)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            return ToolResult(f"ERROR: cannot read {path}: {exc.strerror}.", success=False)
        if b"\0" in raw[:BINARY_SNIFF_BYTES]:
            return ToolResult(f"ERROR: {path} is a binary file; edit changes text only.", False)
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            # read showed it as Latin-1, byte for byte: match and write back in that encoding
            text, encoding = raw.decode("latin-1"), "latin-1"
        # CRLF files: match and replace on \n text, then restore the file's own line endings
        crlf = "\r\n" in text and text.count("\r\n") == text.count("\n")
        if crlf:
            text = text.replace("\r\n", "\n")
        old = params.old_str.replace("\r\n", "\n") if crlf else params.old_str
        new = params.new_str.replace("\r\n", "\n") if crlf else params.new_str

        match = find_matches(text, old, new)
        if match is None:
            return ToolResult(_no_match_error(path, text, old), success=False)
        starts = [line_number(text, span.start) for span in match.spans]
        if len(match.spans) > 1 and not params.replace_all:
            where = ", ".join(str(n) for n in starts[:10]) + (" ..." if len(starts) > 10 else "")
            return ToolResult(
                f"ERROR: old_str matches {len(match.spans)} places in {path} (lines {where}). "
                "Add surrounding lines to make it unique, or set replace_all=true.",
                success=False,
            )
        updated, placed = apply_spans(text, match.spans)
        out = updated.replace("\n", "\r\n") if crlf else updated
        try:
            data = out.encode(encoding)
        except UnicodeEncodeError:
            return ToolResult(
                f"ERROR: {path} is Latin-1 (not UTF-8), and the new text has characters Latin-1 cannot hold; "
                "nothing was written. Use only characters that fit, or convert the file with bash first.",
                success=False,
            )
        try:
            atomic_write(path, data)
        except OSError as exc:
            return ToolResult(
                f"ERROR: could not write {path}: {exc.strerror or exc}. The original file is "
                "unchanged.",
                success=False,
            )
        remember(ctx, path)

        first_start, first_end = placed[0]
        first = line_number(updated, first_start)
        last = line_number(updated, max(first_start, first_end - 1))
        where = f"line {first}" if first == last else f"lines {first}-{last}"
        if len(placed) > 1:
            head = f"Edited {path}: replaced {len(placed)} occurrences (first at {where})"
        else:
            head = f"Edited {path}: replaced {where}"
        if match.pass_name != EXACT:
            head += f" (old_str matched using {match.pass_name} matching)"
        if encoding != "utf-8":
            head += " (written back as Latin-1, the file's own encoding)"
        report = [head + ".", _snippet(updated, first, last)]
        report += python_warnings(path, updated)
        return ToolResult("\n".join(report))


def _no_match_error(path: Path, text: str, old: str) -> str:
    message = (
        f"ERROR: old_str was not found in {path} (tried exact, trailing-whitespace-insensitive, "
        "whitespace-trimmed and unicode-normalised matching)."
    )
    hints = closest_lines(text, old)
    if not hints:
        return message + " Read the file again and copy the text exactly."
    parts = [message, "The closest text in the file:"]
    for number, lines in hints:
        parts.append(cat_n([clip_line(line) for line in lines], number))
    parts.append("Read the file again around those lines and copy the text exactly.")
    return "\n".join(parts)
