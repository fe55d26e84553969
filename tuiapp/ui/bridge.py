"""The engine bridge: engine events in, Textual messages out, and what each one means here.

The poller and the action engine call ``EngineBridge.receive`` synchronously on the
app's loop. It only posts: observations go into a dirty set with at most one
``RowsObserved`` queued (a burst of reads is one repaint), everything else is an
``EngineEventReceived``. Rows new to the grid (a discovery's list answers, applied by
the poller a slice at a time) are folded in at most every ``NEW_ROWS_EVERY`` seconds,
or ``FOLD_SHARE`` times what the last fold took: each fold merges them into the whole
order at once, where a fold per slice of 200 rows would cost 100,000 rows 500 merges
(and as many frames). A read of a row already in the grid is posted at once when it can
change what is on screen (a row shown, or a status that changed, which may sort it into
view), and brings the waiting rows with it; other reads of known rows (a new latency,
a new read time, off screen) wait at most ``KNOWN_ROWS_EVERY`` seconds, so that 200 reads
a second of a 100,000-row fleet are a few folds a second, not one each.

When the app handles that message, ``apply`` dispatches on the event's type with
``match`` (a renamed event class is a type error, never a silently dropped handler)
and updates what the engine told us (``outages``, ``network_down``, ``last_sweep``),
the action notes and the event log. The app refreshes the view once per message
afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Iterable

from tuiapp.events import (
    ActionFinished,
    ActionProgressed,
    BulkProgressed,
    EngineEvent,
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
    WorkStuck,
)
from tuiapp.model import Status
from tuiapp.secrets import redact
from tuiapp.tracker import FLAP_CHANGES, FLAP_WINDOW
from tuiapp.ui.detail import DetailFacts
from tuiapp.ui.event_log import LogEntry
from tuiapp.ui.header import outage_entry
from tuiapp.ui.messages import EngineEventReceived, RowsObserved
from tuiapp.ui.present import RowLike, status_class, status_text
from tuiapp.ui.shell import Shell
from tuiapp.vocabulary import next_step_text, outcome_text, reason_text

__all__ = [
    "FOLD_SHARE",
    "KNOWN_ROWS_EVERY",
    "NEW_ROWS_EVERY",
    "OUTCOME_SEVERITY",
    "EngineBridge",
    "other_action_text",
]

log = logging.getLogger("tuiapp.ui")

STATE_REFRESH_SECONDS = 2.0  # how often the tick re-reads the shared state
NEW_ROWS_EVERY = 0.1  # seconds: rows new to the grid are folded in at most this often ...
FOLD_SHARE = 4  # ... and after a fold at least 4 times as long as it took
KNOWN_ROWS_EVERY = 0.1  # seconds: reads that change nothing on screen wait at most this
OUTCOME_SEVERITY = {
    "recovered": "information",
    "cancelled": "warning",
    "refused": "warning",
    "aborted": "warning",
    "not_recovered": "error",
    "failed": "error",
    "unknown": "error",
}


def other_action_text(app: Shell, name: str, action: str) -> str:
    """For an action the provider lacks, what the other one would do: "; reconnect is
    refused too: needs a QR scan…" ("no restart here" alone would hide the real trouble)."""
    other = "reconnect" if action == "restart" else "restart"
    offered = app.offered_actions(name)
    if action in offered or other not in offered:
        return ""
    try:
        alternative = app.engine.verdict(name, other)
    except Exception:  # the row is gone: nothing to add
        return ""
    if alternative.allowed:
        key = {"restart": "r", "reconnect": "c"}[other]
        return f"; {other} is possible: press {key}"
    return f"; {other} is refused too: {alternative.refusal}"


