"""Turn guards: the notes the engine adds to the history to steer the model within a turn.

Each guard notices a way a turn goes wrong without the model noticing it itself - tool calls
dropped at the output token limit, an answer cut off mid-sentence, a stop with plan items
still open, arguments that keep failing to parse, the same calls repeated for nothing - and
answers it with a ``[SYSTEM: ...]`` user message plus a ``Guard`` event, so the user sees why
the model changed course. Background notes (a job finished) go in at the same point, before
each model call.

``TurnGuards`` holds the per-turn guard state; the engine owns the loop and calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agent.llm.client import LLMResult
from agent.protocol import AssistantMessage, Guard
from agent.tools.router import ParsedCall

if TYPE_CHECKING:
    from agent.loop import TurnEngine

TRUNCATION_NOTE = (
    "[SYSTEM: Your previous response hit the output token limit and was cut off, so these tool "
    "calls were dropped and NOT executed: {names}. Send smaller calls: write long files in parts "
    "(create, then append with edit), use a bash heredoc for big content, or split the edit.]"
)
CONTINUATION_NOTE = (
    "[SYSTEM: CONTINUATION GUARD] Your previous response ended without any tool call, but the "
    "plan still has unfinished items: {items}. Continue the work now with at least one tool call, "
    "or update the plan with plan_tool if the items are done or no longer needed."
)
CUT_OFF_NOTE = (
    "[SYSTEM: Your previous answer was cut off at the output token limit. Continue exactly where it "
    "stopped, without repeating what you already wrote.]"
)
MALFORMED_NOTE = (
    "[SYSTEM: Repeated malformed tool arguments detected for '{tool}'. Two calls in a row had "
    "arguments that were not valid JSON and were NOT executed. Change strategy: send a much smaller "
    "JSON object, write large content with a bash heredoc, or split the change into several edits.]"
)

#: answers without a tool call that the engine turns into "continue" before giving up
MAX_CONTINUATIONS = 2


class TurnGuards:
    def __init__(self, engine: TurnEngine):
        self.engine = engine
        self.continuations = 0
        #: tool name -> malformed calls in a row
        self.malformed: dict[str, int] = {}
        #: the parts of an answer cut off at the output limit, before its continuation
        self.cut_off_parts: list[str] = []

    def reset(self) -> None:
        """A new turn (or conversation): streaks and cut-off parts start again."""
        self.continuations = 0
        self.malformed.clear()
        self.cut_off_parts = []

    def _note(self, text: str) -> None:
        engine = self.engine
        engine.history.append({"role": "user", "content": text}, "guard", turn=engine.turn)

    # ------------------------------------------------------------------ before a model call

    def inject_notes(self) -> None:
        """Background news (a job finished) the model should see at its next step."""
        engine = self.engine
        for note in engine.notes_source():
            engine.history.append({"role": "user", "content": note}, "note", turn=engine.turn)

    def inject_guards(self) -> bool:
        """Notes for the malformed-arguments and repetition guards; True when the repetition
        guard fired (the turn may pause for the user's remedy)."""
        engine = self.engine
        for tool, streak in list(self.malformed.items()):
            if streak >= 2:
                self.malformed[tool] = 0
                self._note(MALFORMED_NOTE.format(tool=tool))
                engine.emit(Guard(kind="malformed_args", message=f"Two malformed calls in a row for {tool}; told the model to change strategy."))
        history = engine.history
        hit = engine.doom.check(history.messages())
        if hit:
            entries = history.entries
            costs = [entries[i].cost_usd for i in hit.assistant_indices if i < len(entries)]
            tokens = sum(entries[i].llm_tokens for i in hit.assistant_indices if i < len(entries))
            cost = None if any(c is None for c in costs) else round(sum(c for c in costs if c), 6)
            self._note(hit.message)
            pause = engine.settings.pause_on_doom_loop
            message = (f"Repetition guard: {hit.summary}. The turn is paused: continue, send a hint, or switch model."
                       if pause else f"Repetition guard: {hit.summary}. Told the model to change approach.")
            engine.emit(Guard(kind="doom_loop", message=message, tokens_spent=tokens, cost_usd=cost,
                              ends_turn=pause, repeated=_repeated(entries, hit.assistant_indices),
                              remedies=["stop", "hint", "switch_model", "continue"] if pause else []))
            return True
        return False

    # ------------------------------------------------------------------ after a model call

    def dropped_tool_calls(self, result: LLMResult) -> None:
        """Tool calls cut off at the output token limit have broken arguments: none of them
        runs, the model is asked to send smaller ones."""
        engine = self.engine
        names = ", ".join(c.name or "?" for c in result.tool_calls)
        if result.content:
            engine.model_step.append_assistant(result, None)
        self._note(TRUNCATION_NOTE.format(names=names))
        engine.emit(Guard(kind="truncation", message=f"The model's output hit its token limit; dropped tool calls: {names}. Asked it to send smaller calls."))

    def saw_tool_calls(self, calls: list[ParsedCall]) -> None:
        """The model is working again: the continuation count restarts, and each tool's
        malformed-arguments streak grows or ends."""
        self.continuations = 0
        for call in calls:
            if call.malformed:
                self.malformed[call.name] = self.malformed.get(call.name, 0) + 1
            elif call.tool is not None:
                self.malformed.pop(call.name, None)

    def maybe_continue(self, result: LLMResult) -> bool:
        """An answer without tool calls that is not really the end (cut off at the output
        limit, or plan items left open): keep it, ask the model to go on. True when asked."""
        engine = self.engine
        unfinished = [p for p in engine.tool_state.plan if p.status != "completed"]
        if result.finish_reason == "length" and self.continuations < MAX_CONTINUATIONS:
            note, guard = CUT_OFF_NOTE, "The answer hit the output token limit; asked the model to continue."
            kind = "truncation"
        elif unfinished and self.continuations < MAX_CONTINUATIONS:
            items = "; ".join(p.content for p in unfinished[:4])
            note = CONTINUATION_NOTE.format(items=items)
            guard = f"The model stopped with {len(unfinished)} plan item(s) unfinished; asked it to continue."
            kind = "continuation"
        else:
            return False
        self.continuations += 1
        if kind == "truncation":
            self.cut_off_parts.append(result.content or "")
        engine.model_step.append_assistant(result, None)
        if result.content:
            engine.emit(AssistantMessage(content=result.content))
        self._note(note)
        engine.emit(Guard(kind=kind, message=guard))  # type: ignore[arg-type]
        return True

    def whole_answer(self, result: LLMResult) -> str:
        """The final answer: one cut off at the output limit and continued is one answer."""
        final = "".join(self.cut_off_parts) + (result.content or "")
        self.cut_off_parts = []
        return final


def _repeated(entries, indices) -> list[str]:
    """The repeated calls in words (name and arguments, shortened), newest last."""
    out: list[str] = []
    for i in indices[-6:]:
        if i >= len(entries):
            continue
        for call in entries[i].message.get("tool_calls") or []:
            fn = call.get("function") or {}
            out.append(f"{fn.get('name', '?')} {str(fn.get('arguments', ''))[:120]}")
    return out
