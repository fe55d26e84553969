"""The confirmation rule and ``since``: what a row's reads make of its confirmed status.

Part of ``FleetTracker`` (tuiapp.tracker), as the mixin ``Confirmations``:

* A change to a bad status is confirmed after ``CONFIRM_READS`` consecutive reads of it,
  or ``CONFIRM_SECONDS`` after its first read without a contrary one
  (``confirm_overdue``); a change to a good status at once. A confirmed change is a
  ``Transition``: kept on the row, queued in ``unsaved`` for the shared history, and
  emitted as ``TransitionConfirmed``. A pending status another read replaces before it
  was confirmed is kept on the row as a ``Glimpse`` (never a transition).
* ``since``: when the displayed status began (the pending read's first time, else the
  confirmed transition's; for the first status of a run, the shared history's last
  transition to it, exact, or the first time tuiapp saw the row, a lower bound).
* FLAPPING: ``FLAP_CHANGES`` confirmed changes within ``FLAP_WINDOW`` seconds.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable

from tuiapp.config import AccountConfig
from tuiapp.events import TransitionConfirmed
from tuiapp.model import Observation, Status, Transition
from tuiapp.outage_rules import OUTAGE_EVIDENCE
from tuiapp.row import Glimpse, Row

__all__ = [
    "BAD",
    "CONFIRM_READS",
    "CONFIRM_SECONDS",
    "FLAP_CHANGES",
    "FLAP_WINDOW",
    "Confirmations",
]

CONFIRM_READS = 2  # consecutive reads that confirm a change to a bad status ...
CONFIRM_SECONDS = 30.0  # ... or this long since the first read of it
FLAP_CHANGES = 4  # confirmed changes within FLAP_WINDOW that make a row FLAPPING
FLAP_WINDOW = 600.0
BAD = frozenset(status for status in Status if status.is_bad)  # ``Status.is_bad``, looked up
_BAD = BAD


class Confirmations:
    """``FleetTracker``'s confirmation rule (the state is the tracker's)."""

    rows: dict[str, Row]
    unsaved: list[Transition]
    pending_names: set[str]
    _pending_due: list[tuple[float, str]]
    _evidence: dict[str, int]
    _on_pending: Callable[[float], None]
    # the tracker's and ``OutageRules``'s
    emit: Callable[[object], None]
    _emit_observed: Callable[[Row], None]
    _note_recent: Callable[[Row, float], None]
    _check_outage: Callable[[AccountConfig, float], None]

    def _confirm(self, row: Row, obs: Observation, now: float) -> None:
        """A change to a bad status is confirmed after 2 consecutive reads or 30 s."""
        status = obs.status
        if status is row.confirmed:
            self._glimpsed(row, status, now)
            self._clear_pending(row)
            return
        if row.pending is not status:
            if row.pending is not None:
                self._glimpsed(row, status, now)
            row.pending = status
            row.pending_since = now
            row.pending_reads = 1
        else:
            row.pending_reads += 1
        if (
            status not in _BAD
            or row.pending_reads >= CONFIRM_READS
            or now - (row.pending_since or now) >= CONFIRM_SECONDS
        ):
            self._confirm_pending(row, obs.reason, now)
        else:
            self.pending_names.add(row.name)
            due = (row.pending_since or now) + CONFIRM_SECONDS
            if row.pending_reads == 1:  # a new pending read: one entry for it
                heapq.heappush(self._pending_due, (due, row.name))
            self._on_pending(due)

    def confirm_overdue(self, now: float) -> None:
        """Confirm pending bad reads that have stood for CONFIRM_SECONDS without a contrary read."""
        due = self._pending_due
        while due and due[0][0] <= now:
            _at, name = heapq.heappop(due)
            row = self.rows[name]
            if name not in self.pending_names:
                continue  # confirmed or contradicted since
            if row.pending is None or row.pending_since is None:
                self.pending_names.discard(name)
            elif now - row.pending_since >= CONFIRM_SECONDS:
                before = row.confirmed
                self._confirm_pending(row, row.obs.reason if row.obs else None, now)
                self._update_since(row, row.obs)
                row.flapping = self._is_flapping(row, now)
                self._emit_observed(row)
                if row.confirmed is not before:
                    self._check_outage(row.account, now)

    def confirm_deadlines(self) -> list[float]:
        """When the next pending bad read will be confirmed by time alone (empty: none)."""
        due = self._pending_due
        while due:
            at, name = due[0]
            row = self.rows[name]
            since = row.pending_since
            if name in self.pending_names and since is not None and since + CONFIRM_SECONDS == at:
                return [at]
            heapq.heappop(due)  # an entry for a read replaced or confirmed since
        return []

    @staticmethod
    def _glimpsed(row: Row, then: Status, now: float) -> None:
        """A pending status that a different read replaces before it was confirmed: the
        grid showed it, so the row's glimpses keep it (the detail view's history)."""
        if row.pending is None or row.pending_since is None or row.pending is then:
            return
        row.add_glimpse(
            Glimpse(row.confirmed, row.pending, then, row.pending_since, now, row.pending_reads)
        )

    def _clear_pending(self, row: Row) -> None:
        row.pending = None
        row.pending_since = None
        row.pending_reads = 0
        self.pending_names.discard(row.name)

    def _confirm_pending(self, row: Row, reason: str | None, now: float) -> None:
        old, new = row.confirmed, row.pending
        began = row.pending_since if row.pending_since is not None else now
        self._clear_pending(row)
        if new is None or new is old:
            return
        row.confirmed = new
        expect = row.instance.expect
        if not row.instance.muted:  # ``_outage_evidence`` of new less that of old, inline
            change = (new in OUTAGE_EVIDENCE and new != expect) - (
                old in OUTAGE_EVIDENCE and old != expect
            )
            if change:
                account = row.account.name
                self._evidence[account] = self._evidence.get(account, 0) + change
        if old is Status.UNKNOWN:
            # The first status of this run: when it began is known only from history.
            since, exact = self._first_since(row, new)
        else:
            transition = Transition(row.name, old, new, began, reason, True)
            row.add_transition(transition)
            self.unsaved.append(transition)
            self.emit(TransitionConfirmed(transition))
            since, exact = began, True
        row.confirmed_since, row.confirmed_exact = since, exact
        if new not in _BAD or new == expect:  # not ``_counts_bad``
            row.bad_at = None
        elif old is Status.UNKNOWN:  # bad since before this run: from history, or now
            row.bad_at = since if exact else began
        else:
            row.bad_at = began
        self._note_recent(row, now)

    @staticmethod
    def _first_since(row: Row, status: Status) -> tuple[float | None, bool]:
        last = row.transitions[-1] if row.transitions else None
        if last is not None and last.new == status:
            return last.at, True
        return row.first_seen_at, False

    def _update_since(self, row: Row, obs: Observation | None) -> None:
        if (
            obs is not None
            and row.confirmed is Status.WORKING
            and obs.status is Status.WORKING
            and obs.connected_at is not None
        ):
            row.confirmed_since, row.confirmed_exact = obs.connected_at, True
        if row.pending is not None:
            if row.confirmed is Status.UNKNOWN:
                row.since, row.since_exact = self._first_since(row, row.pending)
            else:
                row.since, row.since_exact = row.pending_since, True
        else:
            row.since, row.since_exact = row.confirmed_since, row.confirmed_exact

    @staticmethod
    def _is_flapping(row: Row, now: float) -> bool:
        if len(row.transitions) < FLAP_CHANGES:  # most rows: too few changes to count
            return False
        horizon = now - FLAP_WINDOW
        recent = sum(1 for t in row.transitions if t.at > horizon)
        return recent >= FLAP_CHANGES
