"""``FleetApp``: the app shell that builds the UI's parts and hands each message to one.

    fleet_screen.FleetScreen   widgets and bindings; keys deliver intents (ui/messages.py)
    bridge.EngineBridge        engine events -> messages -> what the view shows
    action_flow.ActionFlow     r / c: the engine's plan, reason, confirmation, the run
    pairing_flow.PairingFlow   P: the pairing session's first QR, the pairing screen
    fleet_view.FleetView       rows -> grid model; the header; the paint
    view_refresh.ViewRefresh   what changed during a message, painted once at its end
    worker_failures            a background worker that raised: logged, shown once
    shell.Shell                the app as those parts see it (they never import this)
    app.FleetApp (here)        lifecycle, signals, crash report, the one-second tick,
                               the message handlers (thin), palette, help and quit

Data flows one way. The poller and the engine run in named worker groups
(``exit_on_error=False``). Their events arrive through the bridge as Textual messages;
screens deliver intents the same way. Each handler (a method here, as Textual wants)
hands the message to its part, which changes the model (``GridModel``, ``NoteBook``,
the bridge's facts) and asks for ``refresh_view``: the grid, header, status line and
detail view are brought up to date once, right after the message, however many things
it changed. The UI never calls a provider itself: every read and action goes through
the engine.

One one-second timer (``tick``) drives every countdown and age on screen, reads the
shared state (other operators' actions and cooldowns), and repaints only cells
whose text changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import time
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from tuiapp import debuglog
from tuiapp.clock import Clock, Sleep
from tuiapp.config import FleetConfig
from tuiapp.engine_api import EngineApi, PollerApi, RuntimeApi, StateApi
from tuiapp.events import BulkProgressed
from tuiapp.runtime import Backend, build_backend
from tuiapp.secrets import redact
from tuiapp.ui import terminal_watch, textual_fixes, toasts
from tuiapp.ui.action_flow import ActionFlow
from tuiapp.ui.bridge import EngineBridge
from tuiapp.ui.commands import InstanceJumpProvider, fleet_commands
from tuiapp.ui.detail import DetailScreen
from tuiapp.ui.dialogs import QuitScreen
from tuiapp.ui.event_log import LogEntry
from tuiapp.ui.fleet_screen import FleetScreen
from tuiapp.ui.fleet_view import FleetView
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.help import HELP_NOTES, HelpScreen, bindings_of
from tuiapp.ui.keys import type_ahead
from tuiapp.ui.log_screen import LogScreen
from tuiapp.ui.messages import (
    ActionRequested,
    BulkAbortRequested,
    DetailRequested,
    EngineEventReceived,
    FilterChanged,
    PairRequested,
    PauseToggled,
    PollRequested,
    ProblemsToggled,
    RowsObserved,
    SortCycled,
    WorkFailed,
)
from tuiapp.ui.pairing_flow import PairingFlow
from tuiapp.ui.pairing_screen import PairingScreen, ScanFn
from tuiapp.ui.polling import Polling
from tuiapp.ui.present import CellStyle, NoteBook
from tuiapp.ui.view_refresh import ViewRefresh, refreshing
from tuiapp.ui.worker_failures import WorkerFailures, failure_of

__all__ = ["Backend", "FleetApp", "FleetScreen", "build_backend"]

log = logging.getLogger("tuiapp.ui")


class FleetApp(App[int]):
    """The live fleet monitor; see the module docstring."""

    CSS_PATH = "tuiapp.tcss"
    TITLE = "tuiapp"
    COMMANDS: ClassVar[set[Any]] = App.COMMANDS | {InstanceJumpProvider}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "ctrl+q",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="app.quit",
            tooltip="Quit (asks only while actions are in flight)",
        ),
        Binding(
            "ctrl+c",
            "quit",
            "Quit",
            show=False,
            priority=True,
            id="app.quit_ctrl_c",
            tooltip="Quit (asks only while actions are in flight)",
        ),
        Binding(
            "question_mark", "help", "Help", id="app.help", tooltip="Every binding of this screen"
        ),
    ]

    def __init__(
        self,
        fleet: FleetConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = time.time,
        demo: bool = False,
        read_only: bool = False,
        problems_only: bool = False,
        operator: str | None = None,
        state_dir_override: Path | None = None,
        sleep: Sleep = asyncio.sleep,
        backend: RuntimeApi | None = None,
        tick_seconds: float | None = 1.0,
        demo_scan: ScanFn | None = None,
    ) -> None:
        """``sleep`` goes to the poller and the engine (tests pass a fake-time one);
        ``backend`` replaces the engine objects (the benchmark feeds synthetic rows);
        ``tick_seconds=None`` leaves the one-second tick to the caller (tests call
        ``tick()`` after moving their fake clock); ``demo_scan(name)`` is the demo's
        simulated phone (the pairing screen's s key), None outside a demo."""
        textual_fixes.apply()  # idempotent: two Textual 8.2.8 leaks, see textual_fixes
        toasts.install()  # idempotent: short toasts, the newest first in the rack
        super().__init__()
        self.driver_class = textual_fixes.fixed_driver(self.driver_class)  # no EOF busy loop
        from tuiapp.audit import current_operator

        if read_only and not fleet.monitor.read_only:
            fleet = fleet.with_read_only(True)
        self.fleet = fleet
        self.read_only = fleet.monitor.read_only
        self.demo = demo
        self.demo_scan = demo_scan
        self.clock = clock
        self.operator = current_operator(operator)
        self.backend: RuntimeApi = backend or build_backend(
            fleet,
            transport=transport,
            clock=clock,
            sleep=sleep,
            operator=self.operator,
            state_dir_override=state_dir_override,
        )
        self.poller: PollerApi = self.backend.poller
        self.engine: EngineApi = self.backend.engine
        self.state: StateApi = self.backend.state
        self.model = GridModel(problems_only=problems_only)
        self.notes = NoteBook(operator=self.operator)
        self.actions = ActionFlow(self)
        self.bridge = EngineBridge(self, on_bulk=self.actions.bulk_progressed)
        self.pairing = PairingFlow(self)
        self.polling = Polling(self, self.bridge)
        self.fleet_view = FleetView(self, self.bridge, self.polling)
        self.failures = WorkerFailures(self, actions=self.actions, polling=self.polling)
        self.view = ViewRefresh(self.fleet_view.paint, self.call_next)  # see refresh_view
        self._main: FleetScreen | None = None
        self._started = False
        self._tick_seconds = tick_seconds
        self.freeze_gc = False  # run_tui: freeze what start() built (see freeze_long_lived_objects)

    # ---- lifecycle ---------------------------------------------------------------------

    def get_default_screen(self) -> Screen[Any]:
        self._main = FleetScreen(self)
        return self._main

    @property
    def main(self) -> FleetScreen:
        assert self._main is not None
        return self._main

    @property
    def grid(self) -> FleetGrid:
        return self.main.grid

    @property
    def bulk_running(self) -> bool:
        return self.actions.bulk_running

    @property
    def bulk(self) -> BulkProgressed | None:
        """The latest progress of the running bulk action."""
        return self.actions.bulk

    def on_fleet_screen_ready(self, message: FleetScreen.Ready) -> None:
        self.start()

    def start(self) -> None:
        """Once the main screen is composed: subscribe, fill the grid, start the workers."""
        if self._started:
            return
        self._started = True
        self.poller.subscribe(self.bridge.receive)
        self.engine.subscribe(self.bridge.receive)
        self.fleet_view.show(self.main)  # the grid filled from every row, the header
        self.bridge.read_shared_state(force=True)
        # Off the loop: it waits for the state lock while another process holds it.
        self.run_worker(
            self.actions.recover_interrupted(), name="recover", group="startup", exit_on_error=False
        )
        terminal_watch.quit_on_signals(self.exit)
        if self.poller.rows:  # rows to draw: the first paint first, then the first answers
            # (answers that come at once, from a simulator or a gateway on the same host,
            # would hold the first frame back while they are folded in)
            self.main.call_after_refresh(self._start_poller)
        else:  # nothing to draw before the list answers (discovery): ask at once
            self._start_poller()
        if self._tick_seconds:
            self.set_interval(self._tick_seconds, self.tick, name="tick")
        if self.freeze_gc:
            gc.freeze()  # the grid model of every row, built just now, lives as long as we do

    def _start_poller(self) -> None:
        self.run_worker(self.poller.run(), name="poller", group="poller", exit_on_error=False)

    def _fatal_error(self) -> None:
        """Textual's crash report prints local variables (tokens among them): replace it.

        The traceback, frames only and redacted, goes to the debug log; the terminal
        gets one redacted line.
        """
        kind, error, _tb = sys.exc_info()
        log.critical("tuiapp crashed", exc_info=(kind, error, _tb) if error else None)
        text = redact(f"{kind.__name__}: {error}" if kind else "unknown error").splitlines()
        where = f" (details in {debuglog.debug_log_path()})"
        self.bell()
        self._exit_renderables.append(
            Text(f"tuiapp: internal error: {text[0] if text else 'unknown'}{where}")
        )
        self._close_messages_no_wait()

    async def on_unmount(self) -> None:
        """Stop polling; cancel actions in flight and wait for their `unknown` audit lines."""
        with contextlib.suppress(Exception):
            self.poller.stop()
        running = [w for w in self.workers if w.group == "actions" and not w.is_finished]
        for worker in running:
            worker.cancel()
        if running:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.workers.wait_for_complete(running), 5.0)
        await self.backend.aclose()

    async def on_event(self, event: events.Event) -> None:
        """Any key the operator presses pins the cursor to its instance from then on.

        Before the first key the cursor rides the top (worst) row, so a new operator
        lands on the trouble; after it, a re-sort never slides another row under it.
        """
        if isinstance(event, events.Key):
            self.model.follow_top = False
        await super().on_event(event)

    def on_key(self, event: events.Key) -> None:
        """Type-ahead into the filter box or the phone number box (``keys.type_ahead``);
        in read-only mode, why r / c do nothing. (The app receives these keys; a handler
        on the fleet screen would not.)"""
        screen = self.screen
        if isinstance(screen, PairingScreen):  # the same for the phone number box
            type_ahead(screen.phone_box, self.focused, event)
            return
        if isinstance(screen, LogScreen):  # and for the log's search box
            type_ahead(screen.search_box, self.focused, event)
            return
        if self._main is None or screen is not self._main:
            return
        if type_ahead(self._main.filter_box, self.focused, event):
            return
        if self.read_only and event.key in ("r", "c", "R", "C"):
            # The binding is greyed out (check_action); still say why nothing happens.
            self.notify("Read-only mode: restart and reconnect are off; nothing sent.")

    # ---- one refresh per message -------------------------------------------------------

    def refresh_view(self, *, rows: Collection[str] | None = None, detail: bool = False) -> None:
        """Bring the view up to date once, right after the message (``ViewRefresh.request``)."""
        self.view.request(rows=rows, detail=detail)

    def row_changed(self, name: str) -> None:
        """A row's note changed (action progress, outcome, stuck call): repaint it."""
        self.view.row_changed(name)

    # ---- engine events (through the bridge) -------------------------------------------

    @refreshing
    def on_rows_observed(self, message: RowsObserved) -> None:
        self.pairing.follow(self.fleet_view.apply_rows(self.bridge.take_dirty()))

    @refreshing
    def on_engine_event_received(self, message: EngineEventReceived) -> None:
        self.bridge.apply(message.event)
        self.refresh_view(rows=())

    @refreshing
    def on_fleet_grid_marks_changed(self, message: FleetGrid.MarksChanged) -> None:
        self.refresh_view(rows=())

    def log_entries(self, entries: list[LogEntry]) -> None:
        self.main.event_log.add(entries)
        for screen in self.screen_stack:  # the full-screen log, live while it is open
            if isinstance(screen, LogScreen):
                screen.book_changed()

    # ---- worker failures (ui/worker_failures.py) ------------------------------------

    @refreshing
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        failed = failure_of(event)
        if failed is not None:
            self.post_message(failed)
        elif event.state == WorkerState.SUCCESS and event.worker.group == "actions":
            self.actions.succeeded(event.worker)
            self.refresh_view(rows=())

    @refreshing
    def on_work_failed(self, message: WorkFailed) -> None:
        self.failures.report(message)

    # ---- the one-second tick ----------------------------------------------------------

    @refreshing
    def tick(self) -> None:
        """Every countdown and age on screen, the header and shared state: once a second."""
        self.polling.count_rate_limited(self.clock())
        self.fleet_view.new_second()
        self.bridge.read_shared_state()
        self.refresh_view(detail=True)
        self.pairing.follow()

    # ---- what the screens ask of the app ---------------------------------------------

    def grid_cells(self, name: str, now: float) -> tuple[dict[str, CellStyle], bool]:
        return self.fleet_view.grid_cells(name, now)

    def build_detail(
        self, name: str, style_for: Callable[[str], object] | None = None
    ) -> Text | None:
        return self.fleet_view.build_detail(name, style_for)

    def offered_actions(self, name: str) -> frozenset[str]:
        row = self.poller.rows.get(name)
        return frozenset(row.account.info.actions) if row is not None else frozenset()

    # ---- the operator's intents (posted by the screens and the palette) ----------------

    @refreshing
    def on_action_requested(self, message: ActionRequested) -> None:
        """r / c on the named rows (None: the marked rows, else the cursor row)."""
        names = list(message.names) if message.names is not None else None
        self.actions.request(names, message.action, override=message.override)

    @refreshing
    def on_poll_requested(self, message: PollRequested) -> None:
        self.polling.poll_now(message.name)

    @refreshing
    def on_detail_requested(self, message: DetailRequested) -> None:
        self.fleet_view.open_detail(message.name)

    @refreshing
    def on_pair_requested(self, message: PairRequested) -> None:
        self.pairing.request(message.name)

    @refreshing
    def on_filter_changed(self, message: FilterChanged) -> None:
        self.fleet_view.apply_filter(message.text)

    @refreshing
    def on_problems_toggled(self, message: ProblemsToggled) -> None:
        self.fleet_view.toggle_problems()

    @refreshing
    def on_sort_cycled(self, message: SortCycled) -> None:
        self.fleet_view.cycle_sort(reverse=message.reverse, mode=message.mode)

    @refreshing
    def on_pause_toggled(self, message: PauseToggled) -> None:
        self.polling.toggle_pause()

    @refreshing
    def on_bulk_abort_requested(self, message: BulkAbortRequested) -> None:
        self.actions.abort_bulk()

    def apply_filter(self, text: str) -> None:
        self.fleet_view.apply_filter(text)

    def jump_to(self, name: str) -> None:
        self.jump_home()
        if self.model.jump_to(name):
            self.refresh_view()

    def jump_home(self) -> None:
        while len(self.screen_stack) > 1 and self.screen is not self.main:
            self.pop_screen()

    def open_log(self) -> None:
        """The palette's Event log: back to the grid, the full-screen log over it."""
        self.jump_home()
        self.main.action_log_screen()

    def open_filter(self) -> None:
        """The palette's Filter: back to the grid, the filter box open."""
        self.jump_home()
        self.main.action_filter()

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, PairingScreen):
            title = "Keys: pairing"
        elif isinstance(screen, DetailScreen):
            title = "Keys: detail view"
        elif isinstance(screen, LogScreen):
            title = "Keys: event log"
        else:
            title = "Keys: fleet grid"
        self.push_screen(HelpScreen(title, bindings_of(screen), HELP_NOTES))

    async def action_quit(self) -> None:
        """q, ctrl+q and ctrl+c: quit at once unless actions are in flight; then ask
        (and a second ctrl+q / ctrl+c while asking means yes)."""
        in_flight = set(getattr(self.engine, "in_flight", ()) or ())
        if not in_flight or isinstance(self.screen, QuitScreen):
            self.exit(0)
            return

        def decided(quit_now: bool | None) -> None:
            if quit_now:
                self.exit(0)

        self.push_screen(QuitScreen(in_flight, self.clock), decided)

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):  # ours: Quit asks; Help lists our keys
                yield command
        yield from fleet_commands(self)
