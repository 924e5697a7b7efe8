"""Who may widen what the agent is allowed to do: the user, and only the user.

The permission-bearing settings - the approval mode, the YOLO cap, ``confirm_cpu_jobs``, the
always allow/deny rules, ``pass_env`` and the MCP servers (each entry with its ``approval``:
``auto`` is trust) - decide what runs without asking. They live in the user's config file,
which the agent cannot write without an approval that says what changes (agent/protected.py).
But a file can also change by hand, through another program, or through a shell command that
hid the path from that check. So the app keeps the settings it last saw with the user's
consent in ``<data dir>/permissions.json`` (written only by the app: at a start, when the
user accepts a change, and when the app saves a setting the user asked for) and compares the
config file with them at every start:

* narrowing (a deny rule added, an allow rule removed, the cap lowered, ...) applies at once
  and is remembered;
* widening is shown and asked about in the app, which runs with the remembered settings
  until the user accepts; a headless run ignores it with a warning on stderr, unless
  ``--yolo`` is on its command line (it then applies for that run, said on stderr, and is not
  remembered).

A first start with no record remembers the file as it is (trust on first use). A record that
cannot be read, or whose digest does not match its settings, is not trusted: the defaults
stand in for it, so everything beyond them counts as a widening.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from agent.config import PERMISSIONS_FILE, Config, ConfigError, config_path, data_dir, edit_config
from agent.protocol import ApprovalRule

log = logging.getLogger(__name__)

STORE_FILE = PERMISSIONS_FILE
#: the config keys that say what runs without asking (as written in the file)
KEYS = ("approval_mode", "yolo_cap_usd", "confirm_cpu_jobs", "approval_rules", "project_approval_rules",
        "pass_env", "mcpServers")
_MODE_RANK = {"ask": 0, "auto": 1, "yolo": 2}
#: MCP entry keys that do not widen anything when they change
_MCP_HARMLESS = frozenset({"timeout", "description"})

Settings = dict[str, Any]


# --------------------------------------------------------------------------- the settings


def _rule(rule: ApprovalRule | dict[str, Any]) -> dict[str, Any]:
    if not isinstance(rule, ApprovalRule):
        rule = ApprovalRule.model_validate(rule)
    return rule.model_dump(include={"effect", "tool", "operation", "pattern"}, exclude_none=True)


def _sorted_unique(items: list[Any]) -> list[Any]:
    seen: dict[str, Any] = {}
    for item in items:
        seen.setdefault(json.dumps(item, sort_keys=True), item)
    return [seen[key] for key in sorted(seen)]


def settings_of(config: Config) -> Settings:
    """The permission-bearing settings of ``config``, in one canonical form (equal settings
    compare equal and have the same digest)."""
    return {
        "approval_mode": config.approval_mode,
        "yolo_cap_usd": float(config.yolo_cap_usd),
        "confirm_cpu_jobs": bool(config.confirm_cpu_jobs),
        "approval_rules": _sorted_unique([_rule(r) for r in config.approval_rules]),
        "project_approval_rules": {root: _sorted_unique([_rule(r) for r in rules])
                                   for root, rules in sorted(config.project_approval_rules.items()) if rules},
        "pass_env": sorted(set(config.pass_env)),
        "mcpServers": json.loads(json.dumps(config.mcp_servers, sort_keys=True)),
    }


def settings_from_raw(raw: dict[str, Any]) -> Settings:
    """Settings from the config file's shape (``raw`` holds some of ``KEYS``, as written)."""
    try:
        return settings_of(Config.model_validate({k: raw[k] for k in KEYS if k in raw}))
    except Exception as exc:
        raise ConfigError(f"the permission settings are not valid: {exc}") from exc


def digest(settings: Settings) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode("utf-8")).hexdigest()


