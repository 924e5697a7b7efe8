"""The app's side of a paused repetition guard: the doom-loop card, and the ops its remedy
sends - nothing (stop), ``continue`` with a hint, ``set_model`` then ``continue`` (the model
picker chooses), or ``continue``.

Built by the app on the first guard with remedies; it gets the few things it uses, not the app.
The card is shown from a worker (``push_screen_wait``), never awaited in a message handler.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from agent.protocol import Continue, Guard, Op, SetModel


class RemedyLink:
    def __init__(self, *, submit: Callable[[Op], None], notice: Callable[[str, str], Awaitable[None]],
                 push_screen_wait: Callable[[Any], Awaitable[Any]], run_worker: Callable[..., Any],
                 grace_s: Callable[[], float]):
        self.submit = submit
        self.notice = notice
        self.push_screen_wait = push_screen_wait
        self.run_worker = run_worker
        self.grace_s = grace_s

    def offer(self, guard: Guard) -> None:
        """A guard paused the turn: ask what to do."""
        # not exclusive: cancelling a worker that waits on a card would leave the card on screen
        self.run_worker(self._ask(guard), name="doom-loop", group="remedies", exit_on_error=False)

    async def _ask(self, guard: Guard) -> None:
        from mlintern_tui.screens.doom_loop import DoomLoopScreen

        remedy = await self.push_screen_wait(DoomLoopScreen(guard, self.grace_s()))
        if remedy.kind == "hint":
            self.submit(Continue(hint=remedy.hint))
            await self.notice("info", f"Continuing with your hint: {remedy.hint}")
        elif remedy.kind == "continue":
            self.submit(Continue())
            await self.notice("info", "Continuing: the agent was told to change approach.")
        elif remedy.kind == "switch_model":
            from mlintern_tui.screens.model_picker import ModelPicker

            chosen = await self.push_screen_wait(ModelPicker())
            if chosen:
                self.submit(SetModel(model=chosen))
                self.submit(Continue())  # after the switch: ops run in order
                await self.notice("info", f"Switching to {chosen}, then continuing.")
            else:
                await self.notice("info", "No model picked: the turn stays stopped. Send a message to go on.")
        else:
            await self.notice("info", "Stopped after the repetition guard. Send a message to go on.")
