"""``tuiapp pair NAME [--code PHONE]``: show an instance's login QR (or pairing code) in the
terminal and wait until the phone has scanned it.

    0   the instance is WORKING (paired)
    2   refused (read-only, not SCAN_QR_CODE, no pairing at the provider, a bad number)
        or timed out before anyone scanned

The QR is drawn with half blocks (tuiapp.qr), dark on light: with colour, black on white
cells whatever the terminal's theme; under NO_COLOR the glyphs draw the light modules so
that a terminal with a dark background still shows dark-on-light (``light_background``
says otherwise). It is redrawn when the provider rotates it. The QR value and the code
are credentials: they are printed for the person holding the phone, and nowhere else.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TextIO

import httpx

from tuiapp.audit import current_operator
from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.model import ActionOutcome
from tuiapp.pairing import PairingSession
from tuiapp.providers.pairing import Pairing
from tuiapp.qr import Ink, QrText, matrix_from_image, render, render_matrix, with_quiet_zone
from tuiapp.vocabulary import Outcome

__all__ = ["EXIT_PAIRED", "EXIT_REFUSED", "EXIT_TIMEOUT", "pair_main", "run_pair"]

EXIT_PAIRED = 0
EXIT_REFUSED = 2
EXIT_TIMEOUT = 2
CHECK_EVERY = 3.0  # seconds between status reads while waiting for the scan
_SGR_QR = "\x1b[30;107m"  # black on bright white
_SGR_RESET = "\x1b[0m"


def run_pair(
    fleet: FleetConfig,
    name: str,
    *,
    phone: str | None = None,
    timeout: float = 300.0,
    operator: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    state_dir: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    light_background: bool = False,
) -> int:
    """Run ``tuiapp pair`` and return its exit code (see the module docstring)."""
    try:
        return asyncio.run(
            pair_main(
                fleet,
                name,
                phone=phone,
                timeout=timeout,
                operator=operator,
                out=out,
                err=err,
                transport=transport,
                clock=clock,
                sleep=sleep,
                state_dir=state_dir,
                environ=environ,
                light_background=light_background,
            )
        )
    except KeyboardInterrupt:
        print(f"tuiapp pair {name}: interrupted", file=err)
        return EXIT_REFUSED


async def pair_main(
    fleet: FleetConfig,
    name: str,
    *,
    phone: str | None = None,
    timeout: float = 300.0,
    operator: str | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
    transport: httpx.AsyncBaseTransport | None = None,
    clock: Clock = time.time,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    state_dir: Path | None = None,
    environ: Mapping[str, str] = os.environ,
    light_background: bool = False,
    check_every: float = CHECK_EVERY,
) -> int:
    """``run_pair`` inside a running loop (tests drive it with a fake clock and sleep)."""
    from tuiapp.runtime import open_runtime  # the engine, built only when a pairing runs

    prog = f"tuiapp pair {name}"
    who = current_operator(operator, environ)
    colour = "NO_COLOR" not in environ
    ink: Ink = "dark" if colour or light_background else "light"
    async with open_runtime(
        fleet,
        operator=who,
        transport=transport,
        clock=clock,
        sleep=sleep,
        state_dir=state_dir,
        environ=environ,
    ) as runtime:
        session = PairingSession.from_runtime(runtime, fleet, name, operator=who)
        pairing = await session.open(phone=phone)
        if session.outcome is Outcome.REFUSED or not pairing.shown:
            print(f"{prog}: refused: {pairing.message}", file=err)
            await session.finish(Outcome.REFUSED)  # no-op when already refused
            return EXIT_REFUSED
        _show(pairing, name, out, ink=ink, colour=colour, clock=clock)
        deadline = clock() + timeout
        try:
            while True:
                if await session.check_paired():
                    print(f"{name}: paired, WORKING", file=out)
                    return EXIT_PAIRED
                now = clock()
                if now >= deadline:
                    await session.finish(Outcome.TIMEOUT, f"not scanned within {timeout:g}s")
                    print(f"{prog}: timed out after {timeout:g}s without a scan", file=err)
                    return EXIT_TIMEOUT
                if session.refresh_due():
                    fresh = await session.refresh()
                    if fresh.shown:
                        _show(fresh, name, out, ink=ink, colour=colour, clock=clock)
                    elif fresh.outcome is not ActionOutcome.RATE_LIMITED:
                        print(f"{prog}: {fresh.message}", file=err)
                wait = min(check_every, max(0.0, deadline - now))
                if session.next_refresh_at is not None:
                    wait = min(wait, max(0.0, session.next_refresh_at - now))
                await sleep(max(wait, 0.01))
        except asyncio.CancelledError:
            await session.finish(Outcome.CANCELLED, "interrupted")
            raise


def qr_lines(pairing: Pairing, *, ink: Ink = "dark") -> QrText | None:
    """The half-block drawing of a pairing's QR: from its raw value, else from its image."""
    if pairing.qr is not None:
        return render(pairing.qr.reveal(), ink=ink)
    if pairing.image is not None:
        modules = matrix_from_image(pairing.image)
        if modules is not None:
            return render_matrix(with_quiet_zone(modules), ink=ink)
    return None


def _show(
    pairing: Pairing, name: str, out: TextIO, *, ink: Ink, colour: bool, clock: Clock
) -> None:
    if pairing.code is not None:
        print(
            f"{name}: on the phone, WhatsApp > Linked devices > Link with phone number,", file=out
        )
        print(f"enter this code: {pairing.code.reveal()}", file=out)
        return
    drawing = qr_lines(pairing, ink=ink)
    if drawing is None:
        print(
            f"{name}: the provider answered with an image only; install Pillow to draw it", file=out
        )
        return
    print(f"{name}: scan with WhatsApp > Linked devices > Link a device", file=out)
    for line in drawing.lines:
        print(f"{_SGR_QR}{line}{_SGR_RESET}" if colour else line, file=out)
    if pairing.expires_at is not None:
        left = max(0, round(pairing.expires_at - clock()))
        print(f"(a new QR in about {left}s; waiting for the scan)", file=out)
    out.flush()
