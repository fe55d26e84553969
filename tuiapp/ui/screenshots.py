"""Screenshots of the real app for the README: ``python -m tuiapp.ui.screenshots [--out DIR]``.

Runs ``FleetApp`` headless (``App.run_test``) against the in-process simulator
(``incident`` scenario, fixed seed) on a ``ManualClock`` that only this script moves,
and saves SVGs: the incident grid, the detail view, the confirmation dialog, a
cooldown in progress, the help screen, the grid under NO_COLOR, and the pairing screen
(with ``FAKE_QR``, never a value the simulator served).

Byte-identical on every run (tests/ui/test_screenshots.py compares a fresh run with
the checked-in files): nothing waits for real time. The simulator's seeded latency
model still picks each answer's latency, but instead of sleeping it adds that latency
to the request's own virtual ``perf_counter`` (``VirtualLatency``), which is what the
provider layer reads to measure it; answers therefore arrive in the same order on
every run, and LATENCY and CHECKED come out the same. Toasts stay until the shot.
The monitor settings are the demo's (``tuiapp demo`` polls every 5 s), clock times UTC.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import contextvars
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from tuiapp.clock import ManualClock
from tuiapp.runtime import Backend, build_backend
from tuiapp.ui.app import FleetApp

__all__ = ["SHOTS", "VirtualLatency", "main", "take_screenshots"]

SHOTS = (
    "incident-grid.svg",
    "detail-view.svg",
    "confirm-dialog.svg",
    "cooldown.svg",
    "help-screen.svg",
    "grid-no-color.svg",
    "pairing-screen.svg",
)
# A fixed, fake login QR for the pairing screenshot: never a served one (a QR is a credential).
FAKE_QR = "2@tuiapp-screenshot-FAKE-login-qr-not-a-real-session," + "A" * 44 + ",demo"
START = 1_767_258_000.0  # 2026-01-01T09:00:00Z
SIM_URL = "http://simulator.local"
SIZE = (110, 34)
TOAST_SECONDS = 3600.0  # a toast on screen stays for the shot, however slow the machine


class VirtualLatency:
    """Simulated latency without waiting: see the module docstring.

    Each asyncio task (one request) gets its own elapsed-time cell on its first
    ``perf_counter`` call; the simulator's answer task, started from the request's
    task, inherits the cell and adds the latency it picked to it.
    """

    _cell: contextvars.ContextVar[list[float]] = contextvars.ContextVar("tuiapp_shot_perf")

    def perf_counter(self) -> float:
        try:
            cell = self._cell.get()
        except LookupError:
            cell = [0.0]
            self._cell.set(cell)
        return cell[0]

    def latency(self, pick: Callable[[float, float], float]) -> Callable[[float, float], float]:
        """The simulator's ``latency`` method, accounted instead of slept."""

        def accounted(base_ms: float, jitter_ms: float) -> float:
            seconds = pick(base_ms, jitter_ms)
            with contextlib.suppress(LookupError):
                self._cell.get()[0] += seconds
            return 0.0

        return accounted

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """The provider layer's clock (``tuiapp.providers.http.time``) reads this one."""
        from tuiapp.providers import http

        real = http.time
        http.time = SimpleNamespace(perf_counter=self.perf_counter)  # type: ignore[assignment]
        try:
            yield
        finally:
            http.time = real


class Session:
    """One app on one simulator; helpers to move time and wait without sleeping."""

    def __init__(
        self,
        seed: int,
        instances: int,
        state_dir: Path,
        *,
        no_color: bool,
        virtual: VirtualLatency,
    ) -> None:
        from tuiapp.config import config_from_dict
        from tuiapp.simulator import SimTransport, build_fleet, create_app

        self.clock = ManualClock(START)
        sim_fleet = build_fleet(instances=instances, seed=seed, scenario="incident")
        asgi = create_app(sim_fleet, self.clock, boot_seconds=8, latency=True)
        self.sim = asgi.state.sim
        self.sim.latency = virtual.latency(self.sim.latency)
        data, environ = sim_fleet.to_config(SIM_URL)
        data["monitor"] = {**data["monitor"], "stabilize": 60}  # a countdown long enough to see
        fleet = config_from_dict(data, environ={**os.environ, **environ})
        backend: Backend = build_backend(
            fleet,
            transport=SimTransport(asgi),
            clock=self.clock,
            sleep=self.clock.sleep,
            operator="alice",
            state_dir_override=state_dir,
            rng=random.Random(seed),
        )
        saved = os.environ.pop("NO_COLOR", None)
        if no_color:
            os.environ["NO_COLOR"] = "1"
        try:
            self.app = FleetApp(
                fleet,
                clock=self.clock,
                demo=True,
                operator="alice",
                backend=backend,
                tick_seconds=None,
            )
        finally:
            os.environ.pop("NO_COLOR", None)
            if saved is not None:
                os.environ["NO_COLOR"] = saved
        notify = self.app.notify

        def lasting(*args: Any, **kwargs: Any) -> None:
            notify(*args, **{**kwargs, "timeout": TOAST_SECONDS})

        self.app.notify = lasting  # type: ignore[method-assign]

    async def until(self, pilot: Any, condition: Callable[[], bool], rounds: int = 20000) -> None:
        for _ in range(rounds):
            if condition():
                break
            await asyncio.sleep(0)
        await pilot.pause()

    async def advance(self, pilot: Any, seconds: float, step: float = 1.0) -> None:
        """Move time; in-flight reads (real simulator latency) finish before each step."""
        left = seconds
        while left > 0:
            await self.until(pilot, self.reads_done)
            self.clock.advance(min(step, left))
            left -= step
            for _ in range(50):
                await asyncio.sleep(0)
        await self.until(pilot, self.reads_done)
        self.app.tick()
        await pilot.pause()

    def reads_done(self) -> bool:
        """No poll in flight (reads take real time: the simulator's latency model)."""
        return not getattr(self.app.poller, "_jobs", None)

    def pick_restartable(self) -> str:
        """A FAILED row the engine would restart now (prefer Hypersender)."""
        rows = self.app.poller.rows
        candidates = sorted(
            (name for name, row in rows.items() if row.status.value == "FAILED"),
            key=lambda n: (rows[n].account.provider != "hypersender", n),
        )
        for name in candidates:
            offered = "restart" in rows[name].account.info.actions
            if offered and self.app.engine.verdict(name, "restart").allowed:
                return name
        raise LookupError("no restartable FAILED row")


