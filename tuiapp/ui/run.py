"""Running the TUI: ``run_tui`` builds the app, freezes what lives as long as it, and
runs it under the terminal-loss guard (tuiapp.ui.terminal_watch)."""

from __future__ import annotations

import gc
import time

import httpx

from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.engine_api import RuntimeApi
from tuiapp.ui import terminal_watch
from tuiapp.ui.app import FleetApp
from tuiapp.ui.pairing_screen import ScanFn

__all__ = ["freeze_long_lived_objects", "run_tui"]


def freeze_long_lived_objects() -> None:
    """Move what exists now (config, rows, adapters) out of the cyclic GC's sight.

    With 10,000 rows a full (generation 2) collection took up to 74 ms here, a
    visible stall on a keypress; the rows live as long as the app, so there is
    nothing for the collector to find in them.
    """
    gc.collect()
    gc.freeze()


def run_tui(
    fleet: FleetConfig,
    *,
    demo: bool = False,
    read_only: bool = False,
    problems_only: bool = False,
    transport: httpx.AsyncBaseTransport | None = None,
    operator: str | None = None,
    demo_scan: ScanFn | None = None,
    backend: RuntimeApi | None = None,
    clock: Clock = time.time,
) -> int:
    """Run the TUI until the operator quits; returns the exit code. ``backend``: a hub's
    runtime (``tuiapp --server URL``) with its ``clock`` instead of the local engine."""
    app = FleetApp(
        fleet,
        backend=backend,
        clock=clock,
        transport=transport,
        demo=demo,
        read_only=read_only,
        problems_only=problems_only,
        operator=operator,
        demo_scan=demo_scan,
    )
    app.freeze_gc = True
    freeze_long_lived_objects()
    with terminal_watch.guard(  # terminal loss: quit, never spin
        app, last_words=lambda: terminal_watch.cancel_workers(app, "actions", 0.5)
    ):
        result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
