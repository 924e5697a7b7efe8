"""What a tool is, and what it gets to run.

A tool is a class with a pydantic ``Params`` model (the JSON schema the model sees is built
from it) and an async ``run``. Tools never raise for expected failures: they return a
``ToolResult`` with ``success=False`` and a sentence the model can act on. Unexpected
exceptions are turned into error results by the router, so one broken call is one error
result, never a crashed turn.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, ClassVar

from pydantic import BaseModel, ConfigDict

from agent.protocol import PlanItem


class ToolParams(BaseModel):
    """Base for parameter models: unknown keys are an error the model is told about."""

    # built on a tool's first call, not at import: a session imports this module on the way to
    # "ready", and most tools are never called (their schemas come from agent/tools/lazy.py's cache)
    model_config = ConfigDict(defer_build=True, extra="forbid")


@dataclass
class ToolResult:
    output: str
    success: bool = True
    spill_path: str | None = None


@dataclass
class SessionToolState:
    """Per-session state shared by the tools (never process-global: reference §12.18)."""

    #: resolved path -> (mtime_ns, size) when the agent last read or wrote it
    #: (mtime_ns, size, sha256 of the content or None for very big files)
    read_files: dict[str, tuple] = field(default_factory=dict)
    plan: list[PlanItem] = field(default_factory=list)

    def reset(self) -> None:
        self.read_files.clear()
        self.plan = []


@dataclass
class ToolContext:
    """Everything a running tool may touch besides its arguments."""

    session_id: str
    cwd: Path
    #: directory for spill files of oversized outputs (created on demand)
    spill_dir: Path
    state: SessionToolState
    tool_call_id: str = ""
    #: emit a progress line (becomes a ``tool_log`` event)
    log: Callable[[str], None] = lambda line: None
    #: publish the new plan (becomes a ``plan_update`` event)
    on_plan: Callable[[list[PlanItem]], None] = lambda plan: None
    #: the session's jobs (backend + monitor), for hf_jobs; an ``agent.jobs.service.JobService``
    jobs: Any = None
    #: the session's remote sandbox (an ``agent.sandbox.manager.SandboxManager``), None without an HF token
    sandbox: Any = None
    #: the session's HTTP client for the knowledge tools (an ``agent.net.Net``); tools use
    #: ``agent.tools.knowledge.net_of(ctx)``, which makes one when a harness gave none
    net: Any = None
    #: runs a research sub-agent (an ``agent.research.ResearchRunner``), None where there is none
    research: Any = None
    #: the environment for a process the tool starts, given (call id, the process in words):
    #: credentials removed (agent/secrets.py), the Hub reached through the session's gateway
    environment: Callable[[str, str], Awaitable[dict[str, str]]] | None = None
    #: marks the processes a command starts, so they are found again at exit (agent/process_tracker.py)
    process_tag: str = ""


@dataclass(frozen=True)
class ApprovalSettings:
    """The subset of settings that approval rules read."""

    mode: str = "auto"  # "ask" | "auto" | "yolo"
    confirm_cpu_jobs: bool = True
    cwd: Path = Path(".")


class Tool(abc.ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    Params: ClassVar[type[ToolParams]]

    def approval_reason(self, params: Any, settings: ApprovalSettings) -> str | None:
        """Why this call needs a human, or None when it may run on its own."""
        return None

    def always_ask(self, params: Any) -> bool:
        """True for calls that need a human even in YOLO mode (e.g. scheduled jobs)."""
        return False

    def estimate(self, params: Any) -> float | None:
        """Dollars this call may cost at most (shown on the approval card), if known."""
        return None

    async def review(self, params: Any, ctx: ToolContext) -> Any:
        """What a gated call will change, for its approval card (an
        ``agent.protocol.HubWriteReview``), or None. Read-only: it runs before the user
        decides, so it must never change anything."""
        return None

    @abc.abstractmethod
    async def run(self, params: Any, ctx: ToolContext) -> ToolResult: ...