def apply_settings(config: Config, settings: Settings, *, keep_cap: bool = False) -> Config:
    """``config`` with ``settings`` for its permission-bearing keys (``keep_cap``: the cap given
    on the command line stays)."""
    update: dict[str, Any] = {
        "approval_mode": settings["approval_mode"],
        "confirm_cpu_jobs": settings["confirm_cpu_jobs"],
        "approval_rules": [ApprovalRule.model_validate(r) for r in settings["approval_rules"]],
        "project_approval_rules": {root: [ApprovalRule.model_validate(r) for r in rules]
                                   for root, rules in settings["project_approval_rules"].items()},
        "pass_env": list(settings["pass_env"]),
        "mcp_servers": copy.deepcopy(settings["mcpServers"]),
    }
    if not keep_cap:
        update["yolo_cap_usd"] = settings["yolo_cap_usd"]
    return config.model_copy(update=update)


# --------------------------------------------------------------------------- narrower and wider


def _narrow_rules(old: list[dict], new: list[dict]) -> list[dict]:
    """Allow rules both have; deny rules either has (a removed deny rule is a widening)."""
    allow = [r for r in new if r["effect"] == "allow" and r in old]
    deny = [r for r in old + new if r["effect"] == "deny"]
    return _sorted_unique(allow + deny)


def _names(value: Any) -> set[str] | None:
    return {v for v in value if isinstance(v, str)} if isinstance(value, list) else None


def _server_within(old: Any, new: Any) -> bool:
    """Whether MCP entry ``new`` lets its server do no more than ``old`` did: the same server,
    at most disabled, ``approval`` back to ask, more tools denied, fewer allowed."""
    if old == new:
        return True
    if not isinstance(old, dict) or not isinstance(new, dict):
        return False
    for key in (set(old) | set(new)) - _MCP_HARMLESS - {"enabled", "approval", "allow", "deny"}:
        if old.get(key) != new.get(key):
            return False
    if old.get("enabled", True) is False and new.get("enabled", True) is not False:
        return False
    if new.get("approval", "ask") == "auto" and old.get("approval", "ask") != "auto":
        return False
    old_deny, new_deny = _names(old.get("deny") or []), _names(new.get("deny") or [])
    if old_deny is None or new_deny is None or not old_deny <= new_deny:
        return False
    if new.get("allow") is None:
        return old.get("allow") is None
    new_allow, old_allow = _names(new["allow"]), _names(old.get("allow"))
    return new_allow is not None and (old.get("allow") is None or (old_allow is not None and new_allow <= old_allow))


def narrowest(old: Settings, new: Settings) -> Settings:
    """What both allow: never more than ``old`` (what the user agreed to) nor than ``new``."""
    projects = {}
    for root in sorted(set(old["project_approval_rules"]) | set(new["project_approval_rules"])):
        rules = _narrow_rules(old["project_approval_rules"].get(root, []), new["project_approval_rules"].get(root, []))
        if rules:
            projects[root] = rules
    servers = {}
    for name, entry in new["mcpServers"].items():
        if name in old["mcpServers"]:
            servers[name] = entry if _server_within(old["mcpServers"][name], entry) else old["mcpServers"][name]
    return {
        "approval_mode": min(old["approval_mode"], new["approval_mode"], key=lambda m: _MODE_RANK.get(m, 0)),
        "yolo_cap_usd": min(old["yolo_cap_usd"], new["yolo_cap_usd"]),
        "confirm_cpu_jobs": old["confirm_cpu_jobs"] or new["confirm_cpu_jobs"],
        "approval_rules": _narrow_rules(old["approval_rules"], new["approval_rules"]),
        "project_approval_rules": projects,
        "pass_env": sorted(set(old["pass_env"]) & set(new["pass_env"])),
        "mcpServers": servers,
    }


def _rule_words(rule: dict[str, Any]) -> str:
    from agent.rules import label

    return f"always {rule['effect']} {label(ApprovalRule.model_validate(rule))}"


def _server_words(entry: Any) -> str:
    if not isinstance(entry, dict):
        return "(not a valid entry)"
    target = entry.get("url") or " ".join(str(p) for p in [entry.get("command") or "?", *(entry.get("args") or [])])
    approval = "its tools run without asking" if entry.get("approval") == "auto" else "its tools ask"
    return f"{target} ({approval})"


