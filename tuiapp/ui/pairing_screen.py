"""The pairing screen (P on a SCAN_QR_CODE row): the login QR, or a phone-number code.

The QR is drawn with half blocks (``tuiapp.qr``: two modules per cell, quiet zone
included), dark on light whatever the theme: with colour the QR widget is black on
white; under NO_COLOR its glyphs draw the *light* modules (``ink="light"``) so that a
dark terminal still shows dark-on-light (the rule of ``tuiapp pair``). The app's
one-second tick calls ``tick``: the countdown to the provider's next QR, the refresh
when it rotates, and (when the poller sees WORKING) the check that closes the screen
with "paired". Everything goes through ``PairingSession`` (guards, budgets, audit).

The QR value and the code are credentials: they are drawn here for the person holding
the phone and go nowhere else (no toast, no log, no event log).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from tuiapp.durations import countdown_text
from tuiapp.model import ActionOutcome
from tuiapp.pair_cli import qr_lines
from tuiapp.pairing import PairingSession, valid_phone
from tuiapp.providers.pairing import Pairing
from tuiapp.qr import Ink, QrText
from tuiapp.ui.footer import FleetFooter
from tuiapp.vocabulary import Outcome

__all__ = ["CHROME_ROWS", "QR_STYLE", "PairingScreen", "QrView"]

QR_STYLE = Style(color="#000000", bgcolor="#ffffff")  # dark on light, whatever the theme
CHROME_ROWS = 4  # title, instance line, countdown line, footer
ScanFn = Callable[[str], Any]


class QrView(Static):
    """The half-block QR; explicitly black on white (or plain under NO_COLOR)."""

    DEFAULT_CSS = """
    QrView { width: auto; height: auto; padding: 0; margin: 0; }
    """

    def show(self, drawing: QrText | None, *, colour: bool) -> None:
        if drawing is None:
            self.update("")
            return
        text = Text("\n".join(drawing.lines), no_wrap=True, end="")
        if colour:
            text.stylize(QR_STYLE)
        self.update(text)

    @property
    def lines(self) -> list[str]:
        """The QR as drawn on screen now, one string per terminal row."""
        return [self.render_line(y).text for y in range(self.size.height)]


class PairingScreen(Screen[None]):
    """One instance's login QR (or pairing code) until it is paired or closed."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape", "close", "Close", id="pairing.close", tooltip="Close (cancels the pairing)"
        ),
        Binding(
            "c",
            "code",
            "Pairing code",
            id="pairing.code",
            tooltip="Ask for a phone-number pairing code instead of the QR",
        ),
        Binding(
            "s",
            "scan",
            "Scan (demo)",
            id="pairing.scan",
            tooltip="Demo only: the simulated phone scans the QR",
        ),
    ]
    AUTO_FOCUS = ""  # the phone box (hidden until c) must not take the keys
    DEFAULT_CSS = """
    PairingScreen { align: center top; }
    PairingScreen #pairing-body { width: 100%; height: auto; }
    PairingScreen .pairing-line { width: 100%; height: auto; }
    PairingScreen #pairing-phone { width: 60; }
    """

    def __init__(
        self,
        session: PairingSession,
        first: Pairing,
        *,
        account: str,
        provider: str,
        clock: Callable[[], float],
        demo_scan: ScanFn | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.instance_name = session.name
        self.account = account
        self.provider = provider
        self.clock = clock
        self.demo_scan = demo_scan
        self.pairing = first
        self.phone: str | None = None
        self.problem = ""  # the last refusal / error, shown under the QR
        self.closing = False
        self.status_text = ""
        self._busy = False

    # ---- layout ---------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        with Vertical(id="pairing-body"):
            yield Static(id="pairing-title", classes="pairing-line")
            yield Static(id="pairing-info", classes="pairing-line")
            yield QrView(id="pairing-qr")
            yield Static(id="pairing-status", classes="pairing-line")
            yield Input(placeholder="+5511999999999", id="pairing-phone")
        yield FleetFooter()

    def on_mount(self) -> None:
        self.query_one("#pairing-phone", Input).display = False
        self.show()

    def on_resize(self) -> None:
        self.show()

    @property
    def colour(self) -> bool:
        return not self.app.no_color

    @property
    def ink(self) -> Ink:
        return "dark" if self.colour else "light"

    @property
    def phone_box(self) -> Input:
        return self.query_one("#pairing-phone", Input)

    @property
    def qr(self) -> QrView:
        return self.query_one("#pairing-qr", QrView)

    def too_small(self, drawing: QrText) -> str | None:
        """What to say when the QR does not fit the screen, else None."""
        cols, rows = drawing.size
        width, height = self.app.size
        if cols <= width and rows + CHROME_ROWS <= height:
            return None
        return (
            f"The terminal is too small for the QR: it needs {cols}x{rows + CHROME_ROWS} "
            f"cells ({width}x{height} now). Enlarge the window, or press c for a "
            "pairing code."
        )

    def show(self) -> None:
        """Draw the instance, the QR (or the code) and the countdown from the state now."""
        if not self.is_mounted:
            return
        pairing = self.pairing
        self.query_one("#pairing-title", Static).update(
            Text(f"Pair {self.instance_name}", style="bold")
        )
        number = self.phone or "not known yet (set when a pairing code is asked for)"
        self.query_one("#pairing-info", Static).update(
            Text(
                f"instance {self.instance_name} · account {self.account} ({self.provider})"
                f" · number {number}"
            )
        )
        status = Text()
        drawing = qr_lines(pairing, ink=self.ink) if pairing.code is None else None
        if pairing.code is not None:
            self.qr.show(None, colour=self.colour)
            self.qr.display = False
            status.append("On the phone: WhatsApp > Linked devices > Link with phone number\n")
            status.append("enter this code: ")
            status.append(pairing.code.reveal(), style="bold")
        elif drawing is not None and (message := self.too_small(drawing)) is not None:
            self.qr.show(None, colour=self.colour)
            self.qr.display = False
            status.append(f"{message} ")
        elif drawing is not None:
            self.qr.display = True
            self.qr.show(drawing, colour=self.colour)
            status.append("Scan with WhatsApp > Linked devices > Link a device. ")
        else:
            self.qr.display = False
            status.append("The provider sent no QR that can be drawn here; press c for a code. ")
        if pairing.code is None:
            due = self.session.next_refresh_at
            if due is not None:
                status.append(f"New QR in {countdown_text(max(0.0, due - self.clock()))}.")
        if self.problem:
            status.append(f"\n{self.problem}", style="bold")
        self.status_text = status.plain  # what the status line shows (tests read it)
        self.query_one("#pairing-status", Static).update(status)

    # ---- the tick -------------------------------------------------------------------

    def tick(self, row_working: bool) -> None:
        """Once a second (the app's tick): the countdown, the rotation, the paired check."""
        if self.closing or self.session.outcome is not None:
            return
        if row_working:
            self._run(self._check_paired())
        elif self.session.refresh_due():
            self._run(self._refresh())
        self.show()

    def _run(self, work: Any) -> None:
        if self._busy:
            work.close()
            return
        self._busy = True

        async def wrapped() -> None:
            try:
                await work
            finally:
                self._busy = False

        self.run_worker(wrapped(), group="pairing", exit_on_error=False)

    async def _refresh(self) -> None:
        fresh = await self.session.refresh()
        self._take(fresh)

    def _take(self, fresh: Pairing) -> None:
        if fresh.shown:
            self.pairing = fresh
            self.problem = ""
        elif fresh.outcome is ActionOutcome.RATE_LIMITED:
            self.problem = "The provider's QR budget is spent: a new QR as soon as it allows."
        else:
            self.problem = fresh.message
        self.show()

    async def _check_paired(self) -> None:
        if await self.session.check_paired():
            self.closing = True
            self.app.notify(f"{self.instance_name} paired: WORKING.", markup=False)
            if self.app.screen is self:
                self.dismiss(None)
            elif self in self.app.screen_stack:  # help or the palette on top: leave with it
                self.app.call_later(self._drop)

    async def _drop(self) -> None:
        while self in self.app.screen_stack:
            await self.app.pop_screen()

    # ---- keys -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "scan":
            return self.demo_scan is not None
        return True

    async def on_unmount(self) -> None:
        """Closed any other way (a palette jump, the app quitting): still one audit line."""
        await self.session.finish(Outcome.CANCELLED, "the pairing screen was closed")

    async def action_close(self) -> None:
        self.closing = True
        await self.session.finish(Outcome.CANCELLED, "closed by the operator")
        self.dismiss(None)

    def action_code(self) -> None:
        box = self.phone_box
        box.display = True
        box.value = self.phone or ""
        self.problem = "Phone number for a pairing code (E.164: + and 8 to 15 digits), enter."
        self.show()
        self.set_focus(box, scroll_visible=False)

    @on(Input.Submitted, "#pairing-phone")
    async def _phone_submitted(self, event: Input.Submitted) -> None:
        phone = event.value.strip()
        if not valid_phone(phone):
            self.problem = "Not an E.164 number: + then 8 to 15 digits (e.g. +5511999999999)."
            self.show()
            return
        event.input.display = False
        self.set_focus(None)
        self.phone = phone
        self.problem = "Asking the provider for a pairing code..."
        self.show()
        self._run(self._request_code(phone))

    async def _request_code(self, phone: str) -> None:
        self._take(await self.session.request_code(phone))

    async def action_scan(self) -> None:
        """Demo: the simulated phone scans what is on screen, then one fresh read."""
        if self.demo_scan is None:
            return
        try:
            result = self.demo_scan(self.instance_name)
            if inspect.isawaitable(result):
                await result
        except Exception as error:  # the simulator says why (nothing handed out, rotated)
            self.problem = f"The demo phone could not scan: {type(error).__name__}"
            self.show()
            return
        self._run(self._check_paired())
