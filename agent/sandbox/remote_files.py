"""File operations of the sandbox server (``read``, ``write``, ``edit``), standard library only.

This runs inside the Space next to ``server.py``. Paths are resolved against the server's
working directory. Writes are atomic. The read-before-write rule is the client's: it sends
``expect`` (the file as it last saw it) or ``create_only``, and these functions refuse
when the file on disk does not match, so nothing someone else wrote is lost.
"""

from __future__ import annotations

import difflib
import os
import stat
import tempfile

DEFAULT_READ_LIMIT = 2000
MAX_LINE_CHARS = 4000
BINARY_SNIFF_BYTES = 8192


class Refusal(Exception):
    """An expected failure, answered as ``{"error": message, "code": code}`` with ``status``."""

    def __init__(self, status: int, message: str, code: str = "bad_request") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


def int_param(body: dict, key: str, default: int, lo: int, hi: int | None = None) -> int:
    value = body.get(key)
    if value is None:
        value = default
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or (hi is not None and value > hi):
        limits = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise Refusal(400, f"'{key}' must be an integer {limits}, not {value!r}.")
    return value


def text_param(body: dict, key: str, allow_empty: bool = False) -> str:
    value = body.get(key)
    if not isinstance(value, str) or (not value and not allow_empty):
        kind = "a string" if allow_empty else "a non-empty string"
        raise Refusal(400, f"'{key}' is required and must be {kind}.")
    return value


def resolve(raw: object, workdir: str) -> str:
    if not isinstance(raw, str) or not raw:
        raise Refusal(400, "'path' is required and must be a non-empty string.")
    return os.path.realpath(os.path.join(workdir, os.path.expanduser(raw)))


def fingerprint(st: os.stat_result) -> dict:
    return {"mtime_ns": st.st_mtime_ns, "size": st.st_size}


