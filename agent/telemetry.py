"""Telemetry: one-line records of what a session spent and did, kept with its events (the
session store; traces are made from them) and never shown as conversation.

``record_llm_call`` turns a provider's raw usage into the ``llm_call`` event (cache tokens
normalised, unknown prices kept unknown); the others are ``telemetry`` events with a typed
payload: a job submitted or completed, a sandbox created or destroyed, the user's feedback.
A record never raises: a failing sink is logged at debug level and the session goes on.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Literal

from pydantic import BaseModel, ConfigDict

from agent.protocol import LLMCall, LLMCallKind, TelemetryRecord

log = logging.getLogger(__name__)


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobSubmitted(_Payload):
    job_id: str
    backend: str
    flavor: str = ""
    estimate_usd: float | None = None


class JobCompleted(_Payload):
    job_id: str
    status: str
    cost_usd: float | None = None
    duration_s: float | None = None


class SandboxCreated(_Payload):
    space_id: str
    hardware: str
    price_per_hour_usd: float | None = None


class SandboxDestroyed(_Payload):
    space_id: str
    cost_usd: float | None = None


class Feedback(_Payload):
    rating: Literal["good", "bad"]
    comment: str = ""
    turn: int = 0


class Telemetry:
    def __init__(self, emit: Callable[[Any], None]):
        self._emit = emit

    def _send(self, event: Any) -> None:
        try:
            self._emit(event)
        except Exception:  # a record never costs the session
            log.debug("telemetry record dropped", exc_info=True)

    def _record(self, payload: _Payload) -> None:
        try:
            name = {JobSubmitted: "job_submitted", JobCompleted: "job_completed", SandboxCreated: "sandbox_created",
                    SandboxDestroyed: "sandbox_destroyed", Feedback: "feedback"}[type(payload)]
            self._send(TelemetryRecord(name=name, data=payload.model_dump()))
        except Exception:
            log.debug("telemetry record dropped", exc_info=True)

    def record_llm_call(self, *, model: str, kind: LLMCallKind, raw_usage: Any, latency_ms: int,
                        cost_usd: float | None, cost_source: str, finish_reason: str | None = None,
                        error: str | None = None, attempt: int = 1, served_model: str | None = None) -> None:
        try:
            from agent.llm.pricing import normalise_usage

            self._send(LLMCall(model=model, kind=kind, latency_ms=latency_ms, usage=normalise_usage(raw_usage),
                               cost_usd=cost_usd, cost_source=cost_source if cost_usd is not None else "unknown",
                               finish_reason=finish_reason, error=error, attempt=attempt, served_model=served_model))
        except Exception:
            log.debug("llm_call record dropped", exc_info=True)

    def record_job_submitted(self, job_id: str, backend: str, flavor: str = "", estimate_usd: float | None = None) -> None:
        self._record(JobSubmitted(job_id=job_id, backend=backend, flavor=flavor, estimate_usd=estimate_usd))

    def record_job_completed(self, job_id: str, status: str, cost_usd: float | None = None,
                             duration_s: float | None = None) -> None:
        self._record(JobCompleted(job_id=job_id, status=status, cost_usd=cost_usd, duration_s=duration_s))

    def record_sandbox_created(self, space_id: str, hardware: str, price_per_hour_usd: float | None = None) -> None:
        self._record(SandboxCreated(space_id=space_id, hardware=hardware, price_per_hour_usd=price_per_hour_usd))

    def record_sandbox_destroyed(self, space_id: str, cost_usd: float | None = None) -> None:
        self._record(SandboxDestroyed(space_id=space_id, cost_usd=cost_usd))

    def record_feedback(self, rating: str, comment: str = "", turn: int = 0) -> None:
        self._record(Feedback(rating=rating, comment=comment, turn=turn))  # type: ignore[arg-type]
