"""Doom-loop guard: notice when the model keeps making the same tool calls for nothing.

Each tool call in recent history becomes a signature (tool name, arguments hash, result
hash). Two shapes count as a loop, and only at the *tail* of history, so a loop the model
has already left is never reported again:

* identical — the same call with the same result N times in a row;
* cycle — a short sequence of calls (A → B → …) repeating with the same results.

Because the result is part of the signature, polling that makes progress (a job status
that changes, a growing log) never looks like a loop.

The detector fires once per loop: while the same loop keeps extending at the tail it stays
quiet (the model already has the corrective message), and it forgets the loop as soon as the
tail stops matching, so a later relapse is reported again. Histories are assumed to be
append-only between checks; call `reset()` after anything rewrites them (compaction, undo,
new session, resume), because positions are compared across checks.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

GUARD_PREFIX = "[SYSTEM: REPETITION GUARD]"

Sig = tuple[str, str, str]


@dataclass(frozen=True)
class ToolSignature:
    name: str
    args_hash: str
    result_hash: str
    # Index of the assistant message that made the call, in the list given to signatures().
    message_index: int

    @property
    def key(self) -> Sig:
        return (self.name, self.args_hash, self.result_hash)


@dataclass(frozen=True)
class LoopHit:
    kind: Literal["identical", "cycle"]
    pattern: tuple[Sig, ...]
    repetitions: int
    message: str
    summary: str
    assistant_indices: tuple[int, ...]


@dataclass(frozen=True)
class _Call:
    sig: ToolSignature
    # (message_index, position within that message's tool_calls): a total order over calls
    # that stays valid across checks as long as history is only appended to.
    position: tuple[int, int]
    args_preview: str


def _digest(text: str) -> str:
    return hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _canonical_text(value: Any) -> str:
    """Text to hash: JSON re-serialised canonically, anything unparsable as-is.

    Canonicalising means `{"a":1, "b":2}` and `{"b": 2, "a": 1}` are the same call.
    """
    if value is None:
        return ""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        return json.dumps(parsed, sort_keys=True, separators=(",", ":"))
    # Some providers/histories carry already-parsed arguments.
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    except (TypeError, ValueError, RecursionError):
        return str(value)


def _content_text(content: Any) -> str:
    """Flatten tool-result content (a string or a list of content blocks) to text."""
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text") or ""))
            else:
                # Images and other blocks still distinguish one result from another.
                parts.append(json.dumps(block, sort_keys=True, default=str))
        return "\n".join(parts)
    return json.dumps(content, sort_keys=True, default=str)


def _results_after(messages: list[dict], start: int) -> dict[str, Any]:
    """Tool results belonging to the assistant message just before `start`.

    They sit after it and before the next assistant or user message; system messages in
    between (e.g. injected notices) do not end the search.
    """
    found: dict[str, Any] = {}
    for j in range(start, len(messages)):
        msg = messages[j]
        role = msg.get("role")
        if role in ("assistant", "user"):
            break
        if role == "tool":
            call_id = msg.get("tool_call_id")
            if call_id is not None and call_id not in found:
                found[call_id] = msg.get("content")
    return found


def _calls(messages: list[dict], window: int) -> list[_Call]:
    start = max(0, len(messages) - window)
    calls: list[_Call] = []
    for i in range(start, len(messages)):
        msg = messages[i]
        if msg.get("role") != "assistant":
            continue
        tool_calls = msg.get("tool_calls") or []
        if not tool_calls:
            continue
        results = _results_after(messages, i + 1)
        for k, call in enumerate(tool_calls):
            function = (call or {}).get("function") or {}
            name = str(function.get("name") or "?")
            args_text = _canonical_text(function.get("arguments"))
            result = results.get((call or {}).get("id"))
            result_text = _canonical_text(_content_text(result))
            sig = ToolSignature(name, _digest(args_text), _digest(result_text), i)
            calls.append(_Call(sig, (i, k), args_text))
    return calls


def signatures(messages: list[dict], window: int = 30) -> list[ToolSignature]:
    """Signatures of every tool call in the last `window` messages, oldest first."""
    return [c.sig for c in _calls(messages, window)]


def _periodic_run(keys: list[Sig], period: int) -> int:
    """Length of the longest tail of `keys` in which keys[i] == keys[i + period]."""
    n = len(keys)
    if n < period:
        return 0
    k = n - period - 1
    while k >= 0 and keys[k] == keys[k + period]:
        k -= 1
    return n - 1 - k


def _is_primitive(unit: tuple[Sig, ...]) -> bool:
    size = len(unit)
    return not any(
        size % p == 0 and unit == unit[p:] + unit[:p] for p in range(1, size)
    )


def _canonical_rotation(unit: tuple[Sig, ...]) -> tuple[Sig, ...]:
    # A→B→A→B and B→A→B→A are the same cycle seen from a different starting point.
    return min(unit[i:] + unit[:i] for i in range(len(unit)))


def _preview(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _identical_message(tool: str, args: str, count: int) -> str:
    return (
        f"{GUARD_PREFIX} The last {count} calls to '{tool}' used exactly the same arguments "
        f"({_preview(args)}) and got exactly the same result each time. Running it again "
        "will not produce anything new, so do not repeat it. Work from the result you "
        "already have and change approach: use a different tool, change the arguments in a "
        "meaningful way, or rethink the plan. If you are blocked, stop and tell the user "
        "what you are stuck on and what you need from them."
    )


def _cycle_message(steps: list[_Call], count: int) -> str:
    listed = "; ".join(
        f"{n}. {c.sig.name} {_preview(c.args_preview, 60)}" for n, c in enumerate(steps, 1)
    )
    arrow = " → ".join(c.sig.name for c in steps)
    return (
        f"{GUARD_PREFIX} Your recent tool calls are going round in a loop: {arrow}, "
        f"repeated {count} times with the same arguments and the same results every round "
        f"({listed}). Nothing changes between rounds, so another round will not help. "
        "Leave this loop: look again at what the results are telling you, take a "
        "fundamentally different approach (other tools, a smaller or different step, a "
        "different hypothesis), or stop and explain to the user what you are stuck on "
        "and ask for guidance."
    )


class DoomLoopDetector:
    """Stateful, fire-once repetition guard; call `check` before every LLM call."""

    def __init__(
        self,
        window: int = 30,
        identical_threshold: int = 3,
        min_cycle: int = 2,
        max_cycle: int = 5,
        cycle_repetitions: int = 2,
    ) -> None:
        if window < 1:
            raise ValueError("window must be at least 1 message")
        if identical_threshold < 2:
            raise ValueError("identical_threshold must be at least 2")
        if not 2 <= min_cycle <= max_cycle:
            raise ValueError("cycle lengths need 2 <= min_cycle <= max_cycle")
        if cycle_repetitions < 2:
            raise ValueError("cycle_repetitions must be at least 2")
        self.window = window
        self.identical_threshold = identical_threshold
        self.min_cycle = min_cycle
        self.max_cycle = max_cycle
        self.cycle_repetitions = cycle_repetitions
        # The loop we last reported: its identity and the position of the newest call seen
        # in it. A hit with the same identity whose run reaches back to (or before) that
        # position is the same loop still going, not a new one.
        self._active_key: tuple[str, tuple[Sig, ...]] | None = None
        self._active_end: tuple[int, int] | None = None

    def reset(self) -> None:
        self._active_key = None
        self._active_end = None

    def check(self, messages: list[dict]) -> LoopHit | None:
        calls = _calls(messages, self.window)
        found = self._find(calls)
        if found is None:
            # The tail no longer loops: the model changed course, so a relapse is news.
            self.reset()
            return None
        key, run, hit = found
        start_pos, end_pos = run[0].position, run[-1].position
        same_loop = (
            key == self._active_key
            and self._active_end is not None
            and start_pos <= self._active_end
        )
        self._active_key, self._active_end = key, end_pos
        return None if same_loop else hit

    def _find(
        self, calls: list[_Call]
    ) -> tuple[tuple[str, tuple[Sig, ...]], list[_Call], LoopHit] | None:
        keys = [c.sig.key for c in calls]
        if len(keys) < 2:
            return None

        run_len = _periodic_run(keys, 1)
        if run_len >= self.identical_threshold:
            run = calls[-run_len:]
            last = run[-1]
            unit = (last.sig.key,)
            hit = LoopHit(
                kind="identical",
                pattern=unit,
                repetitions=run_len,
                message=_identical_message(last.sig.name, last.args_preview, run_len),
                summary=(
                    f"{last.sig.name} called {run_len}× with identical arguments and results"
                ),
                assistant_indices=_indices(run),
            )
            return ("identical", unit), run, hit

        for length in range(self.min_cycle, self.max_cycle + 1):
            run_len = _periodic_run(keys, length)
            if run_len < length * self.cycle_repetitions:
                continue
            run = calls[-run_len:]
            steps = run[:length]
            unit = tuple(c.sig.key for c in steps)
            if not _is_primitive(unit):
                # A period shorter than min_cycle (incl. one call repeated) is not ours.
                continue
            reps = run_len // length
            hit = LoopHit(
                kind="cycle",
                pattern=unit,
                repetitions=reps,
                message=_cycle_message(steps, reps),
                summary=(
                    "cycle " + " → ".join(c.sig.name for c in steps) + f" repeated {reps}×"
                ),
                assistant_indices=_indices(run),
            )
            return ("cycle", _canonical_rotation(unit)), run, hit
        return None


def _indices(run: list[_Call]) -> tuple[int, ...]:
    return tuple(sorted({c.sig.message_index for c in run}))
