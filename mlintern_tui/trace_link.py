"""The app's side of shared traces: ``/share-traces`` and its answers (``trace_status``, said as
a notice of a few lines), the preview screen a ``trace_preview`` opens, and the user's answer
to it going back as a ``trace_consent``.

A status is said when it answers the user (``/share-traces``, accepting the preview) or brings
something new (another place, a dataset URL, an error, a reason nothing can be shared); the
heartbeat's routine uploads, the same URL a minute later, stay quiet.

Built by the app on the first trace event or command; it gets the few things it uses (the
config, ``submit``, ``notice``, ``push_screen``, the wall clock), not the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from agent.protocol import Op, ShareTraces, TraceConsent, TracePreview, TraceStatus

if TYPE_CHECKING:
    from mlintern_tui.screens.trace_preview import TracePreviewScreen

WHERE = {
    "off": "off (nothing of this session is uploaded)",
    "private": "private (redacted, to your private dataset on the Hub)",
    "public": "public (redacted, to your public dataset on the Hub: anyone can read it)",
}
REFUSED = ("Not uploaded: you did not accept the preview, so nothing of this session's trace leaves this "
           "machine. Sharing stays as set for your next sessions (/share-traces off stops it).")


def status_notice(status: TraceStatus, now: float) -> tuple[str, str]:
    """(notice kind, text) for a ``trace_status``: where traces go, then the dataset and the last
    upload, or why nothing is uploaded, then an error."""
    from mlintern_tui.screens.resume_picker import format_age

    lines = [f"Trace sharing: {WHERE.get(status.visibility, status.visibility)}."]
    kind = "guard" if status.visibility == "public" else "info"
    if status.unavailable:
        lines.append(f"Nothing can be shared: {status.unavailable}.")
        kind = "guard"
    elif status.visibility != "off" and not status.accepted:
        lines.append("Nothing is uploaded until you accept this session's preview.")
    elif status.url:
        when = f"Last upload {format_age(now - status.uploaded_at)}" if status.uploaded_at else "Dataset"
        lines.append(f"{'Earlier uploads stay in' if status.visibility == 'off' else when + ':'} {status.url}")
    elif status.visibility != "off":
        lines.append("Accepted: the first upload is on its way.")
    else:
        lines[0] += " /share-traces private or public turns it on."
    if status.error:
        lines.append(f"Upload failed: {status.error.rstrip('.')}.")
        kind = "error"
    return kind, "\n".join(lines)


def _news(status: TraceStatus) -> tuple:
    """What makes a status worth saying again (the upload time alone does not)."""
    return (status.visibility, status.url, status.error, status.unavailable, status.accepted)


class TraceLink:
    def __init__(self, *, config: Any, submit: Callable[[Op], None], notice: Callable[[str, str], Awaitable[None]],
                 push_screen: Callable[..., Any], clock: Callable[[], float]):
        self.config = config
        self.submit = submit
        self.notice = notice
        self.push_screen = push_screen
        self.clock = clock
        #: the last status the session sent
        self.status: TraceStatus | None = None
        #: the preview screen while it is open
        self.screen: TracePreviewScreen | None = None
        self._said: tuple | None = None
        self._asked = 0  # statuses owed to the user's own requests: always said
        self._refused = False  # the user said "not now": already told, the answering status is not news

    @property
    def visibility(self) -> str:
        if self.status is not None:
            return self.status.visibility
        return getattr(self.config, "share_traces", "private")

    # ------------------------------------------------------------------ the user

    def ask(self, visibility: str | None) -> None:
        """``/share-traces [off|private|public]``: set where traces go, or just ask."""
        self._asked += 1
        self.submit(ShareTraces(visibility=visibility))  # type: ignore[arg-type]

    def mask(self, patterns: list[str], save: bool) -> None:
        """Mask more (the session answers with a new preview, or an error)."""
        self.submit(TraceConsent(mask=patterns, save=save))

    async def answered(self, accept: bool) -> None:
        """The preview closed with an answer: to the session, and a notice when it was "not now"."""
        if accept:
            self._asked += 1
        else:
            self._refused = True
        self.submit(TraceConsent(accept=accept))
        if not accept:
            await self.notice("info", REFUSED)

    # ------------------------------------------------------------------ the session

    async def on_status(self, status: TraceStatus) -> None:
        self.status = status
        asked, self._asked = self._asked > 0, max(0, self._asked - 1)
        if self._refused and status.visibility == "off" and not status.error:
            self._refused = False  # the answer to "not now", said already
            self._said = _news(status)
            return
        if not asked and _news(status) == self._said:
            return
        self._said = _news(status)
        kind, text = status_notice(status, self.clock())
        await self.notice(kind, text)

    def on_preview(self, preview: TracePreview) -> None:
        """The open preview follows; otherwise one opens."""
        from mlintern_tui.screens.trace_preview import TracePreviewScreen

        if self.screen is not None:
            self.screen.show_preview(preview, self.visibility)
            return
        screen = TracePreviewScreen(preview, self.visibility)
        self.screen = screen

        async def closed(accept: bool | None) -> None:
            if self.screen is screen:
                self.screen = None
            await self.answered(bool(accept))

        self.push_screen(screen, callback=closed)

    async def on_error(self, message: str) -> None:
        """The session could not do what was asked (a bad pattern, no store): on the open
        preview, and kept in the conversation."""
        if self.screen is not None:
            self.screen.show_error(message)
        await self.notice("error", message)
