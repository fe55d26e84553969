"""Blocking work off the event loop: ``run_blocking`` and the count of calls in flight.

The event loop never waits for the state lock or an fsync: the shared state's async
facade, ``AuditLog.awrite``, the poller's history saves and the engine's start-up
recovery run their blocking part through ``run_blocking``, in a worker thread. Tests on
fake time wait for those threads (``offloads_in_flight``, ``offloads_done``) before
moving the clock, as a real clock would not have moved much meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["offloads_done", "offloads_in_flight", "run_blocking"]

T = TypeVar("T")

_offload_futures: set[asyncio.Future[Any]] = set()  # run_blocking calls in threads now (any result)


def _offloads_here() -> list[asyncio.Future[Any]]:
    """The unfinished offloads of the running event loop (others' are not ours to wait
    for: a loop that closed, say a test's, may never run their done callbacks)."""
    for future in list(_offload_futures):
        if future.done() or future.get_loop().is_closed():
            _offload_futures.discard(future)
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return list(_offload_futures)
    return [f for f in _offload_futures if f.get_loop() is loop]


def offloads_in_flight() -> int:
    """How many ``run_blocking`` calls of this event loop are running in threads."""
    return len(_offloads_here())


async def offloads_done() -> None:
    """Wait until every ``run_blocking`` call of this loop running now has finished (its
    outcome is its caller's business); tests with fake time await this, not a sleep."""
    pending = _offloads_here()
    if pending:
        await asyncio.wait([asyncio.shield(f) for f in pending])


async def run_blocking(fn: Callable[[threading.Event], T]) -> T:
    """``fn(cancel)`` in a worker thread; the event loop goes on meanwhile.

    If the awaiting task is cancelled, ``cancel`` is set (a lock wait gives up) and the
    thread is still awaited before ``CancelledError`` propagates, so nothing it does
    (an audit line, a state write) happens after its caller has moved on.
    """
    cancel = threading.Event()
    future = asyncio.ensure_future(asyncio.to_thread(fn, cancel))
    _offload_futures.add(future)
    future.add_done_callback(_offload_futures.discard)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        with contextlib.suppress(BaseException):
            await asyncio.shield(future)
        raise
