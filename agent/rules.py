"""Always-allow / always-deny rules: what a rule's pattern means, matching, the scope the
approval card offers, and keeping rules in the user's config file.

A rule names one tool, optionally one operation, and optionally one pattern over the call's
*subject*, the one argument that says what the call touches:

* ``command`` (bash, sandbox_bash): a command prefix, compared word by word (``git push``
  matches ``git push origin main``, not ``git pushx``). An allow rule only matches a simple
  command: anything with ``; & | < > ( ) ` $(`` or a newline asks, because a prefix cannot
  say what the rest of a compound command does. A deny rule matches if any command the line
  runs starts with the prefix - in any part of it, behind wrappers, named by a path, inside
  ``bash -c``, ``eval``, ``$(...)`` and interpreter strings (agent/bash_deny.py) - and a
  deny on a deleting verb (``rm``, ``rmdir``, ``unlink``, ``shred``) also covers the usual
  indirect ways to delete (``find -delete``, ``python -c "shutil.rmtree(...)"``,
  ``$(echo rm)``, ``base64 -d | sh``, ...). It is best effort (a shell can always hide a
  command): deny rules narrow what an allow or YOLO lets through, while only ask mode puts
  every command in front of a human.
* ``hardware`` (hf_jobs, sandbox_create): a flavour glob, e.g. ``a10g-large`` or ``cpu-*``.
* ``path`` (read, write, edit and the sandbox file tools): a glob over the absolute path
  (``..`` and, on this machine, symlinks resolved); ``*`` also matches ``/``, so ``/data/*``
  covers everything below /data.
* ``repo`` (Hub repo tools): a repo id glob.

Rules live in the *user's* config file: ``approval_rules`` for every project and
``project_approval_rules`` keyed by project directory. Never in the project itself: a
cloned repository must not be able to approve its own commands.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from pathlib import Path
from typing import Any, Literal

from agent.config import Config, ConfigError, edit_config
from agent.protocol import ApprovalRule, RuleScope

SubjectKind = Literal["command", "hardware", "path", "repo"]
USER_KEY = "approval_rules"
PROJECT_KEY = "project_approval_rules"

#: argument name -> subject kind, in the order they are looked for on tools not listed in TOOL_KINDS
_SUBJECT_ARGS: tuple[tuple[str, SubjectKind], ...] = (
    ("command", "command"), ("hardware_flavor", "hardware"), ("hardware", "hardware"),
    ("path", "path"), ("repo_id", "repo"),
)
#: where a relative sandbox path starts (agent.sandbox.client.DEFAULT_WORKDIR)
REMOTE_WORKDIR = "/app"
#: tools whose paths are on this machine, resolved against the working directory
LOCAL_PATH_TOOLS = frozenset({"read", "write", "edit"})
#: the subject kind of each known tool, for labels of rules read from the config
TOOL_KINDS: dict[str, SubjectKind] = {
    "bash": "command", "sandbox_bash": "command", "hf_jobs": "hardware", "sandbox_create": "hardware",
    "read": "path", "write": "path", "edit": "path", "sandbox_read": "path", "sandbox_write": "path",
    "sandbox_edit": "path", "hf_repo_files": "repo", "hf_repo_git": "repo",
}
_COMPOUND = re.compile(r"[;&|<>()`\n]|\$\(")


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
            elif kind == "path":
                # a sandbox path, as the sandbox resolves it: /app/../etc and ../etc are /etc there
                value = "/" + posixpath.normpath(posixpath.join(REMOTE_WORKDIR, value)).lstrip("/")
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


def command_matches(effect: str, command: str, prefix: str) -> bool:
    wanted = _words(prefix)
    if not wanted:
        return False
    if effect == "allow":
        words = _words(command)
        return not is_compound(command) and words is not None and _starts_with(words, wanted)
    from agent import bash_deny  # the shell and interpreter parsers: with the first command a deny rule checks

    return bash_deny.denial(command, wanted) is not None


def command_denial(command: str, prefix: str) -> str | None:
    """None when a deny rule on the command prefix ``prefix`` does not cover ``command``;
    otherwise "" when the command runs the prefix, or the other form the rule covers, in
    words (``find -delete``)."""
    from agent import bash_deny

    wanted = _words(prefix)
    return bash_deny.denial(command, wanted) if wanted else None


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


def denial_reason(rule: ApprovalRule, tool: str, params: Any, cwd: Path) -> str:
    """Why ``rule`` denies this call, for the model and the user: the rule, and the form it
    covers when the command does not name the prefix (``... starting with "rm" (user rule);
    a deny on rm also covers find -delete``)."""
    text = f"denied by the user's rule: {describe(rule)}"
    found = subject(tool, params, cwd)
    if rule.pattern is not None and found is not None and found[0] == "command":
        why = command_denial(found[1], rule.pattern)
        if why:
            text += f"; a deny on {rule.pattern} also covers {why}"
    return text


def deny_note(rule: ApprovalRule) -> str:
    """What "always deny" on ``rule``'s scope covers beyond its prefix, in one sentence
    (shown where the user chooses it), or "" when it is a plain prefix."""
    if TOOL_KINDS.get(rule.tool) != "command" or rule.pattern is None:
        return ""
    from agent import bash_deny

    wanted = _words(rule.pattern) or []
    if not bash_deny.covers_deletion(wanted):
        return ("A deny rule is a prefix of the command words: it also stops the command behind sudo, env, "
                "xargs, a path, bash -c or $(...).")
    others = ", ".join(v for v in bash_deny.DELETERS if v != wanted[0])
    return (f"A deny on {wanted[0]} also stops {others}, find -delete, git clean -f, rsync --delete, "
            "interpreter one-liners that delete files, and commands whose program is only known at run time "
            "($(...), base64 -d | sh); best effort: ask mode and the sandbox are the real guard.")


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

    def listed(value: Any, where: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            # rewriting it would lose what the user wrote there: refuse, and say where to look
            raise ConfigError(f"not saving the rule: {where} in the config file must be a list of rules, "
                              f"not {type(value).__name__}; fix it by hand")
        return list(value)

    def add(raw: dict[str, Any]) -> None:
        if scope == "user":
            rules = listed(raw.get(USER_KEY), USER_KEY)
            if entry not in rules:
                rules.append(entry)
            raw[USER_KEY] = rules
        else:
            projects = raw.get(PROJECT_KEY)
            if projects is not None and not isinstance(projects, dict):
                raise ConfigError(f"not saving the rule: {PROJECT_KEY} in the config file must map project "
                                  f"directories to lists of rules, not {type(projects).__name__}; fix it by hand")
            projects = dict(projects or {})
            rules = listed(projects.get(str(project)), f"{PROJECT_KEY}[{str(project)!r}]")
            if entry not in rules:
                rules.append(entry)
            projects[str(project)] = rules
            raw[PROJECT_KEY] = projects

    return edit_config("the rule", add, path)
