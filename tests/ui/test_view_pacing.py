"""How often observations reach the screen, with 100,000 rows in mind.

    header counts   observations alone bring them at most every ``HEADER_EVERY``
                    seconds; the one-second tick brings the last change of a burst in its
                    own frame (a timer ``HEADER_LATE`` after it was due, where no tick
                    runs); the tick, an engine event or the operator's view change brings
                    them at once
    new rows        a discovery's rows are folded into the grid at most every
                    ``NEW_ROWS_EVERY`` seconds (longer after a long fold); a read of a
                    known row goes at once and brings the waiting new rows with it
    first fill      a big fleet's rows reach the grid in two folds: the first
                    ``FIRST_FILL`` before the first paint, the rest right after it
    the cursor      with discovery, it rides the worst row found so far until the
                    operator's first key (a listed fleet: until every row was read)

The app runs against a stand-in poller (real rows in a real tracker, rows and reads
added by the test): no provider, no simulator, nothing waits for real time (a timer's
work is done by calling what it would call).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import types
from collections.abc import Callable
from typing import Any

import pytest

from tuiapp.config import FleetConfig, InstanceConfig, config_from_dict
from tuiapp.events import InstanceObserved, SweepFinished
from tuiapp.model import Observation, Status
from tuiapp.row import Row
from tuiapp.runtime import Backend
from tuiapp.tracker import FleetTracker
from tuiapp.ui import fleet_view
from tuiapp.ui.app import FleetApp
from tuiapp.ui.bridge import FOLD_SHARE, KNOWN_ROWS_EVERY, NEW_ROWS_EVERY, EngineBridge
from tuiapp.ui.fleet_view import HEADER_EVERY, HEADER_LATE
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.gridmodel import GridModel

from helpers.idle_backend import PollerKeys, StubEngine, StubState

ACCOUNT = "waha-1"


def fleet(*, discover: bool) -> FleetConfig:
    account = {"provider": "waha", "base_url": "http://127.0.0.1:9/w", "token": "t0ken-0000"}
    if discover:
        account["discover"] = True
    return config_from_dict({"accounts": {ACCOUNT: account}}, environ={})


class HandPoller(PollerKeys):
    """Stands in for the poller: rows the test adds, reads the test makes."""

    def __init__(self, config: FleetConfig) -> None:
        self.fleet = config
        self.paused = False
        self.last_sweep_at: float | None = None
        self.tracker = FleetTracker(config.accounts, clock=time.time, interval=lambda _a: 15.0)
        self.rows: dict[str, Row] = self.tracker.rows
        self._stop = asyncio.Event()
        self.interval = 15.0  # what a row's age is measured against (``stale_interval``)

    def read(self, name: str, status: Status, *, limited_until: float | None = None) -> None:
        """A read of ``name`` (a new row the first time, as a discovery adds it);
        ``limited_until``: the provider's rate limit holds it until then."""
        row = self.rows.get(name)
        if row is None:
            instance = InstanceConfig(name=name, account=ACCOUNT, id=name, discovered=True)
            row = self.tracker.add_row(instance, self.fleet.accounts[ACCOUNT], ())
        now = time.time()
        row.obs = Observation(status=status, latency_ms=50.0, observed_at=now)
        row.status = row.confirmed = status
        row.last_polled_at = row.last_ok_at = now
        row.rate_limited_until = limited_until
        self.tracker.emit(InstanceObserved(name, row))

    def subscribe(self, callback: Callable[[object], None]) -> None:
        self.tracker.subscribe(callback)

    async def run(self) -> None:
        await self._stop.wait()

    def stop(self) -> None:
        self._stop.set()

    def stale_interval(self, target: Row) -> float:
        return self.interval  # as the budgets allow (the real poller: tuiapp.cadence)


def make_app(poller: HandPoller) -> FleetApp:
    backend = Backend(poller=poller, engine=StubEngine(), state=StubState())  # type: ignore[arg-type]
    # no one-second tick: the tests call it (a tick brings the header at once)
    return FleetApp(poller.fleet, backend=backend, operator="tester", demo=True, tick_seconds=None)


