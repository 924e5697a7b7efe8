"""What went wrong with a model request, in words a person can act on.

Classification looks at the exception's status code, class name and message, so it works
for litellm's mapped exceptions and for raw provider errors alike.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit
from dataclasses import dataclass

from agent.llm.models import LOCAL_PROVIDERS, ResolvedModel

OVERFLOW_MARKERS = (
    "context window exceeded",
    "contextwindowexceeded",
    "maximum context length",
    "max context length",
    "context_length_exceeded",
    "prompt is too long",
    "context length exceeded",
    "too many input tokens",
    "input is too long",
    "exceeds the context window",
)
RATE_LIMIT_MARKERS = ("rate limit", "ratelimit", "too many requests", "throttl", "429")
TRANSIENT_MARKERS = (
    "overloaded",
    "capacity",
    "connection reset",
    "connection refused",
    "connection error",
    "connecterror",
    "remoteprotocolerror",
    "server disconnected",
    "eof",
    "broken pipe",
    "timed out",
    "timeout",
    "service unavailable",
    "bad gateway",
    "internal server error",
)
CREDIT_MARKERS = ("insufficient credit", "credits", "quota", "billing", "payment required", "exceeded your current quota")
# A 400 about reasoning effort / extended thinking is healed, not reported: the request is
# adjusted (lower effort, no thinking, thinking blocks removed) and sent again once.
EFFORT_WORDS = ("reasoning_effort", "reasoning effort", "reasoning.effort", "output_config", "effort")
EFFORT_REJECTIONS = (
    "unsupported value", "unsupported parameter", "not supported", "does not support", "unrecognized",
    "unknown", "invalid", "must be one of", "not a valid", "only supported by", "input should be",
    "not permitted", "not allowed",
)
#: the parameter itself is refused (not one level of it): the model takes no effort at all
EFFORT_PARAM_REFUSALS = ("unrecognized request argument", "unsupported parameter", "does not support parameters",
                         "unknown parameter", "extra inputs are not permitted", "extra_forbidden")
THINKING_BLOCK_MARKERS = ("cannot contain `thinking`", "cannot contain thinking", "cannot be modified")
THINKING_REQUIRED_MARKERS = ("must start with a thinking block", "expected `thinking` or `redacted_thinking`",
                             "expected thinking or redacted_thinking")
THINKING_UNSUPPORTED = ("not supported", "does not support", "unsupported")
UNKNOWN_MODEL_MARKERS = ("model not found", "does not exist", "unknown model", "no such model", "not a valid model", "model_not_found", "invalid model")


#: kinds the client heals by adjusting the request (see ``_effort_or_thinking``)
HEALABLE_KINDS = frozenset({"effort_rejected", "effort_unsupported", "thinking_unsupported", "thinking_required",
                            "thinking_blocks"})


@dataclass
class LLMErrorInfo:
    kind: str  # rate_limit | server | timeout | connection | auth | credits | unknown_model | context_overflow
    #          | bad_request | effort_rejected | effort_unsupported | thinking_unsupported | thinking_required
    #          | thinking_blocks | other
    retryable: bool
    message: str
    detail: str = ""
    status: int | None = None
    retry_after: float | None = None


class LLMError(Exception):
    """A request failed for good (not retryable, or out of attempts)."""

    def __init__(self, info: LLMErrorInfo, attempts: int = 1):
        super().__init__(info.message)
        self.info = info
        self.attempts = attempts


def _status(exc: BaseException) -> int | None:
    for attr in ("status_code", "status"):
        value = getattr(exc, attr, None)
        if isinstance(value, int):
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    return value if isinstance(value, int) else None


def _parse_retry_after(value) -> float | None:
    if value is None:
        return None
    text = str(value).strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        import email.utils  # only for a Retry-After given as a date

        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After (seconds or HTTP date), wherever litellm put the headers."""
    candidates = []
    response = getattr(exc, "response", None)
    if response is not None:
        candidates.append(getattr(response, "headers", None))
    candidates.append(getattr(exc, "litellm_response_headers", None))
    candidates.append(getattr(exc, "headers", None))
    for headers in candidates:
        if not headers:
            continue
        try:
            items = {str(k).lower(): v for k, v in dict(headers).items()}
        except Exception:
            continue
        for name in ("retry-after", "retry-after-ms", "x-ratelimit-reset-after"):
            if name in items:
                seconds = _parse_retry_after(items[name])
                if seconds is not None and name == "retry-after-ms":
                    seconds /= 1000
                if seconds is not None:
                    return seconds
    return None


