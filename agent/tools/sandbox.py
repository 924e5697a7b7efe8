"""Remote runtime tools: ``sandbox_create`` and ``sandbox_bash/read/write/edit`` on a private Space.

The session's ``agent.sandbox.manager.SandboxManager`` is found as ``ctx.sandbox`` (None
when there is no HF token). A cpu-basic sandbox is free and needs no approval; paid
hardware does, and so does putting the user's HF token into the Space: the token is
stored exactly when the call went through an approval whose reason says so.
The read-before-write rule is kept per sandbox, apart from the local files' one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from agent.sandbox.client import DEFAULT_WORKDIR, SandboxError
from agent.sandbox.manager import CPU_BASIC, Sandbox, SandboxManager, sandbox_hourly_usd
from agent.tools.base import ApprovalSettings, Tool, ToolContext, ToolParams, ToolResult
from agent.tools.files import DEFAULT_READ_LIMIT, python_warnings

#: huggingface_hub's SpaceHardware values (a test keeps the two in step)
Hardware = Literal[
    "cpu-basic", "cpu-upgrade", "zero-a10g", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4",
    "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8",
    "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4", "rtx-pro-6000x8",
]
DEFAULT_TIMEOUT_S = 240
MAX_TIMEOUT_S = 1200
TOKEN_SENTENCE = ("Your Hugging Face token will be stored as a secret (HF_TOKEN) in that Space, where code "
                  "running in the sandbox can read it.")
_REMOTE = "in the remote sandbox (a private Hugging Face Space; paths are on that machine, not the user's)"


def sandbox_manager(ctx: ToolContext) -> SandboxManager | None:
    """The session's sandbox manager: ``ctx.sandbox`` (set by the session)."""
    return getattr(ctx, "sandbox", None)


async def _active(ctx: ToolContext) -> Sandbox | ToolResult:
    manager = sandbox_manager(ctx)
    if manager is None:
        return ToolResult("ERROR: sandbox tools need a Hugging Face token: set HF_TOKEN or run `hf auth login`, "
                          "then restart. The local bash/read/write/edit tools work meanwhile.", success=False)
    sandbox = await manager.current()
    if sandbox is None:
        return ToolResult("ERROR: no sandbox is running. Call sandbox_create first (cpu-basic is free and needs "
                          "no approval).", success=False)
    return sandbox


async def _key(sandbox: Sandbox, path: str) -> str:
    return await sandbox.client.resolve(path)


async def _still_there(sandbox: Sandbox, ctx: ToolContext) -> bool:
    """False when the sandbox can no longer be used (deleted, or restarted with another token).

    A slow or waking Space (timeouts, 5xx) still counts as there: replacing it would throw
    away its files and, on paid hardware, the hour already paid for.
    """
    try:
        await sandbox.client.health(timeout=15.0)
        await sandbox.client.kill("health-check")  # an authenticated no-op: proves the token still works
    except SandboxError as exc:
        if exc.code in ("unreachable", "unauthorized") or exc.status == 404:
            return False
        ctx.log(f"The sandbox {sandbox.repo_id} is slow to answer: {exc}")
    return True


def _price_text(hardware: str) -> str:
    price = sandbox_hourly_usd(hardware)
    if price is None:
        return "price unknown"
    return "free" if price == 0 else f"${price:.2f}/h"


# --------------------------------------------------------------------------- sandbox_create


class SandboxCreateParams(ToolParams):
    hardware: Hardware = Field(
        CPU_BASIC, description="Space hardware. cpu-basic is free and needs no approval; GPU hardware "
        "(t4-small, a10g-large, a100-large, ...) is billed by the hour and needs the user's approval.")
    store_hf_token: bool = Field(
        False, description="Also store the user's HF token in the Space (as HF_TOKEN) so code there can push "
        "to the Hub or read private repos. Needs approval; paid-hardware sandboxes always get it.")


