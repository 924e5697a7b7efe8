"""The session's side of shared traces: the ``share_traces`` setting (off, private, public),
``/share-traces`` (``share_traces`` op), the preview the user accepts before a session's first
upload (``trace_preview`` event, ``trace_consent`` op), and a heartbeat that flushes the store
and uploads what changed, off the event loop. Mixed into ``Session``.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from agent.protocol import ErrorEvent, ToolLog, TraceFinding, TracePreview, TraceStatus

log = logging.getLogger(__name__)


class TraceShareMixin:
    config: Any
    data_dir: Path
    persist: Any
    masker: Any
    engine: Any
    id: str
    _uploader: Any = None
    _heartbeat: asyncio.Task | None = None
    _upload_task: asyncio.Task | None = None
    _previewed: set | None = None

    # ------------------------------------------------------------------ parts

    def _trace_uploader(self):
        if self._uploader is None:
            from agent.llm.models import hf_token
            from agent.endpoints import Endpoints
            from agent.redaction import Redactor, home_dir
            from agent.trace_upload import TraceUploader

            def redactor() -> Redactor:
                return Redactor(self.masker.secrets, self.config.trace_redact_patterns,
                                home_dir() if self.config.trace_redact_home else None)

            self._uploader = TraceUploader(
                store=self.persist.store, data_dir=self.data_dir,
                hub=Endpoints.resolve(dict(self.config.endpoints or {})).hub, token=hf_token,
                redactor=redactor, secrets=lambda: list(self.masker.secrets))
        self._uploader.store = self.persist.store  # opened after "ready", and closed at the end
        return self._uploader

    def _sharing(self) -> bool:
        from agent.llm.models import hf_token

        return self.config.share_traces != "off" and self.persist.store is not None and bool(hf_token())

    def _trace_status(self, error: str | None = None) -> TraceStatus:
        from agent.llm.models import hf_token

        state = self._trace_uploader().state.get(self.id) if self.persist.store is not None else {}
        why = None
        if self.persist.store is None:
            why = "sessions are not saved (save_sessions is off, or the store could not open)"
        elif not hf_token():
            why = "no Hugging Face token: set HF_TOKEN or run `hf auth login`"
        return TraceStatus(visibility=self.config.share_traces, url=state.get("url"),
                           uploaded_at=state.get("uploaded_at"), error=error or state.get("error"),
                           accepted=bool(state.get("accepted") or self.config.share_traces_preaccepted),
                           unavailable=why)

    async def _flush_store(self) -> None:
        store = self.persist.store
        if store is not None:
            await asyncio.to_thread(store.flush, 5.0)

    # ------------------------------------------------------------------ ops

    async def _share_traces(self, visibility: str | None) -> None:
        if visibility is not None and visibility != "off" and self._previewed:
            self._previewed.discard(self.id)  # sharing turned on again after "not now": preview again
        if visibility is not None and visibility != self.config.share_traces:
            from agent.config import save_config_value

            self.config.share_traces = visibility
            try:
                save_config_value("share_traces", visibility)
            except Exception as exc:
                self.engine.emit(ToolLog(tool="system", log=f"share_traces is {visibility} for this session only: "
                                                            f"the config could not be written ({exc})."))
            if visibility != "off" and self.persist.store is not None:
                error = await self._trace_uploader().set_visibility(private=visibility == "private")
                if error and "404" not in error:
                    self.engine.emit(self._trace_status(error=f"visibility not changed: {error}"))
                    return
        if self._sharing():
            self._start_heartbeat()
            self._upload_soon()  # now, not at the next heartbeat (the preview first, if not accepted yet)
        self.engine.emit(self._trace_status())

    async def _trace_consent(self, accept: bool, mask: list[str], save: bool) -> None:
        if self.persist.store is None:
            self.emit(ErrorEvent(message="Sessions are not saved, so there is no trace to share.", kind="traces"))
            return
        if mask:
            import re

            bad = []
            for pattern in mask:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    bad.append(f"{pattern!r}: {exc}")
            if bad:
                self.emit(ErrorEvent(message="Not a pattern: " + "; ".join(bad), kind="traces"))
                return
            self.config.trace_redact_patterns = list(dict.fromkeys([*self.config.trace_redact_patterns, *mask]))
            if save:
                from agent.config import save_config_value

                save_config_value("trace_redact_patterns", self.config.trace_redact_patterns)
            await self._send_preview()  # what leaves now, with the new masks
            return
        uploader = self._trace_uploader()
        uploader.state.update(self.id, accepted=accept)
        if not accept:
            self.config.share_traces = "off"  # for this session: the user said no
        else:
            self._upload_soon()
        self.engine.emit(self._trace_status())

    async def _send_preview(self) -> None:
        uploader = self._trace_uploader()
        await self._flush_store()
        try:
            prepared = await asyncio.to_thread(uploader.prepare, self.id)
        except Exception as exc:
            self.emit(ErrorEvent(message=f"The trace preview could not be made: {type(exc).__name__}: {exc}",
                                 kind="traces"))
            return
        self.engine.emit(TracePreview(
            records=prepared.records, bytes=prepared.size, files=sorted(prepared.files),
            findings=[TraceFinding(record=f.record, field=f.field, kind=f.kind, context=f.context)
                      for f in prepared.findings]))

    # ------------------------------------------------------------------ heartbeat

    def _start_traces(self) -> None:
        """After "ready": the heartbeat when sharing is on, and last time's failed uploads."""
        if not self._sharing():
            return
        self._start_heartbeat()
        uploader = self._trace_uploader()
        pending = [sid for sid in uploader.pending() if sid != self.id]
        if pending:
            self._upload_task = asyncio.create_task(self._retry(pending))

    async def _retry(self, sessions: list[str]) -> None:
        private = self.config.share_traces != "public"
        for sid in sessions:
            result = await self._trace_uploader().upload(sid, private=private)
            if result.status == "uploaded":
                self.engine.emit(ToolLog(tool="system", log=f"Uploaded the trace of session {sid[:8]} that failed "
                                                            f"last time: {result.url}"))

    def _start_heartbeat(self) -> None:
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.create_task(self._beat(), name="trace-heartbeat")

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            await self._flush_store()
            self._upload_soon()

    def _upload_soon(self) -> None:
        """Upload this session's trace in the background if it changed (or ask first)."""
        if not self._sharing() or (self._upload_task is not None and not self._upload_task.done()):
            return
        self._upload_task = asyncio.create_task(self._upload_now())

    async def _upload_now(self) -> None:
        uploader = self._trace_uploader()
        if self.config.share_traces_preaccepted:
            uploader.state.update(self.id, accepted=True)
        state = uploader.state.get(self.id)
        if not state.get("accepted"):
            if self._previewed is None:
                self._previewed = set()
            if self.id not in self._previewed and not self.persist.headless:
                self._previewed.add(self.id)
                await self._send_preview()  # the app shows it; nothing leaves until accepted
            return
        await self._flush_store()
        result = await uploader.upload(self.id, private=self.config.share_traces != "public")
        if result.status in ("uploaded", "failed", "refused"):
            self.engine.emit(self._trace_status(error=result.detail if result.status != "uploaded" else None))

    async def _finish_traces(self) -> None:
        """At shutdown: one last upload of what changed (bounded), the heartbeat stopped."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if not self._sharing():
            return
        try:
            if self._upload_task is not None and not self._upload_task.done():
                await asyncio.wait_for(asyncio.shield(self._upload_task), 10)
            state = self._trace_uploader().state.get(self.id)
            if state.get("accepted") or self.config.share_traces_preaccepted:
                await asyncio.wait_for(self._upload_now(), 15)
            elif self.persist.headless:
                self.engine.emit(ToolLog(tool="system", log=(
                    "This session's trace was not uploaded: nobody accepted its preview (headless). Set "
                    "share_traces_preaccepted in the config to upload headless runs, or share it from the app.")))
        except Exception:
            log.debug("last trace upload skipped", exc_info=True)
