"""The time seam: ManualClock (the fake every test drives) and the one set of duration formats."""

from __future__ import annotations

import asyncio

import pytest

from tuiapp.clock import EPOCH_2026, ManualClock
from tuiapp.durations import (
    NEVER,
    age_text,
    countdown_text,
    duration_text,
    human_duration,
    rough_duration,
)

# seconds -> (duration_text, countdown_text, human_duration, rough_duration), byte for byte
# what the grid, the detail screen, the messages and ``check`` show (sentences spaced:
# "4 min 10 s", oncall-trial #18; cells compact).
FORMATS: list[tuple[float, tuple[str, str, str, str]]] = [
    (-5, ("0s", "0s", "0 s", "0s")),
    (0, ("0s", "0s", "0 s", "0s")),
    (0.2, ("0s", "1s", "1 s", "0s")),
    (1, ("1s", "1s", "1 s", "1s")),
    (59.2, ("59s", "1m00s", "1 min", "59s")),
    (60, ("1m", "1m00s", "1 min", "60s")),
    (61, ("1m", "1m01s", "1 min 1 s", "61s")),
    (119.5, ("1m", "2m00s", "2 min", "119s")),
    (120, ("2m", "2m00s", "2 min", "2m")),
    (3599.5, ("59m", "1h00m", "1 h", "59m")),
    (3600, ("1h00m", "1h00m", "1 h", "60m")),
    (3661, ("1h01m", "1h01m", "1 h 1 min", "61m")),
    (7200, ("2h00m", "2h00m", "2 h", "2h")),
    (86400, ("1d00h", "24h00m", "24 h", "24h")),
    (90061, ("1d01h", "25h01m", "25 h 1 min", "25h")),
    (172800, ("2d00h", "48h00m", "48 h", "2d")),
]


@pytest.mark.parametrize(("seconds", "expected"), FORMATS)
def test_each_format_reads_as_documented(
    seconds: float, expected: tuple[str, str, str, str]
) -> None:
    got = (
        duration_text(seconds),
        countdown_text(seconds),
        human_duration(seconds),
        rough_duration(seconds),
    )
    assert got == expected


def test_age_text_is_a_duration_since_or_a_dash_for_never() -> None:
    assert age_text(None, 100.0) == NEVER == "—"
    assert age_text(100.0, 350.0) == "4m"
    assert age_text(400.0, 350.0) == "0s"  # a time in the future reads as now


def test_manual_clock_starts_in_2026_and_moves_only_when_told() -> None:
    clock = ManualClock()
    assert clock() == clock.now == EPOCH_2026
    assert clock.advance(1.5) == EPOCH_2026 + 1.5
    clock.now = 10.0
    assert clock() == 10.0
    with pytest.raises(ValueError):
        clock.advance(-1)


async def test_sleep_returns_once_the_clock_has_passed_its_deadline() -> None:
    clock = ManualClock(start=0.0)
    woke: list[str] = []

    async def sleeper(name: str, delay: float) -> None:
        await clock.sleep(delay)
        woke.append(name)

    tasks = [asyncio.create_task(sleeper(name, d)) for name, d in (("a", 5), ("b", 10))]
    await asyncio.sleep(0)
    assert woke == [] and len(clock.sleepers) == 2
    clock.advance(4.999)
    await asyncio.sleep(0)
    assert woke == []
    clock.advance(0.001)
    await asyncio.sleep(0)
    assert woke == ["a"]
    clock.now = 20.0  # set, not advanced: wake_due wakes what is due
    clock.wake_due()
    await asyncio.gather(*tasks)
    assert woke == ["a", "b"] and clock.sleepers == []


async def test_a_sleep_of_zero_only_yields() -> None:
    clock = ManualClock()
    await asyncio.wait_for(clock.sleep(0), timeout=1)
    await asyncio.wait_for(clock.sleep(-3), timeout=1)
    assert clock.sleepers == []