class SandboxCreateTool(Tool):
    name = "sandbox_create"
    description = (
        "Create (or return) this session's remote sandbox: a private Hugging Face Space with a shell, git, uv and "
        "build tools, working directory /app. Use it to run code that must not touch the user's machine or that "
        "needs a GPU, then use sandbox_bash / sandbox_read / sandbox_write / sandbox_edit. Start on cpu-basic "
        "(free); ask for GPU hardware only when needed. A session has one sandbox; its paid hardware cannot be "
        "changed by calling again. It is deleted when the session ends."
    )
    Params = SandboxCreateParams

    @staticmethod
    def stores_token(params: SandboxCreateParams) -> bool:
        return params.hardware != CPU_BASIC or params.store_hf_token

    def approval_reason(self, params: SandboxCreateParams, settings: ApprovalSettings) -> str | None:
        if not self.stores_token(params):
            return None
        if params.hardware == CPU_BASIC:
            what = "Creates a free private cpu-basic sandbox Space."
        else:
            price = sandbox_hourly_usd(params.hardware)
            money = (f"${price:.2f}/h, about ${price:.2f} for the first hour" if price is not None
                     else "price unknown")
            what = (f"Creates a private sandbox Space on {params.hardware} ({money}), billed until the session "
                    "ends and the Space is deleted.")
        return f"{what} {TOKEN_SENTENCE}"

    def estimate(self, params: SandboxCreateParams) -> float | None:
        return sandbox_hourly_usd(params.hardware)  # one hour of that hardware

    async def run(self, params: SandboxCreateParams, ctx: ToolContext) -> ToolResult:
        manager = sandbox_manager(ctx)
        if manager is None:
            return ToolResult("ERROR: a sandbox needs a Hugging Face token: set HF_TOKEN or run `hf auth login`, "
                              "then restart.", success=False)
        wanted = params.hardware
        active = await manager.current()
        if active is not None and not await _still_there(active, ctx):
            ctx.log(f"The sandbox {active.repo_id} is gone or no longer lets us in; replacing it ...")
            await manager.teardown(log=ctx.log)
            active = None
        if active is not None:
            missing_token = params.store_hf_token and not active.hf_token_stored
            if active.hardware == wanted and not missing_token:
                return ToolResult(f"Sandbox already active: {active.repo_id} on {wanted} ({active.space_url}). "
                                  "Use sandbox_bash / sandbox_read / sandbox_write / sandbox_edit.")
            if active.hardware != CPU_BASIC:
                return ToolResult(
                    f"ERROR: a {active.hardware} sandbox ({active.repo_id}) is already running, and a sandbox's "
                    "paid hardware cannot be changed by calling sandbox_create again. Keep using it with the "
                    "sandbox_* tools.", success=False)
            ctx.log(f"Replacing the cpu-basic sandbox {active.repo_id} ...")
            await manager.teardown(log=ctx.log)
        try:
            sandbox = await manager.create(wanted, store_hf_token=self.stores_token(params), log=ctx.log)
        except SandboxError as exc:
            return ToolResult(f"ERROR: the sandbox could not be created. {exc}", success=False)
        workdir = sandbox.client.workdir or DEFAULT_WORKDIR
        token = ("Your HF token is available there as $HF_TOKEN." if sandbox.hf_token_stored else
                 "It does not hold your HF token (ask for store_hf_token=true if code there must push to the Hub).")
        return ToolResult(
            f"Sandbox ready: {sandbox.repo_id} on {wanted} ({_price_text(wanted)}), working directory {workdir}. "
            f"{token} Use sandbox_bash / sandbox_read / sandbox_write / sandbox_edit; it is deleted when the "
            f"session ends, so push anything worth keeping to the Hub. Space: {sandbox.space_url}")


# --------------------------------------------------------------------------- sandbox_bash


class SandboxBashParams(ToolParams):
    command: str = Field(description="The shell command to run with /bin/bash -c in the sandbox.")
    description: str = Field("", description="Five to ten words saying what the command does, shown to the user.")
    work_dir: str = Field("", description="Directory in the sandbox to run in (absolute, or relative to /app). "
                                          "Defaults to /app.")
    timeout: int = Field(DEFAULT_TIMEOUT_S, ge=1, le=MAX_TIMEOUT_S,
                         description=f"Seconds before the command and everything it started are killed (default "
                                     f"{DEFAULT_TIMEOUT_S}, max {MAX_TIMEOUT_S}). For longer work run it in the "
                                     "background with nohup and poll its log.")


class SandboxBashTool(Tool):
    name = "sandbox_bash"
    description = (
        f"Run a shell command {_REMOTE} and return its combined stdout and stderr (long output keeps the head and "
        "tail; the full text is saved to a file in the sandbox). stdin is closed. The command and everything it "
        "starts is killed on timeout or interrupt; for long jobs use `nohup python train.py > train.log 2>&1 &` "
        "and poll the log."
    )
    Params = SandboxBashParams

    async def run(self, params: SandboxBashParams, ctx: ToolContext) -> ToolResult:
        sandbox = await _active(ctx)
        if isinstance(sandbox, ToolResult):
            return sandbox
        try:
            out = await sandbox.client.bash(params.command, timeout=params.timeout, cwd=params.work_dir or None)
        except SandboxError as exc:
            return ToolResult(f"ERROR: {exc} (the command may not have run)", success=False)
        body = out.output
        if out.timed_out:
            return ToolResult(
                f"{body}\n\nERROR: the command timed out after {params.timeout}s in the sandbox and was killed with "
                "every process it started. For long work run it in the background: `nohup <command> > run.log "
                f"2>&1 &`, then check it with `tail -n 50 run.log`. Or pass a larger timeout (max {MAX_TIMEOUT_S}s).",
                success=False)
        code = out.exit_code
        if code == 0 and not out.killed:
            return ToolResult(body)
        if out.killed:
            status = "The command was stopped by a kill request."
        elif code is not None and code < 0:
            status = f"The command was killed by signal {-code}."
        else:
            status = f"The command failed with exit code {code}."
        return ToolResult(f"{body}\n\n{status}", success=False)


