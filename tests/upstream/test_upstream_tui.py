"""The TUI, headless (Textual Pilot), on a fleet of real instances (upstream tier).

Real time, the real aiohttp transport, the real servers: the app polls them as it does
in production. Waiting for the first sweep is a poll of the rows with a bounded
deadline (``_until``), since a real server answers when it answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot
from upstream_fleet import Fleet
from upstream_lab import EvolutionLab, WahaLab

from tuiapp.config import config_from_dict
from tuiapp.model import Status
from tuiapp.ui.app import FleetApp
from tuiapp.ui.detail import DetailScreen

pytestmark = pytest.mark.upstream

SIZE = (120, 40)


def _app(fleet: Fleet, data: dict[str, Any], tmp_path: Path) -> FleetApp:
    config = config_from_dict(data, environ=fleet.env)
    return FleetApp(
        config,
        operator="upstream-tier",
        state_dir_override=tmp_path / "state",
        tick_seconds=None,  # the test ticks after each wait
    )


async def _until(
    pilot: Pilot[Any], condition: Callable[[], bool], what: str, timeout: float = 60.0
) -> None:
    """Let the app run until ``condition`` holds, at most ``timeout`` s of real time."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"never happened within {timeout:g} s: {what}")
        await pilot.pause(0.1)
    await pilot.pause()


async def _first_sweep(app: FleetApp, pilot: Pilot[Any]) -> None:
    await _until(
        pilot,
        lambda: all(row.last_polled_at is not None for row in app.poller.rows.values()),
        "every row polled once",
    )
    app.tick()
    await pilot.pause()


async def _row_text(app: FleetApp, pilot: Pilot[Any], name: str) -> str:
    app.jump_to(name)
    await pilot.pause()
    grid = app.grid
    index = app.model.index_of(name)
    assert index is not None, f"{name} is not shown"
    y = index - int(grid.scroll_y) + 1
    return " ".join(text.strip() for text, _css in grid.line_spec(y)[1])


def _hidden(fleet: Fleet, text: str) -> None:
    for secret in fleet.secrets:
        assert secret not in text, "a secret of the upstream server is on screen"


async def test_tui_shows_live_state_not_the_stored_one(
    fleet: Fleet, waha: WahaLab, evo: EvolutionLab, tmp_path: Path
) -> None:
    waha.stopped()
    app = _app(fleet, fleet.config(), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _first_sweep(app, pilot)
        rows = app.poller.rows
        assert rows["pair-open"].status is not Status.WORKING  # stored open, live close
        expected = {
            "pair-open": Status.STOPPED,
            "pair-close": Status.STOPPED,
            "badkey-1": Status.AUTH_ERROR,
            "gone-1": Status.NOT_FOUND,
            "waha-default": Status.STOPPED,
        }
        assert {name: row.status for name, row in rows.items()} == expected
        for name, status in expected.items():
            text = await _row_text(app, pilot, name)
            assert status.value in text and "WORKING" not in text, text
            assert "●" not in text
        _hidden(fleet, app.export_screenshot())
        # The detail view of the instance whose stored status says open.
        app.jump_to("pair-open")
        await pilot.press("enter")
        await _until(pilot, lambda: isinstance(app.screen, DetailScreen), "the detail view")
        shot = app.export_screenshot()
        _hidden(fleet, shot)
        assert "STOPPED" in shot
        await pilot.press("escape")
        # r on it: refused by the guard rail (Evolution cannot restart a closed instance).
        await _until(pilot, lambda: not isinstance(app.screen, DetailScreen), "back to the grid")
        await pilot.press("r")
        await pilot.pause()
        notices = " ".join(n.message for n in app._notifications)
        assert "closed" in notices or "close" in notices, notices
        _hidden(fleet, notices + app.export_screenshot())
    assert evo.state(fleet.evo_fleet.ids["pair-open"]) == "close"


async def test_tui_fifty_stored_open_instances_none_working(
    fleet: Fleet, evo_fifty: list[str], tmp_path: Path
) -> None:
    app = _app(fleet, fleet.config(names=evo_fifty, waha=False), tmp_path)
    async with app.run_test(size=SIZE) as pilot:
        await _first_sweep(app, pilot)
        statuses = {name: row.status for name, row in app.poller.rows.items()}
        assert len(statuses) == 50
        assert set(statuses.values()) == {Status.STOPPED}, statuses
        for name in (evo_fifty[0], evo_fifty[24], evo_fifty[-1]):
            text = await _row_text(app, pilot, name)
            assert "STOPPED" in text and "WORKING" not in text, text
        _hidden(fleet, app.export_screenshot())
