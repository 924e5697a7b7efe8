"""The YOLO budget: the most a session may spend without a human saying yes at that moment.

Spend is what the session already spent (model calls and compute, from ``spent``) plus what
auto-approved calls may still cost. Before an auto-approved costed call runs, its estimate
(job price x timeout, a sandbox hour) is *reserved*: concurrent calls each see the others'
reservations, so a batch can never promise more than the cap. A call that fails releases its
reservation. A call that started something billed (a job, a sandbox) keeps it while that
thing runs, shrinking as the observed cost grows, and closes when the observed cost is final
(from then on the observed cost is in ``spent``, and the estimate is gone).

Spend whose price is unknown (a model call or a job without a price) is never counted as $0:
``unpriced`` says how many such items the session has, and while there are any the known
spend is only a lower bound, so ``left`` is only an upper bound (``exact`` is False) and a
call that costs money cannot be promised to fit (``reserve`` refuses it, with the reason).

Every operation takes one lock and never awaits, so reservations are atomic for asyncio
tasks and threads alike.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

#: how much a tracked reservation has cost so far (None: unknown price) and whether that is final
Observation = tuple[float | None, bool]
Observer = Callable[[], Observation]


@dataclass
class Reservation:
    call_id: str
    estimate: float
    #: set once the call succeeded and started something billed
    observer: Observer | None = None
    #: the final observed cost, once known
    observed: float | None = None

    def outstanding(self) -> float:
        """What this call may still add to the spend that ``spent`` does not show yet."""
        if self.observer is None:
            return self.estimate
        so_far, _ = self.observer()
        if so_far is None:  # no price: keep the whole estimate, never count it as $0
            return self.estimate
        return max(0.0, self.estimate - so_far)


class Budget:
    def __init__(self, cap_usd: float | None, spent: Callable[[], float] = lambda: 0.0,
                 unpriced: Callable[[], int] = lambda: 0):
        #: None: no cap (everything fits)
        self.cap_usd = cap_usd
        self._spent = spent
        #: how many spend items (model calls, jobs) of the session have no known price
        self.unpriced = unpriced
        self.lock = threading.RLock()
        self._open: dict[str, Reservation] = {}
        #: closed reservations: call id -> observed cost (None: failed, released)
        self.closed: dict[str, float | None] = {}

    # ------------------------------------------------------------------ reading

    def spent(self) -> float:
        """Observed spend only (model calls and compute)."""
        return self._spent()

    def reserved(self) -> float:
        with self.lock:
            self._close_finished()
            return sum(r.outstanding() for r in self._open.values())

    def committed(self) -> float:
        """Observed spend plus what open reservations may still cost."""
        with self.lock:
            return self.spent() + self.reserved()

    def left(self) -> float | None:
        """What is left of the cap; with unpriced spend, only an upper bound (see ``exact``)."""
        if self.cap_usd is None:
            return None
        return max(0.0, self.cap_usd - self.committed())

    @property
    def exact(self) -> bool:
        """False while some spend has no known price: ``left`` may then be too high."""
        return self._unpriced() == 0

    def unpriced_reason(self) -> str:
        """Why the budget cannot promise anything ("" when it can)."""
        n = self._unpriced()
        if not n:
            return ""
        cap = f"the ${self.cap_usd:.2f} " if self.cap_usd is not None else "the "
        return (f"{n} of this session's model calls or jobs {'have' if n != 1 else 'has'} no known price, "
                f"so what is left of {cap}YOLO budget is unknown (set the model's price under model_prices "
                "in the config)")

    def _unpriced(self) -> int:
        try:
            return max(0, int(self.unpriced()))
        except Exception:  # a broken counter must not make spend look known
            return 1

    def reached(self) -> bool:
        """The observed spend alone has reached the cap (the agent pauses). A $0 cap with
        nothing spent is not reached: free work (a local model) may go on."""
        if self.cap_usd is None:
            return False
        spent = self.spent()
        return spent > 0 and spent >= self.cap_usd

    def holds(self, call_id: str) -> bool:
        with self.lock:
            return call_id in self._open

    def open_ids(self) -> list[str]:
        with self.lock:
            self._close_finished()
            return list(self._open)

    def tracking(self, observer: Observer) -> str | None:
        """The open reservation that holds for what ``observer`` watches, if any."""
        with self.lock:
            return next((key for key, r in self._open.items() if r.observer is observer), None)

    # ------------------------------------------------------------------ changing

    def reserve(self, call_id: str, estimate: float | None, *, force: bool = False) -> str | None:
        """Reserve ``estimate`` for ``call_id``. None when reserved; otherwise the reason it
        was not (nothing is reserved then). ``force`` reserves past the cap: a call a human
        approved still counts against what later auto-approvals may spend."""
        with self.lock:
            if call_id in self._open:
                return None
            if estimate is None:
                if force:
                    return None  # a human approved it; nothing known to reserve
                return "its cost cannot be estimated (unknown hardware price or timeout)"
            if not force and estimate > 0 and self.cap_usd is not None:  # free always fits
                left = self.cap_usd - self.committed()
                if estimate > left + 1e-9:
                    return (f"estimated ${estimate:.2f} exceeds the ${max(0.0, left):.2f} left "
                            f"of the ${self.cap_usd:.2f} YOLO budget")
                unknown = self.unpriced_reason()
                if unknown:  # it fits what is known to be spent, but not all spend is known
                    return f"estimated ${estimate:.2f}, but {unknown}"
            self._open[call_id] = Reservation(call_id, float(estimate))
            return None

    def extend(self, call_id: str, estimate: float) -> str | None:
        """Raise the open reservation ``call_id`` to ``estimate`` in all (something billed runs
        longer than first reserved: a sandbox's next hour), if what that adds fits like
        ``reserve`` would. None when raised (or already that high); otherwise the reason, and
        nothing changes."""
        with self.lock:
            committed = self.committed()  # closes finished reservations first
            reservation = self._open.get(call_id)
            if reservation is None:
                return "nothing is reserved for it any more"
            if estimate <= reservation.estimate:
                return None
            before = reservation.outstanding()
            previous, reservation.estimate = reservation.estimate, float(estimate)
            more = reservation.outstanding() - before  # what is observed already is in ``spent``
            if more <= 0 or self.cap_usd is None:
                return None
            left = self.cap_usd - committed
            if more > left + 1e-9:
                why = f"${more:.2f} more exceeds the ${max(0.0, left):.2f} left of the ${self.cap_usd:.2f} YOLO budget"
            else:
                unknown = self.unpriced_reason()
                why = f"${more:.2f} more, but {unknown}" if unknown else ""
            if why:
                reservation.estimate = previous
                return why
            return None

    def release(self, call_id: str) -> None:
        """The call failed or never ran: it costs nothing."""
        with self.lock:
            if self._open.pop(call_id, None) is not None:
                self.closed[call_id] = None

    def track(self, call_id: str, observer: Observer) -> None:
        """The call started something billed: hold the reservation until ``observer`` says
        the observed cost is final."""
        with self.lock:
            reservation = self._open.get(call_id)
            if reservation is not None:
                reservation.observer = observer
                self._close_finished()

    def settle(self, call_id: str, observed: float | None = None) -> None:
        """The call's cost is final: the observed cost (counted in ``spent``) replaces the estimate."""
        with self.lock:
            reservation = self._open.pop(call_id, None)
            if reservation is not None:
                reservation.observed = observed
                self.closed[call_id] = observed

    def _close_finished(self) -> None:
        for call_id, reservation in list(self._open.items()):
            if reservation.observer is None:
                continue
            so_far, final = reservation.observer()
            if final:
                self.settle(call_id, so_far)