def describe_changes(old: Settings, new: Settings) -> tuple[list[str], list[str]]:
    """(widenings, narrowings) from ``old`` to ``new``, one sentence each."""
    wider: list[str] = []
    narrower: list[str] = []

    def put(is_wider: bool, text: str) -> None:
        (wider if is_wider else narrower).append(text)

    a, b = old["approval_mode"], new["approval_mode"]
    if a != b:
        why = {"yolo": " (gated calls run without asking, within the YOLO cap)",
               "auto": " (only the usual gates ask)", "ask": " (every command and outside write asks)"}
        put(_MODE_RANK.get(b, 0) > _MODE_RANK.get(a, 0), f"approval mode {a} → {b}{why.get(b, '')}")
    a, b = old["yolo_cap_usd"], new["yolo_cap_usd"]
    if a != b:
        put(b > a, f"YOLO cap ${a:,.2f} → ${b:,.2f}")
    if old["confirm_cpu_jobs"] != new["confirm_cpu_jobs"]:
        put(not new["confirm_cpu_jobs"], "confirm_cpu_jobs " + (
            "on → off (CPU jobs start without asking)" if old["confirm_cpu_jobs"] else "off → on (CPU jobs ask)"))

    def rules(before: list[dict], after: list[dict], where: str) -> None:
        for rule in after:
            if rule not in before:
                put(rule["effect"] == "allow", f"new rule{where}: {_rule_words(rule)}")
        for rule in before:
            if rule not in after:
                put(rule["effect"] == "deny", f"rule removed{where}: {_rule_words(rule)}")

    rules(old["approval_rules"], new["approval_rules"], "")
    for root in sorted(set(old["project_approval_rules"]) | set(new["project_approval_rules"])):
        rules(old["project_approval_rules"].get(root, []), new["project_approval_rules"].get(root, []),
              f" for the project {root}")
    for name in new["pass_env"]:
        if name not in old["pass_env"]:
            put(True, f"pass_env: {name} now reaches bash and local jobs")
    for name in old["pass_env"]:
        if name not in new["pass_env"]:
            put(False, f"pass_env: {name} no longer reaches bash and local jobs")
    for name, entry in new["mcpServers"].items():
        before = old["mcpServers"].get(name)
        if before is None:
            put(True, f"new MCP server {name}: {_server_words(entry)}")
        elif before != entry:
            within = _server_within(before, entry)
            put(not within, f"MCP server {name} {'narrowed' if within else 'changed'}: {_server_words(before)} → "
                            f"{_server_words(entry)}")
    for name in old["mcpServers"]:
        if name not in new["mcpServers"]:
            put(False, f"MCP server {name} removed")
    return wider, narrower


# --------------------------------------------------------------------------- the record


