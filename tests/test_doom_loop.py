"""Doom-loop guard: tail-only detection, fire-once behaviour, signature hashing."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from agent.doom_loop import (
    GUARD_PREFIX,
    DoomLoopDetector,
    LoopHit,
    ToolSignature,
    signatures,
)


def md5_12(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()[:12]


class History:
    """Builds OpenAI-style chat histories one model step at a time."""

    def __init__(self) -> None:
        self.messages: list[dict] = [
            {"role": "system", "content": "You are an ML intern."},
            {"role": "user", "content": "Train a model."},
        ]
        self._ids = 0

    def step(self, *calls: tuple[str, object, object]) -> int:
        """One assistant message with parallel calls (name, args, result); returns its index.

        `args` that is not a str is JSON-encoded; `result=None` leaves the result out.
        """
        tool_calls, results = [], []
        for name, args, result in calls:
            self._ids += 1
            call_id = f"call_{self._ids}"
            arguments = args if isinstance(args, str) else json.dumps(args)
            tool_calls.append(
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
            if result is not None:
                results.append({"role": "tool", "tool_call_id": call_id, "content": result})
        self.messages.append({"role": "assistant", "content": "", "tool_calls": tool_calls})
        index = len(self.messages) - 1
        self.messages.extend(results)
        return index

    def call(self, name: str, args: object = None, result: object = "ok") -> int:
        return self.step((name, {} if args is None else args, result))

    def user(self, text: str) -> None:
        self.messages.append({"role": "user", "content": text})


# Distinct calls used to build cycles: A → B → C → D → E.
CALLS = [
    ("read", {"path": "train.py"}, "1\timport torch"),
    ("bash", {"command": "python train.py"}, "CUDA out of memory"),
    ("edit", {"path": "train.py", "old_str": "bs=64", "new_str": "bs=32"}, "edited"),
    ("hf_jobs", {"operation": "logs", "job_id": "j1"}, "OOM at step 3"),
    ("web_search", {"query": "oom fix"}, "use gradient checkpointing"),
]


def checks(detector: DoomLoopDetector, history: History, calls) -> list[LoopHit | None]:
    """Append each call as its own model step and check after each, like the engine does."""
    out = []
    for name, args, result in calls:
        history.call(name, args, result)
        out.append(detector.check(history.messages))
    return out


# --- identical -----------------------------------------------------------------------


def test_three_identical_calls_fire_once_then_stay_quiet_while_continuing():
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls /data"}, "No such file or directory")
    results = checks(d, h, [same] * 5)

    assert results[:2] == [None, None]
    hit = results[2]
    assert hit is not None and hit.kind == "identical"
    assert hit.repetitions == 3
    assert hit.message.startswith(GUARD_PREFIX)
    assert "'bash'" in hit.message
    assert hit.summary == "bash called 3× with identical arguments and results"
    assert hit.pattern == (("bash", md5_12('{"command":"ls /data"}'), md5_12(same[2])),)
    # The 4th and 5th identical call are the same loop: the model already has the message.
    assert results[3:] == [None, None]


def test_changed_course_forgets_the_loop_and_a_relapse_fires_again():
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls /data"}, "No such file or directory")
    assert checks(d, h, [same] * 3)[-1] is not None
    assert checks(d, h, [CALLS[0]]) == [None]  # a different call: the tail stopped matching

    relapse = checks(d, h, [same] * 3)
    assert relapse[:2] == [None, None]
    assert relapse[2] is not None and relapse[2].kind == "identical"
    assert relapse[2].repetitions == 3


def test_old_identical_run_in_window_does_not_refire():
    """The reference's bug: a run anywhere in the window kept re-injecting the guard."""
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls"}, "x")
    checks(d, h, [same] * 3)
    later = checks(d, h, [CALLS[0], CALLS[2], CALLS[4]])
    assert later == [None, None, None]


