"""The event bus: every subscriber gets its own unbounded queue, so a slow subscriber (a busy
UI, a store writing to a slow disk) delays only itself, never the engine or the other
subscribers."""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from agent.protocol import Event


class Subscription:
    def __init__(self, bus: EventBus, name: str):
        self.bus = bus
        self.name = name
        self.queue: asyncio.Queue[Event] = asyncio.Queue()

    async def get(self) -> Event:
        return await self.queue.get()

    def get_nowait(self) -> Event:
        return self.queue.get_nowait()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self

    async def __anext__(self) -> Event:
        return await self.queue.get()

    def close(self) -> None:
        self.bus.unsubscribe(self)


class EventBus:
    def __init__(self) -> None:
        self._subs: list[Subscription] = []

    def subscribe(self, name: str = "") -> Subscription:
        sub = Subscription(self, name)
        self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        if sub in self._subs:
            self._subs.remove(sub)

    def publish(self, event: Event) -> None:
        for sub in list(self._subs):
            sub.queue.put_nowait(event)
