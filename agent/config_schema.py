"""The settings' schema: every key of the config file, its type, default and limits.

Apart from ``agent.config`` (paths, reading and writing the file) because pydantic and these
models cost ~0.1 s to import and build: the app draws its first frame without them when the
file has not changed since the last start (``agent.config.early_settings``), and reads the
file through them just after that frame. ``from agent.config import Config`` still works.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.protocol import ApprovalRule


class LLMSettings(BaseModel):
    model_config = ConfigDict(defer_build=True, extra="forbid")

    max_attempts: int = Field(6, ge=1, le=20, description="attempts per LLM request, first included")
    backoff_base_s: float = Field(2.0, ge=0)
    backoff_max_s: float = Field(60.0, ge=0)
    request_timeout_s: float = Field(600.0, gt=0)
    stall_timeout_s: float = Field(60.0, gt=0, description=(
        "a stream that sends no data for this long is cut and retried (the request timeout bounds the whole call)"))
    max_retry_after_s: float = Field(300.0, ge=0, description="longest Retry-After we honour")
    transport: Literal["auto", "litellm", "direct"] = Field(
        "auto",
        description="auto: stream local servers, the HF router and OPENAI_BASE_URL servers (other than "
        "OpenAI's or Azure's own API) directly, without loading litellm; litellm: always litellm; "
        "direct: also OPENAI_BASE_URL pointing at OpenAI's or Azure's API",
    )


class Config(BaseModel):
    """Settings with their defaults. Unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(defer_build=True, extra="forbid", populate_by_name=True)

    model: str | None = None
    reasoning_effort: str | None = None
    max_iterations: int = Field(300, description="LLM calls per turn; -1 for no limit")
    approval_mode: Literal["ask", "auto", "yolo"] = "auto"
    yolo_cap_usd: float = Field(5.0, ge=0, description="YOLO budget per session (USD), LLM spend included")
    confirm_cpu_jobs: bool = True
    approval_rules: list[ApprovalRule] = Field(
        default_factory=list, description="always allow/deny rules for every project (see agent/rules.py)")
    project_approval_rules: dict[str, list[ApprovalRule]] = Field(
        default_factory=dict, description="always allow/deny rules per project directory")
    jobs_backend: Literal["auto", "local", "hf"] = Field(
        "auto", description="auto: Hugging Face Jobs when an HF token is set, else local CPU processes")
    compaction_threshold: float = Field(0.9, gt=0.1, le=1.0)
    context_windows: dict[str, int] = Field(default_factory=dict)
    model_prices: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="per-model prices: {input_per_mtok, output_per_mtok[, cache_read_per_mtok]}",
    )
    llm: LLMSettings = Field(default_factory=LLMSettings)
    theme: str | None = None
    cursor_blink: bool = Field(False, description=(
        "blink the prompt's cursor (off: a steady cursor, and an idle app draws nothing at all)"))
    save_sessions: bool = Field(True, description="keep every session in <data dir>/sessions.db for /resume")
    model_titles: bool = Field(
        default_factory=lambda: os.environ.get("MLINTERN_MODEL_TITLES", "1") != "0",
        description="once the first answer starts, ask the model for a short session title (a tiny call, shown as "
        "'title' in /cost); off: the first prompt is the title (default on; MLINTERN_MODEL_TITLES=0 turns it off)")
    wake_on_job_end: bool = Field(
        True, description="when a job the agent started ends while it is idle, start a turn with the news")
    pass_env: list[str] = Field(
        default_factory=list,
        description="credentials (by variable name) that bash and local jobs may see; every other key, token and "
        "secret is left out of their environment")
    endpoints: dict[str, str] = Field(
        default_factory=dict,
        description="service URLs for mirrors and tests: hub, datasets_server, github_api, arxiv, ar5iv, "
        "semantic_scholar, web_search, hf_router (environment variables win: HF_ENDPOINT, MLINTERN_*_URL, "
        "GITHUB_API_URL, HF_ROUTER_BASE_URL)")
    research_model: str | None = Field(None, description="model for the research sub-agent (default: the main model)")
    research_max_iterations: int = Field(40, ge=1, le=200, description="model calls per research run")
    research_max_tokens: int = Field(500_000, ge=10_000, description=(
        "tokens a research run may use, prompt and completion summed over its calls (it wraps up at 80%; its "
        "context also stays within 80% of the research model's window)"))
    knowledge_cache_ttl_s: float = Field(86_400.0, ge=0, description="the longest a cached papers/docs/API answer is reused (0: never cached)")
    mcp_servers: dict[str, Any] = Field(default_factory=dict, alias="mcpServers")
    messaging: dict[str, Any] = Field(default_factory=dict, description=(
        "Slack destinations for the notify tool and automatic news: enabled, auto_event_types, destinations "
        "(checked at start; see agent/messaging.py)"))
    max_parallel_tools: int = Field(8, ge=1, le=64, description="tool calls of one model reply that run at once")
    doom_loop_pause: bool = Field(True, description=(
        "in the app, a repetition guard pauses the turn and offers remedies (stop, a hint, another model, "
        "continue); headless runs always just tell the model to change approach"))
    share_traces: Literal["off", "private", "public"] = Field("off", description=(
        "upload this session's trace (redacted, after you accept its preview) to {user}/mlintern-sessions"))
    share_traces_preaccepted: bool = Field(False, description="upload without showing the preview first")
    trace_redact_patterns: list[str] = Field(default_factory=list, description="more regular expressions to mask in traces")
    trace_redact_home: bool = Field(True, description="mask your home directory in traces as ~")
    heartbeat_s: float = Field(60.0, gt=0, description="seconds between store flushes and trace uploads")
    terminal_notifications: Literal["auto", "bell", "osc9", "osc777", "off"] = Field("auto", description=(
        "how the app signals an approval waiting or a turn or job ending while the terminal is unfocused: "
        "auto (OSC 777 and OSC 9, then a bell), bell, osc9, osc777, off"))
    local_echo: bool = Field(True, description=(
        "draw a character typed into the prompt at once, from the thread that reads keys, before the "
        "app's loop handles it (the loop draws it again a moment later)"))
    frame_pacing: bool = Field(True, description=(
        "when frames get expensive (a long conversation flooded with tool calls) and no key or click "
        "asked for one, draw the screen less often, so that drawing takes at most a third of the app's time"))

    @field_validator("endpoints")
    @classmethod
    def _known_endpoints(cls, value: dict[str, str]) -> dict[str, str]:
        from agent.endpoints import ENDPOINT_DEFAULTS

        unknown = sorted(set(value) - set(ENDPOINT_DEFAULTS))
        if unknown:
            raise ValueError(f"unknown endpoint(s) {', '.join(unknown)}; known: {', '.join(ENDPOINT_DEFAULTS)}")
        for name, url in value.items():
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"endpoint {name} must be an http(s) URL, got {url!r}")
        return value

    @field_validator("reasoning_effort", mode="before")
    @classmethod
    def _known_effort(cls, value: Any) -> str | None:
        from agent.llm.effort import normalise_effort  # no litellm behind it

        return normalise_effort(value)