def test_relapse_inside_one_parallel_step_fires_again():
    """Course change and relapse can happen within one assistant message."""
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls"}, "x")
    checks(d, h, [same] * 3)
    h.step(CALLS[0], same, same, same)
    hit = d.check(h.messages)
    assert hit is not None and hit.kind == "identical" and hit.repetitions == 3


def test_reset_rearms_the_guard():
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls"}, "x")
    checks(d, h, [same] * 3)
    assert d.check(h.messages) is None
    d.reset()
    assert d.check(h.messages) is not None


def test_polling_with_changing_results_is_not_a_loop():
    h, d = History(), DoomLoopDetector()
    polls = [
        ("hf_jobs", {"operation": "inspect", "job_id": "j1"}, f"RUNNING step {i * 100}")
        for i in range(8)
    ]
    assert checks(d, h, polls) == [None] * 8


def test_same_result_is_part_of_identity():
    """Same arguments but an unchanged result is what 'no progress' means."""
    h, d = History(), DoomLoopDetector()
    poll = ("hf_jobs", {"operation": "inspect", "job_id": "j1"}, "RUNNING step 100")
    assert checks(d, h, [poll] * 3)[-1] is not None


def test_different_pattern_fires_immediately():
    h, d = History(), DoomLoopDetector()
    a = ("bash", {"command": "ls"}, "x")
    b = ("read", {"path": "a.py"}, "y")
    assert checks(d, h, [a] * 3)[-1] is not None
    h.step(b, b, b)  # straight from one loop into another, no clean check in between
    hit = d.check(h.messages)
    assert hit is not None and hit.summary.startswith("read called 3×")


# --- cycles --------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 4, 5])
def test_cycle_of_each_length_fires_at_second_round_and_not_on_rotation(length):
    h, d = History(), DoomLoopDetector()
    unit = CALLS[:length]
    first_round = checks(d, h, unit)
    assert first_round == [None] * length

    second_round = checks(d, h, unit)
    assert second_round[:-1] == [None] * (length - 1)
    hit = second_round[-1]
    assert hit is not None and hit.kind == "cycle"
    assert hit.repetitions == 2
    assert [p[0] for p in hit.pattern] == [c[0] for c in unit]
    names = " → ".join(c[0] for c in unit)
    assert hit.summary == f"cycle {names} repeated 2×"
    assert hit.message.startswith(GUARD_PREFIX) and names in hit.message

    # Every rotation of the continuing cycle (B→A, C→A→B, …) is the same loop.
    assert checks(d, h, unit * 2) == [None] * (2 * length)


def test_cycle_repetitions_counted_back_over_the_whole_run():
    h, d = History(), DoomLoopDetector(cycle_repetitions=3)
    a, b = CALLS[0], CALLS[1]
    results = checks(d, h, [a, b] * 3)
    assert results[:-1] == [None] * 5  # two rounds are not enough with cycle_repetitions=3
    assert results[-1] is not None and results[-1].repetitions == 3

    h2, d2 = History(), DoomLoopDetector()
    h2.call(*CALLS[2])
    for call in [a, b] * 4:
        h2.call(*call)
    hit = d2.check(h2.messages)
    assert hit is not None and hit.repetitions == 4
    # Reported in the order the model ran it, from the start of the run.
    assert [p[0] for p in hit.pattern] == ["read", "bash"]


def test_cycle_broken_then_resumed_fires_again():
    h, d = History(), DoomLoopDetector()
    a, b = CALLS[0], CALLS[1]
    assert checks(d, h, [a, b, a, b])[-1] is not None
    assert checks(d, h, [CALLS[4]]) == [None]
    again = checks(d, h, [a, b, a, b])
    assert again[-1] is not None and again[-1].kind == "cycle"


def test_cycle_with_changing_results_is_not_a_loop():
    h, d = History(), DoomLoopDetector()
    steps = []
    for i in range(4):
        steps.append(("bash", {"command": "python train.py"}, f"loss {1.0 / (i + 1)}"))
        steps.append(("read", {"path": "log.txt"}, f"epoch {i}"))
    assert checks(d, h, steps) == [None] * 8


