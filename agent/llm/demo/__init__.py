"""The built-in demo model: a scripted model that drives the real tools.

With no credentials the app starts on this model, so a fresh offline install works end to
end. The client calls it in-process (no server, no litellm) and it walks through a small, real ML
task: inspect the machine, write a pure-Python training script, launch it with ``hf_jobs``
as a background job (the local backend without an HF account; the user approves it), check
on it every few seconds while it trains, then read its log and report. The engine executes
every call for real, and the report quotes the job's parsed log. If the job outlives the
checks, the turn ends and the next message picks the job up again (by then the job
monitor's ``[JOB UPDATE]`` note is in the conversation).

The next step is decided from the conversation alone (the calls and their results, the
monitor's notes), never from state kept in the provider: one provider instance serves every
session, and resuming or undoing needs nothing special.

One job per module:

- ``provider``: ``DemoModel``, its streaming in the OpenAI chunk shape and ``MLINTERN_DEMO_*`` knobs
- ``conversation``: reading the messages into tool calls, results and the last request
- ``scenario``: deciding the next reply (the steps, the plan, the tool arguments)
- ``trainer``: the training script's source text and where it is written
- ``outputs``: parsing what the tools and the job returned
- ``prose``: what the demo says
"""

from __future__ import annotations

from agent.llm.demo.conversation import CALL_ID_PREFIX, Call, Conversation, offered_tools
from agent.llm.demo.provider import (
    DEFAULT_CHUNK_DELAY,
    DEMO_CONTEXT_WINDOW,
    DEMO_MAX_OUTPUT,
    DEMO_MODEL_ID,
    DEMO_PROVIDER,
    DemoModel,
    stream_chunks,
)
from agent.llm.demo.scenario import (
    DEFAULT_MAX_POLLS,
    DEFAULT_POLL_S,
    FINAL_STAGES,
    DemoSettings,
    Reply,
    next_reply,
)

__all__ = [
    "CALL_ID_PREFIX", "DEFAULT_CHUNK_DELAY", "DEFAULT_MAX_POLLS", "DEFAULT_POLL_S", "DEMO_CONTEXT_WINDOW",
    "DEMO_MAX_OUTPUT", "DEMO_MODEL_ID", "DEMO_PROVIDER", "FINAL_STAGES", "Call", "Conversation", "DemoModel",
    "DemoSettings", "Reply", "next_reply", "offered_tools", "stream_chunks",
]

