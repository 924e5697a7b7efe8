"""The file tools ``read`` and ``write``, and the guards ``edit`` shares with them.

Writes and edits are guarded by what the agent has seen: an existing file may only be
changed after it was read, and only if it has not changed on disk since (someone edited it
in their editor, a job rewrote it). Every change is atomic, so a full disk or a crash never
leaves half a file behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import io
import os
import stat
import tempfile
import warnings
from pathlib import Path

from pydantic import Field

from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.special_files import blocking_reason, is_pseudo, read_pseudo

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 4000
#: how much of a file's start is checked for NUL bytes to call it binary
BINARY_SNIFF_BYTES = 8192
#: bytes of one line kept by read: enough for MAX_LINE_CHARS characters of 4-byte UTF-8
LINE_READ_CAP = MAX_LINE_CHARS * 4 + 2
TRAINING_CONFIG_NAMES = ("TrainingArguments", "SFTConfig", "DPOConfig", "GRPOConfig")

# --------------------------------------------------------------------------- shared helpers


def resolve_path(raw: str, base: Path) -> Path:
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base / path
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # symlink loop: keep the lexical path
        return Path(os.path.abspath(path))


#: files up to this size are also fingerprinted by content (a same-size change with its mtime
#: put back is still caught); bigger ones by size and mtime only
HASH_LIMIT = 64_000_000


def content_digest(path: Path, size: int) -> str | None:
    if size > HASH_LIMIT:
        return None
    import hashlib

    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read(HASH_LIMIT + 1)).hexdigest()
    except OSError:
        return None


def fingerprint(st: os.stat_result, path: Path | None = None) -> tuple[int, int, str | None]:
    return (st.st_mtime_ns, st.st_size, content_digest(path, st.st_size) if path is not None else None)


def remember(ctx: ToolContext, path: Path) -> None:
    with contextlib.suppress(OSError):
        ctx.state.read_files[str(path)] = fingerprint(path.stat(), path)


def _is_utf8(fh, limit: int = 64_000_000) -> bool:
    """Whether the file (its first ``limit`` bytes) decodes as UTF-8."""
    import codecs

    decoder = codecs.getincrementaldecoder("utf-8")()
    read = 0
    try:
        while read < limit:
            chunk = fh.read(1 << 20)
            if not chunk:
                decoder.decode(b"", final=True)
                return True
            read += len(chunk)
            decoder.decode(chunk)
    except UnicodeDecodeError:
        return False
    return True


def unread_or_stale(path: Path, ctx: ToolContext) -> str | None:
    """Why changing this existing file now could destroy work, or None when it is safe."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    seen = ctx.state.read_files.get(str(path))
    if seen is None:
        return (
            f"ERROR: {path} exists and has not been read in this session. Read it first so "
            "you know what you are changing; nothing was written."
        )
    current = fingerprint(st, path if len(seen) > 2 and seen[2] is not None else None)
    if tuple(seen[:2]) != current[:2] or (len(seen) > 2 and seen[2] is not None and seen[2] != current[2]):
        return (
            f"ERROR: {path} changed on disk since you last read it (size {seen[1]:,} -> "
            f"{current[1]:,} bytes). Someone or something else modified it; read it again "
            "before changing it so those changes are not lost. Nothing was written."
        )
    return None


