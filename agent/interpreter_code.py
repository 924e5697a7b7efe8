"""What a string of interpreter code does that a reader of shell commands cares about.

Code handed to python, perl, ruby, node, php, R, awk and the like (``python -c "..."``, a
here-document fed to ``python -``) is read, not run, for three things: the shell commands its
strings hold (``os.system('rm -rf x')``, ``['rm', '-rf', 'x']``), the calls it makes that delete
files (``shutil.rmtree``, ``os.remove``, ``Path.unlink``, ``unlink``, ``fs.rmSync``,
``FileUtils.rm_rf``, ...), and the calls that run a command or code its own arguments build at
run time (``subprocess.run(cmd)``, ``os.system('r' + 'm x')``, ``exec(payload)``).

Language-agnostic and best effort: strings and calls are found by their shape, so a string
that only mentions ``os.remove`` counts, and code that reaches a call through a computed name
(``getattr(os, 'rem' + 'ove')``) does not.
"""

from __future__ import annotations

import bisect
import re
import shlex

#: calls that delete files, in the interpreters' own words
_DELETE_API = re.compile(r"""
    \b(?:shutil\s*\.\s*)?(?:rmtree|remove_tree|removedirs|rimraf|rm_rf|rm_r|rm_f|remove_dir|remove_entry(?:_secure)?)\b
  | \b(?:rm|rmdir|unlink)Sync\b
  | \bos\s*\.\s*(?:remove|unlink|rmdir)\b
  | \bfs(?:\s*\.\s*promises|Promises)?\s*\.\s*(?:rm|rmdir|unlink)\b
  | \b(?:Files?|Dir|FileUtils)\s*(?:\.|::)\s*(?:delete\w*|unlink|rmdir|rm\w*|remove\w*)\b
  | \.\s*(?:unlink|rmdir|rmtree)\s*\(
  | \b(?:unlink|rmdir|file\.remove|Remove-Item)\b\s*[\s("'$@]
  | \bfile\s+delete\b
  | (?<![\w.])rm\s*\(
  | \bfrom\s+(?:os|shutil|pathlib)\s+import\b[^;\n]{0,200}?\b(?:remove|unlink|rmdir|rmtree|removedirs)\b
""", re.X)
#: calls that run a command or code: one whose arguments are not all literals runs what the text cannot show
_SPAWN = re.compile(r"""
    (?:\bos\s*\.\s*(?:system|popen|exec\w*|spawn\w*)|\bsubprocess\s*\.\s*\w+|\bpty\s*\.\s*spawn
      |\bIO\s*\.\s*popen|\bOpen3\s*\.\s*\w+|\b(?:execSync|execFile|execFileSync|spawnSync|spawn|system|popen|Popen
      |shell_exec|passthru|proc_open|eval|exec))\s*\(""", re.X)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r"}
_SPAWN_NAME = re.compile(r"system|popen|Popen|run|call|check_call|check_output|getoutput|getstatusoutput|spawn\w*|exec\w*")
_STATIC_ARGS = re.compile(r"[\s,\[\](){}:]*")
_KEYWORD_ARG = re.compile(r"\b\w+\s*=\s*(?:True|False|None|true|false|nil|-?\d+)\b")


def deletion_call(code: str) -> str | None:
    """The first call in ``code`` that deletes files, as written (``shutil.rmtree``), or None."""
    m = _DELETE_API.search(code)
    return None if m is None else m.group(0).strip(" (\"'$@.")


def _literals(code: str) -> list[tuple[int, int, str, bool]]:
    """The string literals of ``code`` ('...', "...", `...`, with a prefix such as f or rb):
    (start, end, value, built at run time: an f-string with a field). One pass; an
    unterminated string ends the reading."""
    out = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "\\":
            i += 2
            continue
        if c not in "\"'`":
            i += 1
            continue
        j = _string_end(code, i)
        if j is None:
            break
        k = i
        while k > max(0, i - 2) and code[k - 1] in "rRbBuUfF":
            k -= 1
        if k and (code[k - 1].isalnum() or code[k - 1] == "_"):
            k = i  # the end of a name, not a prefix
        body = code[i + 1:j]
        value = re.sub(r"\\(.)", lambda e: _ESCAPES.get(e.group(1), e.group(1)), body, flags=re.S)
        out.append((k, j + 1, value, "f" in code[k:i].lower() and "{" in body))
        i = j + 1
    return out


