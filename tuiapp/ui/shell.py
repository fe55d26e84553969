"""``Shell``: the app as its parts see it.

``FleetApp`` (ui/app.py) builds its parts (the engine bridge, the action and pairing
flows, the fleet view, the fleet screen, the palette commands) and hands each one
itself, typed as this protocol. The parts import this module, never the app, so the
modules of ``tuiapp.ui`` import one another one way only: the app on top, the screens
and flows below it, this protocol and the messages under them. (An import-linter
contract keeps it so.)

The protocol lists what the parts may use: the engine objects, the view's model, the
few app methods they call, and the part of Textual's ``App`` they reach.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Coroutine
from typing import Any, Protocol, runtime_checkable

from textual.message import Message
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker
from textual.worker_manager import WorkerManager

from tuiapp.clock import Clock
from tuiapp.config import FleetConfig
from tuiapp.engine_api import EngineApi, PollerApi, RuntimeApi, StateApi
from tuiapp.events import BulkProgressed
from tuiapp.ui.event_log import LogEntry
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.present import CellStyle, NoteBook

__all__ = ["Shell"]


@runtime_checkable
class Shell(Protocol):
    """What ``FleetApp`` offers the parts it builds (see the module docstring)."""

    # ---- what it runs on
    fleet: FleetConfig
    backend: RuntimeApi
    poller: PollerApi
    engine: EngineApi
    state: StateApi
    clock: Clock
    operator: str
    read_only: bool
    demo: bool
    demo_scan: Callable[[str], Any] | None  # the demo's simulated phone (pairing screen)

    # ---- what the view shows
    model: GridModel
    notes: NoteBook

    @property
    def bulk_running(self) -> bool: ...

    @property
    def bulk(self) -> BulkProgressed | None: ...

    def refresh_view(
        self, *, rows: Collection[str] | None = None, detail: bool = False
    ) -> None: ...

    def row_changed(self, name: str) -> None: ...

    def log_entries(self, entries: list[LogEntry]) -> None: ...

    def offered_actions(self, name: str) -> frozenset[str]: ...

    def grid_cells(self, name: str, now: float) -> tuple[dict[str, CellStyle], bool]: ...

    def open_filter(self) -> None: ...

    def open_log(self) -> None: ...

    def action_help(self) -> None: ...

    def jump_to(self, name: str) -> None: ...

    async def action_quit(self) -> None: ...

    # ---- Textual's App, as far as the parts reach it
    @property
    def workers(self) -> WorkerManager: ...

    @property
    def screen_stack(self) -> list[Screen[Any]]: ...

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None: ...

    def bell(self) -> None: ...

    def post_message(self, message: Message) -> bool: ...

    def push_screen(
        self, screen: Screen[Any], callback: Callable[[Any], None] | None = None
    ) -> Any: ...

    def run_worker(
        self,
        work: Coroutine[Any, Any, Any],
        name: str | None = "",
        group: str = "default",
        *,
        exit_on_error: bool = True,
    ) -> Worker[Any]: ...
