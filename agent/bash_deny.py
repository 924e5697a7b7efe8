"""What a deny rule on a bash command covers.

A deny rule is a prefix rule on the command words: ``git push`` denies every command whose
words start with ``git push``, wherever it runs in the command line (any part of a list,
pipeline or subshell, inside ``$(...)``, backquotes and ``<(...)``), however its name is
spelled (``/bin/rm``, ``\\rm``, ``'r'm``, ``$'\\x72m'``), behind wrappers (sudo, env, xargs,
parallel, timeout, nice, nohup, stdbuf, busybox, command, ``ssh host``, ``uv run``,
``VAR=value``, ...), after ``find -exec``, and inside the code other programs run: ``bash -c``,
``eval``, ``su -c``, ``trap``, an alias, text fed to a shell by ``echo``/``printf``/a
here-document, and the strings of interpreter code (``python -c "os.system('rm x')"``,
``subprocess.run(['rm', 'x'])``).

A deny on one verb that deletes files - ``rm``, ``rmdir``, ``unlink`` or ``shred``, the verb
alone (``rm -rf`` or ``rm /data`` stay plain prefixes) - also covers the usual ways to delete
without naming it: the other verbs (and ``rimraf``, ``srm``), ``find -delete``,
``git clean -f``, ``rsync --delete``, interpreter code that calls a deletion API
(``shutil.rmtree``, ``os.remove``, ``Path.unlink``, ``unlink``, ``fs.rmSync``,
``FileUtils.rm_rf``, ...) or runs a command it builds at run time; and whatever runs a program
the text cannot name: a command word computed at run time (``$(echo rm)``, backquotes,
``$CMD``, ``/bin/r?``), ``eval``/``source`` of such text (the usual environment hooks such as
``eval "$(conda shell.bash hook)"`` excepted), a shell or interpreter fed from a pipe whose
text cannot be read (``base64 -d | sh``, ``curl ... | bash``) or from ``<(...)``.

It is best effort: a shell can always hide what it runs (a script written by one call and run
by the next, a name put together in a file). Deny rules narrow what an allow rule or YOLO lets
through; the sandbox, and ask mode, are the guard.
"""

from __future__ import annotations

import re
from typing import Sequence

from agent.interpreter_code import built_command, commands_in_code, deletion_call
from agent.shell_words import Simple, Word, parse

