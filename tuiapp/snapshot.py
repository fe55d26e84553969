"""The fleet at one moment, as plain frozen data: what a view shows or a hub serves.

``FleetSnapshot`` copies what the tracker knows (every row, the account-wide outages,
the network state) into immutable values, so it can be kept, compared, sent over the
wire or rendered on another thread while the poller goes on. Times are epoch seconds
on the engine's clock; durations are seconds.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tuiapp.config import FleetConfig
from tuiapp.model import Status
from tuiapp.row import Row
from tuiapp.tracker import FleetTracker

__all__ = ["FleetSnapshot", "InstanceSnapshot", "fleet_snapshot", "instance_snapshot"]


@dataclass(frozen=True, slots=True)
class InstanceSnapshot:
    """One row: its status and why, since when, how fresh, and the notes a view shows."""

    name: str
    account: str
    provider: str
    status: Status  # the latest read (a rate-limited read keeps the one before)
    confirmed: Status  # after the confirmation rule
    reason: str | None
    error: str | None
    since: float | None  # when the displayed status began
    since_exact: bool  # False: ``since`` is only a lower bound
    latency_ms: float | None
    data_age: float | None  # seconds since the provider last said this status; None: never
    stale: bool  # older than three poll intervals
    flapping: bool
    problem: bool  # bad, not expected, not muted
    notes: tuple[str, ...]  # muted, expected, flapping, stale, rate limited, action running


@dataclass(frozen=True, slots=True)
class FleetSnapshot:
    """Every row (in config order, discovered ones after), outages and the network state."""

    at: float
    rows: tuple[InstanceSnapshot, ...]
    outages: tuple[tuple[str, str], ...]  # (account, what the outage rule says), by account
    network_down: bool
    last_sweep_at: float | None
    in_flight: tuple[str, ...]  # names with an action running in this process, sorted

    def row(self, name: str) -> InstanceSnapshot:
        """The row named ``name`` (KeyError if there is none)."""
        for row in self.rows:
            if row.name == name:
                return row
        raise KeyError(name)

    @property
    def problems(self) -> tuple[InstanceSnapshot, ...]:
        return tuple(row for row in self.rows if row.problem)


def note_words(row: Row, stale: bool, limited: bool, busy: bool) -> tuple[str, ...]:
    """A row's notes (``InstanceSnapshot.notes``): ``stale`` and ``limited`` (rate limited)
    at the snapshot's time, ``busy``: an action runs on it."""
    flags = (
        ("muted", row.instance.muted),
        ("expected", row.expected),
        ("flapping", row.flapping),
        ("stale", stale),
        ("rate limited", limited),
        ("action running", busy),
    )
    return tuple(note for note, on in flags if on)


def instance_snapshot(row: Row, now: float, interval: float, *, busy: bool) -> InstanceSnapshot:
    """``row`` at ``now``; ``interval`` is its account's poll interval (for staleness)."""
    obs = row.obs
    stale = row.is_stale(now, interval)
    rate_limited = row.rate_limited_until is not None and row.rate_limited_until > now
    return InstanceSnapshot(
        name=row.name,
        account=row.account.name,
        provider=row.account.provider,
        status=row.status,
        confirmed=row.confirmed,
        reason=obs.reason if obs is not None else None,
        error=row.last_error,
        since=row.since,
        since_exact=row.since_exact,
        latency_ms=obs.latency_ms if obs is not None else None,
        data_age=row.data_age(now),
        stale=stale,
        flapping=row.flapping,
        problem=row.problem,
        notes=note_words(row, stale, rate_limited, busy),
    )


def fleet_snapshot(
    tracker: FleetTracker, fleet: FleetConfig, *, now: float, in_flight: Collection[str] = ()
) -> FleetSnapshot:
    """What ``tracker`` knows at ``now``, copied."""
    return FleetSnapshot(
        at=now,
        rows=tuple(
            instance_snapshot(
                row, now, fleet.poll_interval_for(row.instance), busy=row.name in in_flight
            )
            for row in tracker.rows.values()
        ),
        outages=tuple(sorted(tracker.outages.items())),
        network_down=tracker.network_down,
        last_sweep_at=tracker.last_sweep_at,
        in_flight=tuple(sorted(in_flight)),
    )
