"""When to run what: a due queue keyed by job, and the waker an idle scheduler waits on.

Scheduling is built around "next due time", not around sleeping tasks. ``DueQueue``
holds one live due time per key in a heap; rescheduling a key pushes a new entry and
leaves the old one behind, dropped when it reaches the top (``peek``). ``Waker`` is what
the idle scheduler awaits: the injected ``sleep`` until the next due time, or a wake-up
(a job ended, a poll was asked for, ``stop``), whichever comes first. Neither knows what
a job is: the poller's keys are ``("fetch", instance)`` and ``("list", account)``.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
from collections.abc import Hashable, Iterator
from typing import Generic, TypeVar

from tuiapp.clock import Sleep

__all__ = ["DueQueue", "Waker"]

K = TypeVar("K", bound=Hashable)


class DueQueue(Generic[K]):
    """The next due time of each key, earliest first."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, K]] = []
        self._due: dict[K, tuple[int, float]] = {}  # key -> (seq, due) of its live entry
        self._seq = itertools.count()

    def __contains__(self, key: object) -> bool:
        return key in self._due

    def __iter__(self) -> Iterator[K]:
        return iter(self._due)

    def due(self, key: K) -> float:
        """The due time of a scheduled ``key`` (KeyError if it is not scheduled)."""
        return self._due[key][1]

    def schedule(self, key: K, due: float, *, earliest: bool = False) -> bool:
        """Make ``due`` the next due time of ``key`` (with ``earliest``: only if sooner).

        Returns False when ``earliest`` left an earlier due time in place.
        """
        if earliest and key in self._due and self._due[key][1] <= due:
            return False
        seq = next(self._seq)
        self._due[key] = (seq, due)
        heapq.heappush(self._heap, (due, seq, key))
        return True

    def peek(self) -> tuple[float, K] | None:
        """The earliest live entry, dropping superseded ones."""
        while self._heap:
            due, seq, key = self._heap[0]
            live = self._due.get(key)
            if live is not None and live[0] == seq:
                return due, key
            heapq.heappop(self._heap)
        return None

    def pop(self) -> K:
        """Take the earliest live entry (call ``peek`` first: it must not be empty)."""
        _due, _seq, key = heapq.heappop(self._heap)
        del self._due[key]
        return key

    def discard(self, key: K) -> None:
        """Unschedule ``key`` (its heap entry is dropped by ``peek`` later)."""
        self._due.pop(key, None)

    def clear(self) -> None:
        self._heap.clear()
        self._due.clear()


class Waker:
    """What an idle scheduler awaits: a sleep until its next due time, or a wake-up.

    The sleep runs as a task that is kept while its deadline stays the same, so a
    wake-up (a job ended) does not cost a new timer every time.
    """

    def __init__(self, sleep: Sleep) -> None:
        self.woken = False  # something happened that the scheduler must look at
        self._sleep = sleep
        self._waker: asyncio.Future[None] | None = None  # what the idle scheduler awaits
        self._sleeper: asyncio.Task[None] | None = None  # the injected sleep being awaited
        self._sleeper_deadline: float | None = None
        self._idle_until = -math.inf  # while waiting: the time it waits for (inf: a wake-up)
        self.dropped: set[asyncio.Task[None]] = set()  # cancelled sleeps not yet ended

    def wake_before(self, at: float) -> None:
        """Wake the waiting scheduler if it would otherwise sleep past ``at``."""
        if at < self._idle_until:
            self.wake_up()

    def wake_up(self) -> None:
        """Make the scheduler look again (it may be sleeping until a later due time)."""
        self.woken = True
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    async def wait(self, now: float, delay: float | None) -> None:
        """Wait ``delay`` seconds through the injected sleep (None: forever), or until woken."""
        if self.woken:
            return
        deadline = None if delay is None else now + delay
        sleeper = self._sleeper
        if sleeper is not None and (sleeper.done() or self._sleeper_deadline != deadline):
            self.drop_sleeper()
        if deadline is not None and self._sleeper is None:
            assert delay is not None
            self._sleeper = asyncio.ensure_future(self._sleep_then_wake(delay))
            self._sleeper_deadline = deadline
        self._waker = asyncio.get_running_loop().create_future()
        self._idle_until = math.inf if deadline is None else deadline
        try:
            await self._waker
        finally:
            self._waker = None
            self._idle_until = -math.inf

    async def _sleep_then_wake(self, delay: float) -> None:
        await self._sleep(delay)
        self._sleeper = None
        self.wake_up()

    def drop_sleeper(self) -> None:
        sleeper, self._sleeper = self._sleeper, None
        if sleeper is not None and not sleeper.done():
            sleeper.cancel()
            self.dropped.add(sleeper)
            sleeper.add_done_callback(self.dropped.discard)