def classify(exc: BaseException, model: ResolvedModel | None = None) -> LLMErrorInfo:
    name = type(exc).__name__
    text = str(exc)
    low = f"{name} {text}".lower()
    status = _status(exc)
    short = text.strip().splitlines()[0][:300] if text.strip() else name
    who = model.id if model else "the model"

    body = getattr(exc, "body", None)
    code = ""
    if isinstance(body, dict):  # litellm maps overflow by message only; some servers say it in the code
        err = body.get("error") if isinstance(body.get("error"), dict) else body
        code = str(err.get("code") or "")
    if name == "ContextWindowExceededError" or code == "context_length_exceeded" or any(m in low for m in OVERFLOW_MARKERS):
        return LLMErrorInfo("context_overflow", False, f"The conversation no longer fits {who}'s context window.", short, status)
    if status in (400, 422, None) and name not in ("APIConnectionError", "Timeout", "APITimeoutError"):
        healable = _effort_or_thinking(text.lower(), who, short, status)
        if healable is not None:
            return healable
    text_low = text.lower()
    if status == 402 or code == "insufficient_quota" or "insufficient_quota" in text_low or (
        any(m in text_low for m in CREDIT_MARKERS) and status in (400, 403, 429, None) and "rate limit" not in text_low
    ):
        return LLMErrorInfo(
            "credits", False,
            f"The provider for {who} reports no credits left (402). Add credits or billing on the provider's "
            "account, or switch to another model with /model.",
            short, status,
        )
    if status in (401, 403) or name in ("AuthenticationError", "PermissionDeniedError"):
        hint = f"check {model.key_env}" if model and model.key_env else "check the API key"
        if model and model.route == "hf_router":
            hint = "check HF_TOKEN (or run `hf auth login`) and that the token may call Inference Providers"
        return LLMErrorInfo("auth", False, f"The provider rejected the credentials for {who}: {hint}.", short, status)
    if status == 404 or name == "NotFoundError" or any(m in low for m in UNKNOWN_MODEL_MARKERS):
        return LLMErrorInfo(
            "unknown_model", False,
            f"The provider does not know the model {who}. Check the id, or pick one with /model"
            + (" (for a router id, try it without the :provider suffix)." if model and ":" in model.id else "."),
            short, status,
        )
    if status in (400, 422) and name not in ("APIConnectionError", "Timeout"):
        # a client error is not transient, whatever words its message happens to contain
        return LLMErrorInfo("bad_request", False, f"The model {who} rejected the request: {short}", short, status)
    if status == 429 or name == "RateLimitError" or any(m in low for m in RATE_LIMIT_MARKERS):
        return LLMErrorInfo("rate_limit", True, f"The provider of {who} is rate-limiting requests (429).", short, status, retry_after_seconds(exc))
    if name == "IncompleteStream":
        return LLMErrorInfo("incomplete_stream", True, f"The answer from {who} stopped before it ended "
                            f"({text}).", short, status)
    if name == "BadAnswer":
        return LLMErrorInfo("bad_answer", True, f"The server of {who} sent no usable answer: {short}", short, status)
    if name == "StreamStalled":
        return LLMErrorInfo("timeout", True, f"The answer from {who} stalled ({text}).", short, status)
    if name in ("Timeout", "APITimeoutError", "TimeoutError") or "timeout" in name.lower():
        return LLMErrorInfo("timeout", True, f"The request to {who} timed out.", short, status)
    if status is not None and status >= 500:
        return LLMErrorInfo("server", True, f"The provider of {who} had a server error ({status}).", short, status, retry_after_seconds(exc))
    if name in ("APIConnectionError", "ServiceUnavailableError", "InternalServerError", "ConnectError", "RemoteProtocolError") or any(
        m in low for m in TRANSIENT_MARKERS
    ):
        return LLMErrorInfo("connection", True, f"Could not reach the provider of {who} ({short}).", short, status, retry_after_seconds(exc))
    if status == 400 or name in ("BadRequestError", "UnprocessableEntityError"):
        return LLMErrorInfo("bad_request", False, f"The model {who} rejected the request: {short}", short, status)
    return LLMErrorInfo("other", False, f"The request to {who} failed: {name}: {short}", short, status)


