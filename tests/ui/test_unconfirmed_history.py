"""Statuses the grid showed but never confirmed (oncall-trial #13) are in the detail's history.

A bad status is confirmed after two reads (or 30 s), so a single STARTING read between
two FAILED ones is shown by the grid and then dropped by the confirmation rule. The row
keeps it as a glimpse, and the detail view lists it, marked "not confirmed".
"""

from __future__ import annotations

from pathlib import Path

from tuiapp.model import Status
from tuiapp.ui.detail import DetailScreen

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, Rig, make_rig


async def _read_until(rig: Rig, name: str, status: Status) -> None:
    row = rig.app.poller.rows[name]
    for _ in range(60):
        if row.status is status:
            return
        await rig.advance(1)
    raise AssertionError(f"{name} never read {status}")


async def _history(rig: Rig, name: str) -> str:
    await rig.select(name)
    await rig.keys("enter")
    await rig.until(lambda: isinstance(rig.app.screen, DetailScreen), "the detail view")
    screen = rig.app.screen
    assert isinstance(screen, DetailScreen)
    body = screen.body_text
    return body.split("Recent transitions (newest first)", 1)[1].split("Recent actions", 1)[0]


async def test_a_starting_blip_between_two_failed_reads_is_in_the_detail_history(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = pick(rig.sim, "hypersender", "FAILED")
        row = rig.app.poller.rows[name]
        await rig.advance(31)  # the first FAILED of the run: confirmed by time
        assert row.confirmed is Status.FAILED
        rig.sim.force(name, state="STARTING")
        await _read_until(rig, name, Status.STARTING)  # the grid shows it
        assert row.confirmed is Status.FAILED
        rig.sim.force(name, state="FAILED")
        await _read_until(rig, name, Status.FAILED)
        assert row.confirmed is Status.FAILED and not row.transitions
        history = await _history(rig, name)
        assert "none seen yet" not in history
        assert "✖ FAILED → ◐ STARTING → ✖ FAILED" in history
        assert "STARTING not confirmed: 1 read" in history


async def test_failed_starting_working_keeps_the_starting_read(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = pick(rig.sim, "hypersender", "FAILED")
        row = rig.app.poller.rows[name]
        await rig.advance(31)
        assert row.confirmed is Status.FAILED
        rig.sim.force(name, state="STARTING")
        await _read_until(rig, name, Status.STARTING)
        rig.sim.force(name, state="WORKING")
        await _read_until(rig, name, Status.WORKING)
        assert row.confirmed is Status.WORKING
        history = await _history(rig, name)
        lines = [line.strip() for line in history.strip().splitlines()]
        assert "✖ FAILED → ● WORKING" in lines[0]  # confirmed, newest
        assert "✖ FAILED → ◐ STARTING → ● WORKING" in lines[1]  # the read before it
        assert "not confirmed" in lines[1] and "not confirmed" not in lines[0]
