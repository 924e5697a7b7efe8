"""Where things live and what the user configured.

``MLINTERN_HOME`` relocates everything (data and config) into one directory, which is what
tests use. Otherwise data goes to the XDG data dir and config to the XDG config dir.

The config file is JSON with ``${VAR}`` / ``${VAR:-default}`` substitution, deep-merged over
the defaults below. A broken file is reported with one clear sentence (path, line, column)
and never overwritten.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from agent.cache_files import read_json, write_json

if TYPE_CHECKING:
    from agent.config_schema import Config, LLMSettings


#: set by ``--budget``: the YOLO cap for this run, over the config file
BUDGET_ENV = "MLINTERN_BUDGET_USD"
#: in the data dir: the permission settings the user agreed to (agent/permissions.py)
PERMISSIONS_FILE = "permissions.json"


class ConfigError(Exception):
    """The config file cannot be used; the message says what to fix."""


def __getattr__(name: str) -> Any:
    # the schema (pydantic) loads when a module first asks for it, not with the paths and files
    if name in ("Config", "LLMSettings"):
        from agent import config_schema

        return getattr(config_schema, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def data_dir() -> Path:
    home = os.environ.get("MLINTERN_HOME")
    if home:
        return Path(home).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mlintern"


def config_path() -> Path:
    explicit = os.environ.get("MLINTERN_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    home = os.environ.get("MLINTERN_HOME")
    if home:
        return Path(home).expanduser() / "config.json"
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "mlintern" / "config.json"


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def substitute_env(value: Any, env: dict[str, str] | None = None) -> Any:
    env = os.environ if env is None else env

    def sub(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(f"config refers to ${{{name}}}, which is not set; set it or write ${{{name}:-default}}")

        return _VAR.sub(one, text)

    if isinstance(value, str):
        return sub(value)
    if isinstance(value, list):
        return [substitute_env(v, env) for v in value]
    if isinstance(value, dict):
        return {k: substitute_env(v, env) for k, v in value.items()}
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def budget_override(env: dict[str, str] | None = None) -> float | None:
    """The cap ``--budget`` set for this run, if any."""
    raw = (os.environ if env is None else env).get(BUDGET_ENV, "").strip()
    if not raw:
        return None
    try:
        value = float(raw.lstrip("$"))
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        raise ConfigError(f"the budget must be a dollar amount of 0 or more, e.g. --budget 2.50 (got {raw!r})")
    return value


def load_config(path: Path | None = None) -> Config:
    config = _load_file(path or config_path())
    cap = budget_override()
    if cap is not None:
        config.yolo_cap_usd = cap
    return config


#: a config file bigger than this is not read (a link to /dev/zero, a log written by mistake)
MAX_CONFIG_BYTES = 4_000_000


def _read_config_text(path: Path, what: str) -> str | None:
    """The file's text, or None when there is none; ConfigError for anything that is not a
    small regular UTF-8 file (a FIFO would hang, /dev/zero never ends)."""
    import stat as stat_module

    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"{what}{path} cannot be read: {exc.strerror or exc}") from exc
    if not stat_module.S_ISREG(st.st_mode):
        raise ConfigError(f"{what}{path} is not a regular file (a pipe, device or directory); replace it with a JSON file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{what}{path} is {st.st_size:,} bytes, over the {MAX_CONFIG_BYTES:,}-byte limit for a config file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{what}{path} cannot be read: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what}{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from exc


def _parse_json(text: str, path: Path, what: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{what}{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "fix it or move it away to start with defaults"
        ) from exc
    except RecursionError as exc:
        raise ConfigError(f"{what}{path} nests too deeply to be a config file") from exc


def _load_file(path: Path) -> Config:
    return config_from_text(_read_config_text(path, "config file "), path)


def config_from_text(raw_text: str | None, path: Path) -> Config:
    """The settings a config file with this text holds (defaults for none); ConfigError says
    what is wrong with it."""
    from pydantic import ValidationError

    from agent.config_schema import Config

    if raw_text is None or not raw_text.strip():
        return Config()
    raw = _parse_json(raw_text, path, "config file ")
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must hold a JSON object, not {type(raw).__name__}")
    # MCP server entries are substituted one by one when they start (agent/mcp/config.py): a
    # ${VAR} one of them lacks breaks that server, said as such, not the whole config
    servers = raw.pop("mcpServers", None)
    merged = deep_merge(Config().model_dump(by_alias=True), substitute_env(raw))
    if servers is not None:
        merged["mcpServers"] = servers
    try:
        return Config.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
        )
        raise ConfigError(f"config file {path} has invalid settings: {problems}") from exc


def save_config_value(key: str, value: Any, path: Path | None = None) -> None:
    """Set one top-level key in the config file, keeping everything else as written
    (including ``${VAR}`` references). A file we cannot parse is left untouched."""
    edit_config(key, lambda raw: raw.__setitem__(key, value), path)


def edit_config(what: str, change: Callable[[dict[str, Any]], None], path: Path | None = None) -> Path:
    """Read the config file as written, let ``change`` edit that dict, write it back
    atomically. ``what`` names the edit in error messages. A file we cannot parse is left
    untouched."""
    path = path or config_path()
    import fcntl
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_name(path.name + ".lock"), "a+")
    except OSError as exc:
        raise ConfigError(f"could not save {what} to {path}: {exc.strerror or exc}") from exc
    with lock:
        # one writer at a time, and each starts from the file as it is now: two processes
        # saving rules both keep their change (no lost update, no half-written file)
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        text = _read_config_text(path, f"not saving {what}: config file ")
        try:
            raw: Any = json.loads(text) if text and text.strip() else {}
        except (json.JSONDecodeError, RecursionError) as exc:
            detail = "it nests too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ConfigError(f"not saving {what}: config file {path} cannot be read as JSON ({detail})") from exc
        if not isinstance(raw, dict):
            raise ConfigError(f"not saving {what}: config file {path} does not hold a JSON object")
        # the app writes the config only for the user (a rule they chose, a server they added): the
        # change is agreed to, and the next start does not ask about it (agent/permissions.py). Made
        # first, so what ``change`` notes about the file (a server existed) is the file's, not the record's
        from agent.permissions import remember_app_edit

        try:
            remember_app_edit(change, path.expanduser().absolute())
        except OSError:
            pass  # the next start asks about the change instead
        change(raw)
        tmp = None
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(json.dumps(raw, indent=2) + "\n")
                f.flush()
                os.fsync(f.fileno())
            if path.exists():
                os.chmod(tmp, path.stat().st_mode & 0o777)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            raise ConfigError(f"could not save {what} to {path}: {exc.strerror or exc}") from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
    return path


# --------------------------------------------------------------------------- the first frame's settings
#
# Reading the file through its schema means importing pydantic and building the models, ~0.1 s
# of the ~0.4 s the app takes to its first frame. The few settings that frame is drawn with are
# kept from the last start (``remember_early_settings``) with a key of everything that made
# them: the file's text, the variables it refers to, the --budget cap, the source of the
# ``agent`` package (the schema and its validators) with pydantic's version, and the
# permission record. When the key still matches, the app draws its first frame with them
# and reads the file for real just after; when anything changed, it reads the file first, as
# it always did. No secrets are kept: only these fields, in a file only the user can read.

#: what the app's first frame is drawn with: (setting, the values it may have)
EARLY_FIELDS: dict[str, tuple[type, ...] | tuple[str, ...]] = {
    "model": (str, type(None)),
    "theme": (str, type(None)),
    "approval_mode": ("ask", "auto", "yolo"),
    "yolo_cap_usd": (int, float),
    "wake_on_job_end": (bool,),
    "cursor_blink": (bool,),
    "local_echo": (bool,),
    "frame_pacing": (bool,),
    "llm_transport": ("auto", "litellm", "direct"),  # config.llm.transport
    "hf_router": (str, type(None)),  # config.endpoints["hf_router"], when set
}
EARLY_FILE = "first-frame.json"
#: the two kept from deeper in the config: how each is read from it
_NESTED: dict[str, Callable[[Any], Any]] = {
    "llm_transport": lambda config: config.llm.transport,
    "hf_router": lambda config: (config.endpoints or {}).get("hf_router"),
}


class _EarlyLLM:
    def __init__(self, transport: str):
        self.transport = transport


class EarlySettings:
    """The settings the app's first frame is drawn with, as the config file gave them at an
    earlier start (``early_settings``). Only those: asking for any other is a bug, and raises
    rather than deciding anything on a setting that was not read."""

    def __init__(self, values: dict[str, Any]):
        self._values = {name: values[name] for name in EARLY_FIELDS if name not in _NESTED}
        self.llm = _EarlyLLM(values["llm_transport"])
        self.endpoints = {"hf_router": values["hf_router"]} if values["hf_router"] else {}

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("_values", {})
        if name in values:
            return values[name]
        raise AttributeError(f"the setting {name!r} is not known before the config file is read "
                             "(agent.config.EarlySettings holds only the first frame's)")


def _early_path() -> Path:
    return data_dir() / "cache" / EARLY_FILE


def _early_key(path: Path, text: str | None) -> str:
    import hashlib

    def stamp(file: Path) -> str:
        try:
            st = file.stat()
        except OSError:
            return "-"
        return f"{st.st_size}:{st.st_mtime_ns}"

    env = os.environ
    names = sorted({m.group(1) for m in _VAR.finditer(text or "")})
    parts = [
        "1",
        str(path.expanduser().absolute()),
        "\0none" if text is None else text,
        env.get(BUDGET_ENV, ""),
        *(f"{name}={env[name]}" if name in env else f"{name}\0unset" for name in names),
        _package_stamp(),
        stamp(data_dir() / PERMISSIONS_FILE),
    ]
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _package_stamp() -> str:
    from agent.tools.lazy import fingerprint_once  # every file of the package, and pydantic's version

    return fingerprint_once()


def _early_values(config: Any) -> dict[str, Any]:
    return {name: _NESTED[name](config) if name in _NESTED else getattr(config, name) for name in EARLY_FIELDS}


def _well_formed(values: Any) -> bool:
    if not isinstance(values, dict):
        return False
    for name, allowed in EARLY_FIELDS.items():
        if name not in values:
            return False
        value = values[name]
        if isinstance(allowed[0], str):
            if value not in allowed:
                return False
        elif not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            return False
    cap = values["yolo_cap_usd"]
    return 0 <= cap < float("inf")


def early_settings(path: Path | None = None) -> EarlySettings | None:
    """The first frame's settings as the config file gave them when the app last started with
    it unchanged (and with nothing else they depend on changed); None otherwise. ~1 ms, no
    pydantic. The caller still reads the file with ``load_config`` (that is what counts)."""
    path = path or config_path()
    try:
        text = _read_config_text(path, "")
        data = read_json(_early_path())
    except (ConfigError, OSError):
        return None
    if not (isinstance(data, dict) and data.get("key") == _early_key(path, text) and _well_formed(data.get("settings"))):
        return None
    return EarlySettings(data["settings"])


def config_key(path: Path | None = None) -> str | None:
    """The key the early-settings record is kept under, for the config file (and everything
    else it depends on) as it is now; None when the file cannot be read. What else is kept
    from the last start (the first frame itself, mlintern_tui/instant_frame.py) checks it."""
    path = path or config_path()
    try:
        return _early_key(path, _read_config_text(path, ""))
    except (ConfigError, OSError):
        return None


def remember_early_settings(config: Any, path: Path | None = None) -> bool:
    """Keep ``config``'s first-frame settings (the ones in force, as the app runs with them)
    for the next start with this file as it is now. False when they could not be written,
    which costs the next start ~0.1 s and nothing else."""
    path = path or config_path()
    try:
        text = _read_config_text(path, "")
        record = {"key": _early_key(path, text), "settings": _early_values(config)}
        target = _early_path()
    except (ConfigError, OSError):
        return False
    if "@" in (record["settings"]["hf_router"] or ""):  # credentials in the URL: not written anywhere
        return False
    if read_json(target) == record:
        return True
    return write_json(target, record)
