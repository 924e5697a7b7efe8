"""HTTP for the knowledge tools: endpoints, token hygiene, errors for people, a disk cache.

Every request the papers, docs, dataset, web and GitHub tools make goes through one
``Net`` per session (an ``httpx.AsyncClient``, imported on first use), so three rules hold
in one place instead of in each tool:

* **Tokens go only where they belong.** A request asks for ``auth="hf"`` or
  ``auth="github"``; the HF token is attached only when the URL's origin is the configured
  Hub or one of its subdomains (the dataset viewer included, while its host is under the
  Hub's), the GitHub token only to the configured GitHub API. A
  redirect is followed by hand and the decision is made again for every hop, so a Hub URL
  that redirects elsewhere never carries the token there (reference §12 item 7).
* **Failures are sentences.** Offline / DNS failure (within the connect timeout, a few
  seconds), refused connections, 401, 403 (a gated repo says where to accept its terms),
  404, 402, 429 and 5xx become a ``NetError`` whose message says what happened and what
  to do. A 429 with a short ``Retry-After`` is waited once; a longer one is reported at
  once with the wait the server asked for, and later calls to that host inside the window
  fail fast instead of hammering it (never a minute's sleep inside a tool, §12 item 25).
* **Bodies are bounded.** A response is read up to ``max_bytes`` and marked truncated.

Responses a tool marks cacheable are kept on disk under the data dir with a TTL, keyed by
the request and a hash of the token that went with it, so a paper or a docs page read
yesterday costs nothing today (agent/net_cache.py). The sentences for failures are in
agent/net_errors.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Literal
from urllib.parse import urlencode, urljoin

from agent.endpoints import ENDPOINT_DEFAULTS, Endpoints
from agent.net_cache import ResponseCache, prune_cache
from agent.net_errors import (  # the tools import these from agent.net
    NetError,
    _host,
    connect_error,
    hub_error_text,
    origin,
    retry_after_seconds,
    status_error,
)

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

__all__ = ["ENDPOINT_DEFAULTS", "Endpoints", "Net", "NetError", "Response", "ResponseCache", "connect_error",
           "hub_error_text", "origin", "prune_cache", "retry_after_seconds", "status_error"]

Auth = Literal["hf", "github"] | None

USER_AGENT = "mlintern-tui/0.1 (+https://huggingface.co)"
#: a 429 asking for at most this long is waited once inside the call; longer is reported
SHORT_RETRY_AFTER_S = 3.0
MAX_REDIRECTS = 5
#: caller headers that follow a redirect to another host (anything else may be a credential)
_PORTABLE_HEADERS = frozenset({"accept", "accept-language", "accept-encoding"})


def _same_or_subdomain(url: str, base: str) -> bool:
    s, h, p = origin(url)
    bs, bh, bp = origin(base)
    if not h or not bh or p != bp:
        return False
    if s != bs and not (bs == "http" and s == "https"):
        return False
    return h == bh or h.endswith("." + bh)


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    content: bytes
    truncated: bool = False
    from_cache: bool = False

    @property
    def text(self) -> str:
        charset = "utf-8"
        ctype = self.headers.get("content-type", "")
        if "charset=" in ctype:
            charset = ctype.split("charset=", 1)[1].split(";")[0].strip() or "utf-8"
        try:
            return self.content.decode(charset, errors="replace")
        except LookupError:
            return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except ValueError as exc:
            what = "was cut off at the size limit" if self.truncated else "is not valid JSON"
            raise NetError(f"The answer from {_host(self.url)} {what} ({exc}).", kind="bad_response",
                           url=self.url, status=self.status) from exc


@dataclass
class Net:
    """One per session. ``hf_token`` and ``github_token`` are read when a request needs them
    (a callable, so a token set after start is used, and tests can give none)."""

    endpoints: Endpoints
    hf_token: Callable[[], str | None] = lambda: None
    github_token: Callable[[], str | None] = lambda: None
    cache_dir: Path | None = None
    #: the longest a cached answer is reused, whatever a tool asks (config knowledge_cache_ttl_s; 0: no cache)
    max_cache_ttl_s: float = 86_400.0
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    sleep: Callable[[float], Any] = asyncio.sleep
    #: origin -> time before which requests fail fast (after a long 429)
    _not_before: dict[tuple[str, str, int], float] = field(default_factory=dict)
    #: the largest the response cache may grow (oldest entries go first)
    max_cache_bytes: int = 200_000_000
    _pruned: bool = False
    _prune_task: Any = None
    #: origin -> until when it is known to answer (see ``reachable``)
    _answers_until: dict[tuple[str, str, int], float] = field(default_factory=dict)
    _client: Any = None

    @classmethod
    def for_config(cls, config: Any = None, cache_dir: Path | None = None) -> Net:
        from agent.llm.models import hf_token

        configured = dict(getattr(config, "endpoints", None) or {})
        return cls(Endpoints.resolve(configured), hf_token=hf_token,
                   github_token=lambda: os.environ.get("GITHUB_TOKEN") or os.environ.get("GH_TOKEN") or None,
                   cache_dir=cache_dir, max_cache_ttl_s=float(getattr(config, "knowledge_cache_ttl_s", 86_400.0)))

    # ------------------------------------------------------------------ token hygiene

    def token_for(self, url: str, auth: Auth) -> str | None:
        """The token a request to ``url`` may carry, or None. The only place tokens are chosen."""
        if auth == "hf":
            e = self.endpoints
            if _same_or_subdomain(url, e.hub):
                return self.hf_token()
            # the dataset viewer is a Hub service on a host of its own (datasets-server.huggingface.co):
            # it gets the token only while it lives under the Hub's host name
            hub_host, viewer = origin(e.hub)[1], origin(e.datasets_server)
            if origin(url) == viewer and (viewer[1] == hub_host or viewer[1].endswith("." + hub_host)):
                return self.hf_token()
            return None
        if auth == "github":
            if origin(url) == origin(self.endpoints.github_api):
                return self.github_token()
            return None
        return None

    def hub_offline(self, url: str) -> bool:
        return os.environ.get("HF_HUB_OFFLINE") == "1" and _same_or_subdomain(url, self.endpoints.hub)

    def _prune_once(self) -> None:
        """Once per session, in a thread: expired cache entries go, then the oldest until the
        cache fits ``max_cache_bytes`` (it would otherwise grow for ever)."""
        if self._pruned or self.cache_dir is None:
            return
        self._pruned = True
        root, ttl, cap = self.cache_dir, self.max_cache_ttl_s, self.max_cache_bytes
        self._prune_task = asyncio.get_running_loop().run_in_executor(None, prune_cache, root, ttl, cap)

    # ------------------------------------------------------------------ requests

    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(self.read_timeout_s, connect=self.connect_timeout_s),
                follow_redirects=False, headers={"User-Agent": USER_AGENT}, trust_env=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    async def reachable(self, url: str, ttl_s: float = 30.0) -> None:
        """Raise a ``NetError`` within the connect timeout when ``url``'s host cannot be
        reached; any HTTP answer counts as reachable (remembered for ``ttl_s``). Blocking
        clients (huggingface_hub) retry a dead host for many seconds inside their own
        calls: this check in front of them makes a dead network a sentence in seconds."""
        key = origin(url)
        if self._answers_until.get(key, 0.0) > time.monotonic():
            return
        if self.hub_offline(url):
            raise NetError(f"The Hub is not reachable in offline mode (HF_HUB_OFFLINE=1): unset it to reach {_host(url)}.",
                           kind="offline", url=url)
        s, h, p = key
        await self._once("HEAD", f"{s}://{h}:{p}/", {}, None, 0, self.connect_timeout_s)
        self._answers_until[key] = time.monotonic() + ttl_s

    async def get(self, url: str, **kw: Any) -> Response:
        return await self.request("GET", url, **kw)

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: Auth = None,
        cache_ttl: float | None = None,
        max_bytes: int = 8_000_000,
        timeout_s: float | None = None,
        ok: tuple[int, ...] = (),
        reject: Callable[[dict[str, str]], str | None] | None = None,
    ) -> Response:
        """One request, redirects followed by hand (the token decided per hop). Raises
        ``NetError``; statuses in ``ok`` are returned instead of raised (e.g. a 404 the
        caller handles itself). ``form`` sends a URL-encoded body. ``reject`` sees a
        successful answer's headers before its body is read: a sentence it returns is
        raised as a ``NetError`` (kind "rejected") and the body is never downloaded (a
        binary file where a page was expected)."""
        if params:
            clean = {k: v for k, v in params.items() if v is not None}
            if clean:
                url = f"{url}{'&' if '?' in url else '?'}{urlencode(clean, doseq=True)}"
        if self.hub_offline(url):
            raise NetError(f"The Hub is not reachable in offline mode (HF_HUB_OFFLINE=1): {url} was not fetched.",
                           kind="offline", url=url)
        key = None
        if cache_ttl:
            cache_ttl = min(cache_ttl, self.max_cache_ttl_s)
        if cache_ttl and self.cache_dir is not None and method == "GET":
            self._prune_once()
            token = self.token_for(url, auth)
            # whose answer it is: a private or gated answer is never served to another account
            who = hashlib.sha256(token.encode()).hexdigest()[:16] if token else None
            key = hashlib.sha256(json.dumps([method, url, who, headers or {}], sort_keys=True).encode()).hexdigest()
            entry = await asyncio.to_thread(ResponseCache(self.cache_dir).get, key, cache_ttl)
            if entry is not None:
                return Response(entry.url, entry.status, entry.headers, entry.content, from_cache=True)
        waited = False
        while True:
            response = await self._follow(method, url, params=None, json_body=json_body, headers=headers, auth=auth,
                                          max_bytes=max_bytes, timeout_s=timeout_s, form=form, reject=reject)
            if response.status == 429 and not waited:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if wait is not None and wait <= SHORT_RETRY_AFTER_S:
                    waited = True
                    await self.sleep(wait)
                    continue
            if response.status in (502, 503, 504) and not waited:
                waited = True
                await self.sleep(1.0)
                continue
            break
        if response.status >= 400 and response.status not in ok:
            if response.status == 429:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if wait:
                    self._not_before[origin(url)] = time.monotonic() + wait
            raise status_error(response.status, response.url, response.headers, response.text,
                               hub=self.endpoints.hub, token_sent=bool(self.token_for(response.url, auth)))
        if key is not None and response.status == 200 and not response.truncated:
            await asyncio.to_thread(ResponseCache(self.cache_dir).put, key, response)  # type: ignore[arg-type]
        return response

    async def _follow(self, method: str, url: str, *, params: Any, json_body: Any, headers: dict[str, str] | None,
                      auth: Auth, max_bytes: int, timeout_s: float | None, form: dict[str, str] | None = None,
                      reject: Callable[[dict[str, str]], str | None] | None = None) -> Response:
        for _ in range(MAX_REDIRECTS + 1):
            blocked = self._not_before.get(origin(url), 0.0) - time.monotonic()
            if blocked > 0:
                raise NetError(f"{_host(url)} asked us to wait before more requests (429); "
                               f"{blocked:.0f} s are left. Try again after that, or use another source.",
                               kind="rate_limited", url=url, status=429, retry_after=blocked)
            hdrs = dict(headers or {})
            token = self.token_for(url, auth)
            if token:
                hdrs["Authorization"] = f"Bearer {token}"
            response = await self._once(method, url, hdrs, json_body, max_bytes, timeout_s, form, reject)
            if response.status in (301, 302, 303, 307, 308) and "location" in response.headers:
                target = urljoin(url, response.headers["location"])
                if origin(target) != origin(url) and headers:
                    # a caller's key (S2's x-api-key, a cookie) is for the host it named: on
                    # another host only content negotiation goes along
                    headers = {k: v for k, v in headers.items() if k.lower() in _PORTABLE_HEADERS}
                url = target
                if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                    method, json_body, form = "GET", None, None
                continue
            return response
        raise NetError(f"Too many redirects starting at {url}.", kind="bad_response", url=url)

    async def _once(self, method: str, url: str, headers: dict[str, str], json_body: Any, max_bytes: int,
                    timeout_s: float | None, form: dict[str, str] | None = None,
                    reject: Callable[[dict[str, str]], str | None] | None = None) -> Response:
        import httpx

        client = self.client()
        timeout = httpx.Timeout(timeout_s or self.read_timeout_s, connect=self.connect_timeout_s)
        try:
            async with client.stream(method, url, headers=headers, json=json_body, data=form, timeout=timeout) as r:
                if reject is not None and r.status_code < 300:
                    why = reject({k.lower(): v for k, v in r.headers.items()})
                    if why:
                        raise NetError(why, kind="rejected", url=str(r.url), status=r.status_code)
                chunks: list[bytes] = []
                size = 0
                truncated = False
                async for chunk in r.aiter_bytes():
                    chunks.append(chunk)
                    size += len(chunk)
                    if size >= max_bytes:
                        truncated = True
                        break
                body = b"".join(chunks)[:max_bytes]
                return Response(str(r.url), r.status_code, {k.lower(): v for k, v in r.headers.items()}, body,
                                truncated=truncated)
        except httpx.ConnectTimeout as exc:
            raise NetError(f"Cannot reach {_host(url)}: no connection within {self.connect_timeout_s:.0f} s "
                           "(offline, or the host is down).", kind="offline", url=url) from exc
        except httpx.TimeoutException as exc:
            raise NetError(f"{_host(url)} did not answer within {timeout.read or self.read_timeout_s:.0f} s "
                           f"for {url}; try again later.", kind="timeout", url=url) from exc
        except httpx.ConnectError as exc:
            raise connect_error(exc, url) from exc
        except httpx.HTTPError as exc:
            raise NetError(f"The request to {_host(url)} failed: {type(exc).__name__}: {exc}.", kind="network",
                           url=url) from exc