def failed_count(app: FleetApp) -> int:
    return dict(app.main.counts.counts).get(Status.FAILED, 0)


async def test_observations_bring_the_header_at_most_every_header_every(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a long period, so that no timer fires while the test looks (a slow machine)
    monkeypatch.setattr(fleet_view, "HEADER_EVERY", 60.0)
    poller = HandPoller(fleet(discover=False))
    for n in range(6):  # in the grid from the start (no new rows below: no fold waits)
        poller.read(f"r{n}", Status.WORKING)
    app = make_app(poller)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        view = app.fleet_view
        view._header_at = float("-inf")  # a quiet while: the next change shows at once
        poller.read("r1", Status.FAILED)
        await pilot.pause()
        assert failed_count(app) == 1
        poller.read("r2", Status.FAILED)  # within HEADER_EVERY of the last header
        await pilot.pause()
        assert failed_count(app) == 1  # not yet ...
        timer = view._header_timer
        late = fleet_view.HEADER_EVERY + fleet_view.HEADER_LATE
        assert timer is not None and timer._interval <= late  # ... but soon
        view._header_due()  # what the timer does when it fires
        assert failed_count(app) == 2
        poller.read("r3", Status.FAILED)
        await pilot.pause()
        assert failed_count(app) == 2
        app.tick()  # not an observation (the tick, an engine event, a filter): at once
        await pilot.pause()
        assert failed_count(app) == 3 and view._header_timer is None
        poller.stop()


def test_the_header_lags_observations_by_at_most_a_tick() -> None:
    # the counts are seen within the second (the tick's frame), 1.25 s where a tick lags
    assert HEADER_EVERY <= 1.0 and HEADER_EVERY + HEADER_LATE <= 1.25


async def test_a_tick_brings_the_header_a_burst_left_waiting() -> None:
    poller = HandPoller(fleet(discover=False))
    for n in range(6):
        poller.read(f"r{n}", Status.WORKING)
    app = make_app(poller)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        view = app.fleet_view
        view.update_header()  # just brought: observations now wait for the tick
        poller.read("r1", Status.FAILED)
        poller.read("r2", Status.FAILED)
        await pilot.pause()
        assert failed_count(app) == 0 and view._header_timer is not None
        app.tick()
        await pilot.pause()
        assert failed_count(app) == 2 and view._header_timer is None  # one frame, no timer
        poller.stop()


async def test_a_discovering_fleet_keeps_the_cursor_on_the_worst_row_until_a_key() -> None:
    poller = HandPoller(fleet(discover=True))
    app = make_app(poller)
    async with app.run_test(size=(100, 30)) as pilot:
        for name in ("b", "c", "d"):  # the first list answer: no problem yet
            poller.read(name, Status.STOPPED)
        await pilot.pause()
        assert app.model.cursor == "b"
        app.fleet_view.bridge._folded_at = float("-inf")  # the next answer: folded at once
        poller.read("e", Status.FAILED)  # a later answer finds a worse row
        await pilot.pause()
        assert app.model.cursor == "e"  # the cursor rides the worst row ...
        poller.tracker.emit(SweepFinished(time.time(), 1.0, 4, 0))  # (after one answer)
        await pilot.pause()
        app.fleet_view.bridge._folded_at = float("-inf")
        poller.read("a", Status.FAILED)  # a later answer: sorts before e
        await pilot.pause()
        assert app.model.cursor == "a"  # ... whatever the sweeps say ...
        await pilot.press("j")  # ... until the operator's first key
        assert app.model.cursor == "e"
        app.fleet_view.bridge._folded_at = float("-inf")
        poller.read("0", Status.FAILED)  # sorts first
        await pilot.pause()
        assert app.model.cursor == "e" and app.model.visible[:3] == ["0", "a", "e"]
        poller.stop()


async def test_a_big_fleet_is_drawn_after_its_first_rows_and_then_shows_them_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fleet_view, "FIRST_FILL", 4)
    poller = HandPoller(fleet(discover=False))
    for n in range(10):  # a listed fleet: every row known before the app starts
        poller.read(f"r{n}", Status.WORKING)
    poller.read("r9", Status.FAILED)  # the worst row is in the second fold
    app = make_app(poller)
    drawn: list[int] = []  # the rows in the grid when each frame was drawn
    original = FleetGrid.render_line

    def render_line(grid: FleetGrid, y: int) -> Any:
        if y >= 1 and grid.row_at(y) is not None:  # a row's line (0: the column heads)
            drawn.append(len(grid.model.entries))
        return original(grid, y)

    monkeypatch.setattr(FleetGrid, "render_line", render_line)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await pilot.pause()
        assert drawn[0] == 4  # the first paint did not wait for the rest ...
        assert len(app.model.entries) == 10  # ... which followed it
        assert app.model.visible[0] == "r9"  # sorted in with the others
        assert app.main.counts.counts  # the header counts every row
        assert sum(dict(app.main.counts.counts).values()) == 10
        poller.stop()


