"""``FleetApp``: the live fleet grid on the poller and the action engine.

Data flows one way. The poller and the engine run in named worker groups
("poller", "actions", ``exit_on_error=False``; failures end up in one handler: a
notification and a debug log line). Their events arrive through ``subscribe`` and
become Textual messages: observations are coalesced into one ``RowsObserved`` per
refresh (a dirty set of names), everything else is an ``EngineEventReceived``.
Handlers update the model (``GridModel``, ``NoteBook``) and the widgets. The UI
never calls a provider itself: every read and action goes through the engine.

One one-second timer (``tick``) drives every countdown and age on screen, reads the
shared state (other operators' actions and cooldowns), and repaints only cells
whose text changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import random
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input
from textual.worker import Worker, WorkerState

from tuiapp import debuglog
from tuiapp.config import FleetConfig
from tuiapp.model import Status, Transition
from tuiapp.secrets import redact
from tuiapp.ui import terminal_watch, textual_fixes
from tuiapp.ui.commands import InstanceJumpProvider
from tuiapp.ui.detail import DetailFacts, DetailScreen, detail_text
from tuiapp.ui.dialogs import ConfirmPlan, ConfirmScreen, QuitScreen, ReasonScreen, Target
from tuiapp.ui.grid import FleetGrid
from tuiapp.ui.gridmodel import GridModel
from tuiapp.ui.help import HelpScreen, bindings_of
from tuiapp.ui.messages import EngineEventReceived, RowsObserved, WorkFailed
from tuiapp.ui.present import (
    CellStyle,
    NoteBook,
    RowLike,
    age_text,
    countdown_text,
    haystack,
    interval_lookup,
    row_cells,
    row_dim,
    status_class,
    status_text,
)
from tuiapp.ui.textual_fixes import LeanFooter
from tuiapp.ui.widgets import EventLog, LogEntry, StatusCounts, TextCell

__all__ = ["Backend", "FleetApp", "FleetScreen", "build_backend", "run_tui"]

log = logging.getLogger("tuiapp.ui")


def _unstyled(component: str) -> object:
    """No style: the detail text built outside the detail screen (tests, exports)."""
    return ""


STATE_REFRESH_SECONDS = 2.0  # how often the tick re-reads the shared state
OUTCOME_SEVERITY = {
    "recovered": "information",
    "cancelled": "warning",
    "refused": "warning",
    "aborted": "warning",
    "not_recovered": "error",
    "failed": "error",
    "unknown": "error",
}


# ---- the engine side ------------------------------------------------------------------


@dataclass
class Backend:
    """The engine objects the UI drives; built by ``build_backend`` (tests may pass fakes)."""

    poller: Any  # tuiapp.poller.Poller
    engine: Any  # tuiapp.actions.ActionEngine
    state: Any  # tuiapp.state.SharedState
    audit: Any = None  # tuiapp.audit.AuditLog
    client: httpx.AsyncClient | None = None

    async def aclose(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()


def build_backend(
    fleet: FleetConfig,
    *,
    transport: httpx.AsyncBaseTransport | None,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    operator: str,
    state_dir_override: Path | None,
    rng: random.Random | None = None,
) -> Backend:
    """The shared client, adapters, poller, shared state, audit log and action engine.

    ``rng`` seeds the poller's jitter (the screenshots want repeatable schedules)."""
    from tuiapp.actions import ActionEngine
    from tuiapp.audit import AuditLog, ssh_client
    from tuiapp.poller import Poller
    from tuiapp.providers.registry import make_adapters, make_client
    from tuiapp.state import SharedState

    monitor = fleet.monitor
    state_dir = state_dir_override or monitor.state_dir
    audit_path = state_dir / "audit.jsonl" if state_dir_override else monitor.audit_log
    client = make_client(monitor, transport)
    adapters = make_adapters(fleet, client, clock=clock)
    state = SharedState(state_dir, clock)
    audit = AuditLog(audit_path, clock, lock=state.lock)
    poller = Poller(fleet, adapters, clock=clock, sleep=sleep, state=state, rng=rng)
    engine = ActionEngine(
        fleet,
        adapters,
        poller,
        state,
        audit,
        clock=clock,
        sleep=sleep,
        operator=operator,
        ssh_client=ssh_client(),
        read_only=monitor.read_only,
    )
    return Backend(poller=poller, engine=engine, state=state, audit=audit, client=client)


# ---- the main screen ------------------------------------------------------------------


