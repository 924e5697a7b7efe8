"""Failures of the knowledge tools' HTTP as sentences for people (see agent/net.py).

An HTTP status, a connection that did not work, or an exception from huggingface_hub becomes
a ``NetError`` whose message says what happened and what to do: offline or DNS failure,
refused, 401, 403 (a gated repo names the page where its terms are accepted), 404, 402, 429
with the wait the server asked for, 5xx.
"""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = (parts.scheme or "https").lower()
    host = (parts.hostname or "").lower().rstrip(".")
    port = parts.port or (443 if scheme == "https" else 80)
    return scheme, host, port


class NetError(Exception):
    """A request that did not work, with one sentence for the model and the user."""

    def __init__(self, message: str, *, kind: str, url: str = "", status: int | None = None,
                 retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.url = url
        self.status = status
        self.retry_after = retry_after


def _host(url: str) -> str:
    s, h, p = origin(url)
    default = (s == "https" and p == 443) or (s == "http" and p == 80)
    return h if default else f"{h}:{p}"


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(status: int, url: str, headers: dict[str, str], body: str, *, hub: str = "",
                 token_sent: bool = False) -> NetError:
    """The sentence for an HTTP error status (shared with Hub client errors)."""
    host = _host(url)
    detail = _error_detail(body)
    tail = f" ({detail})" if detail else ""
    code = headers.get("x-error-code", "")
    if status == 401:
        if code == "GatedRepo" or "gated" in body.lower():
            return _gated(url, hub, headers, tail)
        hint = ("the token was refused: check HF_TOKEN or run `hf auth login`" if token_sent else
                "it needs a token: set HF_TOKEN (Hub) or GITHUB_TOKEN (GitHub)")
        return NetError(f"{host} answered 401 Unauthorized for {url}: {hint}{tail}.", kind="auth", url=url, status=401)
    if status == 403:
        if code == "GatedRepo" or "gated" in body.lower() or "accept the conditions" in body.lower():
            return _gated(url, hub, headers, tail)
        if "rate limit" in body.lower():  # GitHub says 403 for an exhausted rate limit
            wait = retry_after_seconds(headers.get("retry-after")) or _github_reset(headers)
            when = f" Try again in {wait:.0f} s." if wait is not None else ""
            return NetError(f"{host} refused {url}: rate limit exceeded.{when} A GITHUB_TOKEN raises the limit.",
                            kind="rate_limited", url=url, status=403, retry_after=wait)
        return NetError(f"{host} answered 403 Forbidden for {url}: this account may not read it{tail}.",
                        kind="forbidden", url=url, status=403)
    if status == 404:
        return NetError(f"Not found (404): {url}{tail}. Check the id, name or path.", kind="not_found",
                        url=url, status=404)
    if status == 402:
        return NetError(f"{host} answered 402 Payment Required for {url}: the account has no credits or plan "
                        f"for this{tail}.", kind="payment", url=url, status=402)
    if status == 429:
        wait = retry_after_seconds(headers.get("retry-after"))
        when = f"it asks to wait {wait:.0f} s before trying again" if wait is not None else "try again later"
        return NetError(f"{host} is rate-limiting requests (429): {when}.", kind="rate_limited", url=url,
                        status=429, retry_after=wait)
    if status >= 500:
        return NetError(f"{host} had a server error ({status}) for {url}{tail}; try again later.", kind="server",
                        url=url, status=status)
    return NetError(f"{host} answered {status} for {url}{tail}.", kind="http", url=url, status=status)


def _gated(url: str, hub: str, headers: dict[str, str], tail: str) -> NetError:
    repo = _repo_page(url, hub)
    where = f"accept the terms at {repo} (logged in as the token's user)" if repo else \
        "accept its terms on its Hub page (logged in as the token's user)"
    return NetError(f"This repo is gated: {where}, then try again{tail}.", kind="gated", url=url, status=403)


def _repo_page(url: str, hub: str) -> str:
    """The Hub page of the repo an API or file URL is about (where its terms are accepted)."""
    path = urlsplit(url).path.strip("/").split("/")
    if path[:1] == ["api"]:
        path = path[1:]
    kind = ""
    if path[:1] in (["models"], ["datasets"], ["spaces"]):
        kind, path = path[0], path[1:]
    if len(path) < 2 or not hub:
        return ""
    prefix = {"datasets": "datasets/", "spaces": "spaces/"}.get(kind, "")
    return f"{hub.rstrip('/')}/{prefix}{path[0]}/{path[1]}"


def _github_reset(headers: dict[str, str]) -> float | None:
    reset = headers.get("x-ratelimit-reset")
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


def _error_detail(body: str) -> str:
    body = (body or "").strip()
    if not body:
        return ""
    try:
        data = json.loads(body)
    except ValueError:
        return "" if body.lstrip().startswith("<") else body[:200]
    if isinstance(data, dict):
        for key in ("error", "message", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                return value[:200]
    return ""


def connect_error(exc: BaseException, url: str) -> NetError:
    host = _host(url)
    text = str(exc) or type(exc).__name__
    chain, seen = [], exc
    while seen is not None and len(chain) < 6:  # httpx words it "All connection attempts failed"
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return NetError(f"Cannot reach {host}: the connection was refused (nothing is listening there).",
                        kind="refused", url=url)
    low = " ".join(str(e) for e in chain).lower()
    if any(s in low for s in ("name or service not known", "temporary failure in name resolution",
                              "nodename nor servname", "no address associated", "name resolution",
                              "getaddrinfo failed")):
        return NetError(f"Cannot reach {host}: its name does not resolve. This machine looks offline "
                        "(or has no DNS); this tool needs the network.", kind="offline", url=url)
    if "refused" in low:
        return NetError(f"Cannot reach {host}: the connection was refused (nothing is listening there).",
                        kind="refused", url=url)
    return NetError(f"Cannot reach {host}: {text}. Check the network or the endpoint setting.", kind="offline", url=url)


def hub_error_text(exc: BaseException, hub: str = "") -> str:
    """One sentence for an exception from ``huggingface_hub`` (HfApi calls run in threads)."""
    from huggingface_hub import errors

    if isinstance(exc, errors.GatedRepoError):
        url = str(getattr(getattr(exc, "response", None), "url", "") or "")
        return _gated(url, hub, {}, "").message
    if isinstance(exc, errors.RepositoryNotFoundError):
        return ("Repository not found (404): check the repo id and type, or it is private and the token "
                "cannot see it.")
    if isinstance(exc, errors.RevisionNotFoundError):
        return "Revision not found (404): check the branch, tag or commit."
    if isinstance(exc, (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError)):
        return "File not found in the repo (404): list the repo's files to see what is there."
    if isinstance(exc, errors.LocalTokenNotFoundError):
        return "This needs a Hugging Face token: set HF_TOKEN or run `hf auth login`."
    if isinstance(exc, errors.HfHubHTTPError):
        response = getattr(exc, "response", None)
        status = getattr(response, "status_code", None)
        if status is not None:
            headers = {k.lower(): v for k, v in dict(getattr(response, "headers", {}) or {}).items()}
            try:
                body = response.text  # type: ignore[union-attr]
            except Exception:
                body = ""
            url = str(getattr(response, "url", "") or "")
            return status_error(int(status), url, headers, body or str(exc), hub=hub, token_sent=True).message
        return f"The Hub request failed: {exc}"
    text = str(exc)
    low = text.lower()
    if "name or service not known" in low or "temporary failure in name resolution" in low:
        return connect_error(exc, hub or "the Hub").message
    if "connection refused" in low or "connecterror" in type(exc).__name__.lower():
        return connect_error(exc, hub or "the Hub").message
    return f"{type(exc).__name__}: {text}"