def _effort_or_thinking(low: str, who: str, short: str, status: int | None) -> LLMErrorInfo | None:
    """Rejections of the reasoning settings, in the providers' own words (OpenAI "Unsupported
    value: 'reasoning_effort' does not support ...", "Unrecognized request argument supplied:
    reasoning_effort"; Anthropic "... does not support thinking", "Invalid `signature` in
    `thinking` block", "... must start with a thinking block"; litellm's UnsupportedParamsError)."""
    hint = " Change it with /effort (or /effort off)."
    if "thinking" in low and ("signature" in low or any(m in low for m in THINKING_BLOCK_MARKERS)):
        return LLMErrorInfo("thinking_blocks", False, f"The model {who} rejected thinking blocks from earlier "
                            f"in the conversation: {short}", short, status)
    if any(m in low for m in THINKING_REQUIRED_MARKERS):
        return LLMErrorInfo("thinking_required", False, f"The model {who} wants the thinking blocks of earlier "
                            f"steps, which this conversation lacks: {short}", short, status)
    if any(w in low for w in EFFORT_WORDS) and any(m in low for m in EFFORT_PARAM_REFUSALS):
        return LLMErrorInfo("effort_unsupported", False, f"The model {who} takes no reasoning effort: {short}.{hint}",
                            short, status)
    if any(w in low for w in EFFORT_WORDS) and any(m in low for m in EFFORT_REJECTIONS):
        return LLMErrorInfo("effort_rejected", False, f"The model {who} rejected the reasoning effort: {short}.{hint}",
                            short, status)
    if "thinking" in low and any(m in low for m in THINKING_UNSUPPORTED) and "budget" not in low:
        return LLMErrorInfo("thinking_unsupported", False, f"The model {who} does not support extended thinking: "
                            f"{short}.{hint}", short, status)
    return None


_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", "[::1]"})


def _refused(exc: BaseException) -> bool:
    """The connection was refused (nothing listens on the port), anywhere in the chain of
    causes: litellm wraps httpx, which wraps the OS error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return True
        text = str(current).lower()
        if "connection refused" in text or "connect call failed" in text or "errno 111" in text \
                or "all connection attempts failed" in text:
            return True
        current = current.__cause__ or current.__context__
    return False


def local_server_down(exc: BaseException, model: ResolvedModel | None) -> LLMErrorInfo | None:
    """A refused connection to a server on this machine: no point in backing off for a minute,
    nothing is running there. The sentence names the URL tried and the variable that sets it."""
    if model is None or not model.api_base or not _refused(exc):
        return None
    host = (urlsplit(model.api_base).hostname or "").lower()
    if host not in _LOOPBACK_HOSTS and not host.startswith("127."):
        return None
    prefix = model.id.partition("/")[0]
    if model.route == "local" and prefix in LOCAL_PROVIDERS:
        variables = " or ".join(LOCAL_PROVIDERS[prefix][0])
        how = f"start the server, or set {variables} to the URL it listens on"
    else:
        how = "start the server, or set OPENAI_BASE_URL to the URL it listens on"
    return LLMErrorInfo("connection", False, f"Nothing is listening at {model.api_base} for {model.id} "
                        f"(connection refused): {how}.", str(exc).strip().splitlines()[0][:300] if str(exc).strip()
                        else type(exc).__name__)
