"""Places that hold the user's safeguards: the agent changes them only with an approval that
says what changes, in every mode (YOLO and "always allow" rules included), like a scheduled job.

* mlintern's config file(s) and config directory: the approval mode, the YOLO cap, the rules,
  ``pass_env``, the MCP servers;
* the data dir: the session store, the permissions the user agreed to, MCP trust, job logs,
  spill files (the demo model's scratch directory excepted);
* the project's ``.mcp.json``: the servers it lists run as commands once trusted;
* the user's shell start-up files (``.bashrc``, ``.profile``, ``.zshrc``, ...): a line there
  runs in every shell the user opens.

``write`` and ``edit`` ask with the change on the card: for the config file, which permission
settings it widens or narrows, in words, and the lines it changes. A ``bash`` command, or a
local job's code, that names one of them asks too, unless it is one read-only command (cat,
grep, tail, ...). That check reads the command's text, so it is best effort: a path put
together at run time is not seen. What the agent's processes can reach at all is the
sandbox's business; a widening that gets through anyway is asked about at the next start
(agent/permissions.py). The user's own edits are not affected.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from agent.config import ConfigError, config_from_text, config_path, data_dir

if TYPE_CHECKING:
    from agent.tools.router import ParsedCall

PlaceKind = Literal["config", "data", "mcp", "shell"]
#: the user's shell start-up files, relative to their home (zsh's also to ZDOTDIR)
SHELL_FILES = (".bashrc", ".bash_profile", ".bash_login", ".bash_logout", ".profile", ".zshrc", ".zshenv",
               ".zprofile", ".zlogin", ".zlogout", ".kshrc", ".mkshrc", ".cshrc", ".tcshrc", ".login",
               ".config/fish/config.fish", ".config/fish/conf.d")
#: commands that only read: naming a protected place in one of them (alone) does not ask
READ_ONLY = frozenset({"cat", "head", "tail", "less", "more", "grep", "egrep", "fgrep", "rg", "wc", "ls", "stat",
                       "file", "du", "diff", "cmp", "md5sum", "sha1sum", "sha256sum", "realpath", "readlink"})
#: variables that name mlintern's own places
ENV_NAMES = ("MLINTERN_HOME", "MLINTERN_CONFIG")
DEMO_WORKSPACE = "demo-workspace"
#: how much of a file the card's diff reads, and how many diff lines it shows
DIFF_READ_BYTES = 256_000
DIFF_LINES = 24


@dataclass(frozen=True)
class Place:
    path: Path
    what: str
    kind: PlaceKind
    #: everything below ``path`` too
    tree: bool = False


def _resolved(path: Path) -> Path:
    from agent.tools.files import resolve_path

    return resolve_path(str(path), Path.cwd())


def places(cwd: Path) -> list[Place]:
    home = Path.home()
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "mlintern"
    out = [
        Place(_resolved(config_path()),
              "mlintern's config file (approval mode, YOLO cap, rules, pass_env, MCP servers)", "config"),
        Place(_resolved(xdg), "mlintern's config directory", "config", tree=True),
        Place(_resolved(data_dir()), "mlintern's data dir (sessions, the permissions you agreed to, MCP trust, job "
              "logs, spill files)", "data", tree=True),
        Place(_resolved(cwd / ".mcp.json"), "this project's MCP server list (.mcp.json: its commands run once "
              "trusted)", "mcp"),
    ]
    homes = {home, Path(os.environ.get("ZDOTDIR") or home)}
    for base in homes:
        for name in SHELL_FILES:
            out.append(Place(_resolved(base / name), f"your shell start-up file {name} (it runs in every shell you "
                             "open)", "shell", tree=name.endswith(".d")))
    return out


def place_of(path: Path, cwd: Path) -> Place | None:
    """The protected place ``path`` (resolved) is or is in, if any."""
    for place in places(cwd):
        if path == place.path or (place.tree and path.is_relative_to(place.path)):
            if place.kind == "data" and path.is_relative_to(place.path / DEMO_WORKSPACE):
                continue  # the demo model's scratch files, nothing of the user's
            return place
    return None


# --------------------------------------------------------------------------- write and edit


def _read_text(path: Path) -> tuple[str | None, str]:
    """(the file's text, "") or (None, why it cannot be shown)."""
    try:
        with open(path, "rb") as f:
            data = f.read(DIFF_READ_BYTES + 1)
    except FileNotFoundError:
        return "", ""
    except OSError as exc:
        return None, f"it cannot be read ({exc.strerror or exc})"
    if b"\0" in data[:8192]:
        return None, "it is a binary file"
    if len(data) > DIFF_READ_BYTES:
        return None, f"it is over {DIFF_READ_BYTES:,} bytes"
    return data.decode("utf-8", "replace"), ""


def _new_text(call: ParsedCall, old: str) -> tuple[str | None, str]:
    params = call.params
    if call.name == "write":
        return params.content, ""
    from agent.tools.edit import apply_spans, find_matches

    match = find_matches(old, params.old_str, params.new_str)
    if match is None or (len(match.spans) > 1 and not params.replace_all):
        return None, "the edit does not match the file exactly once, so it would change nothing"
    return apply_spans(old, match.spans)[0], ""


def _diff(old: str, new: str, name: str) -> str:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), f"{name} (now)", f"{name} (after)",
                                      n=1, lineterm=""))
    if not lines:
        return "The content would stay the same."
    shown = [line if len(line) <= 160 else line[:160] + "…" for line in lines[:DIFF_LINES]]
    more = f"\n… {len(lines) - DIFF_LINES} more diff lines" if len(lines) > DIFF_LINES else ""
    return "The change:\n" + "\n".join(shown) + more