def _umask() -> int:
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    current = os.umask(0o022)  # no /proc: the only portable way to read it is to set it
    os.umask(current)
    return current


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` all at once, keeping its permissions. Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    # make the rename itself durable; not every filesystem lets a directory be fsynced
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def python_warnings(path: Path, text: str) -> list[str]:
    """Problems worth telling the model about a Python file it just wrote."""
    if path.suffix != ".py":
        return []
    found = []
    # compile() reports invalid escapes etc. through the warnings module, which would print
    # to our stderr (and through the TUI); collect them instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            compile(text, str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            found.append(f"WARNING: {path.name} has a syntax error at line {exc.lineno}: {exc.msg}")
        except ValueError as exc:
            found.append(f"WARNING: {path.name} cannot be compiled: {exc}")
    for item in caught[:3]:
        found.append(f"WARNING: {path.name} line {getattr(item, 'lineno', '?')}: {item.message}")
    used = [name for name in TRAINING_CONFIG_NAMES if name in text]
    if used and "push_to_hub" not in text and "hub_model_id" not in text:
        found.append(
            f"WARNING: this looks like a training script ({', '.join(used)}) but it sets "
            "neither push_to_hub nor hub_model_id. On a Hub job the trained model is lost when "
            "the job ends; set push_to_hub=True and hub_model_id='<user>/<model>'."
        )
    return found


def clip_line(line: str, size: str | None = None) -> str:
    if size is None and len(line) <= MAX_LINE_CHARS:
        return line
    size = size or f"{len(line):,} characters"
    return f"{line[:MAX_LINE_CHARS]}... [line truncated: {size}]"


def cat_n(lines: list[str], first: int) -> str:
    """``cat -n`` layout; lines are expected to be clipped already."""
    return "\n".join(f"{number:>6}\t{line}" for number, line in enumerate(lines, start=first))


def _read_lines(fh):
    """Yield each line's first bytes and its full length in bytes (newline excluded).

    A 2 GB minified JSON file is one line; only the part that can be shown is kept.
    """
    while head := fh.readline(LINE_READ_CAP):
        length, piece = len(head), head
        if not head.endswith(b"\n"):
            while piece := fh.readline(1 << 20):
                length += len(piece)
                if piece.endswith(b"\n"):
                    break
        yield head, length - piece.endswith(b"\n")


def _count_remaining_lines(fh) -> int:
    """Lines from here to the end, without decoding them: logs can be many GB."""
    count, last_byte = 0, b"\n"
    while chunk := fh.read(1 << 20):
        count += chunk.count(b"\n")
        last_byte = chunk[-1:]
    return count + (last_byte != b"\n")


def outside_cwd_reason(raw: str, settings: ApprovalSettings, verb: str) -> str | None:
    if settings.mode != "ask":
        return None
    root = resolve_path(str(settings.cwd), Path.cwd())
    target = resolve_path(raw, root)
    if target.is_relative_to(root):
        return None
    return f"ask mode: {verb} {target}, outside the working directory {root}"


def missing_file_error(path: Path) -> str:
    parent = path.parent
    if not parent.is_dir():
        return f"ERROR: {path} does not exist (neither does its directory {parent})."
    with contextlib.suppress(OSError):
        names = [entry.name for entry in parent.iterdir()]
        close = difflib.get_close_matches(path.name, names, n=3, cutoff=0.6)
        if close:
            return f"ERROR: {path} does not exist. Did you mean: {', '.join(close)}?"
    return f"ERROR: {path} does not exist."


def directory_error(path: Path) -> str:
    try:
        entries = sorted(path.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        return f"ERROR: {path} is a directory, and it cannot be listed: {exc.strerror}."
    shown = [e.name + ("/" if e.is_dir() else "") for e in entries[:20]]
    more = f" (and {len(entries) - 20} more)" if len(entries) > 20 else ""
    listing = ", ".join(shown) if shown else "(empty)"
    return (
        f"ERROR: {path} is a directory, not a file. It contains: {listing}{more}. "
        "Read one of those files, or use bash (ls, find) to explore."
    )


# --------------------------------------------------------------------------- read


class ReadParams(ToolParams):
    path: str = Field(description="File to read, absolute or relative to the working directory.")
    offset: int = Field(1, ge=1, description="1-based line number to start from (default 1).")
    limit: int = Field(
        DEFAULT_READ_LIMIT,
        ge=1,
        description=f"Maximum lines to return (default {DEFAULT_READ_LIMIT}).",
    )


class ReadTool(Tool):
    name = "read"
    description = (
        "Read a text file. Returns numbered lines like `cat -n` (line number, tab, text); "
        f"lines over {MAX_LINE_CHARS} characters are truncated. Use offset and limit to page "
        "through long files. A file must be read before write or edit may change it."
    )
    Params = ReadParams

    async def run(self, params: ReadParams, ctx: ToolContext) -> ToolResult:
        # file I/O runs in a thread: counting the lines of a big log must not freeze the UI
        return await asyncio.to_thread(self._read, params, ctx)

    def _read(self, params: ReadParams, ctx: ToolContext) -> ToolResult:
        path = resolve_path(params.path, ctx.cwd)
        try:
            st = path.stat()
        except FileNotFoundError:
            return ToolResult(missing_file_error(path), success=False)
        except OSError as exc:
            return ToolResult(f"ERROR: cannot read {path}: {exc.strerror}.", success=False)
        if stat.S_ISDIR(st.st_mode):
            return ToolResult(directory_error(path), success=False)
        if not stat.S_ISREG(st.st_mode):
            # a FIFO would block forever and /dev/zero never ends
            return ToolResult(
                f"ERROR: {path} is not a regular file (a device, pipe or socket); read only "
                "reads files. Use bash if you really need it.",
                success=False,
            )
        cut_short = False
        if is_pseudo(path):
            # made by the kernel as it is read: size 0 says nothing, some never end or wait for data
            refusal = blocking_reason(path)
            got = refusal or read_pseudo(path)
            if isinstance(got, str):
                return ToolResult(got, success=False)
            data, cut_short = got
            fh = io.BytesIO(data)
            seen = (st.st_mtime_ns, len(data), None)
        else:
            try:
                fh = open(path, "rb")
            except OSError as exc:
                return ToolResult(f"ERROR: cannot read {path}: {exc.strerror}.", success=False)
            seen = fingerprint(os.fstat(fh.fileno()))
        with fh:
            if b"\0" in fh.read(BINARY_SNIFF_BYTES):
                return ToolResult(
                    f"ERROR: {path} is a binary file ({seen[1]:,} bytes); read shows text only. "
                    "Inspect it with bash instead (file, xxd | head, or a python one-liner).",
                    success=False,
                )
            fh.seek(0)
            encoding = "utf-8" if _is_utf8(fh) else "latin-1"
            fh.seek(0)
            lines, total = [], 0
            last = params.offset + params.limit - 1
            for head, length in _read_lines(fh):
                total += 1
                if params.offset <= total <= last:
                    text = head.decode(encoding, "replace").rstrip("\n").rstrip("\r")
                    cut = f"{length:,} bytes" if length > len(head) else None
                    lines.append(clip_line(text, cut))
                elif total > last:
                    total += _count_remaining_lines(fh)
                    break
        if not is_pseudo(path):
            seen = (seen[0], seen[1], content_digest(path, seen[1]))
        ctx.state.read_files[str(path)] = seen
        if total == 0:  # what was read, not the size stat gives (0 for many files made as they are read)
            return ToolResult(f"({path} is empty)")
        if not lines:
            return ToolResult(
                f"ERROR: offset {params.offset} is past the end of {path}, which has "
                f"{total} lines.",
                success=False,
            )
        text = cat_n(lines, params.offset)
        end = params.offset + len(lines) - 1
        if end < total:
            text += f"\n... {total - end:,} more lines; use offset={end + 1} to continue."
        if cut_short:
            text += (f"\n(read stopped after the first {len(data):,} bytes of {path}: files the kernel makes as "
                     "they are read can be endless)")
        if encoding != "utf-8":
            text += (f"\n(note: {path.name} is not valid UTF-8; it is shown as Latin-1, byte for byte, and edit "
                     "keeps that encoding)")
        return ToolResult(text)


# --------------------------------------------------------------------------- write


class WriteParams(ToolParams):
    path: str = Field(
        description="File to create or overwrite, absolute or relative to the working directory."
    )
    content: str = Field(description="The complete new content of the file.")


class WriteTool(Tool):
    name = "write"
    description = (
        "Create a file, or replace the whole content of one. Parent directories are created. "
        "An existing file must have been read first (and not changed since); to change part "
        "of a file prefer edit. Python files are checked for syntax errors after writing."
    )
    Params = WriteParams

    def approval_reason(self, params: WriteParams, settings: ApprovalSettings) -> str | None:
        return outside_cwd_reason(params.path, settings, "writing")

    async def run(self, params: WriteParams, ctx: ToolContext) -> ToolResult:
        return await asyncio.to_thread(self._write, params, ctx)

    def _write(self, params: WriteParams, ctx: ToolContext) -> ToolResult:
        path = resolve_path(params.path, ctx.cwd)
        if path.is_dir():
            return ToolResult(f"ERROR: {path} is a directory; give a file path.", success=False)
        existed = path.exists()
        refusal = unread_or_stale(path, ctx)
        if refusal:
            return ToolResult(refusal, success=False)
        data = params.content.encode("utf-8")
        try:
            atomic_write(path, data)
        except OSError as exc:
            kept = "The original file is unchanged." if existed else "Nothing was written."
            return ToolResult(
                f"ERROR: could not write {path}: {exc.strerror or exc}. {kept}", success=False
            )
        remember(ctx, path)
        lines = len(params.content.splitlines())
        verb = "Overwrote" if existed else "Created"
        report = [f"{verb} {path} ({lines} lines, {len(data):,} bytes)."]
        report += python_warnings(path, params.content)
        return ToolResult("\n".join(report))
