"""The pairing flow: P from any screen to the pairing screen, or a toast saying why not.

    PairRequested(name)
        -> read-only, or the row is not SCAN_QR_CODE: refused at once, nothing sent
        -> a worker in the "pairing" group: the session's guards and its first QR
        -> refused (guards, budget, no QR): a toast; else the pairing screen

Everything the provider is asked goes through ``PairingSession`` (guards, budgets,
audit). While the screen is open, ``follow`` hands it each row update and each tick
(its countdown, the QR rotation, the paired check).
"""

from __future__ import annotations

from collections.abc import Collection

from tuiapp.model import Status
from tuiapp.pairing import PairingSession
from tuiapp.runtime import Runtime
from tuiapp.ui.pairing_screen import PairingScreen
from tuiapp.ui.shell import Shell
from tuiapp.vocabulary import Outcome

__all__ = ["PairingFlow"]


class PairingFlow:
    """Opening the pairing screen, and keeping it told, for one app (``Shell``)."""

    def __init__(self, app: Shell) -> None:
        self.app = app

    def request(self, name: str) -> None:
        """P: refused at once (a toast, nothing sent) unless the row waits for a QR scan;
        else the session's guards and first QR in a worker, then the pairing screen."""
        app = self.app
        row = app.poller.rows.get(name)
        if app.read_only:
            app.notify(
                "Read-only mode: pairing is an action; nothing sent.",
                severity="warning",
                markup=False,
            )
            return
        if row is None:
            return
        if app.backend.remote:
            app.notify(
                "Pairing goes to the provider directly: not through a hub (yet). Run "
                f"tuiapp pair {name} where the config is; nothing sent.",
                severity="warning",
                markup=False,
            )
            return
        if row.status is not Status.SCAN_QR_CODE:
            app.notify(
                f"Not paired: {name} is {row.status.value}, not SCAN_QR_CODE (only an "
                "instance waiting for a QR scan is paired); nothing sent.",
                severity="warning",
                markup=False,
            )
            return
        if self.screen() is not None:
            return
        app.run_worker(self.open(name), group="pairing", exit_on_error=False)

    async def open(self, name: str) -> None:
        """The session's first answer: the pairing screen, or a toast saying why not."""
        app = self.app
        backend = app.backend
        assert isinstance(backend, Runtime)  # request() turned a hub's runtime away
        session = PairingSession.from_runtime(backend, app.fleet, name, operator=app.operator)
        first = await session.open()
        if session.outcome is Outcome.REFUSED or not first.shown:
            await session.finish(Outcome.REFUSED)  # no-op when already refused
            app.notify(f"Not paired: {first.message}", severity="warning", markup=False)
            return
        row = app.poller.rows[name]
        app.push_screen(
            PairingScreen(
                session,
                first,
                account=row.instance.account,
                provider=row.account.provider,
                clock=app.clock,
                demo_scan=app.demo_scan if app.demo else None,
            )
        )

    def screen(self) -> PairingScreen | None:
        """The open pairing screen (on top, or under help or the palette), if any."""
        for screen in self.app.screen_stack:
            if isinstance(screen, PairingScreen):
                return screen
        return None

    def follow(self, names: Collection[str] | None = None) -> None:
        """Tell the open pairing screen its row's news (``names`` None: the tick)."""
        screen = self.screen()
        if screen is not None and (names is None or screen.instance_name in names):
            row = self.app.poller.rows.get(screen.instance_name)
            screen.tick(row is not None and row.status is Status.WORKING)