class FleetScreen(Screen[None]):
    """The grid with its header, banners, filter box, event log and status line."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "detail", "Detail", id="fleet.detail", tooltip="Everything about it"),
        Binding(
            "r",
            "act('restart')",
            "Restart",
            id="fleet.restart",
            tooltip="Restart the marked rows, or the selected one",
        ),
        Binding(
            "c",
            "act('reconnect')",
            "Reconnect",
            id="fleet.reconnect",
            tooltip="Reconnect the marked rows, or the selected one (no QR)",
        ),
        Binding(
            "R",
            "act('restart', True)",
            "Restart, override with a reason",
            show=False,
            id="fleet.restart_override",
            tooltip="Override a cooldown, loop breaker or bulk outage hold",
        ),
        Binding(
            "C",
            "act('reconnect', True)",
            "Reconnect, override with a reason",
            show=False,
            id="fleet.reconnect_override",
        ),
        Binding(
            "slash",
            "filter",
            "Filter",
            id="fleet.filter",
            tooltip="Filter by name, id, account, provider or tag",
        ),
        Binding("f", "problems", "Problems", id="fleet.problems", tooltip="Problems only"),
        Binding(
            "s",
            "sort",
            "Sort",
            id="fleet.sort",
            tooltip="Cycle sort: severity, name, provider, since",
        ),
        Binding(
            "u",
            "poll_now",
            "Poll now",
            show=False,
            id="fleet.poll_now",
            tooltip="Poll the selected row now (within its budget)",
        ),
        Binding(
            "p", "pause", "Pause", show=False, id="fleet.pause", tooltip="Pause or resume polling"
        ),
        Binding("l", "log", "Log", id="fleet.log", tooltip="Toggle the event log"),
        Binding(
            "x",
            "abort",
            "Abort bulk",
            show=False,
            id="fleet.abort",
            tooltip="Abort the running bulk action (what has not started)",
        ),
        Binding(
            "escape",
            "escape",
            "Clear filter",
            show=False,
            id="fleet.escape",
            tooltip="Clear the filter, or close the event log",
        ),
        Binding(
            "q",
            "app.quit",
            "Quit",
            id="fleet.quit",
            tooltip="Quit (asks only while actions are in flight)",
        ),
    ]

    def __init__(self, fleet_app: FleetApp) -> None:
        super().__init__(id="fleet")
        self.fleet_app = fleet_app

    def compose(self) -> ComposeResult:
        app = self.fleet_app
        self.counts = StatusCounts(id="counts")
        self.badge_demo = TextCell("DEMO", id="badge-demo", classes="badge")
        self.badge_read_only = TextCell("READ-ONLY", id="badge-read-only", classes="badge")
        self.polling = TextCell(id="polling")
        self.outage_banner = TextCell(id="outage-banner", classes="banner")
        self.network_banner = TextCell(
            "Every account is unreachable: check tuiapp's own network (DNS, proxy, VPN, "
            "firewall) before acting on instances.",
            id="network-banner",
            classes="banner",
        )
        self.filter_box = Input(placeholder="filter: name, id, account, provider, tag", id="filter")
        self.grid = FleetGrid(app.model, app.grid_cells, app.clock, id="grid")
        self.event_log = EventLog(id="event-log")
        self.status_line = TextCell(id="status-line")
        with Vertical(id="header"):
            with Horizontal(id="header-top"):
                yield self.counts
                yield self.badge_demo
                yield self.badge_read_only
            yield self.polling
        yield self.outage_banner
        yield self.network_banner
        yield self.filter_box
        yield self.grid
        yield self.event_log
        yield self.status_line
        yield LeanFooter()

    def on_mount(self) -> None:
        app = self.fleet_app
        self.badge_demo.display = app.demo
        self.badge_read_only.display = app.read_only
        self.outage_banner.display = False
        self.network_banner.display = False
        self.filter_box.display = False
        self.event_log.display = False
        self.grid.focus()
        app.start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        app = self.fleet_app
        if action == "act":
            return None if app.read_only else True
        if action == "abort":
            return True if app.bulk_running else None
        if action in ("detail", "poll_now"):
            return True if app.model.cursor is not None else None
        return True

    def action_detail(self) -> None:
        if self.fleet_app.model.cursor is not None:
            self.fleet_app.open_detail(self.fleet_app.model.cursor)

    def action_act(self, action: str, override: bool = False) -> None:
        self.fleet_app.request_action(None, action, override=override)

    def action_filter(self) -> None:
        box = self.filter_box
        box.display = True
        box.value = self.fleet_app.model.filter_text
        # Focus now, not after a refresh: keys typed right after "/" (a slow link
        # delivers them together) must reach the box, never the grid's r or c.
        self.set_focus(box, scroll_visible=False)

    def action_problems(self) -> None:
        self.fleet_app.toggle_problems()

    def action_sort(self) -> None:
        self.fleet_app.cycle_sort()

    def action_poll_now(self) -> None:
        if self.fleet_app.model.cursor is not None:
            self.fleet_app.poll_instance(self.fleet_app.model.cursor)

    def action_pause(self) -> None:
        self.fleet_app.toggle_pause()

    def action_log(self) -> None:
        event_log = self.event_log
        event_log.display = not event_log.display
        if event_log.display:
            event_log.refresh()

    def action_abort(self) -> None:
        self.fleet_app.abort_bulk()

    def action_escape(self) -> None:
        """In the filter box: clear it and return to the grid; else clear the filter,
        else close the event log."""
        app = self.fleet_app
        box = self.filter_box
        if box.display:
            app.apply_filter("")
            self._close_filter()
        elif app.model.filter_text:
            app.apply_filter("")
        elif self.event_log.display:
            self.event_log.display = False

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.fleet_app.apply_filter(event.value)

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self.fleet_app.apply_filter(event.value)
        self._close_filter()

    def _close_filter(self) -> None:
        self.set_focus(self.grid, scroll_visible=False)
        self.filter_box.display = False


# ---- the app ---------------------------------------------------------------------------


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
        clock: Callable[[], float] = time.time,
        demo: bool = False,
        read_only: bool = False,
        problems_only: bool = False,
        operator: str | None = None,
        state_dir_override: Path | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backend: Backend | None = None,
        tick_seconds: float | None = 1.0,
    ) -> None:
        """``sleep`` goes to the poller and the engine (tests pass a fake-time one);
        ``backend`` replaces the engine objects (the benchmark feeds synthetic rows);
        ``tick_seconds=None`` leaves the one-second tick to the caller (tests call
        ``tick()`` after moving their fake clock)."""
        textual_fixes.apply()  # idempotent: two Textual 8.2.8 leaks, see textual_fixes
        super().__init__()
        self.driver_class = textual_fixes.fixed_driver(self.driver_class)  # no EOF busy loop
        from tuiapp.audit import current_operator

        if read_only and not fleet.monitor.read_only:
            fleet = fleet.with_read_only(True)
        self.fleet = fleet
        self.read_only = fleet.monitor.read_only
        self.demo = demo
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
        self.bulk: Any = None  # the latest BulkProgressed while a bulk action runs
        self.bulk_running = False
        self.outages: dict[str, str] = {}
        self.network_down = False
        self.last_sweep: Any = None
        self.event_log_entries = 0
        self._dirty: set[str] = set()
        self._rows_posted = False
        self._state_read_at = float("-inf")
        self._state_error: str | None = None
        self._pid = os.getpid()
        self._main: FleetScreen | None = None
        self._poller_failed: str | None = None
        self._started = False
        self._tick_seconds = tick_seconds
        self._rate_limited = 0
        self._worker_targets: dict[str, tuple[str, ...]] = {}  # worker name -> its targets
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

    def start(self) -> None:
        """Once the main screen is composed: subscribe, fill the grid, start the workers."""
        if self._started:
            return
        self._started = True
        self.poller.subscribe(self._engine_event)
        self.engine.subscribe(self._engine_event)
        for name, row in self.poller.rows.items():
            self._upsert(name, row)
        self.grid.sync()
        self._refresh_shared_state(force=True)
        # Off the loop: it waits for the state lock while another process holds it.
        self.run_worker(
            self._recover_interrupted(), name="recover", group="startup", exit_on_error=False
        )
        self.update_header()
        self._install_signal_handlers()
        self.run_worker(self.poller.run(), name="poller", group="poller", exit_on_error=False)
        if self._tick_seconds:
            self.set_interval(self._tick_seconds, self.tick, name="tick")
        if self.freeze_gc:
            gc.freeze()  # the grid model of every row, built just now, lives as long as we do

    async def _recover_interrupted(self) -> None:
        """Actions a killed tuiapp sent without hearing back: reported as unknown."""
        try:
            for report in await self.engine.arecover_interrupted():
                text = redact(
                    f"{report.action} {report.name}: {report.outcome} ({report.message}); "
                    "the instance stays in cooldown"
                )
                self._log_entries([LogEntry(self.clock(), text, "note--bad")])
                self.notify(text, title="Interrupted action", severity="warning", markup=False)
        except Exception as exc:  # a broken audit log or state must not keep the grid away
            log.debug("recover_interrupted failed", exc_info=True)
            self.notify(
                f"Could not check for interrupted actions: {redact(str(exc))}",
                severity="warning",
                markup=False,
            )

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
        into it: type it now, in order.
        """
        main = self._main
        if main is None or self.screen is not main:
            return
        box = main.filter_box
        if box.display and self.focused is box and event.is_printable and event.character:
            event.stop()
            box.insert_text_at_cursor(event.character)
        elif self.read_only and event.key in ("r", "c", "R", "C"):
            # The binding is greyed out (check_action); still say why nothing happens.
            self.notify("Read-only mode: restart and reconnect are off; nothing sent.")

    # ---- engine events -> messages ---------------------------------------------------

    def _engine_event(self, event: object) -> None:
        """Subscriber, called synchronously on the engine's loop (this app's loop)."""
        if type(event).__name__ == "InstanceObserved":
            self._dirty.add(event.name)  # type: ignore[attr-defined]
            if not self._rows_posted:
                self._rows_posted = True
                self.post_message(RowsObserved())
            return
        self.post_message(EngineEventReceived(event))

    def on_rows_observed(self, message: RowsObserved) -> None:
        self._rows_posted = False
        names, self._dirty = self._dirty, set()
        self.apply_rows(names)

    def apply_rows(self, names: Iterable[str]) -> None:
        """Fold changed rows into the model and repaint what changed (also the bench's hook)."""
        rows = self.poller.rows
        detail = self._detail_screen()
        detail_hit = False
        names = list(names)
        for name in names:
            row = rows.get(name)
            if row is not None:
                self._upsert(name, row)
                if detail is not None and detail.instance_name == name:
                    detail_hit = True
        self.grid.sync(dirty=names)
        self.update_header()
        if detail_hit and detail is not None:
            detail.update_detail()

    def _upsert(self, name: str, row: RowLike) -> None:
        self.model.upsert(
            name,
            status=row.status,
            problem=row.problem,
            provider=row.account.provider,
            since=row.since,
            haystack=haystack(row),
        )

    def on_engine_event_received(self, message: EngineEventReceived) -> None:
        event = message.event
        handler = getattr(self, f"_on_{type(event).__name__}", None)
        if handler is not None:
            handler(event)

    def _on_TransitionConfirmed(self, event: Any) -> None:
        tr: Transition = event.transition
        row = self.poller.rows.get(tr.instance)
        self._log_entries(
            [
                LogEntry(
                    tr.at,
                    f"{tr.instance}: {status_text(tr.old)} → {status_text(tr.new)}"
                    + (f" ({tr.reason})" if tr.reason else ""),
                    f"status--{status_class(tr.new)}",
                )
            ]
        )
        if row is None or row.instance.muted or row.instance.expect == tr.new:
            return
        if row.flapping and tr.old == Status.WORKING:
            return  # the FLAPPING badge says it; a toast per flap would bury real news
        if tr.old == Status.WORKING and tr.new.is_bad:
            self.notify(
                f"{tr.instance}: WORKING → {status_text(tr.new)}"
                + (f" ({tr.reason})" if tr.reason else ""),
                title="Instance down",
                severity="error",
                markup=False,
            )
            if self.fleet.monitor.bell:
                self.bell()

    def _on_OutageChanged(self, event: Any) -> None:
        if event.active:
            self.outages[event.account] = event.message
        else:
            self.outages.pop(event.account, None)
        self._log_entries([LogEntry(self.clock(), f"outage {event.account}: {event.message}")])
        self.update_header()

    def _on_NetworkDown(self, event: Any) -> None:
        self.network_down = bool(event.active)
        self.update_header()

    def _on_SweepFinished(self, event: Any) -> None:
        self.last_sweep = event
        self.update_header()

    def _on_ActionProgressed(self, event: Any) -> None:
        if event.stage == "waiting" and not (
            (note := self.notes.notes.get(event.name)) and note.stage == "waiting"
        ):  # another process holds the state lock: say so once per wait
            self.notify(
                redact(f"{event.action} {event.name}: {event.message}"),
                title="Waiting",
                severity="warning",
                markup=False,
            )
        self.notes.progressed(event.name, event.action, event.stage, event.message, self.clock())
        if event.stage in ("sent", "done"):
            self._refresh_shared_state(force=True)
        self._repaint_row(event.name)

    def _on_ActionFinished(self, event: Any) -> None:
        report = event.report
        now = self.clock()
        self.notes.finished(report.name, report.action, report.outcome, report.message, now)
        self._refresh_shared_state(force=True)
        text = f"{report.action} {report.name}: {report.outcome.replace('_', ' ')}"
        if report.message:
            text += f": {report.message}"
        if report.next_step:
            text += f" Next: {report.next_step}"
        text = redact(text)
        css = "note--bad" if OUTCOME_SEVERITY.get(report.outcome) == "error" else ""
        self._log_entries([LogEntry(now, text, css)])
        if report.outcome == "refused":
            self._repaint_row(report.name)
            return  # the refusal was already said when it was decided (see _refused)
        self.notify(
            text,
            title=f"{report.action.capitalize()} {report.outcome.replace('_', ' ')}",
            severity=OUTCOME_SEVERITY.get(report.outcome, "information"),  # type: ignore[arg-type]
            markup=False,
            timeout=8,
        )
        self._repaint_row(report.name)

    def _on_WorkStuck(self, event: Any) -> None:
        """The watchdog abandoned a provider call: say which instance; the rest goes on."""
        if event.active:
            text = (
                f"{event.name}: stuck: its {event.what} call has not returned after "
                f"{event.seconds:.0f} s (abandoned; other rows keep polling)"
            )
        else:
            text = f"{event.name}: the stuck {event.what} call ended after {event.seconds:.0f} s"
        text = redact(text)
        self._log_entries([LogEntry(self.clock(), text, "note--bad" if event.active else "")])
        if event.active:
            self.notify(text, title="Stuck", severity="error", markup=False, timeout=15)
        self._repaint_row(event.name)

    def _on_BulkProgressed(self, event: Any) -> None:
        self.bulk = event
        self.update_status_line()

    def on_fleet_grid_marks_changed(self, message: FleetGrid.MarksChanged) -> None:
        self.update_status_line()

    def _log_entries(self, entries: list[LogEntry]) -> None:
        self.event_log_entries += len(entries)
        self.main.event_log.add(entries)

    def _repaint_row(self, name: str) -> None:
        self.grid.sync()
        detail = self._detail_screen()
        if detail is not None and detail.instance_name == name:
            detail.update_detail()

    # ---- worker failures, in one place ----------------------------------------------

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state == WorkerState.ERROR:
            error = worker.error
            text = redact(f"{type(error).__name__}: {error}") if error else "unknown error"
            if error is not None:  # the traceback (frames, no locals) goes to the debug log
                log.error("worker %s (%s) failed", worker.name, worker.group, exc_info=error)
            self.post_message(WorkFailed(worker.group, worker.name, text))
        elif event.state == WorkerState.SUCCESS and worker.group == "actions":
            self._worker_targets.pop(worker.name, None)
            self.bulk_running = any(
                w.group == "actions" and w.name.startswith("bulk") and not w.is_finished
                for w in self.workers
            )
            if not self.bulk_running:
                self.bulk = None
            self.update_status_line()

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
            self.update_header()
        else:
            self.notify(
                f"{message.what} failed: {message.error}",
                title="Action failed",
                severity="error",
                markup=False,
                timeout=15,
            )
        if message.group == "actions":
            self.bulk_running = False
            now = self.clock()
            for name in self._worker_targets.pop(message.what, ()):
                if self.notes.in_flight(name):  # no report will come: say what we know
                    note = self.notes.notes[name]
                    self.notes.finished(name, note.action, "unknown", message.error, now)
            self.grid.sync()
            self.update_status_line()

    # ---- the one-second tick ----------------------------------------------------------

    def tick(self) -> None:
        """Every countdown and age on screen, the header and shared state: once a second."""
        now = self.clock()
        self._rate_limited = sum(  # once a second, not on every observation: O(rows)
            1
            for row in self.poller.rows.values()
            if row.rate_limited_until is not None and row.rate_limited_until > now
        )
        self._refresh_shared_state()
        self.grid.sync()
        self.update_header()
        detail = self._detail_screen()
        if detail is not None:
            detail.update_detail()

    def _refresh_shared_state(self, *, force: bool = False) -> None:
        """Cooldowns and other operators' actions from ``state_dir`` (cached by file stat)."""
        now = self.clock()
        if not force and now - self._state_read_at < STATE_REFRESH_SECONDS:
            return
        self._state_read_at = now
        try:
            data = self.state.snapshot()
        except Exception as exc:  # StateError: say so once, keep running
            text = redact(str(exc))
            if text != self._state_error:
                self._state_error = text
                self.notify(f"Shared state unreadable: {text}", severity="warning", markup=False)
            return
        self._state_error = None
        from tuiapp.state import HOSTNAME

        rows = self.poller.rows
        for name in data.names():
            if name not in rows:
                continue
            until = data.cooldown_until(name)
            self.notes.set_cooldown(name, until if until is not None and until > now else None)
            records = data.records(name)
            if not records:
                continue
            last = max(records, key=lambda r: r.at)
            if last.pid != self._pid or last.host != HOSTNAME:
                self.notes.record_other(name, last.action, last.at, last.operator, last.outcome)

    # ---- rendering helpers ---------------------------------------------------------------

    def grid_cells(self, name: str, now: float) -> tuple[dict[str, CellStyle], bool]:
        row = self.poller.rows[name]
        interval = self.interval_of(row)
        return row_cells(row, self.notes, now, interval), row_dim(row, now, interval)

    def update_header(self) -> None:
        if not self._started:
            return
        screen = self.main
        now = self.clock()
        screen.counts.show(dict(self.model.counts))
        total = len(self.model.entries)
        problems = self.model.problem_count
        parts = [f"{total} instances, {problems} problem{'s' if problems != 1 else ''}"]
        if self._poller_failed:
            parts.append("polling STOPPED (error)")
        elif self.poller.paused:
            parts.append("⏸ polling PAUSED (p resumes)")
        else:
            parts.append("⟳ polling")
        sweep_at = getattr(self.last_sweep, "at", None) or self.poller.last_sweep_at
        parts.append(f"last sweep {age_text(sweep_at, now)}{' ago' if sweep_at else ''}")
        if self._rate_limited:
            parts.append(f"{self._rate_limited} rate-limited")
        screen.polling.set(" · ".join(parts))
        banner = screen.outage_banner
        if self.outages:
            banner.set(
                "⚠ OUTAGE "
                + " · ".join(f"{acct}: {msg}" for acct, msg in sorted(self.outages.items()))
            )
        banner.display = bool(self.outages)
        screen.network_banner.display = self.network_down
        self.update_status_line()

    def update_status_line(self) -> None:
        if not self._started:
            return
        model = self.model
        parts = [f"sort: {model.sort_mode}"]
        if model.filter_text:
            parts.append(f"filter: {model.filter_text!r} ({len(model.visible)} shown)")
        if model.problems_only:
            parts.append("problems only")
        if model.marks:
            hidden = len(model.hidden_marks())
            parts.append(
                f"{len(model.marks)} marked" + (f" ({hidden} hidden by filter)" if hidden else "")
            )
        bulk = self.bulk
        if self.bulk_running and bulk is not None:
            eta = f", ETA {countdown_text(bulk.eta_seconds)}" if bulk.eta_seconds else ""
            parts.append(
                f"bulk {bulk.done}/{bulk.total} done, {bulk.running} running{eta} (x aborts)"
            )
        elif self.bulk_running:
            parts.append("bulk action starting (x aborts)")
        self.main.status_line.set(" · ".join(parts))

    def _detail_screen(self) -> DetailScreen | None:
        for screen in reversed(self.screen_stack):
            if isinstance(screen, DetailScreen):
                return screen
        return None

    # ---- user intents ------------------------------------------------------------------

    def open_detail(self, name: str) -> None:
        self.push_screen(DetailScreen(name, self.build_detail))

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
        offered = frozenset(row.account.info.actions)
        verdicts = []
        for action in ("restart", "reconnect"):
            if action in offered:
                try:
                    verdicts.append(self.engine.verdict(name, action))
                except Exception as exc:
                    log.debug("verdict failed for %s: %s", name, exc)
        try:
            records = self.state.snapshot().records(name)
        except Exception:
            records = []
        facts = DetailFacts(
            interval=self.interval_of(row),
            verdicts=verdicts,
            offered=offered,
            records=records,
            outage=self.outages.get(row.account.name),
        )
        if style_for is None:
            style_for = _unstyled
        return detail_text(row, facts, self.notes, self.clock(), style_for)

    def apply_filter(self, text: str) -> None:
        if text.strip() == self.model.filter_text:
            return
        self.model.set_filter(text)
        self.grid.sync()
        self.update_status_line()

    def toggle_problems(self) -> None:
        self.model.set_problems_only(not self.model.problems_only)
        self.grid.sync()
        self.update_status_line()

    def cycle_sort(self) -> None:
        self.model.set_sort(self.model.next_sort_mode())
        self.grid.sync()
        self.grid.refresh()
        self.update_status_line()

    def toggle_pause(self) -> None:
        if self.poller.paused:
            self.poller.resume()
            self.notify("Polling resumed.")
        else:
            self.poller.pause()
            self.notify("Polling paused: rows age and go stale until p resumes.")
        self.update_header()

    def poll_instance(self, name: str) -> None:
        why_not = self.poller.poll_now(name)
        if why_not:
            self.notify(f"Not polled: {why_not}", severity="warning", markup=False)
        else:
            self.notify(f"Polling {name} now.", markup=False)

    def abort_bulk(self) -> None:
        if not self.bulk_running:
            self.notify("No bulk action is running.")
            return
        self.engine.abort()
        self.notify("Aborting: targets that have not started will not be sent.", severity="warning")

    def jump_to(self, name: str) -> None:
        if self.screen is not self.main:
            while len(self.screen_stack) > 1 and self.screen is not self.main:
                self.pop_screen()
        if self.model.jump_to(name):
            self.grid.sync()
            self.update_status_line()

    def action_help(self) -> None:
        screen = self.screen
        title = "Keys: detail view" if isinstance(screen, DetailScreen) else "Keys: fleet grid"
        notes = (
            "Status is glyph + word: ● WORKING  ◐ STARTING  ◌ PENDING  ▣ SCAN_QR_CODE  "
            "■ STOPPED  ✖ FAILED  ? UNREACHABLE  ⚠ AUTH_ERROR / NOT_FOUND  · UNKNOWN",
            "Actions are confirmed in a dialog; refused actions say why and send nothing. "
            "Cooldowns and the loop breaker can only be overridden with a reason (shift+r, "
            "shift+c).",
        )
        self.push_screen(HelpScreen(title, bindings_of(screen), notes))

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
        if not self.read_only:
            yield SystemCommand(
                "Restart",
                "Restart the marked rows, or the selected one",
                lambda: self.request_action(None, "restart"),
            )
            yield SystemCommand(
                "Reconnect",
                "Reconnect the marked rows, or the selected one (no QR)",
                lambda: self.request_action(None, "reconnect"),
            )
            yield SystemCommand(
                "Restart with override",
                "Override cooldown / loop breaker with a reason",
                lambda: self.request_action(None, "restart", override=True),
            )
            yield SystemCommand(
                "Reconnect with override",
                "Override cooldown / loop breaker with a reason",
                lambda: self.request_action(None, "reconnect", override=True),
            )
        yield SystemCommand("Filter", "Filter rows by text", self._palette_filter)
        yield SystemCommand("Clear filter", "Show every row", lambda: self.apply_filter(""))
        yield SystemCommand("Problems only", "Toggle problems only", self.toggle_problems)
        yield SystemCommand("Sort", "Cycle sort: severity, name, provider, since", self.cycle_sort)
        yield SystemCommand("Pause / resume polling", "Toggle polling", self.toggle_pause)
        yield SystemCommand("Poll now", "Poll the selected row now", self._palette_poll)
        yield SystemCommand("Abort bulk", "Abort the running bulk action", self.abort_bulk)
        yield SystemCommand(
            "Quit", "Quit (asks only while actions are in flight)", self.action_quit
        )

    def _palette_filter(self) -> None:
        self.jump_home()
        self.main.action_filter()

    def _palette_poll(self) -> None:
        if self.model.cursor is not None:
            self.poll_instance(self.model.cursor)

    def jump_home(self) -> None:
        while len(self.screen_stack) > 1 and self.screen is not self.main:
            self.pop_screen()

    # ---- actions: verdict, confirmation, run ----------------------------------------

    def action_targets(self) -> list[str]:
        """The marked rows (hidden ones included) in grid order, else the selected row."""
        marked = self.model.marked_in_order()
        if marked:
            return marked
        return [self.model.cursor] if self.model.cursor is not None else []

    def request_action(
        self, names: list[str] | None, action: str, *, override: bool = False
    ) -> None:
        """r / c (and the palette, and the detail view): verdicts, then the dialog."""
        if self.read_only:
            self.notify("Read-only mode: actions are off.", severity="warning")
            return
        targets = list(names) if names is not None else self.action_targets()
        if not targets:
            self.notify("No instance selected.", severity="warning")
            return
        if not override:
            self._plan(targets, action, None)
            return
        verdicts = self.engine.verdicts(targets, action)
        refusals = [f"{v.name}: {v.refusal}" for v in verdicts if not v.allowed]
        if len(targets) > 1:
            refusals += [
                f"{acct}: account-wide outage (a bulk action needs the override)"
                for acct in sorted({self.poller.rows[n].account.name for n in targets})
                if acct in self.poller.outage_accounts()
            ]

        def with_reason(reason: str | None) -> None:
            if reason:
                self._plan(targets, action, reason)
            else:
                self.notify("No override: nothing sent.")

        noun = targets[0] if len(targets) == 1 else f"{len(targets)} instances"
        self.push_screen(
            ReasonScreen(
                f"Override for {action} of {noun}", refusals or ["(no refusal to lift)"], self.clock
            ),
            with_reason,
        )

    def _plan(self, targets: list[str], action: str, override_reason: str | None) -> None:
        verdicts = self.engine.verdicts(targets, action, override_reason=override_reason)
        bulk = len(targets) > 1
        allow_outage = bulk and bool(override_reason)
        outage_accounts = self.poller.outage_accounts() if bulk else set()
        allowed: list[Target] = []
        skipped: list[Target] = []
        for verdict in verdicts:
            row = self.poller.rows[verdict.name]
            if verdict.allowed and row.account.name in outage_accounts and not allow_outage:
                verdict = dataclasses.replace(
                    verdict,
                    allowed=False,
                    refusal=f"account {row.account.name} is in an outage: a bulk {action} "
                    "there needs the override (shift+r / shift+c, with a reason)",
                    overridable=True,
                )
            target = Target(
                name=verdict.name,
                account=row.account.name,
                provider=row.account.provider,
                status=verdict.status,
                verdict=verdict,
                hidden=not self.model.is_shown(verdict.name),
            )
            (allowed if verdict.allowed else skipped).append(target)
        if skipped:
            self._audit_refusals(skipped, action, override_reason)
        if not allowed:
            self._refused(skipped, action)
            return
        plan = ConfirmPlan(
            action=action,
            targets=tuple(allowed),
            skipped=tuple(skipped),
            override_reason=override_reason,
            allow_outage=allow_outage,
        )
        self.push_screen(ConfirmScreen(plan, self.clock), lambda ok: self._confirmed(plan, ok))

    def _action_worker_name(self, base: str, plan: ConfirmPlan) -> str:
        """A unique worker name, remembered with its targets (for failures, see on_work_failed)."""
        name = base
        suffix = 1
        while name in self._worker_targets:
            suffix += 1
            name = f"{base} #{suffix}"
        self._worker_targets[name] = tuple(t.name for t in plan.targets)
        return name

    def _audit_refusals(
        self, skipped: list[Target], action: str, override_reason: str | None
    ) -> None:
        """Every decided attempt gets its audit line: the engine writes each refusal (no send)."""

        async def audit() -> None:
            for target in skipped:
                await self.engine.run(
                    target.name,
                    action,
                    override_reason=override_reason,
                    expected=target.verdict,
                )

        self.run_worker(
            audit(), name=f"audit refusals of {action}", group="actions", exit_on_error=False
        )

    def _refused(self, skipped: list[Target], action: str) -> None:
        """Nothing to send: say why (the first reason, and how to override if one can)."""
        first = skipped[0].verdict
        hint = f" (shift+{action[0]} overrides it with a reason)" if first.overridable else ""
        if len(skipped) == 1:
            message = f"{action} {first.name} refused: {first.refusal}{hint}"
            other = "reconnect" if action == "restart" else "restart"
            offered = self.offered_actions(first.name)
            if action not in offered and other in offered:
                # "no restart here" alone would hide the real trouble (a QR scan...)
                alternative = self.engine.verdict(first.name, other)
                if alternative.allowed:
                    key = {"restart": "r", "reconnect": "c"}[other]
                    message += f"; {other} is possible: press {key}"
                else:
                    message += f"; {other} is refused too: {alternative.refusal}"
        else:
            message = (
                f"{action} refused for all {len(skipped)} targets; nothing sent. "
                f"First: {first.name}: {first.refusal}{hint}"
            )
        self.notify(message, title="Nothing sent", severity="warning", markup=False, timeout=10)

    def _confirmed(self, plan: ConfirmPlan, ok: bool | None) -> None:
        if not ok:
            self.notify(f"{plan.action.capitalize()} cancelled: nothing sent.")
            return
        self.model.marks.clear()
        self.grid.sync()
        reason = plan.override_reason
        if len(plan.targets) == 1:
            target = plan.targets[0]
            self.notes.progressed(target.name, plan.action, "sending", "", self.clock())
            self.run_worker(
                self.engine.run(
                    target.name,
                    plan.action,
                    reason=reason,
                    override_reason=reason,
                    expected=target.verdict,
                ),
                name=self._action_worker_name(f"{plan.action} {target.name}", plan),
                group="actions",
                exit_on_error=False,
            )
        else:
            self.bulk_running = True
            self.bulk = None
            self.run_worker(
                self.engine.run_bulk(
                    [t.name for t in plan.targets],
                    plan.action,
                    reason=reason,
                    override_reason=reason,
                    allow_outage=plan.allow_outage,
                    expected={t.name: t.verdict for t in plan.targets},
                ),
                name=self._action_worker_name(f"bulk {plan.action} of {len(plan.targets)}", plan),
                group="actions",
                exit_on_error=False,
            )
        self.grid.sync()
        self.update_status_line()


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
) -> int:
    """Run the TUI until the operator quits; returns the exit code."""
    app = FleetApp(
        fleet,
        transport=transport,
        demo=demo,
        read_only=read_only,
        problems_only=problems_only,
        operator=operator,
    )
    app.freeze_gc = True
    freeze_long_lived_objects()
    with terminal_watch.guard(  # terminal loss: quit, never spin (issue 9)
        app, last_words=lambda: terminal_watch.cancel_workers(app, "actions", 0.5)
    ):
        result = app.run()
    return result if isinstance(result, int) else (app.return_code or 0)
