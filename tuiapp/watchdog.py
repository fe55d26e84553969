"""The watchdog: a provider call stuck past its hard deadline is abandoned, not awaited.

Every provider call (the poller's fetches and list calls, the action engine's restart /
reconnect through ``Poller.watched``) has a hard deadline: the adapter's ``timeout``,
body included. One still running ``STUCK_GRACE`` seconds past it is a bug or a library
ignoring cancellation. It is cancelled and *abandoned*: its caller gets ``StuckCall``
at once (so its slot and row lock are freed), ``WorkStuck`` names the instance, and
until the abandoned call ends ``stuck_observation`` stands in for a new call of it
(UNREACHABLE, reason ``stuck``), so a hung call never piles up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tuiapp.clock import Clock
from tuiapp.events import WorkStuck
from tuiapp.model import Observation, Status
from tuiapp.vocabulary import ErrorKind, Reason

__all__ = ["REAL_MARGIN", "STUCK_GRACE", "WATCH_EVERY", "CallKey", "StuckCall", "Watchdog"]

logger = logging.getLogger("tuiapp.poller")  # the watchdog's lines, as before the split

STUCK_GRACE = 5.0  # a provider call this long past its hard deadline is stuck: abandoned
REAL_MARGIN = 0.25  # ... and at least this long past it on the loop's own (real) clock
WATCH_EVERY = 0.25  # seconds (loop clock) between checks of a call past its deadline

CallKey = tuple[str, str]  # ("row", instance) or ("account", account)
_T = TypeVar("_T")


class StuckCall(Exception):
    """A provider call ran past its hard deadline + STUCK_GRACE and was abandoned."""


class Watchdog:
    """Watches provider calls; keeps the abandoned ones until they end."""

    def __init__(self, clock: Clock, emit: Callable[[object], None]) -> None:
        self._clock = clock
        self._emit = emit
        # key -> (the abandoned call, when it started, what call it is)
        self._abandoned: dict[CallKey, tuple[asyncio.Future[object], float, str]] = {}

    def __repr__(self) -> str:
        return f"<Watchdog abandoned={len(self._abandoned)}>"

    def __contains__(self, key: object) -> bool:
        """Whether an abandoned call of ``key`` is still running."""
        return key in self._abandoned

    def stuck(self) -> dict[str, str]:
        """Instances (and accounts) with an abandoned call still running -> what call."""
        return {name: what for (_scope, name), (_t, _s, what) in self._abandoned.items()}

    async def watch(self, key: CallKey, what: str, call: Awaitable[_T], *, deadline: float) -> _T:
        """Await ``call``; ``deadline`` + STUCK_GRACE seconds on, it is abandoned.

        ``deadline`` is the call's own hard deadline in seconds. A call still running
        STUCK_GRACE seconds later is cancelled and left behind (a call that ignores
        cancellation must not hold the caller): ``WorkStuck`` names ``key[1]`` and
        ``StuckCall`` is raised.
        """
        task: asyncio.Future[_T] = asyncio.ensure_future(call)
        limit = deadline + STUCK_GRACE
        started = self._clock()
        loop = asyncio.get_running_loop()
        alarm: asyncio.Future[None] = loop.create_future()
        handle: list[asyncio.TimerHandle] = []

        # Checked on the loop's own timer, judged on the injected clock: past the call's
        # real deadline (which is on the loop's clock; plus a margin, so that its answer
        # wins when both fire at once) *and* `limit` seconds on the clock. No task, no
        # injected sleep: a fake sleep that moves a fake clock is not moved by this.
        def check() -> None:
            if task.done() or alarm.done():
                return
            if self._clock() - started >= limit:
                alarm.set_result(None)
            else:
                handle[:] = [loop.call_later(WATCH_EVERY, check)]

        handle.append(loop.call_later(deadline + REAL_MARGIN, check))
        try:
            await asyncio.wait((task, alarm), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            handle[0].cancel()
            if not task.done():
                task.cancel()
                if not task.done():  # keep a reference: it may ignore the cancellation
                    self._abandon(key, task, started, what, emit=False)
            raise
        handle[0].cancel()
        if task.done():
            return task.result()
        task.cancel()
        seconds = self._clock() - started
        self._abandon(key, task, started, what, emit=True)
        raise StuckCall(
            f"the {what} call for {key[1]} had not returned {seconds:.0f} s after it started "
            f"(hard deadline {deadline:g} s): abandoned as stuck"
        )

    def _abandon(
        self,
        key: CallKey,
        task: asyncio.Future[object],
        started: float,
        what: str,
        *,
        emit: bool,
    ) -> None:
        self._abandoned[key] = (task, started, what)

        def ended(done: asyncio.Future[object]) -> None:
            if not done.cancelled():
                done.exception()  # retrieved: a late failure is expected, not news
            if self._abandoned.get(key, (None,))[0] is done:
                del self._abandoned[key]
                if emit:
                    logger.warning("the stuck %s call for %s ended after all", what, key[1])
                    self._emit(WorkStuck(key[1], what, self._clock() - started, active=False))

        task.add_done_callback(ended)
        if emit:
            logger.error(
                "watchdog: the %s call for %s is stuck past its deadline; abandoned", what, key[1]
            )
            self._emit(WorkStuck(key[1], what, self._clock() - started))

    def stuck_observation(self, key: CallKey) -> Observation:
        """What a read of ``key`` says while an abandoned call of it runs: UNREACHABLE."""
        now = self._clock()
        _task, started, what = self._abandoned.get(key, (None, now, "call"))
        return Observation(
            status=Status.UNREACHABLE,
            reason=Reason.STUCK,
            error=f"stuck: a {what} call has not returned for {now - started:.0f} s "
            "(abandoned; no new call until it ends)",
            observed_at=now,
            error_kind=ErrorKind.INTERNAL,
        )