@contextlib.contextmanager
def fixed_environment() -> Iterator[None]:
    """Clock times in UTC (the same on every machine), help without the debug ids."""
    saved = {key: os.environ.get(key) for key in ("TZ", "TUIAPP_DEBUG")}
    os.environ["TZ"] = "UTC"
    os.environ.pop("TUIAPP_DEBUG", None)
    time.tzset()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        time.tzset()


async def take_screenshots(out: Path, *, seed: int = 7, instances: int = 40) -> list[Path]:
    """Write the SVGs of SHOTS into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(app: FleetApp, filename: str) -> None:
        svg = app.export_screenshot(title="tuiapp demo")
        path = out / filename
        path.write_text(svg, encoding="utf-8")
        written.append(path)

    virtual = VirtualLatency()
    with (
        tempfile.TemporaryDirectory(prefix="tuiapp-shots-") as tmp,
        virtual.installed(),
        fixed_environment(),
    ):
        session = Session(seed, instances, Path(tmp) / "state", no_color=False, virtual=virtual)
        app = session.app
        async with app.run_test(size=SIZE) as pilot:
            await session.until(
                pilot, lambda: all(r.last_polled_at for r in app.poller.rows.values())
            )
            await session.advance(pilot, 45, step=5)  # a few polls: confirmed, ages on screen
            save(app, "incident-grid.svg")

            name = session.pick_restartable()
            app.jump_to(name)
            await pilot.press("enter")
            await pilot.pause()
            save(app, "detail-view.svg")
            await pilot.press("escape")

            await pilot.press("r")
            await pilot.pause()
            save(app, "confirm-dialog.svg")
            session.clock.advance(1)
            await pilot.press("y")
            await session.until(pilot, lambda: name in app.engine.in_flight)
            for _ in range(12):
                if name not in app.engine.in_flight:
                    break
                await session.advance(pilot, 5, step=5)
            await session.advance(pilot, 3)
            app.main.event_log.display = True
            await pilot.pause()
            save(app, "cooldown.svg")
            app.main.event_log.display = False

            await pilot.press("question_mark")
            await pilot.pause()
            save(app, "help-screen.svg")
            await pilot.press("escape")

        session = Session(seed, instances, Path(tmp) / "state-nc", no_color=True, virtual=virtual)
        app = session.app
        async with app.run_test(size=SIZE) as pilot:
            await session.until(
                pilot, lambda: all(r.last_polled_at for r in app.poller.rows.values())
            )
            await session.advance(pilot, 45, step=5)
            save(app, "grid-no-color.svg")

        session = Session(
            seed, instances, Path(tmp) / "state-pair", no_color=False, virtual=virtual
        )
        app = session.app
        async with app.run_test(size=(110, 44)) as pilot:
            await session.until(
                pilot, lambda: all(r.last_polled_at for r in app.poller.rows.values())
            )
            await session.advance(pilot, 15, step=5)
            app.push_screen(pairing_screen(app, session))
            await pilot.pause()
            save(app, "pairing-screen.svg")
    return written


def pairing_screen(app: FleetApp, session: Session) -> Any:
    """The pairing screen of the first SCAN_QR_CODE row, showing ``FAKE_QR`` (nothing is
    fetched: the screenshot is taken before any tick could refresh it)."""
    from tuiapp.model import ActionOutcome, Status
    from tuiapp.pairing import PairingSession
    from tuiapp.providers.pairing import Pairing
    from tuiapp.secrets import Secret
    from tuiapp.ui.pairing_screen import PairingScreen

    rows = app.poller.rows
    name = sorted(n for n, row in rows.items() if row.status is Status.SCAN_QR_CODE)[0]
    row = rows[name]
    pairing = PairingSession.from_runtime(app.backend, app.fleet, name, operator="alice")
    now = session.clock()
    pairing.next_refresh_at = now + 17
    fake = Pairing(ActionOutcome.ACCEPTED, qr=Secret(FAKE_QR), expires_at=now + 17)
    return PairingScreen(
        pairing,
        fake,
        account=row.instance.account,
        provider=row.account.provider,
        clock=session.clock,
        demo_scan=lambda _name: None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tuiapp.ui.screenshots",
        description="Save SVG screenshots of the TUI running against the simulator.",
    )
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="output directory")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--instances", type=int, default=40)
    args = parser.parse_args(argv)
    paths = asyncio.run(take_screenshots(args.out, seed=args.seed, instances=args.instances))
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