def _string_end(code: str, i: int) -> int | None:
    """Index of the quote that closes the one at ``i``, or None."""
    quote, j, n = code[i], i + 1, len(code)
    while j < n and code[j] != quote:
        j += 2 if code[j] == "\\" else 1
    return j if j < n else None


def commands_in_code(code: str) -> list[tuple[str, bool]]:
    """Commands the strings of ``code`` may hold, each with whether a shell runs it: each
    string with a space in it (``os.system('rm -rf x')``, ``system("rm " $1)``) - run by a
    shell when it is an argument of a call that runs commands - and each list of strings
    (``['rm', '-rf', 'x']``, ``execFileSync('rm', ['-rf', 'x'])``)."""
    literals = _literals(code)
    run = sorted((start, end) for _, start, end, shell in _spawn_calls(code, literals) if shell)
    run_starts, reach = [a for a, _ in run], []
    for _, end in run:  # how far the arguments of the calls starting so far reach
        reach.append(max(end, reach[-1] if reach else end))

    def run_by_shell(at: int) -> bool:
        k = bisect.bisect_right(run_starts, at) - 1
        return k >= 0 and reach[k] > at

    out = [(value, run_by_shell(start)) for start, _, value, _ in literals if any(c.isspace() for c in value)]
    group: list[str] = []
    for k, (start, _end, value, _built) in enumerate(literals):
        between = code[literals[k - 1][1]:start] if k else ""
        if group and re.fullmatch(r"[\s\[\]()]*,[\s\[\]()]*", between):
            group.append(value)
            continue
        if len(group) > 1:
            out.append((shlex.join(group), False))
        group = [value]
    if len(group) > 1:
        out.append((shlex.join(group), False))
    return out


def built_command(code: str) -> str | None:
    """The first call in ``code`` that runs a command (or code) its arguments build at run
    time - ``subprocess.run(cmd)``, ``os.system('r' + 'm x')``, ``exec(payload)`` - or None."""
    for start, args_start, end, _shell in _spawn_calls(code, _literals(code)):
        args = code[args_start:end]
        rest, built, last = [], False, 0
        for lit_start, lit_stop, _value, dynamic in _literals(args):
            rest.append(args[last:lit_start])
            built |= dynamic
            last = lit_stop
        rest.append(args[last:])
        if built or not _STATIC_ARGS.fullmatch(_KEYWORD_ARG.sub("", "".join(rest))):
            return code[start:end + 1]
    return None


def _spawn_calls(code: str, literals: list[tuple[int, int, str, bool]]) -> list[tuple[int, int, int, bool]]:
    """The calls in ``code``, outside its strings, that run a command or code: (where the
    call starts, where its arguments start, its closing parenthesis, whether a shell runs a
    string argument - not so for eval and exec). Modules imported under another name
    (``import subprocess as sp``) and functions imported alone (``from os import system``)
    count too."""
    patterns = [_SPAWN]
    aliases = re.findall(r"\bimport\s+(?:os|subprocess)\s+as\s+(\w+)", code)
    if aliases:
        patterns.append(re.compile(r"\b(?:%s)\s*\.\s*\w+\s*\(" % "|".join(aliases)))
    imported = [name for names in re.findall(r"\bfrom\s+(?:os|subprocess)\s+import\s+([\w\s,]+)", code)
                for name in re.findall(r"\w+", names) if _SPAWN_NAME.fullmatch(name)]
    if imported:
        patterns.append(re.compile(r"\b(?:%s)\s*\(" % "|".join(imported)))
    starts = [start for start, _, _, _ in literals]
    closers = _closers(code)
    out = set()
    for pattern in patterns:
        for m in pattern.finditer(code):
            k = bisect.bisect_right(starts, m.start()) - 1
            if k >= 0 and m.start() < literals[k][1]:
                continue  # inside a string: it runs only if the string is run, and is read then
            end = closers.get(m.end() - 1, len(code))
            out.add((m.start(), m.end(), end, not re.search(r"(eval|exec)\s*\($", m.group(0))))
    return sorted(out)


def _closers(code: str) -> dict[int, int]:
    """Each ``(`` of ``code`` outside its strings -> the index of its ``)`` (``len(code)`` when
    it never closes), in one pass."""
    out: dict[int, int] = {}
    stack: list[int] = []
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if c == "\\":
            i += 2
            continue
        if c in "\"'`":
            j = _string_end(code, i)
            if j is None:
                break
            i = j + 1
            continue
        if c == "(":
            stack.append(i)
        elif c == ")" and stack:
            out[stack.pop()] = i
        i += 1
    out.update((open_, n) for open_ in stack)
    return out
