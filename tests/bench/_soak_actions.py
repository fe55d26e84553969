"""The soak's operator: real keys through the pilot, the way someone on call would type.

Each gesture starts from the fleet grid (closing whatever a previous gesture left
open), presses keys, waits like a person does (a dialog's 300 ms type-ahead guard is
real time here: the app runs on ``time.time``) and leaves the grid as it found it.
Restarts act on FAILED rows; to keep a supply of them over a long soak, the
simulator's control API fails one healthy instance per restart gesture, for a later
gesture to find. Used by ``soak.py`` only.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from tuiapp.model import Status
from tuiapp.ui.dialogs import GUARD_SECONDS, ConfirmScreen, QuitScreen

__all__ = ["GESTURES", "Operator"]

# One restart in five gestures; the rest browse, filter, sort, open and close things.
GESTURES: tuple[str, ...] = (
    "restart",
    "problems",
    "detail",
    "sort",
    "filter",
    "restart",
    "log",
    "reconnect_cancel",
    "help",
    "poll_now",
)

FAILABLE = ("hypersender", "wawp", "waha", "wasend")  # providers whose vocabulary has FAILED
HUMAN_PAUSE = GUARD_SECONDS + 0.15  # what a person waits before answering a dialog


class SimControl:
    """The simulator's control API (``/_sim/``), called from a thread to keep the loop free."""

    def __init__(self, url: str, rng: random.Random) -> None:
        self.client = httpx.Client(base_url=f"{url}/_sim", timeout=30)
        self.rng = rng

    def fail_one(self) -> str | None:
        """Force one healthy, fault-free instance of a FAILED-capable provider to FAILED."""
        rows = self.client.get("/instances").json()
        healthy = [
            r["name"]
            for r in rows
            if r["provider"] in FAILABLE
            and r["status"] == "WORKING"
            and not r["faults"]["fault"]
            and not r["faults"]["account_down"]
            and not r["faults"]["account_fault"]
        ]
        if not healthy:
            return None
        name = self.rng.choice(healthy)
        self.client.post(f"/instances/{name}", json={"state": "FAILED"}).raise_for_status()
        return name

    def close(self) -> None:
        self.client.close()


class Operator:
    """Gestures on a running FleetApp; counts what it did in ``done``."""

    def __init__(self, app: Any, pilot: Any, control: SimControl | None) -> None:
        self.app = app
        self.pilot = pilot
        self.control = control
        self.done: Counter[str] = Counter()
        self.rng = random.Random(0)

    async def perform(self, gesture: str) -> None:
        method: Callable[[], Awaitable[None]] = getattr(self, f"g_{gesture}")
        await self.to_grid()
        await method()
        await self.to_grid()
        self.done[gesture] += 1

    # ---- helpers ------------------------------------------------------------------

    async def press(self, *keys: str) -> None:
        await self.pilot.press(*keys)

    async def wait_for(self, condition: Callable[[], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if condition():
                return True
            await asyncio.sleep(0.05)
        return condition()

    async def to_grid(self) -> None:
        """Back to the plain grid: dialogs and views closed, filter box closed."""
        app = self.app
        for _ in range(5):
            if app.screen is app.main:
                break
            self.done["stray_screen_closed"] += 1
            if isinstance(app.screen, (ConfirmScreen, QuitScreen)):
                await asyncio.sleep(HUMAN_PAUSE)
            await self.press("escape")
        main = app.main
        if main.filter_box.display:
            await self.press("escape")

    async def move_to(self, name: str) -> bool:
        """Arrow keys until the cursor is on ``name`` (rows may re-sort meanwhile)."""
        model = self.app.model
        for _ in range(8):
            if model.cursor == name:
                return True
            target = model.index_of(name)
            if target is None:
                return False
            delta = target - model.cursor_index
            if delta:
                key = "down" if delta > 0 else "up"
                await self.press(*([key] * min(abs(delta), 60)))
        return model.cursor == name

    def failed_rows(self) -> list[str]:
        rows = self.app.poller.rows
        return [n for n, r in rows.items() if r.status is Status.FAILED and r.problem]

    # ---- gestures -----------------------------------------------------------------

    async def g_restart(self) -> None:
        """Cursor to a FAILED row, r, wait past the guard, y; refusals count too."""
        if self.control is not None:
            injected = await asyncio.to_thread(self.control.fail_one)
            self.done["failed_injected" if injected else "nothing_to_inject"] += 1
        candidates = self.failed_rows()
        engine = self.app.engine
        allowed = [n for n in candidates if engine.verdict(n, "restart").allowed]
        pool = allowed or candidates
        if not pool:
            self.done["restart_no_target"] += 1
            return
        name = self.rng.choice(sorted(pool))
        model = self.app.model
        if model.filter_text:
            await self.press("escape")
        if not model.problems_only:
            await self.press("f")  # problems only: the FAILED row is a few arrows away
        try:
            if not await self.move_to(name):
                self.done["restart_cursor_missed"] += 1
                return
            await self.press("r")
            if await self.wait_for(lambda: isinstance(self.app.screen, ConfirmScreen), 2.0):
                await asyncio.sleep(HUMAN_PAUSE)
                await self.press("y")
                closed = await self.wait_for(lambda: self.app.screen is self.app.main, 2.0)
                self.done["restart_confirmed" if closed else "restart_dialog_stuck"] += 1
            else:
                self.done["restart_refused"] += 1
        finally:
            await self.to_grid()
            if model.problems_only:
                await self.press("f")

    async def g_reconnect_cancel(self) -> None:
        """c on the selected row, wait past the guard, n: nothing is sent."""
        await self.press("c")
        if await self.wait_for(lambda: isinstance(self.app.screen, ConfirmScreen), 2.0):
            await asyncio.sleep(HUMAN_PAUSE)
            await self.press("n")
            self.done["reconnect_cancelled"] += 1
        else:
            self.done["reconnect_refused"] += 1

    async def g_problems(self) -> None:
        await self.press("f")
        await asyncio.sleep(1.0)
        await self.press("down", "down", "up")
        await self.press("f")

    async def g_sort(self) -> None:
        await self.press("s")
        await asyncio.sleep(1.0)
        await self.press("pagedown", "pageup")

    async def g_filter(self) -> None:
        provider = self.rng.choice(("waha", "wawp", "evolution", "ryze", "wasend", "hyper"))
        await self.press("slash", *provider, "enter")
        await asyncio.sleep(1.0)
        await self.press("escape")  # clears the filter

    async def g_log(self) -> None:
        await self.press("l")
        await asyncio.sleep(1.5)
        await self.press("escape")  # closes the event log

    async def g_detail(self) -> None:
        steps = self.rng.randint(0, 12)
        await self.press("home", *(["down"] * steps), "enter")
        await asyncio.sleep(2.0)  # the detail view redraws on the tick
        await self.press("escape")

    async def g_help(self) -> None:
        await self.press("question_mark")
        await asyncio.sleep(0.5)
        await self.press("escape")

    async def g_poll_now(self) -> None:
        await self.press("u")
