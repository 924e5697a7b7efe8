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
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.protocol import ApprovalRule

#: set by ``--budget``: the YOLO cap for this run, over the config file
BUDGET_ENV = "MLINTERN_BUDGET_USD"


class ConfigError(Exception):
    """The config file cannot be used; the message says what to fix."""


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


class LLMSettings(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    max_attempts: int = Field(6, ge=1, le=20, description="attempts per LLM request, first included")
    backoff_base_s: float = Field(2.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    request_timeout_s: float = Field(600.0, gt=0)
    stall_timeout_s: float = Field(60.0, gt=0, description=(
        "a stream that sends no data for this long is cut and retried (the request timeout bounds the whole call)"))
    max_retry_after_s: float = Field(300.0, ge=0, description="longest Retry-After we honour")
    transport: Literal["auto", "litellm", "direct"] = Field(
        "auto",
        description="auto: stream local servers, the HF router and OPENAI_BASE_URL servers (other than "
        "OpenAI's or Azure's own API) directly, without loading litellm; litellm: always litellm; "
        "direct: also OPENAI_BASE_URL pointing at OpenAI's or Azure's API",
    )


class Config(BaseModel):
    """Settings with their defaults. Unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)

    model: str | None = None
    reasoning_effort: str | None = None
    max_iterations: int = Field(300, description="LLM calls per turn; -1 for no limit")
    approval_mode: Literal["ask", "auto", "yolo"] = "auto"
    yolo_cap_usd: float = Field(5.0, ge=0, description="YOLO budget per session (USD), LLM spend included")
    confirm_cpu_jobs: bool = True
    approval_rules: list[ApprovalRule] = Field(
        default_factory=list, description="always allow/deny rules for every project (see agent/rules.py)")
    project_approval_rules: dict[str, list[ApprovalRule]] = Field(
        default_factory=dict, description="always allow/deny rules per project directory")
    jobs_backend: Literal["auto", "local", "hf"] = Field(
        "auto", description="auto: Hugging Face Jobs when an HF token is set, else local CPU processes")
    compaction_threshold: float = Field(0.9, gt=0.1, le=1.0)
    context_windows: dict[str, int] = Field(default_factory=dict)
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="per-model prices: {input_per_mtok, output_per_mtok[, cache_read_per_mtok]}",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    theme: str | None = None
    cursor_blink: bool = Field(False, description=(
        "blink the prompt's cursor (off: a steady cursor, and an idle app draws nothing at all)"))
    save_sessions: bool = Field(True, description="keep every session in <data dir>/sessions.db for /resume")
    model_titles: bool = Field(
        default_factory=lambda: os.environ.get("MLINTERN_MODEL_TITLES", "1") != "0",
        description="once the first answer starts, ask the model for a short session title (a tiny call, shown as "
        "'title' in /cost); off: the first prompt is the title (default on; MLINTERN_MODEL_TITLES=0 turns it off)")
    wake_on_job_end: bool = Field(
        True, description="when a job the agent started ends while it is idle, start a turn with the news")
    pass_env: list[str] = Field(
        default_factory=list,
        description="credentials (by variable name) that bash and local jobs may see; every other key, token and "
        "secret is left out of their environment")
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="service URLs for mirrors and tests: hub, datasets_server, github_api, arxiv, ar5iv, "
        "semantic_scholar, web_search, hf_router (environment variables win: HF_ENDPOINT, MLINTERN_*_URL, "
        "GITHUB_API_URL, HF_ROUTER_BASE_URL)")
    research_model: str | None = Field(None, description="model for the research sub-agent (default: the main model)")
    research_max_iterations: int = Field(40, ge=1, le=200, description="model calls per research run")
    research_max_tokens: int = Field(500_000, ge=10_000, description=(
        "tokens a research run may use, prompt and completion summed over its calls (it wraps up at 80%; its "
        "context also stays within 80% of the research model's window)"))
    knowledge_cache_ttl_s: float = Field(86_400.0, ge=0, description="the longest a cached papers/docs/API answer is reused (0: never cached)")
    mcp_servers: dict[str, Any] = Field(default_factory=dict, alias="mcpServers")
    messaging: dict[str, Any] = Field(default_factory=dict, description=(
        "Slack destinations for the notify tool and automatic news: enabled, auto_event_types, destinations "
        "(checked at start; see agent/messaging.py)"))
    max_parallel_tools: int = Field(8, ge=1, le=64, description="tool calls of one model reply that run at once")
    doom_loop_pause: bool = Field(True, description=(
        "in the app, a repetition guard pauses the turn and offers remedies (stop, a hint, another model, "
        "continue); headless runs always just tell the model to change approach"))
    share_traces: Literal["off", "private", "public"] = Field("off", description=(
        "upload this session's trace (redacted, after you accept its preview) to {user}/mlintern-sessions"))
    share_traces_preaccepted: bool = Field(False, description="upload without showing the preview first")
    trace_redact_patterns: list[str] = Field(default_factory=list, description="more regular expressions to mask in traces")
    trace_redact_home: bool = Field(True, description="mask your home directory in traces as ~")
    heartbeat_s: float = Field(60.0, gt=0, description="seconds between store flushes and trace uploads")
    terminal_notifications: Literal["auto", "bell", "osc9", "osc777", "off"] = Field("auto", description=(
        "how the app signals an approval waiting or a turn or job ending while the terminal is unfocused: "
        "auto (OSC 777 and OSC 9, then a bell), bell, osc9, osc777, off"))
    local_echo: bool = Field(True, description=(
        "draw a character typed into the prompt at once, from the thread that reads keys, before the "
        "app's loop handles it (the loop draws it again a moment later)"))
    frame_pacing: bool = Field(True, description=(
        "when frames get expensive (a long conversation flooded with tool calls) and no key or click "
        "asked for one, draw the screen less often, so that drawing takes at most a third of the app's time"))

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, value: dict[str, str]) -> dict[str, str]:
        from agent.endpoints import ENDPOINT_DEFAULTS

        unknown = sorted(set(value) - set(ENDPOINT_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown endpoint(s) {', '.join(unknown)}; known: {', '.join(ENDPOINT_DEFAULTS)}")
        for name, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {name} must be an http(s) URL, got {url!r}")
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _known_effort(cls, value: Any) -> str | None:
        from agent.llm.effort import normalise_effort  # no litellm behind it

        return normalise_effort(value)


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
