"""The hub's account of its own event loop: lateness samples and garbage-collector
pauses, reported per window (``tuiapp serve`` logs a window in which the loop lagged);
and its garbage-collection policy: survivors of a full collection are frozen."""

from __future__ import annotations

import asyncio
import gc

from tuiapp.hub import serve
from tuiapp.hub.counters import LoopWatch


def test_a_window_reports_its_lag_percentiles_and_gc_pauses_then_starts_anew() -> None:
    watch = LoopWatch()
    watch._lags = [0.001 * k for k in range(100)]  # 0 .. 99 ms late
    gc.callbacks.append(watch._on_gc)
    try:
        gc.collect()  # a full collection, timed by the callback
    finally:
        gc.callbacks.remove(watch._on_gc)
    figures = watch.report()
    assert figures["samples"] == 100
    assert figures["lag_p50_ms"] == 50.0
    assert figures["lag_p99_ms"] == 99.0
    assert figures["lag_max_ms"] == 99.0
    assert figures["gc_pauses"] >= 1 and figures["gc_full"] >= 1
    assert watch.report() == {}  # the next window is empty


async def test_the_sampler_measures_on_the_running_loop_and_unhooks_the_gc() -> None:
    watch = LoopWatch(period=0)
    task = asyncio.create_task(watch.run())
    for _ in range(5):
        await asyncio.sleep(0)
    assert watch._on_gc in gc.callbacks
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert watch._on_gc not in gc.callbacks
    assert watch.report()["samples"] >= 1


async def test_after_a_full_collection_its_survivors_are_frozen() -> None:
    """What a full collection leaves is alive, so freezing it right then freezes no
    garbage; the next full collection walks only what survived since."""
    loop = asyncio.get_running_loop()
    gc.unfreeze()
    try:
        with serve.frozen_survivors(loop):
            gc.collect(1)  # a young collection: nothing frozen
            await asyncio.sleep(0)
            assert gc.get_freeze_count() == 0
            gc.collect()  # a full one: what survived it is frozen on the next turn
            await asyncio.sleep(0)
            assert gc.get_freeze_count() > 0
        gc.unfreeze()
        gc.collect()  # serving ended: the hook is gone
        await asyncio.sleep(0)
        assert gc.get_freeze_count() == 0
    finally:
        gc.unfreeze()
