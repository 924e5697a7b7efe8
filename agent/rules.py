"""Always-allow / always-deny rules: what a rule's pattern means, matching, the scope the
approval card offers, and keeping rules in the user's config file.

A rule names one tool, optionally one operation, and optionally one pattern over the call's
*subject*, the one argument that says what the call touches:

* ``command`` (bash, sandbox_bash): a command prefix, compared word by word (``git push``
  matches ``git push origin main``, not ``git pushx``). An allow rule only matches a simple
  command: anything with ``; & | < > ( ) ` $(`` or a newline asks, because a prefix cannot
  say what the rest of a compound command does. A deny rule matches if any simple part of
  the command starts with the prefix (after ``sudo``/``env``/``VAR=value`` wrappers).
* ``hardware`` (hf_jobs, sandbox_create): a flavour glob, e.g. ``a10g-large`` or ``cpu-*``.
* ``path`` (read, write, edit and the sandbox file tools): a glob over the absolute path;
  ``*`` also matches ``/``, so ``/data/*`` covers everything below /data.
* ``repo`` (Hub repo tools): a repo id glob.

Rules live in the *user's* config file: ``approval_rules`` for every project and
``project_approval_rules`` keyed by project directory. Never in the project itself: a
cloned repository must not be able to approve its own commands.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from agent.config import Config, edit_config
from agent.protocol import ApprovalRule, RuleScope

SubjectKind = Literal["command", "hardware", "path", "repo"]
USER_KEY = "approval_rules"
PROJECT_KEY = "project_approval_rules"

#: argument name -> subject kind, in the order they are looked for on tools not listed in TOOL_KINDS
_SUBJECT_ARGS: tuple[tuple[str, SubjectKind], ...] = (
    ("command", "command"), ("hardware_flavor", "hardware"), ("hardware", "hardware"),
    ("path", "path"), ("repo_id", "repo"),
)
#: tools whose paths are on this machine, resolved against the working directory
LOCAL_PATH_TOOLS = frozenset({"read", "write", "edit"})
#: the subject kind of each known tool, for labels of rules read from the config
TOOL_KINDS: dict[str, SubjectKind] = {
    "bash": "command", "sandbox_bash": "command", "hf_jobs": "hardware", "sandbox_create": "hardware",
    "read": "path", "write": "path", "edit": "path", "sandbox_read": "path", "sandbox_write": "path",
    "sandbox_edit": "path", "hf_repo_files": "repo", "hf_repo_git": "repo",
}
_COMPOUND = re.compile(r"[;&|<>()`\n]|\$\(")
_SPLIT = re.compile(r"\$\(|[;&|<>()`\n]+")
_WRAPPERS = frozenset({"sudo", "env", "nohup", "time", "nice", "exec", "command", "builtin", "xargs"})
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def operation_of(params: Any) -> str | None:
    op = getattr(params, "operation", None)
    return op if isinstance(op, str) else None


def subject(tool: str, params: Any, cwd: Path) -> tuple[SubjectKind, str] | None:
    """What the call touches, as the rule patterns see it: (kind, value)."""
    known = TOOL_KINDS.get(tool)
    for attr, kind in _SUBJECT_ARGS:
        if known is not None and kind != known:
            continue
        value = getattr(params, attr, None)
        if isinstance(value, str) and value:
            if kind == "path" and tool in LOCAL_PATH_TOOLS:
                from agent.tools.files import resolve_path

                value = str(resolve_path(value, cwd))
            return kind, value
    return None


def _words(text: str) -> list[str] | None:
    try:
        return shlex.split(text)
    except ValueError:  # unbalanced quotes: never a match for an allow rule
        return None


def is_compound(command: str) -> bool:
    return bool(_COMPOUND.search(command))


def _starts_with(words: list[str], prefix: list[str]) -> bool:
    return bool(prefix) and words[: len(prefix)] == prefix


def _unwrapped(words: list[str]) -> list[str]:
    i = 0
    while i < len(words) and (words[i] in _WRAPPERS or _ASSIGNMENT.match(words[i]) or
                              (i and words[i - 1] in _WRAPPERS and words[i].startswith("-"))):
        i += 1
    return words[i:]


def command_matches(effect: str, command: str, prefix: str) -> bool:
    wanted = _words(prefix)
    if not wanted:
        return False
    if effect == "allow":
        words = _words(command)
        return not is_compound(command) and words is not None and _starts_with(words, wanted)
    for part in _SPLIT.split(command):
        words = _words(part) or part.split()
        if _starts_with(words, wanted) or _starts_with(_unwrapped(words), wanted):
            return True
    return False


def matches(rule: ApprovalRule, tool: str, params: Any, cwd: Path) -> bool:
    if rule.tool != tool:
        return False
    if rule.operation is not None and rule.operation != operation_of(params):
        return False
    if rule.pattern is None:
        return True
    found = subject(tool, params, cwd)
    if found is None:
        return False
    kind, value = found
    if kind == "command":
        return command_matches(rule.effect, value, rule.pattern)
    return fnmatch.fnmatchcase(value, rule.pattern)


def label(rule: ApprovalRule) -> str:
    """The rule's scope in words, e.g. ``hf_jobs run on hardware a10g-large``."""
    head = rule.tool + (f" {rule.operation}" if rule.operation else "")
    if rule.pattern is None:
        return f"{head} (any arguments)"
    kind = TOOL_KINDS.get(rule.tool)
    if kind == "command":
        return f'{head} commands starting with "{rule.pattern}"'
    if kind == "hardware":
        text = f"{head} on hardware {rule.pattern}"
        if rule.tool == "sandbox_create":
            text += " (a paid or token-holding sandbox stores your HF token in the Space)"
        return text
    if kind == "path":
        return f"{head} on paths matching {rule.pattern}"
    if kind == "repo":
        return f"{head} on repo {rule.pattern}"
    return f"{head} with an argument matching {rule.pattern}"


