"""``Row``: one instance as the views and ``check`` see it, kept up to date by the tracker.

A row is the tracker's record of one instance: the latest read (merged: a rate-limited
answer keeps the status), the displayed and the confirmed status, since when, flapping,
and the tracker's own bookkeeping. It lives in a module of its own so that the events
(which carry a live row), the guard rails, the report and the tracker can all import it
without importing the poller.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tuiapp.config import AccountConfig, InstanceConfig
from tuiapp.model import Observation, Status, Transition

__all__ = ["GLIMPSES_KEPT", "HISTORY_LENGTH", "STALE_INTERVALS", "Glimpse", "Row"]

HISTORY_LENGTH = 50  # transitions kept per row (and in the shared history)
STALE_INTERVALS = 3  # a row whose data is older than this many poll intervals is stale
GLIMPSES_KEPT = 10  # unconfirmed statuses kept per row (this process only)
_BAD = frozenset(status for status in Status if status.is_bad)


@dataclass(frozen=True, slots=True)
class Glimpse:
    """A status the reads showed (and the grid with them) that was never confirmed:
    ``old`` (the confirmed status) -> ``seen`` for ``reads`` reads from ``at`` -> ``then``
    at ``until``. Kept so that the detail view's history has every status the grid
    showed (a FAILED -> STARTING -> FAILED blip included), marked as unconfirmed."""

    old: Status
    seen: Status
    then: Status
    at: float
    until: float
    reads: int


@dataclass(eq=False, slots=True)
class Row:
    """One instance as the UI and ``check`` see it.

    The tracker mutates a row only in place, on the poller's loop, and emits an event
    after each change; readers must not mutate it. Fields after ``transitions`` are the
    tracker's and the scheduler's bookkeeping (shown in the detail view at most).
    """

    instance: InstanceConfig
    account: AccountConfig
    obs: Observation | None = None  # latest read, merged: a keep_last answer keeps the status
    status: Status = Status.UNKNOWN  # displayed status: the latest read
    confirmed: Status = Status.UNKNOWN  # the status after the confirmation rule (tracker.py)
    since: float | None = None  # when the displayed status began
    since_exact: bool = False  # False: only a lower bound (the UI shows "≥ 12m")
    last_ok_at: float | None = None  # last read that the provider answered with a status
    last_polled_at: float | None = None  # last read of any kind, 429s included
    last_error: str | None = None
    rate_limited_until: float | None = None
    flapping: bool = False
    # confirmed transitions, newest last: () until the first one (add_transition), so
    # that 100,000 rows do not carry 100,000 empty deques (760 bytes each)
    transitions: deque[Transition] | tuple[()] = ()
    first_seen_at: float | None = None
    boost_until: float | None = None
    boost_started: float | None = None
    pending: Status | None = None  # a read status that is not confirmed yet
    pending_since: float | None = None
    pending_reads: int = 0
    confirmed_since: float | None = None
    confirmed_exact: bool = False
    bad_at: float | None = None  # when the confirmed status last turned bad (outage rule)
    absent_probed: bool = False  # missing from the list and already probed on its own endpoint
    # statuses read but never confirmed, newest last: () until the first (add_glimpse)
    glimpses: deque[Glimpse] | tuple[()] = ()

    @property
    def name(self) -> str:
        return self.instance.name

    def add_transition(self, transition: Transition) -> None:
        """Keep a confirmed transition (the newest ``HISTORY_LENGTH``)."""
        if not isinstance(self.transitions, deque):
            self.transitions = deque(self.transitions, maxlen=HISTORY_LENGTH)
        self.transitions.append(transition)

    def add_glimpse(self, glimpse: Glimpse) -> None:
        """Keep an unconfirmed status (the newest ``GLIMPSES_KEPT``)."""
        if not isinstance(self.glimpses, deque):
            self.glimpses = deque(self.glimpses, maxlen=GLIMPSES_KEPT)
        self.glimpses.append(glimpse)

    @property
    def expected(self) -> bool:
        """The status is the one the config says is normal for it (``expect``)."""
        return self.instance.expect is not None and self.status == self.instance.expect

    @property
    def problem(self) -> bool:
        """Bad, not expected, not muted: what check, notifications and filters count."""
        status = self.status
        if status not in _BAD:  # ``Status.is_bad``, looked up (the grid asks for every row)
            return False
        instance = self.instance
        return not instance.muted and instance.expect != status  # expect None: not expected

    @property
    def data_at(self) -> float | None:
        """When the provider last told us this row's status (a 429 tells nothing)."""
        if self.obs is None or self.obs.keep_last:
            return None
        return self.obs.observed_at

    def data_age(self, now: float) -> float | None:
        at = self.data_at
        return None if at is None else max(0.0, now - at)

    def is_stale(self, now: float, interval: float) -> bool:
        """Older than three poll intervals: dimmed, with its age, never a confident green."""
        at = self.data_at if self.data_at is not None else self.first_seen_at
        return at is not None and now - at > STALE_INTERVALS * interval