def _permission_change(path: Path, old: str, new: str) -> str:
    from agent.permissions import describe_changes, settings_of

    try:
        before = settings_of(config_from_text(old, path))
    except ConfigError:
        before = None
    try:
        after = settings_of(config_from_text(new, path))
    except ConfigError as exc:
        return f"The new content is not a config mlintern can use ({exc})."
    if before is None:
        return "The file is not a valid config now, so what the new one allows cannot be compared."
    wider, narrower = describe_changes(before, after)
    if not wider and not narrower:
        return "It changes no permission setting."
    parts = []
    if wider:
        parts.append("It WIDENS your permissions:\n" + "\n".join(f"  + {line}" for line in wider))
    if narrower:
        parts.append("It narrows them:\n" + "\n".join(f"  - {line}" for line in narrower))
    return "\n".join(parts)


def write_reason(call: ParsedCall, cwd: Path) -> str | None:
    """Why a ``write`` or ``edit`` of a protected place asks, with what it would change."""
    from agent.tools.files import resolve_path

    raw = getattr(call.params, "path", None)
    if not isinstance(raw, str) or not raw:
        return None
    target = resolve_path(raw, cwd)
    place = place_of(target, cwd)
    if place is None:
        return None
    verb = "writes" if call.name == "write" else "edits"
    head = (f"{call.name} {verb} {target}, {place.what}. The agent changes this only with your approval, in every "
            "mode (YOLO and rules do not cover it).")
    old, unreadable = _read_text(target)
    if old is None:
        return f"{head} What it holds now cannot be shown: {unreadable}."
    new, problem = _new_text(call, old)
    if new is None:
        return f"{head} {problem.capitalize()}."
    parts = [head]
    if place.kind == "config" and target.suffix == ".json":
        parts.append(_permission_change(target, old, new))
    parts.append(_diff(old, new, target.name))
    return "\n".join(parts)


# --------------------------------------------------------------------------- commands


def _needles(place: Place) -> list[str]:
    """Ways a command's text may name ``place``: the path, its part below the home directory
    (which ``~/``, ``$HOME/`` and an absolute path all end with), shell files by their name."""
    found = {str(place.path)}
    home = Path.home()
    if place.path.is_relative_to(home) and place.path != home:
        found.add(str(place.path.relative_to(home)))
    if place.kind in ("shell", "mcp"):
        found.add(place.path.name)
    return sorted(found)


def _pattern(needle: str) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.-])" + re.escape(needle) + r"(?![\w.-])")


def named_places(text: str, cwd: Path) -> list[tuple[Place, str]]:
    """The protected places ``text`` names (each with how it named it)."""
    hits: list[tuple[Place, str]] = []
    for place in places(cwd):
        needles = _needles(place)
        seen = text
        if place.kind == "data":  # the demo's scratch files are no safeguard of the user's
            for needle in needles:
                seen = seen.replace(f"{needle}/{DEMO_WORKSPACE}", "")
        for needle in needles:
            if _pattern(needle).search(seen):
                hits.append((place, needle))
                break
    for name in ENV_NAMES:
        if re.search(r"\b" + name + r"\b", text):
            hits.append((Place(Path(f"${name}"), f"the variable {name} (mlintern's own places)", "data"), name))
    return hits


def _read_only(command: str) -> bool:
    from agent.rules import is_compound

    if is_compound(command):
        return False
    try:
        words = shlex.split(command)
    except ValueError:
        return False
    return bool(words) and os.path.basename(words[0]) in READ_ONLY


def _names_sentence(hits: list[tuple[Place, str]]) -> str:
    return "; ".join(f"{place.what} ({needle})" for place, needle in hits[:3])


def command_reason(command: str, cwd: Path, work_dir: str = "") -> str | None:
    """Why a bash command asks because it names a protected place (or runs in one)."""
    from agent.tools.files import resolve_path

    hits = named_places(command, cwd)
    if work_dir:
        place = place_of(resolve_path(work_dir, cwd), cwd)
        if place is not None and place.tree:
            hits.append((place, f"runs in {work_dir}"))
    if not hits or _read_only(command):
        return None
    return (f"this command names {_names_sentence(hits)}: commands that may change it ask in every mode (YOLO and "
            "rules do not cover them). Found by name in the command's text, so this is best effort.")


def job_reason(params: Any, cwd: Path) -> str | None:
    """Why a job on this machine asks because its code names a protected place."""
    from agent.tools.files import resolve_path

    texts = [str(v) for v in (getattr(params, "script", None), *(getattr(params, "command", None) or []),
                              *(getattr(params, "script_args", None) or []),
                              *(getattr(params, "env", None) or {}).values()) if v]
    script = getattr(params, "script", None)
    if isinstance(script, str) and script.endswith(".py") and "\n" not in script:
        text, _ = _read_text(resolve_path(script, cwd))
        texts.append(text or "")
    hits = named_places("\n".join(texts), cwd)
    if not hits:
        return None
    return (f"this job runs on this machine and its code names {_names_sentence(hits)}: it asks in every mode "
            "(found by name in its text: best effort).")


def protected_reason(call: ParsedCall, cwd: Path) -> str | None:
    """Why ``call`` may change a protected place and so must be put to the user, or None."""
    if call.error or call.params is None:
        return None
    if call.name in ("write", "edit"):
        return write_reason(call, cwd)
    if call.name == "bash":
        params = call.params
        return command_reason(getattr(params, "command", "") or "", cwd, getattr(params, "work_dir", "") or "")
    if call.name == "hf_jobs" and getattr(call.params, "operation", "") in ("run", "scheduled run") \
            and getattr(call.tool, "backend_name", None) in (None, "local"):
        return job_reason(call.params, cwd)
    return None
