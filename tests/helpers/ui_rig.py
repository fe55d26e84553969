"""The Pilot rig shared by the UI tests: the real FleetApp, the real engine, the
in-process simulator and real keys, on fake time.

The app, the engine and the simulator share a ``FakeClock``; the app's injected
``sleep`` wakes only when a test moves that clock (``Rig.advance``), so the poller and
the verification loop move exactly as far as a test says. No test sleeps;
``Rig.until`` yields to the event loop (``pilot.pause``) until a condition holds.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textual import events
from textual.keys import REPLACED_KEYS, _character_to_key, _get_unicode_name_from_key
from textual.pilot import Pilot

from tuiapp.config import config_from_dict
from tuiapp.offload import offloads_done, offloads_in_flight
from tuiapp.simulator import Simulator
from tuiapp.ui.app import FleetApp
from tuiapp.ui.dialogs import ConfirmScreen

from helpers.sim_fixtures import SIM_BASE, FakeClock, ManualSleep, make_sim

__all__ = ["SIZE", "Rig", "clean_instances", "make_rig"]

SIZE = (80, 24)


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
            if offloads_in_flight():  # state or audit I/O in a worker thread
                await offloads_done()
            await asyncio.sleep(0)  # a yield, not a timed sleep
        raise AssertionError(f"never happened: {what}")

    async def spin(self, rounds: int = 60) -> None:
        """Let every task that can run, run (the poller, the engine, the simulator)."""
        for _ in range(rounds):
            if offloads_in_flight():
                await offloads_done()
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
        await self.keys("slash", *name, "enter")
        await self.until(lambda: self.app.model.cursor == name, f"cursor on {name}")

    async def open_dialog(self, key: str = "r") -> ConfirmScreen:
        assert self.pilot is not None
        await self.keys(key)
        await self.until(lambda: isinstance(self.app.screen, ConfirmScreen), "the dialog")
        screen = self.app.screen
        assert isinstance(screen, ConfirmScreen)
        self.clock.advance(1.0)  # past the 300 ms type-ahead guard
        return screen

    async def keys(self, *keys: str) -> None:
        """Press keys as one burst, as a slow link delivers them: all are queued before
        any is handled (Pilot.press would wait for idle after each), then wait once."""
        assert self.pilot is not None
        driver = self.app._driver
        assert driver is not None
        for key in keys:  # the same Key events Pilot.press builds
            if len(key) == 1 and not key.isalnum():
                key = _character_to_key(key)
            try:
                char = unicodedata.lookup(_get_unicode_name_from_key(REPLACED_KEYS.get(key, key)))
            except KeyError:
                char = key if len(key) == 1 else None
            driver.send_message(events.Key(key, char))
        await self.pilot.pause()

    def restarts(self, name: str | None = None) -> list[dict[str, Any]]:
        return self.sim.requests(action="restart", instance=name)

    def row_text(self, name: str) -> str:
        """The grid line of ``name`` as painted now (after a tick)."""
        grid = self.app.grid
        index = self.app.model.index_of(name)
        assert index is not None, f"{name} is not shown"
        y = index - int(grid.scroll_y) + 1
        return " ".join(text.strip() for text, _css in grid.line_spec(y)[1])

    def note(self, name: str) -> str:
        """The full text of the row's note column (the grid may cut it with an ellipsis)."""
        return self.app.grid_cells(name, self.clock())[0]["note"].text

    def audit_lines(self, name: str) -> list[dict[str, Any]]:
        path = self.app.engine.audit.path
        if not path.exists():
            return []
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        return [line for line in lines if line.get("instance") == name]

    def notices(self) -> list[str]:
        return [n.message for n in self.app._notifications]


def make_rig(
    tmp_path: Path,
    *,
    monitor: dict[str, Any] | None = None,
    boot_seconds: float = 0,
    edit: Callable[[dict[str, Any], Simulator], None] | None = None,
    **app_kwargs: Any,
) -> Rig:
    _asgi, sim, clock, transport = make_sim(boot_seconds=boot_seconds)
    data, environ = sim.fleet.to_config(SIM_BASE)
    if edit is not None:
        edit(data, sim)
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
