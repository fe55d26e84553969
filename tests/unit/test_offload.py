"""run_blocking: work in a worker thread, the loop going on, cancellation that waits."""

from __future__ import annotations

import asyncio
import threading

from tuiapp.offload import offloads_done, offloads_in_flight, run_blocking


async def test_the_work_runs_in_a_thread_and_is_counted_until_it_ends() -> None:
    loop_thread = threading.get_ident()
    release = threading.Event()

    def work(cancel: threading.Event) -> int:
        release.wait(5)
        return threading.get_ident()

    task = asyncio.create_task(run_blocking(work))
    await asyncio.sleep(0)
    assert offloads_in_flight() == 1  # the loop goes on meanwhile
    release.set()
    await offloads_done()
    assert offloads_in_flight() == 0
    assert await task != loop_thread


async def test_a_cancelled_caller_sets_cancel_and_waits_for_the_thread() -> None:
    started = threading.Event()
    finished: list[bool] = []

    def work(cancel: threading.Event) -> None:
        started.set()
        finished.append(cancel.wait(5))  # a lock wait giving up when told

    task = asyncio.create_task(run_blocking(work))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    assert finished == [True]  # the thread had ended before CancelledError reached us
