"""Pilot tests: the real FleetApp, the real engine, the in-process simulator, real keys.

Time is fake: the app, the engine and the simulator share a ``FakeClock``, and the
app's injected ``sleep`` wakes only when a test moves that clock (``Rig.advance``),
so the poller and the verification loop move exactly as far as a test says. No
test sleeps; ``Rig.until`` yields to the event loop (``pilot.pause``) until a
condition holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sim_fixtures import SIM_BASE, FakeClock, make_sim, pick
from textual.pilot import Pilot

from tuiapp.config import config_from_dict
from tuiapp.simulator import Simulator
from tuiapp.ui.app import FleetApp
from tuiapp.ui.detail import DetailScreen
from tuiapp.ui.dialogs import ConfirmScreen
from tuiapp.ui.help import HelpScreen

SIZE = (100, 30)


class ManualSleep:
    """The app's ``sleep``: a sleeper wakes when the fake clock passes its deadline."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.clock() + delay, future))
        await future

    def wake_due(self) -> None:
        now = self.clock()
        for at, future in self.sleepers:
            if at <= now and not future.done():
                future.set_result(None)
        self.sleepers = [(at, f) for at, f in self.sleepers if not f.done()]


@dataclass
class Rig:
    app: FleetApp
    sim: Simulator
    clock: FakeClock
    sleeper: ManualSleep
    pilot: Pilot[Any] | None = None

    async def until(self, condition: Callable[[], bool], what: str, rounds: int = 4000) -> None:
        """Yield to the event loop until ``condition()`` holds; then let the UI settle."""
        assert self.pilot is not None
        for _ in range(rounds):
            if condition():
                await self.pilot.pause()
                return
            await asyncio.sleep(0)  # a yield, not a timed sleep
        raise AssertionError(f"never happened: {what}")

    async def spin(self, rounds: int = 60) -> None:
        """Let every task that can run, run (the poller, the engine, the simulator)."""
        for _ in range(rounds):
            await asyncio.sleep(0)

    async def advance(self, seconds: float, step: float = 1.0) -> None:
        """Move fake time in steps, letting the poller and the engine run at each one."""
        assert self.pilot is not None
        left = seconds
        while left > 1e-9:
            delta = min(step, left)
            self.clock.advance(delta)
            left -= delta
            self.sleeper.wake_due()
            await self.spin()
        await self.pilot.pause()

    async def ready(self, pilot: Pilot[Any]) -> None:
        self.pilot = pilot
        await self.until(
            lambda: all(r.last_polled_at is not None for r in self.app.poller.rows.values()),
            "the first sweep",
        )
        self.app.tick()
        await pilot.pause()

    async def select(self, name: str) -> None:
        """Put the cursor on ``name`` (the palette's jump; the filter test types for real)."""
        assert self.pilot is not None
        self.app.jump_to(name)
        await self.pilot.pause()
        assert self.app.model.cursor == name

    async def filter_to(self, name: str) -> None:
        """Put the cursor on ``name`` with real keys: / name enter."""
        assert self.pilot is not None
        await self.pilot.press("slash", *name, "enter")
        await self.until(lambda: self.app.model.cursor == name, f"cursor on {name}")

    async def open_dialog(self, key: str = "r") -> ConfirmScreen:
        assert self.pilot is not None
        await self.pilot.press(key)
        await self.until(lambda: isinstance(self.app.screen, ConfirmScreen), "the dialog")
        screen = self.app.screen
        assert isinstance(screen, ConfirmScreen)
        self.clock.advance(1.0)  # past the 300 ms type-ahead guard
        return screen

    def restarts(self, name: str | None = None) -> list[dict[str, Any]]:
        return self.sim.requests(action="restart", instance=name)

    def row_text(self, name: str) -> str:
        """The grid line of ``name`` as painted now (after a tick)."""
        grid = self.app.grid
        index = self.app.model.index_of(name)
        assert index is not None, f"{name} is not shown"
        y = index - int(grid.scroll_y) + 1
        return " ".join(text.strip() for text, _css in grid.line_spec(y)[1])

    def notices(self) -> list[str]:
        return [n.message for n in self.app._notifications]


def make_rig(
    tmp_path: Path,
    *,
    monitor: dict[str, Any] | None = None,
    boot_seconds: float = 0,
    **app_kwargs: Any,
) -> Rig:
    _asgi, sim, clock, transport = make_sim(boot_seconds=boot_seconds)
    data, environ = sim.fleet.to_config(SIM_BASE)
    data["monitor"] = {
        **data["monitor"],
        "poll_interval": 15,
        "stabilize": 60,
        "verify_window": 30,
        **(monitor or {}),
    }
    fleet = config_from_dict(data, environ=environ)
    sleeper = ManualSleep(clock)
    app = FleetApp(
        fleet,
        transport=transport,
        clock=clock,
        sleep=sleeper.sleep,
        state_dir_override=tmp_path / "state",
        operator="tester",
        tick_seconds=None,  # the test calls tick() after moving the fake clock
        **app_kwargs,
    )
    return Rig(app, sim, clock, sleeper)


