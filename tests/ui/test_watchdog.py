"""The watchdog: a provider call that never returns and ignores cancellation.

The real FleetApp (headless Pilot, in-process simulator, fake clock) with one
instance's ``fetch`` replaced by a call that waits forever and swallows every
cancellation (a library that ignores it). Past the adapter's hard deadline + 5 s on
the fake clock the call is abandoned: the row's note says "stuck", the event log and
a toast name the instance, no second call of it piles up, and the other rows keep
polling while keys keep working.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tuiapp.events import WorkStuck
from tuiapp.watchdog import STUCK_GRACE

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, make_rig

HARD_DEADLINE = 0.5  # the stuck adapter's timeout (real seconds: its own deadline is real)


async def test_a_call_that_never_returns_is_reported_stuck_and_the_rest_goes_on(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "wawp", "WORKING")  # polled on its own endpoint (not batched)
    other = pick(rig.sim, "hypersender", "WORKING")  # fed by its account's list call
    stuck_seen = asyncio.Event()
    reports: list[WorkStuck] = []
    release = asyncio.Event()
    calls = 0

    def on_event(event: object) -> None:
        if isinstance(event, WorkStuck):
            reports.append(event)
            stuck_seen.set()

    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        poller = rig.app.poller
        poller.subscribe(on_event)
        row = poller.rows[name]
        adapter: Any = poller.adapters[row.account.name]
        real_fetch = adapter.fetch

        async def never_returns(instance: Any, secret: Any) -> Any:
            nonlocal calls
            if instance.name != name:
                return await real_fetch(instance, secret)
            calls += 1
            while not release.is_set():
                try:
                    await asyncio.shield(release.wait())
                except asyncio.CancelledError:
                    continue  # the bug under test: cancellation ignored
            raise RuntimeError("released by the test")

        adapter.fetch = never_returns
        adapter.timeout = HARD_DEADLINE
        try:
            other_polled = poller.rows[other].last_polled_at
            # One poll interval (15 s, with jitter) starts the stuck call; the fake clock
            # then passes its deadline + grace. The watchdog checks on the loop's timer.
            await rig.advance(17 + HARD_DEADLINE + STUCK_GRACE)
            await asyncio.wait_for(stuck_seen.wait(), 10)
            (report,) = reports
            assert report.name == name and report.what == "fetch" and report.active
            assert report.seconds >= HARD_DEADLINE + STUCK_GRACE
            assert name in poller.stuck()

            rig.app.tick()
            await pilot.pause()
            assert "stuck" in rig.note(name)
            assert any(name in n and "stuck" in n for n in rig.notices()), rig.notices()
            log_text = " ".join(rig.app.main.event_log.lines())
            assert name in log_text and "stuck" in log_text

            # The rest goes on: other rows keep polling, keys keep working ...
            assert poller.rows[other].last_polled_at != other_polled
            polled = poller.rows[other].last_polled_at
            await rig.advance(20)
            assert poller.rows[other].last_polled_at != polled
            before = rig.app.model.cursor_index
            await rig.keys("down")
            assert rig.app.model.cursor_index != before
            # ... and the stuck instance gets no second call while the first one hangs.
            assert calls == 1
            assert poller.rows[name].obs is not None and poller.rows[name].obs.reason == "stuck"
        finally:
            release.set()
        # Once the abandoned call ends, the watchdog says so and the row is polled again.
        await rig.until(lambda: name not in poller.stuck(), "the abandoned call to end")
        assert [r.active for r in reports] == [True, False]