def atomic_write(path: str, data: bytes) -> None:
    """Replace ``path`` all at once (temp file, fsync, rename), keeping its permissions."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def numbered(lines: list[str], first: int) -> str:
    """``cat -n`` layout: a six-wide line number, a tab, the line."""
    return "\n".join(f"{n:>6}\t{line}" for n, line in enumerate(lines, start=first))


def python_warnings(path: str, text: str) -> list[str]:
    if not path.endswith(".py"):
        return []
    name = os.path.basename(path)
    try:
        compile(text, path, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return [f"WARNING: {name} has a syntax error at line {exc.lineno}: {exc.msg}"]
    except ValueError as exc:
        return [f"WARNING: {name} cannot be compiled: {exc}"]
    return []


def existing_file(path: str) -> os.stat_result:
    """The file's stat, or a Refusal that says what is there instead."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        parent = os.path.dirname(path)
        if not os.path.isdir(parent):
            raise Refusal(404, f"{path} does not exist (neither does its directory {parent}).", "not_found") from None
        close = difflib.get_close_matches(os.path.basename(path), os.listdir(parent), n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise Refusal(404, f"{path} does not exist.{hint}", "not_found") from None
    if stat.S_ISDIR(st.st_mode):
        names = sorted(e + ("/" if os.path.isdir(os.path.join(path, e)) else "") for e in os.listdir(path))
        listing = ", ".join(names[:20]) or "(empty)"
        more = f" (and {len(names) - 20} more)" if len(names) > 20 else ""
        raise Refusal(400, f"{path} is a directory, not a file. It contains: {listing}{more}.", "is_directory")
    if not stat.S_ISREG(st.st_mode):
        # a FIFO would block a request thread forever
        raise Refusal(400, f"{path} is not a regular file (a device, pipe or socket).", "not_a_file")
    return st


def check_unchanged(path: str, body: dict) -> bool:
    """Apply the client's read-before-write precondition; True when the file exists."""
    try:
        current = fingerprint(os.stat(path))
    except FileNotFoundError:
        return False
    expect = body.get("expect")
    if expect is None:
        if body.get("create_only"):
            raise Refusal(409, f"{path} already exists and has not been read in this session. Read it first so "
                               "you know what you are replacing; nothing was written.", "unread")
        return True
    if not isinstance(expect, dict) or [expect.get("mtime_ns"), expect.get("size")] != list(current.values()):
        raise Refusal(409, f"{path} changed since you last read it (now {current['size']:,} bytes). Read it again "
                           "before changing it so those changes are not lost; nothing was written.", "stale")
    return True


def read_file(body: dict, workdir: str) -> dict:
    path = resolve(body.get("path"), workdir)
    offset = int_param(body, "offset", 1, 1)
    limit = int_param(body, "limit", DEFAULT_READ_LIMIT, 1)
    existing_file(path)
    last = offset + limit - 1
    shown: list[str] = []
    total = 0
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        if b"\0" in fh.read(BINARY_SNIFF_BYTES):
            raise Refusal(415, f"{path} is a binary file ({st.st_size:,} bytes); read shows text only. Inspect "
                               "it with bash (file, xxd | head).", "binary")
        fh.seek(0)
        # a multi-GB one-line JSON file must not be loaded whole: keep only what can be shown
        while raw := fh.readline(MAX_LINE_CHARS * 4 + 2):
            length, piece = len(raw), raw
            while not piece.endswith(b"\n") and (piece := fh.readline(1 << 20)):
                length += len(piece)
            total += 1
            if offset <= total <= last:
                line = raw.decode("utf-8", "replace").rstrip("\n").rstrip("\r")
                if length > len(raw) or len(line) > MAX_LINE_CHARS:
                    line = f"{line[:MAX_LINE_CHARS]}... [line truncated: {length:,} bytes]"
                shown.append(line)
            elif total > last:
                rest, end = 0, b"\n"
                while chunk := fh.read(1 << 20):
                    rest, end = rest + chunk.count(b"\n"), chunk[-1:]
                total += rest + (end != b"\n")
                break
    if st.st_size and not shown:
        raise Refusal(416, f"offset {offset} is past the end of {path}, which has {total} lines.", "past_end")
    return {"path": path, "content": numbered(shown, offset), "first_line": offset,
            "last_line": offset + len(shown) - 1, "total_lines": total, **fingerprint(st)}


def write_file(body: dict, workdir: str) -> dict:
    path = resolve(body.get("path"), workdir)
    content = text_param(body, "content", allow_empty=True)
    if os.path.isdir(path):
        raise Refusal(400, f"{path} is a directory; give a file path.", "is_directory")
    existed = check_unchanged(path, body)
    data = content.encode("utf-8")
    try:
        atomic_write(path, data)
    except OSError as exc:
        kept = "The original file is unchanged." if existed else "Nothing was written."
        raise Refusal(500, f"could not write {path}: {exc.strerror or exc}. {kept}", "write_failed") from exc
    return {"path": path, "created": not existed, "bytes": len(data), "lines": len(content.splitlines()),
            "warnings": python_warnings(path, content), **fingerprint(os.stat(path))}


def edit_file(body: dict, workdir: str) -> dict:
    path = resolve(body.get("path"), workdir)
    old, new = text_param(body, "old_str"), text_param(body, "new_str", allow_empty=True)
    replace_all = bool(body.get("replace_all"))
    if old == new:
        raise Refusal(400, "old_str and new_str are identical; nothing to change.")
    existing_file(path)
    check_unchanged(path, body)
    with open(path, "rb") as fh:
        raw = fh.read()
    if b"\0" in raw[:BINARY_SNIFF_BYTES]:
        raise Refusal(415, f"{path} is a binary file; edit changes text only.", "binary")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Refusal(415, f"{path} is not valid UTF-8 (byte {exc.start}); change it with bash.", "binary") from None
    count = text.count(old)
    if count == 0:
        raise Refusal(422, _not_found(path, text, old), "no_match")
    starts, pos = [], text.find(old)
    while pos >= 0 and len(starts) < 10:
        starts.append(text.count("\n", 0, pos) + 1)
        pos = text.find(old, pos + len(old))
    if count > 1 and not replace_all:
        where = ", ".join(map(str, starts)) + (" ..." if count > len(starts) else "")
        raise Refusal(422, f"old_str matches {count} places in {path} (lines {where}). Add surrounding lines to "
                           "make it unique, or set replace_all to true. Nothing was changed.", "ambiguous")
    updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
    try:
        atomic_write(path, updated.encode("utf-8"))
    except OSError as exc:
        raise Refusal(500, f"could not write {path}: {exc.strerror or exc}. The original file is unchanged.",
                      "write_failed") from exc
    first = starts[0]
    lines = updated.split("\n")
    lo, hi = max(first - 2, 1), min(first + new.count("\n") + 2, len(lines), first + 20)
    return {"path": path, "replacements": count, "first_line": first,
            "snippet": numbered([line[:MAX_LINE_CHARS] for line in lines[lo - 1:hi]], lo),
            "warnings": python_warnings(path, updated), **fingerprint(os.stat(path))}


def _not_found(path: str, text: str, old: str) -> str:
    message = f"old_str was not found in {path} (the match must be exact, whitespace included)."
    probe = next((line.strip() for line in old.split("\n") if line.strip()), "")
    lines = text.split("\n")
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(probe)
    scored = []
    for i, line in enumerate(lines[:20000]):
        if line.strip():
            matcher.set_seq1(line.strip())
            if matcher.quick_ratio() >= 0.5:
                scored.append((matcher.ratio(), -i))
    close = sorted(-neg for ratio, neg in sorted(scored, reverse=True)[:2] if ratio >= 0.5)
    if not close:
        return message + " Read the file again and copy the text exactly."
    parts = [message, "The closest text in the file:"]
    parts += [numbered([line[:MAX_LINE_CHARS] for line in lines[i:i + 3]], i + 1) for i in close]
    return "\n".join(parts + ["Read the file around those lines and copy the text exactly."])