def clean_instances(
    sim: Simulator, providers: tuple[str, ...], state: str, count: int
) -> list[str]:
    names = []
    for inst in sim.instances.values():
        if inst.spec.provider not in providers or sim.settle(inst) != state:
            continue
        if inst.fault or inst.account.down or inst.account.fault or not inst.recover:
            continue
        names.append(inst.name)
    assert len(names) >= count, names
    return names[:count]


# ---- the single-instance path ------------------------------------------------------------


async def test_restart_failed_row_sends_exactly_one_then_cooldown_refuses(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        dialog = await rig.open_dialog("r")
        body = str(dialog.query_one("#confirm-body").render())
        assert name in body and "hypersender" in body and "FAILED" in body
        assert dialog.focused is dialog.query_one("#cancel")  # focus starts on Cancel
        await pilot.press("y")
        await rig.until(lambda: len(rig.restarts(name)) == 1, "the restart request")
        await rig.advance(30, step=5)  # verification reads, on fake time
        await rig.until(lambda: name not in rig.app.engine.in_flight, "the action to end")
        rig.app.tick()
        await pilot.pause()
        assert "cooldown" in rig.row_text(name)
        before = len(rig.sim.requests(instance=name))
        await pilot.press("r")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("cooldown" in n and name in n for n in rig.notices())
        assert len(rig.restarts(name)) == 1
        assert len(rig.sim.requests(instance=name)) == before  # not even a read was sent


async def test_restart_on_qr_row_sends_nothing_and_says_a_scan_is_needed(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = next(i.name for i in rig.sim.instances.values() if rig.sim.settle(i) == "SCAN_QR_CODE")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        key = "r" if "restart" in rig.app.poller.rows[name].account.info.actions else "c"
        await pilot.press(key)
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert any("QR" in n and name in n for n in rig.notices())
        assert rig.sim.requests(instance=name, method="POST") == []
        assert rig.restarts() == [] and rig.sim.requests(action="reconnect") == []


async def test_escape_in_the_dialog_sends_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await rig.open_dialog("r")
        await pilot.press("escape")
        await rig.until(lambda: not isinstance(rig.app.screen, ConfirmScreen), "dialog closed")
        await rig.advance(5)
        assert rig.restarts() == []
        assert any("nothing sent" in n for n in rig.notices())


async def test_type_ahead_r_then_y_within_100_ms_sends_nothing(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await pilot.press("r", "y", "enter")  # same instant on the app's clock
        await pilot.pause()
        assert isinstance(rig.app.screen, ConfirmScreen), "the dialog must still be open"
        rig.clock.advance(0.05)
        await pilot.press("y")  # still inside the 300 ms guard
        await pilot.pause()
        assert isinstance(rig.app.screen, ConfirmScreen)
        rig.clock.advance(1)
        await pilot.press("n")
        await rig.until(lambda: not isinstance(rig.app.screen, ConfirmScreen), "dialog closed")
        await rig.advance(5)
        assert rig.restarts() == []


# ---- grid behaviour --------------------------------------------------------------------


async def test_cursor_stays_on_the_same_instance_when_its_row_resorts(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        model = rig.app.model
        await pilot.press(*["down"] * 20)
        name = model.cursor
        assert name is not None and rig.app.poller.rows[name].status.value == "WORKING"
        index_before = model.cursor_index
        rig.sim.force(name, state="FAILED")
        await rig.advance(20)  # one poll interval (+ jitter): the poller reads FAILED, re-sorts
        await rig.until(lambda: rig.app.poller.rows[name].status.value == "FAILED", "FAILED")
        assert model.cursor == name
        assert model.cursor_index < index_before  # it moved up, the cursor with it
        line = rig.app.grid.line_spec(model.cursor_index - int(rig.app.grid.scroll_y) + 1)
        assert "cursor" in line[0] and name in "".join(t for t, _ in line[1])
        await pilot.press("s")  # re-sort by name: still the same instance
        assert model.sort_mode == "name" and model.cursor == name


async def test_filter_and_problems_only_change_the_visible_rows(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rows = rig.app.poller.rows
        model = rig.app.model
        assert len(model.visible) == len(rows)
        await pilot.press("slash", *"waha", "enter")
        waha = {
            n for n, r in rows.items() if "waha" in f"{n} {r.account.name} {r.account.provider}"
        }
        assert set(model.visible) == waha and 0 < len(waha) < len(rows)
        assert rig.app.focused is rig.app.grid  # enter returned to the grid
        await pilot.press("escape")  # clears the filter
        assert len(model.visible) == len(rows)
        await pilot.press("f")
        problems = {n for n, r in rows.items() if r.problem}
        assert set(model.visible) == problems and 0 < len(problems) < len(rows)
        await pilot.press("f")
        assert len(model.visible) == len(rows)


async def test_read_only_greys_out_actions_and_shows_the_badge(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, read_only=True)
    name = pick(rig.sim, "hypersender", "FAILED")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        bindings = rig.app.screen.active_bindings
        assert bindings["r"].enabled is False and bindings["c"].enabled is False
        assert rig.app.main.badge_read_only.display
        await pilot.press("r", "c")
        await pilot.pause()
        assert not isinstance(rig.app.screen, ConfirmScreen)
        assert rig.restarts() == [] and rig.sim.requests(action="reconnect") == []


# ---- bulk ----------------------------------------------------------------------------


async def test_bulk_of_three_runs_two_at_a_time_in_order(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=4)
    names = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 3)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        for name in names:
            await rig.select(name)
            await pilot.press("space")
        await pilot.press("escape")  # clear the filter; the marks stay
        assert rig.app.model.marks == set(names)
        dialog = await rig.open_dialog("r")
        body = str(dialog.query_one("#confirm-body").render())
        assert all(n in body for n in names) and "WORKING" in body
        await pilot.press("y")
        await rig.until(lambda: len(rig.restarts()) >= 2, "two restarts")
        await pilot.pause()
        assert len(rig.restarts()) == 2  # the third waits for a free slot
        for _ in range(12):
            if len(rig.restarts()) == 3:
                break
            await rig.advance(5, step=5)
        sent = rig.restarts()
        assert [r["instance"] for r in sent] and len(sent) == 3
        order = rig.app.model.marked_in_order() or names
        assert sent[2]["time"] > sent[0]["time"] and sent[2]["time"] > sent[1]["time"]
        assert rig.app.model.marks == set()  # marks clear after the action
        del order


async def test_x_aborts_what_has_not_started(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, boot_seconds=4)
    names = clean_instances(rig.sim, ("hypersender", "waha"), "WORKING", 4)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        for name in names:
            await rig.select(name)
            await pilot.press("space")
        await pilot.press("escape")
        await rig.open_dialog("r")
        await pilot.press("y")
        await rig.until(lambda: len(rig.restarts()) >= 2, "two restarts")
        await pilot.press("x")
        await rig.advance(40, step=5)
        await rig.until(lambda: not rig.app.bulk_running, "the bulk run to end")
        assert len(rig.restarts()) == 2
        outcomes = {n: rig.app.notes.notes[n].outcome for n in names}
        assert sorted(outcomes.values()).count("aborted") == 2


# ---- other surfaces -----------------------------------------------------------------------


async def test_detail_view_shows_ids_and_refusal_reasons_and_no_secret(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = next(i.name for i in rig.sim.instances.values() if rig.sim.settle(i) == "SCAN_QR_CODE")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await rig.select(name)
        await pilot.press("enter")
        await rig.until(lambda: isinstance(rig.app.screen, DetailScreen), "the detail view")
        text = rig.app.screen.body_text
        row = rig.app.poller.rows[name]
        assert row.instance.id in text and "SCAN_QR_CODE" in text and "QR" in text
        secrets = [a.token.reveal() for a in rig.app.fleet.accounts.values() if a.token]
        secrets += [i.token.reveal() for i in rig.app.fleet.instances if i.token]
        assert secrets and not any(s in text for s in secrets)
        await pilot.press("escape")
        assert rig.app.screen is rig.app.main


async def test_help_lists_every_binding_with_its_id(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        await pilot.press("question_mark")
        await rig.until(lambda: isinstance(rig.app.screen, HelpScreen), "help")
        ids = {entry.binding_id for entry in rig.app.screen.entries}
        for needed in (
            "fleet.restart",
            "fleet.reconnect",
            "fleet.filter",
            "fleet.problems",
            "fleet.sort",
            "fleet.poll_now",
            "fleet.pause",
            "fleet.log",
            "fleet.abort",
            "fleet.quit",
            "grid.mark",
            "grid.down",
            "app.help",
        ):
            assert needed in ids, needed
        await pilot.press("escape")
        assert rig.app.screen is rig.app.main


async def test_confirmed_working_to_bad_notifies_once(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    name = pick(rig.sim, "hypersender", "WORKING")
    async with rig.app.run_test(size=SIZE) as pilot:
        await rig.ready(pilot)
        rig.sim.force(name, state="FAILED")
        await rig.advance(50, step=5)  # several polls: confirmed once, notified once
        downs = [n for n in rig.notices() if name in n and "WORKING →" in n]
        assert len(downs) == 1
        assert any(name in line for line in rig.app.main.event_log.lines())


@pytest.mark.parametrize("size", [(80, 24)])
async def test_80x24_keeps_status_name_and_note(tmp_path: Path, size: tuple[int, int]) -> None:
    rig = make_rig(tmp_path)
    async with rig.app.run_test(size=size) as pilot:
        await rig.ready(pilot)
        keys = [col.key for col, _x, _w in rig.app.grid.placed()]
        assert {"status", "name", "note"} <= set(keys) and len(keys) < 9
        assert rig.app.grid.page_rows >= 10