def describe(rule: ApprovalRule) -> str:
    where = f" ({rule.scope} rule)" if rule.scope else ""
    return f"always {rule.effect} {rule.label or label(rule)}{where}"


def suggest(tool: str, params: Any, cwd: Path) -> ApprovalRule | None:
    """The narrowest useful "always allow" for this call, or None when none is safe."""
    pattern: str | None = None
    found = subject(tool, params, cwd)
    if found is not None:
        kind, value = found
        if kind == "command":
            words = _words(value)
            if is_compound(value) or not words:
                return None
            prefix = words[:2] if len(words) > 1 and not words[1].startswith("-") else words[:1]
            pattern = shlex.join(prefix)
        elif kind == "path":
            pattern = str(Path(value).parent).rstrip("/") + "/*"
        else:
            pattern = value
    rule = ApprovalRule(effect="allow", tool=tool, operation=operation_of(params), pattern=pattern)
    return rule.model_copy(update={"label": label(rule)})


# --------------------------------------------------------------------------- keeping rules


def _stored(rule: ApprovalRule) -> dict[str, Any]:
    return rule.model_dump(include={"effect", "tool", "operation", "pattern"}, exclude_none=True)


def same_scope(a: ApprovalRule, b: ApprovalRule) -> bool:
    return _stored(a) == _stored(b)


def rules_from_config(config: Config, cwd: Path) -> list[ApprovalRule]:
    """The user's rules plus those of every project directory that contains ``cwd``."""
    out = [r.model_copy(update={"scope": "user", "label": r.label or label(r)}) for r in config.approval_rules]
    for root, rules in config.project_approval_rules.items():
        root_path = Path(root).expanduser()
        if cwd == root_path or cwd.is_relative_to(root_path):
            out += [r.model_copy(update={"scope": "project", "label": r.label or label(r)}) for r in rules]
    return out


def save_rule(rule: ApprovalRule, scope: RuleScope, project: Path, path: Path | None = None) -> Path:
    """Add ``rule`` to the config file (once); the rest of the file is kept as written."""
    entry = _stored(rule)

    def add(raw: dict[str, Any]) -> None:
        if scope == "user":
            listed = list(raw.get(USER_KEY) or [])
            if entry not in listed:
                listed.append(entry)
            raw[USER_KEY] = listed
        else:
            projects = dict(raw.get(PROJECT_KEY) or {})
            listed = list(projects.get(str(project)) or [])
            if entry not in listed:
                listed.append(entry)
            projects[str(project)] = listed
            raw[PROJECT_KEY] = projects

    return edit_config("the rule", add, path)