#: a deny on one of these covers every way to delete files listed above
DELETERS = ("rm", "rmdir", "unlink", "shred")
#: programs that delete the files they are given, covered by a deny on any of DELETERS
_DELETING = frozenset(DELETERS) | {"rimraf", "srm"}
SHELLS = frozenset({"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "yash", "posh", "fish", "csh", "tcsh"})
#: interpreter (its name without a version) -> (options whose next word is code, options that take a value)
_LANGS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    name: (frozenset(codes.split()), frozenset(values.split())) for names, codes, values in (
        ("python pypy ipython", "-c", "-W -X"),
        ("perl", "-e -E", "-I -M -x"),
        ("ruby", "-e", "-I -r -C -E -F"),
        ("php", "-r -R -B -E", "-d -c -z"),
        ("node nodejs bun", "-e --eval -p --print", "-r --require --import --loader --preload"),
        ("deno", "", ""),
        ("Rscript R", "-e", ""),
        ("julia", "-e -E --eval --print", "-L --load -p --procs -t --threads"),
        ("lua luajit", "-e", "-l"),
        ("tclsh", "", ""),
        ("pwsh powershell", "-c -Command -command", ""),
        ("osascript", "-e", "-l"),
        ("elixir", "-e --eval", "-r -pr -pa -pz"),
    ) for name in names.split()
}
_AWK = frozenset({"awk", "gawk", "mawk", "nawk"})
_ENCODED = frozenset({"-EncodedCommand", "-encodedcommand", "-enc", "-ec", "-e"})
#: wrapper -> (its options that take a separate value, how many operands come before the command)
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    name: (frozenset(opts.split()), operands) for name, opts, operands in (
        ("sudo", "-u -g -C -D -h -p -r -t -U -T --user --group --chdir --host --prompt --role --type "
                 "--other-user --close-from --command-timeout", 0),
        ("doas", "-u -C", 0), ("pkexec", "--user", 0), ("runuser", "-u -g -G --user --group", 0),
        ("env", "-u --unset -C --chdir", 0), ("nohup", "", 0), ("setsid", "", 0),
        ("time", "-f -o --format --output", 0), ("nice", "-n --adjustment", 0),
        ("ionice", "-c -n -p -P -u --class --classdata", 0), ("exec", "-a", 0), ("command", "", 0),
        ("builtin", "", 0), ("coproc", "", 0), ("busybox", "", 0), ("toybox", "", 0),
        ("xargs", "-I -n -P -d -a -E -L -s --max-args --max-procs --delimiter --arg-file --replace "
                  "--max-lines --max-chars --eof --process-slot-var", 0),
        ("parallel", "-j --jobs -S --sshlogin -a --arg-file --delay --timeout --joblog --results -I --colsep "
                     "-C -d --delimiter --tmpdir --retries -n -N -L --max-args --max-lines", 0),
        ("timeout", "-s -k --signal --kill-after", 1), ("stdbuf", "-i -o -e --input --output --error", 0),
        ("watch", "-n --interval", 0), ("unbuffer", "", 0), ("flock", "-w --timeout -E --conflict-exit-code", 1),
        ("chroot", "--userspec --groups", 1), ("taskset", "", 1), ("chrt", "", 1), ("sg", "", 1),
        ("strace", "-o -e -p -s -u -E -P -I -a -b -O -S -X", 0), ("ltrace", "-o -e -p -s -u -n -a", 0),
        ("caffeinate", "", 0), ("firejail", "", 0), ("proxychains", "", 0), ("proxychains4", "", 0),
        ("torsocks", "", 0), ("unshare", "", 0), ("npx", "-p --package", 0), ("bunx", "", 0),
        ("systemd-run", "-p --property -u --unit -E --setenv --uid --gid -M --machine --description --slice", 0),
        ("ssh", "-p -i -l -o -F -J -L -R -D -W -b -c -E -e -I -m -O -Q -S -w -B", 1),
        ("function", "", 1),
        # shell keywords: what follows them is a command
        ("then", "", 0), ("else", "", 0), ("elif", "", 0), ("do", "", 0), ("if", "", 0), ("while", "", 0),
        ("until", "", 0), ("!", "", 0), ("{", "", 0),
    )
}
_KEYWORDS = frozenset({"then", "else", "elif", "do", "if", "while", "until", "!", "{", "time"})
#: subcommands that run a command: (program, subcommand) -> (options with a value, operands)
_RUNNERS: dict[tuple[str, str], tuple[frozenset[str], int]] = {
    (prog, sub): (frozenset(opts.split()), operands) for prog, sub, opts, operands in (
        ("uv", "run", "--with --python -p --project --directory --package --extra --group --env-file --index "
                      "--with-requirements --from", 0),
        ("poetry", "run", "-C --directory -P --project", 0), ("pipenv", "run", "", 0), ("pdm", "run", "-p", 0),
        ("hatch", "run", "-e --env", 0), ("pixi", "run", "-e --environment --manifest-path", 0),
        ("pixi", "exec", "-s --spec", 0), ("rye", "run", "", 0),
        ("conda", "run", "-n --name -p --prefix --cwd", 0), ("mamba", "run", "-n --name -p --prefix --cwd", 0),
        ("micromamba", "run", "-n --name -p --prefix --cwd", 0),
        ("docker", "exec", "-e --env --env-file -u --user -w --workdir", 1),
        ("docker", "run", "-e --env --env-file -u --user -w --workdir -v --volume --name --gpus -p --publish "
                          "--network --entrypoint --mount --platform -m --memory --cpus --shm-size", 1),
    )
}
#: programs whose -c is shell code (other programs' -c is read too, but not held against them)
_SHELL_CODE = frozenset({"su", "runuser", "script", "flock", "sg"})
#: programs whose output is commonly eval'ed to set up a shell (eval "$(conda shell.bash hook)")
_ENV_HOOKS = frozenset({"conda", "mamba", "micromamba", "pyenv", "rbenv", "nodenv", "goenv", "direnv", "ssh-agent",
                        "brew", "opam", "fnm", "mise", "zoxide", "starship", "pixi", "luarocks", "dircolors"})
