"""Reading a shell command line the way the shell reads it, far enough to say what it runs.

``parse`` splits a command line into simple commands - their words after quote removal, the
operator that joined each one to the one before it (``|`` for a pipe) and what feeds its
standard input (a here-document, a here-string, a redirected file) - and lists the text of
every command nested in it (``$(...)``, backquotes, ``<(...)``, ``>(...)``), to be read the
same way. It follows the bash quoting rules ('...', "...", ``$'...'`` decoded, backslashes),
drops comments and redirection targets, and never fails: an unclosed quote or parenthesis runs
to the end of the text, as the shell would keep reading.

It runs and expands nothing. A word whose value is only known at run time (it holds ``$x``,
``${x}``, ``$(...)`` or backquotes) is marked ``dynamic`` and kept as written; one holding an
unquoted glob or brace pattern is marked ``pattern``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Parsed", "Simple", "Word", "parse"]


@dataclass(frozen=True)
class Word:
    text: str
    #: holds an expansion ($x, ${x}, $(...), `...`, $((...))) outside single quotes
    dynamic: bool = False
    #: holds an unquoted glob or brace pattern (* ? [..] {a,b}), which the shell expands
    pattern: bool = False
    #: some of it was quoted or escaped
    quoted: bool = False


@dataclass(frozen=True)
class Simple:
    words: tuple[Word, ...]
    #: the operator before it: "" (the first), ";", "\n", "&", "&&", "||", "|", "|&", "(", ")";
    #: "|)" when the pipe comes from a group, ``( ... ) | this``
    after: str = ""
    #: the text a here-document or here-string feeds to its standard input
    stdin: Word | None = None
    #: the file its standard input is redirected from (``< file``, ``< <(...)``)
    stdin_file: Word | None = None


@dataclass(frozen=True)
class Parsed:
    commands: tuple[Simple, ...]
    #: the commands nested in it: $(...), `...`, <(...), >(...), also inside double quotes and
    #: unquoted here-documents
    nested: tuple[str, ...]


@lru_cache(maxsize=256)  # every deny rule reads the same command
def parse(text: str) -> Parsed:
    return _Lexer(text).run()


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_ANSI_C = re.compile(r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S)
_ANSI_C_SIMPLE = {"a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r", "t": "\t",
                  "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_REDIRECT = re.compile(r"&>>?|>>|>\||>&|<&|<>|>")
_PIPES = ("|", "|&")


def _ansi_c(body: str) -> str:
    """The value of ``$'body'``."""

    def one(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "xuU":
            return chr(min(int(esc[1:], 16), 0x10FFFF))
        if esc[0] in "01234567":
            return chr(int(esc, 8) & 0xFF)
        if esc[0] == "c":
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_C_SIMPLE.get(esc, "\\" + esc)

    return _ANSI_C.sub(one, body)


def _end(s: str, start: int, close: str) -> int:
    """Index of the ``close`` that ends a context opened just before ``start`` - the ``)`` of
    ``$(`` or ``<(``, the ``}`` of ``${``, a double quote, a backquote - with what is nested in
    it skipped (quotes, groups, ``$(`` inside double quotes); ``len(s)`` if it never closes.
    One loop and a stack: no recursion, however deep the nesting."""
    stack, i, n = [close], start, len(s)
    braces = close == "}"
    while i < n:
        c, top = s[i], stack[-1]
        if c == "\\":
            i += 2
            continue
        if top in '"`':
            if c == top:
                stack.pop()
            elif top == '"' and s.startswith("$(", i):
                stack.append(")")
                i += 1
            elif top == '"' and c == "`":
                stack.append("`")
        elif c == "'":
            j = s.find("'", i + 1)
            i = n if j < 0 else j + 1
            continue
        elif c in '"`':
            stack.append(c)
        elif c == "(":
            stack.append(")")
        elif c == "{" and braces:
            stack.append("}")
        elif c == top:
            stack.pop()
        if not stack:
            return i
        i += 1
    return n


def _substitutions(text: str) -> list[str]:
    """The commands ``$(...)`` and backquotes in ``text`` run when the shell expands it (the
    inside of ``${...}``, of an unquoted here-document)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "\\":
            i += 2
        elif text.startswith("$(", i):  # $((...)) too, as in the lexer
            j = _end(text, i + 2, ")")
            out.append(text[i + 2:j])
            i = j + 1
        elif text[i] == "`":
            j = _end(text, i + 1, "`")
            out.append(_unbackslash(text[i + 1:j]))
            i = j + 1
        else:
            i += 1
    return out


def _unbackslash(text: str) -> str:
    """The command inside backquotes: ``\\```, ``\\$`` and ``\\\\`` lose their backslash."""
    return re.sub(r"\\([`$\\])", r"\1", text)


class _Command:
    __slots__ = ("words", "after", "stdin", "stdin_file")

    def __init__(self, after: str):
        self.words: list[Word] = []
        self.after = after
        self.stdin: Word | None = None
        self.stdin_file: Word | None = None

    def freeze(self) -> Simple:
        return Simple(tuple(self.words), self.after, self.stdin, self.stdin_file)


class _Lexer:
    def __init__(self, text: str):
        self.s, self.i, self.n = text, 0, len(text)
        self.commands: list[_Command] = []
        self.nested: list[str] = []
        self.cmd = _Command("")
        self.buf: list[str] = []
        self.in_word = self.dynamic = self.quoted = False
        self.unquoted: list[str] = []  # the word's unquoted characters, for its glob patterns
        self.redirect: str | None = None  # "<", ">", "<<", "<<-", "<<<": waiting for its word
        self.heredocs: list[tuple[str, bool, bool, _Command]] = []  # delimiter, strip tabs, literal, command

    # ------------------------------------------------------------------ the loop

    def run(self) -> Parsed:
        s = self.s
        while self.i < self.n:
            c = s[self.i]
            if c in " \t\r":
                self.end_word()
                self.i += 1
            elif c == "\n":
                self.end_command("\n")
                self.i += 1
                self.read_heredocs()
            elif c == "#" and not self.in_word:
                j = s.find("\n", self.i)
                self.i = self.n if j < 0 else j
            elif c == "\\":
                if s.startswith("\n", self.i + 1):
                    self.i += 2  # a line continuation
                else:
                    self.add(s[self.i + 1:self.i + 2], quoted=True)
                    self.i += 2
            elif c == "'":
                j = s.find("'", self.i + 1)
                j = self.n if j < 0 else j
                self.add(s[self.i + 1:j], quoted=True)
                self.i = j + 1
            elif c == '"':
                self.double_quoted(self.i + 1)
            elif c == "`":
                self.backquote()
            elif c == "$":
                self.dollar(in_double=False)
            elif c in ";&|()<>":
                self.operator()
            else:
                self.add(c, unquoted=True)
                self.i += 1
        self.end_command("")
        return Parsed(tuple(c.freeze() for c in self.commands), tuple(self.nested))

    # ------------------------------------------------------------------ words

    def add(self, text: str, *, quoted: bool = False, dynamic: bool = False, unquoted: bool = False) -> None:
        self.buf.append(text)
        self.in_word = True
        self.quoted |= quoted
        self.dynamic |= dynamic
        if unquoted:
            self.unquoted.append(text)

    def end_word(self) -> None:
        if not self.in_word:
            return
        bare = "".join(self.unquoted)
        pattern = ("*" in bare or "?" in bare or ("[" in bare and "]" in bare)
                   or ("{" in bare and "}" in bare and ("," in bare or ".." in bare)))
        word = Word("".join(self.buf), self.dynamic, pattern, self.quoted)
        self.buf, self.unquoted = [], []
        self.in_word = self.dynamic = self.quoted = False
        kind, self.redirect = self.redirect, None
        if kind is None:
            self.cmd.words.append(word)
        elif kind == "<":
            self.cmd.stdin_file = word
        elif kind == "<<<":
            self.cmd.stdin = word
        elif kind in ("<<", "<<-"):
            self.heredocs.append((word.text, kind == "<<-", word.quoted, self.cmd))
        # an output redirection's target is a file name, not part of the command

    def end_command(self, op: str) -> None:
        self.end_word()
        cmd = self.cmd
        if cmd.words or cmd.stdin is not None or cmd.stdin_file is not None or any(h[3] is cmd for h in self.heredocs):
            self.commands.append(cmd)
            after = op
        elif op in _PIPES:
            after = "|)" if cmd.after == ")" else op  # ( ... ) | this: the group's output
        else:
            after = cmd.after if cmd.after in _PIPES else op  # a | ( this )
        self.cmd = _Command(after)

    def double_quoted(self, start: int) -> None:
        s, i = self.s, start
        self.add("", quoted=True)
        while i < self.n and s[i] != '"':
            c = s[i]
            if c == "\\" and i + 1 < self.n:
                nxt = s[i + 1]
                if nxt != "\n":  # a backslash-newline joins the lines
                    self.add(nxt if nxt in '$`"\\' else "\\" + nxt, quoted=True)
                i += 2
            elif c == "`":
                self.i = i
                self.backquote()
                i = self.i
            elif c == "$":
                self.i = i
                self.dollar(in_double=True)
                i = self.i
            else:
                self.add(c, quoted=True)
                i += 1
        self.i = i + 1

    def backquote(self) -> None:
        j = _end(self.s, self.i + 1, "`")
        self.nested.append(_unbackslash(self.s[self.i + 1:j]))
        self.add(self.s[self.i:j + 1], dynamic=True)
        self.i = j + 1

    def dollar(self, *, in_double: bool) -> None:
        s, i = self.s, self.i
        nxt = s[i + 1:i + 2]
        if nxt == "'" and not in_double:
            j = i + 2
            while j < self.n and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            self.add(_ansi_c(s[i + 2:min(j, self.n)]), quoted=True)
            self.i = j + 1
        elif nxt == '"' and not in_double:
            self.double_quoted(i + 2)
        elif nxt == "(":  # $((...)) too: what bash cannot read as arithmetic it runs as $( (...) )
            j = _end(s, i + 2, ")")
            self.nested.append(s[i + 2:j])
            self.add(s[i:j + 1], dynamic=True)
            self.i = j + 1
        elif nxt == "{":
            j = _end(s, i + 2, "}")
            self.nested.extend(_substitutions(s[i + 2:j]))
            self.add(s[i:j + 1], dynamic=True)
            self.i = j + 1
        elif (m := _NAME.match(s, i + 1)) is not None:
            self.add(s[i:m.end()], dynamic=True)
            self.i = m.end()
        else:
            self.add("$", quoted=in_double, unquoted=not in_double)
            self.i = i + 1

    # ------------------------------------------------------------------ operators

    def operator(self) -> None:
        s, i = self.s, self.i
        c, two, three = s[i], s[i:i + 2], s[i:i + 3]
        if two in ("<(", ">("):  # process substitution: a word naming a pipe
            j = _end(s, i + 2, ")")
            self.nested.append(s[i + 2:j])
            self.add(s[i:j + 1], dynamic=True)
            self.i = j + 1
        elif c in "<>" or two == "&>":
            self.before_redirect()
            if three in ("<<<", "<<-"):
                self.redirect, self.i = three, i + 3
            elif two == "<<":
                self.redirect, self.i = "<<", i + 2
            elif c == "<" and two not in ("<&", "<>"):
                self.redirect, self.i = "<", i + 1
            else:  # > >> >| >& <& <> &> &>>: output, or a descriptor copied
                m = _REDIRECT.match(s, i)
                self.redirect, self.i = ">", (m.end() if m else i + 1)
        elif three == ";;&":
            self.end_command(";")
            self.i = i + 3
        elif two in ("&&", "||", "|&"):
            self.end_command(two)
            self.i = i + 2
        elif two in (";;", ";&"):
            self.end_command(";")
            self.i = i + 2
        else:
            self.end_command(c)
            self.i = i + 1

    def before_redirect(self) -> None:
        """``2>`` and ``{fd}>``: the number names a descriptor, it is not a word."""
        text = "".join(self.buf)
        if self.in_word and not self.quoted and (text.isdigit() or re.fullmatch(r"\{\w+\}", text)):
            self.buf, self.unquoted = [], []
            self.in_word = self.dynamic = self.quoted = False
        else:
            self.end_word()

    def read_heredocs(self) -> None:
        """The bodies of the here-documents opened on the line that just ended."""
        s = self.s
        for delimiter, strip, literal, cmd in self.heredocs:
            lines = []
            while self.i < self.n:
                j = s.find("\n", self.i)
                j = self.n if j < 0 else j
                line = s[self.i:j]
                self.i = j + 1
                if strip:
                    line = line.lstrip("\t")
                if line == delimiter:
                    break
                lines.append(line)
            body = "\n".join(lines)
            if not literal:
                self.nested.extend(_substitutions(body))
            cmd.stdin = Word(body, dynamic=not literal and ("$" in body or "`" in body), quoted=literal)
        self.heredocs = []
