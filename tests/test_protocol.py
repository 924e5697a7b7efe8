"""Every op and event survives a JSON round trip and parses back to its own class."""

from __future__ import annotations

import json

import pytest

from agent import protocol as p

SAMPLES: dict[type, dict] = {
    p.UserInput: {"text": "train a model"},
    p.ExecApproval: {"decisions": [{"tool_call_id": "c1", "approved": False, "feedback": "use a t4",
                                     "edited_args": {"timeout": "1h"}},
                                    {"tool_call_id": "c2", "approved": True, "remember": "project",
                                     "rule": {"effect": "allow", "tool": "bash", "pattern": "pytest"}}]},
    p.Interrupt: {},
    p.Compact: {"focus": "dataset choices"},
    p.Undo: {},
    p.New: {},
    p.Resume: {"target_session_id": "abc"},
    p.Rename: {"title": "imdb sweep"},
    p.Shutdown: {},
    p.SetModel: {"model": "anthropic/claude-sonnet-4-5"},
    p.ListModels: {"refresh": True},
    p.Steer: {"text": "use the smaller batch size"},
    p.ListRuns: {},
    p.Pin: {"text": "the eval set is test_clean.jsonl; never train on it"},
    p.PinsChanged: {"pins": ["the eval set is test_clean.jsonl; never train on it", "lr 2e-5"]},
    p.CompactionPreview: {"summarise": ["user: hi"], "keep": ["assistant: ok"], "pinned": ["x"], "tokens": 900,
                          "threshold": 800, "automatic": True},
    p.Continue: {"hint": "read the traceback before running the tests again"},
    p.RunRecord: {"run": {"job_id": "j1", "status": "COMPLETED", "backend": "local", "hyperparameters": {"lr": "2e-5"},
                          "metrics": {"final_loss": 0.4}}},
    p.RunList: {"runs": [{"job_id": "j1", "status": "RUNNING", "backend": "hf", "flavor": "a10g-small"}]},
    p.Feedback: {"rating": "good", "comment": "nice run"},
    p.ShareTraces: {"visibility": "private"},
    p.TraceConsent: {"accept": False, "mask": ["project-x"], "save": True},
    p.TelemetryRecord: {"name": "job_completed", "data": {"job_id": "j1", "status": "COMPLETED", "cost_usd": 0.1}},
    p.TraceStatus: {"visibility": "private", "url": "http://hub/datasets/ada/mlintern-sessions", "accepted": True},
    p.TracePreview: {"records": 12, "bytes": 4096, "files": ["sessions/2026-12-06/abc.jsonl"],
                     "findings": [{"record": 3, "field": "message.content", "kind": "Hugging Face token",
                                   "context": "token ⟦hf_a…⟧ here"}]},
    p.UserMessage: {"text": "train a small model"},
    p.McpAction: {"action": "reconnect", "server": "files"},
    p.SetEffort: {"effort": "high"},
    p.SetYolo: {"enabled": True, "cap_usd": 2.5},
    p.SetApprovalMode: {"mode": "ask"},
    p.Ready: {"model": "demo", "model_label": "demo", "tool_count": 5, "cwd": "/tmp", "is_demo": True},
    p.Processing: {},
    p.AssistantChunk: {"content": "Hel"},
    p.AssistantMessage: {"content": "Hello", "final": True},
    p.ToolCallEvent: {"tool_call_id": "c1", "tool": "bash", "arguments": {"command": "ls"}},
    p.ToolOutput: {"tool_call_id": "c1", "tool": "bash", "output": "a\nb", "success": True, "spill_path": "/x"},
    p.ToolLog: {"tool": "bash", "log": "line", "tool_call_id": "c1"},
    p.ToolState: {"tool_call_id": "c1", "tool": "bash", "state": "running"},
    p.ApprovalRequired: {"items": [{"tool_call_id": "c1", "tool": "hf_jobs", "arguments": {"operation": "run"},
                                    "reason": "GPU job", "estimated_cost_usd": 4.0,
                                    "suggested_rule": {"effect": "allow", "tool": "hf_jobs", "operation": "run",
                                                       "pattern": "a10g-large", "label": "hf_jobs run on hardware a10g-large"}}]},
    p.PlanUpdate: {"plan": [{"id": "1", "content": "inspect", "status": "in_progress"}]},
    p.LLMCall: {"model": "demo", "kind": "compaction", "latency_ms": 12,
                "usage": {"prompt_tokens": 10, "completion_tokens": 2, "cache_read_tokens": 3, "cache_write_tokens": 1},
                "cost_usd": None, "cost_source": "unknown", "finish_reason": "stop"},
    p.Compacted: {"tokens_before": 100, "tokens_after": 40, "messages_before": 30, "messages_after": 6, "method": "summary"},
    p.Guard: {"kind": "doom_loop", "message": "stuck", "tokens_spent": 900, "cost_usd": 0.02},
    p.JobUpdate: {"job_id": "j1", "status": "RUNNING", "flavor": "a10g-small", "cost_usd": 0.5},
    p.JobLog: {"job_id": "j1", "lines": ["{'loss': 0.4}"]},
    p.TurnComplete: {"final_response": "done", "history_size": 7,
                     "receipt": {"usage": {"prompt_tokens": 5}, "llm_calls": 1, "llm_cost_usd": 0.1}},
    p.Interrupted: {"partial_text": "Hel"},
    p.ErrorEvent: {"message": "no key", "kind": "auth"},
    p.UndoComplete: {"removed_messages": 3},
    p.NewComplete: {"previous_session_id": "old"},
    p.ResumeComplete: {"restored_messages": 9, "title": "t", "interrupted": True, "transcript": [
        {"kind": "tool_call", "tool": "bash", "tool_call_id": "c1", "arguments": {"command": "ls"}}],
        "plan": [{"id": "1", "content": "x", "status": "pending"}],
        "jobs": [{"job_id": "j1", "backend": "hf", "status": "COMPLETED", "cost_usd": 0.4, "ended_while_away": True}]},
    p.SessionTitle: {"title": "imdb sweep", "automatic": True},
    p.ShutdownEvent: {},
    p.SettingsChanged: {"model": "demo", "model_label": "demo", "effort": None, "yolo": True,
                        "yolo_cap_usd": 5.0, "context_window": 32768, "approval_mode": "yolo", "budget_left_usd": 3.5},
    p.ContextUsage: {"tokens": 1000, "window": 32768, "threshold": 29491},
    p.McpStatus: {"servers": [{"name": "files", "state": "ready", "origin": "user", "transport": "stdio",
                               "target": "python server.py", "tools": ["read_note"], "approval": "ask"}],
                  "untrusted_project": None},
    p.ModelList: {"current": "demo", "router": "live", "router_note": "fetched just now", "local_pending": False,
                  "choices": [{"id": "moonshotai/Kimi-K2-Instruct", "source": "router", "input_per_mtok": 0.6,
                               "output_per_mtok": 2.5, "price_basis": "novita's price", "context": 131072,
                               "tools": True, "offers": [{"provider": "novita", "live": True, "input_per_mtok": 0.6,
                                                          "output_per_mtok": 2.5, "context": 131072, "tools": True}]}]},
}


