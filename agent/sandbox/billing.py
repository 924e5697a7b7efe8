"""A paid sandbox's hours against the YOLO budget.

``sandbox_create`` reserves one hour of the sandbox's hardware before it runs. A sandbox
lives until it is torn down, so at 95% of each hour of its life its reservation is raised
to cover the next hour too, atomically through ``Budget.extend``. When that hour does not
fit the cap (or the budget cannot promise anything, because some spend has no known price)
the sandbox is torn down and a ``tool_log`` notice says why and what it cost: billing must
stop even while the agent is idle, when nothing else would look at the budget.

Only YOLO has a cap. In ask and auto modes a human approved the sandbox, so the timer lets
those hours pass untouched; it acts again if YOLO is switched back on.

One task per paid sandbox sleeps until its next 95% mark. The manager cancels it when the
sandbox is torn down (the session tears it down when it ends), and never lets it start a
teardown while another one is under way.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import TYPE_CHECKING, Callable

from agent.budget import Observer

if TYPE_CHECKING:  # the session imports this module whether or not it can have a sandbox
    from agent.policy import Policy
    from agent.sandbox.manager import Sandbox, SandboxManager

log = logging.getLogger(__name__)

#: how far into each hour the next one is reserved
RENEW_AT = 0.95


class SandboxBilling:
    """Keeps each paid sandbox's next hour reserved while the session is in YOLO mode."""

    def __init__(self, policy: Policy, notify: Callable[[str], None],
                 changed: Callable[[], None] = lambda: None) -> None:
        self.policy = policy
        #: a notice for the user (the session emits it as a ``tool_log`` of tool "sandbox")
        self.notify = notify
        #: the budget moved (the session re-sends its settings, which show what is left)
        self.changed = changed

    def observer(self, manager: SandboxManager | None, since: float) -> Observer | None:
        """How to watch the sandbox a successful ``sandbox_create`` (decided at ``since``)
        made: its cost so far, final once it is torn down. None for one that existed before.
        A paid one gets its hourly renewal from now on."""
        sandbox = manager.active if manager is not None else None
        if manager is None or sandbox is None or sandbox.created_at < since:
            return None

        def observe() -> tuple[float | None, bool]:
            return sandbox.cost_so_far(), manager.active is not sandbox

        if not sandbox.hourly_usd:
            return observe  # cpu-basic is free; without a price there is no hour to reserve
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # decided off the event loop: the reservation stays, unrenewed
            log.warning("no event loop to renew the hours of sandbox %s", sandbox.repo_id)
            return observe
        manager.watch(sandbox, self._renew(manager, sandbox, observe), name=f"sandbox-billing-{sandbox.repo_id}")
        return observe

    async def _renew(self, manager: SandboxManager, sandbox: Sandbox, observer: Observer) -> None:
        hour = 1  # the hour whose 95% mark comes next
        while True:
            mark = sandbox.created_at + (hour - 1 + RENEW_AT) * sandbox.hour_s
            delay = mark - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if manager.active is not sandbox or manager.tearing_down:
                return
            # woken late (a suspended laptop): the latest mark passed is the one that counts
            hour = max(hour, math.floor(sandbox.hours() + 1 - RENEW_AT))
            if self.policy.mode == "yolo":
                price = sandbox.hourly_usd
                budget = self.policy.budget
                key = budget.tracking(observer)
                if price is None or key is None:
                    log.warning("sandbox %s has no reservation to renew; its billing timer stops", sandbox.repo_id)
                    return
                why = budget.extend(key, (hour + 1) * price)  # through the end of the next hour
                if why:
                    await self._stop(manager, sandbox, price, why)
                    return
                self.changed()
            hour += 1

    async def _stop(self, manager: SandboxManager, sandbox: Sandbox, price: float, why: str) -> None:
        # out of the sandbox's own tasks, so the teardown this starts does not cancel it midway
        current = asyncio.current_task()
        if current is not None:
            sandbox.tasks.discard(current)
        lines: list[str] = []
        await asyncio.shield(manager.teardown(log=lines.append))
        head = "YOLO cap reached" if "exceeds" in why else "YOLO budget unknown"
        cost = sandbox.cost_so_far()
        spent = f"${cost:.2f}" if cost is not None else "an unknown amount"
        self.notify(
            f"{head}: tore down the {sandbox.hardware} sandbox {sandbox.repo_id} after "
            f"{_duration(sandbox.hours())} ({spent}). Its next hour (${price:.2f}) could not be reserved: {why}. "
            f"{' '.join(lines)} Raise the cap with /yolo <dollars> (or approve sandboxes yourself in auto mode), "
            "then create a new sandbox; its files are gone.")
        self.changed()


def _duration(hours: float) -> str:
    minutes = round(hours * 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
