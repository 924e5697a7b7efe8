"""What the Hub repo tools share: the client, the token rule, errors as sentences, sizes.

Every ``HfApi`` call is blocking HTTP, so it runs in a thread (``hub_call``); an exception the
client raises becomes one sentence via ``agent.net.hub_error_text``. The client is made per
call from the session's ``Net`` (its Hub endpoint and token source), so ``HF_ENDPOINT`` and a
token set after start are honoured and tests point it at the emulator.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Literal

from agent.net import NetError, hub_error_text
from agent.tools.base import ToolContext
from agent.tools.knowledge import net_of
from agent.tools.output import human_size  # noqa: F401  (the Hub tools import it from here)

if TYPE_CHECKING:
    from huggingface_hub import HfApi

RepoType = Literal["model", "dataset", "space"]
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
NEEDS_TOKEN = ("ERROR: this needs a Hugging Face token with write access: set HF_TOKEN (or run "
               "`hf auth login`) and try again.")


class HubCallError(Exception):
    """A Hub call that failed, with the sentence to show."""

    def __init__(self, message: str, exc: BaseException | None = None):
        super().__init__(message)
        self.message = message
        self.exc = exc

    @property
    def not_found(self) -> bool:
        from huggingface_hub import errors

        return isinstance(self.exc, errors.RepositoryNotFoundError) and not isinstance(self.exc, errors.GatedRepoError)


def hub_endpoint(ctx: ToolContext) -> str:
    return net_of(ctx).endpoints.hub


def hub_token(ctx: ToolContext) -> str | None:
    return net_of(ctx).hf_token()


def hub_api(ctx: ToolContext) -> HfApi:
    """A client on the session's Hub endpoint; without a token it reads anonymously (``False``
    stops huggingface_hub from falling back to a token of its own)."""
    from huggingface_hub import HfApi
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()  # tqdm would draw over the terminal the TUI owns; progress goes to ctx.log
    return HfApi(endpoint=hub_endpoint(ctx), token=hub_token(ctx) or False)


async def hub_call(ctx: ToolContext, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a thread; a client error becomes a ``HubCallError``. A Hub
    that cannot be reached is reported within seconds (the client itself would retry it for
    about 20 s first)."""
    try:
        await net_of(ctx).reachable(hub_endpoint(ctx))
    except NetError as exc:
        raise HubCallError(exc.message, exc) from exc
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise HubCallError(error_sentence(exc, hub_endpoint(ctx)), exc) from exc


def error_sentence(exc: BaseException, hub: str) -> str:
    from huggingface_hub import errors

    if isinstance(exc, errors.HFValidationError):
        return f"Invalid argument: {exc}"
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return "The Hub client is in offline mode (HF_HUB_OFFLINE=1): unset it to reach the Hub."
    status = getattr(getattr(exc, "response", None), "status_code", None)
    # the client turns a 401 on a repo URL into "repo not found" unless the Hub said the token was bad
    if isinstance(exc, errors.HfHubHTTPError) and status == 401 \
            and not isinstance(exc, (errors.GatedRepoError, errors.RepositoryNotFoundError)):
        return ("The Hub refused the token (401): check HF_TOKEN or run `hf auth login` "
                "(a fine-grained token also needs access to this repo).")
    return hub_error_text(exc, hub)


def repo_url(hub: str, repo_type: str, repo_id: str) -> str:
    return f"{hub.rstrip('/')}/{URL_PREFIX.get(repo_type, '')}{repo_id}"


def valid_repo_id(repo_id: str) -> str | None:
    """An error sentence for an id that is not ``namespace/name``, else None."""
    parts = (repo_id or "").strip().split("/")
    if len(parts) != 2 or not all(parts):
        return f"ERROR: repo_id must be 'namespace/name' (got {repo_id!r})."
    return None


#: files with these endings are never read as text
BINARY_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".gguf", ".onnx", ".h5", ".msgpack", ".npz",
                   ".npy", ".pkl", ".pickle", ".parquet", ".arrow", ".zip", ".gz", ".tar", ".zst", ".png", ".jpg",
                   ".jpeg", ".gif", ".webp", ".mp3", ".wav", ".flac", ".mp4", ".pdf", ".tflite", ".ot", ".model")
#: the largest file ``read`` downloads (the answer is budgeted; the whole text is spilled to a file)
READ_MAX_BYTES = 10_000_000


class NotText(Exception):
    """The file is binary or too large to read as text; the message says which, with its size."""


def download_text(api: HfApi, repo_id: str, repo_type: str, revision: str, path: str,
                  max_bytes: int = READ_MAX_BYTES) -> str | None:
    """A text file of the repo (blocking), None when the file does not exist; ``NotText`` for
    binaries and files over ``max_bytes``, checked with a HEAD before anything is downloaded."""
    from huggingface_hub import errors, hf_hub_url

    url = hf_hub_url(repo_id, path, repo_type=repo_type, revision=revision, endpoint=api.endpoint)
    try:
        meta = api.get_hf_file_metadata(url=url)
    except (errors.EntryNotFoundError, errors.RemoteEntryNotFoundError):
        return None
    size = meta.size
    if path.lower().endswith(BINARY_SUFFIXES):
        raise NotText(f"{path} is a binary file ({human_size(size)}); only text files can be read.")
    if size is not None and size > max_bytes:
        raise NotText(f"{path} is {human_size(size)}, over the {human_size(max_bytes)} read limit; inspect it "
                      "in a job or the sandbox instead.")
    local = api.hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision)
    with open(local, "rb") as fh:
        data = fh.read()
    if b"\0" in data[:8192]:
        raise NotText(f"{path} is a binary file ({human_size(len(data))}); only text files can be read.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotText(f"{path} is not UTF-8 text ({human_size(len(data))}); only text files can be read.") from None


async def visibility_of(ctx: ToolContext, api: HfApi, repo_id: str, repo_type: str) -> tuple[str, bool | None, str]:
    """(public|private|unknown, whether the repo exists (None: unknown), a note when unsure)."""
    try:
        info = await hub_call(ctx, api.repo_info, repo_id, repo_type=repo_type)
    except HubCallError as exc:
        if exc.not_found:
            return "unknown", False, f"The repo does not exist (or this token cannot see it): {exc.message}"
        return "unknown", None, f"The visibility could not be checked: {exc.message}"
    private = getattr(info, "private", None)
    if private is None:
        return "unknown", True, "The Hub did not say whether this repo is public or private."
    return ("private" if private else "public"), True, ""