class EngineBridge:
    """Subscribes to the engine for one app (``Shell``) and applies its events to the view.

    ``on_bulk`` receives each ``BulkProgressed`` (the action flow keeps the latest).
    """

    def __init__(self, app: Shell, *, on_bulk: Callable[[BulkProgressed], None]) -> None:
        self.app = app
        self._on_bulk = on_bulk
        self.outages: dict[str, str] = {}  # account -> the outage message, while it holds
        self.network_down = False
        self.last_sweep: SweepFinished | None = None
        self._dirty: set[str] = set()
        self._rows_posted = False
        self._folded_at = float("-inf")  # when the observed rows were last taken
        self.fold_seconds = 0.0  # what folding new rows into the grid took last (FleetView)
        self._new_rows_due: asyncio.TimerHandle | None = None  # new rows, folded in soon
        self._state_read_at = float("-inf")
        self._state_error: str | None = None
        self._pid = os.getpid()
        self._flapping_said: set[str] = set()  # rows whose "is flapping" notice was shown
        # whether a row is on screen (the grid's lines, the open detail view): set by the
        # view once it paints; until then every read is posted at once
        self.on_screen: Callable[[str], bool] = lambda name: True

    # ---- engine -> messages (on the engine's call) ---------------------------------

    def receive(self, event: EngineEvent) -> None:
        """Subscriber, called synchronously on the engine's loop (the app's loop)."""
        match event:
            case InstanceObserved(name=name, row=row):
                self._dirty.add(name)
                if self._rows_posted:
                    return
                entry = self.app.model.entries.get(name)
                if entry is None:  # new to the grid: a discovery
                    every = self.new_rows_every()
                elif entry.status is row.status and not self.on_screen(name):
                    every = KNOWN_ROWS_EVERY  # nothing on screen changes: with the next fold
                else:
                    every = 0.0
                wait = self._folded_at + every - time.monotonic()
                if wait > 0:
                    if self._new_rows_due is None:
                        loop = asyncio.get_running_loop()
                        self._new_rows_due = loop.call_later(wait, self._post_rows)
                    return
                self._post_rows()
            case _:
                self.app.post_message(EngineEventReceived(event))

    def new_rows_every(self) -> float:
        """How long new rows wait after a fold: ``NEW_ROWS_EVERY``, or longer when the
        last fold took long (100,000 rows: each fold is a whole new order), so that the
        folds take at most a ``1 / FOLD_SHARE`` of the time and the poller the rest."""
        return max(NEW_ROWS_EVERY, FOLD_SHARE * self.fold_seconds)

    def _post_rows(self) -> None:
        """One ``RowsObserved`` for whatever was observed until it is handled."""
        if self._new_rows_due is not None:
            self._new_rows_due.cancel()
            self._new_rows_due = None
        if not self._rows_posted:
            self._rows_posted = True
            self.app.post_message(RowsObserved())

    def rows_waiting(self, names: Iterable[str]) -> None:
        """Rows the poller has and the grid has yet to take (the rest of the first fill,
        ``FleetView.show``): folded in by the next ``RowsObserved``, posted now."""
        self._dirty.update(names)
        self._post_rows()

    def take_dirty(self) -> set[str]:
        """The names observed since the last ``RowsObserved`` was handled."""
        self._rows_posted = False
        self._folded_at = time.monotonic()
        names, self._dirty = self._dirty, set()
        return names

    # ---- what the engine wrote down: shared state, detail facts --------------------

    def read_shared_state(self, *, force: bool = False) -> None:
        """Cooldowns and other operators' actions from ``state_dir`` (cached by file stat)."""
        app = self.app
        now = app.clock()
        if not force and now - self._state_read_at < STATE_REFRESH_SECONDS:
            return
        self._state_read_at = now
        try:
            data = app.state.snapshot()
        except Exception as exc:  # StateError: say so once, keep running
            text = redact(str(exc))
            if text != self._state_error:
                self._state_error = text
                app.notify(f"Shared state unreadable: {text}", severity="warning", markup=False)
            return
        self._state_error = None
        from tuiapp.filelock import HOSTNAME

        rows = app.poller.rows
        for name in data.names():
            if name not in rows:
                continue
            until = data.cooldown_until(name)
            app.notes.set_cooldown(name, until if until is not None and until > now else None)
            records = data.records(name)
            if not records:
                continue
            last = max(records, key=lambda r: r.at)
            if last.pid != self._pid or last.host != HOSTNAME:
                app.notes.record_other(name, last.action, last.at, last.operator, last.outcome)

    def detail_facts(self, name: str, row: RowLike, interval: float) -> DetailFacts:
        """What the detail view shows beyond the row: verdicts now, past actions, outage."""
        offered = frozenset(row.account.info.actions)
        verdicts = []
        for action in ("restart", "reconnect"):
            if action in offered:
                try:
                    verdicts.append(self.app.engine.verdict(name, action))
                except Exception as exc:
                    log.debug("verdict failed for %s: %s", name, exc)
        try:
            records = self.app.state.snapshot().records(name)
        except Exception:
            records = []
        return DetailFacts(
            interval=interval,
            verdicts=verdicts,
            offered=offered,
            records=records,
            outage=self.outages.get(row.account.name),
        )

    # ---- messages -> the view (in the app's handler) --------------------------------

    def apply(self, event: EngineEvent) -> None:
        match event:
            case TransitionConfirmed():
                self._transition_confirmed(event)
            case OutageChanged():
                self._outage_changed(event)
            case NetworkDown(active=active):
                self.network_down = bool(active)
            case SweepFinished():
                self.last_sweep = event
            case ActionProgressed():
                self._action_progressed(event)
            case ActionFinished():
                self._action_finished(event)
            case WorkStuck():
                self._work_stuck(event)
            case BulkProgressed():
                self._on_bulk(event)
            case InstanceObserved():  # coalesced in ``receive``; never posted
                pass

    def _transition_confirmed(self, event: TransitionConfirmed) -> None:
        app = self.app
        tr = event.transition
        row = app.poller.rows.get(tr.instance)
        app.log_entries(
            [
                LogEntry(
                    tr.at,
                    f"{tr.instance}: {status_text(tr.old)} → {status_text(tr.new)}"
                    + (f" ({reason_text(tr.reason)})" if tr.reason else ""),
                    f"status--{status_class(tr.new)}",
                )
            ]
        )
        if row is None or row.instance.muted or row.instance.expect == tr.new:
            return
        if row.flapping:  # the FLAPPING note says it; a toast (and bell) per flap would
            if tr.instance not in self._flapping_said:  # bury real news: say it once
                self._flapping_said.add(tr.instance)
                app.notify(
                    f"{tr.instance} is flapping ({FLAP_CHANGES} or more status changes in "
                    f"{FLAP_WINDOW / 60:g} min): no more alerts for it until it settles; "
                    "its changes go to the event log",
                    title="Flapping",
                    severity="warning",
                    markup=False,
                )
            return
        self._flapping_said.discard(tr.instance)
        if tr.old == Status.WORKING and tr.new.is_bad:
            app.notify(
                f"{tr.instance}: WORKING → {status_text(tr.new)}"
                + (f" ({reason_text(tr.reason)})" if tr.reason else ""),
                title="Instance down",
                severity="error",
                markup=False,
            )
            if app.fleet.monitor.bell:
                app.bell()

    def _outage_changed(self, event: OutageChanged) -> None:
        if event.active:
            self.outages[event.account] = event.message
        else:
            self.outages.pop(event.account, None)
        entry = outage_entry(event.account, event.message)  # the account named once
        self.app.log_entries([LogEntry(self.app.clock(), f"outage {entry}")])

    def _action_progressed(self, event: ActionProgressed) -> None:
        app = self.app
        if event.stage == "waiting" and not (
            (note := app.notes.notes.get(event.name)) and note.stage == "waiting"
        ):  # another process holds the state lock: say so once per wait
            app.notify(
                redact(f"{event.action} {event.name}: {event.message}"),
                title="Waiting",
                severity="warning",
                markup=False,
            )
        now = app.clock()
        # The verify window runs from the send: the note counts it down ("verifying 26s").
        until = now + app.fleet.monitor.verify_window if event.stage == "verifying" else None
        app.notes.progressed(event.name, event.action, event.stage, event.message, now, until=until)
        if event.stage in ("sent", "done"):
            self.read_shared_state(force=True)
        app.row_changed(event.name)

    def _action_finished(self, event: ActionFinished) -> None:
        app = self.app
        report = event.report
        now = app.clock()
        app.notes.finished(report.name, report.action, report.outcome, report.message, now)
        self.read_shared_state(force=True)
        words = outcome_text(report.outcome)
        message = report.message
        if report.outcome == "refused":  # every reason the refusal's toast gave
            message += other_action_text(app, report.name, report.action)
        text = f"{report.action} {report.name}: {words}"
        if message or report.next_step:
            text += f": {next_step_text(message, report.next_step)}"
        text = redact(text)
        css = "note--bad" if OUTCOME_SEVERITY.get(report.outcome) == "error" else ""
        app.log_entries([LogEntry(now, text, css)])
        app.row_changed(report.name)
        if report.outcome == "refused":
            return  # the refusal was already said when it was decided (see ActionFlow)
        app.notify(
            text,
            title=f"{report.action.capitalize()} {words}",
            severity=OUTCOME_SEVERITY.get(report.outcome, "information"),  # type: ignore[arg-type]
            markup=False,
            timeout=8,
        )

    def _work_stuck(self, event: WorkStuck) -> None:
        """The watchdog abandoned a provider call: say which instance; the rest goes on."""
        app = self.app
        if event.active:
            text = (
                f"{event.name}: stuck: its {event.what} call has not returned after "
                f"{event.seconds:.0f} s (abandoned; other rows keep polling)"
            )
        else:
            text = f"{event.name}: the stuck {event.what} call ended after {event.seconds:.0f} s"
        text = redact(text)
        app.log_entries([LogEntry(app.clock(), text, "note--bad" if event.active else "")])
        if event.active:
            app.notify(text, title="Stuck", severity="error", markup=False, timeout=15)
        app.row_changed(event.name)