class PermissionStore:
    """``<data dir>/permissions.json``: per config file, the settings the user agreed to and
    their digest. Written only by the app (the data dir is a protected place for the agent)."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / STORE_FILE

    def _load_all(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return data if isinstance(data, dict) else {"files": None}

    def load(self, config_file: Path) -> Settings | None:
        """The remembered settings for ``config_file``; None when there is no record. Raises
        ValueError when the record cannot be trusted (unreadable, or its digest does not match)."""
        try:
            data = self._load_all()
        except (OSError, ValueError) as exc:
            raise ValueError(f"{self.path} cannot be read ({exc})") from exc
        files = data.get("files", {})
        if not isinstance(files, dict):
            raise ValueError(f"{self.path} is not a record of permissions")
        entry = files.get(str(config_file))
        if entry is None:
            return None
        settings = entry.get("settings") if isinstance(entry, dict) else None
        if not isinstance(settings, dict) or entry.get("digest") != digest(settings):
            raise ValueError(f"the record for {config_file} in {self.path} does not match its digest")
        try:
            return settings_from_raw(settings)
        except ConfigError as exc:
            raise ValueError(f"the record for {config_file} in {self.path} is not valid ({exc})") from exc

    def save(self, config_file: Path, settings: Settings) -> None:
        try:
            data = self._load_all()
        except (OSError, ValueError):
            data = {}
        files = data.get("files") if isinstance(data.get("files"), dict) else {}
        files[str(config_file)] = {"digest": digest(settings), "settings": settings, "saved_at": time.time()}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "files": files}, f, indent=1, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def remember_app_edit(change: Callable[[dict[str, Any]], None], config_file: Path,
                      store: PermissionStore | None = None) -> None:
    """The app saves a setting the user asked for (an "always allow" rule, ``mlintern mcp
    add``, ...): the same change is made to the remembered settings, so the next start does
    not ask about it - and a widening made by hand meanwhile is still asked about."""
    store = store or PermissionStore()
    try:
        remembered = store.load(config_file)
    except ValueError:
        return  # not trusted: the next start compares with the defaults anyway
    if remembered is None:
        return  # nothing remembered yet: the next start remembers the file as it is
    raw = copy.deepcopy(remembered)
    try:
        change(raw)
        updated = settings_from_raw(raw)
    except Exception:  # the next start asks about it instead
        log.debug("could not remember the app's own change to %s", config_file, exc_info=True)
        return
    if updated != remembered:
        store.save(config_file, updated)


# --------------------------------------------------------------------------- at a start


@dataclass
class PermissionReview:
    """The config file's permission settings against what the user agreed to, at a start."""

    config_file: Path
    #: the settings as written in the file
    current: Settings
    #: what the user agreed to (narrowing already applied)
    remembered: Settings
    #: widenings and narrowings since, in words
    wider: list[str] = field(default_factory=list)
    narrower: list[str] = field(default_factory=list)
    #: something the user should hear (the record could not be trusted or written)
    note: str = ""
    #: the YOLO cap came from the command line (``--budget``): not the file's, not compared
    cli_cap: bool = False
    store: PermissionStore = field(default_factory=PermissionStore)

    @property
    def widened(self) -> bool:
        return bool(self.wider)

    def safe_config(self, config: Config) -> Config:
        """``config`` with what the user agreed to where the file widened it."""
        return apply_settings(config, self.remembered, keep_cap=self.cli_cap) if self.widened else config

    def accept(self) -> None:
        """The user agreed to the file's settings: they are remembered. Raises OSError."""
        self.store.save(self.config_file, self.current)
        self.remembered = self.current

    def keep(self) -> str | None:
        """The user keeps what they agreed to: the file's permission settings are put back to
        it (everything else in the file stays as written). Returns why that failed, if it did."""
        kept = self.remembered
        changed = [k for k in KEYS if self.current.get(k) != kept.get(k)]

        def put_back(raw: dict[str, Any]) -> None:
            for key in changed:
                raw[key] = copy.deepcopy(kept[key])

        try:
            edit_config("the permission settings you kept", put_back, self.config_file)
        except ConfigError as exc:
            return str(exc)
        return None


def _save(store: PermissionStore, config_file: Path, settings: Settings) -> str:
    try:
        store.save(config_file, settings)
    except OSError as exc:
        return (f"The permissions you agreed to could not be remembered in {store.path} ({exc.strerror or exc}); "
                "this run uses them, the next start compares with the old record.")
    return ""


def review_permissions(config: Config, *, config_file: Path | None = None, store: PermissionStore | None = None,
                       cli_cap: bool = False) -> PermissionReview:
    """Compare ``config`` (loaded from ``config_file``) with what the user agreed to. Narrowing
    is remembered at once; a first start remembers the file as it is. ``cli_cap``: the YOLO
    cap was given on the command line. A record that cannot be written is said in ``note``."""
    config_file = (config_file or config_path()).expanduser().absolute()
    store = store or PermissionStore()
    current = settings_of(config)
    note = ""
    try:
        remembered = store.load(config_file)
    except ValueError as exc:
        remembered = settings_of(Config())
        note = (f"The record of the permissions you agreed to cannot be trusted ({exc}); everything beyond the "
                "defaults counts as new.")
    if remembered is None:
        note = _save(store, config_file, current)
        return PermissionReview(config_file, current, current, note=note, cli_cap=cli_cap, store=store)
    if cli_cap:
        current = {**current, "yolo_cap_usd": remembered["yolo_cap_usd"]}
    safe = narrowest(remembered, current)
    if safe != remembered or note:
        note = " ".join(filter(None, [note, _save(store, config_file, safe)]))  # narrowing applies at once
    wider, _ = describe_changes(safe, current)
    _, narrowed = describe_changes(remembered, safe)
    return PermissionReview(config_file, current, safe, wider, narrowed, note, cli_cap, store)
