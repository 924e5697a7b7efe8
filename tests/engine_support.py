"""Helpers for driving a real Session against the scripted loopback model server."""

from __future__ import annotations

import asyncio
from pathlib import Path

from agent.config import Config, LLMSettings
from agent.protocol import TERMINAL_EVENTS, ApprovalRequired, Event
from agent.session import Session, Subscription

MODEL = "openai/scripted-model"


def priced_config() -> Config:
    """The scripted model with a known price ($0): YOLO can then promise what a call costs
    (with an unpriced model every call that costs money asks instead)."""
    return Config(llm=LLMSettings(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05),
                  model_prices={MODEL: {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})


def local_tools() -> list:
    """The six local tools alone: for tests of context windows of a few thousand tokens, which
    the whole tool set's schemas (~7k tokens) would fill by themselves."""
    from agent.tools.edit import EditTool
    from agent.tools.files import ReadTool, WriteTool
    from agent.tools.jobs import HfJobsTool
    from agent.tools.plan import PlanTool
    from agent.tools.shell import BashTool

    return [BashTool(), ReadTool(), WriteTool(), EditTool(), PlanTool(), HfJobsTool()]


def make_session(llm_server, monkeypatch, tmp_path: Path, *, config: Config | None = None, **kw) -> Session:
    monkeypatch.setenv("OPENAI_BASE_URL", llm_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    config = config or Config(llm=LLMSettings(max_attempts=3, backoff_base_s=0.01, backoff_max_s=0.05))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return Session(config, model_id=kw.pop("model_id", MODEL), cwd=work, **kw)


async def collect_until(sub: Subscription, stop: set[str] | frozenset[str] = TERMINAL_EVENTS | {"approval_required"},
                        timeout: float = 30) -> list[Event]:
    events: list[Event] = []

    async def pump() -> None:
        while True:
            ev = await sub.get()
            events.append(ev)
            if ev.type in stop:
                return

    await asyncio.wait_for(pump(), timeout)
    return events


def of_type(events: list[Event], kind: str) -> list:
    return [e for e in events if e.type == kind]


def last_approval(events: list[Event]) -> ApprovalRequired:
    return of_type(events, "approval_required")[-1]
