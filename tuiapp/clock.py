"""The time seam: what tuiapp calls a clock and a sleep, and the manual clock tests drive.

Every timer in tuiapp (cooldowns, backoff, budgets, confirmation windows, the simulator's
state machines) takes a ``Clock`` and, where it waits, a ``Sleep``; nothing reads the
wall clock or sleeps on its own. Production passes ``time.time`` and ``asyncio.sleep``.

``ManualClock`` is both, moved by hand: ``advance`` wakes every sleeper whose deadline
has passed, so a test (or the README screenshot script) decides when time passes and
no test ever waits on a real timer. It ships here, next to the seam, the way httpx
ships ``MockTransport`` next to its transports.

    clock = ManualClock()
    engine = ActionEngine(..., clock=clock, sleep=clock.sleep)
    clock.advance(61)          # every sleep due by now returns
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeAlias

__all__ = ["EPOCH_2026", "Clock", "ManualClock", "Sleep"]

Clock: TypeAlias = Callable[[], float]  # epoch seconds now (``time.time``)
Sleep: TypeAlias = Callable[[float], Awaitable[None]]  # wait that many seconds (``asyncio.sleep``)

EPOCH_2026 = 1_767_225_600.0  # 2026-01-01T00:00:00Z: where a ManualClock starts by default


class ManualClock:
    """A clock that moves only when told to, and a ``sleep`` that wakes when it has moved.

    Callable like ``time.time``; ``now`` can be read or set; ``sleep`` suspends until
    ``advance`` (or ``wake_due`` after ``now`` was set) passes its deadline. A sleep of
    zero or less only yields to the event loop, like ``asyncio.sleep(0)``.
    """

    def __init__(self, start: float = EPOCH_2026) -> None:
        self._now = float(start)
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        return self._now

    @now.setter
    def now(self, value: float) -> None:
        self._now = float(value)

    def advance(self, seconds: float) -> float:
        """Move time ``seconds`` forward, wake every sleeper now due; the new time."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        self._now += seconds
        self.wake_due()
        return self._now

    async def sleep(self, delay: float) -> None:
        """Return once the clock has passed ``delay`` seconds from now."""
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self._now + delay, future))
        await future

    def wake_due(self) -> None:
        """Wake every sleeper whose deadline the clock has reached."""
        now = self._now
        for at, future in self.sleepers:
            if at <= now and not future.done():
                future.set_result(None)
        self.sleepers = [(at, f) for at, f in self.sleepers if not f.done()]
