"""``FleetApp``: the app shell around the fleet screen, the engine bridge and the action flow.

    fleet_screen.FleetScreen   widgets and bindings; keys deliver intents (ui/messages.py)
    header                     the header, banner and status line texts (pure)
    bridge.EngineBridge        engine events -> messages -> what the view shows
    action_flow.ActionFlow     r / c: the engine's plan, reason, confirmation, the run
    view_refresh.ViewRefresh   what changed during a message, painted once at its end
    app.FleetApp (here)        lifecycle, signals, crash handling, worker failures, the
                               one-second tick, the intents' handlers, palette and help

Data flows one way. The poller and the engine run in named worker groups
("poller", "actions", ``exit_on_error=False``; failures end up in one handler: a
notification and a debug log line). Their events arrive through the bridge as Textual
messages; screens deliver intents the same way. Each handler changes the model
(``GridModel``, ``NoteBook``, the bridge's facts) and asks for ``refresh_view``: the
grid, header, status line and detail view are brought up to date once, right after
the message, however many things it changed. The UI never calls a provider itself:
every read and action goes through the engine.

One one-second timer (``tick``) drives every countdown and age on screen, reads the
shared state (other operators' actions and cooldowns), and repaints only cells
whose text changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
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
from tuiapp.events import BulkProgressed
from tuiapp.model import Status
from tuiapp.runtime import Backend, build_backend
from tuiapp.secrets import redact
from tuiapp.ui import terminal_watch, textual_fixes
from tuiapp.ui.action_flow import ActionFlow
from tuiapp.ui.bridge import OUTCOME_SEVERITY, EngineBridge
from tuiapp.ui.commands import InstanceJumpProvider, fleet_commands
from tuiapp.ui.detail import DetailScreen, detail_text
from tuiapp.ui.dialogs import QuitScreen
from tuiapp.ui.fleet_screen import FleetScreen
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.header import outage_text, polling_text, status_line_text
from tuiapp.ui.help import HELP_NOTES, HelpScreen, bindings_of
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
from tuiapp.ui.pairing_screen import PairingScreen, ScanFn
from tuiapp.ui.present import (
    CellStyle,
    NoteBook,
    RowLike,
    haystack,
    interval_lookup,
    row_cells,
    row_dim,
)
from tuiapp.ui.view_refresh import ViewRefresh, refreshing
from tuiapp.ui.widgets import LogEntry
from tuiapp.vocabulary import Outcome

__all__ = [
    "OUTCOME_SEVERITY",
    "Backend",
    "FleetApp",
    "FleetScreen",
    "build_backend",
    "freeze_long_lived_objects",
    "run_tui",
]

log = logging.getLogger("tuiapp.ui")


def _unstyled(component: str) -> object:
    """No style: the detail text built outside the detail screen (tests, exports)."""
    return ""


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
        backend: Backend | None = None,
        tick_seconds: float | None = 1.0,
        demo_scan: ScanFn | None = None,
    ) -> None:
        """``sleep`` goes to the poller and the engine (tests pass a fake-time one);
        ``backend`` replaces the engine objects (the benchmark feeds synthetic rows);
        ``tick_seconds=None`` leaves the one-second tick to the caller (tests call
        ``tick()`` after moving their fake clock); ``demo_scan(name)`` is the demo's
        simulated phone (the pairing screen's s key), None outside a demo."""
        textual_fixes.apply()  # idempotent: two Textual 8.2.8 leaks, see textual_fixes
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
        self.backend = backend or build_backend(
            fleet,
            transport=transport,
            clock=clock,
            sleep=sleep,
            operator=self.operator,
            state_dir_override=state_dir_override,
        )
        self.poller = self.backend.poller
        self.engine = self.backend.engine
        self.state = self.backend.state
        self.model = GridModel(problems_only=problems_only)
        self.notes = NoteBook(operator=self.operator)
        self.interval_of = interval_lookup(fleet.poll_interval_for)
        self.bridge = EngineBridge(self)
        self.actions = ActionFlow(self)
        self.event_log_entries = 0
        self._main: FleetScreen | None = None
        self._poller_failed: str | None = None
        self._started = False
        self._tick_seconds = tick_seconds
        self._rate_limited = 0
        self.view = ViewRefresh(self._paint, self.call_next)  # see refresh_view
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
        for name, row in self.poller.rows.items():
            self._upsert(name, row)
        self.grid.sync()
        self.bridge.read_shared_state(force=True)
        # Off the loop: it waits for the state lock while another process holds it.
        self.run_worker(
            self.actions.recover_interrupted(), name="recover", group="startup", exit_on_error=False
        )
        self.update_header()
        self._install_signal_handlers()
        self.run_worker(self.poller.run(), name="poller", group="poller", exit_on_error=False)
        if self._tick_seconds:
            self.set_interval(self._tick_seconds, self.tick, name="tick")
        if self.freeze_gc:
            gc.freeze()  # the grid model of every row, built just now, lives as long as we do

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

    def _install_signal_handlers(self) -> None:
        """SIGTERM and SIGHUP (the SSH link dropped) quit the way q does, minus the question."""
        with contextlib.suppress(RuntimeError):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGHUP):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, self._on_signal, sig)

    def _on_signal(self, sig: int) -> None:
        log.warning("received signal %s: quitting", sig)
        terminal_watch.quitting(128 + sig)  # hard exit if the clean quit hangs
        self.exit(128 + sig)

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
        """Type-ahead into the filter box.

        Textual routes each key to the widget that had focus when it arrived, so text
        typed right after "/" (one read on a slow link) went to the grid and bubbled up
        here untyped (the box, once focused, keeps the grid's bindings from firing).
        A printable key that reaches the app while the box has focus was not typed
        into it: type it now, in order. (A handler on the fleet screen does not receive
        these keys; the app does.)
        """
        main = self._main
        screen = self.screen
        if isinstance(screen, PairingScreen):  # the same for the phone number box
            box = screen.phone_box
            if box.display and self.focused is box and event.is_printable and event.character:
                event.stop()
                box.insert_text_at_cursor(event.character)
            return
        if main is None or screen is not main:
            return
        box = main.filter_box
        if box.display and self.focused is box and event.is_printable and event.character:
            event.stop()
            box.insert_text_at_cursor(event.character)
        elif self.read_only and event.key in ("r", "c", "R", "C"):
            # The binding is greyed out (check_action); still say why nothing happens.
            self.notify("Read-only mode: restart and reconnect are off; nothing sent.")

    # ---- one refresh per message -------------------------------------------------------

    def refresh_view(self, *, rows: Collection[str] | None = None, detail: bool = False) -> None:
        """Bring the view up to date once, right after the message being handled.

        ``rows`` names the rows whose data changed: only their grid lines (and lines now
        showing another instance) are compared, and the detail view is rebuilt if it
        shows one of them. Without ``rows`` every line on screen is compared. ``detail``
        rebuilds the detail view regardless. The header and status line always follow.
        Any number of calls while one message is handled make one paint (``ViewRefresh``).
        """
        self.view.request(rows=rows, detail=detail)

    def row_changed(self, name: str) -> None:
        """A row's note changed (action progress, outcome, stuck call): repaint it."""
        self.view.row_changed(name)

    def _paint(self, full: bool, rows: set[str], detail: bool) -> None:
        if not self._started or self._main is None:
            return
        if full:
            self.grid.sync()
        else:
            self.grid.sync(dirty=rows)
        self.update_header()
        screen = self._detail_screen()
        if screen is not None and (detail or screen.instance_name in rows):
            screen.update_detail()

    # ---- engine events (through the bridge) -------------------------------------------

    @refreshing
    def on_rows_observed(self, message: RowsObserved) -> None:
        self.apply_rows(self.bridge.take_dirty())

    def apply_rows(self, names: Iterable[str]) -> None:
        """Fold changed rows into the model; the view follows (also the bench's hook)."""
        rows = self.poller.rows
        names = list(names)
        for name in names:
            row = rows.get(name)
            if row is not None:
                self._upsert(name, row)
        self.refresh_view(rows=names)
        pairing = self._pairing_screen()
        if pairing is not None and pairing.instance_name in names:
            pairing.tick(self._is_working(pairing.instance_name))

    def _upsert(self, name: str, row: RowLike) -> None:
        self.model.upsert(
            name,
            status=row.status,
            problem=row.problem,
            provider=row.account.provider,
            since=row.since,
            haystack=haystack(row),
        )

    @refreshing
    def on_engine_event_received(self, message: EngineEventReceived) -> None:
        self.bridge.apply(message.event)
        self.refresh_view(rows=())

    @refreshing
    def on_fleet_grid_marks_changed(self, message: FleetGrid.MarksChanged) -> None:
        self.refresh_view(rows=())

    def log_entries(self, entries: list[LogEntry]) -> None:
        self.event_log_entries += len(entries)
        self.main.event_log.add(entries)

    # ---- worker failures, in one place ----------------------------------------------

    @refreshing
    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = redact(f"{type(error).__name__}: {error}") if error else "unknown error"
            if error is not None:  # the traceback (frames, no locals) goes to the debug log
                log.error("worker %s (%s) failed", worker.name, worker.group, exc_info=error)
            self.post_message(WorkFailed(worker.group, worker.name, text))
        elif event.state == WorkerState.SUCCESS and worker.group == "actions":
            self.actions.succeeded(worker)
            self.refresh_view(rows=())

    @refreshing
    def on_work_failed(self, message: WorkFailed) -> None:
        if message.group == "poller":
            self._poller_failed = message.error
            self.notify(
                f"Polling stopped: {message.error}",
                title="Poller failed",
                severity="error",
                markup=False,
                timeout=30,
            )
        else:
            self.notify(
                f"{message.what} failed: {message.error}",
                title="Action failed",
                severity="error",
                markup=False,
                timeout=15,
            )
        if message.group == "actions":
            self.actions.failed(message.what, message.error)
            self.refresh_view()
        else:
            self.refresh_view(rows=())

    # ---- the one-second tick ----------------------------------------------------------

    @refreshing
    def tick(self) -> None:
        """Every countdown and age on screen, the header and shared state: once a second."""
        now = self.clock()
        self._rate_limited = sum(  # once a second, not on every observation: O(rows)
            1
            for row in self.poller.rows.values()
            if row.rate_limited_until is not None and row.rate_limited_until > now
        )
        self.bridge.read_shared_state()
        self.refresh_view(detail=True)
        pairing = self._pairing_screen()
        if pairing is not None:
            pairing.tick(self._is_working(pairing.instance_name))

    # ---- rendering helpers ---------------------------------------------------------------

    def grid_cells(self, name: str, now: float) -> tuple[dict[str, CellStyle], bool]:
        row = self.poller.rows[name]
        interval = self.interval_of(row)
        return row_cells(row, self.notes, now, interval), row_dim(row, now, interval)

    def update_header(self) -> None:
        """The header, banners and status line (their texts: ``ui/header.py``)."""
        if not self._started:
            return
        model, bridge, last_sweep = self.model, self.bridge, self.bridge.last_sweep
        sweep_at = (last_sweep.at if last_sweep is not None else None) or self.poller.last_sweep_at
        self.main.show_header(
            dict(model.counts),
            polling_text(
                model,
                now=self.clock(),
                sweep_at=sweep_at,
                paused=self.poller.paused,
                failed=self._poller_failed,
                rate_limited=self._rate_limited,
            ),
            outage_text(bridge.outages),
            bridge.network_down,
            status_line_text(model, bulk_running=self.bulk_running, bulk=self.bulk),
        )

    def _pairing_screen(self) -> PairingScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, PairingScreen):
                return screen
        return None

    def _is_working(self, name: str) -> bool:
        row = self.poller.rows.get(name)
        return row is not None and row.status is Status.WORKING

    def _detail_screen(self) -> DetailScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DetailScreen):
                return screen
        return None

    # ---- the operator's intents (posted by the screens and the palette) ----------------

    @refreshing
    def on_action_requested(self, message: ActionRequested) -> None:
        """r / c on the named rows (None: the marked rows, else the cursor row)."""
        names = list(message.names) if message.names is not None else None
        self.actions.request(names, message.action, override=message.override)

    @refreshing
    def on_poll_requested(self, message: PollRequested) -> None:
        why_not = self.poller.poll_now(message.name)
        if why_not:
            self.notify(f"Not polled: {why_not}", severity="warning", markup=False)
        else:
            self.notify(f"Polling {message.name} now.", markup=False)

    @refreshing
    def on_detail_requested(self, message: DetailRequested) -> None:
        name = message.name
        offered = self.offered_actions(name)
        self.push_screen(
            DetailScreen(name, self.build_detail, read_only=self.read_only, offered=offered)
        )

    @refreshing
    def on_pair_requested(self, message: PairRequested) -> None:
        """P: refused at once (a toast, nothing sent) unless the row waits for a QR scan;
        else the session's guards and first QR in a worker, then the pairing screen."""
        name = message.name
        row = self.poller.rows.get(name)
        if self.read_only:
            self.notify(
                "Read-only mode: pairing is an action; nothing sent.",
                severity="warning",
                markup=False,
            )
            return
        if row is None:
            return
        if row.status is not Status.SCAN_QR_CODE:
            self.notify(
                f"Not paired: {name} is {row.status.value}, not SCAN_QR_CODE (only an "
                "instance waiting for a QR scan is paired); nothing sent.",
                severity="warning",
                markup=False,
            )
            return
        if self._pairing_screen() is not None:
            return
        self.run_worker(self._open_pairing(name), group="pairing", exit_on_error=False)

    async def _open_pairing(self, name: str) -> None:
        from tuiapp.pairing import PairingSession

        session = PairingSession.from_runtime(
            self.backend, self.fleet, name, operator=self.operator
        )
        first = await session.open()
        if session.outcome is Outcome.REFUSED or not first.shown:
            await session.finish(Outcome.REFUSED)  # no-op when already refused
            self.notify(f"Not paired: {first.message}", severity="warning", markup=False)
            return
        row = self.poller.rows[name]
        self.push_screen(
            PairingScreen(
                session,
                first,
                account=row.instance.account,
                provider=row.account.provider,
                clock=self.clock,
                demo_scan=self.demo_scan if self.demo else None,
            )
        )

    @refreshing
    def on_filter_changed(self, message: FilterChanged) -> None:
        self.apply_filter(message.text)

    @refreshing
    def on_problems_toggled(self, message: ProblemsToggled) -> None:
        self.model.set_problems_only(not self.model.problems_only)
        self.refresh_view()

    @refreshing
    def on_sort_cycled(self, message: SortCycled) -> None:
        self.model.set_sort(self.model.next_sort_mode())
        self.grid.refresh()  # the header line's sort mark
        self.refresh_view()

    @refreshing
    def on_pause_toggled(self, message: PauseToggled) -> None:
        if self.poller.paused:
            self.poller.resume()
            self.notify("Polling resumed.")
        else:
            self.poller.pause()
            self.notify("Polling paused: rows age and go stale until p resumes.")
        self.refresh_view(rows=())

    @refreshing
    def on_bulk_abort_requested(self, message: BulkAbortRequested) -> None:
        self.actions.abort_bulk()

    def offered_actions(self, name: str) -> frozenset[str]:
        row = self.poller.rows.get(name)
        return frozenset(row.account.info.actions) if row is not None else frozenset()

    def build_detail(
        self, name: str, style_for: Callable[[str], object] | None = None
    ) -> Text | None:
        """The detail text of ``name``, styled by ``style_for`` (the detail screen's own
        component styles). Never styled through ``self.screen``: a tick runs whatever
        screen is on top, and a modal lacks the detail view's component classes."""
        row = self.poller.rows.get(name)
        if row is None:
            return None
        facts = self.bridge.detail_facts(name, row, self.interval_of(row))
        return detail_text(row, facts, self.notes, self.clock(), style_for or _unstyled)

    def apply_filter(self, text: str) -> None:
        if text.strip() == self.model.filter_text:
            return
        self.model.set_filter(text)
        self.refresh_view()

    def jump_to(self, name: str) -> None:
        self.jump_home()
        if self.model.jump_to(name):
            self.refresh_view()

    def jump_home(self) -> None:
        while len(self.screen_stack) > 1 and self.screen is not self.main:
            self.pop_screen()

    def action_help(self) -> None:
        screen = self.screen
        if isinstance(screen, PairingScreen):
            title = "Keys: pairing"
        elif isinstance(screen, DetailScreen):
            title = "Keys: detail view"
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
            if command.title != "Quit":
                yield command
        yield from fleet_commands(self)


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
) -> int:
    """Run the TUI until the operator quits; returns the exit code."""
    app = FleetApp(
        fleet,
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