_EXEC_OPTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FD_EXEC = frozenset({"-x", "--exec", "-X", "--exec-batch"})
_GIT_VALUE_OPTIONS = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--config-env"})
_RSYNC_DELETE = re.compile(r"--(delete(-\w+)*|del|remove-source-files)")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")
_NESTING = 6

#: the simple command being read and the one before it (what a pipe feeds it)
Fed = tuple[Simple, Simple | None] | None


def denial(command: str, prefix: Sequence[str]) -> str | None:
    """None when a deny rule on the command prefix ``prefix`` does not cover ``command``;
    otherwise why it does: "" when the command runs the prefix itself, else the other form
    it covers (``find -delete``, ``python code that deletes files (shutil.rmtree)``)."""
    if not prefix:
        return None
    return _Reader(list(prefix)).shell(command, 0, visible=True)


def covers_deletion(prefix: Sequence[str]) -> bool:
    """A deny on ``prefix`` also covers the other ways to delete files: it is one deleting
    verb, alone."""
    return len(prefix) == 1 and prefix[0] in DELETERS


def _program(word: str) -> str:
    return word.rsplit("/", 1)[-1]


def _short(text: str, limit: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _unknown_name(word: Word) -> bool:
    """The program this word names is only known at run time (``$(echo rm)``, ``$CMD``,
    ``/bin/r?``); ``$HOME/bin/python`` still names python."""
    if not (word.dynamic or word.pattern):
        return False
    if word.pattern or "/" not in word.text:
        return True
    name = word.text.rsplit("/", 1)[-1]
    return not name or any(c in name for c in "$`(){}")


def _leading_options(words: Sequence[Word]) -> list[Word]:
    out = []
    for w in words:
        if not w.text.startswith("-") or w.text in ("-", "--"):
            break
        out.append(w)
    return out


def _reads_code(option: str, codes: frozenset[str]) -> bool:
    """``-c``, or a cluster of short options ending in one (``-Bc``, ``-ne``)."""
    if option in codes:
        return True
    return (len(option) > 2 and option[0] == "-" and option[1] != "-" and option[1:].isalpha()
            and f"-{option[-1]}" in codes)


def _language(name: str) -> str:
    """``python3.11`` -> ``python``."""
    return re.sub(r"[\d.]+$", "", name) or name


class _Reader:
    def __init__(self, prefix: list[str]):
        self.prefix = prefix
        self.deletes = covers_deletion(prefix)

    # ------------------------------------------------------------------ shell text

    def shell(self, text: str, depth: int, visible: bool) -> str | None:
        """``visible``: this is text a shell runs. Otherwise it is a string found in other
        code (a literal in python, the -c of an unknown program): read for the commands it
        names, but not held against it for what it cannot name."""
        if depth > _NESTING:
            return "commands nested too deep to read" if self.deletes else None
        parsed = parse(text)
        for inner in parsed.nested:
            if (why := self.shell(inner, depth + 1, visible)) is not None:
                return why
        before: Simple | None = None
        for cmd in parsed.commands:
            if (why := self.run(list(cmd.words), depth, visible, (cmd, before))) is not None:
                return why
            before = cmd
        return None

    def starts(self, words: Sequence[Word], at: int, end: int) -> bool:
        """The command ``words[at:end]`` starts with the prefix."""
        first = words[at].text
        if first != self.prefix[0] and _program(first) != self.prefix[0]:
            return False
        rest = self.prefix[1:]
        return end - at > len(rest) and [w.text for w in words[at + 1:at + 1 + len(rest)]] == rest

    def run(self, words: list[Word], depth: int, visible: bool, fed: Fed) -> str | None:
        """The command ``words`` runs, its wrappers taken off one by one."""
        if depth > _NESTING:  # find -exec find -exec ...
            return "commands nested too deep to read" if self.deletes else None
        at, end = 0, len(words)  # the command still to read is words[at:end]
        while at < end:
            if self.starts(words, at, end):
                return ""
            first = words[at]
            name = _program(first.text)
            if _ASSIGNMENT.match(first.text):
                at += 1
                continue
            if self.deletes and visible and _unknown_name(first):
                return f"a program named only at run time ({_short(first.text)})"
            if name == "command" and any(w.text in ("-v", "-V") for w in _leading_options(words[at + 1:end])):
                return None  # command -v rm: asks where rm is, runs nothing
            if name == "eval":
                return self.evaluated(words[at + 1:end], depth, visible)
            wrapper = _WRAPPERS.get(name)
            runner = _RUNNERS.get((name, words[at + 1].text)) if wrapper is None and at + 1 < end else None
            if wrapper is None and runner is None:
                break
            opts, operands = wrapper or runner  # type: ignore[misc]
            i = at + (1 if wrapper else 2)
            while i < end and words[i].text.startswith("-") and words[i].text != "-":
                text = words[i].text
                if text == "--":
                    i += 1
                    break
                if name == "env" and text.startswith(("-S", "--split-string")):
                    # env -S 'rm -rf x': one string split into the command's words
                    joined = text[2:] if text.startswith("-S") and len(text) > 2 else " ".join(
                        w.text for w in words[i + 1:min(i + 2, end)])
                    rest = " ".join(w.text for w in words[i + 2:end])
                    return self.shell(f"{joined} {rest}", depth + 1, visible)
                i += 2 if text in opts else 1
            at = min(i + operands, end)
            if name == "parallel":
                cut = next((k for k in range(at, end) if words[k].text.startswith(":::")), end)
                if cut == at:  # parallel ::: 'rm a' 'rm b': the arguments are the commands
                    for w in words[at + 1:end]:
                        if (why := self.shell(w.text, depth + 1, visible)) is not None:
                            return why
                    return None
                end = cut  # parallel 'rm {}' ::: a b: the command ends at :::
            if end - at == 1 and any(c.isspace() for c in words[at].text):
                # ssh host 'rm -rf x', watch 'rm x', parallel 'rm {}': one word of shell code
                return self.shell(words[at].text, depth + 1, visible)
        if at >= end:
            return None
        return self.program(words[at:end], depth, visible, fed)

    def program(self, words: list[Word], depth: int, visible: bool, fed: Fed) -> str | None:
        name = _program(words[0].text)
        texts = [w.text for w in words]
        if self.deletes and name in _DELETING:
            return name
        # commands run for each file found: find -exec rm {} +, fd -x rm
        i = 1
        while i < len(texts):
            if texts[i] in _EXEC_OPTIONS or (name in ("fd", "fdfind") and texts[i] in _FD_EXEC):
                end = next((j for j in range(i + 1, len(texts)) if texts[j] in (";", "+")), len(texts))
                if (why := self.run(words[i + 1:end], depth + 1, visible, None)) is not None:
                    return why
                i = end  # the segment's own -exec were read with it
            i += 1
        if self.deletes and (why := _deleting_form(name, texts)) is not None:
            return why
        if name in SHELLS:
            return self.shell_program(name, words, depth, visible, fed)
        if name in _AWK or _language(name) in _LANGS:
            return self.interpreter(name, words, depth, visible, fed)
        if name in ("source", ".") and len(words) > 1:
            if self.deletes and visible and words[1].dynamic and not _env_hook(words[1]):
                return f"{name} of a file only known at run time ({_short(words[1].text)})"
            return None
        if name == "trap" and len(words) > 1:
            return self.shell(words[1].text, depth + 1, visible)
        if name == "alias":
            for w in words[1:]:
                if "=" in w.text and (why := self.shell(w.text.split("=", 1)[1], depth + 1, visible)) is not None:
                    return why
            return None
        # the -c of another program: su -c, script -c, ...
        for i, text in enumerate(texts[1:-1], 1):
            if text in ("-c", "--command"):
                why = self.shell(texts[i + 1], depth + 1, visible and name in _SHELL_CODE)
                if why is not None:
                    return why
        if len(words) == 1 and words[0].quoted and any(c.isspace() for c in texts[0]):
            # a string that is a statement of its own: os.system('rm -rf x') read as shell
            return self.shell(texts[0], depth + 1, False)
        return None

    # ------------------------------------------------------------------ code other programs run

    def evaluated(self, words: list[Word], depth: int, visible: bool) -> str | None:
        hooks = [w for w in words if _env_hook(w)]
        for hook in hooks:  # eval "$(conda shell.bash hook)": the hook's own command is still read
            if (why := self.shell(hook.text, depth + 1, False)) is not None:
                return why
        words = [w for w in words if w not in hooks]
        if self.deletes and visible:
            hidden = next((w for w in words if w.dynamic), None)
            if hidden is not None:
                return f"eval of text only known at run time ({_short(hidden.text)})"
        return self.shell(" ".join(w.text for w in words), depth + 1, visible)

    def shell_program(self, name: str, words: list[Word], depth: int, visible: bool, fed: Fed) -> str | None:
        i, code, stdin = 1, False, False
        while i < len(words) and words[i].text.startswith(("-", "+")) and words[i].text not in ("-", "--"):
            text = words[i].text
            short = text[1:] if text[1:2] != "-" else ""
            code |= text == "--command" or "c" in short
            stdin |= "s" in short and text[0] == "-"
            i += 2 if text in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file") else 1
        if i < len(words) and words[i].text == "--":
            i += 1
        if code:
            return self.shell(words[i].text, depth + 1, visible) if i < len(words) else None
        if not stdin and i < len(words) and words[i].text not in ("-", "/dev/stdin"):
            script = words[i]
            if self.deletes and visible and script.dynamic:
                return f"{name} running {_short(script.text)}, which cannot be read here"
            return None  # a script file: what it does is not in the command's text
        return self.fed(name, depth, visible, fed, shell=True)

    def interpreter(self, name: str, words: list[Word], depth: int, visible: bool, fed: Fed) -> str | None:
        texts = [w.text for w in words]
        if name in _AWK:  # the program is the first operand, unless -f names a file
            i = 1
            while i < len(texts) and texts[i].startswith("-") and texts[i] != "-":
                if texts[i] == "-f":
                    return None
                i += 2 if texts[i] in ("-F", "-v", "-i") else 1
            return self.code(name, words[i], depth) if i < len(words) else None
        lang = _language(name)
        codes, values = _LANGS[lang]
        i, coded = 1, False
        while i < len(texts) and texts[i].startswith("-") and texts[i] not in ("-", "--"):
            text = texts[i]
            if lang in ("pwsh", "powershell") and text in _ENCODED:
                return f"an encoded {name} command" if self.deletes else None
            if _reads_code(text, codes):  # perl takes several -e
                coded = True
                if i + 1 < len(words) and (why := self.code(name, words[i + 1], depth)) is not None:
                    return why
                i += 2
                continue
            if text == "-m" and lang in ("python", "pypy", "ipython"):
                return None  # python -m module: the module's code is not in the text
            i += 2 if text in values else 1
        if coded:
            return None
        if lang == "deno" and texts[1:2] == ["eval"]:
            return self.code(name, words[2], depth) if len(words) > 2 else None
        if i < len(words) and texts[i] == "--":
            i += 1
        if i < len(words) and texts[i] not in ("-", "/dev/stdin"):
            script = words[i]
            if self.deletes and visible and script.text.startswith(("<(", ">(")):
                return f"{name} running {_short(script.text)}, which cannot be read here"
            return None  # a script file: what it does is not in the command's text
        return self.fed(name, depth, visible, fed, shell=False)

    def fed(self, name: str, depth: int, visible: bool, fed: Fed, *, shell: bool) -> str | None:
        """A shell or interpreter reading its program from standard input: read what it is fed."""
        if fed is None:
            return None
        cmd, before = fed
        text: str | None
        if cmd.stdin is not None:  # a here-document or here-string
            text, how = cmd.stdin.text, ""
        elif cmd.stdin_file is not None:
            if not cmd.stdin_file.dynamic:
                return None  # sh < script.sh: a file, like sh script.sh
            text, how = None, f"commands fed to {name} from {_short(cmd.stdin_file.text)}"
        elif cmd.after in ("|", "|&", "|)"):
            text = _printed(before) if cmd.after != "|)" else None
            source = _program(before.words[0].text) if cmd.after != "|)" and before and before.words else "a group"
            how = f"commands piped into {name} from {_short(source)}"
        else:
            return None  # it reads the terminal
        if text is None:
            return f"{how}, which cannot be read here" if self.deletes and visible else None
        if shell:
            return self.shell(text, depth + 1, visible)
        return self.code(name, Word(text), depth)

    def code(self, name: str, word: Word, depth: int) -> str | None:
        """Code in another language: the commands its strings name, and, for a deny on a
        deleting verb, the deletion calls it makes and commands it builds at run time."""
        text = word.text
        if self.deletes and word.dynamic and text.lstrip("\"'").startswith(("$", "`")):
            return f"{name} code only known at run time ({_short(text)})"
        for candidate, run_by_shell in commands_in_code(text):
            if (why := self.shell(candidate, depth + 1, run_by_shell)) is not None:
                return why
        if not self.deletes:
            return None
        if (call := deletion_call(text)) is not None:
            return f"{name} code that deletes files ({_short(call)})"
        if (call := built_command(text)) is not None:
            return f"{name} code that runs a command built at run time ({_short(call)})"
        return None


def _deleting_form(name: str, texts: list[str]) -> str | None:
    """find -delete, git clean -f, rsync --delete: programs that delete when told to."""
    if name in ("find", "gfind") and "-delete" in texts:
        return "find -delete"
    if name == "git":
        i = 1
        while i < len(texts) and texts[i].startswith("-"):
            i += 2 if texts[i] in _GIT_VALUE_OPTIONS else 1
        if texts[i:i + 1] == ["clean"]:
            flags = [t for t in texts[i + 1:] if t.startswith("-")]
            short = "".join(t[1:] for t in flags if not t.startswith("--"))
            if ("f" in short or "--force" in flags) and "n" not in short and "--dry-run" not in flags:
                return "git clean -f"
    if name == "rsync":
        flag = next((t for t in texts if _RSYNC_DELETE.fullmatch(t)), None)
        if flag is not None:
            return f"rsync {flag}"
    return None


def _printed(cmd: Simple | None) -> str | None:
    """What ``cmd`` writes to its standard output, when its text says so: ``echo`` or
    ``printf`` of literal words, ``cat`` of a here-document. None otherwise (base64 -d, curl,
    a file)."""
    if cmd is None:
        return None
    words = list(cmd.words)
    while words and (_ASSIGNMENT.match(words[0].text) or words[0].text in _KEYWORDS):
        words = words[1:]  # then echo ..., do printf ...
    if not words or any(w.dynamic for w in words):
        return None
    name, args = _program(words[0].text), [w.text for w in words[1:]]
    if name == "echo":
        escapes = False
        while args and re.fullmatch(r"-[neE]+", args[0]):
            escapes |= "e" in args[0]
            args = args[1:]
        text = " ".join(args)
        return None if escapes and "\\" in text else text
    if name == "printf" and args:
        text = " ".join(args).replace("\\n", "\n").replace("\\t", "\t")
        return None if "\\" in text else text
    if name == "cat" and not args and cmd.stdin is not None:
        return cmd.stdin.text
    return None


def _env_hook(word: Word) -> bool:
    """``$(conda shell.bash hook)``: the output of a program that prints shell set-up."""
    m = re.fullmatch(r"[$<]\((.*)\)|`(.*)`", word.text, re.S)
    if m is None:
        return False
    commands = parse(m.group(1) if m.group(1) is not None else m.group(2)).commands
    return len(commands) == 1 and bool(commands[0].words) and _program(commands[0].words[0].text) in _ENV_HOOKS