def test_every_protocol_class_has_a_sample():
    assert set(SAMPLES) == set(p.OP_TYPES) | set(p.EVENT_TYPES)


@pytest.mark.parametrize("cls", list(SAMPLES), ids=lambda c: c.__name__)
def test_round_trip(cls):
    obj = cls(seq=7, ts=1.5, session_id="s1", turn=2, **SAMPLES[cls])
    line = obj.model_dump_json()
    data = json.loads(line)
    assert data["type"] == obj.type and data["seq"] == 7 and data["session_id"] == "s1" and data["turn"] == 2
    parse = p.parse_op if cls in p.OP_TYPES else p.parse_event
    back = parse(line)
    assert type(back) is cls
    assert back == obj
    assert parse(data) == obj


def test_unknown_type_and_extra_fields_are_rejected():
    with pytest.raises(Exception):
        p.parse_event({"type": "nope"})
    with pytest.raises(Exception):
        p.parse_op({"type": "user_input", "text": "x", "surprise": 1})


def test_op_and_event_type_names_are_unique():
    names = [c.model_fields["type"].default for c in (*p.OP_TYPES, *p.EVENT_TYPES)]
    ops = [c.model_fields["type"].default for c in p.OP_TYPES]
    events = [c.model_fields["type"].default for c in p.EVENT_TYPES]
    assert len(set(ops)) == len(ops) and len(set(events)) == len(events)
    assert "shutdown" in ops and "shutdown" in events and len(names) == len(ops) + len(events)
