"""The event log (oncall-trial #2, #3): event-time order, the full-screen view, every reason.

Pilot tests on the real app, engine and simulator, fake time (``helpers.ui_rig``). The
full-screen log (``tuiapp.ui.log_screen``) is imported inside the tests that open it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tuiapp.model import Status
from tuiapp.ui.app import FleetScreen
from tuiapp.ui.event_log import LogEntry

from helpers.sim_fixtures import pick
from helpers.ui_rig import SIZE, Rig, make_rig


def _stamps(rig: Rig) -> list[str]:
    return [line[:8] for line in rig.app.main.event_log.lines()]


async def _refuse_on_qr_row(rig: Rig) -> str:
    """r on a RyzeAPI SCAN_QR_CODE row: RyzeAPI has no restart, and a reconnect needs the QR."""
    name = pick(rig.sim, "ryzeapi", "SCAN_QR_CODE")
    await rig.select(name)
    before = len(rig.app.main.event_log.lines())
    await rig.keys("r")
    await rig.until(lambda: len(rig.app.main.event_log.lines()) > before, "the refusal logged")
    return name


async def _open_full_log(rig: Rig, *keys: str) -> Any:
    from tuiapp.ui.log_screen import LogScreen

    await rig.keys(*keys)
    await rig.until(lambda: isinstance(rig.app.screen, LogScreen), "the full-screen log")
    return rig.app.screen


# ---- #2: newest first by event time ------------------------------------------------------


async def test_a_transition_confirmed_late_lands_at_its_own_time_not_on_top(
    tmp_path: Path,
) -> None:
    """A bad status is confirmed on its second read, 15 s after it began; a refusal logged
    in between is newer, so it stays above the transition (newest first by event time)."""
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = pick(rig.sim, "hypersender", "WORKING")
        row = rig.app.poller.rows[name]
        rig.sim.force(name, state="FAILED")
        for _ in range(40):  # the first FAILED read: shown, not confirmed yet
            if row.status is Status.FAILED:
                break
            await rig.advance(1)
        assert row.status is Status.FAILED and row.confirmed is Status.WORKING
        await rig.advance(2)
        refused = await _refuse_on_qr_row(rig)
        for _ in range(40):  # the second read confirms it, with the first read's time
            if row.confirmed is Status.FAILED:
                break
            await rig.advance(1)
        assert row.confirmed is Status.FAILED
        await pilot.pause()
        lines = rig.app.main.event_log.lines()
        went_bad = next(i for i, line in enumerate(lines) if f"{name}: ● WORKING → ✖" in line)
        refusal = next(i for i, line in enumerate(lines) if f"restart {refused}:" in line)
        assert refusal < went_bad, lines
        stamps = _stamps(rig)
        assert stamps == sorted(stamps, reverse=True), lines


# ---- #3: a full-screen log that scrolls, searches, and keeps every reason ----------------


async def test_a_refusal_logs_every_reason_the_toast_gave(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = await _refuse_on_qr_row(rig)
        toast = next(n for n in rig.notices() if n.startswith(f"{name}: needs a QR scan"))
        assert "ryzeapi has no restart" in toast  # the real trouble first, then the rest
        line = next(line for line in rig.app.main.event_log.lines() if f"restart {name}" in line)
        assert "ryzeapi has no restart" in line
        assert "reconnect is refused too: needs a QR scan" in line, line


async def test_l_twice_opens_the_full_log_with_every_entry_whole_and_wrapped(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        name = await _refuse_on_qr_row(rig)
        screen = await _open_full_log(rig, "l", "l")
        view = screen.log_view
        lines = view.plain_lines
        width = view.scrollable_content_region.width
        assert all(len(line.rstrip()) <= width for line in lines)
        start = next(i for i, line in enumerate(lines) if f"restart {name}:" in line)
        entry = [lines[start]]
        for line in lines[start + 1 :]:
            if not line.startswith(" "):
                break
            entry.append(line)
        assert len(entry) > 1  # wrapped, not cut at the edge
        assert all(line.startswith(" " * 10) for line in entry[1:])  # under the text
        whole = " ".join(line.strip() for line in entry)
        assert "reconnect is refused too: needs a QR scan" in whole
        assert whole.rstrip().endswith("cannot help")
        # escape: back to the grid, the panel still there; L opens it, l closes both
        await rig.keys("escape")
        await rig.until(lambda: isinstance(rig.app.screen, FleetScreen), "back to the grid")
        assert rig.app.main.event_log.display
        await _open_full_log(rig, "L")
        await rig.keys("l")
        await rig.until(lambda: isinstance(rig.app.screen, FleetScreen), "back to the grid")
        assert not rig.app.main.event_log.display


async def test_the_full_log_scrolls_by_key_and_searches_with_n_and_shift_n(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        now = rig.clock()
        entries = [LogEntry(now + i, f"synthetic event {i:03d}") for i in range(150)]
        for i in (20, 75, 130):  # the newest of these shows first
            entries[i] = LogEntry(now + i, f"synthetic event {i:03d}: needle here")
        rig.app.log_entries(entries)
        screen = await _open_full_log(rig, "L")
        view = screen.log_view
        assert view.scroll_y == 0 and "synthetic event 149" in view.plain_lines[0]
        await rig.keys("G")
        assert view.scroll_y == view.max_scroll_y > 0
        await rig.keys("g")
        assert view.scroll_y == 0
        await rig.keys("pagedown")
        assert view.scroll_y > 1
        paged = view.scroll_y
        await rig.keys("j", "j")
        assert view.scroll_y == paged + 2
        await rig.keys("k")
        assert view.scroll_y == paged + 1
        await rig.keys("g", "slash", *"needle", "enter")
        status = str(screen.query_one("#log-status").render())
        assert "match 1 of 3" in status, status

        def shown(number: int) -> bool:
            top = int(view.scroll_y)
            visible = view.plain_lines[top : top + view.scrollable_content_region.height]
            return any(f"synthetic event {number:03d}: needle" in line for line in visible)

        assert shown(130)
        await rig.keys("n")
        assert shown(75) and "match 2 of 3" in str(screen.query_one("#log-status").render())
        await rig.keys("n")
        assert shown(20)
        await rig.keys("N", "N")
        assert shown(130)
        await rig.keys("slash", *"no such thing", "enter")
        assert "no match" in str(screen.query_one("#log-status").render())


async def test_new_entries_appear_live_without_moving_a_scrolled_view(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        now = rig.clock()
        rig.app.log_entries([LogEntry(now + i, f"old event {i:03d}") for i in range(80)])
        screen = await _open_full_log(rig, "L")
        view = screen.log_view
        await rig.keys("pagedown")
        top = view.plain_lines[int(view.scroll_y)]
        rig.app.log_entries([LogEntry(now + 100 + i, f"new event {i}") for i in range(3)])
        await pilot.pause()
        assert "new event 2" in view.plain_lines[0]  # newest first
        assert view.plain_lines[int(view.scroll_y)] == top  # what was on screen stays
        assert "83 entries" in str(screen.query_one("#log-title").render())


async def test_the_full_log_says_where_the_demo_audit_log_is_and_that_it_is_temporary(
    tmp_path: Path,
) -> None:
    rig = make_rig(tmp_path, demo=True)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        screen = await _open_full_log(rig, "L")
        note = str(screen.query_one("#log-audit").render())
        assert str(rig.app.engine.audit.path) in note.replace("\n", "")
        assert "temporary" in note and "deleted when the demo quits" in note


async def test_the_palette_opens_the_full_log(tmp_path: Path) -> None:
    from textual.command import CommandPalette

    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.keys("ctrl+p")
        await rig.until(lambda: isinstance(rig.app.screen, CommandPalette), "the palette")
        await rig.keys(*"event log")
        palette = rig.app.screen
        assert isinstance(palette, CommandPalette)
        await rig.until(lambda: palette._list_visible, "the palette's hits")
        await _open_full_log(rig, "enter")


def test_the_demo_says_on_exit_that_its_audit_log_was_temporary(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``tuiapp demo`` ends with where its audit log was, and that it is gone."""
    import tuiapp.ui.run as ui_run
    from tuiapp import demo

    seen: dict[str, Path] = {}

    def fake_run_tui(fleet: Any, **kwargs: Any) -> int:
        seen["audit"] = fleet.monitor.audit_log
        return 0

    monkeypatch.setattr(ui_run, "run_tui", fake_run_tui)
    assert demo.run_demo(instances=3) == 0
    err = capsys.readouterr().err
    assert str(seen["audit"]) in err and "temporary" in err and "deleted" in err
    assert not seen["audit"].parent.exists()
