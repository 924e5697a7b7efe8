"""Sandbox lifecycle: a private Space made from a template, watched until it runs, deleted at the end.

A session has at most one sandbox. Creating one duplicates the template into
``<owner>/sandbox-<8 hex>`` (private, on the requested hardware, with a fresh control
token as a Space secret), pushes our control server and its Dockerfile, polls the Space
runtime until it is RUNNING and then the server's health route. Any failure, or an
interrupt, deletes the half-made Space so nothing is left running on the user's bill.

The user's HF token goes into the Space only when the caller says so
(``store_hf_token``), which the ``sandbox_create`` tool does only for calls the user
approved with a reason that says it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Coroutine

from agent.jobs.pricing import hourly_price
from agent.sandbox.client import FileState, SandboxClient, SandboxError
from agent.sandbox.space_files import space_files

DEFAULT_TEMPLATE = "burtenshaw/sandbox"
TEMPLATE_ENV = "MLINTERN_SANDBOX_TEMPLATE"
CPU_BASIC = "cpu-basic"
#: paid hardware sleeps after this long without requests (cpu-basic's sleep is fixed by the Hub)
PAID_SLEEP_TIME_S = 2700
ERROR_STAGES = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})
HALTED_STAGES = frozenset({"STOPPED", "PAUSED", "DELETING"})
HOUR_S = 3600.0

Log = Callable[[str], None]


def space_host_url(repo_id: str) -> str:
    """``https://<owner>-<name>.hf.space``, the way the Hub names a Space's own host."""
    sub = repo_id.replace("/", "-").replace("_", "-").replace(".", "-").lower()
    return f"https://{sub}.hf.space"


def sandbox_hourly_usd(hardware: str) -> float | None:
    """What a sandbox Space costs per hour; cpu-basic Spaces are free."""
    return 0.0 if hardware == CPU_BASIC else hourly_price(hardware)


@dataclass
class Sandbox:
    repo_id: str
    hardware: str
    url: str
    client: SandboxClient
    hf_token_stored: bool
    created_at: float = field(default_factory=time.time)
    #: remote path -> its state when the agent last read or wrote it (read-before-write rule)
    seen: dict[str, FileState] = field(default_factory=dict)
    #: seconds in a billed hour (tests shorten it; prices stay per hour)
    hour_s: float = HOUR_S
    #: when it was torn down: its cost stops growing then
    ended_at: float | None = None
    #: tasks that live as long as this sandbox (its billing timer): cancelled at teardown
    tasks: set[asyncio.Task] = field(default_factory=set, repr=False)

    @property
    def space_url(self) -> str:
        return f"https://huggingface.co/spaces/{self.repo_id}"

    def hours(self, now: float | None = None) -> float:
        """How long it has existed (until its teardown), in billed hours."""
        end = self.ended_at if self.ended_at is not None else (time.time() if now is None else now)
        return max(0.0, end - self.created_at) / self.hour_s

    @property
    def hourly_usd(self) -> float | None:
        return sandbox_hourly_usd(self.hardware)

    def cost_so_far(self, now: float | None = None) -> float | None:
        price = self.hourly_usd
        if price is None:
            return None
        return round(price * self.hours(now), 4)


