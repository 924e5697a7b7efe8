"""What must not leave the machine in a shared trace, found and masked.

Kinds: Hugging Face, OpenAI, Anthropic, GitHub, Slack and AWS keys, private key blocks, bearer
tokens, ``NAME=value`` assignments whose name says secret (``WANDB_API_KEY=…``,
``password: …``), the user's own secret values from the environment (whatever their shape),
patterns the user added (config ``trace_redact_patterns``), and optionally the home directory.

``find`` gives every span with its kind and a line of context for the preview; ``redact``
replaces them with ``[REDACTED <kind>]``. Spans are found on the text as it will be uploaded
and never on the live conversation: the model's context is not touched.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

_PATTERNS: tuple[tuple[str, str, int], ...] = (
    # (kind, regex, group holding the secret)
    ("private key", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]+?-----END [A-Z0-9 ]*PRIVATE KEY-----", 0),
    ("Anthropic key", r"\bsk-ant-[A-Za-z0-9_-]{20,}", 0),
    ("OpenAI key", r"\bsk-(?:proj-|svcacct-|admin-)?(?!ant-)[A-Za-z0-9_-]{20,}", 0),
    ("Hugging Face token", r"\bhf_[A-Za-z0-9]{30,}", 0),
    ("GitHub token", r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})", 0),
    ("Slack token", r"\bxox[abpors]-[A-Za-z0-9-]{10,}", 0),
    ("AWS access key", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b", 0),
    ("AWS secret key", r"(?i)aws_secret_access_key[\"']?\s*[=:]\s*[\"']?([A-Za-z0-9/+=]{40})", 1),
    ("bearer token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/=-]{16,})", 1),
    ("secret assignment",
     r"(?i)\b([A-Z0-9_]*(?:TOKEN|SECRET|PASSWORD|PASSWD|API_?KEY|ACCESS_KEY|PRIVATE_KEY)[A-Z0-9_]*)[\"']?\s*[=:]\s*[\"']?"
     r"([^\s\"',;]{8,})", 2),
)
_COMPILED = tuple((kind, re.compile(rx), group) for kind, rx, group in _PATTERNS)
#: an assignment whose value is one of these is a placeholder, not a secret
_PLACEHOLDERS = re.compile(r"^(?:\$\{?[A-Za-z_][A-Za-z0-9_]*\}?|\[REDACTED[^\]]*\]|\[redacted[^\]]*\]|<[^>]+>|x+|\*+|None|null|"
                           r"true|false)$", re.I)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str


class Redactor:
    def __init__(self, own: Mapping[str, str] | None = None, patterns: Iterable[str] = (), home: str | None = None):
        #: the user's secret values -> their variable names (a ``SecretMasker``'s ``secrets``)
        self.own = {v: n for v, n in (own or {}).items() if len(v) >= 8}
        self.extra: list[re.Pattern[str]] = []
        for raw in patterns:
            self.extra.append(re.compile(raw))  # a bad pattern raises: the caller says so
        self.home = home.rstrip("/") if home and len(home) > 1 else None
        self._own = re.compile("|".join(re.escape(v) for v in sorted(self.own, key=len, reverse=True))) if self.own else None

    def find(self, text: str) -> list[Span]:
        if not text:
            return []
        spans: list[Span] = []
        if self._own is not None:
            spans += [Span(m.start(), m.end(), f"your {self.own[m.group(0)]}") for m in self._own.finditer(text)]
        for kind, rx, group in _COMPILED:
            for m in rx.finditer(text):
                value = m.group(group)
                if group and _PLACEHOLDERS.match(value or ""):
                    continue
                spans.append(Span(m.start(group), m.end(group), kind))
        for rx in self.extra:
            spans += [Span(m.start(), m.end(), "your pattern") for m in rx.finditer(text) if m.end() > m.start()]
        if self.home:
            spans += [Span(m.start(), m.end(), "home directory") for m in re.finditer(re.escape(self.home) + r"(?=/|\b)", text)]
        return _merge(spans)

    def redact(self, text: str) -> str:
        spans = self.find(text)
        if not spans:
            return text
        out, at = [], 0
        for span in spans:
            out.append(text[at:span.start])
            out.append("~" if span.kind == "home directory" else f"[REDACTED {span.kind}]")
            at = span.end
        out.append(text[at:])
        return "".join(out)


def _merge(spans: list[Span]) -> list[Span]:
    """Overlapping spans become one (the first kind found wins: the most specific)."""
    spans.sort(key=lambda s: (s.start, -(s.end - s.start)))
    out: list[Span] = []
    for span in spans:
        if out and span.start < out[-1].end:
            last = out[-1]
            if span.end > last.end:
                out[-1] = Span(last.start, span.end, last.kind)
            continue
        out.append(span)
    return out


@dataclass(frozen=True)
class Finding:
    """A span in one string of one record, for the preview."""

    record: int
    field: str
    kind: str
    context: str  # the line around it, the secret itself shortened


def _strings(value: Any, path: str = ""):
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")


def _redact_value(value: Any, redactor: Redactor) -> Any:
    if isinstance(value, str):
        return redactor.redact(value)
    if isinstance(value, dict):
        return {k: _redact_value(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor) for v in value]
    return value


def redact_records(records: list[dict[str, Any]], redactor: Redactor) -> list[dict[str, Any]]:
    return [_redact_value(r, redactor) for r in records]


def _shown(text: str, span: Span) -> str:
    secret = text[span.start:span.end]
    if span.kind == "home directory":
        return secret
    return secret[:4] + "…" if len(secret) > 6 else "…"


def findings(records: list[dict[str, Any]], redactor: Redactor, limit: int = 500) -> list[Finding]:
    """Every span, with the line around it; every secret in that line (not only the span's
    own) is shortened, so the preview never shows one whole."""
    out: list[Finding] = []
    for index, record in enumerate(records):
        for field_path, text in _strings(record):
            spans = redactor.find(text)
            if not spans:
                continue
            # the text with each span shortened, and where each span now starts and ends
            pieces, at, where = [], 0, []
            for span in spans:
                pieces.append(text[at:span.start])
                start = sum(len(p) for p in pieces)
                pieces.append(f"⟦{_shown(text, span)}⟧")
                where.append((start, start + len(pieces[-1])))
                at = span.end
            pieces.append(text[at:])
            short = "".join(pieces)
            for span, (start, end) in zip(spans, where):
                line_start = short.rfind("\n", 0, start) + 1
                line_end = short.find("\n", end)
                line_end = len(short) if line_end < 0 else line_end
                context = short[max(line_start, start - 60):min(line_end, end + 60)]
                out.append(Finding(index, field_path, span.kind, context))
                if len(out) >= limit:
                    return out
    return out


def leaked(blob: str | bytes, secrets: Iterable[str]) -> list[str]:
    """The secrets that appear in ``blob`` (for tests and a last check before upload)."""
    text = blob.decode("utf-8", "replace") if isinstance(blob, bytes) else blob
    text_json = json.dumps(text)
    return [s for s in secrets if s and (s in text or json.dumps(s)[1:-1] in text_json)]


def home_dir() -> str:
    return str(Path.home())
