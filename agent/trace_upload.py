"""Shared traces: a session's trace, redacted, uploaded to the user's private dataset
``{user}/mlintern-sessions`` at ``sessions/YYYY-MM-DD/<session id>.jsonl`` (research runs beside
it under ``<session id>/subagents/``), with a dataset card.

Nothing leaves before the user accepted that session's preview (or pre-accepted in the config);
an upload happens only when the redacted trace changed since the last one; failures are retried
with backoff and, if they persist, again at the next start. State per session lives in
``<data dir>/trace_uploads.json``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from agent.redaction import Finding, Redactor, findings, leaked, redact_records
from agent.trace_export import claude_trace, load_events

log = logging.getLogger(__name__)

STATE_FILE = "trace_uploads.json"
REPO_NAME = "mlintern-sessions"
RETRY_DELAYS = (2.0, 8.0)
CARD = """---
tags:
- mlintern
- agent-traces
pretty_name: mlintern sessions
---
# mlintern sessions

Sessions of [mlintern](https://huggingface.co), an ML-engineering agent, as Claude Code JSONL
traces (`sessions/YYYY-MM-DD/<session id>.jsonl`; research sub-agent runs under
`sessions/YYYY-MM-DD/<session id>/subagents/`), which the Hub's Agent Trace Viewer renders.

Keys, tokens and secret values were masked before upload, and the user saw what would be
uploaded and accepted it for each session.
"""


@dataclass
class Prepared:
    """A session's trace as it would be uploaded."""

    session_id: str
    day: str
    files: dict[str, bytes]  # path in the repo -> redacted bytes
    records: int
    findings: list[Finding]
    digest: str

    @property
    def size(self) -> int:
        return sum(len(b) for b in self.files.values())


class UploadState:
    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def get(self, session_id: str) -> dict[str, Any]:
        return dict(self.load().get(session_id) or {})

    def update(self, session_id: str, **values: Any) -> None:
        data = self.load()
        entry = dict(data.get(session_id) or {})
        entry.update(values)
        data[session_id] = entry
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".trace_uploads.")
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, self.path)


@dataclass
class UploadResult:
    status: str  # uploaded | unchanged | failed | refused
    detail: str = ""
    url: str | None = None


@dataclass
class TraceUploader:
    store: Any
    data_dir: Path
    hub: str
    token: Callable[[], str | None]
    redactor: Callable[[], Redactor]
    #: secret values that must never appear in an upload (a last check on the bytes)
    secrets: Callable[[], list[str]] = list
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    _user: str | None = None
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def state(self) -> UploadState:
        return UploadState(self.data_dir / STATE_FILE)

    def _api(self) -> Any:
        from huggingface_hub import HfApi

        return HfApi(endpoint=self.hub, token=self.token())

    async def repo_id(self) -> str:
        if self._user is None:
            info = await asyncio.to_thread(self._api().whoami)
            self._user = info["name"]
        return f"{self._user}/{REPO_NAME}"

    def prepare(self, session_id: str) -> Prepared:
        """The redacted trace of a stored session (blocking: call it in a thread)."""
        stored = self.store.load(session_id)
        events = load_events(self.store, session_id)
        trace = claude_trace(session_id, stored.summary.cwd, events)
        redactor = self.redactor()
        found = findings(trace.lines, redactor)
        day = time.strftime("%Y-%m-%d", time.gmtime(stored.summary.created))
        base = f"sessions/{day}/{session_id}"
        files = {f"{base}.jsonl": trace.dump(redact_records(trace.lines, redactor)).encode()}
        records = len(trace.lines)
        for agent_id, (lines, meta) in trace.sidechains.items():
            found += findings(lines, redactor)
            files[f"{base}/subagents/agent-{agent_id}.jsonl"] = trace.dump(redact_records(lines, redactor)).encode()
            files[f"{base}/subagents/agent-{agent_id}.meta.json"] = json.dumps(redact_records([meta], redactor)[0]).encode()
            records += len(lines)
        digest = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(files.items()))).hexdigest()
        return Prepared(session_id, day, files, records, found, digest)

    async def upload(self, session_id: str, *, private: bool) -> UploadResult:
        """Upload the session's trace if it changed since the last upload and was accepted."""
        async with self._lock:
            state = self.state.get(session_id)
            if not state.get("accepted"):
                return UploadResult("refused", "its preview has not been accepted")
            if not self.token():
                return UploadResult("refused", "no Hugging Face token")
            try:
                prepared = await asyncio.to_thread(self.prepare, session_id)
            except Exception as exc:
                return UploadResult("failed", f"the trace could not be made: {type(exc).__name__}: {exc}")
            if prepared.digest == state.get("digest"):
                return UploadResult("unchanged", url=state.get("url"))
            leaks = [s for blob in prepared.files.values() for s in leaked(blob, self.secrets())]
            if leaks:  # the redactor missed one of the user's own secrets: never upload that
                self.state.update(session_id, error="a secret survived redaction; nothing was uploaded")
                return UploadResult("refused", f"{len(leaks)} secret value(s) survived redaction; nothing was uploaded")
            last = ""
            for attempt in range(len(RETRY_DELAYS) + 1):
                if attempt:
                    await self.sleep(RETRY_DELAYS[attempt - 1])
                try:
                    url = await self._push(prepared, private)
                except Exception as exc:  # retried, then kept for the next start
                    last = f"uploading to {self.hub} failed: {_error_text(exc)}"
                    continue
                self.state.update(session_id, digest=prepared.digest, url=url, uploaded_at=time.time(), error=None,
                                  pending=False)
                return UploadResult("uploaded", url=url)
            self.state.update(session_id, error=last, pending=True)
            return UploadResult("failed", last)

    async def _push(self, prepared: Prepared, private: bool) -> str:
        from huggingface_hub import CommitOperationAdd

        repo_id = await self.repo_id()
        api = self._api()

        def push() -> str:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            operations = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=b) for p, b in prepared.files.items()]
            if "README.md" not in api.list_repo_files(repo_id, repo_type="dataset"):
                operations.append(CommitOperationAdd(path_in_repo="README.md", path_or_fileobj=CARD.encode()))
            api.create_commit(repo_id, operations, commit_message=f"Trace of session {prepared.session_id}",
                              repo_type="dataset")
            return f"{self.hub.rstrip('/')}/datasets/{repo_id}/blob/main/sessions/{prepared.day}/{prepared.session_id}.jsonl"

        return await asyncio.to_thread(push)

    async def set_visibility(self, private: bool) -> str | None:
        """Change the dataset's visibility if it exists; an error sentence or None."""
        try:
            repo_id = await self.repo_id()
            api = self._api()

            def change() -> None:
                if api.repo_exists(repo_id, repo_type="dataset"):
                    api.update_repo_settings(repo_id, private=private, repo_type="dataset")

            await asyncio.to_thread(change)
        except Exception as exc:
            return _error_text(exc)
        return None

    def pending(self) -> list[str]:
        """Sessions whose accepted upload failed before (retried at the next start)."""
        return [sid for sid, entry in self.state.load().items() if entry.get("pending") and entry.get("accepted")]


def _error_text(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"HTTP {status}: {text}" if status else f"{type(exc).__name__}: {text}"
