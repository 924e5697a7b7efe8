"""Telemetry records: a job submitted and completed, the user's feedback; kept with the session's
events (not shown as conversation), and a failing sink never costs the session."""

from __future__ import annotations

import asyncio
import json

from agent.config import Config, LLMSettings
from agent.protocol import Feedback, Shutdown, UserInput
from agent.telemetry import Telemetry
from tests.engine_support import collect_until, make_session, of_type
from tests.fakes import Call, Text, ToolCalls


async def test_jobs_and_feedback_are_recorded_with_the_session(llm_server, monkeypatch, tmp_path):
    config = Config(llm=LLMSettings(max_attempts=1),
                    model_prices={"openai/scripted-model": {"input_per_mtok": 0.0, "output_per_mtok": 0.0}})
    s = make_session(llm_server, monkeypatch, tmp_path, config=config, jobs_backend="local", approval_mode="yolo")
    s.jobs.first_lines_wait_s = 0.1
    job = {"operation": "run", "script": "print('trained')\n", "hardware_flavor": "cpu-basic", "timeout": "1m"}
    llm_server.script(ToolCalls([Call("j1", "hf_jobs", json.dumps(job))]), Text("Launched."))
    sub = s.subscribe("t")
    s.start()
    s.submit(UserInput(text="train"))
    events = await collect_until(sub)
    records = of_type(events, "telemetry")
    [submitted] = [r for r in records if r.name == "job_submitted"]
    assert submitted.data["backend"] == "local" and submitted.data["job_id"]
    done = [r for r in records if r.name == "job_completed"]  # a quick job may end within the turn
    while not done:
        done = [r for r in of_type(await collect_until(sub, stop={"telemetry"}, timeout=30), "telemetry")
                if r.name == "job_completed"]
    assert done[0].data["job_id"] == submitted.data["job_id"] and done[0].data["status"] == "COMPLETED"
    assert done[0].data["duration_s"] is not None
    s.submit(Feedback(rating="bad", comment="it forgot the eval"))
    [fb] = [r for r in of_type(await collect_until(sub, stop={"telemetry"}), "telemetry")]
    assert fb.name == "feedback" and fb.data == {"rating": "bad", "comment": "it forgot the eval", "turn": 1}
    s.submit(Shutdown())
    await asyncio.wait_for(s._runner, 20)
    from agent.store import SessionStore, db_path

    store = SessionStore(db_path(s.data_dir))
    kinds = [json.loads(body)["name"] for _, _, body in store.events(s.id, ["telemetry"])]
    store.close()
    assert kinds == ["job_submitted", "job_completed", "feedback"]


def test_a_failing_sink_never_raises():
    def broken(event):
        raise OSError("disk full")

    t = Telemetry(broken)
    t.record_feedback("good")
    t.record_job_completed("j", "COMPLETED", 0.1, 3.0)
    t.record_llm_call(model="m", kind="main", raw_usage={"prompt_tokens": 10, "completion_tokens": 2,
                                                         "prompt_tokens_details": {"cached_tokens": 4}},
                      latency_ms=5, cost_usd=None, cost_source="unknown")
    seen = []
    Telemetry(seen.append).record_llm_call(model="m", kind="main", latency_ms=5, cost_usd=0.001, cost_source="config",
                                           raw_usage={"input_tokens": 6, "cache_read_input_tokens": 4,
                                                      "output_tokens": 2})
    assert (seen[0].usage.prompt_tokens, seen[0].usage.cache_read_tokens) == (10, 4)
