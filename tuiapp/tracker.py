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

Events go to the subscribers synchronously; one failing subscriber is logged, never
raised.
"""

from __future__ import annotations

import heapq
import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import replace

from tuiapp.clock import Clock
from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.events import (
    InstanceObserved,
    NetworkDown,
    OutageChanged,
    SweepFinished,
    TransitionConfirmed,
)
from tuiapp.model import Observation, Status, Transition
from tuiapp.providers.text import one_line
from tuiapp.row import HISTORY_LENGTH, Glimpse, Row
from tuiapp.secrets import GLOBAL_REDACTOR
from tuiapp.vocabulary import ErrorKind

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

CONFIRM_READS = 2  # consecutive reads that confirm a change to a bad status ...
CONFIRM_SECONDS = 30.0  # ... or this long since the first read of it
FLAP_CHANGES = 4  # confirmed changes within FLAP_WINDOW that make a row FLAPPING
FLAP_WINDOW = 600.0
OUTAGE_MIN_INSTANCES = 3  # the account-wide outage rule needs at least this many bad rows
# What counts toward an outage: a down or logged-out number. STOPPED and STARTING alone
# are weak evidence (someone stopped them; they are coming up) and never make one.
OUTAGE_EVIDENCE = frozenset(
    {Status.FAILED, Status.UNREACHABLE, Status.AUTH_ERROR, Status.NOT_FOUND, Status.SCAN_QR_CODE}
)
NETWORK_KINDS = frozenset(k for k in ErrorKind if k.is_network)
_BAD = frozenset(status for status in Status if status.is_bad)  # ``Status.is_bad``, looked up


class FleetTracker:
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
        row = Row(instance, account)
        past = history if isinstance(history, list) else list(history)
        if past:  # most rows of a big fleet: none
            for transition in past[-HISTORY_LENGTH:]:
                if isinstance(transition, Transition):
                    row.add_transition(transition)
        self.rows[instance.name] = row
        members = self.account_rows.get(account.name)
        if members is None:
            self.account_rows[account.name] = [row]
        else:
            members.append(row)
        if not instance.muted:
            self._watched[account.name] = self._watched.get(account.name, 0) + 1
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

    def _note_recent(self, row: Row, now: float) -> None:
        """Keep ``row`` among its account's recently-bad outage evidence, or not."""
        account = row.account.name
        bad_at = row.bad_at
        if row.instance.muted or bad_at is None or not _outage_evidence(row, row.confirmed):
            recent = self._recent.get(account)
            if recent:  # no evidence (most rows): no window to age, only forget it
                recent.pop(row.name, None)
            return
        recent = self._recent_bad(row.account, now)  # aged-out entries go: the heap stays small
        recent.pop(row.name, None)
        if now - bad_at <= 2 * self._interval(row.account):
            recent[row.name] = bad_at
            heapq.heappush(self._recent_heap.setdefault(account, []), (bad_at, row.name))

    def _recent_bad(self, account: AccountConfig, now: float) -> dict[str, float]:
        """The account's outage evidence that turned bad within two polls of ``now``."""
        recent = self._recent.setdefault(account.name, {})
        heap = self._recent_heap.get(account.name)
        horizon = now - 2 * self._interval(account)
        while heap and heap[0][0] < horizon:
            bad_at, name = heapq.heappop(heap)
            if recent.get(name) == bad_at:
                del recent[name]
        return recent

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

    @staticmethod
    def _counts_bad(row: Row, status: Status) -> bool:
        return status.is_bad and status != row.instance.expect

    def _check_outage(self, account: AccountConfig, now: float) -> None:
        """>= half and >= 3 of the non-muted rows confirmed bad within two polls."""
        bad_count = self._evidence.get(account.name, 0)
        active = account.name in self.outages
        if not active and bad_count < OUTAGE_MIN_INSTANCES:
            return  # fewer bad rows than any outage needs (most reads of a calm fleet)
        total = self._watched.get(account.name, 0)
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(total / 2))
        if not active:
            if total < OUTAGE_MIN_INSTANCES or bad_count < needed:
                return  # too few bad rows, recent or not
            recent = self._recent_bad(account, now)
            if len(recent) >= needed:
                counts: dict[str, int] = {}
                for name in recent:
                    status = self.rows[name].confirmed.value
                    counts[status] = counts.get(status, 0) + 1
                summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
                message = (
                    f"{account.name} ({account.provider}): {len(recent)} of {total} instances"
                    f" went bad within two polls ({summary}); looks account-wide, check"
                    f" {account.provider}'s status before restarting"
                )
                self.outages[account.name] = message
                self.emit(OutageChanged(account.name, True, message))
        elif bad_count < needed:
            del self.outages[account.name]
            message = f"{account.name}: account-wide outage over ({bad_count} of {total} bad)"
            self.emit(OutageChanged(account.name, False, message))

    def _update_network(self, row: Row, obs: Observation) -> None:
        """Track rows whose latest read failed in the network; all accounts so -> NetworkDown."""
        down = obs.status is Status.UNREACHABLE and obs.error_kind in NETWORK_KINDS
        if down == (row.name in self._net_flags):
            return
        account = row.account.name
        if down:
            self._net_flags.add(row.name)
            self._net_bad[account] = self._net_bad.get(account, 0) + 1
        else:
            self._net_flags.discard(row.name)
            self._net_bad[account] -= 1
        populated = [name for name, rows in self.account_rows.items() if rows]
        all_down = bool(populated) and all(
            self._net_bad.get(name, 0) == len(self.account_rows[name]) for name in populated
        )
        if all_down != self.network_down:
            self.network_down = all_down
            self.emit(NetworkDown(all_down))

    # ---- list calls --------------------------------------------------------------------

    def list_failed(self, account: str, why: str) -> None:
        """``account``'s list call failed (``why``). With no row of it (a discovering account
        before its first answer) that is an outage of the account: ``OutageChanged``."""
        self.list_failures[account] = why
        if self.account_rows.get(account) or (
            account in self.outages and account not in self._list_outages
        ):
            return  # its rows say what the failure means; or the row rule holds already
        message = list_outage_message(account, why)
        if self.outages.get(account) == message:
            return
        self._list_outages.add(account)
        self.outages[account] = message
        self.emit(OutageChanged(account, True, message))

    def list_answered(self, account: str) -> None:
        """``account``'s list call answered: an outage ``list_failed`` began ends."""
        self.list_failures.pop(account, None)
        if account in self._list_outages:
            self._list_outages.discard(account)
            self.outages.pop(account, None)
            self.emit(OutageChanged(account, False, f"{account}: its list call answers again"))

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