def test_single_repeated_call_is_never_reported_as_a_cycle():
    """Repeats of one call belong to the identical rule, even when its threshold is high."""
    h, d = History(), DoomLoopDetector(identical_threshold=6)
    same = ("bash", {"command": "ls"}, "x")
    assert checks(d, h, [same] * 5) == [None] * 5
    assert checks(d, h, [same])[0].kind == "identical"


def test_cycle_unit_may_repeat_a_tool_with_different_arguments():
    h, d = History(), DoomLoopDetector()
    unit = [
        ("bash", {"command": "pip install x"}, "error: no matching dist"),
        ("bash", {"command": "pip install x==1.0"}, "error: no matching dist"),
        ("web_search", {"query": "x wheel"}, "nothing"),
    ]
    hit = checks(d, h, unit * 2)[-1]
    assert hit is not None and hit.kind == "cycle"
    assert hit.summary == "cycle bash → bash → web_search repeated 2×"
    assert "pip install x==1.0" in hit.message


# --- signatures ----------------------------------------------------------------------


def test_args_hash_is_canonical_json():
    h = History()
    h.call("bash", '{"timeout": 5,  "command": "ls"}', "ok")
    h.call("bash", '{"command":"ls","timeout":5}', "ok")
    first, second = signatures(h.messages)
    assert first.args_hash == second.args_hash == md5_12('{"command":"ls","timeout":5}')
    assert first.result_hash == md5_12("ok")


def test_malformed_json_args_hash_the_raw_string():
    raw = '{"command": "cat <<EOF\nunterminated'
    h, d = History(), DoomLoopDetector()
    for _ in range(3):
        h.call("bash", raw, "ERROR: malformed JSON arguments")
    sigs = signatures(h.messages)
    assert {s.args_hash for s in sigs} == {md5_12(raw)}
    assert d.check(h.messages).kind == "identical"


def test_json_result_content_is_canonicalised():
    h = History()
    h.call("hf_inspect_dataset", {"id": "d"}, '{"b": 1, "a": 2}')
    h.call("hf_inspect_dataset", {"id": "d"}, '{"a":2,"b":1}')
    first, second = signatures(h.messages)
    assert first.result_hash == second.result_hash == md5_12('{"a":2,"b":1}')


def test_content_block_results_hash_like_their_text():
    h = History()
    h.call("read", {"path": "a"}, "line one\nline two")
    def blocks(*texts):
        return [{"type": "text", "text": t} for t in texts]

    h.call("read", {"path": "a"}, blocks("line one", "line two"))
    h.call("read", {"path": "a"}, blocks("line one", "CHANGED"))
    s1, s2, s3 = signatures(h.messages)
    assert s1.result_hash == s2.result_hash
    assert s3.result_hash != s2.result_hash


def test_content_block_results_can_form_a_loop():
    h, d = History(), DoomLoopDetector()
    blocks = [{"type": "text", "text": "still failing"}]
    for _ in range(3):
        h.call("bash", {"command": "make"}, blocks)
    assert d.check(h.messages).kind == "identical"


def test_missing_result_hashes_as_empty_and_results_stop_at_next_user_message():
    h = History()
    idx = h.step(("bash", {"command": "sleep 1"}, None))
    h.user("hello")
    # A stray result for that call after the user message is not its result.
    h.messages.append({"role": "tool", "tool_call_id": "call_1", "content": "late"})
    (sig,) = signatures(h.messages)
    assert sig == ToolSignature("bash", md5_12('{"command":"sleep 1"}'), md5_12(""), idx)


