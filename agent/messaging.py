"""Notifications to the outside: Slack destinations for the ``notify`` tool and for automatic
news (an approval waits, an error, a turn or a job ended), so an unattended run can say so.

Config ``messaging``::

    {"enabled": true, "auto_event_types": ["approval_required", "error", "turn_complete", "job_ended"],
     "destinations": {"team": {"provider": "slack", "token": "${SLACK_BOT_TOKEN}", "channel": "C123",
                               "allow_agent_tool": true, "allow_auto_events": true}}}

or the environment shortcut ``SLACK_BOT_TOKEN`` + ``SLACK_CHANNEL_ID`` (or ``SLACK_CHANNEL``),
which adds ``slack.default`` with both allowances (``MLINTERN_SLACK_NOTIFICATIONS=0`` turns it
off; ``MLINTERN_SLACK_DESTINATION``, ``MLINTERN_SLACK_ALLOW_AGENT_TOOL``,
``MLINTERN_SLACK_ALLOW_AUTO_EVENTS``, ``MLINTERN_SLACK_AUTO_EVENTS`` adjust it). Everything that
cannot work (an unknown key or provider, a destination without a token or channel) is a
problem the session states at start, never a silent no-op.

Delivery is ``chat.postMessage`` (``MLINTERN_SLACK_API_URL`` for a mirror or a test), Markdown
turned into Slack's mrkdwn; timeouts, transport errors, 429 (its Retry-After honoured, capped),
5xx and ``ratelimited`` are retried after 1, 2, 4 s; anything else is final and said. Automatic
news goes through a background queue that is flushed (bounded) when the session closes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping

log = logging.getLogger(__name__)

AUTO_EVENTS = ("approval_required", "error", "turn_complete", "job_ended")
_NAME = re.compile(r"^[a-z0-9._-]+$")
_DEST_KEYS = {"provider", "token", "channel", "allow_agent_tool", "allow_auto_events", "username", "icon_emoji"}
_TOP_KEYS = {"enabled", "auto_event_types", "destinations"}
RETRY_DELAYS = (1.0, 2.0, 4.0)
MAX_RETRY_AFTER_S = 30.0
MAX_TEXT = 39_000
SEVERITIES = ("info", "success", "warning", "error")


@dataclass
class Destination:
    name: str
    token: str
    channel: str
    allow_agent_tool: bool = False
    allow_auto_events: bool = False
    username: str | None = None
    icon_emoji: str | None = None


@dataclass
class MessagingConfig:
    destinations: dict[str, Destination] = field(default_factory=dict)
    auto_events: tuple[str, ...] = AUTO_EVENTS
    problems: list[str] = field(default_factory=list)

    @property
    def tool_destinations(self) -> list[str]:
        return [n for n, d in self.destinations.items() if d.allow_agent_tool]

    @property
    def auto_destinations(self) -> list[str]:
        return [n for n, d in self.destinations.items() if d.allow_auto_events]


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value.strip() == "":
        return default
    return value.strip().lower() not in ("0", "false", "no", "off")


def parse_messaging(raw: Any, env: Mapping[str, str] | None = None) -> MessagingConfig:
    """The usable destinations and every problem in words (nothing raised)."""
    env = os.environ if env is None else env
    out = MessagingConfig()
    raw = raw or {}
    if not isinstance(raw, dict):
        out.problems.append("messaging must be an object")
        raw = {}
    unknown = sorted(set(raw) - _TOP_KEYS)
    if unknown:
        out.problems.append(f"messaging: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_TOP_KEYS))})")
    enabled = raw.get("enabled", bool(raw.get("destinations")))
    events = raw.get("auto_event_types")
    if events is not None:
        bad = [e for e in events if e not in AUTO_EVENTS] if isinstance(events, list) else ["(not a list)"]
        if bad:
            out.problems.append(f"messaging.auto_event_types: {', '.join(map(str, bad))} not known "
                                f"(known: {', '.join(AUTO_EVENTS)})")
        out.auto_events = tuple(e for e in (events if isinstance(events, list) else []) if e in AUTO_EVENTS)
    dests = raw.get("destinations") or {}
    if not isinstance(dests, dict):
        out.problems.append("messaging.destinations must be an object of named destinations")
        dests = {}
    if enabled and not dests and not env.get("SLACK_BOT_TOKEN"):
        out.problems.append("messaging is enabled but has no destination: add one under messaging.destinations")
    for name, spec in dests.items():
        where = f"messaging.destinations.{name}"
        if not _NAME.match(str(name)):
            out.problems.append(f"{where}: a name takes lowercase letters, digits, '.', '_' and '-' only")
            continue
        if not isinstance(spec, dict):
            out.problems.append(f"{where}: expected an object")
            continue
        extra = sorted(set(spec) - _DEST_KEYS)
        if extra:
            out.problems.append(f"{where}: unknown key(s) {', '.join(extra)}")
        if spec.get("provider", "slack") != "slack":
            out.problems.append(f"{where}: provider {spec.get('provider')!r} is not supported (only slack)")
            continue
        token, channel = str(spec.get("token") or "").strip(), str(spec.get("channel") or "").strip()
        if not token or not channel:
            out.problems.append(f"{where}: needs both a token and a channel; nothing is sent there")
            continue
        if not enabled:
            continue
        out.destinations[name] = Destination(
            name, token, channel, bool(spec.get("allow_agent_tool", False)), bool(spec.get("allow_auto_events", False)),
            spec.get("username"), spec.get("icon_emoji"))
    if not enabled and dests:
        out.problems.append("messaging.enabled is false: its destinations are not used")
    token = env.get("SLACK_BOT_TOKEN")
    channel = env.get("SLACK_CHANNEL_ID") or env.get("SLACK_CHANNEL")
    if token and _flag(env.get("MLINTERN_SLACK_NOTIFICATIONS"), True):
        name = env.get("MLINTERN_SLACK_DESTINATION") or "slack.default"
        if not channel:
            out.problems.append("SLACK_BOT_TOKEN is set without SLACK_CHANNEL_ID: no Slack destination was added")
        elif name not in out.destinations:
            out.destinations[name] = Destination(
                name, token, channel, _flag(env.get("MLINTERN_SLACK_ALLOW_AGENT_TOOL"), True),
                _flag(env.get("MLINTERN_SLACK_ALLOW_AUTO_EVENTS"), True))
            if env.get("MLINTERN_SLACK_AUTO_EVENTS"):
                wanted = [e.strip() for e in env["MLINTERN_SLACK_AUTO_EVENTS"].split(",") if e.strip()]
                bad = [e for e in wanted if e not in AUTO_EVENTS]
                if bad:
                    out.problems.append(f"MLINTERN_SLACK_AUTO_EVENTS: {', '.join(bad)} not known")
                out.auto_events = tuple(e for e in wanted if e in AUTO_EVENTS)
    return out


# --------------------------------------------------------------------------- Markdown to mrkdwn

_FENCE = re.compile(r"```.*?```", re.S)
_INLINE = re.compile(r"`[^`\n]+`")
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_HEADER = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def to_mrkdwn(text: str) -> str:
    """Slack's mrkdwn from Markdown: code kept as it is, links ``<url|label>``, headers and bold
    as ``*…*``; ``&``, ``<`` and ``>`` escaped outside code as Slack requires."""
    kept: list[str] = []

    def keep(match: re.Match[str]) -> str:
        kept.append(match.group(0))
        return f"\x00{len(kept) - 1}\x00"

    text = _FENCE.sub(keep, text)
    text = _INLINE.sub(keep, text)
    links: list[str] = []

    def link(match: re.Match[str]) -> str:
        links.append(f"<{match.group(2)}|{match.group(1)}>")
        return f"\x01{len(links) - 1}\x01"

    text = _LINK.sub(link, text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _HEADER.sub(lambda m: f"*{m.group(1)}*", text)
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    text = re.sub("\x01(\\d+)\x01", lambda m: links[int(m.group(1))], text)
    return re.sub("\x00(\\d+)\x00", lambda m: kept[int(m.group(1))], text)


def compose(title: str, message: str, severity: str, meta: dict[str, str]) -> str:
    head = f"[{severity.upper()}] {title}".strip()
    lines = [head, "", message.strip()] if message.strip() else [head]
    if meta:
        lines += [""] + [f"{k}: {v}" for k, v in meta.items() if v]
    return to_mrkdwn("\n".join(lines))[:MAX_TEXT]


# --------------------------------------------------------------------------- delivery


_REFUSALS = {
    "invalid_auth": "Slack refused the token (invalid_auth)",
    "not_authed": "no Slack token was accepted (not_authed)",
    "account_inactive": "the Slack token belongs to a deactivated account (account_inactive)",
    "channel_not_found": "Slack has no channel {channel} for this token (channel_not_found)",
    "not_in_channel": "the bot is not in channel {channel} (not_in_channel)",
}


class SlackClient:
    def __init__(self, api_url: str | None = None, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 timeout_s: float = 10.0):
        self.api_url = (api_url or os.environ.get("MLINTERN_SLACK_API_URL") or "https://slack.com/api").rstrip("/")
        self._sleep = sleep
        self.timeout_s = timeout_s
        self._client: Any = None

    async def post(self, dest: Destination, text: str) -> str | None:
        """Deliver ``text``; None when Slack took it, else why not (after the retries)."""
        import httpx

        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout_s, trust_env=False)
        payload: dict[str, Any] = {"channel": dest.channel, "text": text, "mrkdwn": True,
                                   "unfurl_links": False, "unfurl_media": False}
        if dest.username:
            payload["username"] = dest.username
        if dest.icon_emoji:
            payload["icon_emoji"] = dest.icon_emoji
        last = "no answer"
        delay = 0.0
        for attempt in range(len(RETRY_DELAYS) + 1):
            if delay:
                await self._sleep(delay)
            retry_after = 0.0
            try:
                response = await self._client.post(f"{self.api_url}/chat.postMessage", json=payload,
                                                   headers={"Authorization": f"Bearer {dest.token}"})
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last = f"could not reach Slack ({type(exc).__name__})"
            else:
                if response.status_code == 429:
                    after = response.headers.get("Retry-After", "")
                    last = f"rate limited (HTTP 429, Retry-After {after or '?'})"
                    try:
                        retry_after = min(max(float(after), 0.0), MAX_RETRY_AFTER_S)
                    except ValueError:
                        pass
                elif response.status_code >= 500:
                    last = f"Slack answered HTTP {response.status_code}"
                else:
                    try:
                        body = response.json()
                    except ValueError:
                        body = None
                        last = f"Slack's answer was not JSON (HTTP {response.status_code})"
                    if isinstance(body, dict):
                        if body.get("ok"):
                            return None
                        error = body.get("error") or f"HTTP {response.status_code}"
                        if error != "ratelimited":
                            return _REFUSALS.get(error, "Slack refused the message ({error})").format(
                                error=error, channel=dest.channel)
                        last = "rate limited by Slack"
            if attempt < len(RETRY_DELAYS):
                delay = max(RETRY_DELAYS[attempt], retry_after)
        return f"{last}; gave up after {len(RETRY_DELAYS) + 1} attempts"

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()


class Messenger:
    """The session's gateway: ``send`` for the notify tool, ``auto`` for news (queued)."""

    def __init__(self, config: MessagingConfig, meta: Callable[[], dict[str, str]] = dict,
                 client: SlackClient | None = None, on_failure: Callable[[str], None] = lambda line: None):
        self.config = config
        self.meta = meta
        self.client = client or SlackClient()
        self.on_failure = on_failure
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self.sent: int = 0

    async def send(self, names: list[str], title: str, message: str, severity: str = "info",
                   event_type: str = "notify") -> list[tuple[str, str | None]]:
        text = compose(title, message, severity, {**self.meta(), "event_type": event_type})
        results = []
        for name in names:
            error = await self.client.post(self.config.destinations[name], text)
            self.sent += error is None
            results.append((name, error))
        return results

    def auto(self, event_type: str, title: str, message: str, severity: str) -> None:
        """Queue news for the destinations that take automatic events (never blocks)."""
        if event_type not in self.config.auto_events or not self.config.auto_destinations:
            return
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._drain(), name="messaging")
        self._queue.put_nowait((event_type, title, message, severity))

    async def _drain(self) -> None:
        assert self._queue is not None
        while True:
            event_type, title, message, severity = await self._queue.get()
            try:
                for name, error in await self.send(self.config.auto_destinations, title, message, severity, event_type):
                    if error:
                        self.on_failure(f"Could not notify {name}: {error}.")
            except Exception as exc:  # a notification never takes the session down
                log.debug("notification failed", exc_info=True)
                self.on_failure(f"Could not send a notification: {type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    async def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (at most ``timeout_s``), then stop."""
        if self._queue is not None and self._worker is not None:
            try:
                await asyncio.wait_for(self._queue.join(), timeout_s)
            except asyncio.TimeoutError:
                self.on_failure(f"{self._queue.qsize()} notification(s) not sent: Slack did not take them in time.")
            self._worker.cancel()
        await self.client.aclose()


_FINAL_JOB = frozenset({"COMPLETED", "ERROR", "CANCELED", "DELETED"})


def news_for(event: Any, said_jobs: set[str]) -> tuple[str, str, str, str] | None:
    """(event type, title, message, severity) of an event worth telling people, or None."""
    kind = event.type
    if kind == "approval_required":
        items = event.items
        lines = [f"- {i.tool}" + (f": {i.reason}" if i.reason else "") for i in items[:10]]
        more = f"\n… and {len(items) - 10} more" if len(items) > 10 else ""
        return ("approval_required", "Agent approval required",
                f"{len(items)} call{'s' if len(items) != 1 else ''} wait for you:\n" + "\n".join(lines) + more, "warning")
    if kind == "error":
        return "error", "Agent error", event.message[:500], "error"
    if kind == "turn_complete":
        if event.reason == "approval_pending":
            return None  # the approval news says it
        title = {"done": "Agent task complete", "iteration_cap": "Agent stopped at its step limit",
                 "budget": "Agent paused: the YOLO budget is spent"}.get(event.reason, "Agent turn ended")
        return "turn_complete", title, (event.final_response or "")[:MAX_TEXT], \
            "success" if event.reason == "done" else "warning"
    if kind == "job_update" and event.status in _FINAL_JOB and event.job_id not in said_jobs:
        said_jobs.add(event.job_id)
        cost = f" · ${event.cost_usd:.2f}" if event.cost_usd is not None else ""
        detail = f"\n{event.detail}" if event.detail else ""
        link = f"\n{event.url}" if event.url else ""
        severity = "success" if event.status == "COMPLETED" else ("warning" if event.status == "CANCELED" else "error")
        return ("job_ended", f"Job {event.job_id} {event.status.lower()}",
                f"{event.flavor or 'job'}{cost}{detail}{link}", severity)
    return None