# --------------------------------------------------------------------------- files


class SandboxReadParams(ToolParams):
    path: str = Field(description="File in the sandbox, absolute or relative to /app.")
    offset: int = Field(1, ge=1, description="1-based line number to start from (default 1).")
    limit: int = Field(DEFAULT_READ_LIMIT, ge=1, description=f"Maximum lines to return (default {DEFAULT_READ_LIMIT}).")


class SandboxReadTool(Tool):
    name = "sandbox_read"
    description = (
        f"Read a text file {_REMOTE}. Returns numbered lines like `cat -n`; use offset and limit to page through "
        "long files. A sandbox file must be read before sandbox_write or sandbox_edit may change it."
    )
    Params = SandboxReadParams

    async def run(self, params: SandboxReadParams, ctx: ToolContext) -> ToolResult:
        sandbox = await _active(ctx)
        if isinstance(sandbox, ToolResult):
            return sandbox
        try:
            key = await _key(sandbox, params.path)
            text = await sandbox.client.read(params.path, params.offset, params.limit)
        except SandboxError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)
        sandbox.seen[key] = sandbox.seen[text.path] = text.state
        if text.state.size == 0:
            return ToolResult(f"({text.path} is empty)")
        result = text.content
        if text.last_line < text.total_lines:
            result += (f"\n... {text.total_lines - text.last_line:,} more lines; use offset={text.last_line + 1} "
                       "to continue.")
        return ToolResult(result)


class SandboxWriteParams(ToolParams):
    path: str = Field(description="File in the sandbox to create or overwrite, absolute or relative to /app.")
    content: str = Field(description="The complete new content of the file.")


class SandboxWriteTool(Tool):
    name = "sandbox_write"
    description = (
        f"Create a file {_REMOTE}, or replace the whole content of one. Parent directories are created. An "
        "existing file must have been read first with sandbox_read (and not changed since); to change part of a "
        "file prefer sandbox_edit."
    )
    Params = SandboxWriteParams

    async def run(self, params: SandboxWriteParams, ctx: ToolContext) -> ToolResult:
        sandbox = await _active(ctx)
        if isinstance(sandbox, ToolResult):
            return sandbox
        try:
            key = await _key(sandbox, params.path)
            expect = sandbox.seen.get(key)
            change = await sandbox.client.write(params.path, params.content, expect=expect,
                                                create_only=expect is None)
        except SandboxError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)
        sandbox.seen[key] = sandbox.seen[change.path] = change.state
        verb = "Created" if change.created else "Overwrote"
        report = [f"{verb} {change.path} in the sandbox ({change.lines} lines, {change.bytes:,} bytes)."]
        report += python_warnings(Path(change.path), params.content)
        return ToolResult("\n".join(report))


class SandboxEditParams(ToolParams):
    path: str = Field(description="File in the sandbox to edit, absolute or relative to /app.")
    old_str: str = Field(description="The exact text to replace, copied from the file (without the line-number "
                                     "prefix sandbox_read shows). Include enough lines to make it unique.")
    new_str: str = Field(description="The text to put in its place (may be empty to delete).")
    replace_all: bool = Field(False, description="Replace every occurrence instead of requiring exactly one.")


class SandboxEditTool(Tool):
    name = "sandbox_edit"
    description = (
        f"Replace text in a file {_REMOTE} that you have read with sandbox_read. old_str must match exactly "
        "(whitespace included) and in one place unless replace_all is true."
    )
    Params = SandboxEditParams

    async def run(self, params: SandboxEditParams, ctx: ToolContext) -> ToolResult:
        sandbox = await _active(ctx)
        if isinstance(sandbox, ToolResult):
            return sandbox
        try:
            key = await _key(sandbox, params.path)
            expect = sandbox.seen.get(key)
            if expect is None:
                return ToolResult(f"ERROR: {key} has not been read in this sandbox. Read it with sandbox_read "
                                  "first so you know what you are changing; nothing was changed.", success=False)
            change = await sandbox.client.edit(params.path, params.old_str, params.new_str,
                                               replace_all=params.replace_all, expect=expect)
        except SandboxError as exc:
            return ToolResult(f"ERROR: {exc}", success=False)
        sandbox.seen[key] = sandbox.seen[change.path] = change.state
        count = f"{change.replacements} occurrences (first at line {change.first_line})" \
            if change.replacements > 1 else f"line {change.first_line}"
        report = [f"Edited {change.path} in the sandbox: replaced {count}.", change.snippet, *change.warnings]
        return ToolResult("\n".join(part for part in report if part))


def sandbox_tools() -> list[Tool]:
    """Fresh instances of the sandbox tools, in the order the model sees them."""
    return [SandboxCreateTool(), SandboxBashTool(), SandboxReadTool(), SandboxWriteTool(), SandboxEditTool()]
