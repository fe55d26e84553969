"""What a read means: confirmation, ``since``, flapping, the outage and network rules.

``FleetTracker`` holds every ``Row`` and turns each read the poller hands it into row
state and events. It is synchronous and does no I/O: no asyncio, no files, no network;
time comes from the injected clock. The rules:

* **Confirmed transitions.** A change to a bad status is confirmed after
  ``CONFIRM_READS`` consecutive reads of it, or ``CONFIRM_SECONDS`` after its first read
  without a contrary one (``confirm_overdue``); a change to a good status at once.
  A confirmed change is a ``Transition``: kept on the row (``HISTORY_LENGTH``), queued
  in ``unsaved`` for the shared history, and emitted as ``TransitionConfirmed``.
  A pending status that another read replaces before it was confirmed (a FAILED ->
  STARTING -> FAILED blip) is kept on the row as a ``Glimpse``: never a transition (no
  history, no event, no flapping), but the detail view shows it, marked unconfirmed.
* **A rate-limited read** (``keep_last``) keeps the previous status; it only marks the row.
* **since.** When the displayed status began: the pending read's first time, else the
  confirmed transition's time; for the first status of a run, the shared history's last
  transition to it (exact) or the first time tuiapp saw the row (a lower bound).
  A WORKING read with ``connected_at`` makes that the exact start.
* **FLAPPING.** ``FLAP_CHANGES`` confirmed changes within ``FLAP_WINDOW`` seconds.
* **Account-wide outage.** At least half, and at least ``OUTAGE_MIN_INSTANCES``, of an
  account's non-muted rows turned confirmed-bad (not their ``expect``) within two poll
  intervals: ``OutageChanged`` (active) once; it ends when fewer than that are bad.
* **An account no row knows of.** Its list call failed and it has no row (a discovering
  account before its first answer): every instance there is unknown, which is an outage of
  that account (``list_failed``; ``check`` says CRITICAL). It ends when a list answers
  (``list_answered``).
* **Network down.** Every row of every populated account failed its latest read in the
  network (``ErrorKind.is_network``): ``NetworkDown``.
* **Sweeps.** A sweep ends when every row was visited since it began: ``SweepFinished``
  with how many were read and how many were only rate-limited.

The rules live in the mixins the tracker is made of: ``Confirmations``
(tuiapp.confirmations: confirmation, ``since``, flapping), ``OutageRules``
(tuiapp.outage_rules: the outage, list-call and network rules) and ``FirstReads``
(tuiapp.first_reads: a row's first read set at once, as the rules would set it). The
state is the tracker's (``__init__``); rows, reads and sweeps are here.

Events go to the subscribers synchronously; one failing subscriber is logged, never
raised.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace

from tuiapp.clock import Clock
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.confirmations import (
    CONFIRM_READS,
    CONFIRM_SECONDS,
    FLAP_CHANGES,
    FLAP_WINDOW,
    Confirmations,
)
from tuiapp.events import InstanceObserved, SweepFinished
from tuiapp.first_reads import FirstReads
from tuiapp.model import Observation, Status, Transition
from tuiapp.outage_rules import (
    NETWORK_KINDS,
    OUTAGE_EVIDENCE,
    OUTAGE_MIN_INSTANCES,
    OutageRules,
    list_outage_message,
    snapshot_outages,
)
from tuiapp.providers.text import one_line
from tuiapp.row import Row
from tuiapp.secrets import GLOBAL_REDACTOR

__all__ = [
    "CONFIRM_READS",
    "CONFIRM_SECONDS",
    "FLAP_CHANGES",
    "FLAP_WINDOW",
    "NETWORK_KINDS",
    "OUTAGE_EVIDENCE",
    "OUTAGE_MIN_INSTANCES",
    "FleetTracker",
    "list_outage_message",
    "safe_text",
    "snapshot_outages",
]

logger = logging.getLogger("tuiapp.poller")  # the poller's events, as before the split


class FleetTracker(FirstReads, Confirmations, OutageRules):
    """Every row of the fleet, and what each read the poller applies does to it.

    ``interval(account)`` is the account's poll interval (the outage rule's window is two
    of them); ``on_pending(deadline)`` is told when a pending bad read will be confirmed by
    time alone, so that the scheduler wakes up for it.
    """

    def __init__(
        self,
        accounts: Iterable[str],
        *,
        clock: Clock,
        interval: Callable[[AccountConfig], float],
        on_pending: Callable[[float], None] = lambda _deadline: None,
    ) -> None:
        self.rows: dict[str, Row] = {}
        self.account_rows: dict[str, list[Row]] = {name: [] for name in accounts}
        self.unsaved: list[Transition] = []  # confirmed, not yet in the shared history
        self.outages: dict[str, str] = {}  # account -> the outage message
        self.list_failures: dict[str, str] = {}  # account -> why its last list call failed
        self._list_outages: set[str] = set()  # accounts in ``outages`` by ``list_failed``
        self.network_down = False
        self.last_sweep_at: float | None = None
        self.sweep_id = 0
        self.pending_names: set[str] = set()  # rows with a pending bad read
        # (when time alone confirms it, row) for each pending read; entries whose read was
        # replaced since are dropped as they come up: no scan of every pending row per wake
        self._pending_due: list[tuple[float, str]] = []
        self._clock = clock
        self._interval = interval
        self._on_pending = on_pending
        self._subscribers: list[Callable[[object], None]] = []
        self._net_bad: dict[str, int] = dict.fromkeys(self.account_rows, 0)
        self._net_flags: set[str] = set()
        # per account: rows not muted, and those of them whose confirmed status is outage
        # evidence (the outage rule's counts, kept as rows change: not one scan per read)
        self._watched: dict[str, int] = dict.fromkeys(self.account_rows, 0)
        self._evidence: dict[str, int] = dict.fromkeys(self.account_rows, 0)
        # ... and of those, the ones that turned bad within two polls: row -> bad_at, with
        # a heap of (bad_at, row) to let them age out; an outage check is O(1) amortized
        self._recent: dict[str, dict[str, float]] = {}
        self._recent_heap: dict[str, list[tuple[float, str]]] = {}
        self._sweep_left: set[str] = set()
        self._sweep_started: float | None = None
        self._sweep_polled = 0
        self._sweep_limited = 0

    # ---- rows and subscribers ----------------------------------------------------------

    def add_row(
        self, instance: InstanceConfig, account: AccountConfig, history: Iterable[Transition]
    ) -> Row:
        """A row for ``instance``, its transitions seeded from the shared ``history``."""
        row = self._enroll(instance, account, history)
        self._sweep_left.add(instance.name)
        return row

    def subscribe(self, callback: Callable[[object], None]) -> None:
        """Call ``callback(event)`` for every event, synchronously."""
        self._subscribers.append(callback)

    def emit(self, event: object) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # one broken subscriber must not stop the poller
                logger.error(
                    "event subscriber failed on %s: %s", type(event).__name__, safe_text(exc)
                )

    def _emit_observed(self, row: Row) -> None:
        if self._subscribers:
            self.emit(InstanceObserved(row.name, row))

    # ---- applying a read ---------------------------------------------------------------

    def apply(self, row: Row, obs: Observation, now: float) -> None:
        """Merge one read (taken at ``now``) into the row and emit what it changed."""
        name = row.instance.name
        if name in self._sweep_left:  # ``visited``, inline: once per read of every row
            self.visited(name, limited=obs.keep_last)
        if obs.keep_last:
            row.last_error = obs.error
            if obs.retry_at is not None:
                row.rate_limited_until = obs.retry_at
            if row.obs is None or row.obs.keep_last:
                row.obs = obs
            else:
                row.obs = replace(
                    row.obs,
                    retry_at=obs.retry_at,
                    rate_remaining=obs.rate_remaining,
                    rate_reset_at=obs.rate_reset_at,
                )
            self._emit_observed(row)
            self.finish_sweep()
            return
        if row.rate_limited_until is not None and row.rate_limited_until <= now:
            row.rate_limited_until = None
        row.obs = obs
        row.status = obs.status
        row.last_error = obs.error
        if obs.status is not Status.UNREACHABLE:
            row.last_ok_at = now
        confirmed_before = row.confirmed
        self._confirm(row, obs, now)
        self._update_since(row, obs)
        # ``_is_flapping`` and ``_update_network`` only where they can change something
        row.flapping = len(row.transitions) >= FLAP_CHANGES and self._is_flapping(row, now)
        if obs.status is Status.UNREACHABLE or name in self._net_flags:
            self._update_network(row, obs)
        if self._subscribers:
            self.emit(InstanceObserved(name, row))
        if row.confirmed is not confirmed_before:
            self._check_outage(row.account, now)
        if not self._sweep_left:
            self.finish_sweep()

    def touch(self, row: Row, now: float) -> None:
        """A read of ``row`` is being applied at ``now`` (before its rate headers count)."""
        row.last_polled_at = now
        if row.first_seen_at is None:
            row.first_seen_at = now

    # ---- sweeps ------------------------------------------------------------------------

    def begin_sweep(self, now: float) -> None:
        self.sweep_id += 1
        self._sweep_started = now
        self._sweep_left = set(self.rows)
        self._sweep_polled = 0
        self._sweep_limited = 0

    def visited(self, name: str, *, limited: bool) -> None:
        if name in self._sweep_left:
            self._sweep_left.discard(name)
            if limited:
                self._sweep_limited += 1
            else:
                self._sweep_polled += 1

    def held_back(self, names: Iterable[str]) -> None:
        """Rows a budget did not allow a read of: visited, but rate-limited."""
        for name in names:
            if name in self._sweep_left:
                self._sweep_left.discard(name)
                self._sweep_limited += 1
        self.finish_sweep()

    def finish_sweep(self, *, force: bool = False) -> None:
        """Emit SweepFinished once every row was visited since the sweep began."""
        if self._sweep_left and not force:
            return
        now = self._clock()
        started = self._sweep_started if self._sweep_started is not None else now
        limited = self._sweep_limited + (len(self._sweep_left) if force else 0)
        self.last_sweep_at = now
        self.emit(SweepFinished(now, now - started, self._sweep_polled, limited))
        self.begin_sweep(now)


def safe_text(exc: BaseException) -> str:
    """An exception as one redacted line (never a token, never a traceback with locals)."""
    text = one_line(GLOBAL_REDACTOR.redact(str(exc)), 160)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