class SandboxManager:
    def __init__(
        self,
        hf_token: str,
        *,
        endpoint: str | None = None,
        owner: str | None = None,
        template: str | None = None,
        upload_server: bool = True,
        base_url_for: Callable[[str, str], str] | None = None,
        poll_interval_s: float = 5.0,
        start_timeout_s: float = 600.0,
        health_timeout_s: float = 180.0,
        delete_attempts: int = 3,
        delete_backoff_s: float = 1.0,
        hour_s: float = HOUR_S,
    ) -> None:
        from huggingface_hub import HfApi

        # the endpoint is read now, not at huggingface_hub's import, so HF_ENDPOINT set late still counts
        self.api = HfApi(endpoint=endpoint or os.environ.get("HF_ENDPOINT") or None, token=hf_token)
        self._hf_token = hf_token
        self.owner = owner
        self.template = template or os.environ.get(TEMPLATE_ENV) or DEFAULT_TEMPLATE
        self.upload_server = upload_server
        #: (repo_id, default url) -> the url to reach the server at; tests point it at loopback
        self.base_url_for = base_url_for
        self.poll_interval_s = poll_interval_s
        self.start_timeout_s = start_timeout_s
        self.health_timeout_s = health_timeout_s
        self.delete_attempts = delete_attempts
        self.delete_backoff_s = delete_backoff_s
        #: seconds in a billed hour: tests shorten it to run an hour of billing in a fraction of a second
        self.hour_s = hour_s
        self.active: Sandbox | None = None
        #: called when a sandbox is torn down (before its Space is deleted)
        self.on_ended: Callable[[Sandbox], None] = lambda sandbox: None
        #: what sandboxes deleted earlier in the session cost (known prices only)
        self.retired_cost_usd = 0.0
        self._creating: asyncio.Task | None = None
        self._in_flight: set[threading.Event] = set()
        self._teardown_lock = asyncio.Lock()
        self._tearing_down = 0

    # ------------------------------------------------------------------ public

    @property
    def creating(self) -> bool:
        return self._creating is not None and not self._creating.done()

    @property
    def tearing_down(self) -> bool:
        return self._tearing_down > 0

    def watch(self, sandbox: Sandbox, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task | None:
        """Run ``coro`` beside ``sandbox`` (e.g. its billing timer): it is cancelled when the
        sandbox is torn down. None (and ``coro`` is closed) if the sandbox is no longer active."""
        if self.active is not sandbox or self.tearing_down:
            coro.close()
            return None
        task = asyncio.ensure_future(coro)
        if name:
            task.set_name(name)
        sandbox.tasks.add(task)
        task.add_done_callback(sandbox.tasks.discard)
        return task

    async def current(self) -> Sandbox | None:
        """The active sandbox, after waiting for one that is being created right now."""
        task = self._creating
        if task is not None and not task.done():
            try:
                await asyncio.shield(task)
            except Exception:
                pass  # its creator reports the failure
        return self.active

    def start(self, hardware: str = CPU_BASIC, *, store_hf_token: bool = False,
              log: Log | None = None) -> asyncio.Task:
        """Begin creating the session's sandbox; ``current()`` waits for it from now on."""
        if self.active is not None:
            raise SandboxError(f"A sandbox is already active ({self.active.repo_id} on {self.active.hardware}); "
                               "tear it down first.", "exists")
        if self.creating:
            raise SandboxError("A sandbox is already being created; wait for it.", "busy")
        task = asyncio.ensure_future(self._create(hardware, store_hf_token, log or (lambda line: None)))
        self._creating = task
        task.add_done_callback(lambda t: setattr(self, "_creating", None) if self._creating is t else None)
        return task

    async def create(self, hardware: str = CPU_BASIC, *, store_hf_token: bool = False,
                     log: Log | None = None) -> Sandbox:
        """Create the session's sandbox. Raises ``SandboxError`` (after deleting what was made);
        cancelling the caller cancels the creation, which deletes the half-made Space."""
        return await self.start(hardware, store_hf_token=store_hf_token, log=log)

    def preload(self, hardware: str = CPU_BASIC, log: Log | None = None) -> asyncio.Task:
        """Create a sandbox in the background (e.g. at session start); failures go to ``log``."""
        log = log or (lambda line: None)
        task = self.start(hardware, log=log)

        def report(t: asyncio.Task) -> None:
            if not t.cancelled() and t.exception() is not None:
                log(f"The sandbox could not be prepared: {t.exception()}")

        task.add_done_callback(report)
        return task

    async def teardown(self, log: Log | None = None) -> bool:
        """Delete the sandbox (stopping one still being created). False if it could not be deleted.
        Teardowns run one at a time: a second one waits for the first, then finds nothing to do."""
        log = log or (lambda line: None)
        self._tearing_down += 1
        try:
            if self.active is not None:
                _cancel_beside(self.active)  # before any await: its timer must not act on a dying sandbox
            async with self._teardown_lock:
                task = self._creating
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.wait([task])  # its own cleanup deletes the half-made Space
                sandbox, self.active = self.active, None
                if sandbox is None:
                    return True
                _cancel_beside(sandbox)
                sandbox.ended_at = time.time()
                self.retired_cost_usd += sandbox.cost_so_far() or 0.0
                try:
                    self.on_ended(sandbox)
                except Exception:  # a listener never stops a teardown
                    pass
                await sandbox.client.aclose()
                ok, message = await self._delete(sandbox.repo_id)
                log(message)
                return ok
        finally:
            self._tearing_down -= 1

    close = teardown

    # ------------------------------------------------------------------ creation

    async def _create(self, hardware: str, store_hf_token: bool, log: Log) -> Sandbox:
        owner = await self._owner()
        sandbox_token = secrets.token_urlsafe(32)
        space_secrets = [{"key": "SANDBOX_API_TOKEN", "value": sandbox_token,
                          "description": "control token of the mlintern sandbox server"}]
        if store_hf_token:
            space_secrets.append({"key": "HF_TOKEN", "value": self._hf_token,
                                  "description": "the session user's token, stored with their approval"})
        repo_id: str | None = None
        client: SandboxClient | None = None
        try:
            for attempt in range(3):
                # named before the call: if we are interrupted mid-call, this is what to delete
                repo_id = f"{owner}/sandbox-{secrets.token_hex(4)}"
                log(f"Creating private Space {repo_id} on {hardware} from {self.template} ...")
                try:
                    await self._hub(
                        f"duplicating {self.template}", self.api.duplicate_repo, self.template, to_id=repo_id,
                        repo_type="space", private=True, space_hardware=hardware, space_secrets=space_secrets,
                        space_sleep_time=None if hardware == CPU_BASIC else PAID_SLEEP_TIME_S,
                    )
                    break
                except SandboxError as exc:
                    repo_id = None  # the Hub said no, so nothing of ours exists under that name
                    if exc.status != 409 or attempt == 2:
                        raise
            assert repo_id is not None
            if self.upload_server:
                await self._push_server(repo_id)
            default_url = await self._wait_running(repo_id, hardware, log)
            url = self.base_url_for(repo_id, default_url) if self.base_url_for else default_url
            client = SandboxClient(url, sandbox_token, self._hf_token)
            await self._wait_healthy(client, repo_id, log)
            sandbox = Sandbox(repo_id, hardware, url, client, hf_token_stored=store_hf_token, hour_s=self.hour_s)
            self.active = sandbox
            log(f"Sandbox {repo_id} is running on {hardware}.")
            return sandbox
        except BaseException as exc:
            if client is not None:
                await asyncio.shield(client.aclose())
            if repo_id is None:
                raise
            ok, message = await asyncio.shield(self._discard(repo_id))
            log(message)
            if isinstance(exc, SandboxError):
                done = "The half-made Space was deleted." if ok else message
                raise SandboxError(f"{exc} {done}", exc.code, exc.status) from exc
            raise

    async def _push_server(self, repo_id: str) -> None:
        from huggingface_hub import CommitOperationAdd

        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=text.encode("utf-8"))
                      for name, text in space_files().items()]
        await self._hub("uploading the sandbox server", self.api.create_commit, repo_id, operations=operations,
                        commit_message="mlintern sandbox server", repo_type="space")

    async def _wait_running(self, repo_id: str, hardware: str, log: Log) -> str:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        last = None
        while True:
            runtime = await self._hub("checking the Space runtime", self.api.get_space_runtime, repo_id)
            stage = str(getattr(runtime.stage, "value", runtime.stage))
            if stage != last:
                log(f"Space {repo_id}: {stage}")
                last = stage
            if stage == "RUNNING" and runtime.hardware in (None, hardware):
                return _url_from_runtime(runtime.raw, repo_id)
            if stage in ERROR_STAGES:
                detail = (runtime.raw or {}).get("errorMessage") or "no error message"
                raise SandboxError(f"The sandbox Space {repo_id} failed to start ({stage}: {detail}). Logs: "
                                   f"https://huggingface.co/spaces/{repo_id}?logs=build", "build_error")
            if stage in HALTED_STAGES:
                raise SandboxError(f"The sandbox Space {repo_id} stopped ({stage}) before it was running.", "halted")
            if loop.time() >= deadline:
                raise SandboxError(f"The sandbox Space {repo_id} was still {stage} after {self.start_timeout_s:.0f}s; "
                                   "gave up waiting for it to run.", "timeout")
            await asyncio.sleep(self.poll_interval_s)

    async def _wait_healthy(self, client: SandboxClient, repo_id: str, log: Log) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.health_timeout_s
        while True:
            try:
                await client.health(timeout=10.0)
                return
            except SandboxError as exc:
                if loop.time() >= deadline:
                    # the Space runs; its server may just be slow to bind, and every tool call retries
                    log(f"Warning: the sandbox server of {repo_id} did not answer its health check within "
                        f"{self.health_timeout_s:.0f}s ({exc}).")
                    return
            await asyncio.sleep(min(self.poll_interval_s, 2.0))

    # ------------------------------------------------------------------ Hub calls

    async def _owner(self) -> str:
        if not self.owner:
            info = await self._hub("looking up your Hugging Face user", self.api.whoami)
            self.owner = str(info["name"])
        return self.owner

    async def _hub(self, action: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking huggingface_hub call in a thread, with errors made readable."""
        finished = threading.Event()
        self._in_flight.add(finished)

        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                finished.set()
                self._in_flight.discard(finished)

        try:
            return await asyncio.to_thread(call)
        except SandboxError:
            raise
        except Exception as exc:
            raise _hub_error(exc, action) from exc

    async def _discard(self, repo_id: str) -> tuple[bool, str]:
        # A cancelled await leaves its thread running: a duplicate still in flight would
        # recreate the Space right after we deleted it, so let those calls land first.
        pending = list(self._in_flight)
        if pending:
            await asyncio.to_thread(lambda: [event.wait(60) for event in pending])
        return await self._delete(repo_id)

    async def _delete(self, repo_id: str) -> tuple[bool, str]:
        reason = ""
        for attempt in range(self.delete_attempts):
            try:
                await self._hub(f"deleting {repo_id}", self.api.delete_repo, repo_id, repo_type="space",
                                missing_ok=True)
                return True, f"Deleted sandbox Space {repo_id}."
            except SandboxError as exc:
                reason = str(exc)
                if attempt < self.delete_attempts - 1:
                    await asyncio.sleep(self.delete_backoff_s * 2 ** attempt)
        return False, (f"Could not delete sandbox Space {repo_id} after {self.delete_attempts} attempts ({reason}). "
                       f"Delete it at https://huggingface.co/spaces/{repo_id}/settings so it stops using hardware.")


def _cancel_beside(sandbox: Sandbox) -> None:
    current = asyncio.current_task()
    for task in list(sandbox.tasks):
        if task is not current:
            task.cancel()


def _url_from_runtime(raw: dict | None, repo_id: str) -> str:
    domains = [d for d in (raw or {}).get("domains") or [] if isinstance(d, dict) and d.get("domain")]
    ready = [d for d in domains if d.get("stage") == "READY"] or domains
    return f"https://{ready[0]['domain']}" if ready else space_host_url(repo_id)


def _hub_error(exc: Exception, action: str) -> SandboxError:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    text = (str(exc).strip() or type(exc).__name__).splitlines()[0][:300]
    if status == 401:
        message = f"The Hugging Face token was rejected (401) while {action}: check HF_TOKEN or run `hf auth login`."
    elif status == 402 or (status in (400, 403) and any(w in text.lower() for w in ("credit", "payment", "billing"))):
        message = (f"The Hub refused {action} for billing reasons ({text}). Paid Space hardware needs a payment "
                   "method at https://huggingface.co/settings/billing; cpu-basic sandboxes are free.")
    elif status == 403:
        message = f"Hugging Face refused {action} (403): {text}"
    elif status == 404:
        message = f"Not found on the Hub while {action} ({text}). If the template Space is gone, set {TEMPLATE_ENV}."
    elif status is not None:
        message = f"The Hub answered {status} while {action}: {text}"
    else:
        message = f"Could not reach the Hugging Face Hub while {action}: {text}"
    return SandboxError(message, "hub", status)