def list_outage_message(account: str, why: str) -> str:
    """The outage of an account no row knows of, whose list call failed (``why``)."""
    return f"{account}: no instance known, its list call failed ({why})"


def _outage_evidence(row: Row, status: Status) -> bool:
    return status in OUTAGE_EVIDENCE and status != row.instance.expect


def snapshot_outages(rows: Iterable[Row]) -> dict[str, str]:
    """The outage rule over one moment (``check``: one sweep, no "within two polls"):
    accounts where >= half and >= ``OUTAGE_MIN_INSTANCES`` non-muted rows are down."""
    by_account: dict[str, list[Row]] = {}
    for row in rows:
        if not row.instance.muted:
            by_account.setdefault(row.instance.account, []).append(row)
    outages: dict[str, str] = {}
    for account, members in sorted(by_account.items()):
        bad = [  # ``_outage_evidence`` of each row's status, inline
            r for r in members if r.status in OUTAGE_EVIDENCE and r.status != r.instance.expect
        ]
        needed = max(OUTAGE_MIN_INSTANCES, math.ceil(len(members) / 2))
        if len(members) >= OUTAGE_MIN_INSTANCES and len(bad) >= needed:
            counts: dict[str, int] = {}
            for r in bad:
                counts[r.status.value] = counts.get(r.status.value, 0) + 1
            summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            provider = members[0].account.provider
            outages[account] = (
                f"{account} ({provider}): {len(bad)} of {len(members)} instances are down"
                f" ({summary}); looks account-wide, check {provider}'s status before restarting"
            )
    return outages