class EagerPoller(HandPoller):
    """Its first answers come at once, as from a simulator: every row read the moment
    ``run`` starts; ``frames_before_run``: the grid lines drawn by then."""

    def __init__(self, config: FleetConfig, frames: list[int]) -> None:
        super().__init__(config)
        self.frames = frames
        self.frames_before_run: int | None = None

    async def run(self) -> None:
        self.frames_before_run = len(self.frames)
        for name in list(self.rows):
            self.read(name, Status.FAILED)
        await super().run()


async def test_listed_rows_are_drawn_before_the_first_answers_are_asked_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows to draw (a listed fleet): the first frame, then the poller, so that answers
    that come at once are not folded in ahead of it. (With nothing to draw, a fleet that
    discovers its rows, the poller starts at once: bench_ui's first paint measures it.)"""
    drawn: list[int] = []
    original = FleetGrid.render_line

    def render_line(grid: FleetGrid, y: int) -> Any:
        if y >= 1 and grid.row_at(y) is not None:  # a row's line (0: the column heads)
            drawn.append(y)
        return original(grid, y)

    monkeypatch.setattr(FleetGrid, "render_line", render_line)
    poller = EagerPoller(fleet(discover=False), drawn)
    for n in range(5):
        poller.read(f"r{n}", Status.WORKING)
    app = make_app(poller)
    async with app.run_test(size=(100, 30)) as pilot:
        while poller.frames_before_run is None:
            await pilot.pause()
        await pilot.pause()
        assert poller.frames_before_run >= 5  # every row's line, before any answer
        assert all(app.model.entries[f"r{n}"].problem for n in range(5))  # then the answers
        poller.stop()


class PostBox:
    """What the bridge needs of the app: the grid model, and where messages go."""

    def __init__(self) -> None:
        self.model = GridModel()
        self.posted: list[object] = []

    def post_message(self, message: object) -> bool:
        self.posted.append(message)
        return True


async def test_new_rows_are_folded_in_at_most_every_new_rows_every() -> None:
    box = PostBox()
    bridge = EngineBridge(box, on_bulk=lambda _event: None)  # type: ignore[arg-type]
    row: Any = types.SimpleNamespace(status=Status.WORKING)  # the bridge reads its status
    bridge.receive(InstanceObserved("new-1", row))
    assert len(box.posted) == 1  # the first new row: at once (the first paint)
    assert bridge.take_dirty() == {"new-1"}
    box.model.upsert(
        "new-1", status=Status.WORKING, problem=False, provider="p", since=None, haystack=""
    )
    bridge.receive(InstanceObserved("new-2", row))
    bridge.receive(InstanceObserved("new-3", row))
    assert len(box.posted) == 1  # folded in a moment, together
    due = bridge._new_rows_due
    assert due is not None
    assert due.when() - asyncio.get_running_loop().time() <= NEW_ROWS_EVERY
    bridge.receive(InstanceObserved("new-1", row))  # a known row on screen: at once
    assert len(box.posted) == 2 and due.cancelled() and bridge._new_rows_due is None
    assert bridge.take_dirty() == {"new-1", "new-2", "new-3"}
    bridge.fold_seconds = 0.5  # a fold of a big fleet took long: the next waits longer
    assert bridge.new_rows_every() == FOLD_SHARE * 0.5 > NEW_ROWS_EVERY
    bridge.receive(InstanceObserved("new-4", row))
    due = bridge._new_rows_due
    assert due is not None and due.when() - asyncio.get_running_loop().time() > NEW_ROWS_EVERY


async def test_a_read_that_changes_nothing_on_screen_waits_for_the_next_fold() -> None:
    box = PostBox()
    bridge = EngineBridge(box, on_bulk=lambda _event: None)  # type: ignore[arg-type]
    for name in ("shown", "hidden"):
        box.model.upsert(
            name, status=Status.WORKING, problem=False, provider="p", since=None, haystack=""
        )
    bridge.on_screen = lambda name: name == "shown"
    bridge.take_dirty()  # a fold just now
    working: Any = types.SimpleNamespace(status=Status.WORKING)
    failed: Any = types.SimpleNamespace(status=Status.FAILED)
    bridge.receive(InstanceObserved("hidden", working))  # off screen, same status: waits
    assert box.posted == []
    due = bridge._new_rows_due
    assert due is not None
    assert due.when() - asyncio.get_running_loop().time() <= KNOWN_ROWS_EVERY
    bridge.receive(InstanceObserved("shown", working))  # on screen: at once, both together
    assert len(box.posted) == 1 and due.cancelled()
    assert bridge.take_dirty() == {"shown", "hidden"}
    bridge.receive(InstanceObserved("hidden", failed))  # a new status may sort it into view
    assert len(box.posted) == 2 and bridge.take_dirty() == {"hidden"}


async def test_the_polling_line_counts_the_rows_inside_a_rate_limit() -> None:
    poller = HandPoller(fleet(discover=False))
    app = make_app(poller)
    async with app.run_test(size=(120, 30)) as pilot:
        soon = time.time() + 600
        poller.read("r1", Status.WORKING, limited_until=soon)
        poller.read("r2", Status.WORKING, limited_until=soon)
        poller.read("r3", Status.WORKING, limited_until=time.time() - 1)  # over already
        poller.read("r4", Status.WORKING)
        await pilot.pause()
        app.tick()
        await pilot.pause()
        assert "2 rate-limited" in app.polling.line()
        poller.read("r1", Status.WORKING)  # read again, no limit now
        await pilot.pause()
        app.tick()
        assert "1 rate-limited" in app.polling.line()
        app.polling.count_rate_limited(soon + 1)  # the tick's count once r2's limit is over
        assert "rate-limited" not in app.polling.line()
        poller.stop()


async def test_a_row_is_stale_against_what_the_budgets_allow_not_its_poll_interval() -> None:
    """A fleet whose budgets read each row every ~100 s (a provider without a list call,
    thousands of instances): a row read 60 s ago is as fresh as it can be, not stale
    (three poll intervals of 15 s); past three of those 100 s it is."""
    poller = HandPoller(fleet(discover=False))
    app = make_app(poller)
    async with app.run_test(size=(120, 30)) as pilot:
        poller.read("r1", Status.WORKING)
        row = poller.rows["r1"]
        read_at = time.time() - 60
        row.obs = dataclasses.replace(row.obs, observed_at=read_at)
        row.last_polled_at = read_at
        poller.interval = 100.0
        app.tick()  # the lookup follows the poller each second
        await pilot.pause()
        cells, dim = app.grid_cells("r1", time.time())
        assert not dim and "stale" not in cells["check"].text
        read_at = time.time() - 400
        row.obs = dataclasses.replace(row.obs, observed_at=read_at)
        row.last_polled_at = read_at
        cells, dim = app.grid_cells("r1", time.time())
        assert dim and cells["check"].text.startswith("stale")
        poller.stop()