def test_results_are_matched_by_tool_call_id_not_order():
    h = History()
    idx = h.step(("read", {"path": "a"}, "A-content"), ("read", {"path": "b"}, "B-content"))
    a_result, b_result = h.messages[idx + 1], h.messages[idx + 2]
    h.messages[idx + 1], h.messages[idx + 2] = b_result, a_result
    h.messages.insert(idx + 2, {"role": "system", "content": "note"})  # does not end the search
    sig_a, sig_b = signatures(h.messages)
    assert sig_a.result_hash == md5_12("A-content")
    assert sig_b.result_hash == md5_12("B-content")


def test_parallel_calls_are_separate_signatures_in_order():
    h = History()
    idx = h.step(CALLS[0], CALLS[1], CALLS[2])
    sigs = signatures(h.messages)
    assert [s.name for s in sigs] == ["read", "bash", "edit"]
    assert {s.message_index for s in sigs} == {idx}


def test_parallel_identical_calls_in_one_message_fire_with_that_message_index():
    h, d = History(), DoomLoopDetector()
    h.call(*CALLS[0])
    same = ("bash", {"command": "nvidia-smi"}, "No devices found")
    idx = h.step(same, same, same)
    hit = d.check(h.messages)
    assert hit is not None and hit.kind == "identical"
    assert hit.assistant_indices == (idx,)


def test_window_only_counts_recent_messages():
    same = ("bash", {"command": "ls"}, "x")
    h = History()
    h.call(*same)  # messages 2, 3
    h.call(*same)  # 4, 5
    h.call(*same)  # 6, 7
    # 6 messages back starts at index 2: all three calls with their results.
    assert DoomLoopDetector(window=6).check(h.messages) is not None
    # 5 back starts at the first call's result: its assistant message is outside.
    assert DoomLoopDetector(window=5).check(h.messages) is None
    assert [s.message_index for s in signatures(h.messages, window=5)] == [4, 6]
    assert signatures(h.messages, window=1) == []


def test_assistant_indices_point_at_the_loop_messages():
    h, d = History(), DoomLoopDetector()
    h.call(*CALLS[3])  # not part of the loop
    a, b = CALLS[0], CALLS[1]
    expected = []
    for call in [a, b, a, b]:
        expected.append(h.call(*call))
    hit = d.check(h.messages)
    assert hit is not None and hit.assistant_indices == tuple(expected)
    for i in hit.assistant_indices:
        assert h.messages[i]["role"] == "assistant"


def test_identical_assistant_indices_skip_interleaved_messages():
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls"}, "x")
    first = h.call(*same)
    h.messages.append({"role": "system", "content": "reminder"})
    second = h.call(*same)
    third = h.call(*same)
    hit = d.check(h.messages)
    assert hit.assistant_indices == (first, second, third)


def test_bad_settings_are_rejected_with_a_reason():
    with pytest.raises(ValueError, match="min_cycle"):
        DoomLoopDetector(min_cycle=1)
    with pytest.raises(ValueError, match="identical_threshold"):
        DoomLoopDetector(identical_threshold=1)


def test_check_is_cheap_on_long_histories():
    """Only the last `window` messages are scanned, whatever the history length."""
    h = History()
    for i in range(150):
        h.call("bash", {"command": f"step {i}"}, f"out {i}" * 50)
    d = DoomLoopDetector()
    start = time.perf_counter()
    for _ in range(200):
        d.check(h.messages)
    per_check = (time.perf_counter() - start) / 200
    assert per_check < 0.01, f"check took {per_check * 1e3:.2f} ms"


def test_forgetting_survives_a_shrunk_history():
    """Once the tail stops looping the old loop is dropped, even if compaction shortened
    the history in between so positions no longer grow."""
    h, d = History(), DoomLoopDetector()
    same = ("bash", {"command": "ls"}, "x")
    checks(d, h, [CALLS[i % 5] for i in range(6)] + [same] * 3)
    del h.messages[2:-2]  # compaction-like rewrite keeps only the last call
    assert checks(d, h, [CALLS[0]]) == [None]
    relapse = checks(d, h, [same] * 3)
    assert relapse[-1] is not None and relapse[-1].kind == "identical"
